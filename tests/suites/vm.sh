#!/usr/bin/env bash
# The VM suite: Terrarium on a real Linux host. A Debian 12 guest under QEMU
# (tests/vm/build-image.sh, cached) with systemd as PID 1, kernel ZFS (OpenZFS 2.3 by
# DKMS) and Debian's LXD 5.0, driven by tests/vm/lib.sh:
# - the operator's first step: install.sh adds the signed repository (built here with
#   a throwaway key, served on this machine's loopback) and apt installs terrarium;
# - terrarium-install (non-interactive, disk mode, an OIDC issuer over TLS) refuses a
#   disk holding a filesystem, then converges the whole host itself: every role under
#   the guest's systemd, the releases from local copies named in ansible-overrides.yml
#   (oauth2-proxy built from source); a second converge changes nothing; the pool's
#   properties, the services, loopback-only listeners, sshd, the exact ufw rules and the
#   admin gate's redirect to the provider, asked from this machine through Traefik;
# - the zfs role over ssh: partition mode after a failed zpool create, on an MBR disk,
#   with this pool's label on another disk, partition auto and file mode as
#   terrarium-install renders them;
# - the terrarium profile, two containers on datasets of the pool, a bridge that gives
#   containers DHCP and DNS and nothing else of the host;
# - labels published by the watch unit and by the timer, fetched through Traefik;
# - sanoid and the export run by systemd (to an S3 server on this machine), the host's
#   status (healthy, then a stopped unit named), four restores of a damaged container:
#   in place from S3, a local rollback, and as a new instance from a local snapshot and
#   from S3, each checked running with its file;
# - kernel ZFS features zfs-fuse lacks: holds, the export's compressed sends;
# - faults: the S3 server killed during an export, the power cut during a restore.
# One line per check (ok/FAIL), then `N passed, N failed` and the duration.
# Stand-ins, where nothing real runs in the guest: the OIDC provider (terrarium-testkit's
# test issuer checks client credentials, issues no tokens), LXD 5.0 for the snap's 5.21.
#   bash tests/suites/vm.sh
#   VM_KEEP=1 bash tests/suites/vm.sh   leave the work directory (serial log, logs)
#   VM_RELEASE=DIR bash tests/suites/vm.sh   reuse a repository release_repo_build made in
#                                            DIR for http://10.0.2.100/good (a kept run's
#                                            WORK/release), instead of building one
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=tests/lib/env.sh
. tests/lib/env.sh
# shellcheck source=tests/vm/lib.sh
. tests/vm/lib.sh
# shellcheck source=tests/lib/release-repo.sh
. tests/lib/release-repo.sh

for tool in qemu-system-x86_64 qemu-img debootstrap mkfs.ext4 ssh ssh-keygen ansible-playbook python3 gpg cargo s3s-fs jq socat openssl traefik oauth2-proxy curl; do
  command -v "$tool" >/dev/null || { echo "vm: $tool is missing: run tests/install-deps" >&2; exit 1; }
done

started=$SECONDS
passed=0 failed=0
ok() { echo "ok   $*"; passed=$((passed + 1)); }
fail() { echo "FAIL $*"; failed=$((failed + 1)); }
check() { # DESCRIPTION COMMAND... (the command's output is shown when it fails)
  local what=$1 out
  shift
  if out=$("$@" 2>&1); then ok "$what"; else fail "$what"; printf '%s\n' "$out" | tail -20 | sed 's/^/     /'; fi
}
check_measured() { # DESCRIPTION COMMAND...: as check, and the command's output (a figure) ends the ok line
  local what=$1 out
  shift
  if out=$("$@" 2>&1); then ok "$what ($out)"; else fail "$what"; printf '%s\n' "$out" | tail -20 | sed 's/^/     /'; fi
}
log_excerpt() { # FILE [ERE]: the matching lines (else the end) of a log, indented under a FAIL
  { grep -E "${2:-.}" "$1" || tail -20 "$1"; } 2>&1 | tail -20 | sed 's/^/     /' || true
}
finish() {
  echo "vm: $passed passed, $failed failed in $((SECONDS - started)) s"
  [ "$failed" = 0 ]
}

image=$(tests/vm/build-image.sh)
work=$(mktemp -d "${TMPDIR:-/tmp}/terrarium-vm.XXXXXX")
repo_pid="" s3_pid="" issuer_pid="" tls_pid=""
cleanup() {
  vm_kill
  local pid
  for pid in $repo_pid $s3_pid $issuer_pid $tls_pid; do kill "$pid" 2>/dev/null || true; done
  if [ -n "${VM_KEEP:-}" ]; then echo "vm: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

# --- the signed apt repository, served on this machine's loopback ---------------------
# Built as a release builds it (a throwaway key); the guest reaches it as
# http://10.0.2.100/ through a guest forward.
t=$SECONDS
if [ -n "${VM_RELEASE:-}" ]; then
  cp -a "$VM_RELEASE" "$work/release" && ok "the signed repository is reused from $VM_RELEASE"
elif release_repo_build "$work/release" http://10.0.2.100/good >"$work/release.log" 2>&1; then
  ok "the signed repository is built ($((SECONDS - t)) s)"
else
  fail "the signed repository is built"
  log_excerpt "$work/release.log"
  finish
  exit 1
fi
repo_port=$(vm_free_port)
mkdir -p "$work/www"
cp -a "$work/release/out/repo" "$work/www/good"
python3 -m http.server --bind 127.0.0.1 --directory "$work/www" "$repo_port" >"$work/http.log" 2>&1 &
repo_pid=$!
# The S3 server the exports go to (s3s-fs), reached by the guest as http://10.0.2.101.
s3_key=terrarium-vm-test s3_secret=terrarium-vm-test-secret
mkdir -p "$work/s3/data/terrarium"
s3_port=$(vm_free_port)
s3s-fs --host 127.0.0.1 --port "$s3_port" --access-key "$s3_key" --secret-key "$s3_secret" "$work/s3/data" \
  >"$work/s3/log" 2>&1 &
s3_pid=$!
# The identity provider, as https://id.example.test (10.0.2.102:443) from the guest: the
# test issuer behind socat's TLS, with a certificate from a throwaway CA.
cargo build -q -p terrarium-testkit --example test-issuer
mkdir -m 0700 "$work/tls"
(
  cd "$work/tls"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.crt -days 2 \
    -subj /CN=terrarium-vm-test-ca
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout id.key -out id.csr -subj /CN=id.example.test
  openssl x509 -req -in id.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out id.crt -days 2 \
    -extfile <(printf 'subjectAltName=DNS:id.example.test\n')
  cat id.crt id.key > id.pem
) >"$work/tls/log" 2>&1
printf '%s' terrarium-vm-client-secret > "$work/tls/client-secret"
"$CARGO_TARGET_DIR/debug/examples/test-issuer" https://id.example.test terrarium "$work/tls/client-secret" \
  >"$work/tls/issuer-port" 2>"$work/tls/issuer.log" &
issuer_pid=$!
for _ in $(seq 50); do [ -s "$work/tls/issuer-port" ] && break; sleep 0.1; done
tls_port=$(vm_free_port)
socat "OPENSSL-LISTEN:$tls_port,bind=127.0.0.1,reuseaddr,fork,cert=$work/tls/id.pem,verify=0" \
  "TCP:127.0.0.1:$(cat "$work/tls/issuer-port")" 2>"$work/tls/socat.log" &
tls_pid=$!
# This machine reaches the guest's Traefik on 127.0.0.1:http_port and :https_port.
http_port=$(vm_free_port) https_port=$(vm_free_port)
VM_GUESTFWD="$(vm_loopback_forward 10.0.2.100 80 "$repo_port"),$(vm_loopback_forward 10.0.2.101 80 "$s3_port")"
VM_GUESTFWD+=",$(vm_loopback_forward 10.0.2.102 443 "$tls_port")"
VM_GUESTFWD+=",$(vm_host_forward "$http_port" 80),$(vm_host_forward "$https_port" 443)"

# --- boot ---------------------------------------------------------------------------
# vdb: the pool's disk (disk mode); vdc: a GPT disk with free space; vdd: an MBR disk;
# vde: a disk holding a filesystem; vdf: an empty GPT disk (partition auto).
vm_start "$image" "$work" 4G 2G 2G 2G 2G
if state=$(vm_wait_running 600); then
  ok "the guest boots to '$state' under systemd ($(vm_ssh "cut -d' ' -f1 /proc/uptime") s after power-on)"
else
  fail "the guest boots under systemd"
  tail -30 "$work/serial.log" | sed 's/^/     /'
  finish
  exit 1
fi
[ "$state" = running ] || vm_ssh systemctl --failed --no-legend | sed 's/^/     failed unit: /'
check "the kernel loads OpenZFS ($(vm_ssh modinfo -F version zfs 2>/dev/null))" vm_ssh modprobe zfs

# --- the operator's install: install.sh, the signed repository, apt -------------------
version=$(sed -n '1s/^terrarium (\([^)]*\)).*/\1/p' debian/changelog)
vm_copy_in "$work/release/out/repo/install.sh" /root/install.sh
apt_install() {
  vm_ssh sh /root/install.sh --force-os --no-setup >"$work/install.log" 2>&1 || { tail -20 "$work/install.log"; return 1; }
  [ "$(vm_ssh "dpkg-query -W -f='\${Version}' terrarium")" = "$version" ] || { echo "terrarium is not installed at $version"; return 1; }
}
check "install.sh adds the signed repository and apt installs terrarium $version" apt_install
every_tool() {
  local tool
  for tool in terrarium-install terrarium-set terrarium-proxy-sync terrarium-backup terrarium-restore terrarium-idp-sync terrarium-status; do
    vm_ssh "$tool" --version >/dev/null || { echo "$tool --version failed"; return 1; }
  done
}
check "every installed tool runs (--version)" every_tool
timer_enabled() {
  [ "$(vm_ssh systemctl is-enabled terrarium-proxy-sync.timer)" = enabled ] || { echo "not enabled"; return 1; }
}
check "the guest's systemd has the proxy-sync timer enabled by its package" timer_enabled

# --- terrarium-install, non-interactive, disk mode ----------------------------------------
# The identity provider: the test issuer (terrarium-testkit's, a stand-in: no OIDC
# provider runs inside this guest) behind TLS, as https://id.example.test from the
# guest, whose trust store gets the throwaway CA that signed it.
printf '%s' "$s3_secret" > "$work/s3-secret"
cp "$work/tls/client-secret" "$work/oidc-secret" # the client the test issuer accepts
printf '%s' 'vm-root-password' > "$work/root-password"
for secret in s3-secret oidc-secret root-password; do
  vm_copy_in "$work/$secret" "/root/$secret"
  vm_ssh chmod 0600 "/root/$secret"
done
vm_copy_in "$work/tls/ca.crt" /usr/local/share/ca-certificates/terrarium-vm-test.crt
vm_ssh 'update-ca-certificates >/dev/null 2>&1 && echo "10.0.2.102 id.example.test" >> /etc/hosts'
install_args=(--non-interactive --allow-unsupported-os --email ops@example.test --domain example.test
  --idp oidc --oidc https://id.example.test --oidc-client terrarium --oidc-secret-file /root/oidc-secret
  --storage-mode disk --yes --enable-s3 --s3-endpoint http://10.0.2.101
  --s3-bucket terrarium --s3-region us-east-1 --s3-access-key "$s3_key" --s3-secret-key-file /root/s3-secret)
check "vde gets an ext4 filesystem" vm_ssh mkfs.ext4 -q -F /dev/vde
signature_refused() {
  local out
  if out=$(vm_ssh terrarium-install "${install_args[@]}" --render-only --storage-source /dev/vde 2>&1); then echo "accepted: $out"; return 1; fi
  if ! grep -q '/dev/vde' <<<"$out" || ! grep -q 'ext4' <<<"$out"; then echo "$out"; return 1; fi
  if vm_ssh test -e /etc/terrarium/config.yaml; then echo "a config was written"; return 1; fi
}
check "terrarium-install refuses a disk holding ext4, naming /dev/vde and what is on it, and writes nothing" signature_refused
rendered() {
  vm_ssh terrarium-install "${install_args[@]}" --render-only --storage-source /dev/vdb >"$work/terrarium-install-render.log" 2>&1 \
    || { tail -20 "$work/terrarium-install-render.log"; return 1; }
  vm_copy_out /var/lib/terrarium/ansible-vars.json "$work/vars.json"
  jq -e '.terrarium_storage_mode == "disk" and .terrarium_storage_source == "/dev/vdb"' "$work/vars.json" >/dev/null \
    || { cat "$work/vars.json"; return 1; }
}
check "terrarium-install --render-only (disk /dev/vdb, S3): checks the issuer over TLS and the bucket, writes the config and the Ansible variables" rendered

# --- the full converge, by terrarium-install in the guest ----------------------------------
# The guest has no mirror and no GitHub: a host in that position records a fresh apt
# index and points the pinned releases at its own copies, with literal hashes, in
# /etc/terrarium/ansible-overrides.yml: Traefik's release binary (the one this
# machine's tests use) and oauth2-proxy built from source at the version the role pins
# (tests/deps/vm.go, by tests/install-deps).
vm_ssh 'mkdir -p /var/lib/apt/periodic && touch /var/lib/apt/periodic/update-success-stamp'
oauth2_proxy=$(readlink -f "$(command -v oauth2-proxy)")
oauth2_proxy_version=$(awk '$1 == "oauth2-proxy" { sub(/.*@v/, "", $2); print $2 }' tests/deps/vm.go)
vm_copy_in "$(command -v traefik)" /root/releases/traefik
vm_copy_in "$oauth2_proxy" /root/releases/oauth2-proxy
sha() { sha256sum "$1" | cut -d' ' -f1; }
cat > "$work/ansible-overrides.yml" <<EOF
# a host without GitHub: the pinned releases from local copies
terrarium_traefik_url: file:///root/releases/traefik
terrarium_traefik_checksum: sha256:$(sha "$(command -v traefik)")
terrarium_oauth2_proxy_url: file:///root/releases/oauth2-proxy
terrarium_oauth2_proxy_checksum: sha256:$(sha "$oauth2_proxy")
EOF
vm_copy_in "$work/ansible-overrides.yml" /etc/terrarium/ansible-overrides.yml
changed() { grep -A1 '^PLAY RECAP' "$1" | sed -n 's/.*changed=\([0-9]*\).*/\1/p'; }
t=$SECONDS
if vm_ssh terrarium-install "${install_args[@]}" --storage-source /dev/vdb --root-pwd-file /root/root-password \
  >"$work/terrarium-install.log" 2>&1; then
  ok "terrarium-install converges the guest: every role, under its systemd (changed=$(changed "$work/terrarium-install.log"), $((SECONDS - t)) s)"
else
  fail "terrarium-install converges the guest: every role, under its systemd"
  log_excerpt "$work/terrarium-install.log" '^(fatal|failed)|FAILED|msg|Error|error'
fi
t=$SECONDS
if vm_ssh terrarium-reconfigure >"$work/reconfigure.log" 2>&1 && [ "$(changed "$work/reconfigure.log")" = 0 ]; then
  ok "a second converge (terrarium-reconfigure) changes nothing ($((SECONDS - t)) s)"
else
  fail "a second converge (terrarium-reconfigure) changes nothing (changed=$(changed "$work/reconfigure.log"))"
  log_excerpt "$work/reconfigure.log" '^(changed|fatal)|msg'
fi

# The roles the partition checks below run over ssh, as Ansible drives a server.
cat > "$work/inventory" <<EOF
terrarium-vm ansible_host=127.0.0.1 ansible_port=$vm_port ansible_user=root ansible_ssh_private_key_file=$image/id_ed25519 ansible_python_interpreter=/usr/bin/python3 ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null'
EOF
converge() { # LOG TAGS [ansible-playbook args]
  local log=$1 tags=$2
  shift 2
  ANSIBLE_CONFIG=ansible/ansible.cfg ANSIBLE_FORCE_COLOR=0 ANSIBLE_HOST_KEY_CHECKING=False \
    ansible-playbook -i "$work/inventory" ansible/site.yml --tags "$tags" \
    -e @"$work/vars.json" "$@" >"$log" 2>&1
}

pool_property() { vm_ssh zfs get -H -o value "$1" terrarium; }
expect_property() { # PROPERTY VALUE
  local got
  got=$(pool_property "$1") || return 1
  [ "$got" = "$2" ] || { echo "terrarium has $1=$got, not $2"; return 1; }
}
for pair in compression=zstd atime=off dedup=off normalization=formD; do
  check "the pool has ${pair} (zfs get)" expect_property "${pair%%=*}" "${pair#*=}"
done
# OpenZFS 2.3 shows xattr=sa as `on`, which there means sa (openzfs/zfs#17171); 2.2
# (Ubuntu 24.04) shows sa. The property must be set on the pool either way.
xattr_is_sa() {
  local got source
  read -r got source < <(vm_ssh zfs get -H -o value,source xattr terrarium) || return 1
  [ "$source" = local ] || { echo "xattr is $got from $source, not set on the pool"; return 1; }
  case "$got" in
    sa) ;;
    on) vm_ssh modinfo -F version zfs | grep -qE '^(2\.([3-9]|[1-9][0-9])|[3-9])\.' \
          || { echo "xattr=on means directory xattrs before OpenZFS 2.3"; return 1; } ;;
    *) echo "xattr=$got"; return 1 ;;
  esac
}
check "the pool stores xattrs as system attributes (xattr=sa, set on the pool)" xattr_is_sa
on_vdb() { vm_ssh zpool status -P terrarium | grep -q '/dev/vdb'; }
check "the pool is on the whole blank disk /dev/vdb" on_vdb

# --- what the converge left running ----------------------------------------------------------
units_active() {
  local unit bad=""
  for unit in traefik.service oauth2-proxy.service cockpit.socket ssh.service lxd.service ufw.service \
    sanoid.timer terrarium-proxy-sync.timer terrarium-proxy-sync-watch.service terrarium-backup-export.timer; do
    vm_ssh systemctl is-active -q "$unit" || bad="$bad $unit"
  done
  [ -z "$bad" ] || { echo "not active:$bad"; return 1; }
}
check "traefik, oauth2-proxy, cockpit.socket, ssh, lxd, ufw and Terrarium's timers and watch unit are active" units_active
loopback_only() {
  local listeners
  listeners=$(vm_ssh ss -ltnH | awk '{print $4}' | grep -E ':(9090|8080|4180|8443)$' | sort | paste -sd' ')
  [ "$listeners" = "127.0.0.1:4180 127.0.0.1:8080 127.0.0.1:8443 127.0.0.1:9090" ] || { echo "listening: $listeners"; return 1; }
}
check "Cockpit (9090), Traefik's API (8080), oauth2-proxy (4180) and LXD (8443) listen on loopback only" loopback_only
sshd_hardened() {
  local t
  t=$(vm_ssh /usr/sbin/sshd -T) || return 1
  if ! grep -qx 'passwordauthentication no' <<<"$t" || ! grep -qx 'kbdinteractiveauthentication no' <<<"$t" \
    || ! grep -qx 'permitrootlogin without-password' <<<"$t"; then
    grep -E '^(password|kbd|permitroot)' <<<"$t"
    return 1
  fi
}
check "sshd -T: keys only (no passwords, no keyboard-interactive, root by key)" sshd_hardened
gate_redirects() {
  local got location
  # --connect-to: the browser's URL (port 443), this machine's forward underneath.
  got=$(curl -ksS --max-time 20 -o /dev/null -w '%{http_code} %{redirect_url}' \
    --connect-to "manage.example.test:443:127.0.0.1:$https_port" https://manage.example.test/) || return 1
  location=${got#* }
  [ "${got%% *}" = 302 ] || { echo "answered $got"; return 1; }
  case "$location" in
    https://id.example.test/oauth/authorize\?*client_id=terrarium*) ;;
    *) echo "redirected to $location"; return 1 ;;
  esac
  grep -q 'redirect_uri=https%3A%2F%2Fmanage.example.test%2Foauth2%2Fcallback' <<<"$location" || { echo "$location"; return 1; }
}
check "the admin gate: https://manage.example.test/ from this machine, through the guest's Traefik and oauth2-proxy $oauth2_proxy_version, redirects to the provider's sign-in with the callback on manage" gate_redirects
ufw_rules() { vm_ssh ufw status | awk 'NR > 4 && NF' | sed 's/  */ /g' | sort; }
ufw_expected() { # what the firewall and lxd roles own, each rule with its owner's comment
  local rule
  for rule in 22/tcp 80/tcp 443/tcp; do
    echo "$rule ALLOW Anywhere # terrarium-firewall"
    echo "$rule (v6) ALLOW Anywhere (v6) # terrarium-firewall"
  done
  for rule in 53/tcp 53/udp 67/udp; do
    echo "$rule on lxdbr0 ALLOW Anywhere # terrarium-lxd"
    echo "$rule (v6) on lxdbr0 ALLOW Anywhere (v6) # terrarium-lxd"
  done
  echo "Anywhere ALLOW FWD Anywhere on lxdbr0 # terrarium-lxd"
  echo "Anywhere (v6) ALLOW FWD Anywhere (v6) on lxdbr0 # terrarium-lxd"
}
ufw_exact() {
  local got want
  got=$(ufw_rules)
  want=$(ufw_expected | sort)
  vm_ssh ufw status verbose | grep -q 'Default: deny (incoming), allow (outgoing)' || { vm_ssh ufw status verbose | head -5; return 1; }
  [ "$got" = "$want" ] || { diff <(echo "$want") <(echo "$got"); return 1; }
}
check "ufw: deny incoming by default, and exactly ssh, http and https, and the bridge's DHCP, DNS and outbound forwarding" ufw_exact

# --- partition mode -----------------------------------------------------------------------
# vdc: GPT, one small partition, free space after it. The first run fails at `zpool
# create` (an impossible ashift) after adding its partition; the re-run must use that
# partition, not add a second.
partitions() { vm_ssh lsblk -nr -o TYPE "$1" | grep -c '^part$'; }
check "vdc gets a GPT with one 64 MiB partition" vm_ssh sgdisk --new=1:0:+64M --typecode=1:8300 /dev/vdc
check "vdd gets an MBR (dos) table with one 64 MiB partition" vm_ssh "printf 'label: dos\n,64M,83\n' | sfdisk --quiet /dev/vdd"
partition_mode() { # POOL DISK [ansible-playbook args]
  local pool=$1 disk=$2
  shift 2
  converge "$work/partition-$pool-$(date +%s%N).log" zfs -e terrarium_storage_mode=partition \
    -e "terrarium_storage_source=$disk" -e "terrarium_pool_name=$pool" "$@"
}
if partition_mode tpart /dev/vdc -e terrarium_zfs_ashift=99; then
  fail "partition mode: a zpool create that fails fails the run"
else
  ok "partition mode: a zpool create that fails fails the run (partitions on vdc: $(partitions /dev/vdc))"
fi
reuse() {
  partition_mode tpart /dev/vdc || { echo "the re-run failed"; return 1; }
  [ "$(partitions /dev/vdc)" = 2 ] || { echo "vdc has $(partitions /dev/vdc) partitions"; vm_ssh sgdisk -p /dev/vdc; return 1; }
  vm_ssh zpool status -P tpart | grep -q /dev/disk/by-partlabel/terrarium-tpart || { vm_ssh zpool status -P tpart; return 1; }
}
check "partition mode on a GPT disk's free space: the re-run uses the partition the failed run added (2 partitions, pool on terrarium-tpart)" reuse
mbr_refused() {
  local before after log
  before=$(vm_ssh sfdisk --dump /dev/vdd)
  if partition_mode tmbr /dev/vdd; then echo "the run succeeded"; return 1; fi
  log=$(find "$work" -name 'partition-tmbr-*.log' | sort | tail -n1)
  grep -q 'MBR) partition table: Terrarium adds partitions only to GPT disks' "$log" || { tail -20 "$log"; return 1; }
  after=$(vm_ssh sfdisk --dump /dev/vdd)
  [ "$before" = "$after" ] || { echo "the table changed"; return 1; }
  ! vm_ssh zpool list tmbr >/dev/null 2>&1
}
check "partition mode on an MBR disk is refused, naming the table and the way out; the disk is untouched" mbr_refused

# --- terrarium-install's other storage choices: partition auto, file ------------------------
# Rendered under a scratch root (--root) so the host's config stays; the zfs role runs
# with the variables each rendered. vdf: an empty GPT disk, the largest free space.
check "vdf gets an empty GPT" vm_ssh sgdisk --clear /dev/vdf
stray_label_refused() {
  local log
  vm_ssh sgdisk --new=1:0:+64M --typecode=1:bf01 --change-name=1:terrarium-tstray /dev/vdf >/dev/null || return 1
  vm_ssh udevadm settle
  if partition_mode tstray /dev/vdc; then echo "the run succeeded"; return 1; fi
  log=$(find "$work" -name 'partition-tstray-*.log' | sort | tail -n1)
  grep -q 'terrarium-tstray is /dev/vdf1,.*not a partition of /dev/vdc' "$log" || { grep -E 'fatal|msg' "$log" | tail -5; return 1; }
  vm_ssh sgdisk --delete=1 /dev/vdf >/dev/null && vm_ssh udevadm settle
}
check "partition mode refuses this pool's partition label when it is on another disk (vdf1, not vdc), naming both" stray_label_refused
render_at() { # ROOT ARGS...: terrarium-install --render-only under a scratch root; prints the variables
  local root=$1
  shift
  vm_ssh terrarium-install --root "$root" --non-interactive --allow-unsupported-os --render-only --yes \
    --email ops@example.test --domain example.test --idp oidc --oidc https://id.example.test \
    --oidc-client terrarium --oidc-secret-file /root/oidc-secret "$@" >&2 || return 1
  vm_ssh cat "$root/var/lib/terrarium/ansible-vars.json"
}
partition_auto() {
  render_at /root/alt-auto --storage-mode partition --storage-source auto --pool-name tauto >"$work/vars-auto.json" || return 1
  jq -e '.terrarium_storage_source == "/dev/vdf"' "$work/vars-auto.json" >/dev/null || { jq -c . "$work/vars-auto.json"; return 1; }
  converge "$work/auto.log" zfs -e @"$work/vars-auto.json" || { grep -E 'fatal|msg' "$work/auto.log" | tail -5; return 1; }
  vm_ssh zpool status -P tauto | grep -q /dev/disk/by-partlabel/terrarium-tauto || { vm_ssh zpool status -P tauto; return 1; }
  [ "$(partitions /dev/vdf)" = 1 ] || { vm_ssh sgdisk -p /dev/vdf; return 1; }
}
check "terrarium-install --storage-mode partition --storage-source auto picks vdf's free space; the zfs role makes the pool on a new partition there" partition_auto
file_mode() {
  render_at /root/alt-file --storage-mode file --storage-size 1G --pool-name tfile >"$work/vars-file.json" || return 1
  converge "$work/file.log" zfs -e @"$work/vars-file.json" || { grep -E 'fatal|msg' "$work/file.log" | tail -5; return 1; }
  vm_ssh zpool status -P tfile | grep -q /var/lib/terrarium/tfile.img || { vm_ssh zpool status -P tfile; return 1; }
  [ "$(vm_ssh zfs get -H -o value compression tfile)" = zstd ]
}
check "terrarium-install --storage-mode file --storage-size 1G: the zfs role makes the pool on /var/lib/terrarium/tfile.img (zstd)" file_mode

# --- LXD on the Terrarium pool ----------------------------------------------------------
profile_matches() {
  local profile
  profile=$(vm_ssh lxc query /1.0/profiles/terrarium) || return 1
  jq -e '.config["security.idmap.isolated"] == "true" and .config["security.nesting"] == "true"
    and .config["security.syscalls.intercept.mknod"] == "true"
    and .config["security.syscalls.intercept.setxattr"] == "true"
    and .devices.root.pool == "terrarium" and .devices.root.path == "/"
    and .devices.eth0.type == "nic" and .devices.eth0.network == "lxdbr0"' <<<"$profile" >/dev/null \
    || { echo "$profile"; return 1; }
}
check "lxc profile show terrarium: isolated idmap, nesting, mknod and setxattr interception, root on the pool, NIC on lxdbr0" profile_matches
lxd_pool_source() { vm_ssh lxc storage get terrarium source | grep -qx terrarium; }
check "LXD's storage pool terrarium is the ZFS pool terrarium" lxd_pool_source

vm_ssh lxc image import /root/busybox.tar.gz --alias busybox >/dev/null
launched() { # NAME: RUNNING with an IPv4 address
  vm_ssh lxc launch busybox "$1" -p terrarium >/dev/null || return 1
  local n
  for n in $(seq 90); do
    vm_ssh lxc list "$1" -f json | jq -e '.[0].status == "Running" and ([.[0].state.network.eth0.addresses[]? | select(.family == "inet")] | length > 0)' >/dev/null && return 0
    sleep 2
  done
  echo "$1 not running with an address after $n tries"; vm_ssh lxc list "$1"
  return 1
}
for name in c1 c2; do
  check "container $name, launched with -p terrarium, runs with an IPv4 address" launched "$name"
  check "$name's root filesystem is the dataset terrarium/containers/$name" \
    vm_ssh zfs list -H -o name "terrarium/containers/$name"
done
# The file the restores below bring back, written at once: sanoid's timer (frequent
# snapshots every 15 minutes) may snapshot c1 at any time from now on.
vm_ssh "lxc exec c1 -- sh -c 'echo precious-c1 > /root/data'"

# --- the bridge: containers get DHCP and DNS from the host, nothing else -------------------
# A container reaching every host port bound to all addresses was the defect of an
# `allow in on lxdbr0` rule; the lxd role opens only LXD's dnsmasq to the bridge.
bridge_rules() {
  local rules
  rules=$(vm_ssh ufw status | grep ' on lxdbr0' | grep -v 'ALLOW FWD' | sed 's/ *ALLOW.*//; s/ (v6)//' | sort -u | paste -sd,)
  [ "$rules" = "53/tcp on lxdbr0,53/udp on lxdbr0,67/udp on lxdbr0" ] || { echo "ufw admits from lxdbr0: $rules"; return 1; }
}
check "ufw admits from lxdbr0 only DNS (53/tcp, 53/udp) and DHCP (67/udp)" bridge_rules
bridge_ip=$(vm_ssh lxc network get lxdbr0 ipv4.address | cut -d/ -f1)
vm_ssh systemd-run --quiet --unit=terrarium-test-host-only python3 -m http.server --bind 0.0.0.0 8999
host_port_open() { # the control: the service answers on the bridge address from the host
  local n
  for n in $(seq 30); do vm_ssh curl -fsS -o /dev/null "http://$bridge_ip:8999/" && return 0; sleep 1; done
  echo "nothing answers on $bridge_ip:8999 after $n tries"; return 1
}
check "a host service bound to all addresses answers on $bridge_ip:8999 from the host" host_port_open
container_dns() { vm_ssh lxc exec c1 -- nslookup c2.lxd "$bridge_ip" | grep -q 'Address.*[0-9]'; }
check "container c1 resolves c2.lxd through the host's DNS on the bridge" container_dns
container_blocked() {
  # The control: nc works in c1 and reaches the host's DNS over TCP.
  vm_ssh lxc exec c1 -- nc -w 5 "$bridge_ip" 53 </dev/null || { echo "c1 cannot reach $bridge_ip:53/tcp either"; return 1; }
  if vm_ssh lxc exec c1 -- nc -w 5 "$bridge_ip" 8999 </dev/null; then echo "c1 connected to $bridge_ip:8999"; return 1; fi
}
check "container c1 reaches the host's DNS over TCP but not that host service ($bridge_ip:8999)" container_blocked

# --- the main job: labels published by systemd's proxy sync, requests through Traefik ------
# Each container serves a page on port 8000 (busybox httpd). c1's label is picked up by
# the watch unit (LXD events); with the watch unit stopped, c2's waits for the timer.
serve_page() { # NAME
  vm_ssh "lxc exec $1 -- sh -c 'mkdir -p /www && echo hello from $1 > /www/index.html && busybox httpd -p 8000 -h /www'"
}
through_traefik() { # SCHEME HOST: the page the guest's Traefik serves for HOST, from this machine
  local port=$http_port default=80
  [ "$1" = https ] && port=$https_port default=443
  curl -ksS --max-time 10 --connect-to "$2:$default:127.0.0.1:$port" "$1://$2/"
}
wait_for_page() { # SCHEME HOST WANT SECONDS
  local n got=""
  for n in $(seq "$4"); do
    got=$(through_traefik "$1" "$2" 2>&1) && [ "$got" = "$3" ] && { echo "after ${n} s"; return 0; }
    sleep 1
  done
  echo "$1://$2 answered '$got' after $4 s"
  vm_ssh journalctl -u terrarium-proxy-sync.service -u terrarium-proxy-sync-watch.service -n 15 --no-pager
  return 1
}
serve_pages() { serve_page c1 && serve_page c2; }
check "c1 and c2 serve a page on port 8000" serve_pages
labelled_by_watch() {
  vm_ssh lxc config set c1 user.proxy http://app1.example.test:8000 || return 1
  wait_for_page http app1.example.test "hello from c1" 30
}
check_measured "c1 labelled http://app1.example.test:8000: the watch unit publishes it, and a request from this machine through the guest's Traefik reaches c1" labelled_by_watch
labelled_by_timer() {
  vm_ssh systemctl stop terrarium-proxy-sync-watch.service || return 1
  vm_ssh lxc config set c2 user.proxy https://app2.example.test:8000 || return 1
  wait_for_page https app2.example.test "hello from c2" 100
}
check_measured "c2 labelled https://app2.example.test:8000 with the watch unit stopped: the timer publishes it, served over TLS" labelled_by_timer
vm_ssh systemctl start terrarium-proxy-sync-watch.service
check "after proxy sync, ufw still holds exactly the rules above (web routes open no port)" ufw_exact

# --- the time machine, the export and four restores on the real LXD instances --------------
in_c() { local name=$1; shift; vm_ssh lxc exec "$name" -- "$@"; }
want=$(in_c c1 sha256sum /root/data | cut -d' ' -f1)
has_data() { # NAME: running, and /root/data is what c1 held
  local got
  [ "$(vm_ssh lxc list "$1" -f json | jq -r '.[0].status')" = Running ] || { echo "$1 is not running"; vm_ssh lxc list; return 1; }
  got=$(in_c "$1" sha256sum /root/data | cut -d' ' -f1)
  [ "$got" = "$want" ] || { echo "$1's /root/data has sha256 $got, not $want"; return 1; }
}
snapshots_taken() {
  # sanoid takes a snapshot only when one is due: had its timer snapshotted c1 between
  # the launch and the file's write, this run would take none, and the restores below
  # would bring back a c1 without the file (seen once under load). So the snapshots so
  # far go, with sanoid's cache of them, and this run takes the ones the checks use.
  vm_ssh 'zfs list -H -t snapshot -o name -r terrarium/containers | grep @autosnap_ | xargs -r -n1 zfs destroy
    rm -f /var/cache/sanoid/snapshots.txt' || return 1
  vm_ssh systemctl start sanoid.service || { vm_ssh journalctl -u sanoid.service -n 20 --no-pager; return 1; }
  vm_ssh zfs list -H -t snapshot -o name -r terrarium/containers/c1 | grep -q '@autosnap_' \
    || { vm_ssh zfs list -t snapshot; return 1; }
}
check "sanoid.service, started by systemd, snapshots the container datasets" snapshots_taken
# The local restores below name this snapshot (--at): the timer may take a newer one
# between damaging c1 and restoring it, which would hold the damage.
c1_snap=$(vm_ssh "zfs list -H -t snapshot -o name -s creation -r terrarium/containers/c1 | grep @autosnap_ | tail -n1" | sed 's/.*@//')
snapshot_holds_file() {
  local mnt got
  # LXD mounts the dataset itself (mountpoint=legacy): its snapshots under that mount.
  mnt=$(vm_ssh findmnt -n -o TARGET -S terrarium/containers/c1 | head -n1)
  [ -n "$mnt" ] || { echo "terrarium/containers/c1 is not mounted"; return 1; }
  got=$(vm_ssh sha256sum "$mnt/.zfs/snapshot/$c1_snap/rootfs/root/data" | cut -d' ' -f1)
  [ "$got" = "$want" ] || { echo "$c1_snap holds /root/data with sha256 '$got'"; return 1; }
}
check "c1's newest snapshot ($c1_snap) holds its file" snapshot_holds_file
exported() {
  vm_ssh systemctl start terrarium-backup-export.service \
    || { vm_ssh journalctl -u terrarium-backup-export.service -n 30 --no-pager; return 1; }
  local manifests
  manifests=$(find "$work/s3/data/terrarium" -name '*.manifest.json' | grep -c -e '/c1/' -e '/c2/')
  [ "$manifests" -ge 2 ] || { echo "$manifests manifests in the bucket"; find "$work/s3/data" -type f; return 1; }
}
check "terrarium-backup-export.service, started by systemd, uploads c1 and c2 to the S3 server on this machine" exported
# --- status tells the truth ---------------------------------------------------------------
healthy() {
  local out
  out=$(vm_ssh terrarium-status --json) || { echo "exit $?: $(jq -c .missing <<<"$out")"; return 1; }
  jq -e '.healthy == true and .missing == []' <<<"$out" >/dev/null || { jq -c .missing <<<"$out"; return 1; }
}
check "terrarium-status --json: healthy on the freshly installed host, nothing missing (exit 0)" healthy
names_stopped_unit() {
  local out code=0
  vm_ssh systemctl stop traefik.service || return 1
  out=$(vm_ssh terrarium-status --check 2>&1) || code=$?
  vm_ssh systemctl start traefik.service
  [ "$code" = 1 ] || { echo "terrarium-status --check exited $code"; return 1; }
  grep -q 'traefik.service' <<<"$out" || { echo "$out"; return 1; }
  vm_ssh terrarium-status --check || { echo "not healthy again once traefik runs"; return 1; }
}
check "with traefik.service stopped, terrarium-status --check exits 1 naming it; started again, healthy" names_stopped_unit

restored_in_place_from_s3() {
  in_c c1 rm /root/data
  vm_ssh terrarium-restore --instance c1 --source s3 --yes >"$work/restore-s3.log" 2>&1 || { tail -20 "$work/restore-s3.log"; return 1; }
  has_data c1
}
check "c1 damaged, restored in place from S3: running, its file back (sha256)" restored_in_place_from_s3
rolled_back() {
  in_c c1 rm /root/data
  vm_ssh terrarium-restore --instance c1 --source local --at "$c1_snap" --yes >"$work/restore-local.log" 2>&1 \
    || { tail -20 "$work/restore-local.log"; return 1; }
  has_data c1
}
check "c1 damaged again, rolled back to its local snapshot: running, its file back" rolled_back
as_new() { # SOURCE NEWNAME [--at POINT]
  vm_ssh terrarium-restore --instance c1 --source "$1" --as-new "$2" "${@:3}" --yes >"$work/restore-$2.log" 2>&1 \
    || { tail -20 "$work/restore-$2.log"; return 1; }
  has_data "$2"
}
check "restore --as-new c1-local from a local snapshot: lxc list shows c1-local running, its file verified" as_new local c1-local --at "$c1_snap"
check "restore --as-new c1-s3 from S3: lxc list shows c1-s3 running, its file verified" as_new s3 c1-s3
# Verified, the copies go, as an operator's would. The export's hold on each copy's last
# exported snapshot must be released first, or LXD's `zfs destroy -r` fails
# (docs/backup.md).
delete_copies() {
  # shellcheck disable=SC2016 # expanded in the guest
  vm_ssh 'for s in $(zfs list -H -t snapshot -o name -r terrarium/containers/c1-local terrarium/containers/c1-s3); do
      zfs release terrarium-backup "$s" 2>/dev/null || true
    done' || return 1
  vm_ssh lxc delete --force c1-local c1-s3
}
check "the restored copies c1-local and c1-s3 are deleted (their export holds released first)" delete_copies

# --- kernel ZFS features zfs-fuse lacks --------------------------------------------------
hold_and_release() {
  vm_ssh 'set -e; zfs snapshot terrarium/containers/c1@held
    zfs hold terrarium-export terrarium/containers/c1@held
    ! zfs destroy terrarium/containers/c1@held 2>/dev/null
    zfs holds -H terrarium/containers/c1@held | grep -q terrarium-export
    zfs release terrarium-export terrarium/containers/c1@held
    zfs destroy terrarium/containers/c1@held'
}
check "a held snapshot cannot be destroyed until it is released (zfs hold)" hold_and_release
# The export's `zfs send -L -e -c` (Capabilities::send_flags): each flag matters on a
# zstd pool. Measured: plain, -c and -Lec sizes of 8 MiB random plus 32 MiB of numbers
# (blocks zstd shrinks but does not embed) plus 8 MiB of one repeated word (blocks zstd
# shrinks to a few bytes, stored in the block pointer: only -e sends them small).
compressed_send() {
  # shellcheck disable=SC2016 # expanded in the guest
  vm_ssh 'set -e; zfs create -o mountpoint=/mnt/sendtest terrarium/sendtest; d=/mnt/sendtest
    head -c 8M /dev/urandom > $d/random; seq 1 100000000 | head -c 32M > $d/numbers
    yes terrarium | head -c 8M > $d/word; sync
    zfs snapshot terrarium/sendtest@s
    plain=$(zfs send terrarium/sendtest@s | wc -c)
    c=$(zfs send -c terrarium/sendtest@s | wc -c)
    lec=$(zfs send -L -e -c terrarium/sendtest@s | wc -c)
    zfs send -L -e -c terrarium/sendtest@s | zfs receive -o mountpoint=/mnt/sendcopy terrarium/sendcopy
    (cd $d && sha256sum random numbers word) > /tmp/a; (cd /mnt/sendcopy && sha256sum random numbers word) > /tmp/b
    cmp /tmp/a /tmp/b
    echo "plain $plain bytes, -c $c, -Lec $lec; compressratio $(zfs get -H -o value compressratio terrarium/sendtest@s)"
    zfs destroy -r terrarium/sendcopy; zfs destroy -r terrarium/sendtest
    [ "$lec" -lt $((plain / 2)) ] && [ "$lec" -lt "$c" ]'
}
check_measured "zfs send -L -e -c from the zstd pool is under half a plain send, smaller than -c alone, and receives byte-identical files" compressed_send
manifests_record_flags() {
  local flags
  flags=$(find "$work/s3/data/terrarium" -name '*.manifest.json' -exec jq -c .send_flags {} + | sort -u | paste -sd' ')
  [ "$flags" = '["-L","-e","-c"]' ] || { echo "send_flags in the manifests: $flags"; return 1; }
}
check "the exports' manifests record send_flags -L -e -c (and the restores above received those streams)" manifests_record_flags

# --- the timers fired by themselves ----------------------------------------------------------
# By now the guest has run for half an hour: sanoid's timer (every 15 minutes) has fired
# on its own, and each export above was followed by the retention (OnSuccess=).
timer_fired() { # TIMER
  local last
  last=$(vm_ssh systemctl show -P LastTriggerUSec "$1") || return 1
  case "$last" in ''|n/a|0) echo "$1 never fired (uptime $(vm_ssh cut -d' ' -f1 /proc/uptime) s)"; return 1 ;; esac
  echo "$last"
}
sanoid_timer_fired() {
  local last
  last=$(timer_fired sanoid.timer) || { echo "$last"; return 1; }
  [ "$(vm_ssh systemctl show -P Result sanoid.service)" = success ] || { vm_ssh journalctl -u sanoid.service -n 10 --no-pager; return 1; }
}
check "sanoid.timer fired by itself and sanoid.service succeeded" sanoid_timer_fired
prune_ran() {
  local exited
  exited=$(vm_ssh systemctl show -P ExecMainExitTimestamp terrarium-backup-prune.service)
  [ -n "$exited" ] || { echo "terrarium-backup-prune.service never ran"; return 1; }
  [ "$(vm_ssh systemctl show -P Result terrarium-backup-prune.service)" = success ] \
    || { vm_ssh journalctl -u terrarium-backup-prune.service -n 10 --no-pager; return 1; }
}
check "terrarium-backup-prune.service ran after the exports (OnSuccess=) and succeeded" prune_ran

# --- faults: the S3 server dies during an export, the power fails during a restore ----------
# c1 gets 96 MiB of random data and a snapshot first, so that its export and its restore
# last long enough under emulation to be interrupted while their zfs send or receive runs.
wait_for_guest_process() { # PATTERN SECONDS (a pattern like '[z]fs send' never matches its own pgrep)
  local deadline=$((SECONDS + $2))
  while [ "$SECONDS" -lt "$deadline" ]; do
    vm_ssh "pgrep -f '$1'" >/dev/null && return 0
    sleep 0.2
  done
  echo "no process matching '$1' after $2 s"; return 1
}
manifest_count() { find "$work/s3/data/terrarium" -name '*.manifest.json' | wc -l; }
start_s3() {
  s3s-fs --host 127.0.0.1 --port "$s3_port" --access-key "$s3_key" --secret-key "$s3_secret" "$work/s3/data" \
    >>"$work/s3/log" 2>&1 &
  s3_pid=$!
}
vm_ssh "lxc exec c1 -- sh -c 'dd if=/dev/urandom of=/root/bulk bs=1048576 count=96 2>/dev/null && sync'"
# The export sends the newest snapshot: one now, rather than waiting for the timer's next.
vm_ssh zfs snapshot terrarium/containers/c1@bulk
want_bulk=$(in_c c1 sha256sum /root/bulk | cut -d' ' -f1)
export_interrupted() {
  local before state_before state_after result
  before=$(manifest_count)
  state_before=$(vm_ssh 'cd /var/lib/terrarium && find lastsnapshots catalog -type f -exec sha256sum {} + 2>/dev/null | sort')
  vm_ssh systemctl start --no-block terrarium-backup-export.service || return 1
  wait_for_guest_process '[z]fs send' 120 || return 1
  kill "$s3_pid"; wait "$s3_pid" 2>/dev/null || true
  for _ in $(seq 300); do
    [ "$(vm_ssh systemctl show -P ActiveState terrarium-backup-export.service)" = activating ] || break
    sleep 2
  done
  result=$(vm_ssh systemctl show -P Result terrarium-backup-export.service)
  [ "$result" != success ] || { echo "the export succeeded without its S3 server"; return 1; }
  vm_ssh systemctl is-failed -q terrarium-backup-export.service || { echo "the unit is not failed ($result)"; return 1; }
  vm_ssh journalctl -u terrarium-backup-export.service -p err -n 5 --no-pager | grep -q . \
    || { echo "no error-priority line in the unit's journal"; return 1; }
  state_after=$(vm_ssh 'cd /var/lib/terrarium && find lastsnapshots catalog -type f -exec sha256sum {} + 2>/dev/null | sort')
  [ "$state_before" = "$state_after" ] || { echo "the failed export changed the recorded state"; diff <(echo "$state_before") <(echo "$state_after"); return 1; }
  [ "$(manifest_count)" = "$before" ] || { echo "a manifest was written"; return 1; }
}
check "the S3 server killed during an export run by systemd: the unit fails, logs at error priority, and records nothing" export_interrupted
start_s3
export_after_fault() {
  local before
  before=$(manifest_count)
  vm_ssh systemctl start terrarium-backup-export.service \
    || { vm_ssh journalctl -u terrarium-backup-export.service -n 20 --no-pager; return 1; }
  [ "$(manifest_count)" -gt "$before" ] || { echo "no new manifest"; return 1; }
}
check "with the S3 server back, the next run of the export unit succeeds and uploads" export_after_fault
restore_power_cut() {
  vm_ssh systemd-run --quiet --unit=terrarium-test-restore terrarium-restore --instance c1 --source s3 --yes || return 1
  wait_for_guest_process '[z]fs receive' 300 || return 1
  vm_kill
  vm_boot_again || return 1
  vm_wait_running 600 >/dev/null || return 1
  vm_ssh zpool list terrarium >/dev/null || { echo "the pool is not imported after the power cut"; return 1; }
  [ "$(vm_ssh lxc list c1 -f json | jq -r '.[0].status')" = Running ] || vm_ssh lxc start c1 || return 1
  local got
  got=$(in_c c1 sha256sum /root/bulk | cut -d' ' -f1)
  [ "$got" = "$want_bulk" ] || { echo "c1's /root/bulk is $got after the power cut, not $want_bulk"; return 1; }
}
check "power cut (QEMU killed) during an S3 in-place restore of c1: after boot the pool is back and c1's data is intact" restore_power_cut
restore_rerun() {
  vm_ssh terrarium-restore --instance c1 --source s3 --yes >"$work/restore-rerun.log" 2>&1 || { tail -20 "$work/restore-rerun.log"; return 1; }
  has_data c1 || return 1
  local got
  got=$(in_c c1 sha256sum /root/bulk | cut -d' ' -f1)
  [ "$got" = "$want_bulk" ] || { echo "c1's /root/bulk is $got, not $want_bulk"; return 1; }
}
check "the restore run again completes: c1 running with its files (sha256)" restore_rerun

t=$SECONDS
if vm_poweroff; then ok "the guest powers off ($((SECONDS - t)) s)"; else fail "the guest powers off"; fi
finish
