#!/bin/sh
# Boots the image built by scripts/image.sh under QEMU (TCG), serial
# console on this terminal (Ctrl-A X quits), HMP monitor on
# out/qemu-monitor.sock (e.g. `echo "set_link nic0 off" | socat - UNIX:out/qemu-monitor.sock`).
# Two e1000 NICs, each alone on its own hub: nothing leaves QEMU.
set -eu
cd "$(dirname "$0")/.."
profile=${1:-qemu-x86_64}
exec qemu-system-x86_64 -machine q35 -m 512 -nodefaults -display none -no-user-config \
  -kernel out/vmlinuz -initrd "out/initramfs-$profile.cpio.gz" \
  -append "console=ttyS0,115200 panic=5 sipedge.debug=1" \
  -serial mon:stdio -monitor "unix:out/qemu-monitor.sock,server=on,wait=off" \
  -device i6300esb -action watchdog=reset \
  -netdev hubport,id=n0,hubid=0 -device e1000,netdev=n0,id=nic0,mac=52:54:00:5e:00:01 \
  -netdev hubport,id=n1,hubid=1 -device e1000,netdev=n1,id=nic1,mac=52:54:00:5e:00:02
