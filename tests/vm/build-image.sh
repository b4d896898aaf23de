#!/usr/bin/env bash
# Build (once, cached) the Debian 12 guest the VM suite boots under QEMU: systemd as
# PID 1, Debian's cloud kernel, OpenZFS 2.3 from bookworm-backports built by DKMS for
# that kernel inside the image root, LXD 5.0, openssh for driving it. Everything comes
# from Debian's archive. Prints the image directory: root.img (raw ext4), vmlinuz,
# initrd.img, kernel-version, and id_ed25519 (root's test key; the image is test-only).
# The cache key is the package lists and this script: a change to either rebuilds.
#   tests/vm/build-image.sh [MIRROR]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
mirror=${1:-${TERRARIUM_DEBIAN_MIRROR:-http://deb.debian.org/debian}}
cache=${TERRARIUM_TEST_CACHE:?source tests/lib/env.sh first}/vm-image
key=$(cat "$here/image-packages.txt" "$here/backports-packages.txt" "$0" | sha256sum | cut -c1-16)
image=$cache/debian12-$key
if [ -s "$image/root.img" ]; then echo "$image"; exit 0; fi

packages() { sed 's/#.*//' "$1" | awk 'NF'; }
mkdir -p "$cache"
work=$(mktemp -d "$cache/build.XXXXXX")
root=$work/rootfs
unmount_all() {
  for dir in dev/pts dev sys proc; do umount "$root/$dir" 2>/dev/null || true; done
}
# Never remove a tree that still has this machine's /dev or /sys bound into it.
cleanup() { unmount_all; if ! grep -q " $root/" /proc/mounts; then rm -rf "$work"; fi; }
trap cleanup EXIT
log=$work/build.log
step() { echo "vm image: $*" >&2; }
failed() { tail -30 "$log" >&2; echo "vm image: $1 failed (log above)" >&2; exit 1; }
started=$SECONDS

step "debootstrap bookworm (main contrib) from $mirror"
debootstrap --variant=minbase --components=main,contrib --include=systemd,systemd-sysv,dbus \
  bookworm "$root" "$mirror" >"$log" 2>&1 || failed debootstrap
cat > "$root/etc/apt/sources.list" <<EOF
deb $mirror bookworm main contrib
deb $mirror bookworm-updates main contrib
deb $mirror bookworm-backports main contrib
EOF
# Nothing starts inside the chroot; DKMS needs /proc, /sys and /dev.
printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
cp /etc/resolv.conf "$root/etc/resolv.conf"
mount -t proc proc "$root/proc"
mount --bind /sys "$root/sys"
mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts"
in_root() { DEBIAN_FRONTEND=noninteractive chroot "$root" "$@" >>"$log" 2>&1; }

mapfile -t main_packages < <(packages "$here/image-packages.txt")
mapfile -t backports < <(packages "$here/backports-packages.txt")
step "apt-get install ${#main_packages[@]} packages"
in_root apt-get update -q || failed "apt-get update"
in_root apt-get install -y -q --no-install-recommends "${main_packages[@]}" || failed "apt-get install"
kernel=$(basename "$(find "$root/lib/modules" -mindepth 1 -maxdepth 1 -type d | sort -V | tail -n1)")
step "OpenZFS from bookworm-backports, DKMS build for $kernel"
in_root apt-get install -y -q --no-install-recommends -t bookworm-backports "${backports[@]}" \
  || failed "apt-get install (backports)"
# zfs-dkms builds for the running kernel (this machine's); build for the guest's too.
in_root dkms autoinstall -k "$kernel" || failed "dkms autoinstall -k $kernel"
find "$root/lib/modules/$kernel" -name 'zfs.ko*' | grep -q . || failed "no zfs.ko for $kernel"
in_root depmod "$kernel" || failed depmod
unmount_all

step "configure: network, ssh, fstab, the busybox container image"
echo terrarium-vm > "$root/etc/hostname"
echo "/dev/vda / ext4 defaults 0 1" > "$root/etc/fstab"
# QEMU's restricted user network: a fixed address, no DHCP, no DNS.
cat > "$root/etc/systemd/network/10-eth0.network" <<'EOF'
[Match]
Name=eth0
[Network]
Address=10.0.2.15/24
Gateway=10.0.2.2
EOF
chroot "$root" systemctl enable systemd-networkd.service >>"$log" 2>&1
chroot "$root" systemctl mask systemd-networkd-wait-online.service apt-daily.timer apt-daily-upgrade.timer >>"$log" 2>&1
rm -f "$root/etc/ssh/ssh_host_"*
chroot "$root" ssh-keygen -A >>"$log" 2>&1
ssh-keygen -q -t ed25519 -N '' -C terrarium-vm-test -f "$work/id_ed25519"
install -d -m 0700 "$root/root/.ssh"
install -m 0600 "$work/id_ed25519.pub" "$root/root/.ssh/authorized_keys"
# An offline LXD image from the guest's own busybox (the recipe of lxd-smoke.sh).
bb=$work/busybox
mkdir -p "$bb/rootfs"/{bin,sbin,etc/init.d,proc,sys,dev,tmp,run,usr/share/udhcpc,usr/bin,usr/sbin,root}
cp "$root/bin/busybox" "$bb/rootfs/bin/"
chroot "$bb/rootfs" /bin/busybox --install -s
printf '::sysinit:/etc/init.d/rcS\n::respawn:/sbin/udhcpc -f -i eth0 -s /usr/share/udhcpc/default.script\n' > "$bb/rootfs/etc/inittab"
printf '#!/bin/sh\nmount -t proc proc /proc\nip link set lo up\nip link set eth0 up\n' > "$bb/rootfs/etc/init.d/rcS"
# shellcheck disable=SC2016 # the script's own variables
printf '#!/bin/sh\ncase "$1" in bound|renew) ip addr flush dev $interface; ip addr add $ip/${mask:-24} dev $interface;; esac\n' \
  > "$bb/rootfs/usr/share/udhcpc/default.script"
chmod 755 "$bb/rootfs/etc/init.d/rcS" "$bb/rootfs/usr/share/udhcpc/default.script"
printf 'architecture: x86_64\ncreation_date: %s\nproperties:\n  os: busybox\n  release: "1"\n' "$(date +%s)" > "$bb/metadata.yaml"
tar -C "$bb" --numeric-owner -czf "$root/root/busybox.tar.gz" metadata.yaml rootfs
rm -f "$root/usr/sbin/policy-rc.d" "$root/etc/resolv.conf"
rm -rf "$root/var/cache/apt/archives/"*.deb "$root/var/lib/dkms/zfs/"*/build

step "root.img (ext4)"
out=$work/image
mkdir -p "$out"
cp "$root/boot/vmlinuz-$kernel" "$out/vmlinuz"
cp "$root/boot/initrd.img-$kernel" "$out/initrd.img"
echo "$kernel" > "$out/kernel-version"
cp "$work/id_ed25519" "$work/id_ed25519.pub" "$out/"
mkfs.ext4 -q -F -L terrarium-vm -d "$root" "$out/root.img" 8G >>"$log" 2>&1 || failed mkfs.ext4
rm -rf "$image"
mv "$out" "$image"
# Keep the two newest images (each about 1.1 GB): a checkout of another revision
# building its own does not evict this one.
find "$cache" -mindepth 1 -maxdepth 1 -name 'debian12-*' -printf '%T@ %p\n' | sort -rn | tail -n +3 | cut -d' ' -f2- \
  | xargs -r rm -rf
step "built in $((SECONDS - started)) s"
echo "$image"
