#!/bin/bash
# test/cri/probe-bench.sh: what an exec probe costs, railcar against runc.
#
# For each CRI runtime handler (runc, then railcar) it runs, through crictl
# and the private containerd of test/cri/daemons.sh, one pod sharing a pid
# namespace (shareProcessNamespace) with CONTAINERS busybox containers, counts
# the shim processes serving it, then times CALLS ExecSyncs of /bin/true
# (what a kubelet exec probe sends).
#
# CPU per call is the growth of utime+stime+cutime+cstime of the pod's shim
# processes (/proc/PID/stat) over the calls, divided by CALLS: the shim's own
# work plus every process it reaps (runc exec, runc init, and the probe
# process itself for runc; the re-executed init and the probe process for
# railcar, whose shim is every exec's reaper). containerd's share is the same
# CRI work for both and is left out.
#
# Fails unless railcar serves the pod with one shim and costs less CPU per
# call than runc.
#
# Environment: HANDLERS ("runc railcar"), CALLS (100), WARMUP (5),
# CONTAINERS (3), KEEP_DAEMONS=1, CRI_OUT (_output/cri).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
HANDLERS=${HANDLERS:-runc railcar}
CALLS=${CALLS:-100}
WARMUP=${WARMUP:-5}
CONTAINERS=${CONTAINERS:-3}
OUT=${CRI_OUT:-$repo/_output/cri}/probe-bench
TOOLS=${RAILCAR_TEST_PREFIX:-/opt/railcar-test}/bin
IMAGE=registry.k8s.io/e2e-test-images/busybox:1.29-2
HZ=$(getconf CLK_TCK)

log() { printf '==> probe-bench: %s\n' "$*" >&2; }
die() { printf 'probe-bench: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root"
"$here/tools.sh" >&2
"$here/daemons.sh" start >&2
[ "${KEEP_DAEMONS:-0}" = 1 ] || trap '"$here/daemons.sh" stop >&2' EXIT
eval "$("$here/daemons.sh" env)"
SOCK=${CRI_ENDPOINT#unix://}
crictl=(crictl --runtime-endpoint "$CRI_ENDPOINT" --image-endpoint "$CRI_ENDPOINT" --timeout 60s)
mkdir -p "$OUT"

shim_binary() {
	case $1 in
	runc) echo "$TOOLS/containerd-shim-runc-v2" ;;
	railcar) echo "$repo/bin/containerd-shim-railcar-v2" ;;
	*) die "unknown handler $1" ;;
	esac
}

# shims HANDLER: the pids of the shim servers of this containerd for HANDLER.
shims() {
	local exe p
	exe=$(shim_binary "$1")
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/exe" 2>/dev/null)" = "$exe" ] || continue
		tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -qF -- "-address $SOCK" || continue
		echo "${p#/proc/}"
	done
}

# ticks PID...: utime+stime+cutime+cstime, in clock ticks.
ticks() {
	local p sum=0 t
	for p in "$@"; do
		# Fields after the parenthesised comm; utime is field 14 of the line.
		t=$(sed 's/^.*) //' "/proc/$p/stat" | awk '{print $12 + $13 + $14 + $15}')
		sum=$((sum + t))
	done
	echo "$sum"
}

bench() {
	local h=$1 d=$OUT/$1 pod cids=() i c before pids t0 t1 c0 c1 n
	rm -rf "$d"; mkdir -p "$d/logs"
	before=$(shims "$h" | wc -l)
	cat >"$d/pod.json" <<-EOF
		{
		  "metadata": {"name": "probe-bench-$h", "namespace": "probe-bench", "uid": "probe-bench-$h-$$", "attempt": 0},
		  "log_directory": "$d/logs",
		  "linux": {"security_context": {"namespace_options": {"network": 0, "pid": 0, "ipc": 0}}}
		}
	EOF
	pod=$("${crictl[@]}" runp --runtime "$h" "$d/pod.json")
	for i in $(seq 1 "$CONTAINERS"); do
		cat >"$d/c$i.json" <<-EOF
			{
			  "metadata": {"name": "sleeper-$i", "attempt": 0},
			  "image": {"image": "$IMAGE"},
			  "command": ["sleep", "3600"],
			  "log_path": "sleeper-$i.log",
			  "linux": {}
			}
		EOF
		c=$("${crictl[@]}" create "$pod" "$d/c$i.json" "$d/pod.json")
		"${crictl[@]}" start "$c" >/dev/null
		cids+=("$c")
	done
	mapfile -t pids < <(shims "$h")
	n=$((${#pids[@]} - before))
	log "$h: pod ${pod:0:13} with $CONTAINERS containers; $n new shim process(es)"
	for i in $(seq 1 "$WARMUP"); do "${crictl[@]}" exec -s "${cids[0]}" /bin/true; done
	c0=$(ticks "${pids[@]}"); t0=$(date +%s%N)
	for i in $(seq 1 "$CALLS"); do
		"${crictl[@]}" exec -s "${cids[$((i % CONTAINERS))]}" /bin/true || die "$h: exec $i failed"
	done
	t1=$(date +%s%N); c1=$(ticks "${pids[@]}")
	"${crictl[@]}" stopp "$pod" >/dev/null
	"${crictl[@]}" rmp "$pod" >/dev/null
	# handler shims containers calls cpu_ms_per_call wall_ms_per_call
	awk -v h="$h" -v s="$n" -v k="$CONTAINERS" -v n="$CALLS" -v dc=$((c1 - c0)) -v hz="$HZ" -v dt=$((t1 - t0)) \
		'BEGIN { printf "%s %d %d %d %.2f %.2f\n", h, s, k, n, dc * 1000 / hz / n, dt / 1e6 / n }'
}

"${crictl[@]}" pull "$IMAGE" >/dev/null
results=()
for h in $HANDLERS; do results+=("$(bench "$h")"); done

{
	printf '%-8s %10s %10s %6s %13s %14s\n' handler shims/pod containers calls cpu-ms/call wall-ms/call
	for r in "${results[@]}"; do
		# shellcheck disable=SC2086
		printf '%-8s %10s %10s %6s %13s %14s\n' $r
	done
} | tee "$OUT/summary.txt"

runc_cpu=$(printf '%s\n' "${results[@]}" | awk '$1 == "runc" {print $5}')
rc_cpu=$(printf '%s\n' "${results[@]}" | awk '$1 == "railcar" {print $5}')
rc_shims=$(printf '%s\n' "${results[@]}" | awk '$1 == "railcar" {print $2}')
if [ -n "$runc_cpu" ] && [ -n "$rc_cpu" ]; then
	awk -v a="$rc_cpu" -v b="$runc_cpu" 'BEGIN { printf "CPU per ExecSync, railcar/runc: %.2f\n", (b > 0 ? a / b : 0) }' | tee -a "$OUT/summary.txt"
	awk -v a="$rc_cpu" -v b="$runc_cpu" 'BEGIN { exit !(a < b) }' || die "railcar costs no less CPU per exec than runc"
fi
if [ -n "$rc_shims" ] && [ "$rc_shims" != 1 ]; then
	die "railcar served the pod with $rc_shims shim processes, not 1"
fi
