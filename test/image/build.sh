#!/bin/bash
# test/image/build.sh [OUTDIR]: build the test image offline from Debian's
# busybox-static. Nothing is pulled from a registry.
#
# OUTDIR (default _output/image) receives:
#   rootfs/                 a root filesystem: /bin/busybox (static), every applet
#                           as a symlink to it, /etc/passwd, /etc/group
#   bundle/config.json      an OCI bundle around it (`runc spec`, no terminal,
#   bundle/rootfs -> ../rootfs   args: /bin/echo hello from railcar)
#   images.tar              an OCI image layout tarball holding two images:
#                             docker.io/library/busybox:railcar-test  (Cmd /bin/sh)
#                             docker.io/railcar/pause:test            (sleeps forever;
#                                                                      CRI sandbox image)
#                           `ctr images import images.tar` names them from the
#                           io.containerd.image.name annotation.
#
# The build is deterministic (fixed mtimes and owners), and skipped when the
# inputs (this script and the busybox binary) have not changed.
set -euo pipefail

IMAGE=${RAILCAR_TEST_IMAGE:-docker.io/library/busybox:railcar-test}
PAUSE_IMAGE=${RAILCAR_TEST_PAUSE_IMAGE:-docker.io/railcar/pause:test}

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
OUT=${1:-$repo/_output/image}
BUSYBOX=/bin/busybox

log() { printf '==> image: %s\n' "$*"; }
die() { printf 'image: error: %s\n' "$*" >&2; exit 1; }

[ -x "$BUSYBOX" ] || die "$BUSYBOX missing: apt-get install busybox-static (make setup)"
file_is_static() { ! LC_ALL=C readelf -l "$1" 2>/dev/null | grep -q 'Requesting program interpreter'; }
if command -v readelf >/dev/null && ! file_is_static "$BUSYBOX"; then
	die "$BUSYBOX is dynamically linked: install busybox-static"
fi

inputs=$(cat "$0" "$BUSYBOX" | sha256sum | cut -d' ' -f1)
inputs="$inputs $IMAGE $PAUSE_IMAGE"
if [ -f "$OUT/.inputs" ] && [ "$(cat "$OUT/.inputs")" = "$inputs" ] &&
	[ -f "$OUT/images.tar" ] && [ -x "$OUT/rootfs/bin/busybox" ]; then
	log "up to date in $OUT"
	exit 0
fi

mkdir -p "$(dirname "$OUT")"
work=$(mktemp -d "$(dirname "$OUT")/.image.XXXXXX")
trap 'rm -rf "$work"' EXIT

# --- root filesystem ---------------------------------------------------------
rootfs=$work/out/rootfs
mkdir -p "$rootfs"
(
	cd "$rootfs"
	mkdir -p bin sbin usr/bin usr/sbin etc root tmp dev proc sys run var/tmp home
	chmod 1777 tmp var/tmp
	chmod 700 root
	install -m 0755 "$BUSYBOX" bin/busybox
	# `busybox --install -s` would need /proc/self/exe inside the rootfs; the
	# full applet list gives the same links without running anything there.
	"$BUSYBOX" --list-full | while read -r path; do
		[ "$path" = bin/busybox ] && continue
		mkdir -p "$(dirname "$path")"
		ln -sf /bin/busybox "$path"
	done
	cat >etc/passwd <<-'EOF'
		root:x:0:0:root:/root:/bin/sh
		daemon:x:1:1:daemon:/usr/sbin:/bin/false
		nobody:x:65534:65534:nobody:/nonexistent:/bin/false
	EOF
	cat >etc/group <<-'EOF'
		root:x:0:
		daemon:x:1:
		tty:x:5:
		nogroup:x:65534:
	EOF
	echo railcar-test >etc/hostname
	printf '127.0.0.1\tlocalhost\n::1\tlocalhost\n' >etc/hosts
	: >etc/resolv.conf
)
[ -L "$rootfs/bin/sh" ] || die "applet links missing (no bin/sh)"

# --- OCI bundle ----------------------------------------------------------------
mkdir -p "$work/out/bundle"
ln -s ../rootfs "$work/out/bundle/rootfs"
cat >"$work/out/bundle/config.json" <<'EOF'
{
	"ociVersion": "1.0.2",
	"process": {
		"terminal": false,
		"user": {"uid": 0, "gid": 0},
		"args": ["/bin/echo", "hello from railcar"],
		"env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
		"cwd": "/",
		"capabilities": {
			"bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
			"effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
			"permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
		},
		"rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
		"noNewPrivileges": true
	},
	"root": {"path": "rootfs", "readonly": true},
	"hostname": "railcar",
	"mounts": [
		{"destination": "/proc", "type": "proc", "source": "proc"},
		{"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
		{"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
		{"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
		{"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
		{"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
		{"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
	],
	"linux": {
		"resources": {"devices": [{"allow": false, "access": "rwm"}]},
		"namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}],
		"maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
			"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
		"readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
	}
}
EOF

# --- OCI image layout ------------------------------------------------------------
layout=$work/layout
mkdir -p "$layout/blobs/sha256"

# put FILE MEDIATYPE: store FILE as a blob, print its descriptor JSON.
put() {
	local d size
	d=$(sha256sum "$1" | cut -d' ' -f1)
	size=$(stat -c %s "$1")
	mv "$1" "$layout/blobs/sha256/$d"
	printf '{"mediaType":"%s","digest":"sha256:%s","size":%s}' "$2" "$d" "$size"
}

layer_tar=$work/layer.tar
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=posix \
	--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
	-C "$rootfs" -cf "$layer_tar" .
diff_id=sha256:$(sha256sum "$layer_tar" | cut -d' ' -f1)
layer_desc=$(put "$layer_tar" application/vnd.oci.image.layer.v1.tar)

# image NAME CONFIG-JSON-OF-PROCESS: write config + manifest, print the
# manifest descriptor annotated with the image name.
image() {
	local name=$1 proc=$2 cfg=$work/config.json man=$work/manifest.json cdesc mdesc
	printf '{"architecture":"amd64","os":"linux","created":"1970-01-01T00:00:00Z","config":%s,"rootfs":{"type":"layers","diff_ids":["%s"]},"history":[{"created":"1970-01-01T00:00:00Z","created_by":"test/image/build.sh (Debian busybox-static)"}]}' \
		"$proc" "$diff_id" >"$cfg"
	cdesc=$(put "$cfg" application/vnd.oci.image.config.v1+json)
	printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":%s,"layers":[%s]}' \
		"$cdesc" "$layer_desc" >"$man"
	mdesc=$(put "$man" application/vnd.oci.image.manifest.v1+json)
	printf '%s,"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}' \
		"${mdesc%\}}" "$name" "${name##*:}"
}

env_path='"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"'
m1=$(image "$IMAGE" "{\"Env\":[$env_path],\"Cmd\":[\"/bin/sh\"],\"WorkingDir\":\"/\"}")
m2=$(image "$PAUSE_IMAGE" "{\"Env\":[$env_path],\"Entrypoint\":[\"/bin/sleep\",\"2147483647\"],\"WorkingDir\":\"/\",\"StopSignal\":\"SIGKILL\"}")
printf '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[%s,%s]}' \
	"$m1" "$m2" >"$layout/index.json"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$layout" -cf "$work/out/images.tar" .

printf '%s\n' "$IMAGE" >"$work/out/image-name"
printf '%s\n' "$PAUSE_IMAGE" >"$work/out/pause-image-name"
printf '%s\n' "$inputs" >"$work/out/.inputs"

# Swap the new output in; an old rootfs may still be a bundle somebody uses,
# so move it aside before removing it.
if [ -e "$OUT" ]; then
	mv "$OUT" "$work/old"
fi
mv "$work/out" "$OUT"
log "built $IMAGE and $PAUSE_IMAGE in $OUT ($(du -sh "$OUT/images.tar" | cut -f1) tarball)"
