//! Secrets given to install and set: from a flag, a file or an environment variable,
//! never logged; persisted under `/etc/terrarium/secrets/` with mode 0600.

use std::path::{Path, PathBuf};

use terrarium_common::Paths;
use terrarium_common::secret::{Secret, read_secret_file};

/// Why a secret could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SecretInputError {
    #[error("{flag}: {error}")]
    File { flag: &'static str, error: terrarium_common::secret::SecretError },
    #[error("{flag}: the secret is empty; give a non-empty value")]
    Empty { flag: &'static str },
    #[error("cannot write secret file {path}: {error}")]
    Write { path: PathBuf, error: std::io::Error },
    #[error("{flag}: cannot read {path}: {error}")]
    Copy { flag: &'static str, path: PathBuf, error: std::io::Error },
}

/// A secret from `--X VALUE`, `--X-file FILE` or the environment variable `env`, in
/// that order. The file must be mode 0600 (or stricter).
pub fn secret_from(
    flag: &'static str,
    value: Option<&str>,
    file: Option<&Path>,
    env: &str,
) -> Result<Option<Secret>, SecretInputError> {
    if let Some(value) = value {
        return non_empty(flag, value.to_string()).map(Some);
    }
    if let Some(file) = file {
        return read_secret_file(file).map(Some).map_err(|error| SecretInputError::File { flag, error });
    }
    match std::env::var(env) {
        Ok(value) if !value.is_empty() => Ok(Some(Secret::new(value))),
        _ => Ok(None),
    }
}

fn non_empty(flag: &'static str, value: String) -> Result<Secret, SecretInputError> {
    if value.is_empty() { Err(SecretInputError::Empty { flag }) } else { Ok(Secret::new(value)) }
}

/// A secret to be written to `/etc/terrarium/secrets/<name>`.
#[derive(Debug, Clone)]
pub struct NewSecret {
    pub name: &'static str,
    pub value: Secret,
}

/// The host path (before the root prefix) of a standard secret file.
pub fn host_secret_path(name: &str) -> PathBuf {
    Paths::default().secret(name)
}

/// Write each secret atomically with mode 0600. Returns the names that changed.
pub fn persist(paths: &Paths, secrets: &[NewSecret]) -> Result<Vec<&'static str>, SecretInputError> {
    let mut changed = Vec::new();
    for secret in secrets {
        let path = paths.secret(secret.name);
        let mut contents = secret.value.expose().as_bytes().to_vec();
        // ssh refuses a private key without its final newline.
        if secret.value.expose().starts_with("-----BEGIN") && !secret.value.expose().ends_with('\n') {
            contents.push(b'\n');
        }
        if terrarium_common::fs::write_if_changed(&path, &contents, 0o600)
            .map_err(|error| SecretInputError::Write { path: path.clone(), error })?
        {
            changed.push(secret.name);
        }
    }
    Ok(changed)
}

/// Read an ssh private key to copy into the secrets directory.
pub fn read_key_file(flag: &'static str, path: &Path) -> Result<Secret, SecretInputError> {
    let text = std::fs::read_to_string(path).map_err(|error| SecretInputError::Copy {
        flag,
        path: path.to_path_buf(),
        error,
    })?;
    non_empty(flag, text)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_flag_wins_then_the_file_then_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s");
        std::fs::write(&file, "from-file\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let env = "TERRARIUM_TEST_SECRET_INPUT_UNSET";
        assert_eq!(secret_from("--x", Some("v"), Some(&file), env).unwrap().unwrap().expose(), "v");
        assert_eq!(secret_from("--x", None, Some(&file), env).unwrap().unwrap().expose(), "from-file");
        assert!(secret_from("--x", None, None, env).unwrap().is_none());
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = secret_from("--x-file", None, Some(&file), env).unwrap_err().to_string();
        assert!(err.starts_with("--x-file: ") && err.contains("chmod 600"), "{err}");
    }

    #[test]
    fn persisted_secrets_are_0600() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path());
        let secrets = [NewSecret { name: "s3-secret-key", value: Secret::new("k") }];
        assert_eq!(persist(&paths, &secrets).unwrap(), vec!["s3-secret-key"]);
        assert!(persist(&paths, &secrets).unwrap().is_empty());
        let mode = std::fs::metadata(paths.secret("s3-secret-key")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
