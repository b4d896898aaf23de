#!/bin/bash
# terrarium-testkit: the body of `unshare -n -m --mount-proc --propagation private`. Binds
# private copies of ufw's state over the real paths (without them `ufw enable` rewrites
# the host's files), gives /run a tmpfs (ufw's and xtables' locks), then waits forever so
# `nsenter --target PID --net --mount` can run ufw in here. Usage: ufw-sandbox.sh DIR
set -euo pipefail
w=$1
mount --bind "$w/etc-ufw" /etc/ufw
mount --bind "$w/lib-ufw" /lib/ufw
mount --bind "$w/default-ufw" /etc/default/ufw
mount -t tmpfs tmpfs /run
ip link set lo up
# This namespace got copies of every zfs-fuse mount (other tests' pools); while they
# live, zfs-fuse cannot unmount those pools and `zpool destroy` says "pool is busy".
# Drop the copies here; the host's mounts are untouched.
awk '$3 == "fuse.zfs" { print $2 }' /proc/self/mounts | sort -r | while read -r mnt; do
  umount -l "$mnt" 2>/dev/null || true
done
echo "ready $$"
exec sleep infinity
