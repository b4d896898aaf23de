#!/usr/bin/env bash
# The ansible/ playbook: lint, syntax, contract with the Rust side, golden plans of the
# roles that cannot run here (zfs, lxd, zitadel), and a real converge of the rest in a
# Debian 12 systemd container inside a namespaced LXD, twice (the second run must
# report changed=0). Any failed check fails the suite.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck disable=SC1091
. tests/lib/env.sh
for tool in ansible-playbook ansible-lint shellcheck python3; do
  command -v "$tool" >/dev/null || { echo "ansible suite: $tool missing: run tests/run; it installs it" >&2; exit 1; }
done

echo "-- ansible-lint (production profile)"
(cd ansible && ansible-lint --offline --nocolor -p)
echo "-- syntax check"
ANSIBLE_CONFIG=ansible/ansible.cfg ansible-playbook -i localhost, --syntax-check ansible/site.yml
echo "-- shellcheck"
shellcheck -x tests/suites/ansible.sh tests/ansible/*.sh tests/ansible/fixtures/terrarium-backup tests/ansible/fixtures/terrarium-proxy-sync
echo "-- contract"
python3 tests/ansible/check-contract.py
echo "-- golden (zfs, lxd, zitadel: no kernel ZFS, nested LXD or ZITADEL here)"
tests/ansible/golden.sh
echo "-- converge in a Debian 12 container"
tests/ansible/converge.sh
