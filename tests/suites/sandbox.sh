#!/usr/bin/env bash
# CI runs the README's first command too: the end-to-end sandbox.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec tests/sandbox --no-install
