#!/bin/sh
# Builds the appliance image: out/vmlinuz and out/initramfs-<profile>.cpio.gz
# from bin/sipedge (make build), Debian's kernel package (cached in cache/)
# and rootfs/, and out/disk.img (GRUB, slots A and B, /data) with
# out/slot.img (what `make update` signs).
# Usage: scripts/image.sh [profile]   (default qemu-x86_64)
# CLUSTER_KEY=FILE puts that cluster key (sipedge ctl cluster keygen, mode
# 0600) in the image as /etc/sipedge/cluster.key, mode 0600.
set -eu
cd "$(dirname "$0")/.."
[ -x bin/sipedge ] || CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o bin/sipedge ./daemon
exec go run ./scripts/mkimage -binary bin/sipedge -profile "${1:-qemu-x86_64}" -cache cache -rootfs rootfs -out out -disk ${CLUSTER_KEY:+-cluster-key "$CLUSTER_KEY"}
