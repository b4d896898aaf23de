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
echo "ready $$"
exec sleep infinity
