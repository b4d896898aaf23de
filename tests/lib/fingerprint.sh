# shellcheck shell=bash
# What the tests must leave exactly as they found it on the host: ufw's files, the
# firewall rules (iptables, ip6tables, nftables; no counters), the zfs-fuse pools and the
# host network namespace's links. Print it; tests/run diffs the output before and after.

# Pools named by terrarium-testkit (tt<pid>n<k>) may belong to tests running elsewhere
# on this machine (another developer's run). Under tests/run the testkit lists the pools
# it creates in $TERRARIUM_TESTKIT_RUN_DIR/pools: only those count. Without that list, a
# testkit pool whose process is alive is someone else's; a dead owner's pool is a leak.
_fingerprint_pools() {
  local pool pid ours=${TERRARIUM_TESTKIT_RUN_DIR:+$TERRARIUM_TESTKIT_RUN_DIR/pools}
  timeout 20 zpool list -H -o name 2>/dev/null | sort | while read -r pool; do
    if [[ $pool =~ ^tt([0-9]+)n[0-9]+$ ]]; then
      pid=${BASH_REMATCH[1]}
      if [ -n "$ours" ]; then
        grep -qxF "$pool" "$ours" 2>/dev/null || continue
      elif kill -0 "$pid" 2>/dev/null; then
        continue
      fi
    fi
    echo "$pool"
  done
}

_fingerprint_run() { # COMMAND...: its output, or "<missing ...>" when the program is absent
  if command -v "$1" >/dev/null 2>&1; then "$@" 2>&1 || echo "<exit $?>"; else echo "<missing $1>"; fi
}

_without_counters() { sed -E '/^#/d; s/\[[0-9]+:[0-9]+\]//'; }

host_fingerprint() {
  echo "## ufw files (sha256)"
  find /etc/ufw/ /lib/ufw/ /etc/default/ufw -type f -print0 2>/dev/null | sort -z | xargs -0 -r sha256sum
  echo "## iptables-save"
  _fingerprint_run iptables-save | _without_counters
  echo "## ip6tables-save"
  _fingerprint_run ip6tables-save | _without_counters
  echo "## nft list ruleset"
  _fingerprint_run nft -s list ruleset
  echo "## zpool list"
  if zfs_fuse_answers; then _fingerprint_pools; else echo "<zfs-fuse not running>"; fi
  echo "## ip -br link"
  _fingerprint_run ip -br link
}
