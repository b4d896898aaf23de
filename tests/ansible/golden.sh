#!/usr/bin/env bash
# Golden tests of the zfs, lxd and zitadel roles (and the templates they share with
# traefik and oauth2_proxy): kernel ZFS, LXD 5.21 on ZFS and ZITADEL cannot run here, so
# their plans and rendered files are compared with reviewed copies.
#   tests/ansible/golden.sh           compare (fails on any difference)
#   tests/ansible/golden.sh --update  rewrite golden/expected (review the diff!)
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
ANSIBLE_CONFIG=$repo/ansible/ansible.cfg ANSIBLE_ROLES_PATH=$repo/ansible/roles \
ANSIBLE_FILTER_PLUGINS=$repo/ansible/filter_plugins ANSIBLE_LOCALHOST_WARNING=false \
  ansible-playbook -i localhost, "$repo/tests/ansible/golden.yml" -e terrarium_golden_out="$out" >"$out.log" 2>&1 \
  || { tail -30 "$out.log" >&2; rm -f "$out.log"; echo "golden: playbook failed" >&2; exit 1; }
rm -f "$out.log"
expected=$repo/tests/ansible/golden/expected
if [ "${1:-}" = --update ]; then
  rm -rf "$expected"; cp -r "$out" "$expected"; echo "golden: updated $expected"; exit 0
fi
diff -ru "$expected" "$out" || { echo "golden: output differs from $expected" >&2; exit 1; }
echo "golden: ok ($(find "$expected" -type f | wc -l) files)"
