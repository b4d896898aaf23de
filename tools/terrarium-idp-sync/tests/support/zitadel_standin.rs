//! A CONTRACT STAND-IN for ZITADEL's Management API v1, not ZITADEL.
//!
//! ZITADEL cannot run on the test machine, so this small HTTP server on 127.0.0.1
//! answers the endpoints `terrarium-idp-sync` uses, with the paths, request bodies and
//! answer shapes of ZITADEL's published API reference (zitadel.com/docs, "Management
//! API v1"). It also copies two behaviours of the real server that a client must
//! cope with:
//!
//! - answers leave out fields at their proto3 default (false, empty lists);
//! - an update that changes nothing is refused with `400 "No changes"`, and creating
//!   an object that exists with `409`, so a client that writes blindly fails here.
//!
//! Every request must carry `Authorization: Bearer <token>` (else `401`), and every
//! call is recorded so tests can assert exactly what a run did.

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use serde_json::{Value, json};

/// How the stand-in treats a valid token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The service user is ORG_OWNER: everything is allowed.
    Owner,
    /// The service user may read but not write (`403 PermissionDenied`).
    ReadOnly,
}

/// One recorded call.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub method: String,
    /// Path without the `/management/v1` prefix.
    pub path: String,
    pub org_header: Option<String>,
    pub body: Value,
}

impl Call {
    pub fn is_write(&self) -> bool {
        self.method != "GET" && !self.path.ends_with("/_search")
    }
    pub fn line(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

#[derive(Debug, Default)]
pub struct World {
    pub org_id: String,
    pub access: Option<Access>,
    next_id: u64,
    pub projects: Vec<Value>,
    /// (project id, role)
    pub roles: Vec<(String, Value)>,
    /// (project id, app with `oidcConfig`), and the app's secret.
    pub apps: Vec<(String, Value, Option<String>)>,
    pub users: Vec<Value>,
    pub grants: Vec<Value>,
    pub actions: Vec<Value>,
    /// trigger type id -> action ids (flow 2, Complement Token)
    pub triggers: BTreeMap<String, Vec<String>>,
}

impl World {
    fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}{}", self.next_id)
    }

    /// An app by name, mutable, for drifting it in tests.
    pub fn app_mut(&mut self, name: &str) -> &mut Value {
        &mut self.apps.iter_mut().find(|(_, app, _)| app["name"] == name).expect("app exists").1
    }
    pub fn app(&self, name: &str) -> &Value {
        &self.apps.iter().find(|(_, app, _)| app["name"] == name).expect("app exists").1
    }
    pub fn app_secret(&self, name: &str) -> Option<String> {
        self.apps.iter().find(|(_, app, _)| app["name"] == name).and_then(|(_, _, s)| s.clone())
    }
}

pub struct ZitadelStandIn {
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
    port: u16,
    pub world: Arc<Mutex<World>>,
    calls: Arc<Mutex<Vec<Call>>>,
}

impl ZitadelStandIn {
    /// Start with one organisation and the users given by email.
    pub fn start(token: &str, users: &[&str]) -> Self {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind the ZITADEL stand-in"));
        let port = server.server_addr().to_ip().expect("ip").port();
        let mut world = World { org_id: "org-100".into(), access: Some(Access::Owner), ..World::default() };
        for email in users {
            let id = world.id("user-");
            world.users.push(json!({"id": id, "userName": email, "state": "USER_STATE_ACTIVE", "human": {"email": {"email": email, "isEmailVerified": true}}}));
        }
        let world = Arc::new(Mutex::new(world));
        let calls = Arc::new(Mutex::new(Vec::new()));
        let (serving, w, c, expected) =
            (Arc::clone(&server), Arc::clone(&world), Arc::clone(&calls), format!("Bearer {token}"));
        let thread = std::thread::spawn(move || {
            for request in serving.incoming_requests() {
                answer(request, &w, &c, &expected);
            }
        });
        Self { server, thread: Some(thread), port, world, calls }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
    pub fn clear_calls(&self) {
        self.calls.lock().unwrap().clear();
    }
    /// `METHOD path` of every write (not GET, not `_search`).
    pub fn writes(&self) -> Vec<String> {
        self.calls().iter().filter(|c| c.is_write()).map(Call::line).collect()
    }
    pub fn set_access(&self, access: Access) {
        self.world.lock().unwrap().access = Some(access);
    }
}

impl Drop for ZitadelStandIn {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

type Answer = (u16, Value);

fn error(status: u16, code: u32, message: &str) -> Answer {
    (status, json!({"code": code, "message": message, "details": []}))
}

fn answer(mut request: tiny_http::Request, world: &Mutex<World>, calls: &Mutex<Vec<Call>>, expected_auth: &str) {
    let header = |name: &'static str| {
        request.headers().iter().find(|h| h.field.equiv(name)).map(|h| h.value.as_str().to_string())
    };
    let authorization = header("Authorization");
    let org_header = header("x-zitadel-orgid");
    let method = request.method().as_str().to_string();
    let full = request.url().to_string();
    let mut text = String::new();
    let _ = std::io::Read::read_to_string(request.as_reader(), &mut text);
    let body: Value =
        if text.trim().is_empty() { json!({}) } else { serde_json::from_str(&text).unwrap_or(Value::Null) };
    let path = full.strip_prefix("/management/v1").unwrap_or(&full).to_string();
    calls.lock().unwrap().push(Call {
        method: method.clone(),
        path: path.clone(),
        org_header: org_header.clone(),
        body: body.clone(),
    });

    let (status, json) = if authorization.as_deref() != Some(expected_auth) {
        error(401, 16, "Errors.Token.Invalid (AUTH-7fs1e)")
    } else if !full.starts_with("/management/v1/") {
        error(404, 5, "Not Found")
    } else {
        let mut world = world.lock().unwrap();
        let is_write = method != "GET" && !path.ends_with("/_search");
        if is_write && world.access == Some(Access::ReadOnly) {
            error(403, 7, "No matching permissions found (AUTH-5mWD2)")
        } else if path != "/orgs/me" && org_header.as_deref().is_some_and(|o| o != world.org_id) {
            error(404, 5, "Errors.Org.NotFound")
        } else {
            route(&mut world, &method, &path, &body)
        }
    };
    let response = tiny_http::Response::from_string(json.to_string())
        .with_status_code(status)
        .with_header(tiny_http::Header::from_bytes(&b"Content-Type"[..], &b"application/json"[..]).expect("header"));
    let _ = request.respond(response);
}

fn segments(path: &str) -> Vec<&str> {
    path.trim_matches('/').split('/').collect()
}

fn text_query<'a>(body: &'a Value, query: &str, field: &str) -> Option<&'a str> {
    body.get("queries")?.as_array()?.iter().find_map(|q| q.get(query)?.get(field)?.as_str())
}

fn list(items: Vec<Value>) -> Answer {
    // proto3 JSON: an empty repeated field is left out.
    if items.is_empty() {
        (200, json!({"details": {"totalResult": "0"}}))
    } else {
        (200, json!({"details": {"totalResult": items.len().to_string()}, "result": items}))
    }
}

/// Drop fields at their proto3 default, as ZITADEL's JSON does.
fn strip_defaults(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !matches!(v, Value::Bool(false)) && !matches!(v, Value::Array(a) if a.is_empty()))
                .map(|(k, v)| (k.clone(), strip_defaults(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn details() -> Value {
    json!({"details": {"sequence": "1", "resourceOwner": "org-100"}})
}

fn route(world: &mut World, method: &str, path: &str, body: &Value) -> Answer {
    let s = segments(path);
    match (method, s.as_slice()) {
        ("GET", ["orgs", "me"]) => {
            (200, json!({"org": {"id": world.org_id, "name": "Terrarium", "state": "ORG_STATE_ACTIVE"}}))
        }

        ("POST", ["projects", "_search"]) => {
            let name = text_query(body, "nameQuery", "name");
            list(world.projects.iter().filter(|p| name.is_none_or(|n| p["name"] == n)).map(strip_defaults).collect())
        }
        ("POST", ["projects"]) => {
            let Some(name) = body["name"].as_str() else {
                return error(400, 3, "invalid AddProjectRequest.Name");
            };
            if world.projects.iter().any(|p| p["name"] == name) {
                return error(409, 6, "Errors.Project.AlreadyExists");
            }
            let id = world.id("project-");
            let mut project = json!({"id": id, "name": name, "state": "PROJECT_STATE_ACTIVE"});
            for key in ["projectRoleAssertion", "projectRoleCheck", "hasProjectCheck"] {
                project[key] = json!(body[key].as_bool().unwrap_or(false));
            }
            world.projects.push(project);
            (200, json!({"id": id, "details": details()["details"]}))
        }
        ("PUT", ["projects", id]) => {
            let Some(project) = world.projects.iter_mut().find(|p| p["id"] == *id) else {
                return error(404, 5, "Errors.Project.NotFound");
            };
            let mut updated = project.clone();
            for key in ["name", "projectRoleAssertion", "projectRoleCheck", "hasProjectCheck"] {
                updated[key] =
                    if key == "name" { body[key].clone() } else { json!(body[key].as_bool().unwrap_or(false)) };
            }
            if &updated == project {
                return error(400, 9, "No changes (COMMAND-1m88i)");
            }
            *project = updated;
            (200, details())
        }

        ("POST", ["projects", pid, "roles", "_search"]) => {
            list(world.roles.iter().filter(|(p, _)| p == pid).map(|(_, r)| r.clone()).collect())
        }
        ("POST", ["projects", pid, "roles"]) => {
            let Some(key) = body["roleKey"].as_str() else {
                return error(400, 3, "invalid AddProjectRoleRequest.RoleKey");
            };
            if world.roles.iter().any(|(p, r)| p == pid && r["key"] == key) {
                return error(409, 6, "Errors.Project.Role.AlreadyExists");
            }
            world.roles.push((
                pid.to_string(),
                json!({"key": key, "displayName": body["displayName"], "group": body["group"]}),
            ));
            (200, details())
        }
        ("PUT", ["projects", pid, "roles", key]) => {
            let Some((_, role)) = world.roles.iter_mut().find(|(p, r)| p == pid && r["key"] == *key) else {
                return error(404, 5, "Errors.Project.Role.NotFound");
            };
            let updated = json!({"key": key, "displayName": body["displayName"], "group": body["group"]});
            if &updated == role {
                return error(400, 9, "No changes");
            }
            *role = updated;
            (200, details())
        }

        ("POST", ["projects", pid, "apps", "_search"]) => {
            list(world.apps.iter().filter(|(p, _, _)| p == pid).map(|(_, a, _)| strip_defaults(a)).collect())
        }
        ("POST", ["projects", pid, "apps", "oidc"]) => {
            let Some(name) = body["name"].as_str() else {
                return error(400, 3, "invalid AddOIDCAppRequest.Name");
            };
            if world.apps.iter().any(|(p, a, _)| p == pid && a["name"] == name) {
                return error(409, 6, "Errors.Project.App.AlreadyExists");
            }
            let app_id = world.id("app-");
            let client_id = format!("{app_id}@terrarium");
            let mut config = body.clone();
            let object = config.as_object_mut().expect("object body");
            object.remove("name");
            object.remove("version");
            object.insert("clientId".into(), json!(client_id));
            object.insert("version".into(), json!("OIDC_VERSION_1_0"));
            let secret =
                (body["authMethodType"] != "OIDC_AUTH_METHOD_TYPE_NONE").then(|| format!("secret-of-{app_id}-1"));
            world.apps.push((
                pid.to_string(),
                json!({"id": app_id, "name": name, "state": "APP_STATE_ACTIVE", "oidcConfig": config}),
                secret.clone(),
            ));
            let mut answer = json!({"appId": app_id, "clientId": client_id, "noneCompliant": false});
            if let Some(secret) = secret {
                answer["clientSecret"] = json!(secret);
            }
            (200, answer)
        }
        ("PUT", ["projects", pid, "apps", app_id, "oidc_config"]) => {
            let Some((_, app, _)) = world.apps.iter_mut().find(|(p, a, _)| p == pid && a["id"] == *app_id) else {
                return error(404, 5, "Errors.Project.App.NotFound");
            };
            let mut config = body.clone();
            for keep in ["clientId", "version"] {
                config[keep] = app["oidcConfig"][keep].clone();
            }
            if config == app["oidcConfig"] {
                return error(400, 9, "No changes (COMMAND-1m88i)");
            }
            app["oidcConfig"] = config;
            (200, details())
        }
        ("POST", ["projects", pid, "apps", app_id, "oidc_config", "_generate_client_secret"]) => {
            let Some((_, _, secret)) = world.apps.iter_mut().find(|(p, a, _)| p == pid && a["id"] == *app_id) else {
                return error(404, 5, "Errors.Project.App.NotFound");
            };
            let fresh = format!("secret-of-{app_id}-regenerated");
            *secret = Some(fresh.clone());
            (200, json!({"clientSecret": fresh, "details": details()["details"]}))
        }

        ("POST", ["users", "_search"]) => {
            let email = text_query(body, "emailQuery", "emailAddress").map(str::to_lowercase);
            list(
                world
                    .users
                    .iter()
                    .filter(|u| {
                        email.as_deref().is_none_or(|e| {
                            u["human"]["email"]["email"].as_str().map(str::to_lowercase).as_deref() == Some(e)
                        })
                    })
                    .cloned()
                    .collect(),
            )
        }
        ("POST", ["users", "grants", "_search"]) => {
            let project = text_query(body, "projectIdQuery", "projectId");
            let user = text_query(body, "userIdQuery", "userId");
            list(
                world
                    .grants
                    .iter()
                    .filter(|g| project.is_none_or(|p| g["projectId"] == p) && user.is_none_or(|u| g["userId"] == u))
                    .cloned()
                    .collect(),
            )
        }
        ("POST", ["users", uid, "grants"]) => {
            if !world.users.iter().any(|u| u["id"] == *uid) {
                return error(404, 5, "Errors.User.NotFound");
            }
            if world.grants.iter().any(|g| g["userId"] == *uid && g["projectId"] == body["projectId"]) {
                return error(409, 6, "Errors.UserGrant.AlreadyExists");
            }
            let id = world.id("grant-");
            world.grants.push(json!({"id": id, "userId": uid, "projectId": body["projectId"], "roleKeys": body["roleKeys"], "state": "USER_GRANT_STATE_ACTIVE"}));
            (200, json!({"userGrantId": id, "details": details()["details"]}))
        }
        ("PUT", ["users", uid, "grants", gid]) => {
            let Some(grant) = world.grants.iter_mut().find(|g| g["userId"] == *uid && g["id"] == *gid) else {
                return error(404, 5, "Errors.UserGrant.NotFound");
            };
            if grant["roleKeys"] == body["roleKeys"] {
                return error(400, 9, "No changes");
            }
            grant["roleKeys"] = body["roleKeys"].clone();
            (200, details())
        }

        ("POST", ["actions", "_search"]) => {
            let name = text_query(body, "actionNameQuery", "name");
            list(world.actions.iter().filter(|a| name.is_none_or(|n| a["name"] == n)).map(strip_defaults).collect())
        }
        ("POST", ["actions"]) => {
            let Some(name) = body["name"].as_str() else {
                return error(400, 3, "invalid CreateActionRequest.Name");
            };
            let id = world.id("action-");
            world.actions.push(json!({"id": id, "name": name, "script": body["script"], "timeout": body["timeout"], "allowedToFail": body["allowedToFail"].as_bool().unwrap_or(false), "state": "ACTION_STATE_ACTIVE"}));
            (200, json!({"id": id, "details": details()["details"]}))
        }
        ("PUT", ["actions", id]) => {
            let Some(action) = world.actions.iter_mut().find(|a| a["id"] == *id) else {
                return error(404, 5, "Errors.Action.NotFound");
            };
            let updated = json!({"id": id, "name": body["name"], "script": body["script"], "timeout": body["timeout"], "allowedToFail": body["allowedToFail"].as_bool().unwrap_or(false), "state": "ACTION_STATE_ACTIVE"});
            if &updated == action {
                return error(400, 9, "No changes");
            }
            *action = updated;
            (200, details())
        }

        ("GET", ["flows", "2"]) => {
            let trigger_actions: Vec<Value> = world
                .triggers
                .iter()
                .filter(|(_, ids)| !ids.is_empty())
                .map(|(trigger, ids)| {
                    let actions: Vec<Value> = ids.iter().map(|id| world.actions.iter().find(|a| a["id"] == *id).cloned().unwrap_or(json!({"id": id}))).collect();
                    json!({"triggerType": {"id": trigger, "name": {"key": format!("trigger.{trigger}")}}, "actions": actions})
                })
                .collect();
            (
                200,
                strip_defaults(
                    &json!({"flow": {"type": {"id": "2"}, "state": "FLOW_STATE_ACTIVE", "triggerActions": trigger_actions}}),
                ),
            )
        }
        ("POST", ["flows", "2", "trigger", trigger]) => {
            let ids: Vec<String> = body["actionIds"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|i| i.as_str().map(str::to_string))
                .collect();
            if ids.iter().any(|id| !world.actions.iter().any(|a| a["id"] == id.as_str())) {
                return error(404, 5, "Errors.Action.NotFound");
            }
            let current = world.triggers.entry(trigger.to_string()).or_default();
            if *current == ids {
                return error(400, 9, "No Changes (COMMAND-Nfh52)");
            }
            *current = ids;
            (200, details())
        }
        _ => error(404, 5, "Not Found"),
    }
}
