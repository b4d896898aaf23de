//! The LXD step against a real LXD 5.0 (terrarium-testkit's namespaced daemon), and
//! against the same daemon behind a STAND-IN for LXD 5.21's OIDC keys and auth-group
//! API (tests/support/lxc-5.21-standin.py, an `lxc` wrapper first on PATH), because
//! Debian's LXD 5.0 has neither. ZITADEL is the contract stand-in of
//! tests/support/zitadel_standin.rs.

#![allow(clippy::unwrap_used)]

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;
use support::zitadel_standin::ZitadelStandIn;
use terrarium_testkit::{Lxd, require};

const TOKEN: &str = "pat-of-the-terrarium-service-user";

fn host() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let config = "schema_version: 2\ndomains:\n  manage: manage.example.com\n  proxy: proxy.example.com\n  lxd: lxd.example.com\n  auth: auth.example.com\n\
                  emails:\n  contact: ops@example.com\n  acme: acme@example.com\nidentity:\n  mode: local\nstorage:\n  mode: file\n";
    for (rel, text) in [
        ("etc/terrarium/config.yaml", config.to_string()),
        ("etc/terrarium/secrets/zitadel-admin-token", format!("{TOKEN}\n")),
    ] {
        let path = root.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    root
}

/// A dir holding the stand-in as `lxc`, and its state and call log.
struct StandIn {
    dir: tempfile::TempDir,
}

impl StandIn {
    fn install() -> Self {
        require("python3");
        let dir = tempfile::tempdir().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/lxc-5.21-standin.py");
        let lxc = dir.path().join("lxc");
        std::fs::copy(script, &lxc).unwrap();
        std::fs::set_permissions(&lxc, std::fs::Permissions::from_mode(0o755)).unwrap();
        Self { dir }
    }
    fn env(&self) -> Vec<(String, String)> {
        let path = format!("{}:{}", self.dir.path().display(), std::env::var("PATH").unwrap_or_default());
        vec![
            ("PATH".into(), path),
            ("STANDIN_REAL_LXC".into(), require("lxc").display().to_string()),
            ("STANDIN_STATE".into(), self.dir.path().join("state.json").display().to_string()),
            ("STANDIN_LOG".into(), self.dir.path().join("calls.jsonl").display().to_string()),
        ]
    }
    fn state(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.dir.path().join("state.json")).unwrap()).unwrap()
    }
    fn set_state(&self, state: &Value) {
        std::fs::write(self.dir.path().join("state.json"), state.to_string()).unwrap();
    }
    /// The writes the tool made through `lxc` since the last call.
    fn take_writes(&self) -> Vec<String> {
        let log: PathBuf = self.dir.path().join("calls.jsonl");
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = std::fs::remove_file(&log);
        text.lines()
            .map(|l| serde_json::from_str::<Vec<String>>(l).unwrap())
            .filter(|args| args.iter().any(|a| a == "-X") || args.first().map(String::as_str) == Some("config"))
            .map(|args| args.iter().filter(|a| !a.starts_with('{')).cloned().collect::<Vec<_>>().join(" "))
            .collect()
    }
}

fn sync(root: &Path, zitadel: &ZitadelStandIn, env: &[(String, String)], extra: &[&str]) -> assert_cmd::assert::Assert {
    Command::cargo_bin("terrarium-idp-sync")
        .unwrap()
        .args(["--root", root.to_str().unwrap(), "--zitadel-url", &zitadel.url(), "--json"])
        .args(extra)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .assert()
}

fn report(assert: &assert_cmd::assert::Assert) -> Value {
    serde_json::from_slice(&assert.get_output().stdout).unwrap()
}

#[test]
fn real_lxd_5_0_has_no_oidc_keys_and_is_left_alone_with_an_explanation() {
    let lxd = Lxd::start();
    // The real daemon refuses the keys: this is why the tool must detect, not assume.
    assert!(lxd.try_lxc(&["config", "set", "oidc.issuer", "https://auth.example.com"]).is_err());
    let before = lxd.lxc(&["config", "show"]);
    let zitadel = ZitadelStandIn::start(TOKEN, &[]);
    let root = host();
    let out = sync(root.path(), &zitadel, &lxd.env(), &[]).success();
    let report = report(&out);
    assert_eq!(report["lxd"]["oidc"], false, "{report:#}");
    assert_eq!(report["lxd"]["configured"], false);
    let notes = report["notes"].to_string();
    assert!(notes.contains("has no OIDC support") && notes.contains("`oidc`"), "{notes}");
    assert!(report["changes"].as_array().unwrap().iter().all(|c| c["system"] != "lxd"));
    assert_eq!(lxd.lxc(&["config", "show"]), before);
}

#[test]
fn lxd_5_21_standin_gets_oidc_and_the_admin_mapping_idempotently_and_repaired() {
    let lxd = Lxd::start();
    let standin = StandIn::install();
    let env: Vec<_> = lxd.env().into_iter().chain(standin.env()).collect();
    let zitadel = ZitadelStandIn::start(TOKEN, &[]);
    let root = host();

    let planned = report(&sync(root.path(), &zitadel, &env, &["--dry-run"]).success());
    assert!(planned["changes"].to_string().contains("auth-group"), "{planned:#}");
    assert_eq!(standin.take_writes(), Vec::<String>::new(), "a dry run writes nothing");

    sync(root.path(), &zitadel, &env, &[]).code(0);
    let client_id = std::fs::read_to_string(root.path().join("etc/terrarium/secrets/oidc-lxd-client-id"))
        .unwrap()
        .trim()
        .to_string();
    let expected: Vec<String> = vec![
        "query -X POST --data /1.0/auth/groups".into(),
        "query -X POST --data /1.0/auth/identity-provider-groups".into(),
        "config set oidc.issuer https://auth.example.com".into(),
        format!("config set oidc.client.id {client_id}"),
        format!("config set oidc.audience {client_id}"),
        "config set oidc.groups.claim groups".into(),
    ];
    assert_eq!(standin.take_writes(), expected);
    let state = standin.state();
    assert_eq!(state["groups"][0]["name"], "terrarium-admins");
    assert_eq!(
        state["groups"][0]["permissions"],
        serde_json::json!([{"entity_type": "server", "url": "/1.0", "entitlement": "admin"}])
    );
    assert_eq!(state["idp_groups"][0], serde_json::json!({"name": "terrarium-admins", "groups": ["terrarium-admins"]}));

    let again = report(&sync(root.path(), &zitadel, &env, &[]).success());
    assert_eq!(again["changes"], serde_json::json!([]), "{again:#}");
    assert_eq!(again["lxd"]["configured"], true);
    assert_eq!(standin.take_writes(), Vec::<String>::new());

    // Drift: the mapping lost its group and the issuer was changed by hand.
    let mut drifted = standin.state();
    drifted["idp_groups"][0]["groups"] = serde_json::json!([]);
    drifted["config"]["oidc.issuer"] = serde_json::json!("https://elsewhere.example.com");
    standin.set_state(&drifted);
    sync(root.path(), &zitadel, &env, &[]).success();
    assert_eq!(
        standin.take_writes(),
        [
            "query -X PUT --data /1.0/auth/identity-provider-groups/terrarium-admins",
            "config set oidc.issuer https://auth.example.com"
        ]
    );
    assert_eq!(standin.state()["idp_groups"][0]["groups"], serde_json::json!(["terrarium-admins"]));
}

#[test]
fn external_mode_points_lxd_at_the_verified_issuer_and_a_failed_check_leaves_lxd_alone() {
    use terrarium_testkit::oidc_issuer::{IssuerMode, TestIssuer};
    let lxd = Lxd::start();
    let standin = StandIn::install();
    let env: Vec<_> = lxd.env().into_iter().chain(standin.env()).collect();
    let issuer = TestIssuer::start(IssuerMode::Good);
    let root = tempfile::tempdir().unwrap();
    let config = format!(
        "schema_version: 2\ndomains:\n  manage: manage.example.com\n  proxy: proxy.example.com\n  lxd: lxd.example.com\n  auth: auth.example.com\n\
         emails:\n  contact: ops@example.com\n  acme: acme@example.com\nidentity:\n  mode: oidc\n  issuer: https://id.example.com\n  client_id: {}\n  \
         client_secret_file: /etc/terrarium/secrets/oidc-client-secret\nstorage:\n  mode: file\n",
        issuer.client_id()
    );
    for (rel, text) in [
        ("etc/terrarium/config.yaml", config),
        ("etc/terrarium/secrets/oidc-client-secret", format!("{}\n", issuer.client_secret())),
    ] {
        let path = root.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let run = |issuer_url: &str| {
        Command::cargo_bin("terrarium-idp-sync")
            .unwrap()
            .args(["--root", root.path().to_str().unwrap(), "--json", "--issuer", issuer_url])
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .assert()
    };

    let wrong = TestIssuer::start(IssuerMode::WrongIssuer);
    run(&wrong.issuer()).code(5);
    assert_eq!(standin.take_writes(), Vec::<String>::new(), "a failed issuer check must not touch LXD");

    run(&issuer.issuer()).success();
    let config = &standin.state()["config"];
    assert_eq!(config["oidc.issuer"], issuer.issuer());
    assert_eq!(config["oidc.client.id"], issuer.client_id());
    assert_eq!(config["oidc.groups.claim"], "groups");
}
