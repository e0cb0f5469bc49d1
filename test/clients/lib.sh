# test/clients/lib.sh: daemons and helpers for run.sh. Sourced, not run.
#
# dockerd and podman run with roots, sockets and configuration of their own
# under $WORK, so they leave the host's docker and podman (if any) alone.

# --- image ---------------------------------------------------------------

# docker_archive IN OUT: the OCI layout tarball IN (test/image/build.sh)
# plus a docker-archive manifest.json, which `docker load` needs (podman
# loads both forms).
docker_archive() {
	local in=$1 out=$2 d
	d=$(mktemp -d "$WORK/archive.XXXXXX")
	tar -xf "$in" -C "$d"
	python3 - "$d" "$IMAGE" <<'EOF'
import json, sys, os
d, name = sys.argv[1], sys.argv[2]
blob = lambda dg: "blobs/" + dg.replace(":", "/")
idx = json.load(open(os.path.join(d, "index.json")))
out = []
for m in idx["manifests"]:
    ref = m.get("annotations", {}).get("io.containerd.image.name")
    if ref != name:
        continue
    man = json.load(open(os.path.join(d, blob(m["digest"]))))
    out.append({"Config": blob(man["config"]["digest"]),
                "RepoTags": [ref],
                "Layers": [blob(l["digest"]) for l in man["layers"]]})
json.dump(out, open(os.path.join(d, "manifest.json"), "w"))
EOF
	tar -cf "$out" -C "$d" .
	rm -rf "$d"
}

# --- dockerd -------------------------------------------------------------

DOCKER_SOCK=$WORK/docker/docker.sock
BRIDGE=rcclients0
BRIDGE_CIDR=172.31.251.1/24

docker_start() {
	local dd=$WORK/docker
	mkdir -p "$dd/data" "$dd/exec"
	if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
		ip link add "$BRIDGE" type bridge
		ip addr add "$BRIDGE_CIDR" dev "$BRIDGE"
		ip link set "$BRIDGE" up
	fi
	cat >"$dd/daemon.json" <<EOF
{
  "runtimes": {
    "railcar": {"path": "$RAILCAR"},
    "runc153": {"path": "$RUNC"}
  },
  "iptables": false,
  "ip-forward": false,
  "ip-masq": false,
  "bridge": "$BRIDGE",
  "storage-driver": "overlay2",
  "log-driver": "json-file"
}
EOF
	# Without /run/containerd/containerd.sock dockerd starts its own
	# containerd under --exec-root, so that one is private too.
	# PATH: Debian's containerd, its runc shim and docker-init first, not
	# the containerd 2.4 of test/setup.sh or a go install in ~/go/bin.
	PATH=/usr/sbin:/usr/bin:/sbin:/bin \
		dockerd --config-file "$dd/daemon.json" --data-root "$dd/data" \
		--exec-root "$dd/exec" --pidfile "$dd/docker.pid" \
		-H "unix://$DOCKER_SOCK" >"$dd/dockerd.log" 2>&1 &
	local i
	for i in $(seq 1 100); do
		docker_ info >/dev/null 2>&1 && return 0
		sleep 0.3
	done
	tail -20 "$dd/dockerd.log" >&2
	return 1
}

docker_stop() {
	local pid ids i
	pid=$(cat "$WORK/docker/docker.pid" 2>/dev/null) || return 0
	ids=$(docker_ ps -aq 2>/dev/null)
	[ -z "$ids" ] || docker_ rm -f $ids >/dev/null 2>&1 || true
	kill "$pid" 2>/dev/null || true
	# dockerd stops the containerd it started on its way out.
	for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
	rm -f "$WORK/docker/docker.pid"
	ip link del "$BRIDGE" 2>/dev/null || true
}

# docker_ runs Debian's docker client (20.10) against our daemon.
docker_() { /usr/bin/docker -H "unix://$DOCKER_SOCK" "$@"; }

# --- podman --------------------------------------------------------------

PODMAN_BRIDGE=rcclients1
PODMAN_CIDR=172.31.252.1/24

podman_setup() {
	local pd=$WORK/podman init=/usr/libexec/podman/catatonit
	mkdir -p "$pd/root" "$pd/runroot" "$pd/tmp" "$pd/cni" "$pd/cni-state"
	[ -x "$init" ] || init=$(command -v catatonit || command -v tini-static || command -v docker-init)
	local nofile nproc
	nofile=$(ulimit -Hn)
	nproc=$(ulimit -Hu)
	[ "$nproc" = unlimited ] || [ "$nproc" -gt "$(cat /proc/sys/kernel/pid_max)" ] &&
		nproc=$(cat /proc/sys/kernel/pid_max)
	cat >"$pd/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$pd/root"
runroot = "$pd/runroot"
EOF
	# default_ulimits: podman otherwise asks for 1048576 open files and
	# processes, which fails without CAP_SYS_RESOURCE in the caller's
	# bounding set (runc and railcar alike): ask for no more than the
	# runtime has, our hard limits (processes: podman runs the runtime
	# with at most kernel.pid_max).
	# netns none: only the network scenario asks for a network.
	# init_path: --init's init (Debian's podman does not pull in catatonit).
	# CNI rather than netavark, and a network of our own (rcnet, below), so
	# that podman leaves the host's netfilter and sysctls alone.
	cat >"$pd/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
netns = "none"
log_driver = "k8s-file"
init_path = "$init"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$pd/events.log"
tmp_dir = "$pd/tmp"
static_dir = "$pd/root/libpod"
volume_path = "$pd/root/volumes"
[network]
network_backend = "cni"
cni_plugin_dirs = ["/usr/lib/cni"]
network_config_dir = "$pd/cni"
EOF
	# rcnet: a bridge we address ourselves (the CNI bridge plugin as
	# gateway would turn on ip_forward), no masquerading, no firewall.
	if ! ip link show "$PODMAN_BRIDGE" >/dev/null 2>&1; then
		ip link add "$PODMAN_BRIDGE" type bridge
		ip addr add "$PODMAN_CIDR" dev "$PODMAN_BRIDGE"
		ip link set "$PODMAN_BRIDGE" up
	fi
	cat >"$pd/cni/rcnet.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "rcnet",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$PODMAN_BRIDGE",
      "isGateway": false,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$pd/cni-state",
        "ranges": [[{"subnet": "172.31.252.0/24", "gateway": "172.31.252.1",
                     "rangeStart": "172.31.252.10", "rangeEnd": "172.31.252.250"}]]
      }
    }
  ]
}
EOF
}

# podman_ RT args...: podman with our roots and the runtime RT (a path).
podman_() {
	local rt=$1
	shift
	CONTAINERS_CONF=$WORK/podman/containers.conf \
		CONTAINERS_STORAGE_CONF=$WORK/podman/storage.conf \
		podman --runtime "$rt" "$@"
}

podman_stop() {
	local rt ids
	for rt in "$RAILCAR" "$RUNC"; do
		ids=$(podman_ "$rt" ps -aq 2>/dev/null)
		[ -z "$ids" ] || podman_ "$rt" rm -f -t 0 $ids >/dev/null 2>&1 || true
	done
	ip link del "$PODMAN_BRIDGE" 2>/dev/null || true
}
