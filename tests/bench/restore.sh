#!/usr/bin/env bash
# Benchmark: S3 restore throughput and peak memory of terrarium-restore against the plain
# pipe `aws s3 cp - | zstd -d | zfs receive`, side by side on the same S3 object.
#
# A dataset of SIZE_MIB (half random, half text) on a file-backed zfs-fuse pool is sent
# once (`zfs send | zstd -3`), uploaded to s3s-fs on loopback with a terrarium-backup
# manifest, then restored by both, alternating, each into a fresh dataset. Prints
# the median and best seconds, MiB/s of the stream and peak RSS (GNU time) for each, and
# the ratio (the median of the rounds' ratios: each round's pair ran side by side).
# Each round also times, twice, the two halves of an S3 restore uncoupled and at once on
# the same cores:
#  - floor: the object downloaded by the same ranged downloader into a sink that only
#    counts (no hashing, no zstd), while `zfs receive` reads the raw stream from a file.
#    Strictly less work than any restore: pipe / floor bounds what any restore could
#    reach against these servers on this machine.
#  - the same work uncoupled: the same, plus the work a restore cannot skip: the
#    download hashed (SHA-256, to check the object against its manifest), while
#    another process decodes the compressed stream from a file into `zfs receive`
#    (zstd, through the restore's 1 MiB pipe and 1 MiB writes:
#    `examples/decode_receive.rs`). Not a strict bound (the decoder runs in a process
#    of its own), but it tells how much of the gap between a restore and the floor is
#    that work, and how much is coupling the two halves.
# One warm-up round (both commands, not measured) comes first: the first receives
# after the dataset was written cost zfs-fuse several times its usual CPU (5 to 15
# CPU-s instead of 1.5 to 2), which made the first measured round an outlier.
# Goal: terrarium-restore >= 1.5x the pipe's throughput, peak RSS <= 128 MiB.
#   tests/bench/restore.sh                 default: a 1 GiB dataset, 5 rounds
#   BENCH_SMOKE=1 tests/bench/restore.sh   8 MiB, 1 round (tests/run)
#   SIZE_MIB=N ROUNDS=N override.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=tests/lib/env.sh
. tests/lib/env.sh

if [ "${BENCH_SMOKE:-0}" = 1 ]; then size_mib=${SIZE_MIB:-8}; rounds=${ROUNDS:-1}; else size_mib=${SIZE_MIB:-1024}; rounds=${ROUNDS:-5}; fi
for program in zfs zpool zfs-fuse zstd aws s3s-fs jq /usr/bin/time sha256sum; do
  command -v "$program" >/dev/null || { echo "restore bench: $program is missing: run tests/run; it installs it (tests/deps)" >&2; exit 1; }
done

# The tools as a release builds them, and the floors (one build, shared with the
# other S3 bench).
# shellcheck source=tests/lib/s3-bench.sh
. tests/lib/s3-bench.sh
bench_build
target_dir=$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)
tool="$target_dir/release/terrarium-restore" floor="$target_dir/release/examples/download_floor"
decode="$target_dir/release/examples/decode_receive"

work=$(mktemp -d "${TMPDIR:-/tmp}/restore-bench.XXXXXX")
pool="rb$$"
s3_pid=""
cleanup() {
  local status=$?
  if [ -n "$s3_pid" ]; then kill "$s3_pid" 2>/dev/null; wait "$s3_pid" 2>/dev/null || true; fi
  # zfs-fuse says "busy" for a while after receives: retry, then export (cachefile=none:
  # an exported pool is not imported again).
  for _ in $(seq 120); do
    zpool list "$pool" >/dev/null 2>&1 || break
    zpool destroy -f "$pool" 2>/dev/null || sleep 0.5
  done
  zpool list "$pool" >/dev/null 2>&1 && zpool export -f "$pool"
  # Never delete through a mount that is still alive.
  if grep -q " $work/" /proc/mounts; then
    echo "restore bench: $work is still mounted; left in place" >&2
  else
    rm -rf "$work"
  fi
  exit "$status"
}
trap cleanup EXIT

bench_pool "$((size_mib * 6 + 512))"

# The dataset: half random, half text, in files of up to 8 MiB.
half=$((size_mib / 2)); [ "$half" -ge 1 ] || half=1
chunk=$(( half < 8 ? half : 8 ))
for i in $(seq "$(( half / chunk ))"); do
  head -c "${chunk}M" /dev/urandom >"$work/mnt/containers/src/random-$i.bin"
  # `yes` ends by SIGPIPE when head has enough: not a failure.
  { yes "line $i of a text file that compresses well, like logs and source code do" || true; } | head -c "${chunk}M" >"$work/mnt/containers/src/text-$i.txt"
done
# Every LXD instance volume holds its backup.yaml, which `--as-new` rewrites for the new
# name: LXD 5.0's, for an instance named src.
sed 's/^  name: web$/  name: src/' tools/terrarium-restore/tests/fixtures/lxd-5.0.2-backup.yaml \
  >"$work/mnt/containers/src/backup.yaml"
zfs snapshot "$pool/containers/src@bench"
snap_guid=$(zfs get -Hp -o value guid "$pool/containers/src@bench")
snap_txg=$(zfs get -Hp -o value createtxg "$pool/containers/src@bench")
zfs send "$pool/containers/src@bench" | tee "$work/stream.raw" | zstd -3 -q -T0 -c >"$work/stream.zst"
raw_bytes=$(stat -c %s "$work/stream.raw")
compressed_bytes=$(stat -c %s "$work/stream.zst")
sha=$(sha256sum "$work/stream.zst" | cut -d' ' -f1)

bench_s3
key="bench/benchhost/src/bench.zfs.zst"
aws --endpoint-url "$endpoint" s3 cp --quiet "$work/stream.zst" "s3://bucket/$key"
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
jq -n --arg host benchhost --arg ds "$pool/containers/src" --arg guid "$snap_guid" --argjson txg "$snap_txg" \
  --arg key "$key" --argjson raw "$raw_bytes" --argjson comp "$compressed_bytes" --arg sha "$sha" --arg now "$now" \
  '{schema_version: 1, host: $host, instance: "src", dataset: $ds, snapshot: {name: "bench", guid: $guid, createtxg: $txg},
    base: null, kind: "full", object_key: $key, raw_bytes: $raw, compressed_bytes: $comp, sha256: $sha,
    compression: "zstd", zstd_level: 3, tool_version: "bench", started_at: $now, finished_at: $now}' >"$work/manifest.json"
aws --endpoint-url "$endpoint" s3 cp --quiet "$work/manifest.json" "s3://bucket/bench/benchhost/src/bench.manifest.json"

# The tool's host: a root prefix with the config and the secret.
bench_root ""
# No LXD in this bench (it measures the S3 → ZFS pipeline): a stand-in `lxc` says that no
# instance of the new name exists, which is all `--as-new` asks LXD.
mkdir -p "$work/bin"
printf '#!/bin/sh\necho "Error: Instance not found" >&2\nexit 1\n' >"$work/bin/lxc"
printf '#!/bin/sh\nexit 0\n' >"$work/bin/lxd"
chmod 755 "$work/bin/lxc" "$work/bin/lxd"

# Run a command under GNU time; append "seconds peak-RSS-KiB s3s-fs-CPU-s zfs-fuse-CPU-s"
# to $work/$1.figures.
measure() {
  local name=$1; shift
  bench_settle
  bench_servers_before
  /usr/bin/time -f '%e %M' -o "$work/$name.time" "$@" >"$work/$name.log" 2>&1 || { cat "$work/$name.log" >&2; exit 1; }
  echo "$(cat "$work/$name.time") $(bench_servers_since)" >>"$work/$name.figures"
}

# zfs-fuse stays "busy" for a while after a receive: retry.
destroy() {
  for _ in $(seq 60); do
    zfs destroy -r "$1" 2>/dev/null && return 0
    sleep 0.5
  done
  echo "restore bench: cannot destroy $1" >&2
  exit 1
}

run_pipe() {
  measure pipe bash -o pipefail -c \
    "aws --endpoint-url '$endpoint' s3 cp --quiet 's3://bucket/$key' - | zstd -d -q | zfs receive '$pool/containers/pipe$1'"
}
run_tool() {
  measure tool env PATH="$work/bin:$PATH" TERRARIUM_ROOT="$root" TERRARIUM_LOG_FORMAT=logfmt \
    "$tool" --instance src --source s3 --from-host benchhost --as-new "tool$1"
}
# halves NAME DOWNLOAD_FLAG RECEIVE...: the download (with DOWNLOAD_FLAG, if any) and the
# RECEIVE command at once; append the seconds until both ended to $work/NAME.figures.
halves() {
  local name=$1 flag=$2 started download
  shift 2
  bench_settle
  started=$(date +%s.%N)
  TERRARIUM_ROOT="$root" "$floor" "$key" "$compressed_bytes" ${flag:+"$flag"} >/dev/null &
  download=$!
  "$@"
  wait "$download"
  echo "$started $(date +%s.%N)" | awk '{ printf "%.2f\n", $2 - $1 }' >>"$work/$name.figures"
}
# Writing the dataset left zfs-fuse busy for a while: the first round must not pay for it.
bench_settle 60
run_pipe warmup; run_tool warmup
destroy "$pool/containers/pipewarmup"; destroy "$pool/containers/toolwarmup"
rm "$work/pipe.figures" "$work/tool.figures"
for round in $(seq "$rounds"); do
  # Alternate who goes first, so that neither always meets the caches the other left.
  if [ $((round % 2)) = 1 ]; then run_pipe "$round"; run_tool "$round"; else run_tool "$round"; run_pipe "$round"; fi
  # Same result: the received snapshots have the source's GUID.
  for ds in "pipe$round" "tool$round"; do
    got=$(zfs get -Hp -o value guid "$pool/containers/$ds@bench")
    [ "$got" = "$snap_guid" ] || { echo "restore bench: $ds@bench has guid $got, expected $snap_guid" >&2; exit 1; }
  done
  destroy "$pool/containers/pipe$round"
  destroy "$pool/containers/tool$round"
  halves floor "" zfs receive "$pool/containers/floor$round" <"$work/stream.raw"
  destroy "$pool/containers/floor$round"
  halves uncoupled --sha256 "$decode" "$work/stream.zst" "$pool/containers/uncoupled$round"
  destroy "$pool/containers/uncoupled$round"
done
# shellcheck source=tests/lib/stats.sh
. tests/lib/stats.sh
read -ra pipe_s < <(cut -d' ' -f1 "$work/pipe.figures" | xargs); read -ra pipe_rss < <(cut -d' ' -f2 "$work/pipe.figures" | xargs)
read -ra tool_s < <(cut -d' ' -f1 "$work/tool.figures" | xargs); read -ra tool_rss < <(cut -d' ' -f2 "$work/tool.figures" | xargs)
read -ra floor_s < <(xargs <"$work/floor.figures")
read -ra work_s < <(xargs <"$work/uncoupled.figures")
ratios=$(round_ratios "${pipe_s[*]}" "${tool_s[*]}")
floor_ratios=$(round_ratios "${pipe_s[*]}" "${floor_s[*]}")
work_ratios=$(round_ratios "${pipe_s[*]}" "${work_s[*]}")
coupling=$(round_ratios "${tool_s[*]}" "${work_s[*]}")
# shellcheck disable=SC2086 # the ratios are words on purpose
ratio=$(median $ratios) floor_ratio=$(median $floor_ratios) work_ratio=$(median $work_ratios) coupling_ratio=$(median $coupling)

awk -v raw="$raw_bytes" -v comp="$compressed_bytes" -v rounds="$rounds" -v size="$size_mib" \
  -v tm="$(median "${tool_s[@]}")" -v tb="$(best "${tool_s[@]}")" -v pm="$(median "${pipe_s[@]}")" -v pb="$(best "${pipe_s[@]}")" \
  -v fm="$(median "${floor_s[@]}")" -v fb="$(best "${floor_s[@]}")" -v floor="$floor_ratio" \
  -v wm="$(median "${work_s[@]}")" -v wb="$(best "${work_s[@]}")" -v work="$work_ratio" -v coupling="$coupling_ratio" -v couplings="$coupling" \
  -v tr="$(worst "${tool_rss[@]}")" -v pr="$(worst "${pipe_rss[@]}")" -v ratio="$ratio" -v ratios="$ratios" 'BEGIN {
  mib = raw / 1048576
  printf "S3 restore of a %d MiB dataset (stream %.0f MiB, %.0f MiB compressed), %d rounds, who goes first alternating:\n", size, mib, comp / 1048576, rounds
  printf "  %-36s %8s %8s %12s %14s\n", "", "median", "best", "MiB/s (med)", "peak RSS"
  printf "  %-36s %6.2f s %6.2f s %12.1f %10.1f MiB\n", "aws s3 cp - | zstd -d | zfs receive", pm, pb, mib / pm, pr / 1024
  printf "  %-36s %6.2f s %6.2f s %12.1f %10.1f MiB\n", "terrarium-restore --source s3", tm, tb, mib / tm, tr / 1024
  printf "  %-36s %6.2f s %6.2f s %12.1f\n", "floor: download || receive from file", fm, fb, mib / fm
  printf "  %-36s %6.2f s %6.2f s %12.1f\n", "uncoupled: + sha256 || + zstd -d", wm, wb, mib / wm
  printf "  throughput ratio, median of the rounds: %.2fx (goal >= 1.5x: %s); each round: %s; best against best: %.2fx\n", ratio, (ratio >= 1.5 ? "met" : "MISSED"), ratios, pb / tb
  printf "  the most any restore could reach against these servers here (pipe / floor, median): %.2fx\n", floor
  printf "  what the same work uncoupled reaches (pipe / uncoupled, median): %.2fx\n", work
  printf "  the restore against the same work uncoupled (time ratio, median): %.2f; each round: %s\n", coupling, couplings
  printf "  peak RSS %.1f MiB (goal <= 128 MiB: %s)\n", tr / 1024, (tr / 1024 <= 128 ? "met" : "MISSED")
}'
echo "  CPU the loopback servers used on this machine's $(nproc) cores (they compete with what is measured), per round:"
for name in pipe tool; do
  awk -v name="$name" '{ line = line sprintf(" s3s-fs %ss, zfs-fuse %ss;", $3, $4) } END { sub(/;$/, "", line); printf "    %s:%s\n", name, line }' "$work/$name.figures"
done
