# shellcheck shell=bash
# CPU seconds (user + system) a process has used so far, from /proc/PID/stat. The
# benches print what the servers on loopback (s3s-fs, zfs-fuse) spent during each
# measured run: on a small machine they share the cores with what is measured, so
# their share bounds the ratio any client can reach.
cpu_seconds() {
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"
}

# CPU seconds PID used since BEFORE (a value cpu_seconds printed).
cpu_since() {
  awk -v a="$2" -v b="$(cpu_seconds "$1")" 'BEGIN { printf "%.2f", b - a }'
}
