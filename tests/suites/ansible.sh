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
echo "-- bad variables stop the run before any role (check mode, facts only)"
validate() {
  ANSIBLE_CONFIG=ansible/ansible.cfg ansible-playbook -i localhost, -c local ansible/site.yml --tags always --check \
    -e @tests/ansible/vars/converge.json "$@" 2>&1
}
validate >/dev/null || { echo "ansible suite: the valid test variables were rejected" >&2; exit 1; }
if out=$(validate -e '{"terrarium_ssh_port": 70000}'); then
  echo "ansible suite: terrarium_ssh_port=70000 was accepted" >&2; exit 1
fi
grep -q "terrarium_ssh_port.maximum' 70000 is greater than the maximum" <<<"$out" \
  || { echo "ansible suite: no clear error for terrarium_ssh_port=70000:" >&2; echo "$out" | tail -5 >&2; exit 1; }
echo "-- shellcheck"
shellcheck -x tests/suites/ansible.sh tests/ansible/*.sh tests/ansible/fixtures/terrarium-backup tests/ansible/fixtures/terrarium-proxy-sync
echo "-- contract"
# The system python: python3-jsonschema/python3-yaml come from tests/deps/ansible.apt.
/usr/bin/python3 tests/ansible/check-contract.py
echo "-- golden (zfs, lxd, zitadel: no kernel ZFS, nested LXD or ZITADEL here)"
tests/ansible/golden.sh
echo "-- converge in a Debian 12 container"
tests/ansible/converge.sh
