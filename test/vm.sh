#!/bin/sh
# Boots Debian's kernel under qemu (tcg) with the host's / shared over
# virtio-9p and runs a guest script there, as root, on a pure cgroup v2
# host with /run, /tmp, /dev/pts and loopback set up. For what this host's
# kernel cannot give: cgroup v2 (linux/cgroup/testdata/v2-vm.sh) and a
# kernel criu knows (test/checkpoint/; Debian 12's criu 3.17 fails `criu
# check` on newer ones). Needs root and the Debian packages qemu-system-x86
# linux-image-amd64 busybox-static cpio.
#   test/vm.sh GUEST-SCRIPT [ARGS...]
# VM_DIR (work directory, emptied), VM_KERNEL, VM_TIMEOUT (seconds).
# The guest script's output is printed; the exit status is the script's.
set -eu
work=${VM_DIR:-/var/tmp/railcar-vm}
kernel=${VM_KERNEL:-$(ls /boot/vmlinuz-*-amd64 2>/dev/null | sort -V | tail -n1)}
[ -n "$kernel" ] || { echo "vm.sh: no Debian kernel in /boot (apt-get install linux-image-amd64)"; exit 1; }
kver=${kernel#/boot/vmlinuz-}
mods=/lib/modules/$kver/kernel
script=$(readlink -f "$1"); shift
rm -rf "$work" && mkdir -p "$work/root/bin" "$work/root/mod" "$work/root/host" "$work/root/proc" "$work/root/sys" "$work/root/dev"

cp /bin/busybox "$work/root/bin/"
for a in sh mount insmod sed umount switch_root; do ln -s busybox "$work/root/bin/$a"; done
for m in fs/netfs/netfs.ko fs/fscache/fscache.ko net/9p/9pnet.ko drivers/virtio/virtio_ring.ko \
	drivers/virtio/virtio.ko drivers/virtio/virtio_pci_modern_dev.ko drivers/virtio/virtio_pci_legacy_dev.ko \
	drivers/virtio/virtio_pci.ko net/9p/9pnet_virtio.ko fs/9p/9p.ko; do
	cp "$mods/$m" "$work/root/mod/"
done
cat > "$work/root/init" <<'INIT'
#!/bin/sh
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in netfs fscache 9pnet virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci 9pnet_virtio 9p; do insmod /mod/$m.ko; done
mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288,cache=mmap host /host
cmd=$(sed -n 's/.*vmcmd=\([^ ]*\).*/\1/p' /proc/cmdline)
umount /proc /sys; mount --move /dev /host/dev
exec switch_root /host /usr/bin/env -i PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root /bin/sh "$cmd"
INIT
chmod +x "$work/root/init"
(cd "$work/root" && find . | cpio -o -H newc 2>/dev/null | gzip) > "$work/initramfs.gz"

args=""
for a in "$@"; do
	args="$args '$(printf %s "$a" | sed "s/'/'\\\\''/g")'"
done
cat > "$work/guest.sh" <<GUEST
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t cgroup2 none /sys/fs/cgroup
mount -t tmpfs tmpfs /run; mount -t tmpfs tmpfs /tmp
mkdir -p /dev/pts /dev/shm; mount -t devpts devpts /dev/pts -o newinstance,ptmxmode=0666; mount -t tmpfs tmpfs /dev/shm
ip link set lo up
/bin/sh "$script" $args > "$work/result.txt" 2>&1
echo "VMCMD-RC=\$?"; echo o > /proc/sysrq-trigger
GUEST

rc=0
timeout ${VM_TIMEOUT:-1800} qemu-system-x86_64 -accel tcg -m 2048 -smp 2 -nographic -no-reboot \
	-kernel "$kernel" -initrd "$work/initramfs.gz" \
	-append "console=ttyS0 quiet panic=-1 vmcmd=$work/guest.sh" \
	-virtfs local,path=/,mount_tag=host,security_model=passthrough,multidevs=remap,id=host \
	> "$work/console.txt" 2>&1 < /dev/null || rc=$?
cat "$work/result.txt" 2>/dev/null || true
if ! grep -q "VMCMD-RC=0" "$work/console.txt"; then
	echo "vm.sh: guest failed (qemu status $rc); console: $work/console.txt"
	grep -a "VMCMD-RC" "$work/console.txt" || tail -n 20 "$work/console.txt"
	exit 1
fi
