#!/bin/sh
# Runs this package's tests on a pure cgroup v2 host: Debian's kernel under
# qemu (test/vm.sh). Needs root and the Debian packages qemu-system-x86
# linux-image-amd64 busybox-static cpio.
#   linux/cgroup/testdata/v2-vm.sh [go test flags, e.g. -test.run V2]
set -eu
pkg=$(cd "$(dirname "$0")/.." && pwd)
work=${CGROUP_VM_DIR:-/var/tmp/railcar-cgroup-vm}
mkdir -p "$work"
(cd "$pkg" && go test -c -o "$work/cgtest" .)
cat > "$work/guest.sh" <<GUEST
echo "CONTROLLERS: \$(cat /sys/fs/cgroup/cgroup.controllers)"
cd "$pkg" && exec "$work/cgtest" -test.v -test.timeout 300s "\$@"
GUEST
VM_DIR=$work/vm VM_TIMEOUT=600 exec "$pkg/../../test/vm.sh" "$work/guest.sh" "$@"
