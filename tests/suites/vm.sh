#!/usr/bin/env bash
# The VM suite: Terrarium on a real Linux host. A Debian 12 guest under QEMU
# (tests/vm/build-image.sh, cached) with systemd as PID 1, kernel ZFS (OpenZFS 2.3 by
# DKMS) and Debian's LXD 5.0, driven by tests/vm/lib.sh:
# - the operator's first step: install.sh adds the signed repository (built here with
#   a throwaway key, served on this machine's loopback) and apt installs terrarium;
# - terrarium-install (non-interactive, disk mode, --render-only) refuses a disk holding
#   a filesystem and renders the config and Ansible variables for a blank one;
# - with those variables Ansible, over ssh as it would drive a server, runs the
#   firewall, zfs and lxd roles: the pool's properties, a second run changing nothing,
#   partition mode after a failed zpool create and on an MBR disk, the terrarium
#   profile, two containers on datasets of the pool, a bridge that gives containers
#   DHCP and DNS and nothing else of the host;
# - sanoid and the export run by systemd (to an S3 server on this machine), then four
#   restores of a damaged container: in place from S3, a local rollback, and as a new
#   instance from a local snapshot and from S3, each checked running with its file;
# - kernel ZFS features zfs-fuse lacks: holds, the export's compressed sends.
# One line per check (ok/FAIL), then `N passed, N failed` and the duration.
# Not yet here (issue 18): terrarium-install's own converge (all roles, Traefik),
# labels and routes, the timers firing on their own, power cuts.
#   bash tests/suites/vm.sh
#   VM_KEEP=1 bash tests/suites/vm.sh   leave the work directory (serial log, logs)
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=tests/lib/env.sh
. tests/lib/env.sh
# shellcheck source=tests/vm/lib.sh
. tests/vm/lib.sh
# shellcheck source=tests/lib/release-repo.sh
. tests/lib/release-repo.sh

for tool in qemu-system-x86_64 qemu-img debootstrap mkfs.ext4 ssh ssh-keygen ansible-playbook python3 gpg cargo s3s-fs jq socat; do
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
finish() {
  echo "vm: $passed passed, $failed failed in $((SECONDS - started)) s"
  [ "$failed" = 0 ]
}

image=$(tests/vm/build-image.sh)
work=$(mktemp -d "${TMPDIR:-/tmp}/terrarium-vm.XXXXXX")
repo_pid="" s3_pid=""
cleanup() {
  vm_kill
  local pid
  for pid in $repo_pid $s3_pid; do kill "$pid" 2>/dev/null || true; done
  if [ -n "${VM_KEEP:-}" ]; then echo "vm: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

# --- the signed apt repository, served on this machine's loopback ---------------------
# Built as a release builds it (a throwaway key); the guest reaches it as
# http://10.0.2.100/ through a guest forward.
t=$SECONDS
if release_repo_build "$work/release" http://10.0.2.100/good >"$work/release.log" 2>&1; then
  ok "the signed repository is built ($((SECONDS - t)) s)"
else
  fail "the signed repository is built"
  tail -20 "$work/release.log" | sed 's/^/     /'
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
VM_GUESTFWD="$(vm_loopback_forward 10.0.2.100 80 "$repo_port"),$(vm_loopback_forward 10.0.2.101 80 "$s3_port")"

# --- boot ---------------------------------------------------------------------------
# vdb: the pool's disk (disk mode); vdc: a GPT disk with free space; vdd: an MBR disk;
# vde: a disk holding a filesystem.
vm_start "$image" "$work" 4G 2G 2G 2G
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
# --render-only: it writes the config and the Ansible variables the roles below run
# with; the converge itself runs from this machine (Ansible over ssh is faster than
# under emulation). Local identity mode needs no issuer to verify.
printf '%s' "$s3_secret" > "$work/s3-secret"
vm_copy_in "$work/s3-secret" /root/s3-secret
vm_ssh chmod 0600 /root/s3-secret
install_args=(--non-interactive --allow-unsupported-os --render-only --idp local --email ops@example.test
  --domain example.test --storage-mode disk --yes --enable-s3 --s3-endpoint http://10.0.2.101
  --s3-bucket terrarium --s3-region us-east-1 --s3-access-key "$s3_key" --s3-secret-key-file /root/s3-secret)
check "vde gets an ext4 filesystem" vm_ssh mkfs.ext4 -q -F /dev/vde
signature_refused() {
  local out
  if out=$(vm_ssh terrarium-install "${install_args[@]}" --storage-source /dev/vde 2>&1); then echo "accepted: $out"; return 1; fi
  if ! grep -q '/dev/vde' <<<"$out" || ! grep -q 'ext4' <<<"$out"; then echo "$out"; return 1; fi
  if vm_ssh test -e /etc/terrarium/config.yaml; then echo "a config was written"; return 1; fi
}
check "terrarium-install refuses a disk holding ext4, naming /dev/vde and what is on it, and writes nothing" signature_refused
rendered() {
  vm_ssh terrarium-install "${install_args[@]}" --storage-source /dev/vdb >"$work/terrarium-install.log" 2>&1 \
    || { tail -20 "$work/terrarium-install.log"; return 1; }
  vm_copy_out /var/lib/terrarium/ansible-vars.json "$work/vars.json"
  jq -e '.terrarium_storage_mode == "disk" and .terrarium_storage_source == "/dev/vdb"' "$work/vars.json" >/dev/null \
    || { cat "$work/vars.json"; return 1; }
}
check "terrarium-install --storage-mode disk --storage-source /dev/vdb --enable-s3 probes the bucket, writes the config and the Ansible variables" rendered

# --- the roles, over ssh -----------------------------------------------------------------
# The guest has no mirror: record a fresh apt index, as a host that ran apt-get update
# recently has one, so the roles' package tasks (all installed in the image) hold.
vm_ssh 'mkdir -p /var/lib/apt/periodic && touch /var/lib/apt/periodic/update-success-stamp'
cat > "$work/inventory" <<EOF
terrarium-vm ansible_host=127.0.0.1 ansible_port=$vm_port ansible_user=root ansible_ssh_private_key_file=$image/id_ed25519 ansible_python_interpreter=/usr/bin/python3 ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null'
EOF
converge() { # LOG [TAGS [ansible-playbook args]]
  local log=$1 tags=${2:-firewall,zfs,lxd,sanoid}
  shift $(($# < 2 ? $# : 2))
  ANSIBLE_CONFIG=ansible/ansible.cfg ANSIBLE_FORCE_COLOR=0 ANSIBLE_HOST_KEY_CHECKING=False \
    ansible-playbook -i "$work/inventory" ansible/site.yml --tags "$tags" \
    -e @"$work/vars.json" -e @tests/ansible/vars/secrets.json "$@" >"$log" 2>&1
}
changed() { grep -A1 '^PLAY RECAP' "$1" | sed -n 's/.*changed=\([0-9]*\).*/\1/p'; }

t=$SECONDS
if converge "$work/run1.log"; then
  ok "the firewall, zfs, lxd and sanoid roles converge the guest (changed=$(changed "$work/run1.log"), $((SECONDS - t)) s)"
else
  fail "the firewall, zfs, lxd and sanoid roles converge the guest"
  grep -E '^(fatal|failed)|FAILED|msg' "$work/run1.log" | tail -20 | sed 's/^/     /'
fi

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

t=$SECONDS
if converge "$work/run2.log" && [ "$(changed "$work/run2.log")" = 0 ]; then
  ok "a second run changes nothing ($((SECONDS - t)) s)"
else
  fail "a second run changes nothing (changed=$(changed "$work/run2.log"))"
  grep -B1 '^changed' "$work/run2.log" | sed 's/^/     /'
fi

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

# --- the time machine, the export and four restores on the real LXD instances --------------
in_c() { local name=$1; shift; vm_ssh lxc exec "$name" -- "$@"; }
vm_ssh "lxc exec c1 -- sh -c 'echo precious-c1 > /root/data'"
want=$(in_c c1 sha256sum /root/data | cut -d' ' -f1)
has_data() { # NAME: running, and /root/data is what c1 held
  local got
  [ "$(vm_ssh lxc list "$1" -f json | jq -r '.[0].status')" = Running ] || { echo "$1 is not running"; vm_ssh lxc list; return 1; }
  got=$(in_c "$1" sha256sum /root/data | cut -d' ' -f1)
  [ "$got" = "$want" ] || { echo "$1's /root/data has sha256 $got, not $want"; return 1; }
}
snapshots_taken() {
  vm_ssh systemctl start sanoid.service || { vm_ssh journalctl -u sanoid.service -n 20 --no-pager; return 1; }
  vm_ssh zfs list -H -t snapshot -o name -r terrarium/containers/c1 | grep -q '@autosnap_' \
    || { vm_ssh zfs list -t snapshot; return 1; }
}
check "sanoid.service, started by systemd, snapshots the container datasets" snapshots_taken
exported() {
  vm_ssh systemctl start terrarium-backup-export.service \
    || { vm_ssh journalctl -u terrarium-backup-export.service -n 30 --no-pager; return 1; }
  local manifests
  manifests=$(find "$work/s3/data/terrarium" -name '*.manifest.json' | grep -c -e '/c1/' -e '/c2/')
  [ "$manifests" -ge 2 ] || { echo "$manifests manifests in the bucket"; find "$work/s3/data" -type f; return 1; }
}
check "terrarium-backup-export.service, started by systemd, uploads c1 and c2 to the S3 server on this machine" exported
restored_in_place_from_s3() {
  in_c c1 rm /root/data
  vm_ssh terrarium-restore --instance c1 --source s3 --yes >"$work/restore-s3.log" 2>&1 || { tail -20 "$work/restore-s3.log"; return 1; }
  has_data c1
}
check "c1 damaged, restored in place from S3: running, its file back (sha256)" restored_in_place_from_s3
rolled_back() {
  in_c c1 rm /root/data
  vm_ssh terrarium-restore --instance c1 --source local --yes >"$work/restore-local.log" 2>&1 || { tail -20 "$work/restore-local.log"; return 1; }
  has_data c1
}
check "c1 damaged again, rolled back to its local snapshot: running, its file back" rolled_back
as_new() { # SOURCE NEWNAME
  vm_ssh terrarium-restore --instance c1 --source "$1" --as-new "$2" --yes >"$work/restore-$2.log" 2>&1 \
    || { tail -20 "$work/restore-$2.log"; return 1; }
  has_data "$2"
}
check "restore --as-new c1-local from a local snapshot: lxc list shows c1-local running, its file verified" as_new local c1-local
check "restore --as-new c1-s3 from S3: lxc list shows c1-s3 running, its file verified" as_new s3 c1-s3

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
if sizes=$(compressed_send 2>&1); then
  ok "zfs send -L -e -c from the zstd pool is under half a plain send, smaller than -c alone, and receives byte-identical files ($sizes)"
else
  fail "zfs send -L -e -c from the zstd pool is under half a plain send, smaller than -c alone, and receives byte-identical files"
  printf '%s\n' "$sizes" | tail -20 | sed 's/^/     /'
fi
manifests_record_flags() {
  local flags
  flags=$(find "$work/s3/data/terrarium" -name '*.manifest.json' -exec jq -c .send_flags {} + | sort -u | paste -sd' ')
  [ "$flags" = '["-L","-e","-c"]' ] || { echo "send_flags in the manifests: $flags"; return 1; }
}
check "the exports' manifests record send_flags -L -e -c (and the restores above received those streams)" manifests_record_flags

t=$SECONDS
if vm_poweroff; then ok "the guest powers off ($((SECONDS - t)) s)"; else fail "the guest powers off"; fi
finish
