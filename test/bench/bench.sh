#!/bin/bash
# test/bench/bench.sh: railcar's shim against containerd-shim-runc-v2 + runc,
# side by side in one run, through a private containerd 2.4 and ctr.
#
#   lifecycle   ctr run --rm <image> /bin/true, wall time per container
#   exec        ctr task exec /bin/true into a running container, per exec
#   memory      PSS of the shim processes per running container (M running)
#   throughput  K containers started (detached) 4 at a time: containers/s
#
# The runtimes alternate run by run so that load on the machine hits both.
# Prints a table with the ratio railcar/runc (below 1: railcar is faster or
# lighter). Environment: N (lifecycle and exec runs, default 30), M (memory,
# default 10), K (throughput, default 20).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
N=${N:-30}
M=${M:-10}
K=${K:-20}

"$repo/test/containerd.sh" start >/dev/null
eval "$("$repo/test/containerd.sh" env)"
IMAGE=$RAILCAR_TEST_IMAGE
ns=bench$$
# ctr warns about cgroup v1 on every call; keep the rest of its stderr.
ctr_() { ctr -n "$ns" "$@" 2> >(grep -v DEPRECATION >&2); }
ctr -n "$ns" images import --all-platforms "${RAILCAR_TEST_IMAGE_TAR:-/dev/null}" >/dev/null 2>&1 || true
if ! ctr_ images ls -q | grep -qxF "$IMAGE"; then
	# The image lives in `default`; export and import it into our namespace.
	ctr -n default images export /tmp/bench-image.$$.tar "$IMAGE" >/dev/null
	ctr_ images import /tmp/bench-image.$$.tar >/dev/null
	rm -f /tmp/bench-image.$$.tar
fi

declare -A TYPE=([railcar]=io.containerd.railcar.v2 [runc]=io.containerd.runc.v2)
declare -A OPTS=([railcar]="" [runc]="--runc-binary /opt/railcar-test/bin/runc")
RUNTIMES=(railcar runc)

now() { date +%s%N; }
ms() { awk -v ns="$1" -v n="$2" 'BEGIN { printf "%.1f", ns / n / 1e6 }'; }

cleanup() {
	for c in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks kill -s KILL "$c" >/dev/null 2>&1 || true; done
	sleep 0.5
	for c in $(ctr_ containers ls -q 2>/dev/null); do
		ctr_ tasks delete -f "$c" >/dev/null 2>&1 || true
		ctr_ containers delete "$c" >/dev/null 2>&1 || true
	done
}
trap cleanup EXIT

declare -A LIFE EXEC MEM THRU
for rt in "${RUNTIMES[@]}"; do LIFE[$rt]=0; EXEC[$rt]=0; done

echo "==> lifecycle: $N x ctr run --rm /bin/true per runtime"
for i in $(seq "$N"); do
	for rt in "${RUNTIMES[@]}"; do
		t0=$(now)
		# shellcheck disable=SC2086
		ctr_ run --rm --runtime "${TYPE[$rt]}" ${OPTS[$rt]} "$IMAGE" "life-$rt-$i" /bin/true
		LIFE[$rt]=$((LIFE[$rt] + $(now) - t0))
	done
done

echo "==> exec: $N x ctr task exec /bin/true per runtime"
for rt in "${RUNTIMES[@]}"; do
	# shellcheck disable=SC2086
	ctr_ run -d --runtime "${TYPE[$rt]}" ${OPTS[$rt]} "$IMAGE" "exec-$rt" sleep 100000 >/dev/null
done
for i in $(seq "$N"); do
	for rt in "${RUNTIMES[@]}"; do
		t0=$(now)
		ctr_ task exec --exec-id "e$i" "exec-$rt" /bin/true
		EXEC[$rt]=$((EXEC[$rt] + $(now) - t0))
	done
done
cleanup

# shim_pss PATTERN: the summed PSS (kB) of the shims of this bench (argv[0]
# ending in PATTERN, serving its namespace of its containerd): not those of
# other daemons or namespaces on the machine.
shim_pss() {
	local total=0 pid
	for pid in $(pgrep -f "^[^ ]*$1 -namespace $ns .*-address $CONTAINERD_ADDRESS( |$)" || true); do
		local kb
		kb=$(awk '/^Pss:/ { print $2 }' "/proc/$pid/smaps_rollup" 2>/dev/null || echo 0)
		total=$((total + ${kb:-0}))
	done
	echo "$total"
}

echo "==> memory: $M running containers per runtime, shim PSS"
for rt in "${RUNTIMES[@]}"; do
	for i in $(seq "$M"); do
		# shellcheck disable=SC2086
		ctr_ run -d --runtime "${TYPE[$rt]}" ${OPTS[$rt]} "$IMAGE" "mem-$rt-$i" sleep 100000 >/dev/null
	done
	sleep 1
	MEM[$rt]=$(shim_pss "containerd-shim-$rt-v2")
	cleanup
done

echo "==> throughput: $K detached containers per runtime, 4 at a time"
for rt in "${RUNTIMES[@]}"; do
	t0=$(now)
	# shellcheck disable=SC2086
	seq "$K" | xargs -P 4 -I{} ctr -n "$ns" run -d --runtime "${TYPE[$rt]}" ${OPTS[$rt]} "$IMAGE" "thru-$rt-{}" sleep 100000 >/dev/null 2>&1
	THRU[$rt]=$(awk -v k="$K" -v ns="$(($(now) - t0))" 'BEGIN { printf "%.2f", k / (ns / 1e9) }')
	cleanup
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.2fx", a / b }'; }
lr=$(ms "${LIFE[railcar]}" "$N"); lu=$(ms "${LIFE[runc]}" "$N")
er=$(ms "${EXEC[railcar]}" "$N"); eu=$(ms "${EXEC[runc]}" "$N")
mr=$((MEM[railcar] / M)); mu=$((MEM[runc] / M))
echo
printf '%-34s %12s %12s %8s\n' "" railcar runc ratio
printf '%-34s %12s %12s %8s\n' "lifecycle, ms per ctr run --rm" "$lr" "$lu" "$(ratio "$lr" "$lu")"
printf '%-34s %12s %12s %8s\n' "exec, ms per ctr task exec" "$er" "$eu" "$(ratio "$er" "$eu")"
printf '%-34s %12s %12s %8s\n' "shim PSS per container, kB" "$mr" "$mu" "$(ratio "$mr" "$mu")"
printf '%-34s %12s %12s %8s\n' "throughput, containers/s" "${THRU[railcar]}" "${THRU[runc]}" "$(ratio "${THRU[railcar]}" "${THRU[runc]}")"
