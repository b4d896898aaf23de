//! Finding the other Terrarium tools, for the tools that run one another as programs
//! (never as libraries): `terrariumctl` runs the tool its words name, `terrarium-status`
//! asks `terrarium-backup status` for the health of the backups.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::paths::{env, host};

/// `TERRARIUM_TOOL_PATH`, then the directory of this executable (a build tree, or
/// `/usr/bin` where the packages put every tool), then `/usr/lib/terrarium`, then `PATH`.
pub fn search_dirs() -> Vec<PathBuf> {
    let own = std::env::current_exe().ok().and_then(|exe| exe.parent().map(Path::to_path_buf));
    search_order(std::env::var_os(env::TOOL_PATH), own, std::env::var_os("PATH"))
}

/// [`search_dirs`] from its inputs.
pub fn search_order(tool_path: Option<OsString>, own_dir: Option<PathBuf>, path: Option<OsString>) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(extra) = tool_path {
        dirs.extend(std::env::split_paths(&extra));
    }
    dirs.extend(own_dir);
    dirs.push(PathBuf::from(host::LIB_DIR));
    if let Some(path) = path {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs
}

/// The first executable file called `name` in [`search_dirs`].
pub fn find(name: &str) -> Option<PathBuf> {
    find_in(name, &search_dirs())
}

/// The first executable file called `name` in `dirs`.
pub fn find_in(name: &str, dirs: &[PathBuf]) -> Option<PathBuf> {
    dirs.iter()
        .map(|dir| dir.join(name))
        .find(|path| std::fs::metadata(path).is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_tool_path_comes_first_then_our_directory_the_lib_dir_and_path() {
        let dirs = search_order(Some("/a:/b".into()), Some("/own".into()), Some("/usr/bin:/bin".into()));
        let want: Vec<PathBuf> = ["/a", "/b", "/own", host::LIB_DIR, "/usr/bin", "/bin"].map(PathBuf::from).into();
        assert_eq!(dirs, want);
        assert_eq!(search_order(None, None, None), vec![PathBuf::from(host::LIB_DIR)]);
    }

    #[test]
    fn only_executable_files_are_found_in_search_order() {
        let first = tempfile::tempdir().unwrap();
        let second = tempfile::tempdir().unwrap();
        let write = |dir: &Path, name: &str, mode: u32| {
            let path = dir.join(name);
            std::fs::write(&path, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            path
        };
        write(first.path(), "terrarium-tool", 0o644);
        let tool = write(second.path(), "terrarium-tool", 0o755);
        std::fs::create_dir(first.path().join("terrarium-dir")).unwrap();
        let dirs = [first.path().to_path_buf(), second.path().to_path_buf()];
        assert_eq!(find_in("terrarium-tool", &dirs), Some(tool));
        assert_eq!(find_in("terrarium-dir", &dirs), None);
        assert_eq!(find_in("terrarium-absent", &dirs), None);
    }
}
