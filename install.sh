#!/bin/sh
# Terrarium installer: adds the signed Terrarium apt repository, installs the `terrarium`
# package at the release this script ships with, then runs terrarium-install with the
# arguments it was given. POSIX sh; `install.sh --help` lists the options.
# The release build (debian/build-release-repo) stamps the version, the repository URL
# and the release signing key into the published copy; docs/packaging.md explains it.

set -eu

# Stamped by debian/build-release-repo when the release is built.
TERRARIUM_VERSION="unreleased"
TERRARIUM_REPO_URL=""
TERRARIUM_SOURCE_URL="https://github.com/terrarium-dev/terrarium.git"

SUITE=stable
KEYRING=/etc/apt/keyrings/terrarium.asc
SOURCES=/etc/apt/sources.list.d/terrarium.sources

# The release signing key (public), stamped by debian/build-release-repo.
release_key() {
	cat <<'TERRARIUM_KEY'
@TERRARIUM_RELEASE_KEY@
TERRARIUM_KEY
}

say() { printf 'install.sh: %s\n' "$*"; }
die() { # CODE MESSAGE
	code=$1
	shift
	printf 'install.sh: error: %s\n' "$*" >&2
	exit "$code"
}
usage() {
	cat <<EOF
Terrarium installer ($TERRARIUM_VERSION)

  curl -fsSL ${TERRARIUM_REPO_URL:-REPO_URL}/install.sh | sudo sh -s -- [OPTIONS] [TERRARIUM-INSTALL ARGS]

Options (every other argument, and all after --, goes to terrarium-install):
  --force-os         install on a host other than Ubuntu 24.04 (unsupported)
  --no-setup         install the packages, then stop before running terrarium-install
  --repo-url URL     use this apt repository instead of the release's
  --key-file FILE    trust this ASCII-armored public key instead of the release's
  --ref REF          build branch or tag REF from source instead (git, cargo, cargo-deb)
  --source-url URL   the git repository --ref builds from
  -h, --help         show this help

Exit codes: 0 installed, 1 a step failed, 2 bad usage or unsupported host,
5 the repository failed signature verification (nothing was installed).
EOF
}

# --- arguments: ours are taken out, the rest is kept in "$@" for terrarium-install ---
force_os=0
no_setup=0
repo_url=$TERRARIUM_REPO_URL
key_file=""
ref=""
source_url=$TERRARIUM_SOURCE_URL
need_value() { [ "$2" -gt 1 ] || die 2 "$1 needs a value (see --help)"; }
n=$#
while [ "$n" -gt 0 ]; do
	arg=$1
	shift
	n=$((n - 1))
	case $arg in
	--force-os) force_os=1 ;;
	--no-setup) no_setup=1 ;;
	--repo-url | --key-file | --ref | --source-url)
		need_value "$arg" $((n + 1))
		value=$1
		shift
		n=$((n - 1))
		case $arg in
		--repo-url) repo_url=$value ;;
		--key-file) key_file=$value ;;
		--ref) ref=$value ;;
		--source-url) source_url=$value ;;
		esac
		;;
	--repo-url=*) repo_url=${arg#*=} ;;
	--key-file=*) key_file=${arg#*=} ;;
	--ref=*) ref=${arg#*=} ;;
	--source-url=*) source_url=${arg#*=} ;;
	-h | --help)
		usage
		exit 0
		;;
	--)
		while [ "$n" -gt 0 ]; do
			set -- "$@" "$1"
			shift
			n=$((n - 1))
		done
		;;
	*) set -- "$@" "$arg" ;;
	esac
done
repo_url=${repo_url%/}

# --- the host -------------------------------------------------------------------
[ "$(id -u)" = 0 ] || die 2 "run as root: curl -fsSL .../install.sh | sudo sh -s -- ..."
os_id="" os_version="" os_name="an unknown system"
if [ -r /etc/os-release ]; then
	# shellcheck disable=SC1091
	. /etc/os-release
	os_id=${ID:-}
	os_version=${VERSION_ID:-}
	os_name=${PRETTY_NAME:-$os_id $os_version}
fi
if [ "$os_id" != ubuntu ] || [ "$os_version" != 24.04 ]; then
	[ "$force_os" = 1 ] || die 2 "Terrarium supports Ubuntu 24.04 only and this host runs $os_name; pass --force-os to try anyway (unsupported)"
	say "warning: $os_name is not Ubuntu 24.04; continuing because of --force-os"
fi
command -v apt-get >/dev/null 2>&1 || die 2 "apt-get not found: Terrarium installs from Debian packages"

apt_install() { # PACKAGE...
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
}

# terrarium-install prompts: when this script is piped into sh, give it the terminal.
run_setup() {
	if [ "$no_setup" = 1 ]; then
		say "packages installed; --no-setup given, so run terrarium-install yourself to set the host up"
		exit 0
	fi
	command -v terrarium-install >/dev/null 2>&1 || die 1 "terrarium-install is not on PATH after the install; check the apt output above"
	say "running terrarium-install $*"
	if [ ! -t 0 ] && (: </dev/tty) 2>/dev/null; then
		exec terrarium-install "$@" </dev/tty
	fi
	exec terrarium-install "$@"
}

# --- --ref: a source build instead of the release repository ----------------------
if [ -n "$ref" ]; then
	say "building Terrarium from source: $source_url at $ref"
	missing=""
	for tool in git cc pkg-config; do command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"; done
	if [ -n "$missing" ]; then
		say "installing build tools (missing:$missing)"
		apt-get update -q || die 1 "apt-get update failed; fix the apt sources above and re-run"
		apt_install git build-essential pkg-config ca-certificates || die 1 "could not install git and build-essential with apt"
	fi
	command -v cargo >/dev/null 2>&1 || die 1 "cargo not found: a source build needs Rust; install it from https://rustup.rs and re-run"
	if ! cargo deb --version >/dev/null 2>&1; then
		say "installing cargo-deb"
		cargo install --locked cargo-deb || die 1 "cargo install cargo-deb failed (see above)"
	fi
	work=$(mktemp -d /var/tmp/terrarium-src.XXXXXX) || die 1 "cannot create a build directory under /var/tmp"
	trap 'rm -rf "$work"' EXIT
	git clone --quiet --depth 1 --branch "$ref" "$source_url" "$work/src" ||
		die 1 "git clone of $source_url at $ref failed: check the URL and that the branch or tag exists"
	"$work/src/debian/build-release-repo" --debs-only --out "$work/out" ||
		die 1 "the source build failed (see above)"
	set -- "$work"/out/debs/*.deb -- "$@"
	debs=""
	while [ "$1" != -- ]; do
		debs="$debs $1"
		shift
	done
	shift
	apt-get update -q || die 1 "apt-get update failed; fix the apt sources above and re-run"
	# shellcheck disable=SC2086 # $debs: paths without spaces, from mktemp and dpkg names
	apt_install $debs || die 1 "apt could not install the packages built from $ref (see above)"
	rm -rf "$work"
	trap - EXIT
	run_setup "$@"
fi

# --- the release repository -----------------------------------------------------
case $TERRARIUM_VERSION in
unreleased) die 2 "this install.sh was not stamped by a release build; use the one published with a release, or --ref BRANCH to build from source" ;;
esac
[ -n "$repo_url" ] || die 2 "no repository URL: pass --repo-url URL"
arch=$(dpkg --print-architecture)
[ "$arch" = amd64 ] || die 2 "Terrarium releases are built for amd64 and this host is $arch; use --ref BRANCH to build from source"

say "adding the Terrarium $TERRARIUM_VERSION repository $repo_url"
mkdir -p "$(dirname "$KEYRING")" "$(dirname "$SOURCES")"
if [ -n "$key_file" ]; then
	[ -r "$key_file" ] || die 2 "--key-file $key_file is not readable"
	grep -q 'BEGIN PGP PUBLIC KEY BLOCK' "$key_file" || die 2 "--key-file $key_file is not an ASCII-armored public key (gpg --armor --export)"
	cp "$key_file" "$KEYRING.tmp" || die 1 "cannot write $KEYRING"
else
	release_key >"$KEYRING.tmp" || die 1 "cannot write $KEYRING"
fi
chmod 0644 "$KEYRING.tmp"
mv "$KEYRING.tmp" "$KEYRING"
cat >"$SOURCES.tmp" <<EOF || die 1 "cannot write $SOURCES"
# Terrarium release repository, added by install.sh ($TERRARIUM_VERSION).
Types: deb
URIs: $repo_url
Suites: $SUITE
Components: main
Architectures: amd64
Signed-By: $KEYRING
EOF
mv "$SOURCES.tmp" "$SOURCES"

# Fetch only our repository first, failing on any warning: a bad signature or a tampered
# Release file must stop the install here, not become a warning lost in the output.
say "verifying the repository signature"
log=$(mktemp) || die 1 "cannot create a temporary file"
if ! apt-get update -q --error-on=any \
	-o "Dir::Etc::SourceList=$SOURCES" -o Dir::Etc::SourceParts=- \
	-o APT::Get::List-Cleanup=false >"$log" 2>&1; then
	cat "$log" >&2
	if grep -q -i -e 'BADSIG' -e 'not signed' -e 'signatures were invalid' -e 'signatures couldn.t be verified' \
		-e 'NO_PUBKEY' -e 'Hash Sum mismatch' -e 'unexpected size' -e 'GPG error' -e 'OpenPGP' "$log"; then
		rm -f "$log"
		die 5 "apt refused the Terrarium repository at $repo_url: its signature or checksums do not verify against the Terrarium release key (apt's messages above). Nothing was installed. Do not work around this: the repository or the connection to it has been tampered with, or the key is wrong"
	fi
	rm -f "$log"
	die 1 "apt could not fetch the Terrarium repository at $repo_url (apt's messages above); check the URL and the network"
fi
rm -f "$log"

say "updating the package lists"
apt-get update -q || die 1 "apt-get update failed; fix the apt sources named above and re-run"
say "installing terrarium $TERRARIUM_VERSION"
apt_install "terrarium=$TERRARIUM_VERSION" ||
	die 1 "apt could not install terrarium $TERRARIUM_VERSION (see above); is $repo_url serving that release?"
run_setup "$@"
