# shellcheck shell=bash
# The signed apt repository as a release builds it, with a throwaway key: used by the
# packaging suite and the VM suite, and its build for the benchmarks. Needs gpg and what
# debian/build-release-repo needs.
#   release_repo_build DIR BASE_URL [--no-build]
# makes DIR/gnupg (the key; GNUPGHOME is exported to it) and DIR/out (debs/ and repo/,
# whose install.sh is stamped with BASE_URL), and sets release_fpr to the key's fingerprint.

release_fpr=""

# release_lock COMMAND...: run COMMAND holding the lock on this target directory's
# release build: cargo-deb strips and copies the binaries there and writes
# debian/generated, and two runs at once leave corrupt executables.
release_lock() {
  local target=${CARGO_TARGET_DIR:-target}
  mkdir -p "$target"
  (
    flock 9
    "$@"
  ) 9>"$target/.terrarium-release-repo.lock"
}

# release_tools_build: the tools as a release builds them (debian/build-release-repo
# --build-only), for tests/run and the benchmarks: the binaries a release ships, from
# the build the packaging and VM suites use. Quiet unless it fails.
release_tools_build() {
  local log status=0
  log=$(mktemp)
  release_lock debian/build-release-repo --build-only >"$log" 2>&1 || status=$?
  [ "$status" = 0 ] || cat "$log" >&2
  rm -f "$log"
  return "$status"
}

release_repo_build() {
  local dir=$1 base_url=$2
  shift 2
  export GNUPGHOME="$dir/gnupg"
  install -d -m 0700 "$GNUPGHOME"
  gpg --batch --quiet --passphrase '' --quick-gen-key "Terrarium test release key (throwaway) <test@terrarium.invalid>" ed25519 sign 1d
  release_fpr=$(gpg --batch --with-colons --list-secret-keys | awk -F: '$1 == "fpr" { print $10; exit }')
  release_lock debian/build-release-repo --key "$release_fpr" --out "$dir/out" --base-url "$base_url" "$@"
}
