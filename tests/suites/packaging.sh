#!/usr/bin/env bash
# Packaging suite: build every .deb and a signed apt repository with a throwaway key
# (debian/build-release-repo, the release script itself), lint them, compare their
# contents with golden listings, then serve the repository on 127.0.0.1 and run the
# stamped install.sh in a Debian 12 debootstrap chroot: a tampered Release is refused
# and reported, the real one is verified and installed, terrariumctl lists every tool,
# `man terrarium-backup` works, every unit passes `systemd-analyze verify`.
#
#   bash tests/suites/packaging.sh
#   TERRARIUM_PACKAGING_NO_BUILD=1 ...   reuse the release build (iterating on metadata)
#   TERRARIUM_UPDATE_GOLDEN=1 ...        rewrite tests/packaging/golden (then review the diff)
#
# Then, under a real systemd (tests/packaging/systemd-timer.sh): the proxy-sync package
# leaves its timer enabled and unstarted, and the started timer fires the service; a
# failed backup export fails its unit, logs at error priority and runs its hooks.
# Not covered (docs/packaging.md says so): the `install.sh --ref` source build beyond
# its first check.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=tests/lib/env.sh
. tests/lib/env.sh
# shellcheck source=tests/packaging/chroot.sh
. tests/packaging/chroot.sh
# shellcheck source=tests/lib/release-repo.sh
. tests/lib/release-repo.sh

TOOLS=(terrariumctl terrarium-install terrarium-set terrarium-proxy-sync terrarium-backup terrarium-restore terrarium-idp-sync)
PACKAGES=("${TOOLS[@]}" terrarium-ansible terrarium)
GOLDEN=tests/packaging/golden

need() { # PROGRAM PACKAGE
  command -v "$1" >/dev/null 2>&1 || { echo "packaging: $1 is missing: run tests/run, it installs $2" >&2; exit 1; }
}
need cargo rustup
need lintian lintian
need apt-ftparchive apt-utils
need gpg gnupg
need debootstrap debootstrap
need zstd zstd
need python3 python3
need shellcheck shellcheck
need dpkg-deb dpkg
need curl curl
cargo deb --version >/dev/null 2>&1 || { echo "packaging: cargo-deb is missing: run tests/run, it installs cargo-deb" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/terrarium-packaging.XXXXXX")
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

failed=0
ok() { echo "ok   $*"; }
fail() { echo "FAIL $*" >&2; failed=$((failed + 1)); }

# --- static checks ---------------------------------------------------------------
if shellcheck -x install.sh debian/build-release-repo debian/maintainer-scripts/*/postinst \
  tests/suites/packaging.sh tests/packaging/*.sh; then
  ok "shellcheck: install.sh, build-release-repo, maintainer scripts, this suite"
else
  fail "shellcheck (messages above)"
fi
if grep -q '^#!/bin/sh$' install.sh && ! grep -n -e '\[\[' -e 'local ' -e '^ *function ' install.sh; then
  ok "install.sh is POSIX sh (#!/bin/sh, no [[ ]], local or function)"
else
  fail "install.sh uses bash-only syntax (lines above)"
fi

# --- build: a throwaway signing key, then the release script ------------------------
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base_url="http://127.0.0.1:$port/good"
build_args=()
if [ "${TERRARIUM_PACKAGING_NO_BUILD:-0}" = 1 ]; then build_args+=(--no-build); fi
release_repo_build "$work" "$base_url" "${build_args[@]}"
version=$(sed -n '1s/^terrarium (\([^)]*\)).*/\1/p' debian/changelog)

deb_of() { find "$work/out/debs" -name "$1_${version}_*.deb" | head -n 1; }
missing_debs=()
for pkg in "${PACKAGES[@]}"; do [ -n "$(deb_of "$pkg")" ] || missing_debs+=("$pkg"); done
if [ ${#missing_debs[@]} -eq 0 ]; then ok "built ${#PACKAGES[@]} packages at $version"; else fail "packages not built: ${missing_debs[*]}"; fi

# --- lintian ---------------------------------------------------------------------
mapfile -t debs < <(find "$work/out/debs" -name '*.deb' | sort)
if lintian --fail-on error,warning --suppress-tags-from-file tests/packaging/lintian-allowlist "${debs[@]}"; then
  ok "lintian: no errors or warnings beyond tests/packaging/lintian-allowlist"
else
  fail "lintian (tags above; fix them, or allow one in tests/packaging/lintian-allowlist with a reason)"
fi

# --- golden listings -------------------------------------------------------------
# `dpkg-deb -c` without sizes and dates: mode, owner, path (and link target). The
# playbook's own files are checked against ansible/ instead, so the playbook can grow
# without touching the golden file.
listing() {
  dpkg-deb -c "$1" | awk '{ $3 = ""; $4 = ""; $5 = ""; print }' | sed 's/  */ /g' |
    grep -v ' \./usr/share/terrarium/ansible/.' | sort -k3 || true
}
mkdir -p "$GOLDEN"
for pkg in "${PACKAGES[@]}"; do
  deb=$(deb_of "$pkg")
  [ -n "$deb" ] || continue
  listing "$deb" >"$work/$pkg.list"
  if [ "${TERRARIUM_UPDATE_GOLDEN:-0}" = 1 ]; then cp "$work/$pkg.list" "$GOLDEN/$pkg.list"; fi
  if diff -u "$GOLDEN/$pkg.list" "$work/$pkg.list"; then
    ok "golden listing: $pkg"
  else
    fail "golden listing: $pkg differs (diff above; if intended, rerun with TERRARIUM_UPDATE_GOLDEN=1 and review)"
  fi
done
ansible_deb=$(deb_of terrarium-ansible)
if [ -n "$ansible_deb" ]; then
  (cd ansible && find . -type f ! -name '*.retry' ! -name '*.pyc' ! -path '*/__pycache__/*' ! -path '*/.ansible/*' | sed 's|^\./||' | sort) >"$work/ansible.want"
  dpkg-deb -c "$ansible_deb" | awk '$1 ~ /^-/ { print $1, $NF }' | sed -n 's|^-rw-r--r-- \./usr/share/terrarium/ansible/||p' | sort >"$work/ansible.got"
  if [ -s "$work/ansible.want" ] && diff -u "$work/ansible.want" "$work/ansible.got"; then
    ok "terrarium-ansible carries every file of ansible/ ($(wc -l <"$work/ansible.want")) under /usr/share/terrarium/ansible, mode 0644"
  else
    fail "terrarium-ansible does not carry ansible/ exactly (diff above, or ansible/ is empty)"
  fi
fi

# --- control fields and maintainer scripts ----------------------------------------
field() { dpkg-deb -f "$1" "$2"; }
meta=$(deb_of terrarium)
if [ -n "$meta" ]; then
  want=""
  for pkg in "${TOOLS[@]}" terrarium-ansible; do want="$want${want:+, }$pkg (= $version)"; done
  if [ "$(field "$meta" Depends)" = "$want" ]; then ok "terrarium depends on every package at $version"; else fail "terrarium Depends is '$(field "$meta" Depends)', want '$want'"; fi
fi
if [ -n "$ansible_deb" ] && [ "$(field "$ansible_deb" Architecture)" = all ]; then ok "terrarium-ansible is Architecture: all"; else fail "terrarium-ansible is not Architecture: all"; fi
for pkg in "${TOOLS[@]}"; do
  deb=$(deb_of "$pkg")
  [ -n "$deb" ] || continue
  rm -rf "$work/control" && dpkg-deb -e "$deb" "$work/control"
  # cargo-deb's start snippets: `deb-systemd-invoke start` and `_dh_action=start`.
  if grep -l -e 'deb-systemd-invoke start' -e '_dh_action=start' "$work/control"/* 2>/dev/null; then
    fail "$pkg starts a unit at install (script named above); every unit must have start = false"
  fi
done
ok "no package starts a unit at install"

# Every unit in units/ is shipped by exactly one package.
mapfile -t unit_files < <(find units -maxdepth 1 -type f \( -name '*.service' -o -name '*.timer' -o -name '*.path' -o -name '*.socket' \) -printf '%f\n' | sort)
if [ ${#unit_files[@]} -eq 0 ]; then
  fail "units/ holds no unit files: nothing to package or verify (the tool helpers write them)"
fi
for unit in "${unit_files[@]}"; do
  owners=$(grep -l -F "./usr/lib/systemd/system/$unit" "$work"/*.list 2>/dev/null | wc -l)
  if [ "$owners" = 1 ]; then ok "unit $unit is packaged"; else fail "unit $unit is shipped by $owners packages (want 1): add it to its tool's systemd-units"; fi
done

# --- the repository on loopback ---------------------------------------------------
mkdir -p "$work/www"
cp -a "$work/out/repo" "$work/www/good"
cp -a "$work/out/repo" "$work/www/tampered"
# Tamper with the signed text: one hash in Release and in InRelease's signed body.
sed -i '0,/^ [0-9a-f]\{32\} /s/^ \([0-9a-f]\)/ f\1/' "$work/www/tampered/dists/stable/Release" "$work/www/tampered/dists/stable/InRelease"
cmp -s "$work/www/good/dists/stable/InRelease" "$work/www/tampered/dists/stable/InRelease" && fail "could not tamper with InRelease"
python3 -m http.server --bind 127.0.0.1 --directory "$work/www" "$port" >"$work/http.log" 2>&1 &
server_pid=$!
for _ in $(seq 50); do curl -fsS -o /dev/null "$base_url/dists/stable/InRelease" 2>/dev/null && break; sleep 0.1; done
curl -fsS -o /dev/null "$base_url/dists/stable/InRelease" || { fail "the repository is not served on $base_url"; exit 1; }
ok "repository served on $base_url"

# --- install.sh in a Debian 12 chroot --------------------------------------------
root="$work/root"
chroot_create "$root"
cp "$work/out/repo/install.sh" "$root/tmp/install.sh"
in_root() { chroot_run "$root" "$@"; }

status=0
in_root sh /tmp/install.sh --no-setup >"$work/os.out" 2>&1 || status=$?
if [ "$status" = 2 ] && grep -q 'supports Ubuntu 24.04 only' "$work/os.out"; then
  ok "install.sh refuses Debian 12 without --force-os (exit 2, says why)"
else
  cat "$work/os.out"; fail "install.sh on Debian 12 without --force-os: exit $status, want 2 and a message"
fi

status=0
in_root sh /tmp/install.sh --force-os --no-setup --repo-url "http://127.0.0.1:$port/tampered" >"$work/tampered.out" 2>&1 || status=$?
if [ "$status" = 5 ] && grep -q 'apt refused the Terrarium repository' "$work/tampered.out" &&
  ! in_root dpkg-query -W terrarium >/dev/null 2>&1; then
  ok "a tampered Release: apt refuses, install.sh reports it (exit 5), nothing installed"
else
  cat "$work/tampered.out"; fail "tampered Release: install.sh exit $status, want 5 with a report and nothing installed"
fi

# --ref without Rust: the source build stops with how to get it. Stubs stand in for git
# and the C toolchain (present on a build host), so apt is not asked to install them.
for stub in git cc pkg-config; do printf '#!/bin/sh\nexit 0\n' >"$root/usr/local/bin/$stub"; chmod 0755 "$root/usr/local/bin/$stub"; done
status=0
in_root sh /tmp/install.sh --force-os --ref main >"$work/ref.out" 2>&1 || status=$?
rm -f "$root/usr/local/bin/git" "$root/usr/local/bin/cc" "$root/usr/local/bin/pkg-config"
if [ "$status" = 1 ] && grep -q 'cargo not found: a source build needs Rust; install it from https://rustup.rs' "$work/ref.out"; then
  ok "install.sh --ref without cargo: exit 1, says to install Rust"
else
  cat "$work/ref.out"; fail "install.sh --ref without cargo: exit $status, want 1 and the rustup hint"
fi

# The real repository. `-- --version` hands an argument through to terrarium-install,
# which prints its version: install stops before converging anything.
status=0
in_root sh /tmp/install.sh --force-os -- --version >"$work/install.out" 2>&1 || status=$?
if [ "$status" = 0 ] && grep -q '^terrarium-install ' "$work/install.out"; then
  ok "install.sh: repository added, terrarium installed, terrarium-install ran with the given arguments"
else
  cat "$work/install.out"; fail "install.sh against $base_url: exit $status"
fi
# shellcheck disable=SC2016 # ${Version} is dpkg-query's format, not the shell's
if in_root apt-cache policy 2>/dev/null | grep -A1 -F "$base_url stable/main" | grep -q "release o=Terrarium" &&
  in_root apt-cache policy terrarium 2>/dev/null | grep -q -F "$base_url stable/main" &&
  ls "$root"/var/lib/apt/lists/*127.0.0.1*InRelease >/dev/null 2>&1 &&
  [ "$(in_root dpkg-query -W -f '${Version}' terrarium 2>/dev/null)" = "$version" ]; then
  ok "apt verified InRelease with the signed-by key and installed terrarium $version from it"
else
  in_root apt-cache policy terrarium || true
  ls "$root"/var/lib/apt/lists/ || true
  fail "terrarium $version is not installed from the signed repository (apt-cache policy and lists above)"
fi

# Every packaged terrarium-* binary is listed by terrariumctl.
mapfile -t tool_bins < <(cat "$work"/terrarium*.list | sed -n 's|.* \./usr/bin/\(terrarium-[a-z-]*\)$|\1|p' | sort -u)
in_root terrariumctl >"$work/ctl.out" 2>&1 || true
missing=()
for bin in "${tool_bins[@]}"; do
  words=${bin#terrarium-}
  grep -q -E -- "^  ${words//-/ }( |\$)" "$work/ctl.out" || missing+=("$bin")
done
if [ ${#tool_bins[@]} -ge ${#TOOLS[@]} ] && [ ${#missing[@]} -eq 0 ]; then
  ok "terrariumctl lists every packaged tool (${#tool_bins[@]})"
else
  cat "$work/ctl.out"; fail "terrariumctl does not list: ${missing[*]:-(no tools packaged)}"
fi

if in_root man -P cat terrarium-backup >"$work/man.out" 2>"$work/man.err" && grep -q 'terrarium-backup' "$work/man.out" && [ ! -s "$work/man.err" ]; then
  ok "man terrarium-backup"
else
  cat "$work/man.err"; fail "man terrarium-backup"
fi
for bin in "${tool_bins[@]}" terrariumctl; do
  in_root man -w "$bin" >/dev/null 2>&1 || fail "no man page for $bin"
  [ -f "$root/usr/share/bash-completion/completions/$bin" ] || fail "no bash completion for $bin"
done

# State directories from the maintainer scripts.
if [ "$(stat -c '%a %U' "$root/etc/terrarium/secrets" 2>/dev/null)" = "700 root" ] && [ -d "$root/var/lib/terrarium/locks" ]; then
  ok "/etc/terrarium/secrets is 0700 root, /var/lib/terrarium exists"
else
  fail "state directories: /etc/terrarium/secrets is '$(stat -c '%a %U' "$root/etc/terrarium/secrets" 2>&1)'"
fi

# Every installed unit passes systemd-analyze verify, with nothing on stderr (warnings too).
mapfile -t installed_units < <(cd "$root/usr/lib/systemd/system" && ls terrarium* 2>/dev/null)
for unit in "${installed_units[@]}"; do
  if in_root systemd-analyze verify "/usr/lib/systemd/system/$unit" >"$work/verify.out" 2>&1 && [ ! -s "$work/verify.out" ]; then
    ok "systemd-analyze verify $unit"
  else
    cat "$work/verify.out"; fail "systemd-analyze verify $unit"
  fi
  case $unit in
  *.timer)
    if [ -L "$root/etc/systemd/system/timers.target.wants/$unit" ]; then ok "$unit enabled at install"; else fail "$unit is not enabled"; fi ;;
  esac
done
[ ${#installed_units[@]} -gt 0 ] || fail "no terrarium units installed"
# Exactly the units of units/, unchanged (cargo-deb can rename a unit file by mistake).
extra=()
for unit in "${installed_units[@]}"; do
  cmp -s "units/$unit" "$root/usr/lib/systemd/system/$unit" || extra+=("$unit")
done
if [ ${#extra[@]} -eq 0 ] && [ ${#installed_units[@]} = ${#unit_files[@]} ]; then
  ok "the installed units are exactly units/ (${#unit_files[@]}), byte for byte"
else
  fail "installed units differ from units/: ${extra[*]:-(count ${#installed_units[@]}, want ${#unit_files[@]})}"
fi

# --- under a real systemd ----------------------------------------------------------
if tests/packaging/systemd-timer.sh "$work/out/debs"; then
  ok "under a real systemd (Debian 12 container in a namespaced LXD): the proxy sync timer fires, a failed export is seen"
else
  fail "the proxy sync timer under a real systemd (messages above)"
fi

echo
if [ "$failed" -gt 0 ]; then
  echo "packaging: $failed check(s) failed" >&2
  exit 1
fi
echo "packaging: all checks passed"
