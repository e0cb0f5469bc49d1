#!/bin/bash
# test/legacy/run.sh: the shim under the daemons that speak the old start
# handshake and task API v2 only: Debian's containerd 1.6.20 and containerd
# 1.7.35 (built from the Go module proxy's copy of its module).
#
# Each daemon runs with its own root, state, socket and PATH; the core
# scenarios run through its own ctr with io.containerd.railcar.v2 and, in the
# same run, io.containerd.runc.v2 (the daemon's own runc shim with runc
# 1.5.3). The script prints a table and fails when railcar fails a scenario.
#
# Environment:
#   DAEMONS   "1.6 1.7" (default both)
#   RUNTIMES  "runc railcar" (default both)
#   WORK      scratch directory (default _output/legacy)
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
PREFIX=${RAILCAR_TEST_PREFIX:-/opt/railcar-test}
DAEMONS=${DAEMONS:-1.6 1.7}
RUNTIMES=${RUNTIMES:-runc railcar}
WORK=${WORK:-$repo/_output/legacy}
IMAGE=docker.io/library/busybox:railcar-test
IMAGES_TAR=$repo/_output/image/images.tar
C17_VERSION=v1.7.35

log() { printf '==> legacy: %s\n' "$*"; }
die() { printf 'legacy: error: %s\n' "$*" >&2; exit 2; }

[ "$(id -u)" = 0 ] || die "must run as root"
[ -x "$repo/bin/containerd-shim-railcar-v2" ] || die "bin/containerd-shim-railcar-v2 missing: make build"
[ -x "$PREFIX/bin/runc" ] || die "$PREFIX/bin/runc missing: make setup"
[ -f "$IMAGES_TAR" ] || "$repo/test/image/build.sh" >/dev/null || die "test image build failed"
case ":$PATH:" in *:/usr/local/go/bin:*) ;; *) PATH=/usr/local/go/bin:$PATH ;; esac
: "${HOME:=/root}"
export HOME GOTOOLCHAIN=local GOFLAGS=-buildvcs=false

# install_16: Debian's containerd package, unpacked under $PREFIX (never
# installed into the system, so no service starts and nothing is replaced).
install_16() {
	local dst=$PREFIX/containerd-1.6 deb tmp
	if [ -x "$dst/usr/bin/containerd" ]; then return; fi
	log "containerd 1.6: unpacking Debian's package into $dst"
	tmp=$(mktemp -d)
	(cd "$tmp" && apt-get download -q containerd >/dev/null 2>&1) ||
		{ apt-get -o DPkg::Lock::Timeout=300 update -q >/dev/null && (cd "$tmp" && apt-get download -q containerd >/dev/null); } ||
		die "apt-get download containerd failed"
	deb=$(ls "$tmp"/containerd_*.deb) || die "no containerd .deb downloaded"
	rm -rf "$dst.tmp" && mkdir -p "$dst.tmp"
	dpkg-deb -x "$deb" "$dst.tmp" && mv "$dst.tmp" "$dst"
	rm -rf "$tmp"
}

# install_17: containerd, ctr and containerd-shim-runc-v2 of 1.7.35, built
# in a copy of the module (its go.mod has exclude directives, so `go
# install pkg@version` refuses it).
install_17() {
	local dst=$PREFIX/containerd-1.7/bin b src tmp
	if [ -x "$dst/containerd" ] && [ -x "$dst/ctr" ] && [ -x "$dst/containerd-shim-runc-v2" ]; then return; fi
	log "containerd $C17_VERSION: building (a few minutes)"
	src=$(go mod download -json "github.com/containerd/containerd@$C17_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	[ -d "$src" ] || die "go mod download of containerd $C17_VERSION gave no directory"
	tmp=$(mktemp -d)
	cp -r "$src/." "$tmp/" && chmod -R u+w "$tmp"
	mkdir -p "$dst"
	for b in containerd ctr containerd-shim-runc-v2; do
		(cd "$tmp" && CGO_ENABLED=0 go build -mod=mod -tags no_btrfs,no_devmapper,no_zfs,no_aufs \
			-o "$dst/$b.tmp" "./cmd/$b") || { rm -rf "$tmp"; die "build of $b $C17_VERSION failed"; }
		mv "$dst/$b.tmp" "$dst/$b"
	done
	rm -rf "$tmp"
}

# daemon_bin VERSION: the directory with that daemon's binaries.
daemon_bin() {
	case "$1" in
	1.6) echo "$PREFIX/containerd-1.6/usr/bin" ;;
	1.7) echo "$PREFIX/containerd-1.7/bin" ;;
	esac
}

DIR="" PID="" CTR=()
start_daemon() {
	local v=$1 bin pathdir i
	bin=$(daemon_bin "$v")
	DIR=$WORK/$v
	rm -rf "$DIR/state" "$DIR/path"
	mkdir -p "$DIR/root" "$DIR/state" "$DIR/path"
	# One directory on PATH: the shims and runc this run means, nothing else.
	pathdir=$DIR/path
	ln -s "$bin/containerd-shim-runc-v2" "$pathdir/containerd-shim-runc-v2"
	ln -s "$repo/bin/containerd-shim-railcar-v2" "$pathdir/containerd-shim-railcar-v2"
	ln -s "$PREFIX/bin/runc" "$pathdir/runc"
	cat >"$DIR/config.toml" <<-EOF
		version = 2
		root = "$DIR/root"
		state = "$DIR/state"
		disabled_plugins = ["io.containerd.grpc.v1.cri"]
		[grpc]
		  address = "$DIR/state/containerd.sock"
		[ttrpc]
		  address = "$DIR/state/containerd.sock.ttrpc"
		[debug]
		  address = "$DIR/state/debug.sock"
		[plugins."io.containerd.internal.v1.opt"]
		  path = "$DIR/root/opt"
	EOF
	PATH=$pathdir:/usr/sbin:/usr/bin:/sbin:/bin "$bin/containerd" --config "$DIR/config.toml" \
		>"$DIR/containerd.log" 2>&1 &
	PID=$!
	CTR=("$bin/ctr" --address "$DIR/state/containerd.sock" -n legacy)
	for i in $(seq 100); do
		"${CTR[@]}" version >/dev/null 2>&1 && break
		kill -0 "$PID" 2>/dev/null || { tail -20 "$DIR/containerd.log" >&2; die "containerd $v exited"; }
		sleep 0.1
	done
	"${CTR[@]}" version >/dev/null 2>&1 || die "containerd $v did not answer"
	"${CTR[@]}" images import --all-platforms "$IMAGES_TAR" >/dev/null 2>&1 ||
		"${CTR[@]}" images import "$IMAGES_TAR" >/dev/null || die "image import into containerd $v failed"
	log "containerd $v: $("${CTR[@]}" version 2>/dev/null | awk '/Server/ {s=1} s && /Version/ {print $2; exit}') (pid $PID)"
}

stop_daemon() {
	local c
	[ -n "$PID" ] || return 0
	for c in $("${CTR[@]}" tasks ls -q 2>/dev/null); do "${CTR[@]}" tasks kill -s KILL "$c" >/dev/null 2>&1; done
	sleep 0.3
	for c in $("${CTR[@]}" containers ls -q 2>/dev/null); do
		"${CTR[@]}" tasks delete -f "$c" >/dev/null 2>&1
		"${CTR[@]}" containers delete "$c" >/dev/null 2>&1
	done
	kill "$PID" 2>/dev/null
	wait "$PID" 2>/dev/null
	PID=""
	# Mounts the daemon left (snapshots, shm) go with it.
	awk -v d="$DIR/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null
}
trap stop_daemon EXIT

# Scenarios: each prints nothing on success and the reason on failure.
# $RT is the runtime type, $ID a fresh container id.
c() { timeout 60 "${CTR[@]}" "$@" 2>&1; }
wait_status() {
	local want=$1 i s
	for i in $(seq 50); do
		s=$(c tasks ls | awk -v id="$ID" '$1 == id {print $3}')
		[ "$s" = "$want" ] && return 0
		sleep 0.1
	done
	echo "task status $s, want $want"
	return 1
}
sleeper() { c run -d --runtime "$RT" "$IMAGE" "$ID" sleep 300 >/dev/null || { echo "run -d failed"; return 1; }; wait_status RUNNING; }
finish() {
	c tasks kill -s KILL "$ID" >/dev/null
	wait_status STOPPED || return 1
	c tasks delete "$ID" >/dev/null || { echo "tasks delete failed"; return 1; }
	c containers delete "$ID" >/dev/null || { echo "containers delete failed"; return 1; }
}

t_run_output() {
	local out
	out=$(c run --rm --runtime "$RT" "$IMAGE" "$ID" echo hello from railcar)
	[ "$out" = "hello from railcar" ] || echo "output: $out"
}
t_exit_code() {
	c run --rm --runtime "$RT" "$IMAGE" "$ID" sh -c 'exit 7' >/dev/null
	local rc=$?
	[ $rc = 7 ] || echo "exit code $rc, want 7"
}
t_exec() {
	local out rc
	sleeper || return
	out=$(c tasks exec --exec-id e1 "$ID" sh -c 'echo in $(cat /proc/1/comm); exit 3')
	rc=$?
	[ $rc = 3 ] || echo "exec exit code $rc, want 3"
	[ "$out" = "in sleep" ] || echo "exec output: $out"
	finish
}
t_exec_tty() {
	local out
	sleeper || return
	out=$(timeout 60 script -qec "${CTR[*]} tasks exec -t --exec-id t1 $ID tty" /dev/null | tr -cd '[:print:]\n')
	case "$out" in *"/dev/pts/"*) ;; *) echo "exec -t: tty said: $out" ;; esac
	finish
}
t_run_tty() {
	local out
	out=$(timeout 60 script -qec "${CTR[*]} run --rm -t --runtime $RT $IMAGE $ID tty" /dev/null | tr -cd '[:print:]\n')
	case "$out" in *"/dev/pts/"*) ;; *) echo "run -t: tty said: $out" ;; esac
}
t_pause_resume() {
	sleeper || return
	c tasks pause "$ID" >/dev/null || { echo "pause failed"; finish; return; }
	wait_status PAUSED || { finish; return; }
	c tasks resume "$ID" >/dev/null || echo "resume failed"
	wait_status RUNNING
	finish
}
t_ps_metrics() {
	local out
	sleeper || return
	out=$(c tasks ps "$ID" | awk 'NR > 1 {print $1}')
	[ -n "$out" ] || echo "tasks ps listed no pid"
	out=$(c tasks metrics "$ID")
	grep -q 'memory' <<<"$out" || echo "tasks metrics: $out"
	finish
}
t_kill() {
	sleeper || return
	c tasks kill -s TERM "$ID" >/dev/null || echo "kill failed"
	# busybox sleep as PID 1 ignores TERM, as under runc: then KILL.
	sleep 0.3
	c tasks kill -s KILL "$ID" >/dev/null
	wait_status STOPPED || return
	c tasks delete "$ID" >/dev/null || echo "tasks delete failed"
	c containers delete "$ID" >/dev/null || echo "containers delete failed"
}
t_many() {
	local i base=$ID
	for i in 1 2 3 4 5; do ID=$base-$i sleeper || return; done
	[ "$(c tasks ls | grep -c RUNNING)" -ge 5 ] || echo "fewer than 5 running"
	for i in 1 2 3 4 5; do ID=$base-$i finish; done
}

SCENARIOS="run_output exit_code exec exec_tty run_tty pause_resume ps_metrics kill many"
declare -A TYPE=([railcar]=io.containerd.railcar.v2 [runc]=io.containerd.runc.v2)
declare -A RESULT
mkdir -p "$WORK"
fail=0 n=0
for v in $DAEMONS; do
	case "$v" in 1.6) install_16 ;; 1.7) install_17 ;; *) die "unknown daemon $v" ;; esac
	start_daemon "$v"
	for rt in $RUNTIMES; do
		RT=${TYPE[$rt]}
		for s in $SCENARIOS; do
			n=$((n + 1))
			ID=legacy-$s-$rt-$n
			why=$(t_$s 2>&1)
			if [ -z "$why" ]; then
				RESULT[$v,$rt,$s]=PASS
			else
				RESULT[$v,$rt,$s]=FAIL
				printf 'legacy: containerd %s, %s, %s: %s\n' "$v" "$rt" "$s" "$(tr '\n' ' ' <<<"$why")" >&2
				[ "$rt" = railcar ] && fail=1
			fi
		done
	done
	# No shim of this daemon outlives its tasks.
	sleep 0.5
	left=$(pgrep -f "containerd-shim-railcar-v2.*-address $DIR/state/containerd.sock" || true)
	if [ -n "$left" ]; then
		echo "legacy: containerd $v: railcar shims left: $left" >&2
		fail=1
	fi
	stop_daemon
done

printf '\n%-14s' scenario
for v in $DAEMONS; do for rt in $RUNTIMES; do printf '%-14s' "$v/$rt"; done; done
echo
for s in $SCENARIOS; do
	printf '%-14s' "$s"
	for v in $DAEMONS; do for rt in $RUNTIMES; do printf '%-14s' "${RESULT[$v,$rt,$s]:-}"; done; done
	echo
done
[ $fail = 0 ] && log "all scenarios passed for railcar" || log "railcar failed (see above)"
exit $fail
