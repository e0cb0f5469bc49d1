#!/bin/sh
# make checkpoint-test: checkpoint/restore through criu, in a qemu guest
# running Debian's kernel (Debian 12's criu 3.17 fails `criu check` on newer
# kernels, e.g. "vdso: Unexpected rt vDSO area bounds"). Installs what it
# needs, builds the engine's test binary, boots the guest (test/vm.sh)
# and runs there the engine tests that need criu and the CLI round
# trip (roundtrip.sh). Expects bin/railcar (make build). Root only.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
work=${CHECKPOINT_VM_DIR:-/var/tmp/railcar-checkpoint-vm}
# What runs in the guest: engine (go test), cli (roundtrip.sh), shim
# (shim.sh: ctr), podman (podman.sh).
parts=${CHECKPOINT_PARTS:-engine cli shim podman}
pkgs="qemu-system-x86 linux-image-amd64 busybox-static cpio criu"
case " $parts " in *" podman "*) pkgs="$pkgs podman containernetworking-plugins";; esac
# shellcheck source=test/apt.sh
. "$repo/test/apt.sh"
# shellcheck disable=SC2086
apt_ensure checkpoint-test $pkgs
mkdir -p "$work.bin"
(cd "$repo" && go test -c -tags "${BUILDTAGS:-seccomp}" -o "$work.bin/linux.test" ./linux/)
# Copies: others may rebuild bin/ while the guest runs.
cp "$repo/bin/railcar" "$work.bin/railcar"
cp "$repo/bin/containerd-shim-railcar-v2" "$work.bin/containerd-shim-railcar-v2"
# The image of the shim's round trip (containerd.sh imports it).
"$repo/test/image/build.sh" >/dev/null
# In the guest the binaries run from its tmpfs, not from the host's 9p share:
# the engine re-executes itself from a read-only overlay of its own binary,
# and an overlay on 9p made the guest kernel (6.1) lock up both CPUs in 2 of
# 5 runs here (soft lockups naming the test binary and the re-executed
# init, "1000": /proc/self/fd/1000).
gbin=/tmp/railcar-bin
cat > "$work.bin/guest.sh" <<GUEST
set -u
rc=0
mkdir -p $gbin
cp "$work.bin/linux.test" "$work.bin/railcar" "$work.bin/containerd-shim-railcar-v2" $gbin/
case " $parts " in *" engine "*)
	echo "== engine tests (go test ./linux/ -run 'Checkpoint|Restore')"
	(cd "$repo/linux" && "$gbin/linux.test" -test.v -test.count=1 -test.timeout 600s -test.run 'Checkpoint|Restore') > "$work.bin/gotest.txt" 2>&1 || rc=1
	grep -v '^=== RUN' "$work.bin/gotest.txt";;
esac
case " $parts " in *" cli "*)
	echo "== CLI round trip (test/checkpoint/roundtrip.sh)"
	RAILCAR="$gbin/railcar" /bin/sh "$here/roundtrip.sh" || rc=1;;
esac
case " $parts " in *" shim "*)
	echo "== containerd: ctr checkpoint and restore with the railcar shim (test/checkpoint/shim.sh)"
	SHIM="$gbin/containerd-shim-railcar-v2" /bin/bash "$here/shim.sh" || rc=1;;
esac
case " $parts " in *" podman "*)
	echo "== podman container checkpoint and restore with railcar (test/checkpoint/podman.sh)"
	RAILCAR="$gbin/railcar" /bin/bash "$here/podman.sh" || rc=1;;
esac
exit \$rc
GUEST
VM_DIR=$work exec "$repo/test/vm.sh" "$work.bin/guest.sh"
