#!/bin/bash
# terrarium-testkit: the body of `unshare -n -m --propagation private`, which gives LXD its
# own network and mount namespace so lxdbr0, its dnsmasq and its nftables rules never
# reach the host. Usage: lxd-in-netns.sh LXD SYS_ASIDE LOGFILE (LXD_DIR in the env).
set -euo pipefail
lxd=$1 aside=$2 log=$3
ip link set lo up
# This namespace got copies of every zfs-fuse mount (other tests' pools); while they
# live, zfs-fuse cannot unmount those pools and `zpool destroy` says "pool is busy".
# Drop the copies here; the host's mounts are untouched.
awk '$3 == "fuse.zfs" { print $2 }' /proc/self/mounts | sort -r | while read -r mnt; do
  umount -l "$mnt" 2>/dev/null || true
done
# A fresh sysfs shows this namespace's network devices (LXD reads /sys/class/net); bring
# the host's cgroup, fuse and security trees back into it.
mount --rbind /sys "$aside"
mount -t sysfs sysfs /sys
mount --rbind "$aside/fs/cgroup" /sys/fs/cgroup
for d in fs/fuse/connections kernel/security fs/bpf; do
  if [ -d "$aside/$d" ] && mountpoint -q "$aside/$d"; then mount --rbind "$aside/$d" "/sys/$d"; fi
done
sysctl -qw net.ipv4.ip_forward=1 || true
exec "$lxd" --group root --logfile "$log"
