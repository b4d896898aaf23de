# shellcheck shell=bash
# The machine's one zfs-fuse daemon, shared with terrarium-testkit (same pidfile, same
# lock: the testkit starts it on demand and never stops it; tests/run stops it at the end
# only when it was not running before the run).
ZFS_FUSE_RUN_DIR=/run/terrarium-testkit
ZFS_FUSE_PIDFILE=$ZFS_FUSE_RUN_DIR/zfs-fuse.pid

zfs_fuse_answers() {
  command -v zpool >/dev/null 2>&1 && timeout 20 zpool list -H -o name >/dev/null 2>&1
}

# Start the daemon unless it answers; serialised with the testkit by a file lock.
zfs_fuse_start() {
  mkdir -p "$ZFS_FUSE_RUN_DIR"
  (
    flock 9
    zfs_fuse_answers && exit 0
    # zfs-fuse refuses to start (exit 1) while a pidfile of a dead daemon is there.
    stale=$(cat "$ZFS_FUSE_PIDFILE" 2>/dev/null) && { kill -0 "$stale" 2>/dev/null || rm -f "$ZFS_FUSE_PIDFILE"; }
    # zfs-fuse forks into the background itself; its deep recursion needs a big stack.
    # It must not inherit the lock (fd 9): a daemon holding it would block every later
    # start for as long as it lives.
    sh -c 'ulimit -s unlimited; exec zfs-fuse --pidfile "$1" --no-kstat-mount' zfs-fuse "$ZFS_FUSE_PIDFILE" </dev/null >/dev/null 2>&1 9>&-
    for _ in $(seq 200); do zfs_fuse_answers && exit 0; sleep 0.1; done
    echo "tests/run: zfs-fuse did not answer within 20 s" >&2
    exit 1
  ) 9>"$ZFS_FUSE_RUN_DIR/zfs-fuse.lock"
}

# Stop the daemon started by zfs_fuse_start (TERM, wait up to 15 s).
zfs_fuse_stop() {
  local pid
  pid=$(cat "$ZFS_FUSE_PIDFILE" 2>/dev/null) || return 0
  [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  echo "tests/run: zfs-fuse (pid $pid) did not stop within 15 s" >&2
}
