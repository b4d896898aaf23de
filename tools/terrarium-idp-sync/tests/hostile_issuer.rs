//! An external issuer that serves malformed discovery or JWKS documents: each is
//! refused with exit 5 (docs/identity.md, "External mode") and an error naming what is
//! wrong, never a panic and never a pass.

#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use assert_cmd::Command;
use terrarium_testkit::oidc_issuer::{IssuerMode, TestIssuer};

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// Run the real binary against an issuer in `mode`; its exit code and stderr.
fn verify_against(mode: IssuerMode) -> (Option<i32>, String, TestIssuer) {
    let issuer = TestIssuer::start(mode);
    let root = tempfile::tempdir().unwrap();
    let config = format!(
        "schema_version: 2\ndomains:\n  manage: manage.example.com\n  proxy: proxy.example.com\n  lxd: lxd.example.com\n  auth: auth.example.com\nemails:\n  contact: ops@example.com\n  acme: acme@example.com\nidentity:\n  mode: oidc\n  issuer: https://id.example.com\n  client_id: {}\n  client_secret_file: /etc/terrarium/secrets/oidc-client-secret\nstorage:\n  mode: file\n",
        issuer.client_id()
    );
    write(&root.path().join("etc/terrarium/config.yaml"), &config);
    write(&root.path().join("etc/terrarium/secrets/oidc-client-secret"), &format!("{}\n", issuer.client_secret()));
    let output = Command::cargo_bin("terrarium-idp-sync")
        .unwrap()
        .arg("--root")
        .arg(root.path())
        .args(["--skip-lxd", "--issuer", &issuer.issuer()])
        .env("TERRARIUM_LOG_FORMAT", "human")
        .output()
        .unwrap();
    (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned(), issuer)
}

fn assert_refused(mode: IssuerMode, expected: &[&str]) -> TestIssuer {
    let (code, stderr, issuer) = verify_against(mode);
    assert!(!stderr.contains("panicked"), "{mode:?}: a panic: {stderr}");
    assert_eq!(code, Some(5), "{mode:?} must fail the issuer verification: {stderr}");
    for part in expected {
        assert!(stderr.contains(part), "{mode:?}: the error must say {part:?}: {stderr}");
    }
    // A malformed issuer never gets the client's credentials.
    assert!(issuer.requests().iter().all(|r| !r.authorized), "{mode:?}: credentials sent: {:?}", issuer.requests());
    issuer
}

#[test]
fn discovery_that_is_not_json_is_refused() {
    assert_refused(IssuerMode::DiscoveryNotJson, &["/.well-known/openid-configuration", "is not usable"]);
}

#[test]
fn discovery_without_jwks_uri_is_refused() {
    assert_refused(IssuerMode::DiscoveryWithoutJwksUri, &["has no jwks_uri"]);
}

#[test]
fn discovery_naming_another_issuer_is_refused() {
    let issuer = assert_refused(IssuerMode::WrongIssuer, &["issuer mismatch"]);
    assert_eq!(issuer.requests().len(), 1, "nothing after the discovery document: {:?}", issuer.requests());
}

#[test]
fn jwks_that_is_not_json_is_refused() {
    assert_refused(IssuerMode::JwksNotJson, &["JWKS at", "/keys is unusable"]);
}

#[test]
fn jwks_without_keys_is_refused() {
    assert_refused(IssuerMode::JwksWithoutKeys, &["/keys is unusable", "the key set is empty"]);
}

#[test]
fn jwks_whose_only_key_has_a_bad_modulus_is_refused() {
    assert_refused(IssuerMode::JwksBadModulus, &["/keys is unusable", "modulus \"n\" that is not base64url"]);
}
