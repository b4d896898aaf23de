#!/usr/bin/env bash
# Benchmark: S3 export throughput and peak memory of `terrarium-backup export` against the
# plain pipe `zfs send | zstd -3 | aws s3 cp -`, side by side on the same snapshot, then
# peak memory of the export pipeline for a small and a 10x larger synthetic stream (it
# must not grow with the stream size), for parts too large for the memory budget (they
# are spooled to a file), the rate achieved under --bwlimit, the cost of encryption
# (plain and encrypted exports of the snapshot, alternating), and the time a resumed
# export takes against a fresh one.
#
# A dataset of SIZE_MIB (half random, half text) on a file-backed zfs-fuse pool is
# snapshotted once; each round runs the pipe and the tool (a full export) to s3s-fs on
# loopback, who goes first alternating. Prints the median and best seconds, MiB/s of the
# raw stream and peak RSS (GNU time) of each, and the throughput ratio (the median of the
# rounds' ratios). Goal: >= 2x the pipe's throughput, peak RSS <= 128 MiB.
# Each round also times the floor: the compressed stream uploaded from RAM by the same
# multipart uploader, without zfs send or zstd. pipe / floor is the most any exporter
# can reach against this server on this machine.
#   tests/bench/backup-export.sh                 1 GiB dataset, 5 rounds, 1 and 10 GiB synthetic streams
#   BENCH_SMOKE=1 tests/bench/backup-export.sh   8 MiB, 1 round, 16 and 160 MiB streams (tests/run)
#   SIZE_MIB=N ROUNDS=N STREAM_MIB=N override (the large stream is 10 x STREAM_MIB).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=tests/lib/env.sh
. tests/lib/env.sh

if [ "${BENCH_SMOKE:-0}" = 1 ]; then
  size_mib=${SIZE_MIB:-8}; rounds=${ROUNDS:-1}; stream_mib=${STREAM_MIB:-16}
else
  size_mib=${SIZE_MIB:-1024}; rounds=${ROUNDS:-5}; stream_mib=${STREAM_MIB:-1024}
fi
for program in zfs zpool zfs-fuse zstd aws s3s-fs jq openssl age-keygen /usr/bin/time; do
  command -v "$program" >/dev/null || { echo "backup-export bench: $program is missing: run tests/run; it installs it (tests/deps)" >&2; exit 1; }
done

# The tools as a release builds them, and the floors (one build, shared with the
# other S3 bench).
# shellcheck source=tests/lib/s3-bench.sh
. tests/lib/s3-bench.sh
bench_build
target_dir=$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)
tool="$target_dir/release/terrarium-backup" floor="$target_dir/release/examples/upload_floor"

work=$(mktemp -d "${TMPDIR:-/tmp}/backup-bench.XXXXXX")
pool="bb$$"
s3_pid=""
cleanup() {
  local status=$?
  # errexit applies here too: a killed server's wait status (143) must not end the cleanup.
  if [ -n "$s3_pid" ]; then kill "$s3_pid" 2>/dev/null || true; wait "$s3_pid" 2>/dev/null || true; fi
  zfs release -r terrarium-backup "$pool/containers/src@bench" >/dev/null 2>&1 || true
  if zpool list "$pool" >/dev/null 2>&1; then
    for _ in 1 2 3 4 5; do zpool destroy -f "$pool" 2>/dev/null && break; sleep 1; done
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT

bench_pool "$((size_mib * 3 + 512))"

# The dataset: half random, half text, in files of up to 8 MiB.
half_kib=$((size_mib * 512))
file_kib=$((half_kib < 8192 ? half_kib : 8192))
for i in $(seq "$(( (half_kib + file_kib - 1) / file_kib ))"); do
  head -c "${file_kib}K" /dev/urandom >"$work/mnt/containers/src/random-$i.bin"
  # The producer is cut off by head (SIGPIPE): that is its normal end here.
  { seq -f "%g: a line of text that compresses like logs and source code do, more or less" 1 1000000000 2>/dev/null || true; } \
    | head -c "${file_kib}K" >"$work/mnt/containers/src/text-$i.txt"
done
zfs snapshot "$pool/containers/src@bench"

bench_s3
# The tool's host: a root prefix with the config, the secret and a host name.
bench_root "backup: {zstd_level: 3}"
export TERRARIUM_ROOT="$root" TERRARIUM_LOG_FORMAT=logfmt

# "seconds peak-RSS-KiB s3s-fs-CPU-s zfs-fuse-CPU-s" of one command (GNU time and
# /proc); its output goes to $log.
measure() {
  local log=$1; shift
  bench_settle
  bench_servers_before
  /usr/bin/time -f '%e %M' -o "$log.time" "$@" >"$log" 2>"$log.err" || { cat "$log.err" >&2; exit 1; }
  echo "$(cat "$log.time") $(bench_servers_since)"
}
mib_s() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.1f", (s > 0 ? b / 1048576 / s : 0) }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
# shellcheck source=tests/lib/stats.sh
. tests/lib/stats.sh

# The floor, measured with the compressed stream the pipe would upload, kept in a file:
# the export's own multipart upload of it from memory (tools/terrarium-archive/examples).
zfs send "$pool/containers/src@bench" | zstd -3 -q -c >"$work/stream.zst"

run_pipe() {
  read -r s rss s3_cpu zfs_cpu < <(measure "$work/pipe.log" bash -o pipefail -c \
    "zfs send '$pool/containers/src@bench' | zstd -3 -q -c | aws --endpoint-url '$endpoint' s3 cp --quiet - 's3://bucket/pipe/bench.zst'")
  pipe_s+=("$s"); pipe_rss+=("$rss"); pipe_servers+=" round $1: s3s-fs ${s3_cpu}s, zfs-fuse ${zfs_cpu}s;"
}
run_tool() {
  # A full export every round: forget the previous one locally.
  rm -rf "$root/var/lib/terrarium/lastsnapshots" "$root/var/lib/terrarium/catalog"
  read -r s rss s3_cpu zfs_cpu < <(measure "$work/tool.json" "$tool" export --full --json)
  tool_s+=("$s"); tool_rss+=("$rss"); tool_servers+=" round $1: s3s-fs ${s3_cpu}s, zfs-fuse ${zfs_cpu}s;"
  status=$(jq -r '.instances[0].status' "$work/tool.json")
  [ "$status" = exported ] || { echo "backup-export bench: export status $status" >&2; cat "$work/tool.json.err" >&2; exit 1; }
  raw_bytes=$(jq -r '.instances[0].raw_bytes' "$work/tool.json")
  compressed=$(jq -r '.instances[0].compressed_bytes' "$work/tool.json")
}

declare -a tool_s tool_rss pipe_s pipe_rss send_s floor_s
pipe_servers="" tool_servers=""
raw_bytes=0
# Writing the dataset left zfs-fuse busy for a while: the first round must not pay for it.
bench_settle 60
for round in $(seq "$rounds"); do
  # What zfs-fuse alone gives: zfs send to nowhere.
  read -r s _ _ _ < <(measure "$work/send.log" bash -c "zfs send '$pool/containers/src@bench' >/dev/null")
  send_s+=("$s")
  # Alternate who goes first, so that neither always meets the caches the other left.
  if [ $((round % 2)) = 1 ]; then run_pipe "$round"; run_tool "$round"; else run_tool "$round"; run_pipe "$round"; fi
  bench_settle
  floor_s+=("$("$floor" "$work/stream.zst" floor/bench.zst)")
done

ratios=$(round_ratios "${pipe_s[*]}" "${tool_s[*]}")
floor_ratios=$(round_ratios "${pipe_s[*]}" "${floor_s[*]}")
# shellcheck disable=SC2086 # the ratios are words on purpose
ratio=$(median $ratios) floor_ratio=$(median $floor_ratios)
t_rss=$(worst "${tool_rss[@]}")
echo "backup-export bench: ${size_mib} MiB dataset (half random, half text), raw stream $((raw_bytes / 1048576)) MiB, compressed $((compressed / 1048576)) MiB, $rounds rounds, who goes first alternating"
printf '  %-50s %8s %8s %12s %14s\n' "" median best "MiB/s (med)" "peak RSS"
row() { printf '  %-50s %6.2f s %6.2f s %12s %14s\n' "$1" "$(median "${@:3}")" "$(best "${@:3}")" "$(mib_s "$raw_bytes" "$(median "${@:3}")")" "$2"; }
row "zfs send >/dev/null (what zfs-fuse gives)" "" "${send_s[@]}"
row "zfs send | zstd -3 | aws s3 cp -" "$(mib "$(worst "${pipe_rss[@]}")") MiB" "${pipe_s[@]}"
row "terrarium-backup export" "$(mib "$t_rss") MiB" "${tool_s[@]}"
row "floor: the compressed stream, uploaded from RAM" "" "${floor_s[@]}"
awk -v ratio="$ratio" -v ratios="$ratios" -v floor="$floor_ratio" -v r="$t_rss" 'BEGIN {
  printf "  throughput ratio, median of the rounds: %.2fx (goal >= 2x: %s); each round: %s\n", ratio, (ratio >= 2 ? "met" : "MISSED"), ratios
  printf "  the most any exporter could reach against this server here (pipe / floor, median): %.2fx\n", floor
  printf "  tool peak RSS %.1f MiB (goal <= 128 MiB: %s)\n", r / 1024, (r / 1024 <= 128 ? "met" : "MISSED")
}'
echo "  CPU the loopback servers used on this machine's $(nproc) cores (they compete with what is measured):"
echo "    pipe:${pipe_servers%;}"
echo "    tool:${tool_servers%;}"

# Memory against stream size: the same pipeline (zstd, multipart) on synthetic streams.
synthetic() { # MIB SIZE-HINT-BYTES [more stream options]
  local mib_count=$1 hint=$2
  shift 2
  local bytes=$((mib_count * 1048576))
  measure "$work/stream.json" bash -o pipefail -c \
    "{ openssl enc -aes-128-ctr -nosalt -pass pass:bench </dev/zero 2>/dev/null || true; } | head -c $bytes | '$tool' stream --key synth/$mib_count --size-hint $hint $* --json"
  aws --endpoint-url "$endpoint" s3 rm --quiet "s3://bucket/synth/$mib_count"
}
read -r small_s small_rss _ _ < <(synthetic "$stream_mib" "$((stream_mib * 1048576))")
read -r large_s large_rss _ _ < <(synthetic "$((stream_mib * 10))" "$((stream_mib * 10485760))")
# Parts larger than the memory budget: the size hint of a 1 TiB stream makes every part
# 233 MiB, more than the default 256 MiB budget lets memory hold two of, so each goes
# through a file in (the root's) /var/tmp.
mkdir -p "$root/var/tmp"
read -r spool_s spool_rss _ _ < <(synthetic "$stream_mib" "$((1 << 40))")
spool_parts=$(jq -r .parts "$work/stream.json")
echo "backup-export bench: synthetic incompressible streams through the export pipeline"
printf '  %-44s %8ss %9s MiB/s  peak RSS %7s MiB\n' "$stream_mib MiB" "$small_s" "$(mib_s "$((stream_mib * 1048576))" "$small_s")" "$(mib "$small_rss")"
printf '  %-44s %8ss %9s MiB/s  peak RSS %7s MiB\n' "$((stream_mib * 10)) MiB" "$large_s" "$(mib_s "$((stream_mib * 10485760))" "$large_s")" "$(mib "$large_rss")"
printf '  %-44s %8ss %9s MiB/s  peak RSS %7s MiB\n' "$stream_mib MiB in $spool_parts parts of 233 MiB (spooled)" "$spool_s" "$(mib_s "$((stream_mib * 1048576))" "$spool_s")" "$(mib "$spool_rss")"
awk -v a="$small_rss" -v b="$large_rss" 'BEGIN { printf "  peak RSS ratio large/small %.2f (goal: about 1, memory does not grow with the stream)\n", b / a }'
awk -v r="$spool_rss" 'BEGIN { printf "  peak RSS with parts over the budget %.1f MiB (goal: under the 256 MiB budget: %s)\n", r / 1024, (r / 1024 < 256 ? "met" : "MISSED") }'

# --bwlimit: the small stream again, limited to a third of the rate it just reached (so
# the limit binds on any machine) or to what makes the paced run last 5 s, whichever is
# lower. The rate is the compressed bytes (what the uplink carries) over the transfer:
# from the upload's start to its last part stored (the report's transfer_seconds). The
# whole run's time is shown too: it adds the tool's start and CompleteMultipartUpload,
# which s3s-fs spends copying every part into one file (0.8 s for 256 MiB, 3.7 s for
# 1 GiB here): work of the server, not of the uplink.
limit_kib=$(awk -v m="$stream_mib" -v s="$small_s" 'BEGIN {
  r = m * 1024 / (s > 0 ? s : 1) / 3; paced = m * 1024 / 5; if (paced < r) r = paced
  printf "%d", (r < 1024 ? 1024 : r) }')
read -r _ _ _ _ < <(synthetic "$stream_mib" "$((stream_mib * 1048576))" --bwlimit "${limit_kib}K")
jq -r --argjson limit "$((limit_kib * 1024))" '(.compressed_bytes / .transfer_seconds) as $rate
  | "  --bwlimit \($limit / 1048576 * 10 | round / 10) MiB/s: \(.compressed_bytes / 1048576 | round) MiB transferred in \(.transfer_seconds * 100 | round / 100) s (the run: \(.seconds * 100 | round / 100) s), \($rate / 1048576 * 10 | round / 10) MiB/s, \($rate / $limit * 1000 | round / 10) % of the limit (goal: 90 to 110 %: \(if ($rate / $limit) >= 0.9 and ($rate / $limit) <= 1.1 then "met" else "MISSED" end))"' "$work/stream.json"

# Encryption (s3.encryption, age): the dataset exported plain and encrypted to an age
# recipient, alternating, the same rounds; seconds and the tool's own CPU (user + sys)
# per GiB of the raw stream.
age-keygen -o "$work/age.key" 2>/dev/null
recipient=$(age-keygen -y "$work/age.key")
sed -i "s|secret_key_file: /etc/terrarium/secrets/s3-secret-key}|secret_key_file: /etc/terrarium/secrets/s3-secret-key, encryption: {recipients: [\"$recipient\"]}}|" "$root/etc/terrarium/config.yaml"
cp "$root/etc/terrarium/config.yaml" "$work/config.sealed"
sed "s|, encryption: {recipients: \[\"$recipient\"\]}}|}|" "$work/config.sealed" >"$work/config.plain"
# "seconds cpu-seconds" of a full export with config $1.
timed_export() {
  cp "$1" "$root/etc/terrarium/config.yaml"
  rm -rf "$root/var/lib/terrarium/lastsnapshots" "$root/var/lib/terrarium/catalog"
  bench_settle
  /usr/bin/time -f '%e %U %S' -o "$work/export.time" "$tool" export --full --json >"$work/export.json" 2>"$work/export.err" \
    || { cat "$work/export.err" >&2; exit 1; }
  awk '{ printf "%s %.2f\n", $1, $2 + $3 }' "$work/export.time"
}
declare -a plain_s plain_cpu sealed_s sealed_cpu
for round in $(seq "$rounds"); do
  order="plain sealed"; [ $((round % 2)) = 1 ] || order="sealed plain"
  for kind in $order; do
    read -r s cpu < <(timed_export "$work/config.$kind")
    key=$(jq -r '.instances[0].object_key' "$work/export.json")
    if [ "$kind" = plain ]; then plain_s+=("$s"); plain_cpu+=("$cpu"); else sealed_s+=("$s"); sealed_cpu+=("$cpu"); fi
    # The encrypted export really is one (an .age object), the plain one really is not.
    case "$kind:$key" in sealed:*.age | plain:*.zst) ;; *) echo "backup-export bench: the $kind export wrote $key" >&2; exit 1 ;; esac
  done
done
gib=$(awk -v b="$raw_bytes" 'BEGIN { print b / 1073741824 }')
echo "backup-export bench: encryption (age, one X25519 recipient), the same snapshot, $rounds rounds alternating"
for kind in plain sealed; do
  times=$(eval echo "\${${kind}_s[*]}") cpus=$(eval echo "\${${kind}_cpu[*]}")
  # shellcheck disable=SC2086 # the figures are words on purpose
  awk -v k="$kind" -v s="$(median $times)" -v c="$(median $cpus)" -v g="$gib" -v b="$raw_bytes" 'BEGIN {
    printf "  %-10s median %6.2f s, %7.1f MiB/s, CPU %6.2f s per GiB of raw stream\n", (k == "plain" ? "plain" : "encrypted"), s, b / 1048576 / s, c / g }'
done
# shellcheck disable=SC2046,SC2086
awk -v p="$(median "${plain_s[@]}")" -v e="$(median "${sealed_s[@]}")" -v pc="$(median "${plain_cpu[@]}")" -v ec="$(median "${sealed_cpu[@]}")" 'BEGIN {
  printf "  encrypted / plain: time %.2fx, CPU %.2fx\n", e / p, ec / pc }'

# Resume: a full export killed (SIGKILL, the test-only kill point) once 90 % of its
# parts are stored, then finished by the next run, against a fresh export; both under a
# --bwlimit of a third of the rate the plain export reached, as on a VPS uplink where
# the upload is what takes the time.
cp "$work/config.plain" "$root/etc/terrarium/config.yaml"
parts=$(( (compressed + 8388607) / 8388608 ))
if [ "$parts" -lt 2 ]; then
  echo "backup-export bench: resume: the stream is one part ($((compressed / 1024)) KiB); run with SIZE_MIB >= 64 to measure it"
  exit 0
fi
limit_kib=$(awk -v b="$raw_bytes" -v s="$(median "${plain_s[@]}")" 'BEGIN { r = b / 1024 / s / 3; printf "%d", (r < 1024 ? 1024 : r) }')
at=$(( parts * 9 / 10 )); [ "$at" -ge 1 ] || at=1
fresh() {
  rm -rf "$root/var/lib/terrarium/lastsnapshots" "$root/var/lib/terrarium/catalog"
  bench_settle
  /usr/bin/time -f '%e' -o "$work/resume.time" "$tool" export --full --json --bwlimit "${limit_kib}K" >"$work/resume.json" 2>"$work/resume.err" || true
  tail -1 "$work/resume.time" 2>/dev/null
}
fresh_s=$(fresh)
TERRARIUM_TEST_KILL_AFTER="export.part-$at-stored" fresh >/dev/null
rm -rf "$root/var/lib/terrarium/lastsnapshots" "$root/var/lib/terrarium/catalog"
bench_settle
/usr/bin/time -f '%e' -o "$work/resume.time" "$tool" export --json --bwlimit "${limit_kib}K" >"$work/resume.json" 2>"$work/resume.err" \
  || { cat "$work/resume.err" >&2; exit 1; }
resumed_s=$(tail -1 "$work/resume.time")
kept=$(jq -r '.instances[0].resumed_parts // 0' "$work/resume.json")
[ "$kept" -ge "$at" ] || { echo "backup-export bench: the resumed export kept $kept parts, expected >= $at" >&2; cat "$work/resume.json" >&2; exit 1; }
echo "backup-export bench: resume, --bwlimit $((limit_kib / 1024)) MiB/s, $parts parts of 8 MiB"
awk -v f="$fresh_s" -v r="$resumed_s" -v k="$kept" -v p="$parts" -v at="$at" 'BEGIN {
  printf "  fresh export %.2f s; killed once part %d of %d was stored (%d were by then, answers come out of order); the next run kept them and finished in %.2f s (%.2fx the fresh export)\n", f, at, p, k, r, r / f }'
