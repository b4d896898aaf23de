#!/usr/bin/env bash
# Build (once, cached) the Debian 12 systemd image the ansible suite converges.
# Prints the path of an LXD unified image tarball. The cache key is the package list
# and image_format: bump it when a change here must rebuild the image.
#   tests/ansible/build-image.sh [MIRROR]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
mirror=${1:-${TERRARIUM_DEBIAN_MIRROR:-http://deb.debian.org/debian}}
cache=${TERRARIUM_TEST_CACHE:?source tests/lib/env.sh first}/ansible-image
packages=$(sed 's/#.*//' "$here/image-packages.txt" | awk 'NF' | paste -sd, -)
image_format=3
key=$( (cat "$here/image-packages.txt"; echo "$image_format") | sha256sum | cut -c1-16)
image=$cache/debian12-$key.tar
if [ -s "$image" ]; then echo "$image"; exit 0; fi

mkdir -p "$cache"
work=$(mktemp -d "$cache/build.XXXXXX")
trap 'umount "$work/rootfs/proc" 2>/dev/null || true; rm -rf "$work"' EXIT
# Stage 1: a minimal systemd system. Stage 2: the packages through apt inside the
# chroot (apt orders their configuration; debootstrap --include alone trips on
# cockpit's GNOME dependencies). policy-rc.d keeps services from starting in the chroot.
echo "build-image: debootstrap bookworm, then apt-get install $packages" >&2
debootstrap --variant=minbase --components=main,contrib --include=systemd,systemd-sysv,dbus bookworm "$work/rootfs" "$mirror" >"$work/build.log" 2>&1 \
  || { tail -20 "$work/build.log" >&2; echo "build-image: debootstrap failed (log above)" >&2; exit 1; }
printf '#!/bin/sh\nexit 101\n' > "$work/rootfs/usr/sbin/policy-rc.d"
chmod 755 "$work/rootfs/usr/sbin/policy-rc.d"
cp /etc/resolv.conf "$work/rootfs/etc/resolv.conf"
mount -t proc proc "$work/rootfs/proc"
IFS=, read -r -a package_list <<<"$packages"
status=0
{ chroot "$work/rootfs" apt-get update -q && DEBIAN_FRONTEND=noninteractive chroot "$work/rootfs" \
    apt-get install -y -q --no-install-recommends "${package_list[@]}"; } >>"$work/build.log" 2>&1 || status=$?
umount "$work/rootfs/proc"
[ "$status" = 0 ] || { tail -20 "$work/build.log" >&2; echo "build-image: apt-get install failed (log above)" >&2; exit 1; }
rm -f "$work/rootfs/usr/sbin/policy-rc.d" "$work/rootfs/etc/resolv.conf"
echo terrarium-host > "$work/rootfs/etc/hostname"
: > "$work/rootfs/etc/fstab"
rm -f "$work/rootfs/etc/ssh/ssh_host_"*   # regenerated below so each image has its own
chroot "$work/rootfs" ssh-keygen -A >/dev/null
# The container has no network: skip units that would only wait for one.
chroot "$work/rootfs" systemctl mask systemd-networkd-wait-online.service >/dev/null 2>&1 || true
rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb
printf 'architecture: x86_64\ncreation_date: %s\nproperties:\n  os: debian\n  release: bookworm\n  description: Terrarium ansible test image\n' \
  "$(date +%s)" > "$work/metadata.yaml"
tar -C "$work" --numeric-owner -cf "$work/image.tar" metadata.yaml rootfs
mv "$work/image.tar" "$image"
# Keep only the current image (each is ~450 MB).
find "$cache" -maxdepth 1 -name 'debian12-*.tar' ! -name "$(basename "$image")" -delete
echo "$image"
