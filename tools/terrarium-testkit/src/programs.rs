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

/// The lists tests/install-deps installs from and checks against.
fn deps_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/deps")
}

/// Which package brings `program`, read from the `*.programs` lists (and the binaries
/// the `*.cargo` lines install), so the hint and tests/install-deps never disagree.
fn installed_by(program: &str) -> String {
    let Ok(entries) = std::fs::read_dir(deps_dir()) else {
        return "it (tests/deps is missing)".to_owned();
    };
    let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();
    for file in &files {
        let Some(kind) = file.extension().and_then(|e| e.to_str()) else { continue };
        let Ok(text) = std::fs::read_to_string(file) else { continue };
        for line in text.lines().map(|l| l.split('#').next().unwrap_or_default()) {
            let mut words = line.split_whitespace();
            let (Some(name), Some(package)) = (words.next(), words.next()) else { continue };
            match kind {
                "programs" if name == program => {
                    return format!("the package {package} (declared in {})", file.display());
                }
                "cargo" if name == program => {
                    return format!(
                        "the cargo package {} ({})",
                        package.split('@').next().unwrap_or(package),
                        file.display()
                    );
                }
                _ => {}
            }
        }
    }
    "it once it is declared (add it to tests/deps/<area>.programs and its package to a list)".to_owned()
}

/// The full path of `program`; panics with an install hint when it is missing, so a
/// test whose component is absent fails instead of silently skipping.
pub fn require(program: &str) -> PathBuf {
    find_program(program)
        .unwrap_or_else(|| panic!("`{program}` is not installed: run tests/run; it installs {}", installed_by(program)))
}

#[cfg(test)]
mod tests {
    use super::installed_by;

    #[test]
    fn the_install_hint_names_the_package_the_lists_declare() {
        assert!(installed_by("dnsmasq").contains("dnsmasq-base"), "{}", installed_by("dnsmasq"));
        assert!(installed_by("s3s-fs").starts_with("the cargo package s3s-fs"), "{}", installed_by("s3s-fs"));
        assert!(installed_by("terrarium-no-such-program").contains("add it to tests/deps"));
    }
}
