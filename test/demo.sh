#!/bin/bash
# test/demo.sh: run a container through containerd with railcar's shim.
# Starts the private containerd (test/containerd.sh), runs
#   ctr run --rm --runtime io.containerd.railcar.v2 <test image> <id> echo hello from railcar
# shows what it printed and how long it took, then stops containerd.
# DEMO_COMPARE=1 also runs the same through io.containerd.runc.v2 (runc 1.5.3).
# DEMO_KEEP=1 leaves containerd running.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
want="hello from railcar"

[ -x "$repo/bin/containerd-shim-railcar-v2" ] || { echo "demo: bin/containerd-shim-railcar-v2 missing: make build" >&2; exit 1; }

# Stop containerd at the end only if this run started it.
started=1
"$here/containerd.sh" status >/dev/null 2>&1 && started=0
"$here/containerd.sh" start
if [ $started = 1 ] && [ "${DEMO_KEEP:-0}" != 1 ]; then
	trap '"$here/containerd.sh" stop' EXIT
fi
eval "$("$here/containerd.sh" env)"

# run RUNTIME: run the demo container, print its output and the wall time.
run() {
	local runtime=$1 id out t0 t1 rc=0
	id=${runtime#io.containerd.}
	id=demo-${id%.v2}-$$
	echo "\$ ctr run --rm --runtime $runtime $RAILCAR_TEST_IMAGE $id echo $want"
	t0=$(date +%s%N)
	out=$(timeout 60 ctr run --rm --runtime "$runtime" "$RAILCAR_TEST_IMAGE" "$id" echo "$want" 2>&1) || rc=$?
	t1=$(date +%s%N)
	printf '%s\n' "$out" | grep -v 'cgroup v1 is deprecated' | sed 's/^/    /'
	echo "    (exit $rc, $(((t1 - t0) / 1000000)) ms)"
	if [ $rc != 0 ] || ! grep -qxF "$want" <<<"$out"; then
		echo "demo: $runtime did not print \"$want\"; containerd log tail:" >&2
		tail -n 30 "$RAILCAR_TEST_CONTAINERD_LOG" >&2
		return 1
	fi
}

run io.containerd.railcar.v2
if [ "${DEMO_COMPARE:-0}" = 1 ]; then
	run io.containerd.runc.v2
fi
echo "demo: ok"
