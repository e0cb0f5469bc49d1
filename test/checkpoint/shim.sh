#!/bin/bash
# containerd's checkpoint/restore flow with the railcar shim: `ctr c
# checkpoint --task --rw` (the shim's Checkpoint RPC) and `ctr c restore
# --live --rw` (Create with a checkpoint). Runs where criu works (the qemu
# guest of `make checkpoint-test`), as root, with a private containerd
# (test/containerd.sh) on tmpfs and the test image (test/image/build.sh).
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
export RAILCAR_TEST_CONTAINERD_DIR=${RAILCAR_TEST_CONTAINERD_DIR:-/run/ckpt-containerd}
export RAILCAR_TEST_CONTAINERD_ROOT=${RAILCAR_TEST_CONTAINERD_ROOT:-/run/ckpt-containerd-root}
export RAILCAR_TEST_CONTAINERD_TIMEOUT=${RAILCAR_TEST_CONTAINERD_TIMEOUT:-300}
id=ckshim
# The shim by absolute path: a copy that nothing rebuilds while the test
# runs (containerd.sh's PATH starts with the checkout's bin/).
SHIM=${SHIM:-$repo/bin/containerd-shim-railcar-v2}
ref=railcar.test/checkpoint:$id

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2fs", b - a }'; }
fail() {
	echo "FAIL: $*"
	ctr t ls 2>/dev/null
	find "$RAILCAR_TEST_CONTAINERD_DIR" -path '*criu-work/*.log' 2>/dev/null | while read -r f; do
		echo "--- $f"; grep -n -B2 Error "$f" | tail -n 12
	done
	tail -n 20 "$RAILCAR_TEST_CONTAINERD_DIR/containerd.log" 2>/dev/null
	"$repo/test/containerd.sh" stop >/dev/null 2>&1
	exit 1
}
ex() { ctr t exec --exec-id "e$RANDOM$RANDOM" $id "$@"; }
count() { ex sh -c 'wc -l < /tmp/out'; }
status() { ctr t ls | awk -v id=$id '$1 == id { print $3 }'; }
fetch() { ex wget -O - http://127.0.0.1:8080/ 2>/dev/null; }

echo "== private containerd, shim $SHIM"
t=$(now)
"$repo/test/containerd.sh" start >/dev/null || fail "containerd start"
eval "$("$repo/test/containerd.sh" env)"
echo "containerd up in $(elapsed "$t")"

echo "== ctr run"
ctr run -d --null-io --cap-add CAP_NET_ADMIN --runtime "$SHIM" "$RAILCAR_TEST_IMAGE" $id sh -c '
	ip link set lo up
	mkdir -p /www && echo "hello from the container" > /www/index.html
	httpd -f -p 127.0.0.1:8080 -h /www &
	exec 3>/tmp/out
	i=0
	while :; do i=$((i + 1)); echo "tick $i" >&3; sleep 0.3; done' || fail "ctr run"
i=0
until [ "$(count 2>/dev/null || echo 0)" -ge 5 ]; do
	i=$((i + 1)); [ $i -gt 100 ] && fail "the workload does not count"; sleep 0.2
done
echo "before: $(status), GET / -> $(fetch), $(count) ticks"

echo "== ctr c checkpoint --task --rw"
t=$(now)
ctr c checkpoint --task --rw $id $ref || fail "ctr c checkpoint"
echo "checkpoint took $(elapsed "$t"); the task is $(status); image: $(ctr i ls -q | grep -c "$ref") checkpoint image"
ctr t kill -s SIGKILL $id
i=0
until [ "$(status)" = STOPPED ]; do i=$((i + 1)); [ $i -gt 100 ] && fail "not stopped"; sleep 0.1; done
ctr t rm $id >/dev/null || fail "ctr t rm"
ctr c rm $id || fail "ctr c rm"

echo "== ctr c restore --live --rw"
t=$(now)
ctr c restore --live --rw $id $ref </dev/null >/dev/null || fail "ctr c restore"
echo "restore took $(elapsed "$t"); the task is $(status), pid $(ctr t ls | awk -v id=$id '$1 == id { print $2 }')"
[ "$(status)" = RUNNING ] || fail "not running after restore"
c=$(count); sleep 2
[ "$(count)" -gt "$c" ] || fail "the restored workload does not count"
ex awk '$0 != "tick " NR { print "line " NR ": " $0; bad = 1 } END { exit bad }' /tmp/out ||
	fail "the count did not go on from where it stopped"
echo "after restore: count went on ($c -> $(count), every line in order), last \"$(ex tail -n 1 /tmp/out)\""
out=$(fetch) || fail "httpd does not answer after restore"
echo "after restore: GET / -> $out"

echo "== ctr t checkpoint --exit (the Exit option stops the task)"
ctr t checkpoint --exit $id >/dev/null || fail "ctr t checkpoint --exit"
i=0
until [ "$(status)" = STOPPED ]; do i=$((i + 1)); [ $i -gt 100 ] && fail "still $(status) after checkpoint --exit"; sleep 0.1; done
echo "after ctr t checkpoint --exit: $(status)"
ctr t rm $id >/dev/null; ctr c rm $id
"$repo/test/containerd.sh" stop >/dev/null
echo "PASS"
