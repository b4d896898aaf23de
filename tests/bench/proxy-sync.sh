#!/usr/bin/env bash
# Benchmark: terrarium-proxy-sync.
#  1. plan + render in process, for 10, 100, 1,000, 10,000 synthetic instances, next to
#     the baseline of parsing the same list (examples/proxy_sync_bench.rs);
#  2. a whole no-op run from --instances (process start, config, lock, reading every
#     file, plan, render, compare; `ufw status` is a `cat` stand-in, `systemctl` unused),
#     side by side with the baseline `jq -c . instances.json` (reading the same list once),
#     hyperfine, medians. Goal: 1,000 instances no-op <= 20 ms;
#  3. watch-mode latency on real LXD and Traefik: `lxc config set` to route written and
#     to route live (examples/proxy_sync_watch_latency.rs). Goal: <= 2 s.
#   tests/bench/proxy-sync.sh            default: all sizes, 30 runs each, 5 watch rounds
#   BENCH_SMOKE=1 tests/bench/proxy-sync.sh   10 instances, 3 runs, 1 watch round (tests/run)
#   SIZES="1000" ROUNDS=1 override the sizes and the watch rounds.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=tests/lib/env.sh
. tests/lib/env.sh
# shellcheck source=tests/lib/release-repo.sh
. tests/lib/release-repo.sh

for tool in hyperfine jq; do
  command -v "$tool" >/dev/null || { echo "proxy-sync bench: $tool is missing: run tests/run; it installs the Debian package $tool" >&2; exit 1; }
done
if [ "${BENCH_SMOKE:-0}" = 1 ]; then sizes=(10); runs=3; warmup=1; rounds=1; else read -ra sizes <<<"${SIZES:-10 100 1000 10000}"; runs=30; warmup=3; rounds=${ROUNDS:-5}; fi

# The tool as a release builds it, and the bench programs.
release_tools_build && cargo build --release --quiet -p terrarium-proxy-sync --example proxy_sync_bench --example proxy_sync_watch_latency
target_dir=$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)
bin="$target_dir/release/terrarium-proxy-sync"

work=$(mktemp -d "${TMPDIR:-/tmp}/proxy-sync-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Stand-ins: systemd is not PID 1 here; ufw's own start-up (Python) is not ours to measure.
mkdir -p "$work/shims"
cat > "$work/shims/systemctl" <<'SH'
#!/bin/sh
exit 0
SH
cat > "$work/shims/ufw" <<'SH'
#!/bin/sh
# ufw stand-in: `status` prints the rules added so far (ufw's format), `allow` adds one.
case "$1" in
  status) printf 'Status: active\n\nTo                         Action      From\n--                         ------      ----\n'; cat "$UFW_RULES" 2>/dev/null || true ;;
  allow) printf '%-26s %-11s %-26s # %s\n' "$2" ALLOW Anywhere "$4" >> "$UFW_RULES" ;;
esac
SH
chmod +x "$work/shims/"*

echo "== plan + render (in process)"
for n in "${sizes[@]}"; do
  "$target_dir/release/examples/proxy_sync_bench" "$n" "$work/$n"
done

echo "== whole no-op run from --instances (hyperfine, $runs runs, median)"
printf '%8s %14s %14s %8s\n' instances "jq baseline" "proxy-sync" ratio
for n in "${sizes[@]}"; do
  root="$work/$n/root"
  mkdir -p "$root/etc/terrarium" "$root/etc/traefik"
  cat > "$root/etc/terrarium/config.yaml" <<'YAML'
schema_version: 2
domains:
  root: example.com
  manage: manage.example.com
  proxy: proxy.example.com
  lxd: lxd.example.com
  auth: auth.example.com
emails:
  contact: ops@example.com
  acme: acme@example.com
identity:
  mode: oidc
  issuer: https://id.example.com
  client_id: terrarium
  client_secret_file: /etc/terrarium/secrets/oidc-client-secret
storage:
  mode: file
proxy:
  max_ports_per_host: 65535   # every tenth synthetic instance has a port: publish them all
YAML
  chmod 600 "$root/etc/terrarium/config.yaml"
  mkdir -p "$root/etc/terrarium/secrets" && (umask 077; echo bench-secret > "$root/etc/terrarium/secrets/oidc-client-secret")
  printf 'entryPoints:\n  web:\n    address: ":80"\n  # BEGIN terrarium-proxy-sync managed entrypoints\n  # END terrarium-proxy-sync managed entrypoints\n' > "$root/etc/traefik/traefik.yml"
  export PATH="$work/shims:$PATH" UFW_RULES="$work/$n/ufw.rules"
  cmd="$bin --root $root --instances $work/$n/instances.json -q"
  $cmd || [ $? = 3 ]                      # the first run publishes
  out=$($bin --root "$root" --instances "$work/$n/instances.json" 2>&1) || [ $? = 3 ]   # the second must be a no-op
  case "$out" in *"nothing changed"*) ;; *) echo "proxy-sync bench: second run was not a no-op: $out" >&2; exit 1 ;; esac
  hyperfine --shell=none --style=basic --runs "$runs" --warmup "$warmup" -i \
    --export-json "$work/$n/noop.json" \
    --command-name jq "jq -c . $work/$n/instances.json" \
    --command-name proxy-sync "$cmd" >"$work/$n/hyperfine.log" 2>&1 || { cat "$work/$n/hyperfine.log" >&2; exit 1; }
  jq -r --arg n "$n" '(.results[] | select(.command == "jq") | .median * 1000) as $b
    | (.results[] | select(.command == "proxy-sync") | .median * 1000) as $p
    | "\($n|tonumber) \($b) \($p) \($p / $b)"' "$work/$n/noop.json" \
    | awk '{ printf "%8d %11.2f ms %11.2f ms %7.2fx%s\n", $1, $2, $3, $4, ($1 == 1000 ? ($3 <= 20 ? "  (goal <= 20 ms: met)" : "  (goal <= 20 ms: MISSED)") : "") }'
done

echo "== watch mode: label to route (real LXD 5.0 and Traefik, $rounds rounds)"
"$target_dir/release/examples/proxy_sync_watch_latency" "$rounds" "$bin"
