//! Persisting a verified config: secrets first (so the config never names a file that
//! is not there), then the config, both atomic and 0600. And the difference to the
//! persisted config, shown before a change.

use serde::Serialize;
use terrarium_common::{Config, Paths};

use crate::secrets::{NewSecret, SecretInputError, persist as persist_secrets};

#[derive(Debug, Clone, Default, Serialize)]
pub struct Persisted {
    pub config_changed: bool,
    pub secrets_changed: Vec<&'static str>,
}

#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error(transparent)]
    Secret(#[from] SecretInputError),
    #[error(transparent)]
    Config(#[from] terrarium_common::config::ConfigError),
}

pub fn persist(paths: &Paths, config: &Config, secrets: &[NewSecret]) -> Result<Persisted, PersistError> {
    // Validate before the secrets are written, so an invalid config changes nothing.
    config.validate()?;
    let secrets_changed = persist_secrets(paths, secrets)?;
    terrarium_common::killpoint::reached("install.secrets-saved");
    let config_changed = config.save(paths)?;
    terrarium_common::killpoint::reached("install.config-saved");
    Ok(Persisted { config_changed, secrets_changed })
}

/// A unified diff from the persisted config to `new` (empty when equal).
pub fn diff(old: Option<&Config>, new: &Config) -> String {
    let old_text = old.and_then(|c| c.to_yaml().ok()).unwrap_or_default();
    let new_text = new.to_yaml().unwrap_or_default();
    if old_text == new_text {
        return String::new();
    }
    similar::TextDiff::from_lines(&old_text, &new_text)
        .unified_diff()
        .context_radius(2)
        .header("config.yaml (persisted)", "config.yaml (new)")
        .to_string()
}
