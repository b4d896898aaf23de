#!/usr/bin/env bash
# Converge a Debian 12 systemd container (inside a namespaced LXD) with site.yml, prove
# the second run changes nothing, then check the result from inside the container.
# Roles run: base ssh firewall traefik cockpit oauth2_proxy sanoid terrarium. zfs, lxd
# and zitadel cannot run here (kernel ZFS, nested LXD on ZFS, ZITADEL's binary): see
# golden.sh. Exits non-zero on the first failed check.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
# shellcheck disable=SC1091
. tests/lib/env.sh
# shellcheck source=tests/ansible/lxd.sh disable=SC1091
. tests/ansible/lxd.sh

for tool in lxd lxc debootstrap ansible-playbook traefik ssh-keygen; do
  command -v "$tool" >/dev/null || { echo "converge: $tool missing: run tests/run; it installs it" >&2; exit 1; }
done
image=$(tests/ansible/build-image.sh)
work=$(mktemp -d /tmp/terrarium-ansible.XXXXXX)
chmod 0711 "$work"   # the container's mapped root must traverse to its rootfs
cleanup() { lxd_stop; rm -rf "$work"; }
trap cleanup EXIT
lxd_start "$work"

host=terrarium-host
lxc image import -q "$image" --alias terrarium-debian12 >/dev/null
lxc launch -q terrarium-debian12 "$host" -c security.nesting=true >/dev/null \
  || { lxc info --show-log "$host" | tail -20 >&2; echo "converge: container did not start" >&2; exit 1; }
in_host() { lxc exec "$host" -- "$@"; }
state=
for _ in $(seq 120); do
  state=$(lxc exec "$host" -- systemctl is-system-running --wait 2>/dev/null || true)
  case "$state" in running|degraded) break ;; esac
  sleep 1
done
echo "converge: container up ($state)"

fail() {
  echo "converge: FAIL: $*" >&2
  echo "converge: container journal (last 40 lines):" >&2
  lxc exec "$host" -- journalctl --no-pager -n 40 >&2 2>/dev/null || true
  exit 1
}

# What the Debian packages and terrarium-install would have put on the host.
push() { lxc file push -p --mode "$3" "$1" "$host$2" >/dev/null; }
push "$(command -v traefik)" /root/test-files/traefik 0644
push tests/ansible/fixtures/oauth2-proxy /root/test-files/oauth2-proxy 0644
# The real terrarium-backup when it is built (its sanoid-config needs only config.yaml),
# else a stand-in; a stand-in for proxy sync (the real one needs LXD); units from
# units/ when the packages' units exist there.
backup=tests/ansible/fixtures/terrarium-backup
target_dir=${CARGO_TARGET_DIR:-target} # where cargo builds (tests/lib/env.sh sets it)
for built in "$target_dir/release/terrarium-backup" "$target_dir/debug/terrarium-backup"; do
  if [ -x "$built" ] && "$built" sanoid-config --help >/dev/null 2>&1; then backup=$built; break; fi
done
echo "converge: terrarium-backup from $backup"
push "$backup" /usr/bin/terrarium-backup 0755
push tests/ansible/fixtures/terrarium-proxy-sync /usr/bin/terrarium-proxy-sync 0755
# The packages' units; a stand-in from fixtures/units only where units/ lacks one.
for unit in units/* tests/ansible/fixtures/units/*; do
  name=$(basename "$unit")
  [ "$unit" != "units/$name" ] && [ -f "units/$name" ] && continue
  push "$unit" "/lib/systemd/system/$name" 0644
done
ssh-keygen -q -t ed25519 -N '' -C terrarium-test -f "$work/id_ed25519"
push "$work/id_ed25519.pub" /root/.ssh/authorized_keys 0600
push tests/ansible/fixtures/config.yaml /etc/terrarium/config.yaml 0600
printf 'test-client-secret\n' > "$work/oidc-client-secret"
push "$work/oidc-client-secret" /etc/terrarium/secrets/oidc-client-secret 0600
# No mirror is reachable from the container: record a fresh apt index the way a host
# that ran apt-get update recently has one, so cache_valid_time holds.
in_host sh -c 'mkdir -p /var/lib/apt/periodic && touch /var/lib/apt/periodic/update-success-stamp'

sha() { sha256sum "$1" | cut -d' ' -f1; }
cat > "$work/release-overrides.json" <<JSON
{
  "terrarium_traefik_url": "file:///root/test-files/traefik",
  "terrarium_traefik_checksum": "sha256:$(sha "$(command -v traefik)")",
  "terrarium_oauth2_proxy_url": "file:///root/test-files/oauth2-proxy",
  "terrarium_oauth2_proxy_checksum": "sha256:$(sha tests/ansible/fixtures/oauth2-proxy)"
}
JSON
printf '%s ansible_connection=community.general.lxd ansible_python_interpreter=/usr/bin/python3\n' "$host" > "$work/inventory"

converge_tags=base,ssh,firewall,traefik,cockpit,oauth2_proxy,sanoid,terrarium
converge() { # LOG [extra ansible-playbook args]
  local log=$1; shift
  ANSIBLE_CONFIG=ansible/ansible.cfg ANSIBLE_FORCE_COLOR=0 ansible-playbook -i "$work/inventory" ansible/site.yml \
    --tags "${tags:-$converge_tags}" -e @tests/ansible/vars/converge.json -e @"$work/release-overrides.json" \
    -e @tests/ansible/vars/secrets.json "$@" >"$log" 2>&1 || { tail -40 "$log" >&2; fail "ansible-playbook failed ($log)"; }
  grep -A2 '^PLAY RECAP' "$log" | tail -n +2 | grep -v '^$'
}
recap_changed() { grep -A1 '^PLAY RECAP' "$1" | sed -n 's/.*changed=\([0-9]*\).*/\1/p'; }

echo "converge: first run"
converge "$work/run1.log"
[ "$(recap_changed "$work/run1.log")" -gt 0 ] || fail "first run changed nothing"

# Proxy sync adds raw TCP entrypoints between its markers; a re-run must keep them.
in_host python3 - <<'PY'
p = "/etc/traefik/traefik.yml"
s = open(p).read()
end = "  # END terrarium-proxy-sync managed entrypoints"
assert s.count(end) == 1, "END marker missing"
s = s.replace(end, '  tcp-2222:\n    address: ":2222/tcp"\n' + end)
open(p, "w").write(s)
PY

echo "converge: second run (must change nothing)"
converge "$work/run2.log"
if [ "$(recap_changed "$work/run2.log")" != 0 ]; then
  grep -E '^(changed|TASK)' "$work/run2.log" | grep -B1 '^changed' >&2 || true
  fail "second run changed something (idempotence)"
fi

echo "converge: checks"
in_host grep -q '^  tcp-2222:$' /etc/traefik/traefik.yml || fail "proxy sync's entrypoint was dropped"
sshd_t=$(in_host /usr/sbin/sshd -T)
grep -qx 'passwordauthentication no' <<<"$sshd_t" || fail "sshd -T: password authentication not off"
grep -qx 'kbdinteractiveauthentication no' <<<"$sshd_t" || fail "sshd -T: keyboard-interactive not off"
grep -qx 'permitrootlogin without-password' <<<"$sshd_t" || fail "sshd -T: root not key-only"

ufw_ports() { in_host ufw status | awk '/ ALLOW / {print $1}' | sort -u | paste -sd' '; }
in_host ufw status verbose | grep -q '^Status: active' || fail "ufw not active"
in_host ufw status verbose | grep -q 'deny (incoming), allow (outgoing)' || fail "ufw default policy"
[ "$(ufw_ports)" = "22/tcp 443/tcp 51820/udp 80/tcp" ] || fail "ufw opens $(ufw_ports)"

[ "$(in_host curl -fsS http://127.0.0.1:8080/ping)" = OK ] || fail "Traefik does not answer on loopback"
routers=$(in_host curl -fsS http://127.0.0.1:8080/api/http/routers)
for router in terrarium-cockpit@file terrarium-dashboard@file terrarium-oauth2-manage@file terrarium-oauth2-proxy@file; do
  grep -q "\"$router\"" <<<"$routers" || fail "Traefik lacks router $router"
done
in_host curl -fsS http://127.0.0.1:8080/api/tcp/routers | grep -q '"terrarium-lxd@file"' || fail "Traefik lacks the LXD passthrough"
in_host curl -fsS http://127.0.0.1:8080/api/http/middlewares | grep -q '"terrarium-admin-auth@file"' || fail "no admin ForwardAuth middleware"
redirect=$(in_host curl -s -o /dev/null -w '%{http_code} %{redirect_url}' -H 'Host: manage.example.test' http://127.0.0.1/)
[ "$redirect" = "301 https://manage.example.test/" ] || fail "http redirect: $redirect"
[ "$(in_host curl -fsS http://127.0.0.1:4180/ping)" = OK ] || fail "oauth2-proxy (stand-in) not on loopback"
in_host curl -fsS -o /dev/null http://127.0.0.1:9090/ || fail "Cockpit does not answer on loopback"
listeners=$(in_host ss -ltnH | awk '{print $4}' | grep -E ':(9090|8080|4180)$' | sort | paste -sd' ')
[ "$listeners" = "127.0.0.1:4180 127.0.0.1:8080 127.0.0.1:9090" ] || fail "loopback services listen on: $listeners"
in_host getent shadow root | grep -q '^root:[$]6[$]' || fail "root has no password for Cockpit PAM"
in_host grep -qx root /etc/cockpit/disallowed-users && fail "root still disallowed in Cockpit"
in_host grep -q '^\[terrarium/containers\]' /etc/sanoid/sanoid.conf || fail "sanoid.conf not rendered by terrarium-backup"
for unit in traefik.service oauth2-proxy.service cockpit.socket sanoid.timer ssh.service \
  terrarium-proxy-sync.timer terrarium-proxy-sync-watch.service terrarium-backup-export.timer \
  terrarium-backup-verify.timer; do
  [ "$(in_host systemctl is-enabled "$unit")" = enabled ] || fail "$unit not enabled"
done
# The retention has no [Install]: the export service starts it after each export.
[ "$(in_host systemctl is-enabled terrarium-backup-prune.service || true)" = static ] || fail "terrarium-backup-prune.service not installed as a static unit"
in_host systemctl show -p OnSuccess --value terrarium-backup-export.service | grep -qx terrarium-backup-prune.service \
  || fail "the export service does not start the retention after an export"
for unit in traefik.service oauth2-proxy.service terrarium-proxy-sync-watch.service terrarium-backup-export.timer \
  terrarium-backup-verify.timer; do
  in_host systemctl is-active -q "$unit" || fail "$unit not active"
done
failed_units=$(in_host systemctl --failed --plain --no-legend | awk '{print $1}' | paste -sd' ')
# sanoid.service may fail here: the container has no ZFS to snapshot.
echo "converge: failed units in the container (not ours): ${failed_units:-none}"
grep -qE 'traefik|oauth2|cockpit|ssh|terrarium|ufw' <<<"$failed_units" && fail "units failed: $failed_units"
[ "$(in_host systemctl is-enabled terrarium-backup-replicate.timer || true)" = disabled ] || fail "replicate timer enabled without syncoid"

# A port dropped from the config closes; proxy sync's own rules stay.
echo "converge: third run (extra port dropped, a proxy sync rule present)"
in_host ufw allow 10022/tcp comment terrarium-proxy-sync >/dev/null
converge "$work/run3.log" -e '{"terrarium_firewall_extra_ports": []}'
[ "$(ufw_ports)" = "10022/tcp 22/tcp 443/tcp 80/tcp" ] || fail "after dropping 51820/udp ufw opens $(ufw_ports)"
# zfs and lxd cannot converge here (no kernel ZFS, no LXD on ZFS inside the container):
# run them in check mode and require the planned commands; golden.sh covers the rest.
echo "converge: check mode of the zfs and lxd roles (and sanoid's --dry-run)"
tags=zfs,lxd,sanoid converge "$work/check.log" --check
grep -A1 '^TASK \[sanoid : Render sanoid.conf' "$work/check.log" | grep -q '^ok:' \
  || fail "check mode: terrarium-backup sanoid-config --dry-run reported a change on a converged host"
for planned in \
  "truncate -s 4G /var/lib/terrarium/terrarium.img" \
  "zpool create -o ashift=12 -O compression=zstd -O atime=off -O xattr=sa -O dedup=off -O normalization=formD -m none terrarium /var/lib/terrarium/terrarium.img" \
  "lxc config set core.https_address 127.0.0.1:8443" \
  "lxc storage create terrarium zfs source=terrarium" \
  "lxc profile create terrarium"; do
  grep -qF "\"$planned\"" "$work/check.log" || fail "check mode did not plan: $planned"
done
in_host test ! -e /var/lib/terrarium/terrarium.img || fail "check mode created the pool file"
echo "converge: ok"
