#!/usr/bin/env bash
# Under a real systemd: install the built terrarium-proxy-sync .deb with dpkg in a Debian 12
# systemd container inside a namespaced LXD, check the package left its timer enabled but
# not started, start the timer and wait for it to fire the service. Then install the
# terrarium-backup .deb and check a failed export is visible (unit, journal priorities,
# the OnFailure= hook).
#   tests/packaging/systemd-timer.sh DEBS_DIR
# Reuses the ansible suite's container image and namespaced LXD (tests/ansible/build-image.sh,
# tests/ansible/lxd.sh), read-only. Exits non-zero on the first failed check.
set -euo pipefail
debs=$(cd "${1:?usage: systemd-timer.sh DEBS_DIR}" && pwd)
cd "$(dirname "$0")/../.."
# shellcheck source=tests/lib/env.sh
. tests/lib/env.sh
# shellcheck source=tests/ansible/lxd.sh
. tests/ansible/lxd.sh
for tool in lxd lxc debootstrap; do
  command -v "$tool" >/dev/null || { echo "systemd-timer: $tool missing: run tests/run; it installs it" >&2; exit 1; }
done
deb=$(find "$debs" -name 'terrarium-proxy-sync_*.deb' | head -n 1)
[ -n "$deb" ] || { echo "systemd-timer: no terrarium-proxy-sync .deb in $debs" >&2; exit 1; }

image=$(tests/ansible/build-image.sh)
work=$(mktemp -d /tmp/terrarium-pkg-systemd.XXXXXX)
chmod 0711 "$work" # the container's mapped root must traverse to its rootfs
cleanup() { lxd_stop; rm -rf "$work"; }
trap cleanup EXIT
lxd_start "$work"

ct=terrarium-pkg
lxc image import -q "$image" --alias terrarium-pkg-debian12 >/dev/null
lxc launch -q terrarium-pkg-debian12 "$ct" >/dev/null ||
  { lxc info --show-log "$ct" | tail -20 >&2; echo "systemd-timer: container did not start" >&2; exit 1; }
in_ct() { lxc exec "$ct" -- "$@"; }
# becomes_nonzero SECONDS PROPERTY UNIT: wait until `systemctl show -P PROPERTY UNIT`
# (a timestamp, 0 until the event) is set; fails after SECONDS.
becomes_nonzero() {
  for _ in $(seq "$1"); do
    [ "$(in_ct systemctl show -P "$2" "$3")" != 0 ] && return 0
    sleep 1
  done
  return 1
}
state=
for _ in $(seq 120); do
  state=$(in_ct systemctl is-system-running --wait 2>/dev/null || true)
  case "$state" in running | degraded) break ;; esac
  sleep 1
done
echo "systemd-timer: container up ($state)"
fail() {
  echo "systemd-timer: FAIL: $*" >&2
  in_ct journalctl --no-pager -n 40 -u terrarium-proxy-sync.service -u terrarium-proxy-sync.timer \
    -u terrarium-backup-export.service -u terrarium-backup-prune.service -u 'terrarium-failed@*' >&2 2>/dev/null || true
  exit 1
}

lxc file push -q "$deb" "$ct/root/terrarium-proxy-sync.deb"
in_ct dpkg -i /root/terrarium-proxy-sync.deb >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; fail "dpkg -i terrarium-proxy-sync"; }
[ "$(in_ct systemctl is-enabled terrarium-proxy-sync.timer 2>&1)" = enabled ] || fail "the timer is not enabled after install"
[ "$(in_ct systemctl is-active terrarium-proxy-sync.timer 2>&1)" = inactive ] || fail "the timer was started by the install"
[ "$(in_ct systemctl is-active terrarium-proxy-sync-watch.service 2>&1)" = inactive ] || fail "the watch service was started by the install"
[ "$(in_ct systemctl show -P ExecMainStartTimestampMonotonic terrarium-proxy-sync.service)" = 0 ] ||
  fail "the sync service ran at install"
echo "ok   under systemd: timer enabled, nothing started by dpkg -i"

# On a fresh install (no /etc/terrarium/config.yaml) the timer fires but the service is
# skipped by its ConditionPathExists=: quiet until terrarium-install has run.
in_ct systemctl start terrarium-proxy-sync.timer
becomes_nonzero 90 LastTriggerUSecMonotonic terrarium-proxy-sync.timer || fail "the timer did not fire within 90 s"
sleep 1
[ "$(in_ct systemctl show -P ExecMainStartTimestampMonotonic terrarium-proxy-sync.service)" = 0 ] ||
  fail "the sync ran without /etc/terrarium/config.yaml"
echo "ok   under systemd: the started timer fires; without a config the service is skipped"

# With the config terrarium-install persists (the ansible suite's fixture), the next
# firing (OnUnitActiveSec=1min) runs the packaged binary.
lxc file push -q -p --mode 0600 tests/ansible/fixtures/config.yaml "$ct/etc/terrarium/config.yaml"
becomes_nonzero 100 ExecMainStartTimestampMonotonic terrarium-proxy-sync.service ||
  fail "the timer did not run terrarium-proxy-sync.service within 100 s of the config appearing"
# It ran the packaged binary (without LXD it may fail: that is its business), and systemd
# could set up its sandbox (226/NAMESPACE means a ReadWritePaths= directory is missing).
sleep 2
status=$(in_ct systemctl show -P ExecMainStatus terrarium-proxy-sync.service)
[ "$status" != 226 ] || fail "terrarium-proxy-sync.service could not set up its namespace (226/NAMESPACE): a ReadWritePaths= directory is missing on a fresh install"
[ "$status" != 203 ] || fail "terrarium-proxy-sync.service could not execute its binary (203/EXEC)"
echo "ok   under systemd: terrarium-proxy-sync.timer fired terrarium-proxy-sync.service, which ran the packaged binary (exit status $status)"

# The backup units' failures are visible: an export that fails (the configured pool
# `terrarium` does not exist here; zfs-fuse came with sanoid) fails its unit (no
# SuccessExitStatus= hides it), the tool's own error line reaches the journal at error
# priority (the `<3>` prefix), the OnFailure= hook logs one line at error priority
# naming the unit and its report, and the retention still runs after it.
backup_deb=$(find "$debs" -name 'terrarium-backup_*.deb' | head -n 1)
[ -n "$backup_deb" ] || fail "no terrarium-backup .deb in $debs"
lxc file push -q "$backup_deb" "$ct/root/terrarium-backup.deb"
in_ct dpkg -i /root/terrarium-backup.deb >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; fail "dpkg -i terrarium-backup"; }
# terrarium-install creates the secrets directory; this container has only these two packages.
printf 'not-a-real-key' | in_ct sh -c 'umask 077; mkdir -p /etc/terrarium/secrets && cat > /etc/terrarium/secrets/s3-secret-key'
hook=terrarium-failed@terrarium-backup-export.service.service
in_ct systemctl start terrarium-backup-export.service 2>/dev/null && fail "the export unit succeeded without its pool"
[ "$(in_ct systemctl show -P Result terrarium-backup-export.service)" = exit-code ] ||
  fail "the failed export's unit result is $(in_ct systemctl show -P Result terrarium-backup-export.service), want exit-code"
becomes_nonzero 60 ExecMainExitTimestampMonotonic "$hook" || fail "the OnFailure= hook $hook did not run"
becomes_nonzero 60 ExecMainExitTimestampMonotonic terrarium-backup-prune.service ||
  fail "the retention did not run after the failed export (OnFailure=)"
errors=$(in_ct journalctl --no-pager -o cat -p err -u terrarium-backup-export.service -u "$hook")
echo "$errors" | grep -q '^level=error tool=terrarium-backup msg=' ||
  fail "the export's error line is not at error priority in the journal: $errors"
echo "$errors" | grep -q '^terrarium-backup-export.service failed (result exit-code, exit status 1); report: ' ||
  fail "the OnFailure= hook logged no error-priority line naming the unit: $errors"
in_ct journalctl --no-pager -o cat -p err -u terrarium-backup-export.service | grep -q '^level=info' &&
  fail "info lines reach the journal at error priority"
echo "ok   under systemd: a failed export fails its unit, logs at error priority, runs the hook and the retention"
