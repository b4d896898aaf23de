#!/usr/bin/env bash
# Fresh-root suite: the README's set-up works on a machine that never ran the project.
# A Debian 12 root built by debootstrap (minbase: less than any new machine has) runs the
# real tests/install-deps (apt, the pip venv, the cargo installs), then
# `tests/install-deps --check`: a list that misses a package a declared program needs
# fails here, whatever the machine running the suite has installed.
#
#   bash tests/suites/fresh-root.sh
#
# Given to the root, as a new machine of this project's kind has them: the Rust toolchain
# rust-toolchain.toml pins and Go (read-only binds of this machine's), the network's local
# CA certificates and the environment naming them, the repository (read-only). Shared
# build caches, so a cold root does not download or compile the same thing twice: apt's
# .deb archive, pip's cache, cargo's registry and target directory, Go's module and build
# caches (caches only: nothing in them is on the root's PATH).
# The installed root is cached under $TERRARIUM_TEST_CACHE/fresh-root, keyed by the hash of
# the lists, tests/install-deps, tests/lib/env.sh and this script: a warm run re-runs
# install-deps (a no-op) and the check inside it; a changed list builds a new root.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=tests/lib/env.sh
. tests/lib/env.sh
# shellcheck source=tests/packaging/chroot.sh
. tests/packaging/chroot.sh

started=$SECONDS
passed=0
failed=0
check() { # DESCRIPTION COMMAND...
  local description=$1
  shift
  if "$@"; then
    echo "ok   $description"
    passed=$((passed + 1))
  else
    echo "FAIL $description"
    failed=$((failed + 1))
  fi
}

for tool in debootstrap unshare chroot zstd; do
  command -v "$tool" >/dev/null || { echo "fresh-root: $tool is missing: run tests/install-deps" >&2; exit 1; }
done
toolchain=$(sed -n 's/^channel = "\(.*\)"/\1/p' rust-toolchain.toml)
rust_bin=$(dirname "$(rustup which --toolchain "$toolchain" cargo)")
go_root=$(go env GOROOT 2>/dev/null || true)

cache="$TERRARIUM_TEST_CACHE/fresh-root"
key=$( { cat tests/install-deps tests/lib/env.sh "$0" tests/deps/*; echo "$CHROOT_MIRROR $toolchain"; } | sha256sum | cut -c1-16)
root="$cache/root-$key"
mkdir -p "$cache"/{apt-archives/partial,pip,cargo-registry,cargo-target,go-mod,go-build}

# What a new machine of this kind has beyond Debian: its network's CA certificates (the
# registries are reached through them) and the environment pointing clients at them.
machine_env=()
while IFS= read -r name; do
  machine_env+=("$name=${!name}")
done < <(compgen -e | grep -E '^(SSL_CERT_(FILE|DIR)|(CURL|AWS|REQUESTS)_CA_BUNDLE|PIP_CERT|PIP_DEFAULT_TIMEOUT|PIP_DISABLE_PIP_VERSION_CHECK|GIT_SSL_CAINFO|CARGO_HTTP_CAINFO|GOPROXY|GOSUMDB|GOFLAGS|[Hh][Tt][Tt][Pp][Ss]?_[Pp][Rr][Oo][Xx][Yy]|[Nn][Oo]_[Pp][Rr][Oo][Xx][Yy])$' || true)

# in_root COMMAND...: COMMAND in the root with the toolchains, the repository and the
# caches bound in a private mount namespace that disappears with it.
in_root() {
  # shellcheck disable=SC2016 # the inner script expands its own arguments
  unshare --mount --propagation private -- sh -c '
    set -e
    root=$1 cache=$2 repo=$3 rust_bin=$4 go_root=$5; shift 5
    mount -t proc proc "$root/proc"
    mount --rbind /dev "$root/dev"
    bind() { mkdir -p "$root$2"; mount --bind "$1" "$root$2"; if [ "$3" = ro ]; then mount -o remount,bind,ro "$root$2"; fi; }
    bind "$repo" /src/terrarium ro
    bind "$rust_bin/.." /opt/rust ro
    if [ -n "$go_root" ]; then bind "$go_root" /opt/go ro; fi
    bind "$cache/apt-archives" /var/cache/apt/archives rw
    bind "$cache/pip" /root/.cache/pip rw
    bind "$cache/cargo-registry" /root/.cargo/registry rw
    bind "$cache/cargo-target" /var/cache/terrarium-build/cargo-target rw
    bind "$cache/go-mod" /root/go/pkg/mod rw
    bind "$cache/go-build" /root/.cache/go-build rw
    exec "$@"
  ' in_root "$root" "$cache" "$PWD" "$rust_bin" "$go_root" \
    env -i HOME=/root LANG=C.UTF-8 TERM=dumb "${machine_env[@]}" \
    PATH=/opt/rust/bin:/opt/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    CARGO_TARGET_DIR=/var/cache/terrarium-build/cargo-target \
    chroot "$root" "$@"
}

# The check itself can fail: a declared program no list provides, and one that is not
# installed, are each named with what to do.
check_the_check_names_what_is_missing() {
  local lists out status=0
  lists=$(mktemp -d)
  printf 'terrarium-no-such-program terrarium-no-such-package\n' >"$lists/a.programs"
  printf 'terrarium-missing-too terrarium-missing-package\n' >>"$lists/a.programs"
  printf 'terrarium-missing-package\n' >"$lists/a.apt"
  out=$(TERRARIUM_DEPS_DIR=$lists tests/install-deps --check 2>&1) || status=$?
  rm -rf "$lists"
  # shellcheck disable=SC2016 # backticks are literal in the message
  local declared='`terrarium-no-such-program` is declared as coming from `terrarium-no-such-package`, which no list'
  # shellcheck disable=SC2016
  local missing='`terrarium-missing-too` is missing: it comes from the Debian package terrarium-missing-package'
  if [ "$status" = 1 ] && grep -qF "$declared" <<<"$out" && grep -qF "$missing" <<<"$out"; then
    return 0
  fi
  printf '%s\n(exit %s)\n' "$out" "$status" >&2
  return 1
}
check "install-deps --check names a missing program and its package, and exits 1" check_the_check_names_what_is_missing

build_root() {
  local tarball old tmp="$cache/building-$key"
  for old in "$cache"/root-* "$cache"/building-*; do
    [ -e "$old" ] && [ "$old" != "$root" ] && rm -rf --one-file-system "$old"
  done
  # A plain minbase (the packaging suite's tarball has Terrarium's dependencies in it).
  tarball=$(debootstrap_tarball "$cache" fresh-root) || return 1
  mkdir -p "$tmp"
  zstd -q -d -c "$tarball" | tar -C "$tmp" --numeric-owner -xf -
  cp /etc/resolv.conf "$tmp/etc/resolv.conf"
  # The sources a new Debian 12 machine has (main, updates, security), as this one.
  rm -f "$tmp/etc/apt/sources.list"
  cp -a /etc/apt/sources.list.d/*.sources "$tmp/etc/apt/sources.list.d/" 2>/dev/null || cp /etc/apt/sources.list "$tmp/etc/apt/"
  if [ -d /usr/local/share/ca-certificates ]; then
    mkdir -p "$tmp/usr/local/share/ca-certificates"
    cp -a /usr/local/share/ca-certificates/. "$tmp/usr/local/share/ca-certificates/"
  fi
  if [ -e /etc/pip.conf ]; then cp /etc/pip.conf "$tmp/etc/pip.conf"; fi
  # No daemon a package installs may start (there is no init in the root anyway).
  printf '#!/bin/sh\nexit 101\n' >"$tmp/usr/sbin/policy-rc.d"
  chmod 0755 "$tmp/usr/sbin/policy-rc.d"
  mv "$tmp" "$root"
}


if [ ! -e "$root/.terrarium-installed" ]; then
  rm -rf --one-file-system "$root"
  echo "fresh-root: a new Debian 12 root for lists $key (cold: several minutes)"
  check "a fresh Debian 12 root is built" build_root
fi
if [ -d "$root" ]; then
  log="$cache/install-deps-$key.log"
  if in_root /src/terrarium/tests/install-deps >"$log" 2>&1; then
    echo "ok   tests/install-deps installs everything in the fresh root"
    passed=$((passed + 1))
    touch "$root/.terrarium-installed"
  else
    tail -n 30 "$log" >&2
    echo "FAIL tests/install-deps in the fresh root (log: $log)"
    failed=$((failed + 1))
  fi
  check "tests/install-deps --check finds every declared program in the fresh root" \
    in_root /src/terrarium/tests/install-deps --check
fi

echo "fresh-root: $passed passed, $failed failed ($((SECONDS - started)) s)"
[ "$failed" = 0 ]
