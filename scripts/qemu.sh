#!/usr/bin/env bash
# Boots the image built by scripts/image.sh under QEMU (TCG) with the
# board profile's two serial roles (platform/README.md):
#   ttyS0, the operator's console menu: on this terminal (Ctrl-A X quits,
#          Ctrl-A C switches to the QEMU monitor);
#   ttyS1, the kernel console with the PID 1 and daemon log, and the lab's
#          debug hooks (sipedge.debug=1): on the unix socket out/ttyS1.sock,
#          also written to out/ttyS1.log. Watch or type with
#          `socat - UNIX:out/ttyS1.sock` (e.g. sipedge-freeze, sipedge-poweroff).
# HMP monitor on out/qemu-monitor.sock
# (e.g. `echo "set_link nic0 off" | socat - UNIX:out/qemu-monitor.sock`).
# Four e1000 NICs, each alone on its own hub: nothing leaves QEMU. eth0 and
# eth1 are bond0 (active-backup), eth2 and eth3 bond1 (802.3ad, which has
# no LACP partner here). For 3 s at boot PID 1 offers on ttyS0 to clear a
# forgotten console password (press r); then the menu asks for the password
# (a new box has one chosen first). Nothing answers the image's NTP server
# (192.0.2.1) here: `ctl time` says so (the QEMU test gives it one).
# With -disk first it boots out/disk.img instead (GRUB, slots A and B,
# /data; a copy in out/disk-run.img, kept between runs, so updates and
# the data survive a restart): the command line is grub.cfg's, without
# the debug hooks.
set -eu
cd "$(dirname "$0")/.."
boot=()
if [ "${1:-}" = -disk ]; then
	shift
	[ -f out/disk-run.img ] || cp --sparse=always out/disk.img out/disk-run.img
	boot=(-drive file=out/disk-run.img,format=raw,if=virtio)
fi
profile=${1:-qemu-x86_64}
if [ ${#boot[@]} -eq 0 ]; then
	cmdline=$(go run ./scripts/mkimage -profile "$profile" -print-cmdline)
	boot=(-kernel out/vmlinuz -initrd "out/initramfs-$profile.cpio.gz" -append "$cmdline sipedge.debug=1")
fi
exec qemu-system-x86_64 -machine q35 -m 512 -nodefaults -display none -no-user-config \
  "${boot[@]}" \
  -serial mon:stdio \
  -chardev socket,id=log,path=out/ttyS1.sock,server=on,wait=off,logfile=out/ttyS1.log \
  -serial chardev:log \
  -monitor "unix:out/qemu-monitor.sock,server=on,wait=off" \
  -device i6300esb -action watchdog=reset \
  -netdev hubport,id=n0,hubid=0 -device e1000,netdev=n0,id=nic0,mac=52:54:00:5e:00:01 \
  -netdev hubport,id=n1,hubid=1 -device e1000,netdev=n1,id=nic1,mac=52:54:00:5e:00:02 \
  -netdev hubport,id=n2,hubid=2 -device e1000,netdev=n2,id=nic2,mac=52:54:00:5e:00:03 \
  -netdev hubport,id=n3,hubid=3 -device e1000,netdev=n3,id=nic3,mac=52:54:00:5e:00:04
