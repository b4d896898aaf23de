# shellcheck shell=bash
# LXD 5.0 in a private network + mount namespace for the ansible suite (the shell
# counterpart of terrarium-testkit's Lxd): its own LXD_DIR in a temp dir, lxdbr0 and its
# nftables rules never reach the host. Source it, call lxd_start DIR, and make sure a
# trap calls lxd_stop.

lxd_start() {
  local dir=$1
  export LXD_DIR=$dir/lxd LXD_CONF=$dir/client
  mkdir -p "$LXD_DIR" "$LXD_CONF" "$dir/sys"
  # shellcheck disable=SC2016 # the body runs in the namespace with its own arguments
  unshare --net --mount --propagation private -- bash -c '
    set -euo pipefail
    aside=$1 log=$2
    ip link set lo up
    # A fresh sysfs shows the devices of this namespace; bring back cgroup, fuse, security.
    mount --rbind /sys "$aside"
    mount -t sysfs sysfs /sys
    mount --rbind "$aside/fs/cgroup" /sys/fs/cgroup
    for d in fs/fuse/connections kernel/security fs/bpf; do
      if [ -d "$aside/$d" ] && mountpoint -q "$aside/$d"; then mount --rbind "$aside/$d" "/sys/$d"; fi
    done
    exec lxd --group root --logfile "$log"
  ' lxd-ns "$dir/sys" "$dir/lxd.log" </dev/null >"$dir/netns.log" 2>&1 &
  LXD_NS_PID=$!
  if ! lxd waitready --timeout=60; then
    echo "lxd: not ready; log:" >&2; tail -20 "$dir/lxd.log" "$dir/netns.log" >&2; return 1
  fi
  lxd init --auto --storage-backend dir >/dev/null
}

# Stop the daemon and every process left in its network namespace (containers).
lxd_stop() {
  [ -n "${LXD_NS_PID:-}" ] || return 0
  local netns pid
  netns=$(readlink "/proc/$LXD_NS_PID/ns/net" 2>/dev/null || true)
  timeout 60 lxd shutdown --timeout=30 >/dev/null 2>&1 || true
  kill "$LXD_NS_PID" 2>/dev/null || true
  if [ -n "$netns" ]; then
    for pid in /proc/[0-9]*; do
      pid=${pid#/proc/}
      if [ "$(readlink "/proc/$pid/ns/net" 2>/dev/null)" = "$netns" ]; then kill -9 "$pid" 2>/dev/null || true; fi
    done
  fi
  wait "$LXD_NS_PID" 2>/dev/null || true
  LXD_NS_PID=
}
