//! Client ids and secrets under the secrets directory: mode 0600, written atomically,
//! and only when the value changed (so a second run reports nothing).

use std::path::PathBuf;

use terrarium_common::Paths;
use terrarium_common::secret::{Secret, read_secret_file};

use crate::plan::{Change, Report, System};

#[derive(Debug, thiserror::Error)]
#[error("cannot write {path}: {source}; check that the secrets directory is writable by root")]
pub struct StoreError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// The stored value, if the file exists, is private and is not empty.
pub fn read(paths: &Paths, name: &str) -> Option<Secret> {
    read_secret_file(&paths.secret(name)).ok()
}

/// Store `value` under `name`; records a change when the file was missing or differed
/// (or had the wrong mode). A dry run records without writing.
pub fn store(paths: &Paths, name: &str, value: &Secret, dry_run: bool, report: &mut Report) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    let path = paths.secret(name);
    let current = std::fs::read(&path).ok();
    let mode_ok = std::fs::metadata(&path).map(|m| m.permissions().mode() & 0o777 == 0o600).unwrap_or(false);
    let wanted = format!("{}\n", value.expose());
    if current.as_deref() == Some(wanted.as_bytes()) && mode_ok {
        return Ok(());
    }
    report.record(Change::new(System::Secrets, "write", "secret", name));
    if dry_run {
        return Ok(());
    }
    terrarium_common::fs::write_if_changed(&path, wanted.as_bytes(), 0o600)
        .map_err(|source| StoreError { path, source })?;
    Ok(())
}
