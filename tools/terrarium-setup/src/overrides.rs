//! `/etc/terrarium/ansible-overrides.yml`: role defaults this host changes, such as a
//! mirror for the pinned release binaries on a host without GitHub, or another ACME
//! server. Every converge passes them to Ansible beside config.yaml's variables.
//!
//! Only role defaults may be overridden: a variable config.yaml sets (the contract in
//! `vars.schema.json`) is refused here, or the file would silently win over
//! `terrarium-set` and the tools that read config.yaml would disagree with the host.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value};

/// Why the overrides file cannot be used; each names the file, the key and the fix.
#[derive(Debug, thiserror::Error)]
pub enum OverridesError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{0}; the file must be a YAML mapping of terrarium_* role variables")]
    Yaml(#[from] terrarium_common::yaml::YamlError),
    #[error("{path}: `{key}` is not a Terrarium role variable; only terrarium_* role defaults can be overridden")]
    NotOurs { path: String, key: String },
    #[error("{path}: `{key}` is set by config.yaml; change it with `terrarium-set` and remove it from this file")]
    OwnedByConfig { path: String, key: String },
    #[error("{path}: `{key}` is a one-time secret and is never read from a file; remove it")]
    Secret { path: String, key: String },
}

/// Variables only the one-time secrets feed may carry.
const SECRET_VARIABLES: &[&str] = &["terrarium_root_password"];

/// The overrides in `path`, checked against the variables config.yaml sets
/// (`contract`); an absent file means none.
pub fn load(path: &Path, contract: &Map<String, Value>) -> Result<Map<String, Value>, OverridesError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Map::new()),
        Err(source) => return Err(OverridesError::Read { path: path.display().to_string(), source }),
    };
    parse(&text, &path.display().to_string(), contract)
}

/// The pure half of [`load`].
pub fn parse(text: &str, origin: &str, contract: &Map<String, Value>) -> Result<Map<String, Value>, OverridesError> {
    // An empty or comment-only file overrides nothing.
    if text.lines().all(|line| line.trim().is_empty() || line.trim_start().starts_with('#')) {
        return Ok(Map::new());
    }
    let values: BTreeMap<String, Value> = terrarium_common::yaml::from_str(text, origin)?;
    let path = || origin.to_string();
    for key in values.keys() {
        if SECRET_VARIABLES.contains(&key.as_str()) {
            return Err(OverridesError::Secret { path: path(), key: key.clone() });
        }
        if contract.contains_key(key) {
            return Err(OverridesError::OwnedByConfig { path: path(), key: key.clone() });
        }
        if !key.starts_with("terrarium_") {
            return Err(OverridesError::NotOurs { path: path(), key: key.clone() });
        }
    }
    Ok(values.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn contract() -> Map<String, Value> {
        json!({"terrarium_domain": "example.com", "terrarium_pool_name": "terrarium"})
            .as_object()
            .cloned()
            .unwrap_or_default()
    }

    #[test]
    fn role_defaults_are_passed_through() {
        let text = "terrarium_traefik_url: file:///srv/mirror/traefik.tar.gz\n\
                    terrarium_traefik_checksum: sha256:00ff\n";
        let got = parse(text, "overrides.yml", &contract()).unwrap();
        assert_eq!(got["terrarium_traefik_url"], "file:///srv/mirror/traefik.tar.gz");
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn an_empty_or_commented_file_overrides_nothing() {
        assert!(parse("", "o.yml", &contract()).unwrap().is_empty());
        assert!(parse("# nothing yet\n\n", "o.yml", &contract()).unwrap().is_empty());
    }

    #[test]
    fn a_config_variable_is_refused_with_the_way_out() {
        let err = parse("terrarium_domain: other.example\n", "o.yml", &contract()).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("`terrarium_domain` is set by config.yaml"), "{text}");
        assert!(text.contains("terrarium-set"), "{text}");
    }

    #[test]
    fn foreign_and_secret_variables_are_refused() {
        let err = parse("ansible_become: false\n", "o.yml", &contract()).unwrap_err();
        assert!(matches!(err, OverridesError::NotOurs { ref key, .. } if key == "ansible_become"), "{err}");
        let err = parse("terrarium_root_password: hunter2\n", "o.yml", &contract()).unwrap_err();
        assert!(matches!(err, OverridesError::Secret { .. }), "{err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn a_list_instead_of_a_mapping_names_the_file() {
        let err = parse("- terrarium_traefik_url\n", "/etc/terrarium/ansible-overrides.yml", &contract()).unwrap_err();
        assert!(err.to_string().contains("/etc/terrarium/ansible-overrides.yml"), "{err}");
    }

    #[test]
    fn a_missing_file_overrides_nothing() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(&dir.path().join("absent.yml"), &contract()).unwrap().is_empty());
    }
}
