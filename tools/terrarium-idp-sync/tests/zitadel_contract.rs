//! Local mode against a ZITADEL CONTRACT STAND-IN (tests/support/zitadel_standin.rs):
//! ZITADEL cannot run here, so these tests check that the real binary makes exactly
//! the Management API v1 calls ZITADEL's published API reference describes, that a
//! second run only reads, and that drifted objects are repaired.

#![allow(clippy::unwrap_used)]

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use assert_cmd::Command;
use support::zitadel_standin::{Access, ZitadelStandIn};

const TOKEN: &str = "pat-of-the-terrarium-service-user";
const ADMIN: &str = "admin@example.com";

fn host(admin: Option<&str>) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let admin_line = admin.map(|a| format!("  zitadel_admin: {a}\n")).unwrap_or_default();
    let config = format!(
        "schema_version: 2\ndomains:\n  manage: manage.example.com\n  proxy: proxy.example.com\n  lxd: lxd.example.com\n  auth: auth.example.com\n\
         emails:\n  contact: ops@example.com\n  acme: acme@example.com\n{admin_line}identity:\n  mode: local\nstorage:\n  mode: file\n  size: 1G\n"
    );
    write(&root.path().join("etc/terrarium/config.yaml"), &config, 0o600);
    write(&root.path().join("etc/terrarium/secrets/zitadel-admin-token"), &format!("{TOKEN}\n"), 0o600);
    proxy_sync_report(root.path(), &[APP_CALLBACK]);
    root
}

/// Each `@auth` host signs in on its own: proxy sync's report lists their callbacks,
/// which the route-auth client must allow.
const APP_CALLBACK: &str = "https://app.example.com/oauth2/callback";

fn proxy_sync_report(root: &Path, callbacks: &[&str]) {
    let report = serde_json::json!({ "tool": "proxy-sync", "ok": true, "route_auth_callbacks": callbacks });
    write(&root.join("var/lib/terrarium/reports/proxy-sync.json"), &report.to_string(), 0o644);
}

fn write(path: &Path, text: &str, mode: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn sync(root: &Path, zitadel: &ZitadelStandIn, extra: &[&str]) -> assert_cmd::assert::Assert {
    Command::cargo_bin("terrarium-idp-sync")
        .unwrap()
        .args(["--root", root.to_str().unwrap(), "--skip-lxd", "--zitadel-url", &zitadel.url()])
        .args(extra)
        .env("TERRARIUM_LOG_FORMAT", "logfmt")
        .assert()
}

fn secret(root: &Path, name: &str) -> String {
    let path = root.join("etc/terrarium/secrets").join(name);
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600, "{name} must be 0600");
    std::fs::read_to_string(path).unwrap().trim_end().to_string()
}

#[test]
fn a_first_run_makes_exactly_the_documented_calls_and_stores_the_clients() {
    let zitadel = ZitadelStandIn::start(TOKEN, &[ADMIN]);
    let root = host(Some(ADMIN));
    sync(root.path(), &zitadel, &[]).success();

    assert_eq!(
        zitadel.writes(),
        [
            "POST /projects",
            "POST /projects/project-2/roles",
            "POST /projects/project-2/apps/oidc",
            "POST /projects/project-2/apps/oidc",
            "POST /projects/project-2/apps/oidc",
            "POST /users/user-1/grants",
            "POST /actions",
            "POST /flows/2/trigger/4",
            "POST /flows/2/trigger/5",
        ]
    );
    let calls = zitadel.calls();
    // Everything after the organisation lookup is pinned to the project's organisation.
    assert!(calls.iter().skip(1).all(|c| c.org_header.as_deref() == Some("org-100")), "{calls:#?}");
    let app_bodies: Vec<_> = calls.iter().filter(|c| c.path.ends_with("/apps/oidc")).map(|c| c.body.clone()).collect();
    assert_eq!(app_bodies[0]["redirectUris"], serde_json::json!(["https://manage.example.com/oauth2/callback"]));
    assert_eq!(app_bodies[1]["redirectUris"], serde_json::json!([APP_CALLBACK]));
    assert_eq!(app_bodies[2]["redirectUris"], serde_json::json!(["https://lxd.example.com/oidc/callback"]));
    assert_eq!(app_bodies[2]["authMethodType"], "OIDC_AUTH_METHOD_TYPE_NONE");

    let world = zitadel.world.lock().unwrap();
    assert_eq!(world.roles[0].1["key"], "terrarium-admins");
    assert_eq!(world.grants[0]["roleKeys"], serde_json::json!(["terrarium-admins"]));
    let script = world.actions[0]["script"].as_str().unwrap();
    assert!(
        script.contains("'project-2'") && script.contains("'org-100'") && script.contains("setClaim('groups'"),
        "{script}"
    );
    assert_eq!(world.triggers["4"], [world.actions[0]["id"].as_str().unwrap()]);
    assert_eq!(world.triggers["5"], [world.actions[0]["id"].as_str().unwrap()]);

    assert_eq!(secret(root.path(), "oidc-host-client-id"), world.app("terrarium-host")["oidcConfig"]["clientId"]);
    assert_eq!(Some(secret(root.path(), "oidc-host-client-secret")), world.app_secret("terrarium-host"));
    assert_eq!(Some(secret(root.path(), "oidc-routes-client-secret")), world.app_secret("terrarium-routes"));
    assert_eq!(secret(root.path(), "oidc-lxd-client-id"), world.app("terrarium-lxd")["oidcConfig"]["clientId"]);
    assert!(!root.path().join("etc/terrarium/secrets/oidc-lxd-client-secret").exists(), "LXD is a public client");
    let saved: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.path().join("var/lib/terrarium/reports/idp-sync.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(saved["changes"].as_array().unwrap().len(), 14, "{saved:#}");
}

#[test]
fn an_unreachable_zitadel_is_named() {
    let zitadel = ZitadelStandIn::start(TOKEN, &[ADMIN]);
    let root = host(Some(ADMIN));
    let url = zitadel.url();
    drop(zitadel);
    let out = Command::cargo_bin("terrarium-idp-sync")
        .unwrap()
        .args(["--root", root.path().to_str().unwrap(), "--skip-lxd", "--zitadel-url", &url])
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(stderr.contains(&format!("ZITADEL at {url} is unreachable")), "{stderr}");
    assert!(!root.path().join("etc/terrarium/secrets/oidc-host-client-id").exists());
}

#[test]
fn a_second_run_only_reads() {
    let zitadel = ZitadelStandIn::start(TOKEN, &[ADMIN]);
    let root = host(Some(ADMIN));
    sync(root.path(), &zitadel, &[]).success();
    zitadel.clear_calls();
    let out = sync(root.path(), &zitadel, &[]).success();
    assert_eq!(zitadel.writes(), Vec::<String>::new());
    assert!(!zitadel.calls().is_empty(), "the second run must still look");
    assert!(String::from_utf8_lossy(&out.get_output().stdout).contains("nothing to change"));
}

#[test]
fn a_new_auth_host_is_added_to_the_route_clients_callbacks() {
    let zitadel = ZitadelStandIn::start(TOKEN, &[ADMIN]);
    let root = host(Some(ADMIN));
    sync(root.path(), &zitadel, &[]).success();
    let wiki = "https://wiki.example.org/oauth2/callback";
    proxy_sync_report(root.path(), &[APP_CALLBACK, wiki]);
    zitadel.clear_calls();
    sync(root.path(), &zitadel, &[]).success();
    let routes_id = zitadel.world.lock().unwrap().app("terrarium-routes")["id"].as_str().unwrap().to_string();
    assert_eq!(zitadel.writes(), [format!("PUT /projects/project-2/apps/{routes_id}/oidc_config")]);
    assert_eq!(
        zitadel.world.lock().unwrap().app("terrarium-routes")["oidcConfig"]["redirectUris"],
        serde_json::json!([APP_CALLBACK, wiki])
    );
}

#[test]
fn drifted_objects_are_repaired_and_nothing_else_is_touched() {
    let zitadel = ZitadelStandIn::start(TOKEN, &[ADMIN]);
    let root = host(Some(ADMIN));
    sync(root.path(), &zitadel, &[]).success();
    {
        let mut world = zitadel.world.lock().unwrap();
        world.app_mut("terrarium-routes")["oidcConfig"]["redirectUris"] = serde_json::json!([]);
        world.actions[0]["script"] = serde_json::json!(
            "function terrariumGroups(ctx, api) { api.v1.claims.setClaim('groups', ['terrarium-admins']) }"
        );
        world.triggers.get_mut("5").unwrap().clear();
    }
    std::fs::remove_file(root.path().join("etc/terrarium/secrets/oidc-host-client-secret")).unwrap();
    zitadel.clear_calls();

    sync(root.path(), &zitadel, &[]).success();
    let routes_id = zitadel.world.lock().unwrap().app("terrarium-routes")["id"].as_str().unwrap().to_string();
    let host_id = zitadel.world.lock().unwrap().app("terrarium-host")["id"].as_str().unwrap().to_string();
    let action_id = zitadel.world.lock().unwrap().actions[0]["id"].as_str().unwrap().to_string();
    assert_eq!(
        zitadel.writes(),
        [
            format!("POST /projects/project-2/apps/{host_id}/oidc_config/_generate_client_secret"),
            format!("PUT /projects/project-2/apps/{routes_id}/oidc_config"),
            format!("PUT /actions/{action_id}"),
            "POST /flows/2/trigger/5".to_string(),
        ]
    );
    let world = zitadel.world.lock().unwrap();
    assert_eq!(world.app("terrarium-routes")["oidcConfig"]["redirectUris"], serde_json::json!([APP_CALLBACK]));
    assert_eq!(Some(secret(root.path(), "oidc-host-client-secret")), world.app_secret("terrarium-host"));
    assert!(world.actions[0]["script"].as_str().unwrap().contains("grant.projectId !== 'project-2'"));
}

#[test]
fn a_dry_run_plans_without_writing() {
    let zitadel = ZitadelStandIn::start(TOKEN, &[ADMIN]);
    let root = host(Some(ADMIN));
    let out = sync(root.path(), &zitadel, &["--dry-run", "--json"]).success();
    assert_eq!(zitadel.writes(), Vec::<String>::new());
    let report: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let planned: Vec<String> = report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{} {} {}",
                c["action"].as_str().unwrap(),
                c["object"].as_str().unwrap(),
                c["name"].as_str().unwrap()
            )
        })
        .collect();
    assert!(planned.contains(&"create project terrarium".to_string()), "{planned:?}");
    assert!(planned.contains(&"create app terrarium-lxd".to_string()), "{planned:?}");
    assert!(planned.contains(&"write secret oidc-host-client-secret".to_string()), "{planned:?}");
    assert!(!root.path().join("etc/terrarium/secrets/oidc-host-client-id").exists());
}

#[test]
fn a_missing_bootstrap_admin_is_a_partial_run_with_a_note() {
    let zitadel = ZitadelStandIn::start(TOKEN, &[]);
    let root = host(Some(ADMIN));
    let out = sync(root.path(), &zitadel, &[]).code(3);
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(stdout.contains("admin@example.com (emails.zitadel_admin) is not a ZITADEL user"), "{stdout}");
    assert!(!zitadel.writes().iter().any(|w| w.contains("/grants")));
}

#[test]
fn a_rejected_token_names_the_token_file() {
    let zitadel = ZitadelStandIn::start("another-token", &[ADMIN]);
    let root = host(Some(ADMIN));
    let out = sync(root.path(), &zitadel, &[]).code(1);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(stderr.contains("rejected the admin token") && stderr.contains("zitadel-admin-token"), "{stderr}");
}

#[test]
fn missing_permissions_are_named() {
    let zitadel = ZitadelStandIn::start(TOKEN, &[ADMIN]);
    zitadel.set_access(Access::ReadOnly);
    let root = host(Some(ADMIN));
    let out = sync(root.path(), &zitadel, &[]).code(1);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(stderr.contains("denied POST /projects") && stderr.contains("ORG_OWNER"), "{stderr}");
}

#[test]
fn a_client_secret_with_a_wrong_mode_is_made_private_not_rotated() {
    let zitadel = ZitadelStandIn::start(TOKEN, &[ADMIN]);
    let root = host(Some(ADMIN));
    sync(root.path(), &zitadel, &[]).success();
    let path = root.path().join("etc/terrarium/secrets/oidc-host-client-secret");
    let before = std::fs::read_to_string(&path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    zitadel.clear_calls();

    let dry = sync(root.path(), &zitadel, &["--dry-run"]).success();
    assert!(
        String::from_utf8_lossy(&dry.get_output().stdout)
            .contains("secrets: chmod secret oidc-host-client-secret (mode was 644, set to 600)")
    );
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o644, "--dry-run changed the mode");

    let out = sync(root.path(), &zitadel, &[]).success();
    assert_eq!(zitadel.writes(), Vec::<String>::new(), "the client secret was rotated at ZITADEL");
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(stdout.contains("secrets: chmod secret oidc-host-client-secret (mode was 644, set to 600)"), "{stdout}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), before, "the secret itself changed");
    assert_eq!(
        Some(secret(root.path(), "oidc-host-client-secret")),
        zitadel.world.lock().unwrap().app_secret("terrarium-host")
    );
}
