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

/// Whether the stored secret `name` can be used as it is, after putting right the one
/// thing that is safe to put right here: a mode other than 0600 (a `cp` or an editor
/// that dropped it). The file is then made 0600 and that is recorded, since a
/// secret that can only be shown once (a ZITADEL client secret) must not be
/// replaced for a mode. False when the file is missing, empty or unreadable.
pub fn usable_after_fixing_mode(
    paths: &Paths,
    name: &str,
    dry_run: bool,
    report: &mut Report,
) -> Result<bool, StoreError> {
    use std::os::unix::fs::PermissionsExt;
    use terrarium_common::secret::SecretError;
    let path = paths.secret(name);
    match read_secret_file(&path) {
        Ok(_) => Ok(true),
        Err(SecretError::TooOpen { mode, .. }) => {
            report.record(
                Change::new(System::Secrets, "chmod", "secret", name).detail(format!("mode was {mode:o}, set to 600")),
            );
            if dry_run {
                // It would be private after the chmod: usable unless empty.
                return Ok(std::fs::metadata(&path).is_ok_and(|m| m.len() > 0));
            }
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .map_err(|source| StoreError { path: path.clone(), source })?;
            Ok(read_secret_file(&path).is_ok())
        }
        Err(_) => Ok(false),
    }
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
