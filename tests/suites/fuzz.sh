#!/usr/bin/env bash
# Fuzz suite: builds the cargo-fuzz targets of tests/fuzz (the label parser and plan,
# the config loader, manifests and chains, the `lxc list` reader, the `ufw status`
# parser) and runs each for a few seconds from its seed corpus (tests/fuzz/corpus/).
# Prints each target's executions; fails on a crash, naming the input libFuzzer kept
# (under tests/fuzz/artifacts/TARGET/). docs/fuzzing.md has the long run.
#
#   bash tests/suites/fuzz.sh [TARGET...]    FUZZ_SECONDS=N per target (default 10)
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=tests/lib/env.sh
. tests/lib/env.sh

fuzz_dir=tests/fuzz
seconds=${FUZZ_SECONDS:-10}
case "$seconds" in
  '' | *[!0-9]* | 0) echo "fuzz suite: FUZZ_SECONDS=$seconds is not a whole number of seconds from 1" >&2; exit 2 ;;
esac
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz suite: cargo-fuzz is missing: run tests/install-deps (it installs the version tests/deps/harness.cargo names)" >&2
  exit 1
fi
# The fuzz build has its own flags (coverage instrumentation), so its own build
# directory; under the test cache, a fresh clone (CI) reuses the compiled dependencies.
export CARGO_TARGET_DIR="$TERRARIUM_TEST_CACHE/fuzz-target"

if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list --fuzz-dir "$fuzz_dir")
fi
[ ${#targets[@]} -gt 0 ] || { echo "fuzz suite: no targets in $fuzz_dir" >&2; exit 1; }

# Safe Rust needs no address sanitizer: a panic (a failed check) is the crash. The
# pinned stable toolchain builds this; debug assertions (overflow checks) stay on.
echo "fuzz: cargo fuzz build (${targets[*]}) into $CARGO_TARGET_DIR"
if [ $# -gt 0 ]; then
  for target in "${targets[@]}"; do cargo fuzz build --fuzz-dir "$fuzz_dir" --sanitizer none "$target"; done
else
  cargo fuzz build --fuzz-dir "$fuzz_dir" --sanitizer none
fi
bin_dir="$CARGO_TARGET_DIR/$(rustc -vV | sed -n 's/^host: //p')/release"

# New inputs the run finds go to a scratch corpus, not into the repository.
scratch=$(mktemp -d "${TMPDIR:-/tmp}/terrarium-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
failed=()
for target in "${targets[@]}"; do
  seeds="$fuzz_dir/corpus/$target"
  artifacts="$fuzz_dir/artifacts/$target"
  [ -d "$seeds" ] || { echo "fuzz suite: no seed corpus $seeds" >&2; exit 1; }
  mkdir -p "$artifacts" "$scratch/$target"
  log="$scratch/$target.log"
  status=0
  # -timeout: one input running 10 s is a hang, reported like a crash.
  "$bin_dir/$target" -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" "$scratch/$target" "$seeds" >"$log" 2>&1 || status=$?
  execs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$log" | tail -n 1)
  [ -n "$execs" ] || execs=$(sed -nE 's/^#([0-9]+)[[:space:]]+DONE.*/\1/p' "$log" | tail -n 1)
  corpus=$(find "$scratch/$target" "$seeds" -type f | wc -l)
  if [ "$status" = 0 ]; then
    echo "fuzz: $target: ${execs:-?} execs in ${seconds} s, no crash ($corpus inputs: seeds and new)"
  else
    artifact=$(sed -nE 's/.*Test unit written to (.*)$/\1/p' "$log" | tail -n 1)
    tail -n 40 "$log" >&2
    echo "fuzz suite: $target crashed after ${execs:-?} execs (exit $status); the input is ${artifact:-not written (see the log above)}" >&2
    echo "  reproduce: CARGO_TARGET_DIR=$CARGO_TARGET_DIR cargo fuzz run --fuzz-dir $fuzz_dir --sanitizer none $target ${artifact:-}" >&2
    failed+=("$target")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz suite: crashed: ${failed[*]}" >&2
  exit 1
fi
