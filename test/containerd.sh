#!/bin/bash
# test/containerd.sh start|stop|restart|status|env|logs
#
# A private containerd 2.4 for tests and the demo, apart from any system
# containerd: its own root, state, sockets, config and log.
#
#   socket   /run/railcar-test/containerd/containerd.sock
#   state    /run/railcar-test/containerd/state
#   root     /var/lib/railcar-test/containerd
#   config   /run/railcar-test/containerd/config.toml   (written on each start)
#   log      /run/railcar-test/containerd/containerd.log
#
# Runtimes registered (ctr --runtime, CRI handlers):
#   railcar  runtime_type io.containerd.railcar.v2: containerd-shim-railcar-v2
#            found through PATH, whose first entry is this checkout's bin/
#   runc     io.containerd.runc.v2 (containerd-shim-runc-v2 v2.4.2) with
#            BinaryName = /opt/railcar-test/bin/runc (v1.5.3)
# The CRI plugin is on, with overlayfs, a private CNI bridge and the sandbox
# image built by test/image/build.sh. Both test images are imported into the
# namespaces `default` and `k8s.io` on start.
#
# `eval "$(test/containerd.sh env)"` exports CONTAINERD_ADDRESS,
# CONTAINERD_NAMESPACE, RAILCAR_TEST_IMAGE, RAILCAR_TEST_PAUSE_IMAGE,
# RAILCAR_TEST_CONTAINERD_LOG and a PATH with the test tools.
# Every path can be moved with RAILCAR_TEST_CONTAINERD_DIR / _ROOT.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
PREFIX=${RAILCAR_TEST_PREFIX:-/opt/railcar-test}
TOOLS=$PREFIX/bin
DIR=${RAILCAR_TEST_CONTAINERD_DIR:-/run/railcar-test/containerd}
ROOT=${RAILCAR_TEST_CONTAINERD_ROOT:-/var/lib/railcar-test/containerd}
SOCK=$DIR/containerd.sock
CONFIG=$DIR/config.toml
LOG=$DIR/containerd.log
PIDFILE=$DIR/containerd.pid
IMAGE_DIR=$repo/_output/image
READY_TIMEOUT=${RAILCAR_TEST_CONTAINERD_TIMEOUT:-60}

DAEMON_PATH=$repo/bin:$TOOLS:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

log() { printf '==> containerd: %s\n' "$*"; }
die() { printf 'containerd.sh: error: %s\n' "$*" >&2; exit 1; }

ctr_() { "$TOOLS/ctr" --address "$SOCK" "$@"; }

pid() {
	local p
	[ -f "$PIDFILE" ] || return 1
	p=$(cat "$PIDFILE")
	[ -n "$p" ] && kill -0 "$p" 2>/dev/null || return 1
	# The pid may have been reused by something else.
	[ "$(readlink "/proc/$p/exe" 2>/dev/null)" = "$TOOLS/containerd" ] || return 1
	echo "$p"
}

responds() { timeout 10 "$TOOLS/ctr" --address "$SOCK" version >/dev/null 2>&1; }

image_name() { cat "$IMAGE_DIR/image-name"; }
pause_name() { cat "$IMAGE_DIR/pause-image-name"; }

write_config() {
	mkdir -p "$DIR/cni/net.d" "$ROOT"
	# A private bridge: pod addresses live only in network namespaces that
	# the tests create; no masquerading, no route out of the machine.
	cat >"$DIR/cni/net.d/10-railcar-test.conflist" <<-'EOF'
		{
		  "cniVersion": "1.0.0",
		  "name": "railcar-test",
		  "plugins": [
		    {
		      "type": "bridge",
		      "bridge": "rctest0",
		      "isGateway": true,
		      "ipMasq": false,
		      "hairpinMode": true,
		      "ipam": {
		        "type": "host-local",
		        "ranges": [[{"subnet": "10.242.77.0/24"}]],
		        "routes": [{"dst": "0.0.0.0/0"}]
		      }
		    },
		    {"type": "portmap", "capabilities": {"portMappings": true}},
		    {"type": "loopback"}
		  ]
		}
	EOF
	cat >"$CONFIG" <<-EOF
		# Written by test/containerd.sh; edits are lost on the next start.
		version = 4
		root = '$ROOT'
		state = '$DIR/state'
		imports = []
		disabled_plugins = [
		  'io.containerd.snapshotter.v1.btrfs',
		  'io.containerd.snapshotter.v1.zfs',
		  'io.containerd.snapshotter.v1.devmapper',
		  'io.containerd.snapshotter.v1.aufs',
		  'io.containerd.snapshotter.v1.blockfile',
		  'io.containerd.snapshotter.v1.erofs',
		  'io.containerd.differ.v1.erofs',
		  'io.containerd.tracing.processor.v1.otlp',
		  'io.containerd.internal.v1.tracing',
		]

		[debug]
		  level = 'info'

		[plugins]
		  [plugins.'io.containerd.server.v1.grpc']
		    address = '$SOCK'
		  [plugins.'io.containerd.server.v1.ttrpc']
		    address = '$SOCK.ttrpc'
		  [plugins.'io.containerd.server.v1.debug']
		    address = '$DIR/debug.sock'
		  [plugins.'io.containerd.internal.v1.opt']
		    path = '$ROOT/opt'
		  [plugins.'io.containerd.nri.v1.nri']
		    disable = true

		  [plugins.'io.containerd.cri.v1.images']
		    snapshotter = 'overlayfs'
		    [plugins.'io.containerd.cri.v1.images'.pinned_images]
		      sandbox = '$(pause_name)'

		  [plugins.'io.containerd.grpc.v1.cri']
		    stream_server_address = '127.0.0.1'
		    stream_server_port = '0'

		  [plugins.'io.containerd.cri.v1.runtime']
		    # CAP_SYS_RESOURCE is in no bounding set on these machines: without
		    # this every sandbox fails to lower oom_score_adj, for any runtime.
		    restrict_oom_score_adj = true
		    enable_selinux = false
		    disable_apparmor = true
		    [plugins.'io.containerd.cri.v1.runtime'.cni]
		      bin_dirs = ['/usr/lib/cni', '/opt/cni/bin']
		      conf_dir = '$DIR/cni/net.d'
		    [plugins.'io.containerd.cri.v1.runtime'.containerd]
		      default_runtime_name = 'runc'
		      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
		        runtime_type = 'io.containerd.runc.v2'
		        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
		          BinaryName = '$TOOLS/runc'
		      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.railcar]
		        runtime_type = 'io.containerd.railcar.v2'
	EOF
}

import_images() {
	local ns img have out
	[ -f "$IMAGE_DIR/images.tar" ] || "$here/image/build.sh"
	for ns in default k8s.io; do
		if ! out=$(ctr_ -n "$ns" images import "$IMAGE_DIR/images.tar" 2>&1); then
			printf '%s\n' "$out" >&2
			die "importing $IMAGE_DIR/images.tar into namespace $ns failed"
		fi
		# Listed into a variable first: grep -q closing the pipe early would
		# fail the pipeline under pipefail.
		have=$(ctr_ -n "$ns" images ls -q 2>/dev/null) || die "listing images in namespace $ns failed"
		for img in "$(image_name)" "$(pause_name)"; do
			grep -qxF "$img" <<<"$have" || die "$img missing in namespace $ns after import"
		done
	done
	log "images $(image_name), $(pause_name) in namespaces default, k8s.io"
}

start() {
	[ -x "$TOOLS/containerd" ] && [ -x "$TOOLS/ctr" ] || die "containerd not installed in $TOOLS: run make setup"
	"$here/image/build.sh"
	if pid >/dev/null && responds; then
		log "already running (pid $(pid)), $SOCK"
		if tr '\0' '\n' <"/proc/$(pid)/environ" | grep -qxF "PATH=$DAEMON_PATH"; then
			import_images
			return
		fi
		# Its railcar shim would be another checkout's: start afresh.
		log "running (pid $(pid)) from another checkout: restarting it with $repo/bin"
	fi
	stop_daemon quiet
	mkdir -p "$DIR"
	write_config
	rm -f "$SOCK" "$SOCK.ttrpc"
	log "starting $("$TOOLS/containerd" --version | cut -d' ' -f3) on $SOCK (log $LOG)"
	# setsid + every fd redirected: the daemon must not hold the caller's
	# terminal or pipes (a CI runner waits for those to close).
	env -i PATH="$DAEMON_PATH" HOME=/root TMPDIR=/tmp \
		setsid "$TOOLS/containerd" --config "$CONFIG" </dev/null >>"$LOG" 2>&1 &
	echo $! >"$PIDFILE"
	local i=0
	until responds; do
		if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
			tail -n 40 "$LOG" >&2
			die "containerd exited during start-up"
		fi
		i=$((i + 1))
		if [ "$i" -ge "$READY_TIMEOUT" ]; then
			tail -n 40 "$LOG" >&2
			die "containerd did not answer on $SOCK within ${READY_TIMEOUT}s"
		fi
		sleep 1
	done
	log "ready after ~${i}s (pid $(cat "$PIDFILE"))"
	import_images
}

# Remove what tests left in the namespaces (tasks first, then containers), so
# shims do not outlive the daemon.
cleanup_namespaces() {
	local ns c
	for ns in $(timeout 10 "$TOOLS/ctr" --address "$SOCK" namespaces ls -q 2>/dev/null); do
		for c in $(timeout 10 "$TOOLS/ctr" --address "$SOCK" -n "$ns" tasks ls -q 2>/dev/null); do
			timeout 10 "$TOOLS/ctr" --address "$SOCK" -n "$ns" tasks kill -s SIGKILL "$c" >/dev/null 2>&1 || true
			timeout 20 "$TOOLS/ctr" --address "$SOCK" -n "$ns" tasks delete -f "$c" >/dev/null 2>&1 || true
		done
		for c in $(timeout 10 "$TOOLS/ctr" --address "$SOCK" -n "$ns" containers ls -q 2>/dev/null); do
			timeout 20 "$TOOLS/ctr" --address "$SOCK" -n "$ns" containers rm "$c" >/dev/null 2>&1 || true
		done
	done
}

stop_daemon() {
	local p i
	p=$(pid) || { rm -f "$PIDFILE"; [ "${1:-}" = quiet ] || log "not running"; return 0; }
	responds && cleanup_namespaces
	kill -TERM "$p" 2>/dev/null || true
	for i in $(seq 1 30); do
		kill -0 "$p" 2>/dev/null || break
		sleep 1
	done
	if kill -0 "$p" 2>/dev/null; then
		log "did not stop on SIGTERM in 30s; SIGKILL"
		kill -KILL "$p" 2>/dev/null || true
	fi
	rm -f "$PIDFILE"
	log "stopped (pid $p)"
}

env_() {
	cat <<-EOF
		export CONTAINERD_ADDRESS='$SOCK'
		export CONTAINERD_NAMESPACE=default
		export RAILCAR_TEST_CONTAINERD_LOG='$LOG'
		export RAILCAR_TEST_IMAGE='$(image_name 2>/dev/null || echo docker.io/library/busybox:railcar-test)'
		export RAILCAR_TEST_PAUSE_IMAGE='$(pause_name 2>/dev/null || echo docker.io/railcar/pause:test)'
		export RAILCAR_TEST_BUNDLE='$IMAGE_DIR/bundle'
		export PATH='$repo/bin:$TOOLS':"\$PATH"
	EOF
}

case "${1:-}" in
start) start ;;
stop) stop_daemon ;;
restart) stop_daemon && start ;;
status)
	if p=$(pid) && responds; then echo "running (pid $p) on $SOCK"; else echo "not running"; exit 1; fi ;;
env) env_ ;;
logs) tail -n "${2:-100}" "$LOG" ;;
*) echo "usage: $0 start|stop|restart|status|env|logs [N]" >&2; exit 2 ;;
esac
