#!/usr/bin/env bash
# Bad-input suite: hundreds of wrong configs, flags, labels, instance lists, manifests,
# S3 and OIDC settings fed to the built tools (tests/bad-input/cases/*.yaml). Each case
# checks the exit code, that the message names the input and the fix, that nothing
# panicked, and that nothing under --root changed beyond what the tool documents.
# Programs that act on the host (lxc, zfs, systemctl, ufw, ansible-playbook, ...) are
# stand-ins; S3 is a real server (s3s-fs, from tests/install-deps) on loopback that no
# case may write to, and the runner re-runs itself in a network namespace of its own
# (unshare; only loopback), so no case reaches the network.
#
#   bash tests/suites/bad-input.sh [--filter SUBSTR] [-v]
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=tests/lib/env.sh
. tests/lib/env.sh

bin_dir="$CARGO_TARGET_DIR/debug"
tools=(terrarium-install terrarium-set terrarium-proxy-sync terrarium-backup terrarium-restore
  terrarium-idp-sync terrarium-status terrarium-reconfigure terrariumctl)
for tool in "${tools[@]}"; do
  if [ ! -x "$bin_dir/$tool" ]; then
    echo "bad-input suite: $bin_dir/$tool is missing: run cargo build --workspace --bins" >&2
    exit 1
  fi
done
# The system python: python3-yaml is a Debian package (the test venv has no PyYAML).
python=/usr/bin/python3
"$python" -c 'import yaml' 2>/dev/null || { echo "bad-input suite: PyYAML missing: apt install python3-yaml (tests/install-deps)" >&2; exit 1; }

exec "$python" tests/bad-input/run.py --bin-dir "$bin_dir" "$@"
