//! LXD: native OIDC login, and the IdP admin group mapped to `admin` on `server`.
//!
//! Everything goes through the `lxc` client (`lxc query`, `lxc config set`), so the
//! tool works with whichever LXD the host runs and needs no API credentials of its
//! own. What the server can do is read from `lxc query /1.0` (`api_extensions`):
//!
//! | extension | LXD | gives |
//! | --- | --- | --- |
//! | `oidc` | 5.14+ | `oidc.issuer`, `oidc.client.id`, `oidc.audience` |
//! | `oidc_groups_claim` | 5.19+ | `oidc.groups.claim` |
//! | `access_management` | 5.21+ | `/1.0/auth/groups`, `/1.0/auth/identity-provider-groups` |
//!
//! OIDC is only switched on when all three are there. Before `access_management`,
//! LXD gave *every* OIDC user full access (its own API docs say so), so enabling OIDC
//! on such a server would let in anyone the issuer accepts; Terrarium leaves OIDC off
//! and says why. Ubuntu 24.04's LXD snap (5.21) has all three; Debian's LXD 5.0 none.
//!
//! Order matters: the group and its mapping are created before OIDC is switched on,
//! so there is no moment where OIDC is on and the admin is locked out.

use serde::Serialize;
use serde_json::{Value, json};
use terrarium_common::process::{Cmd, ProcessError};

use crate::plan::{Change, Report, System};

pub const EXT_OIDC: &str = "oidc";
pub const EXT_GROUPS_CLAIM: &str = "oidc_groups_claim";
pub const EXT_ACCESS_MANAGEMENT: &str = "access_management";
/// The claim Terrarium's IdP setup emits (and external providers must emit).
pub const GROUPS_CLAIM: &str = "groups";

/// What the LXD step needs.
#[derive(Debug, Clone)]
pub struct LxdSettings {
    pub issuer: String,
    /// `None` in a dry run before ZITADEL has created the LXD client.
    pub client_id: Option<String>,
    pub admin_group: String,
    pub dry_run: bool,
}

/// What the LXD step found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LxdSummary {
    pub server_version: String,
    pub oidc: bool,
    pub oidc_groups_claim: bool,
    pub access_management: bool,
    /// Whether OIDC is (or, in a dry run, would be) configured.
    pub configured: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum LxdError {
    #[error(
        "LXD refused `{command}`: {stderr}; run terrarium-idp-sync as root (or a member of the lxd group) on the LXD host"
    )]
    Permission { command: String, stderr: String },
    #[error(transparent)]
    Lxc(#[from] ProcessError),
    #[error("`lxc query {path}` did not answer with the documented JSON ({reason})")]
    BadAnswer { path: String, reason: String },
}

/// Capabilities, from the `api_extensions` of `GET /1.0`.
pub fn summarize(server: &Value) -> LxdSummary {
    let extensions: Vec<&str> = server
        .get("api_extensions")
        .and_then(|e| e.as_array())
        .into_iter()
        .flatten()
        .filter_map(|e| e.as_str())
        .collect();
    let has = |name: &str| extensions.contains(&name);
    LxdSummary {
        server_version: server
            .pointer("/environment/server_version")
            .and_then(|v| v.as_str())
            .unwrap_or("unknown")
            .to_string(),
        oidc: has(EXT_OIDC),
        oidc_groups_claim: has(EXT_GROUPS_CLAIM),
        access_management: has(EXT_ACCESS_MANAGEMENT),
        configured: false,
    }
}

/// Why OIDC stays off on this server, or `None` when it can be configured.
pub fn missing_capability(summary: &LxdSummary) -> Option<String> {
    let version = &summary.server_version;
    if !summary.oidc {
        return Some(format!(
            "LXD {version} has no OIDC support (API extension `{EXT_OIDC}`, LXD 5.14+): LXD login stays TLS-client-certificate only; Ubuntu 24.04's LXD snap (5.21) has it"
        ));
    }
    if !summary.access_management || !summary.oidc_groups_claim {
        let lacking: Vec<&str> =
            [(EXT_GROUPS_CLAIM, summary.oidc_groups_claim), (EXT_ACCESS_MANAGEMENT, summary.access_management)]
                .into_iter()
                .filter(|(_, has)| !has)
                .map(|(n, _)| n)
                .collect();
        return Some(format!(
            "LXD {version} has OIDC but lacks {} (LXD 5.21+): without group mapping every user the issuer accepts would get full LXD access, so OIDC is left off; upgrade LXD to 5.21 or later",
            lacking.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(" and ")
        ));
    }
    None
}

/// The server config keys Terrarium wants.
pub fn desired_config(settings: &LxdSettings) -> Vec<(&'static str, String)> {
    let client_id = settings.client_id.clone().unwrap_or_else(|| "<client id of terrarium-lxd>".into());
    vec![
        ("oidc.issuer", settings.issuer.clone()),
        ("oidc.client.id", client_id.clone()),
        // ZITADEL (and most providers) put the client id into the access token's `aud`.
        ("oidc.audience", client_id),
        ("oidc.groups.claim", GROUPS_CLAIM.to_string()),
    ]
}

/// The permission that makes a group LXD admin.
pub fn admin_permission() -> Value {
    json!({"entity_type": "server", "url": "/1.0", "entitlement": "admin"})
}

/// Reconcile LXD; returns what the server can do and whether OIDC is configured.
pub fn reconcile(settings: &LxdSettings, report: &mut Report) -> Result<LxdSummary, LxdError> {
    let server = query("/1.0")?;
    let mut summary = summarize(&server);
    if let Some(why) = missing_capability(&summary) {
        report.note(why);
        return Ok(summary);
    }
    ensure_auth_group(settings, report)?;
    ensure_idp_group(settings, report)?;
    let config = server.get("config").cloned().unwrap_or(Value::Null);
    for (key, value) in desired_config(settings) {
        if config.get(key).and_then(|v| v.as_str()) == Some(value.as_str()) {
            continue;
        }
        report.record(Change::new(System::Lxd, "update", "config", key).detail(value.clone()));
        if !settings.dry_run {
            lxc(&["config", "set", key, &value])?;
        }
    }
    summary.configured = true;
    Ok(summary)
}

fn ensure_auth_group(settings: &LxdSettings, report: &mut Report) -> Result<(), LxdError> {
    let name = settings.admin_group.as_str();
    let groups = query("/1.0/auth/groups?recursion=1")?;
    let found = groups.as_array().into_iter().flatten().find(|g| g.get("name").and_then(|n| n.as_str()) == Some(name));
    let description = "Terrarium administrators (managed by terrarium-idp-sync)";
    match found {
        None => {
            report.record(Change::new(System::Lxd, "create", "auth-group", name).detail("admin on server"));
            if !settings.dry_run {
                let body = json!({"name": name, "description": description, "permissions": [admin_permission()]});
                lxc_send("POST", "/1.0/auth/groups", &body)?;
            }
        }
        Some(group) => {
            let permissions = group.get("permissions").and_then(|p| p.as_array()).cloned().unwrap_or_default();
            let has_admin = permissions.iter().any(|p| {
                p.get("entity_type") == Some(&json!("server")) && p.get("entitlement") == Some(&json!("admin"))
            });
            if !has_admin {
                report.record(Change::new(System::Lxd, "update", "auth-group", name).detail("add admin on server"));
                if !settings.dry_run {
                    let mut permissions = permissions;
                    permissions.push(admin_permission());
                    let description = group.get("description").cloned().unwrap_or_else(|| json!(description));
                    lxc_send(
                        "PUT",
                        &format!("/1.0/auth/groups/{name}"),
                        &json!({"description": description, "permissions": permissions}),
                    )?;
                }
            }
        }
    }
    Ok(())
}

fn ensure_idp_group(settings: &LxdSettings, report: &mut Report) -> Result<(), LxdError> {
    let name = settings.admin_group.as_str();
    let mappings = query("/1.0/auth/identity-provider-groups?recursion=1")?;
    let found =
        mappings.as_array().into_iter().flatten().find(|g| g.get("name").and_then(|n| n.as_str()) == Some(name));
    match found {
        None => {
            report.record(
                Change::new(System::Lxd, "create", "identity-provider-group", name)
                    .detail(format!("maps to auth group {name}")),
            );
            if !settings.dry_run {
                lxc_send("POST", "/1.0/auth/identity-provider-groups", &json!({"name": name, "groups": [name]}))?;
            }
        }
        Some(mapping) => {
            let mut groups: Vec<String> = mapping
                .get("groups")
                .and_then(|g| g.as_array())
                .into_iter()
                .flatten()
                .filter_map(|g| g.as_str().map(str::to_string))
                .collect();
            if !groups.iter().any(|g| g == name) {
                report.record(
                    Change::new(System::Lxd, "update", "identity-provider-group", name)
                        .detail(format!("add auth group {name}")),
                );
                if !settings.dry_run {
                    groups.push(name.to_string());
                    lxc_send("PUT", &format!("/1.0/auth/identity-provider-groups/{name}"), &json!({"groups": groups}))?;
                }
            }
        }
    }
    Ok(())
}

fn query(path: &str) -> Result<Value, LxdError> {
    let out = lxc(&["query", path])?;
    serde_json::from_str(&out).map_err(|err| LxdError::BadAnswer { path: path.to_string(), reason: err.to_string() })
}

fn lxc_send(method: &str, path: &str, body: &Value) -> Result<(), LxdError> {
    lxc(&["query", "-X", method, "--data", &body.to_string(), path]).map(|_| ())
}

fn lxc(args: &[&str]) -> Result<String, LxdError> {
    let cmd = Cmd::new("lxc")
        .args(args)
        .timeout(std::time::Duration::from_secs(60))
        .install_hint("(LXD's client, from the lxd snap or the lxd-client package)");
    cmd.run().map_err(|err| {
        let stderr = err.stderr().to_lowercase();
        if stderr.contains("forbidden") || stderr.contains("not authorized") || stderr.contains("permission denied") {
            LxdError::Permission { command: cmd.display(), stderr: err.stderr().trim().to_string() }
        } else {
            LxdError::Lxc(err)
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn server(extensions: &[&str]) -> Value {
        json!({"api_extensions": extensions, "environment": {"server_version": "5.x"}})
    }

    #[test]
    fn lxd_5_0_lacks_oidc_and_says_so() {
        let why = missing_capability(&summarize(&server(&["network", "storage"]))).unwrap();
        assert!(why.contains("`oidc`") && why.contains("5.14"), "{why}");
    }

    #[test]
    fn oidc_without_access_management_is_left_off() {
        let why = missing_capability(&summarize(&server(&["oidc"]))).unwrap();
        assert!(why.contains("`oidc_groups_claim` and `access_management`") && why.contains("left off"), "{why}");
    }

    #[test]
    fn a_5_21_server_can_be_configured() {
        assert_eq!(missing_capability(&summarize(&server(&["oidc", "oidc_groups_claim", "access_management"]))), None);
    }

    #[test]
    fn audience_is_the_client_id() {
        let settings = LxdSettings {
            issuer: "https://auth.example".into(),
            client_id: Some("123".into()),
            admin_group: "a".into(),
            dry_run: false,
        };
        let config = desired_config(&settings);
        assert_eq!(config[1], ("oidc.client.id", "123".to_string()));
        assert_eq!(config[2], ("oidc.audience", "123".to_string()));
        assert_eq!(config[3], ("oidc.groups.claim", "groups".to_string()));
    }
}
