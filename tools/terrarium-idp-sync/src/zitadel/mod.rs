//! Local mode: reconcile Terrarium's objects in the self-hosted ZITADEL.
//!
//! Read, compare with [`desired`], write only the difference, in dependency order:
//! organisation → project → admin role → OIDC apps (and their client id/secret files)
//! → the bootstrap admin's grant → the `groups` Action → the Complement Token flow.
//! A second run against an unchanged ZITADEL only reads.
//!
//! ## Why an Actions (v1) script and not its successor
//!
//! ZITADEL's successor to Actions v1 is Actions v2: "targets" (HTTP endpoints) plus
//! "executions" that call them, e.g. on `preaccesstoken`/`preuserinfo` functions.
//! The claim logic then lives in a web service that Terrarium would have to run,
//! secure and keep reachable from ZITADEL. The v1 script runs inside ZITADEL, is a
//! dozen lines, and is still supported by ZITADEL v2 and v3, so Terrarium uses it.
//! Flows are per organisation and the script only emits roles of this project granted
//! by this organisation (see [`desired::action_script`]), so nothing leaks across
//! organisations in either direction.

pub mod api;
pub mod desired;

use serde_json::{Value, json};
use terrarium_common::Paths;
use terrarium_common::secret::Secret;

use crate::plan::{Change, Report, System};
use crate::secrets;
use api::{Client, ZitadelError, field, results};
use desired::AppSpec;

/// What local-mode reconciliation needs from the config.
#[derive(Debug, Clone)]
pub struct Settings {
    pub manage_domain: String,
    pub lxd_domain: String,
    pub admin_group: String,
    /// `emails.zitadel_admin`: the bootstrap admin who gets the admin role.
    pub admin_email: Option<String>,
    /// `https://<host>/oauth2/callback` of each `@auth` host (from proxy sync's report).
    pub route_callbacks: Vec<String>,
    pub dry_run: bool,
}

/// What later steps (LXD) need from this one.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// The LXD application's client id; `None` in a dry run that would create it.
    pub lxd_client_id: Option<String>,
    /// The bootstrap admin was named but not found in ZITADEL.
    pub admin_missing: bool,
}

/// Errors of the whole step: ZITADEL calls and secret files.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Zitadel(#[from] ZitadelError),
    #[error(transparent)]
    Secret(#[from] secrets::StoreError),
}

/// Reconcile ZITADEL; changes (made, or planned in a dry run) go into `report`.
pub fn reconcile(
    client: &mut Client,
    paths: &Paths,
    settings: &Settings,
    report: &mut Report,
) -> Result<Outcome, SyncError> {
    let org = client.get("/orgs/me")?;
    let org_id = org.get("org").map(|o| field(o, "id", "/orgs/me org")).transpose()?.ok_or_else(|| {
        ZitadelError::BadResponse { method: "GET".into(), path: "/orgs/me".into(), reason: "no `org`".into() }
    })?;
    client.set_org(&org_id);

    let project_id = ensure_project(client, settings, report)?;
    ensure_role(client, project_id.as_deref(), settings, report)?;
    let specs = desired::apps(&settings.manage_domain, &settings.lxd_domain, &settings.route_callbacks);
    let mut outcome = Outcome::default();
    let existing_apps = match &project_id {
        Some(id) => results(&client.post(&format!("/projects/{id}/apps/_search"), &json!({}))?),
        None => Vec::new(),
    };
    for spec in &specs {
        let client_id =
            ensure_app(client, paths, project_id.as_deref(), spec, &existing_apps, settings.dry_run, report)?;
        if spec.secret_file.is_none() {
            outcome.lxd_client_id = client_id;
        }
    }
    outcome.admin_missing = !ensure_admin_grant(client, project_id.as_deref(), settings, report)?;
    let action_id = ensure_action(client, project_id.as_deref(), &org_id, settings.dry_run, report)?;
    ensure_triggers(client, action_id.as_deref(), settings.dry_run, report)?;
    Ok(outcome)
}

fn ensure_project(client: &Client, settings: &Settings, report: &mut Report) -> Result<Option<String>, ZitadelError> {
    let query =
        json!({"queries": [{"nameQuery": {"name": desired::PROJECT_NAME, "method": "TEXT_QUERY_METHOD_EQUALS"}}]});
    let found = results(&client.post("/projects/_search", &query)?)
        .into_iter()
        .find(|p| p.get("name").and_then(|n| n.as_str()) == Some(desired::PROJECT_NAME));
    match found {
        Some(project) => {
            let id = field(&project, "id", "/projects/_search result")?;
            let drift = desired::project_drift(&project);
            if !drift.is_empty() {
                report.record(
                    Change::new(System::Zitadel, "update", "project", desired::PROJECT_NAME).detail(drift.join(", ")),
                );
                if !settings.dry_run {
                    client.put(&format!("/projects/{id}"), &desired::project_update(&project))?;
                }
            }
            Ok(Some(id))
        }
        None => {
            report.record(Change::new(System::Zitadel, "create", "project", desired::PROJECT_NAME));
            if settings.dry_run {
                return Ok(None);
            }
            let mut body = desired::project_settings();
            body["name"] = json!(desired::PROJECT_NAME);
            let created = client.post("/projects", &body)?;
            Ok(Some(field(&created, "id", "POST /projects")?))
        }
    }
}

fn ensure_role(
    client: &Client,
    project_id: Option<&str>,
    settings: &Settings,
    report: &mut Report,
) -> Result<(), ZitadelError> {
    let key = settings.admin_group.as_str();
    let existing = match project_id {
        Some(id) => results(&client.post(&format!("/projects/{id}/roles/_search"), &json!({}))?)
            .into_iter()
            .find(|r| r.get("key").and_then(|k| k.as_str()) == Some(key)),
        None => None,
    };
    let body = json!({"displayName": desired::ROLE_DISPLAY_NAME, "group": desired::ROLE_GROUP});
    match (existing, project_id) {
        (Some(role), Some(id)) => {
            if role.get("displayName") != Some(&body["displayName"]) || role.get("group") != Some(&body["group"]) {
                report.record(Change::new(System::Zitadel, "update", "role", key).detail("displayName, group"));
                if !settings.dry_run {
                    client.put(&format!("/projects/{id}/roles/{key}"), &body)?;
                }
            }
        }
        (_, project_id) => {
            report.record(Change::new(System::Zitadel, "create", "role", key));
            if let (Some(id), false) = (project_id, settings.dry_run) {
                let mut create = body;
                create["roleKey"] = json!(key);
                client.post(&format!("/projects/{id}/roles"), &create)?;
            }
        }
    }
    Ok(())
}

/// Returns the client id (when known).
fn ensure_app(
    client: &Client,
    paths: &Paths,
    project_id: Option<&str>,
    spec: &AppSpec,
    existing: &[Value],
    dry_run: bool,
    report: &mut Report,
) -> Result<Option<String>, SyncError> {
    let found = existing.iter().find(|a| a.get("name").and_then(|n| n.as_str()) == Some(spec.name));
    let Some(app) = found else {
        let uris = match spec.redirect_uris.is_empty() {
            // The route-auth client before any @auth route: proxy sync lists the callbacks.
            true => "no redirect URI yet".to_string(),
            false => spec.redirect_uris.join(" "),
        };
        report.record(Change::new(System::Zitadel, "create", "app", spec.name).detail(uris));
        let (Some(project_id), false) = (project_id, dry_run) else {
            report.record(Change::new(System::Secrets, "write", "secret", spec.id_file));
            if let Some(secret_file) = spec.secret_file {
                report.record(Change::new(System::Secrets, "write", "secret", secret_file));
            }
            return Ok(None);
        };
        let created = client.post(&format!("/projects/{project_id}/apps/oidc"), &desired::app_create(spec))?;
        let client_id = field(&created, "clientId", "POST /apps/oidc")?;
        secrets::store(paths, spec.id_file, &Secret::new(client_id.clone()), dry_run, report)?;
        if let Some(secret_file) = spec.secret_file {
            let secret = field(&created, "clientSecret", "POST /apps/oidc")?;
            secrets::store(paths, secret_file, &Secret::new(secret), dry_run, report)?;
        }
        return Ok(Some(client_id));
    };
    let app_id = field(app, "id", "apps/_search result")?;
    let config = app.get("oidcConfig").cloned().unwrap_or(Value::Null);
    let project_id = project_id.unwrap_or_default();
    let drift = desired::oidc_drift(&config, spec);
    if !drift.is_empty() {
        report.record(Change::new(System::Zitadel, "update", "app", spec.name).detail(drift.join(", ")));
        if !dry_run {
            client.put(&format!("/projects/{project_id}/apps/{app_id}/oidc_config"), &desired::oidc_config(spec))?;
        }
    }
    let client_id = field(&config, "clientId", "apps/_search oidcConfig")?;
    secrets::store(paths, spec.id_file, &Secret::new(client_id.clone()), dry_run, report)?;
    if let Some(secret_file) = spec.secret_file {
        // ZITADEL shows a client secret only once; if our copy is gone, the only way
        // back is a new one (the old one stops working).
        if !secrets::usable_after_fixing_mode(paths, secret_file, dry_run, report)? {
            report.record(
                Change::new(System::Zitadel, "regenerate", "client-secret", spec.name)
                    .detail(format!("{secret_file} is missing")),
            );
            if !dry_run {
                let answer = client.post(
                    &format!("/projects/{project_id}/apps/{app_id}/oidc_config/_generate_client_secret"),
                    &json!({}),
                )?;
                let secret = field(&answer, "clientSecret", "_generate_client_secret")?;
                secrets::store(paths, secret_file, &Secret::new(secret), dry_run, report)?;
            } else {
                report.record(Change::new(System::Secrets, "write", "secret", secret_file));
            }
        }
    }
    Ok(Some(client_id))
}

/// Returns false when the bootstrap admin was named but does not exist.
fn ensure_admin_grant(
    client: &Client,
    project_id: Option<&str>,
    settings: &Settings,
    report: &mut Report,
) -> Result<bool, ZitadelError> {
    let role = settings.admin_group.as_str();
    let Some(email) = &settings.admin_email else {
        report.note(format!("emails.zitadel_admin is not set: no user was granted `{role}`; grant it in the ZITADEL console to the people who manage this host"));
        return Ok(true);
    };
    let query =
        json!({"queries": [{"emailQuery": {"emailAddress": email, "method": "TEXT_QUERY_METHOD_EQUALS_IGNORE_CASE"}}]});
    let user = results(&client.post("/users/_search", &query)?).into_iter().next();
    let Some(user) = user else {
        report.note(format!("the bootstrap admin {email} (emails.zitadel_admin) is not a ZITADEL user: create the user, then run terrarium-idp-sync again to grant `{role}`"));
        return Ok(false);
    };
    let user_id = field(&user, "id", "/users/_search result")?;
    let grant = match project_id {
        Some(project_id) => {
            let query = json!({"queries": [{"projectIdQuery": {"projectId": project_id}}, {"userIdQuery": {"userId": user_id}}]});
            results(&client.post("/users/grants/_search", &query)?)
                .into_iter()
                .find(|g| g.get("projectId").and_then(|p| p.as_str()) == Some(project_id))
        }
        None => None,
    };
    match grant {
        Some(grant) => {
            let mut roles: Vec<String> = grant
                .get("roleKeys")
                .and_then(|r| r.as_array())
                .into_iter()
                .flatten()
                .filter_map(|r| r.as_str().map(str::to_string))
                .collect();
            if !roles.iter().any(|r| r == role) {
                report.record(
                    Change::new(System::Zitadel, "update", "user-grant", email.as_str())
                        .detail(format!("add role {role}")),
                );
                if !settings.dry_run {
                    let grant_id = field(&grant, "id", "/users/grants/_search result")?;
                    roles.push(role.to_string());
                    client.put(&format!("/users/{user_id}/grants/{grant_id}"), &json!({"roleKeys": roles}))?;
                }
            }
        }
        None => {
            report.record(
                Change::new(System::Zitadel, "create", "user-grant", email.as_str()).detail(format!("role {role}")),
            );
            if let (Some(project_id), false) = (project_id, settings.dry_run) {
                client
                    .post(&format!("/users/{user_id}/grants"), &json!({"projectId": project_id, "roleKeys": [role]}))?;
            }
        }
    }
    Ok(true)
}

/// Returns the Action's id (when it exists or was created).
fn ensure_action(
    client: &Client,
    project_id: Option<&str>,
    org_id: &str,
    dry_run: bool,
    report: &mut Report,
) -> Result<Option<String>, ZitadelError> {
    let query =
        json!({"queries": [{"actionNameQuery": {"name": desired::ACTION_NAME, "method": "TEXT_QUERY_METHOD_EQUALS"}}]});
    let found = results(&client.post("/actions/_search", &query)?)
        .into_iter()
        .find(|a| a.get("name").and_then(|n| n.as_str()) == Some(desired::ACTION_NAME));
    // In a dry run before the project exists, the script's project id is not known yet.
    let project_id = project_id.unwrap_or("<new project id>");
    match found {
        Some(action) => {
            let id = field(&action, "id", "/actions/_search result")?;
            let drift = desired::action_drift(&action, project_id, org_id);
            if !drift.is_empty() {
                report.record(
                    Change::new(System::Zitadel, "update", "action", desired::ACTION_NAME).detail(drift.join(", ")),
                );
                if !dry_run {
                    client.put(&format!("/actions/{id}"), &desired::action_body(project_id, org_id))?;
                }
            }
            Ok(Some(id))
        }
        None => {
            report.record(Change::new(System::Zitadel, "create", "action", desired::ACTION_NAME));
            if dry_run {
                return Ok(None);
            }
            let created = client.post("/actions", &desired::action_body(project_id, org_id))?;
            Ok(Some(field(&created, "id", "POST /actions")?))
        }
    }
}

fn ensure_triggers(
    client: &Client,
    action_id: Option<&str>,
    dry_run: bool,
    report: &mut Report,
) -> Result<(), ZitadelError> {
    // An organisation that never had a flow may answer 404: that is an empty flow.
    let flow = match client.get(&format!("/flows/{}", desired::FLOW_COMPLEMENT_TOKEN)) {
        Err(ZitadelError::Api { status: 404, .. }) => Value::Null,
        other => other?,
    };
    for trigger in desired::TRIGGERS {
        let mut ids = desired::trigger_action_ids(&flow, trigger);
        if action_id.is_some_and(|id| ids.iter().any(|have| have == id)) {
            continue;
        }
        let name = if trigger == desired::TRIGGER_PRE_USERINFO {
            "complement-token/pre-userinfo"
        } else {
            "complement-token/pre-access-token"
        };
        report.record(
            Change::new(System::Zitadel, "update", "trigger", name).detail(format!("add {}", desired::ACTION_NAME)),
        );
        if let (Some(id), false) = (action_id, dry_run) {
            // SetTriggerActions replaces the list: keep the actions someone else set.
            ids.push(id.to_string());
            client.post(
                &format!("/flows/{}/trigger/{trigger}", desired::FLOW_COMPLEMENT_TOKEN),
                &json!({"actionIds": ids}),
            )?;
        }
    }
    Ok(())
}
