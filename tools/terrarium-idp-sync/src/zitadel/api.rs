//! A small client for ZITADEL's Management API v1 (REST, JSON over HTTPS).
//!
//! Every request carries the service user's personal access token as a bearer token
//! and `x-zitadel-orgid`, so every object (project, apps, roles, grants, the Action
//! and its flow) lands in one organisation: the one that owns the project.
//!
//! Endpoints used (all under `/management/v1`, from ZITADEL's published API reference):
//!
//! | call | endpoint |
//! | --- | --- |
//! | GetMyOrg | `GET /orgs/me` |
//! | ListProjects / AddProject / UpdateProject | `POST /projects/_search`, `POST /projects`, `PUT /projects/{id}` |
//! | ListProjectRoles / AddProjectRole / UpdateProjectRole | `POST /projects/{id}/roles/_search`, `POST /projects/{id}/roles`, `PUT /projects/{id}/roles/{key}` |
//! | ListApps / AddOIDCApp / UpdateOIDCAppConfig | `POST /projects/{id}/apps/_search`, `POST /projects/{id}/apps/oidc`, `PUT /projects/{id}/apps/{app}/oidc_config` |
//! | RegenerateOIDCClientSecret | `POST /projects/{id}/apps/{app}/oidc_config/_generate_client_secret` |
//! | ListUsers | `POST /users/_search` |
//! | ListUserGrants / AddUserGrant / UpdateUserGrant | `POST /users/grants/_search`, `POST /users/{id}/grants`, `PUT /users/{id}/grants/{grant}` |
//! | ListActions / CreateAction / UpdateAction | `POST /actions/_search`, `POST /actions`, `PUT /actions/{id}` |
//! | GetFlow / SetTriggerActions | `GET /flows/{type}`, `POST /flows/{type}/trigger/{trigger}` |

use std::time::Duration;

use serde_json::Value;
use terrarium_common::secret::Secret;

/// Why a ZITADEL call failed.
#[derive(Debug, thiserror::Error)]
pub enum ZitadelError {
    #[error("ZITADEL at {url} is unreachable ({reason}); check that ZITADEL runs and that {url} is its address")]
    Unreachable { url: String, reason: String },
    #[error(
        "ZITADEL rejected the admin token ({method} {path}: HTTP 401); put a valid personal access token of the Terrarium service user into {token_file}"
    )]
    BadToken { method: String, path: String, token_file: String },
    #[error(
        "ZITADEL denied {method} {path} (HTTP 403: {message}); the service user needs the ORG_OWNER role (or IAM_OWNER) in the organisation"
    )]
    Forbidden { method: String, path: String, message: String },
    #[error("ZITADEL answered {method} {path} with HTTP {status}: {message}")]
    Api { method: String, path: String, status: u16, message: String },
    #[error("ZITADEL answered {method} {path} with something that is not the documented JSON ({reason})")]
    BadResponse { method: String, path: String, reason: String },
}

/// A ZITADEL Management API client for one organisation.
#[derive(Debug)]
pub struct Client {
    agent: ureq::Agent,
    base: String,
    token: Secret,
    token_file: String,
    org_id: Option<String>,
}

impl Client {
    /// `base` is ZITADEL's address (the issuer, or a loopback URL), without a trailing `/`.
    pub fn new(base: &str, token: Secret, token_file: &str, timeout: Duration) -> Self {
        Self {
            agent: terrarium_oidc::agent(timeout),
            base: base.trim_end_matches('/').to_string(),
            token,
            token_file: token_file.to_string(),
            org_id: None,
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Send every further request on behalf of this organisation.
    pub fn set_org(&mut self, org_id: &str) {
        self.org_id = Some(org_id.to_string());
    }

    pub fn get(&self, path: &str) -> Result<Value, ZitadelError> {
        self.call("GET", path, None)
    }
    pub fn post(&self, path: &str, body: &Value) -> Result<Value, ZitadelError> {
        self.call("POST", path, Some(body))
    }
    pub fn put(&self, path: &str, body: &Value) -> Result<Value, ZitadelError> {
        self.call("PUT", path, Some(body))
    }

    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, ZitadelError> {
        let url = format!("{}/management/v1{path}", self.base);
        let mut request = self
            .agent
            .request(method, &url)
            .set("Authorization", &format!("Bearer {}", self.token.expose()))
            .set("Accept", "application/json");
        if let Some(org) = &self.org_id {
            request = request.set("x-zitadel-orgid", org);
        }
        log::debug!(method = method, path = path; "zitadel call");
        let result = match body {
            Some(body) => request.send_json(body.clone()),
            None => request.call(),
        };
        let fail = |status: u16, text: String| {
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_string))
                .unwrap_or_else(|| text.trim().chars().take(200).collect());
            match status {
                401 => ZitadelError::BadToken {
                    method: method.into(),
                    path: path.into(),
                    token_file: self.token_file.clone(),
                },
                403 => ZitadelError::Forbidden { method: method.into(), path: path.into(), message },
                _ => ZitadelError::Api { method: method.into(), path: path.into(), status, message },
            }
        };
        match result {
            Ok(response) => {
                let text = response.into_string().map_err(|err| ZitadelError::BadResponse {
                    method: method.into(),
                    path: path.into(),
                    reason: err.to_string(),
                })?;
                if text.trim().is_empty() {
                    return Ok(Value::Object(Default::default()));
                }
                serde_json::from_str(&text).map_err(|err| ZitadelError::BadResponse {
                    method: method.into(),
                    path: path.into(),
                    reason: err.to_string(),
                })
            }
            Err(ureq::Error::Status(status, response)) => Err(fail(status, response.into_string().unwrap_or_default())),
            Err(ureq::Error::Transport(transport)) => {
                Err(ZitadelError::Unreachable { url: self.base.clone(), reason: transport.to_string() })
            }
        }
    }
}

/// The `result` array of a `_search` answer (absent when nothing matched).
pub fn results(answer: &Value) -> Vec<Value> {
    answer.get("result").and_then(|r| r.as_array()).cloned().unwrap_or_default()
}

/// A string field, or an error naming what the documented answer lacked.
pub fn field(value: &Value, name: &str, what: &str) -> Result<String, ZitadelError> {
    value.get(name).and_then(|v| v.as_str()).map(str::to_string).ok_or_else(|| ZitadelError::BadResponse {
        method: String::new(),
        path: what.to_string(),
        reason: format!("no `{name}`"),
    })
}
