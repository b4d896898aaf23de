//! Migration of older config schema versions to the current one.
//!
//! Version 1 was the flat `key: value` layout of the first installer (no
//! `schema_version` key, or `schema_version: 1`). It is rewritten into the nested
//! version 2 model in memory; the file on disk is rewritten only when a tool saves.

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::{ConfigError, SCHEMA_VERSION};
use crate::yaml;

/// Return text in the current schema; untouched (so errors keep their line numbers)
/// when it already is.
pub(super) fn to_current<'a>(text: &'a str, origin: &str) -> Result<Cow<'a, str>, ConfigError> {
    // Syntax errors are reported by the typed parse with their location.
    let document = match yaml::from_str::<Value>(text, origin) {
        Ok(Value::Object(document)) => document,
        // serde reads a struct from a list by position, so the typed parse would report
        // `[0]: expected u32` (a key and a type the operator never wrote).
        Ok(Value::Array(_)) => {
            return Err(ConfigError::invalid(
                "(the whole file)",
                "is a list",
                format!(
                    "it must be a mapping of settings (`schema_version: {SCHEMA_VERSION}`, `domains:`, ...); restore it from a copy, or run `terrarium-install` to write it"
                ),
            ));
        }
        _ => return Ok(Cow::Borrowed(text)),
    };
    let version = match document.get("schema_version") {
        None => 1,
        Some(value) => value.as_u64().ok_or_else(|| {
            ConfigError::invalid(
                "schema_version",
                "is not a whole number",
                format!("set `schema_version: {SCHEMA_VERSION}`"),
            )
        })?,
    };
    match version {
        v if v == u64::from(SCHEMA_VERSION) => Ok(Cow::Borrowed(text)),
        1 => {
            let migrated = from_v1(document)?;
            Ok(Cow::Owned(yaml::to_string(&migrated)?))
        }
        v if v > u64::from(SCHEMA_VERSION) => Err(ConfigError::invalid(
            "schema_version",
            format!("{v} was written by a newer Terrarium (this one reads up to {SCHEMA_VERSION})"),
            "upgrade the terrarium packages",
        )),
        v => Err(ConfigError::invalid(
            "schema_version",
            format!("{v} is not a known version"),
            format!("set `schema_version: {SCHEMA_VERSION}`"),
        )),
    }
}

/// Where each flat version 1 key lives in version 2.
const V1_KEYS: &[(&str, &str, &str)] = &[
    ("domain", "domains", "root"),
    ("manage_domain", "domains", "manage"),
    ("proxy_domain", "domains", "proxy"),
    ("lxd_domain", "domains", "lxd"),
    ("auth_domain", "domains", "auth"),
    ("contact_email", "emails", "contact"),
    ("acme_email", "emails", "acme"),
    ("zitadel_admin_email", "emails", "zitadel_admin"),
    ("idp_mode", "identity", "mode"),
    ("oidc_issuer", "identity", "issuer"),
    ("oidc_client_id", "identity", "client_id"),
    ("oidc_client_secret_file", "identity", "client_secret_file"),
    ("admin_group", "identity", "admin_group"),
    ("storage_mode", "storage", "mode"),
    ("storage_source", "storage", "source"),
    ("storage_size", "storage", "size"),
    ("pool_name", "storage", "pool"),
    ("s3_enabled", "s3", "enabled"),
    ("s3_endpoint", "s3", "endpoint"),
    ("s3_bucket", "s3", "bucket"),
    ("s3_region", "s3", "region"),
    ("s3_prefix", "s3", "prefix"),
    ("s3_access_key", "s3", "access_key"),
    ("s3_secret_key_file", "s3", "secret_key_file"),
    ("syncoid_enabled", "syncoid", "enabled"),
    ("syncoid_target", "syncoid", "target"),
    ("syncoid_target_dataset", "syncoid", "target_dataset"),
    ("syncoid_ssh_key_file", "syncoid", "ssh_key_file"),
];

fn from_v1(document: Map<String, Value>) -> Result<Value, ConfigError> {
    let mut sections: Map<String, Value> = Map::new();
    for (key, value) in document {
        if key == "schema_version" {
            continue;
        }
        let Some((_, section, field)) = V1_KEYS.iter().find(|(old, _, _)| *old == key) else {
            return Err(ConfigError::invalid(
                &key,
                "is not a key of config schema version 1",
                "remove it, or write the file in the current layout",
            ));
        };
        let entry = sections.entry(section.to_string()).or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(fields) = entry {
            fields.insert(field.to_string(), value);
        }
    }
    // Version 1 had one e-mail for everything.
    if let Some(Value::Object(emails)) = sections.get_mut("emails")
        && !emails.contains_key("contact")
        && let Some(acme) = emails.get("acme").cloned()
    {
        emails.insert("contact".into(), acme);
    }
    sections.insert("schema_version".into(), Value::from(SCHEMA_VERSION));
    Ok(Value::Object(sections))
}
