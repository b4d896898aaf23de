#!/usr/bin/env bash
# Benchmark: terrariumctl's added start-up over calling a tool directly.
# Runs a stand-in tool (a copy of `true`, so the tool itself costs almost nothing) both
# directly and as `terrariumctl noop`, side by side with hyperfine (no shell between),
# and prints both medians and their difference. Goal: added median <= 1 ms.
#   tests/bench/terrariumctl-startup.sh            default: 5 alternating rounds of 200 runs
#   BENCH_SMOKE=1 tests/bench/terrariumctl-startup.sh   one round of 5 runs (tests/run)
#   BENCH_RUNS=N overrides the runs per round.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=tests/lib/env.sh
. tests/lib/env.sh
# shellcheck source=tests/lib/release-repo.sh
. tests/lib/release-repo.sh

command -v hyperfine >/dev/null || { echo "terrariumctl-startup: hyperfine is missing: run tests/run; it installs the Debian package hyperfine" >&2; exit 1; }
# Rounds alternate the two commands so a load change on the machine hits both alike.
if [ "${BENCH_SMOKE:-0}" = 1 ]; then runs=${BENCH_RUNS:-5}; rounds=1; warmup=1; else runs=${BENCH_RUNS:-200}; rounds=5; warmup=20; fi

# The tools as a release builds them.
release_tools_build
target_dir=$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)

work=$(mktemp -d "${TMPDIR:-/tmp}/terrariumctl-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
# terrariumctl looks next to its own executable first: both live in $work.
cp "$target_dir/release/terrariumctl" "$work/terrariumctl"
cp "$(type -P true)" "$work/terrarium-noop"

# Sanity: the dispatch really runs the stand-in (exit code passes through).
"$work/terrariumctl" noop --flag value

for round in $(seq "$rounds"); do
  hyperfine --shell=none --style=basic --runs "$runs" --warmup "$warmup" \
    --export-json "$work/round-$round.json" \
    --command-name direct "$work/terrarium-noop --flag value" \
    --command-name terrariumctl "$work/terrariumctl noop --flag value" >"$work/hyperfine.log" 2>&1 \
    || { cat "$work/hyperfine.log" >&2; exit 1; }
done

# Median over every run of every round, in ms.
median_ms() {
  jq -s -r --arg name "$1" '[.[].results[] | select(.command == $name) | .times[]] | sort
    | (if length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end) * 1000' "$work"/round-*.json
}
direct=$(median_ms direct)
via=$(median_ms terrariumctl)
awk -v d="$direct" -v v="$via" -v runs="$((runs * rounds))" -v smoke="${BENCH_SMOKE:-0}" 'BEGIN {
  added = v - d
  printf "terrariumctl start-up (%d runs each, median):\n", runs
  printf "  direct tool           %.3f ms\n", d
  printf "  via terrariumctl      %.3f ms\n", v
  if (smoke == 1) verdict = "smoke run, too few runs to judge"; else verdict = (added <= 1 ? "met" : "MISSED")
  printf "  added by terrariumctl %.3f ms (goal <= 1 ms: %s)\n", added, verdict
}'
