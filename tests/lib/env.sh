# shellcheck shell=bash
# Environment shared by tests/run, the suites and the benchmarks.
# Tools installed by tests/install-deps live here, not in system paths we do not own.
export TERRARIUM_TEST_CACHE="${TERRARIUM_TEST_CACHE:-$HOME/.cache/terrarium-tests}"
# Go programs built by tests/install-deps (tests/deps/*.go), one link per binary.
export TERRARIUM_TEST_GOBIN="$TERRARIUM_TEST_CACHE/go/bin"
export PATH="$TERRARIUM_TEST_CACHE/venv/bin:$TERRARIUM_TEST_GOBIN:$HOME/.cargo/bin:/usr/sbin:/sbin:$PATH"
# One build directory for every checkout on this machine: a fresh clone (CI) reuses the
# compiled dependencies of the last run instead of building about 400 crates again.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$TERRARIUM_TEST_CACHE/target}"
