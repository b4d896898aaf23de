# shellcheck shell=bash
# shellcheck disable=SC2154 # work and pool are set by the bench that sources this
# What the S3 benches (backup-export, restore) share: their build, and a scratch host: a
# file-backed zfs-fuse pool with $pool/containers/src, s3s-fs on a free loopback port, a
# Terrarium root prefix whose config points at both, and the CPU the two servers use
# (they share the machine's cores with what is measured). Callers set `work` (a scratch directory) and
# `pool` (a pool name), and stop s3s-fs in their cleanup (`s3_pid`).

# shellcheck source=tests/lib/zfs-fuse.sh
. tests/lib/zfs-fuse.sh
# shellcheck source=tests/lib/cpu.sh
. tests/lib/cpu.sh
# shellcheck source=tests/lib/release-repo.sh
. tests/lib/release-repo.sh

# bench_build: the tools as a release builds them, and the floors both benches use, in one
# cargo invocation (another selection of examples would be another build of the crate).
bench_build() {
  release_tools_build &&
    cargo build --release --quiet -p terrarium-archive --example upload_floor --example download_floor --example decode_receive
}

# bench_pool SIZE_MIB: the pool, on a sparse file of that size under $work. zfs-fuse is
# one daemon per machine, started if nobody did (never stopped here); sets zfs_fuse_pid.
bench_pool() {
  zfs_fuse_answers || zfs_fuse_start
  zfs_fuse_pid=$(cat "$ZFS_FUSE_PIDFILE")
  truncate -s "$1M" "$work/pool.img"
  zpool create -f -o cachefile=none -m "$work/mnt" "$pool" "$work/pool.img" >/dev/null
  zfs create "$pool/containers"
  zfs create "$pool/containers/src"
}

# bench_s3: s3s-fs on a free loopback port with the bucket `bucket`; sets s3_pid and
# endpoint, and exports the aws CLI's credentials.
bench_s3() {
  local port
  mkdir -p "$work/s3/bucket"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  s3s-fs --host 127.0.0.1 --port "$port" --access-key bench --secret-key benchsecret "$work/s3" >"$work/s3.log" 2>&1 &
  s3_pid=$!
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
  export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=benchsecret AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
  endpoint="http://127.0.0.1:$port"
}

# bench_root [EXTRA_CONFIG_LINE]: the tool's host under $work/root (host name benchhost),
# with a config naming the pool and s3s-fs and the S3 secret; sets root.
bench_root() {
  root="$work/root"
  mkdir -p "$root/etc/terrarium/secrets"
  echo benchhost >"$root/etc/hostname"
  printf 'benchsecret' >"$root/etc/terrarium/secrets/s3-secret-key"
  chmod 600 "$root/etc/terrarium/secrets/s3-secret-key"
  cat >"$root/etc/terrarium/config.yaml" <<CONFIG
schema_version: 2
domains: {root: example.com, manage: manage.example.com, proxy: proxy.example.com, lxd: lxd.example.com, auth: auth.example.com}
emails: {contact: ops@example.com, acme: acme@example.com}
identity: {mode: oidc, issuer: https://id.example.com, client_id: terrarium, client_secret_file: /etc/terrarium/secrets/oidc-client-secret}
storage: {mode: file, size: 1G, pool: $pool}
s3: {enabled: true, endpoint: "$endpoint", bucket: bucket, region: us-east-1, prefix: bench, access_key: bench, secret_key_file: /etc/terrarium/secrets/s3-secret-key}
${1:-}
CONFIG
  chmod 600 "$root/etc/terrarium/config.yaml"
}

# bench_servers_before: remember the servers' CPU now (for bench_servers_since).
bench_servers_before() {
  s3_cpu_before=$(cpu_seconds "$s3_pid"); zfs_cpu_before=$(cpu_seconds "$zfs_fuse_pid")
}

# bench_servers_since: "S3S-FS-CPU-S ZFS-FUSE-CPU-S" used since bench_servers_before.
bench_servers_since() {
  echo "$(cpu_since "$s3_pid" "$s3_cpu_before") $(cpu_since "$zfs_fuse_pid" "$zfs_cpu_before")"
}

# bench_settle [MAX_SECONDS]: wait (at most 15 s, or MAX_SECONDS) until zfs-fuse and
# s3s-fs have both been idle for half a second. zfs-fuse writes a received or sent
# stream's blocks out in the seconds after the command ended; without this pause the
# next command measured would pay for them. After writing the bench's dataset it can
# take longer than 15 s: the benches wait up to a minute before their first round.
bench_settle() {
  local zfs_before s3_before max=${1:-15}
  for _ in $(seq $((max * 2))); do
    zfs_before=$(cpu_seconds "$zfs_fuse_pid"); s3_before=$(cpu_seconds "$s3_pid")
    sleep 0.5
    awk -v z="$(cpu_since "$zfs_fuse_pid" "$zfs_before")" -v s="$(cpu_since "$s3_pid" "$s3_before")" \
      'BEGIN { exit !(z < 0.02 && s < 0.02) }' && return 0
  done
  # Still busy: measure anyway (the servers' CPU is printed), but never end the bench.
  echo "bench: zfs-fuse or s3s-fs still busy after $max s; measuring anyway" >&2
}
