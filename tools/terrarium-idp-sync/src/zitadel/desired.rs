//! What Terrarium wants in ZITADEL, and pure comparisons against what is there.
//!
//! Nothing here talks to ZITADEL: [`super::reconcile`] reads, asks these functions
//! what differs, and writes only that.

use serde_json::{Value, json};
use terrarium_common::config::secret_names;

/// The one project that holds Terrarium's applications and its admin role.
pub const PROJECT_NAME: &str = "terrarium";
/// The Action's name; ZITADEL calls the script function of the same name.
pub const ACTION_NAME: &str = "terrariumGroups";
pub const ACTION_TIMEOUT: &str = "10s";
/// Flow "Complement Token" and its triggers "Pre Userinfo creation" (id token,
/// userinfo, introspection) and "Pre access token creation" (JWT access tokens).
pub const FLOW_COMPLEMENT_TOKEN: &str = "2";
pub const TRIGGER_PRE_USERINFO: &str = "4";
pub const TRIGGER_PRE_ACCESS_TOKEN: &str = "5";
pub const TRIGGERS: [&str; 2] = [TRIGGER_PRE_USERINFO, TRIGGER_PRE_ACCESS_TOKEN];
/// The display name of the admin role.
pub const ROLE_DISPLAY_NAME: &str = "Terrarium administrators";
pub const ROLE_GROUP: &str = "terrarium";

/// Project settings. Role assertion is on because ZITADEL only hands an Action the
/// user's grants when it is; the role check stays off because `@auth` routes admit
/// any authenticated user, not only admins (the admin gate is the `groups` claim).
pub fn project_settings() -> Value {
    json!({"projectRoleAssertion": true, "projectRoleCheck": false, "hasProjectCheck": false})
}

/// The project fields that differ from [`project_settings`] (absent means false).
pub fn project_drift(existing: &Value) -> Vec<String> {
    let desired = project_settings();
    let mut drift = Vec::new();
    for (key, want) in desired.as_object().into_iter().flatten() {
        let have = existing.get(key).cloned().unwrap_or(Value::Bool(false));
        if &have != want {
            drift.push(key.clone());
        }
    }
    drift
}

/// The body of UpdateProject: the existing name and label setting, our settings.
pub fn project_update(existing: &Value) -> Value {
    let mut body = project_settings();
    body["name"] = json!(PROJECT_NAME);
    if let Some(label) = existing.get("privateLabelingSetting") {
        body["privateLabelingSetting"] = label.clone();
    }
    body
}

/// Which kind of OIDC client an application is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    /// A server-side client with a secret (oauth2-proxy): web app, HTTP basic auth.
    Confidential,
    /// LXD: no secret (PKCE for the browser, device code for `lxc`), JWT access
    /// tokens that LXD verifies itself against the JWKS.
    Public,
}

/// One OIDC application Terrarium needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppSpec {
    pub name: &'static str,
    pub kind: ClientKind,
    pub redirect_uris: Vec<String>,
    /// Secret file names (under the secrets directory) for the client id and secret.
    pub id_file: &'static str,
    pub secret_file: Option<&'static str>,
}

/// The three applications: Cockpit's oauth2-proxy, published-route auth (called back on
/// each `@auth` host: `route_callbacks`), LXD.
pub fn apps(manage: &str, lxd: &str, route_callbacks: &[String]) -> Vec<AppSpec> {
    vec![
        AppSpec {
            name: "terrarium-host",
            kind: ClientKind::Confidential,
            redirect_uris: vec![format!("https://{manage}/oauth2/callback")],
            id_file: secret_names::HOST_CLIENT_ID,
            secret_file: Some(secret_names::HOST_CLIENT_SECRET),
        },
        AppSpec {
            name: "terrarium-routes",
            kind: ClientKind::Confidential,
            redirect_uris: route_callbacks.to_vec(),
            id_file: secret_names::ROUTES_CLIENT_ID,
            secret_file: Some(secret_names::ROUTES_CLIENT_SECRET),
        },
        AppSpec {
            name: "terrarium-lxd",
            kind: ClientKind::Public,
            redirect_uris: vec![format!("https://{lxd}/oidc/callback")],
            id_file: secret_names::LXD_CLIENT_ID,
            secret_file: None,
        },
    ]
}

/// The OIDC settings of an application, as AddOIDCApp and UpdateOIDCAppConfig take them.
pub fn oidc_config(spec: &AppSpec) -> Value {
    let (app_type, auth, grants, token_type) = match spec.kind {
        ClientKind::Confidential => (
            "OIDC_APP_TYPE_WEB",
            "OIDC_AUTH_METHOD_TYPE_BASIC",
            vec!["OIDC_GRANT_TYPE_AUTHORIZATION_CODE", "OIDC_GRANT_TYPE_REFRESH_TOKEN"],
            "OIDC_TOKEN_TYPE_BEARER",
        ),
        ClientKind::Public => (
            "OIDC_APP_TYPE_USER_AGENT",
            "OIDC_AUTH_METHOD_TYPE_NONE",
            vec!["OIDC_GRANT_TYPE_AUTHORIZATION_CODE", "OIDC_GRANT_TYPE_DEVICE_CODE", "OIDC_GRANT_TYPE_REFRESH_TOKEN"],
            "OIDC_TOKEN_TYPE_JWT",
        ),
    };
    json!({
        "redirectUris": spec.redirect_uris,
        "responseTypes": ["OIDC_RESPONSE_TYPE_CODE"],
        "grantTypes": grants,
        "appType": app_type,
        "authMethodType": auth,
        "postLogoutRedirectUris": [],
        "devMode": false,
        "accessTokenType": token_type,
        "accessTokenRoleAssertion": false,
        "idTokenRoleAssertion": true,
        "idTokenUserinfoAssertion": true,
    })
}

/// The body of AddOIDCApp.
pub fn app_create(spec: &AppSpec) -> Value {
    let mut body = oidc_config(spec);
    body["name"] = json!(spec.name);
    body["version"] = json!("OIDC_VERSION_1_0");
    body
}

/// ZITADEL's JSON leaves out fields at their proto3 default (false, empty, the first
/// enum value); compare against these when a field is absent.
fn proto_default(field: &str) -> Value {
    match field {
        "responseTypes" | "grantTypes" | "redirectUris" | "postLogoutRedirectUris" => json!([]),
        "appType" => json!("OIDC_APP_TYPE_WEB"),
        "authMethodType" => json!("OIDC_AUTH_METHOD_TYPE_BASIC"),
        "accessTokenType" => json!("OIDC_TOKEN_TYPE_BEARER"),
        _ => json!(false),
    }
}

/// The OIDC settings of an existing app that differ from the spec (lists compared as
/// sets, order does not matter).
pub fn oidc_drift(existing: &Value, spec: &AppSpec) -> Vec<String> {
    let desired = oidc_config(spec);
    let mut drift = Vec::new();
    for (key, want) in desired.as_object().into_iter().flatten() {
        let have = existing.get(key).cloned().unwrap_or_else(|| proto_default(key));
        let same = match (&have, want) {
            (Value::Array(a), Value::Array(b)) => as_set(a) == as_set(b),
            _ => &have == want,
        };
        if !same {
            drift.push(key.clone());
        }
    }
    drift
}

fn as_set(values: &[Value]) -> std::collections::BTreeSet<String> {
    values.iter().map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string)).collect()
}

/// The Action's script: a flat `groups` claim with the user's roles on this project,
/// and only the grants this organisation gave. Without the filters the usual
/// community script copies every role of every project and every granting
/// organisation into `groups`, so an organisation the project was granted to could
/// hand its users `terrarium-admins`.
pub fn action_script(project_id: &str, org_id: &str) -> String {
    format!(
        r#"// Managed by terrarium-idp-sync; changes are overwritten.
function {ACTION_NAME}(ctx, api) {{
  var grants = ctx.v1.user.grants;
  if (grants == undefined || grants.count == 0) {{
    return;
  }}
  var groups = [];
  grants.grants.forEach(function (grant) {{
    if (grant.projectId !== '{project_id}' || grant.userGrantResourceOwner !== '{org_id}') {{
      return;
    }}
    if (grant.projectGrantId || grant.state === 2 || grant.state === 3) {{
      return;
    }}
    grant.roles.forEach(function (role) {{
      if (groups.indexOf(role) < 0) {{
        groups.push(role);
      }}
    }});
  }});
  if (groups.length > 0) {{
    api.v1.claims.setClaim('groups', groups);
  }}
}}
"#
    )
}

/// The body of CreateAction / UpdateAction. `allowedToFail` is true: the flow runs for
/// every token of the organisation (the ZITADEL console too), and a failing script
/// only means no `groups` claim, which every Terrarium gate treats as "not an admin".
pub fn action_body(project_id: &str, org_id: &str) -> Value {
    json!({"name": ACTION_NAME, "script": action_script(project_id, org_id), "timeout": ACTION_TIMEOUT, "allowedToFail": true})
}

/// The Action fields that differ from [`action_body`].
pub fn action_drift(existing: &Value, project_id: &str, org_id: &str) -> Vec<String> {
    let desired = action_body(project_id, org_id);
    let mut drift = Vec::new();
    for key in ["script", "timeout", "allowedToFail"] {
        let have = existing.get(key).cloned().unwrap_or_else(|| proto_default(key));
        if have != desired[key] {
            drift.push(key.to_string());
        }
    }
    drift
}

/// The action ids set on one trigger of a GetFlow answer.
pub fn trigger_action_ids(flow: &Value, trigger: &str) -> Vec<String> {
    let triggers = flow.pointer("/flow/triggerActions").and_then(|t| t.as_array()).cloned().unwrap_or_default();
    triggers
        .iter()
        .filter(|t| t.pointer("/triggerType/id").and_then(|id| id.as_str()) == Some(trigger))
        .flat_map(|t| t.get("actions").and_then(|a| a.as_array()).cloned().unwrap_or_default())
        .filter_map(|a| a.get("id").and_then(|id| id.as_str()).map(str::to_string))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn host() -> AppSpec {
        apps("manage.example.com", "lxd.example.com", &[]).remove(0)
    }

    #[test]
    fn the_three_apps_have_the_contract_redirect_uris() {
        let routes = ["https://a.example/oauth2/callback".to_string(), "https://b.example/oauth2/callback".to_string()];
        let uris: Vec<_> = apps("m.example", "l.example", &routes).into_iter().map(|a| a.redirect_uris).collect();
        assert_eq!(
            uris,
            [
                vec!["https://m.example/oauth2/callback"],
                vec!["https://a.example/oauth2/callback", "https://b.example/oauth2/callback"],
                vec!["https://l.example/oidc/callback"]
            ]
        );
    }

    #[test]
    fn an_identical_app_has_no_drift_even_with_defaults_left_out_and_lists_reordered() {
        let mut existing = oidc_config(&host());
        let object = existing.as_object_mut().unwrap();
        object.remove("devMode");
        object.remove("accessTokenRoleAssertion");
        object.remove("postLogoutRedirectUris");
        object.remove("accessTokenType");
        object.insert(
            "grantTypes".into(),
            json!(["OIDC_GRANT_TYPE_REFRESH_TOKEN", "OIDC_GRANT_TYPE_AUTHORIZATION_CODE"]),
        );
        object.insert("clientId".into(), json!("123@terrarium"));
        assert_eq!(oidc_drift(&existing, &host()), Vec::<String>::new());
    }

    #[test]
    fn a_removed_redirect_uri_is_drift() {
        let mut existing = oidc_config(&host());
        existing["redirectUris"] = json!([]);
        assert_eq!(oidc_drift(&existing, &host()), ["redirectUris"]);
    }

    #[test]
    fn the_script_is_scoped_to_the_project_and_the_org() {
        let script = action_script("p1", "o1");
        assert!(script.contains("function terrariumGroups(ctx, api)"));
        assert!(
            script.contains("grant.projectId !== 'p1'") && script.contains("grant.userGrantResourceOwner !== 'o1'")
        );
        assert!(script.contains("setClaim('groups', groups)"));
    }

    #[test]
    fn trigger_ids_are_read_per_trigger() {
        let flow = json!({"flow": {"triggerActions": [
            {"triggerType": {"id": "4"}, "actions": [{"id": "a1"}, {"id": "a2"}]},
            {"triggerType": {"id": "5"}, "actions": [{"id": "a2"}]},
        ]}});
        assert_eq!(trigger_action_ids(&flow, "4"), ["a1", "a2"]);
        assert_eq!(trigger_action_ids(&flow, "5"), ["a2"]);
        assert!(trigger_action_ids(&json!({}), "4").is_empty());
    }

    proptest::proptest! {
        /// ZITADEL may list URIs and grant types in any order: never drift.
        #[test]
        fn list_order_is_not_drift(seed in proptest::collection::vec(0usize..100, 3)) {
            let spec = AppSpec { redirect_uris: vec!["https://a/1".into(), "https://b/2".into(), "https://c/3".into()], ..host() };
            let mut existing = oidc_config(&spec);
            let mut uris = spec.redirect_uris.clone();
            for (i, s) in seed.iter().enumerate() {
                uris.swap(i, s % 3);
            }
            existing["redirectUris"] = json!(uris);
            proptest::prop_assert!(oidc_drift(&existing, &spec).is_empty());
        }

        /// Removing any one redirect URI is drift of `redirectUris` alone.
        #[test]
        fn a_missing_uri_is_drift(drop in 0usize..3) {
            let spec = AppSpec { redirect_uris: vec!["https://a/1".into(), "https://b/2".into(), "https://c/3".into()], ..host() };
            let mut existing = oidc_config(&spec);
            let mut uris = spec.redirect_uris.clone();
            uris.remove(drop);
            existing["redirectUris"] = json!(uris);
            proptest::prop_assert_eq!(oidc_drift(&existing, &spec), vec!["redirectUris".to_string()]);
        }
    }

    #[test]
    fn project_drift_names_the_fields() {
        assert!(project_drift(&json!({"projectRoleAssertion": true})).is_empty());
        assert_eq!(project_drift(&json!({"projectRoleCheck": true})), ["projectRoleAssertion", "projectRoleCheck"]);
    }
}
