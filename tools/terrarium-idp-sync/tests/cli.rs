//! Snapshots of what the real binary prints. The issuer is terrarium-testkit's
//! TestIssuer on loopback; ZITADEL is the contract stand-in of tests/support.

#![allow(clippy::unwrap_used)]

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use assert_cmd::Command;
use support::zitadel_standin::ZitadelStandIn;
use terrarium_testkit::oidc_issuer::{IssuerMode, TestIssuer};

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

const DOMAINS: &str = "domains:\n  manage: manage.example.com\n  proxy: proxy.example.com\n  lxd: lxd.example.com\n  auth: auth.example.com\n";

fn external_host(client_id: &str, secret: &str) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let config = format!(
        "schema_version: 2\n{DOMAINS}emails:\n  contact: ops@example.com\n  acme: acme@example.com\nidentity:\n  mode: oidc\n  issuer: https://id.example.com\n  client_id: {client_id}\n  client_secret_file: /etc/terrarium/secrets/oidc-client-secret\nstorage:\n  mode: file\n"
    );
    write(&root.path().join("etc/terrarium/config.yaml"), &config);
    write(&root.path().join("etc/terrarium/secrets/oidc-client-secret"), &format!("{secret}\n"));
    root
}

fn local_host() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let config = format!(
        "schema_version: 2\n{DOMAINS}emails:\n  contact: ops@example.com\n  acme: acme@example.com\n  zitadel_admin: admin@example.com\nidentity:\n  mode: local\nstorage:\n  mode: file\n"
    );
    write(&root.path().join("etc/terrarium/config.yaml"), &config);
    root
}

/// Exit code, stdout and stderr, with ports and temp paths made stable.
fn run(root: &Path, args: &[&str]) -> String {
    let output = Command::cargo_bin("terrarium-idp-sync")
        .unwrap()
        .arg("--root")
        .arg(root)
        .args(args)
        .env("TERRARIUM_LOG_FORMAT", "human")
        .output()
        .unwrap();
    let text = format!(
        "exit: {}\n--- stdout\n{}--- stderr\n{}",
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    text.replace(&root.display().to_string(), "<root>")
}

macro_rules! snapshot {
    ($name:expr, $value:expr) => {
        insta::with_settings!({filters => vec![
            (r"(127\.0\.0\.1|localhost):\d+", "$1:<port>"),
            (r"app-\d+@terrarium", "app-N@terrarium"),
        ]}, {
            insta::assert_snapshot!($name, $value);
        });
    };
}

#[test]
fn help() {
    let out = Command::cargo_bin("terrarium-idp-sync").unwrap().arg("--help").output().unwrap();
    snapshot!("help", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn external_issuer_verified() {
    let issuer = TestIssuer::start(IssuerMode::Good);
    let root = external_host(issuer.client_id(), issuer.client_secret());
    snapshot!("external_good", run(root.path(), &["--skip-lxd", "--issuer", &issuer.issuer()]));
}

#[test]
fn external_issuer_mismatch() {
    let issuer = TestIssuer::start(IssuerMode::WrongIssuer);
    let root = external_host(issuer.client_id(), issuer.client_secret());
    snapshot!("external_wrong_issuer", run(root.path(), &["--skip-lxd", "--issuer", &issuer.issuer()]));
}

#[test]
fn external_bad_credentials() {
    let issuer = TestIssuer::start(IssuerMode::Good);
    let root = external_host(issuer.client_id(), "not-the-secret");
    snapshot!("external_bad_credentials", run(root.path(), &["--skip-lxd", "--issuer", &issuer.issuer()]));
}

#[test]
fn external_issuer_unreachable() {
    let issuer = TestIssuer::start(IssuerMode::Good);
    let (url, id, secret) = (issuer.issuer(), issuer.client_id().to_string(), issuer.client_secret().to_string());
    drop(issuer);
    let root = external_host(&id, &secret);
    let shown = run(root.path(), &["--skip-lxd", "--issuer", &url]);
    // The OS error text after the address varies; keep the part Terrarium writes.
    let shown = shown.split(" (http").next().unwrap_or_default().to_string();
    snapshot!("external_unreachable", shown);
}

#[test]
fn plain_http_issuer_is_refused_off_loopback() {
    let root = external_host("c", "s");
    snapshot!("http_issuer_refused", run(root.path(), &["--skip-lxd", "--issuer", "http://id.example.com"]));
}

#[test]
fn local_mode_without_token() {
    let root = local_host();
    snapshot!("local_no_token", run(root.path(), &["--skip-lxd"]));
}

#[test]
fn local_mode_dry_run_then_run_then_nothing() {
    let zitadel = ZitadelStandIn::start("t0ken", &["admin@example.com"]);
    let root = local_host();
    write(&root.path().join("etc/terrarium/secrets/zitadel-admin-token"), "t0ken\n");
    let url = zitadel.url();
    snapshot!("local_dry_run", run(root.path(), &["--skip-lxd", "--dry-run", "--zitadel-url", &url]));
    snapshot!("local_first_run", run(root.path(), &["--skip-lxd", "--zitadel-url", &url]));
    snapshot!("local_second_run", run(root.path(), &["--skip-lxd", "--zitadel-url", &url]));
}
