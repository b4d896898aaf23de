# shellcheck shell=bash
# A Debian 12 debootstrap chroot for the packaging suite, cached as a tarball under
# $TERRARIUM_TEST_CACHE so reruns skip debootstrap. Sourced by tests/suites/packaging.sh.
#
# The chroot is where install.sh really runs: apt, dpkg, man-db and systemd-analyze are
# the chroot's own. It shares the host network (so it reaches the repository served on
# 127.0.0.1 and the Debian mirror) but gets /proc and /dev only inside a private mount
# namespace (chroot_run), so nothing is left mounted on the host.

CHROOT_SUITE=bookworm
CHROOT_MIRROR=${TERRARIUM_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# Preinstalled so install.sh's apt run does not download them every time: man-db for
# `man`, systemd for `systemd-analyze verify` (by debootstrap), then ansible and
# python3-jsonschema, which terrarium-ansible depends on (by apt: debootstrap cannot
# resolve their virtual dependencies). install.sh still installs every Terrarium package.
CHROOT_INCLUDE=man-db,systemd
CHROOT_APT="ansible python3-jsonschema"

# debootstrap_tarball DIR LABEL [INCLUDE [APT]]: path of a cached tarball (under DIR) of
# a Debian minbase root, with the packages INCLUDE names added by debootstrap and APT's
# installed by apt after it; built on first use. LABEL prefixes its messages.
debootstrap_tarball() {
  local dir=$1 label=$2 include=${3:-} apt=${4:-} key tarball tmp
  key=$(printf '%s %s %s %s' "$CHROOT_SUITE" "$CHROOT_MIRROR" "$include" "$apt" | sha256sum | cut -c1-12)
  tarball="$dir/$CHROOT_SUITE-$key.tar.zst"
  if [ ! -s "$tarball" ]; then
    mkdir -p "$dir"
    tmp=$(mktemp -d "$dir/build.XXXXXX")
    echo "$label: debootstrap --variant=minbase $CHROOT_SUITE (once; cached as $tarball)" >&2
    if ! debootstrap --variant=minbase ${include:+"--include=$include"} "$CHROOT_SUITE" "$tmp/root" "$CHROOT_MIRROR" >"$tmp/log" 2>&1; then
      tail -n 20 "$tmp/log" >&2
      rm -rf "$tmp"
      echo "$label: debootstrap failed (log above); it needs $CHROOT_MIRROR" >&2
      return 1
    fi
    if [ -n "$apt" ]; then
      cp /etc/resolv.conf "$tmp/root/etc/resolv.conf"
      if ! chroot_run "$tmp/root" sh -c "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $apt" >"$tmp/log" 2>&1; then
        tail -n 20 "$tmp/log" >&2
        rm -rf "$tmp"
        echo "$label: apt-get install $apt in the chroot failed (log above)" >&2
        return 1
      fi
    fi
    # Keep the tarball small and apt honest: no cached .debs, no stale lists.
    rm -rf "$tmp/root/var/cache/apt/archives/"*.deb "$tmp/root/var/lib/apt/lists/"*
    tar -C "$tmp/root" --numeric-owner -cf - . | zstd -q -T0 -o "$tarball.tmp"
    mv "$tarball.tmp" "$tarball"
    rm -rf "$tmp"
  fi
  echo "$tarball"
}

# chroot_tarball: path of the packaging suite's cached tarball, built on first use.
chroot_tarball() {
  debootstrap_tarball "$TERRARIUM_TEST_CACHE/packaging" packaging "$CHROOT_INCLUDE" "$CHROOT_APT"
}

# chroot_create DIR: a fresh chroot from the cached tarball.
chroot_create() {
  local tarball
  tarball=$(chroot_tarball) || return 1
  mkdir -p "$1"
  zstd -q -d -c "$tarball" | tar -C "$1" --numeric-owner -xf -
  cp /etc/resolv.conf "$1/etc/resolv.conf"
  # No daemon may start inside the chroot (there is no init there anyway).
  printf '#!/bin/sh\nexit 101\n' >"$1/usr/sbin/policy-rc.d"
  chmod 0755 "$1/usr/sbin/policy-rc.d"
}

# chroot_run DIR COMMAND...: COMMAND inside the chroot, with /proc and /dev mounted in a
# private mount namespace that disappears with it.
chroot_run() {
  local root=$1
  shift
  # shellcheck disable=SC2016 # the inner script expands its own arguments
  unshare --mount --propagation private -- sh -c '
    root=$1; shift
    mount -t proc proc "$root/proc" &&
    mount --rbind /dev "$root/dev" &&
    exec env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      HOME=/root LANG=C.UTF-8 TERM=dumb chroot "$root" "$@"
  ' chroot_run "$root" "$@"
}
