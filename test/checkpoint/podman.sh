#!/bin/bash
# podman container checkpoint / restore with railcar as podman's OCI
# runtime (podman runs `railcar checkpoint` and, through conmon, `railcar
# restore`). Runs where criu works (the qemu guest of `make
# checkpoint-test`), as root, with podman roots of its own on tmpfs and the
# test image (test/image/build.sh).
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
RAILCAR=${RAILCAR:-$repo/bin/railcar}
pd=${PODMAN_DIR:-/run/ckpt-podman}
image=localhost/railcar-checkpoint:test
id=ckpodman

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2fs", b - a }'; }
pm() {
	CONTAINERS_CONF=$pd/containers.conf CONTAINERS_STORAGE_CONF=$pd/storage.conf \
		podman --runtime "$RAILCAR" "$@"
}
fail() {
	echo "FAIL: $*"
	find "$pd" -name '*.log' -newer "$pd/storage.conf" 2>/dev/null | while read -r f; do
		grep -q Error "$f" && { echo "--- $f"; grep -n -B2 Error "$f" | tail -n 12; }
	done
	pm rm -f -t 0 $id >/dev/null 2>&1
	exit 1
}
count() { pm exec $id sh -c 'wc -l < /tmp/out'; }
fetch() { pm exec $id wget -O - http://127.0.0.1:8080/ 2>/dev/null; }

command -v podman >/dev/null || { echo "FAIL: podman is not installed (test/checkpoint/run.sh installs it)"; exit 1; }
mkdir -p "$pd/root" "$pd/runroot" "$pd/tmp"
cat >"$pd/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$pd/root"
runroot = "$pd/runroot"
EOF
cat >"$pd/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=65536:65536"]
netns = "none"
log_driver = "k8s-file"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$pd/events.log"
tmp_dir = "$pd/tmp"
static_dir = "$pd/root/libpod"
volume_path = "$pd/root/volumes"
EOF
echo "== $(podman --version), runtime $RAILCAR"
tar -C "$repo/_output/image/rootfs" -c . | pm import -q - $image >/dev/null || fail "podman import"
pm run -d --name $id --cap-add NET_ADMIN $image sh -c '
	ip link set lo up
	mkdir -p /www && echo "hello from the container" > /www/index.html
	httpd -f -p 127.0.0.1:8080 -h /www &
	exec 3>/tmp/out
	i=0
	while :; do i=$((i + 1)); echo "tick $i" >&3; sleep 0.3; done' >/dev/null || fail "podman run"
i=0
until [ "$(count 2>/dev/null || echo 0)" -ge 5 ]; do
	i=$((i + 1)); [ $i -gt 100 ] && fail "the workload does not count"; sleep 0.2
done
echo "before: GET / -> $(fetch), $(count) ticks"

t=$(now)
pm container checkpoint $id >/dev/null || fail "podman container checkpoint"
echo "checkpoint took $(elapsed "$t"); $(pm ps -a --format '{{.Names}} {{.Status}}' | grep $id)"
t=$(now)
pm container restore $id >/dev/null || fail "podman container restore"
echo "restore took $(elapsed "$t"); $(pm ps -a --format '{{.Names}} {{.Status}}' | grep $id)"
c=$(count); sleep 2
[ "$(count)" -gt "$c" ] || fail "the restored workload does not count"
pm exec $id awk '$0 != "tick " NR { print "line " NR ": " $0; bad = 1 } END { exit bad }' /tmp/out ||
	fail "the count did not go on from where it stopped"
out=$(fetch) || fail "httpd does not answer after restore"
echo "after restore: count went on ($c -> $(count), every line in order), GET / -> $out"
pm rm -f -t 0 $id >/dev/null
echo "PASS"
