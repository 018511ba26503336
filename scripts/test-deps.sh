#!/usr/bin/env bash
# Installs the peers the test suite uses, if any is missing: SIPp
# (sip-tester), Kamailio and its tls module, baresip, QEMU, Chromium, MariaDB, iproute2, and the tools the image
# build needs (the disk image: sfdisk, mke2fs, BIOS GRUB). Needs root and
# apt-get; otherwise it says what is missing and the tests that need it skip (or fail under SIPEDGE_TEST_STRICT=1).
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have sipp || need+=(sip-tester)
have kamailio || need+=(kamailio)
# Kamailio's tls module, a separate package (Kamailio as a TLS Core: daemon/balancer/tlspeers)
compgen -G '/usr/lib/*/kamailio/modules/tls.so' >/dev/null || need+=(kamailio-tls-modules)
have baresip || need+=(baresip-core) # a TLS caller (daemon/balancer/tlspeers)
have qemu-system-x86_64 || need+=(qemu-system-x86)
have chromium || need+=(chromium)
have ip || need+=(iproute2)
have cpio || need+=(cpio)
have file || need+=(file)
have tcpdump || need+=(tcpdump)
have dpkg-deb || need+=(dpkg)
have python3 || need+=(python3)
have sfdisk || need+=(fdisk)           # the disk image (make image, the update QEMU test)
have mke2fs || need+=(e2fsprogs)
have grub-mkimage || need+=(grub-pc-bin grub-common)
have mariadbd || need+=(mariadb-server)
have mariadb || need+=(mariadb-client)
have git || need+=(git) # the previous release is built from the history (daemontest.PreviousBinary)

if [ ${#need[@]} -eq 0 ]; then
	echo "test-deps: all present"
	exit 0
fi
if [ "$(id -u)" != 0 ] || ! have apt-get; then
	echo "test-deps: missing ${need[*]} (install as root with apt-get); tests that need them will skip" >&2
	exit 0
fi
echo "test-deps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${need[@]}"
