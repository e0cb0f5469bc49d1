#!/bin/bash
# test/cri/daemons.sh start|stop|status|env|logs: the daemons critest and
# probe-bench talk to, apart from test/containerd.sh's and any system
# containerd:
#
#   registry    distribution v3 on $CRI_REGISTRY_ADDR (127.0.0.1:5117, plain
#               HTTP, loopback only), storage /var/lib/railcar-cri/registry,
#               holding the images test/cri/images.sh builds offline
#   containerd  v2.4.2 from /opt/railcar-test/bin, socket
#               /run/railcar-cri/containerd.sock, root /var/lib/railcar-cri/containerd,
#               CRI plugin on, runtimes (CRI handlers):
#                 railcar  io.containerd.railcar.v2, this checkout's bin/
#                          shim, config /run/railcar-cri/railcar.toml through
#                          RAILCAR_SHIM_CONFIG (no options table: see below)
#                 runc     io.containerd.runc.v2 with runc v1.5.3
#               registry.config_path = /run/railcar-cri/certs.d: registry.k8s.io,
#               k8s.gcr.io and gcr.io all resolve to the local registry.
#               A private CNI bridge (rccri0, 10.242.78.0/24): pods reach
#               each other and the host, nothing routes out of the machine.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
PREFIX=${RAILCAR_TEST_PREFIX:-/opt/railcar-test}
TOOLS=$PREFIX/bin
CRI_BIN=$PREFIX/cri/bin
DIR=${CRI_DIR:-/run/railcar-cri}
ROOT=${CRI_ROOT:-/var/lib/railcar-cri}
REGISTRY_ADDR=${CRI_REGISTRY_ADDR:-127.0.0.1:5117}
SANDBOX_IMAGE=${CRI_SANDBOX_IMAGE:-registry.k8s.io/pause:3.10.1}
SOCK=$DIR/containerd.sock
CONFIG=$DIR/config.toml
LOG=$DIR/containerd.log
REG_LOG=$DIR/registry.log
MIRRORED_HOSTS="registry.k8s.io k8s.gcr.io gcr.io"
DAEMON_PATH=$repo/bin:$TOOLS:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

log() { printf '==> cri daemons: %s\n' "$*"; }
die() { printf 'cri daemons: error: %s\n' "$*" >&2; exit 1; }

# alive PIDFILE EXE: print the pid when it runs EXE.
alive() {
	local p
	[ -f "$1" ] && p=$(cat "$1") && [ -n "$p" ] && kill -0 "$p" 2>/dev/null &&
		[ "$(readlink "/proc/$p/exe" 2>/dev/null)" = "$2" ] && echo "$p"
}

# stop_pid PIDFILE EXE NAME
stop_pid() {
	local p i
	p=$(alive "$1" "$2") || { rm -f "$1"; return 0; }
	kill -TERM "$p" 2>/dev/null || true
	for i in $(seq 1 30); do kill -0 "$p" 2>/dev/null || break; sleep 1; done
	kill -0 "$p" 2>/dev/null && { log "$3 ignored SIGTERM for 30s; SIGKILL"; kill -KILL "$p" 2>/dev/null || true; }
	rm -f "$1"
	log "$3 stopped (pid $p)"
}

registry_up() { curl -fsS -o /dev/null "http://$REGISTRY_ADDR/v2/" 2>/dev/null; }

start_registry() {
	if alive "$DIR/registry.pid" "$CRI_BIN/registry" >/dev/null && registry_up; then
		log "registry already running on $REGISTRY_ADDR"
		return
	fi
	registry_up && die "something else answers on $REGISTRY_ADDR (set CRI_REGISTRY_ADDR)"
	mkdir -p "$DIR" "$ROOT/registry"
	cat >"$DIR/registry.yml" <<-YML
		version: 0.1
		log:
		  level: warn
		storage:
		  filesystem:
		    rootdirectory: $ROOT/registry
		  delete:
		    enabled: true
		http:
		  addr: $REGISTRY_ADDR
	YML
	env -i PATH=/usr/bin:/bin HOME=/root OTEL_TRACES_EXPORTER=none \
		setsid "$CRI_BIN/registry" serve "$DIR/registry.yml" </dev/null >>"$REG_LOG" 2>&1 &
	echo $! >"$DIR/registry.pid"
	local i
	for i in $(seq 1 30); do registry_up && break; sleep 1; done
	registry_up || { tail -n 20 "$REG_LOG" >&2; die "registry did not answer on $REGISTRY_ADDR"; }
	log "registry on $REGISTRY_ADDR (pid $(cat "$DIR/registry.pid"))"
}

write_config() {
	local h
	mkdir -p "$DIR/cni/net.d" "$ROOT/containerd"
	rm -rf "$DIR/certs.d"
	for h in $MIRRORED_HOSTS; do
		mkdir -p "$DIR/certs.d/$h"
		cat >"$DIR/certs.d/$h/hosts.toml" <<-EOF
			# $h is served by the local registry (test/cri/images.sh).
			server = "http://$REGISTRY_ADDR"
			[host."http://$REGISTRY_ADDR"]
			  capabilities = ["pull", "resolve"]
		EOF
	done
	cat >"$DIR/railcar.toml" <<-EOF
		# containerd-shim-railcar-v2's config (ConfigPath of the railcar runtime).
		systemd_cgroup = false
		rc_init = false
		log_level = "info"
		state_root = "$DIR/railcar"
	EOF
	cat >"$DIR/cni/net.d/10-railcar-cri.conflist" <<-'EOF'
		{
		  "cniVersion": "1.0.0",
		  "name": "railcar-cri",
		  "plugins": [
		    {
		      "type": "bridge",
		      "bridge": "rccri0",
		      "isGateway": true,
		      "ipMasq": false,
		      "hairpinMode": true,
		      "ipam": {
		        "type": "host-local",
		        "ranges": [[{"subnet": "10.242.78.0/24"}]],
		        "routes": [{"dst": "0.0.0.0/0"}]
		      }
		    },
		    {"type": "portmap", "capabilities": {"portMappings": true}},
		    {"type": "loopback"}
		  ]
		}
	EOF
	cat >"$CONFIG" <<-EOF
		# Written by test/cri/daemons.sh; edits are lost on the next start.
		version = 4
		root = '$ROOT/containerd'
		state = '$DIR/state'
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
		    path = '$ROOT/containerd/opt'
		  # NRI on a private socket: critest's NRI specs connect a plugin there.
		  [plugins.'io.containerd.nri.v1.nri']
		    disable = false
		    socket_path = '$DIR/nri.sock'
		    plugin_path = '$DIR/nri/plugins'
		    plugin_config_path = '$DIR/nri/conf.d'

		  [plugins.'io.containerd.cri.v1.images']
		    snapshotter = 'overlayfs'
		    [plugins.'io.containerd.cri.v1.images'.pinned_images]
		      sandbox = '$SANDBOX_IMAGE'
		    [plugins.'io.containerd.cri.v1.images'.registry]
		      config_path = '$DIR/certs.d'

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
		      # No options table for railcar: containerd 2.4 starts a container
		      # of a pod with a user namespace only when the runtime's options
		      # are runc's (client.WithUIDOwner), so a ConfigPath fails every
		      # such container. The shim finds its file through
		      # RAILCAR_SHIM_CONFIG, in containerd's environment, instead.
		      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.railcar]
		        runtime_type = 'io.containerd.railcar.v2'
	EOF
}

responds() { timeout 10 "$TOOLS/ctr" --address "$SOCK" version >/dev/null 2>&1; }

start_containerd() {
	if alive "$DIR/containerd.pid" "$TOOLS/containerd" >/dev/null && responds; then
		log "containerd already running on $SOCK"
		return
	fi
	[ -x "$TOOLS/containerd" ] || die "containerd not installed in $TOOLS: run make setup"
	[ -x "$repo/bin/containerd-shim-railcar-v2" ] || die "bin/containerd-shim-railcar-v2 missing: run make build"
	write_config
	rm -f "$SOCK" "$SOCK.ttrpc"
	env -i PATH="$DAEMON_PATH" HOME=/root TMPDIR=/tmp RAILCAR_SHIM_CONFIG="$DIR/railcar.toml" \
		setsid "$TOOLS/containerd" --config "$CONFIG" </dev/null >>"$LOG" 2>&1 &
	echo $! >"$DIR/containerd.pid"
	local i
	for i in $(seq 1 60); do
		responds && break
		kill -0 "$(cat "$DIR/containerd.pid")" 2>/dev/null || { tail -n 40 "$LOG" >&2; die "containerd exited during start-up"; }
		sleep 1
	done
	responds || { tail -n 40 "$LOG" >&2; die "containerd did not answer on $SOCK"; }
	log "containerd $("$TOOLS/containerd" --version | cut -d' ' -f3) on $SOCK (pid $(cat "$DIR/containerd.pid"), log $LOG)"
}

# Remove the pods critest or probe-bench left, so no shim outlives the daemon.
cleanup_pods() {
	local crictl=("$CRI_BIN/crictl" --runtime-endpoint "unix://$SOCK" --timeout 30s)
	local p
	for p in $("${crictl[@]}" pods -q 2>/dev/null); do
		"${crictl[@]}" stopp "$p" >/dev/null 2>&1 || true
		"${crictl[@]}" rmp -f "$p" >/dev/null 2>&1 || true
	done
}

start() {
	mkdir -p "$DIR"
	start_registry
	"$here/images.sh" "$REGISTRY_ADDR"
	start_containerd
}

stop() {
	if alive "$DIR/containerd.pid" "$TOOLS/containerd" >/dev/null; then
		responds && cleanup_pods
		stop_pid "$DIR/containerd.pid" "$TOOLS/containerd" containerd
	fi
	stop_pid "$DIR/registry.pid" "$CRI_BIN/registry" registry
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status)
	ok=0
	if alive "$DIR/registry.pid" "$CRI_BIN/registry" >/dev/null && registry_up; then echo "registry running on $REGISTRY_ADDR"; else echo "registry not running"; ok=1; fi
	if alive "$DIR/containerd.pid" "$TOOLS/containerd" >/dev/null && responds; then echo "containerd running on $SOCK"; else echo "containerd not running"; ok=1; fi
	exit $ok ;;
env)
	echo "export CRI_ENDPOINT='unix://$SOCK'"
	echo "export CRI_CONTAINERD_LOG='$LOG'"
	echo "export CRI_NRI_SOCKET='$DIR/nri.sock'"
	echo "export CONTAINERD_ADDRESS='$SOCK'"
	echo "export PATH='$CRI_BIN:$repo/bin:$TOOLS':\"\$PATH\"" ;;
logs) tail -n "${2:-100}" "$LOG" ;;
*) echo "usage: $0 start|stop|status|env|logs [N]" >&2; exit 2 ;;
esac
