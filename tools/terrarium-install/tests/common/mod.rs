//! Helpers shared by the integration tests: scratch roots, golden directory trees.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

pub const UBUNTU_OS_RELEASE: &str = "NAME=\"Ubuntu\"\nID=ubuntu\nVERSION_ID=\"24.04\"\n";

pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Captured block-device layouts; they belong to storage discovery (terrarium-setup).
pub fn storage_fixtures() -> PathBuf {
    manifest_dir().join("../terrarium-setup/tests/fixtures/storage")
}

/// A scratch root that looks like Ubuntu 24.04 with a root password set (so the
/// root password flags are not needed unless a test removes it).
pub fn ubuntu_root() -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("terrarium-install-test-").tempdir().unwrap();
    write(&dir.path().join("etc/os-release"), UBUNTU_OS_RELEASE, 0o644);
    write(&dir.path().join("etc/shadow"), "root:$y$j9T$salt$hash:19000:0:99999:7:::\n", 0o640);
    dir
}

pub fn write(path: &Path, contents: &str, mode: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, contents).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

pub fn copy_tree(from: &Path, to: &Path) {
    for (rel, _) in tree(from) {
        let source = from.join(&rel);
        let target = to.join(&rel);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&source, &target).unwrap();
    }
}

/// Every file under `dir` (relative path -> mode), skipping run locks.
pub fn tree(dir: &Path) -> BTreeMap<PathBuf, u32> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&current) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).unwrap().to_path_buf();
                if rel.starts_with("var/lib/terrarium/locks") {
                    continue;
                }
                files.insert(rel, std::fs::metadata(&path).unwrap().permissions().mode() & 0o777);
            }
        }
    }
    files
}

/// Compare the tree under `actual` with `expected` (file list and contents); with
/// TERRARIUM_GOLDEN_UPDATE=1, rewrite `expected` instead (then review the diff). Git
/// does not keep modes, so modes are checked by rule: Terrarium's config, secrets and
/// rendered variables are 0600.
pub fn assert_tree(actual: &Path, expected: &Path) {
    let got = tree(actual);
    for (rel, mode) in &got {
        if rel.starts_with("etc/terrarium") || rel.ends_with("ansible-vars.json") {
            assert_eq!(*mode, 0o600, "{} has mode {mode:o}, expected 600", rel.display());
        }
    }
    if std::env::var_os("TERRARIUM_GOLDEN_UPDATE").is_some() {
        let _ = std::fs::remove_dir_all(expected);
        copy_tree(actual, expected);
        return;
    }
    let want = tree(expected);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "files differ from {}",
        expected.display()
    );
    for rel in want.keys() {
        let a = std::fs::read_to_string(actual.join(rel)).unwrap();
        let e = std::fs::read_to_string(expected.join(rel)).unwrap();
        assert_eq!(a, e, "{} differs from {}", rel.display(), expected.display());
    }
}

/// Arguments from a golden case's `args` file: one per line, `#` comments,
/// `$CASE` replaced by the case directory, `$STORAGE_FIXTURES` by [`storage_fixtures`].
pub fn case_args(case: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(case.join("args")).unwrap_or_default();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            l.replace("$CASE", &case.display().to_string())
                .replace("$STORAGE_FIXTURES", &storage_fixtures().display().to_string())
        })
        .collect()
}

pub fn case_exit(case: &Path) -> i32 {
    std::fs::read_to_string(case.join("exit")).map(|t| t.trim().parse().unwrap()).unwrap_or(0)
}

/// Run every golden case under `dir` with `binary`; each case runs on a copy of its
/// `input` tree and must leave exactly its `expected` tree.
pub fn run_golden_cases(dir: &Path, binary: &str, extra_env: &[(&str, &str)]) {
    let mut cases: Vec<PathBuf> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
    cases.sort();
    assert!(!cases.is_empty(), "no golden cases in {}", dir.display());
    for case in cases {
        let root = tempfile::Builder::new().prefix("terrarium-golden-").tempdir().unwrap();
        if case.join("input").is_dir() {
            copy_tree(&case.join("input"), root.path());
            // Inputs are stored 0644 in git; config and secrets are 0600 on a host.
            for (rel, _) in tree(root.path()) {
                if rel.starts_with("etc/terrarium") {
                    std::fs::set_permissions(root.path().join(&rel), std::fs::Permissions::from_mode(0o600)).unwrap();
                }
            }
        }
        let mut command = assert_cmd::Command::cargo_bin(binary).unwrap();
        command
            .arg("--root")
            .arg(root.path())
            .args(case_args(&case))
            .env("TERRARIUM_LOG_FORMAT", "logfmt")
            .env_remove("TERRARIUM_ROOT");
        for (key, value) in extra_env {
            command.env(key, value);
        }
        let output = command.output().unwrap();
        let code = output.status.code().unwrap_or(-1);
        assert_eq!(
            code,
            case_exit(&case),
            "{}: exit {code}\nstdout: {}\nstderr: {}",
            case.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert_tree(root.path(), &case.join("expected"));
    }
}
