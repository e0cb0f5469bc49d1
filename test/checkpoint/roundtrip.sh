#!/bin/sh
# Checkpoint/restore round trip of a running busybox container through
# `railcar checkpoint` and `railcar restore`. Runs where criu works (the qemu
# guest of test/vm.sh; `make checkpoint-test`), as root.
#
# The workload (PID 1 of the container) is a shell that counts in memory,
# writes "tick N" lines through an fd it keeps open, runs busybox httpd
# listening on 127.0.0.1:8080 in its network namespace and keeps a TCP
# connection on loopback busy. After the restore the count goes on from
# where it stopped (no gap, no restart), the file offset of the open fd is
# where it was, the listening socket accepts and the connection carries on.
set -u
here=$(cd "$(dirname "$0")" && pwd)
RAILCAR=${RAILCAR:-$here/../../bin/railcar}
base=${CKPT_DIR:-/run/railcar-ckpt}
root=$base/state
bundle=$base/bundle
img=$base/img
work=$base/work
id=ckpt

rc() { "$RAILCAR" --root "$root" "$@"; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2fs", b - a }'; }
fail() {
	echo "FAIL: $*"
	for f in "$work/dump.log" "$work/restore.log"; do
		[ -f "$f" ] && { echo "--- $f (errors)"; grep -n -B3 Error "$f" | tail -n 30; }
	done
	rc delete -f $id >/dev/null 2>&1
	exit 1
}
lines() { wc -l < "$bundle/rootfs/tmp/out"; }
last() { tail -n 1 "$bundle/rootfs/tmp/out"; }
# waitlines N: until the workload wrote at least N lines.
waitlines() {
	i=0
	while [ "$(lines 2>/dev/null || echo 0)" -lt "$1" ]; do
		i=$((i + 1)); [ $i -gt 300 ] && fail "workload wrote $(lines) lines, waited for $1"
		sleep 0.1
	done
}
pos() { sed -n 's/^pos:[[:space:]]*//p' "/proc/$1/fdinfo/3"; }
fetch() { rc exec $id wget -O - http://127.0.0.1:8080/ 2>/dev/null; }

echo "== $(uname -r), $(criu --version | head -n1)"
criu check || echo "(criu check reported problems; trying anyway)"

rm -rf "$base" && mkdir -p "$bundle/rootfs" "$work" || fail "make $base"
cd "$bundle" || fail "cd $bundle"
for d in bin proc dev sys tmp www; do mkdir -p rootfs/$d; done
cp /bin/busybox rootfs/bin/ || fail "busybox-static is needed"
for a in sh sleep httpd wget cat echo ip nc; do ln -s busybox rootfs/bin/$a; done
echo "hello from the container" > rootfs/www/index.html
cat > rootfs/bin/work <<'EOF'
#!/bin/sh
exec </dev/null >/tmp/log 2>&1 3>/tmp/out
# railcar leaves the loopback of a new network namespace down (runc brings
# it up): bring it up for the listening socket.
ip link set lo up
httpd -f -p 127.0.0.1:8080 -h /www &
# An established TCP connection on loopback: a client sends "msg N" lines
# to a server that writes them to /tmp/recv.
sleep 1000000 | nc -l -p 9000 > /tmp/recv &
sleep 0.5
(j=0; while :; do j=$((j + 1)); echo "msg $j"; sleep 0.5; done) | nc 127.0.0.1 9000 &
i=0
while :; do
	i=$((i + 1))
	echo "tick $i" >&3
	sleep 0.3
done
EOF
chmod +x rootfs/bin/work
rc spec || fail "railcar spec"
sed -i -e 's/"terminal": true/"terminal": false/' -e 's/"readonly": true/"readonly": false/' \
	-e 's/"sh"$/"\/bin\/work"/' config.json
grep -q '"/bin/work"' config.json || fail "could not edit config.json"
# CAP_NET_ADMIN for `ip link set lo up`.
sed -i 's/"CAP_KILL",/"CAP_KILL", "CAP_NET_ADMIN",/g' config.json

echo "== run"
rc run -d $id </dev/null >/dev/null 2>&1 || fail "run"
waitlines 5
out=$(fetch) || fail "httpd does not answer before the checkpoint"
echo "before: GET / -> $out"
pid1=$(rc state $id | sed -n 's/.*"pid": \([0-9]*\).*/\1/p')
echo "before: init pid $pid1, processes: $(rc ps $id 2>/dev/null | tr '\n' ' ')"

echo "== checkpoint"
t=$(now)
rc checkpoint --tcp-established --image-path "$img" --work-path "$work" $id || fail "checkpoint"
echo "checkpoint took $(elapsed "$t"); images: $(ls "$img" | wc -l) files, $(du -sh "$img" | cut -f1)"
rc state $id >/dev/null 2>&1 && fail "the container still exists after checkpoint"
n=$(lines); l=$(last)
sleep 1
[ "$(lines)" = "$n" ] || fail "the workload still runs after checkpoint"
echo "after checkpoint: container gone, out has $n lines, last \"$l\", nothing more written"
# The offset of fd 3 as dumped: bytes written so far.
size=$(wc -c < "$bundle/rootfs/tmp/out")

echo "== restore"
t=$(now)
rc restore -d --image-path "$img" --work-path "$work" -b "$bundle" $id || fail "restore"
echo "restore took $(elapsed "$t")"
st=$(rc state $id) || fail "state after restore"
pid2=$(echo "$st" | sed -n 's/.*"pid": \([0-9]*\).*/\1/p')
echo "after restore: status $(echo "$st" | sed -n 's/.*"status": "\(.*\)".*/\1/p'), init pid $pid2 (was $pid1)"
p=$(pos "$pid2")
echo "after restore: fd 3 offset $p (file size at checkpoint $size)"
[ "$p" -ge "$size" ] || fail "fd 3 offset $p went back (was $size)"

waitlines $((n + 5))
echo "after restore: out has $(lines) lines, last \"$(last)\""
# Every line is "tick i" for i = 1, 2, ...: the count went on, the offset
# was kept (no line overwritten, none duplicated).
awk '$0 != "tick " NR { print "line " NR ": " $0; bad = 1 } END { exit bad }' "$bundle/rootfs/tmp/out" ||
	fail "the count did not go on from where it stopped"
sed -n "$((n - 1)),$((n + 2))p" "$bundle/rootfs/tmp/out" | tr '\n' ' '; echo "(lines $((n - 1))-$((n + 2)))"
# The restore repeats --tcp-established on its own (recorded at dump).
r=$(wc -l < "$bundle/rootfs/tmp/recv")
sleep 2
awk '$0 != "msg " NR { print "line " NR ": " $0; bad = 1 } END { exit bad || NR == 0 }' "$bundle/rootfs/tmp/recv" ||
	fail "the TCP connection did not carry on"
[ "$(wc -l < "$bundle/rootfs/tmp/recv")" -gt "$r" ] || fail "nothing more came through the TCP connection"
echo "after restore: the established connection carries on ($r -> $(wc -l < "$bundle/rootfs/tmp/recv") messages, in order)"
out=$(fetch) || fail "httpd does not answer after the restore"
echo "after restore: GET / -> $out"
[ "$out" = "hello from the container" ] || fail "unexpected answer $out"

echo "== checkpoint --leave-running"
rc checkpoint --tcp-established --leave-running --image-path "$img.lr" --work-path "$work" $id || fail "checkpoint --leave-running"
[ "$(rc state $id | sed -n 's/.*"status": "\(.*\)".*/\1/p')" = running ] || fail "not running after --leave-running"
n=$(lines)
waitlines $((n + 2))
echo "leave-running: still running and counting, last \"$(last)\""

echo "== pre-dump, then checkpoint --parent-path, restore"
t=$(now)
rc checkpoint --tcp-established --pre-dump --image-path "$img.pre" --work-path "$work" $id || fail "checkpoint --pre-dump"
echo "pre-dump took $(elapsed "$t"); still $(rc state $id | sed -n 's/.*"status": "\(.*\)".*/\1/p')"
n=$(lines)
waitlines $((n + 2))
t=$(now)
rc checkpoint --tcp-established --parent-path ../img.pre --image-path "$img.final" --work-path "$work" $id || fail "checkpoint --parent-path"
echo "final dump took $(elapsed "$t"); pages: pre-dump $(du -sh "$img.pre" | cut -f1), final $(du -sh "$img.final" | cut -f1)"
n=$(lines)
rc restore -d --image-path "$img.final" --work-path "$work" -b "$bundle" $id || fail "restore of the pre-dumped checkpoint"
waitlines $((n + 3))
awk '$0 != "tick " NR { print "line " NR ": " $0; bad = 1 } END { exit bad }' "$bundle/rootfs/tmp/out" ||
	fail "the count did not go on after the pre-dump round"
out=$(fetch) || fail "httpd does not answer after the pre-dump round"
echo "pre-dump round: count went on from $n to $(lines), GET / -> $out"

echo "== kill and delete the restored container"
rc kill $id KILL || fail "kill"
i=0
while [ "$(rc state $id | sed -n 's/.*"status": "\(.*\)".*/\1/p')" != stopped ]; do
	i=$((i + 1)); [ $i -gt 100 ] && fail "not stopped after kill"; sleep 0.1
done
rc delete $id || fail "delete"
rc state $id >/dev/null 2>&1 && fail "state after delete"
echo "PASS"
