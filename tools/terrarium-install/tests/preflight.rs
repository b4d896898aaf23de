//! The real preflight checks: OIDC against a loopback test issuer (testkit
//! `TestIssuer`: good, wrong issuer, rejected credentials) and the S3 probe against
//! s3s-fs (good, wrong secret, missing bucket), through the library and through the
//! install and set binaries (nothing is written when a check fails).

#![allow(clippy::unwrap_used)]

mod common;

use terrarium_common::config::S3;
use terrarium_common::secret::Secret;
use terrarium_setup::preflight::{OidcVerifier, S3Verifier};
use terrarium_setup::verify::NetworkVerifiers;
use terrarium_testkit::S3Server;
use terrarium_testkit::oidc_issuer::{IssuerMode, TestIssuer};

#[test]
fn oidc_good_issuer_is_accepted() {
    let issuer = TestIssuer::start(IssuerMode::Good);
    NetworkVerifiers.verify(&issuer.issuer(), issuer.client_id(), &Secret::new(issuer.client_secret())).unwrap();
}

#[test]
fn oidc_wrong_issuer_is_refused_naming_both() {
    let issuer = TestIssuer::start(IssuerMode::WrongIssuer);
    let err = NetworkVerifiers
        .verify(&issuer.issuer(), issuer.client_id(), &Secret::new(issuer.client_secret()))
        .unwrap_err();
    assert!(err.contains("mismatch") && err.contains(&issuer.wrong_issuer()), "{err}");
}

#[test]
fn oidc_rejected_credentials_are_refused_without_the_secret() {
    let issuer = TestIssuer::start(IssuerMode::RejectCredentials);
    let err =
        NetworkVerifiers.verify(&issuer.issuer(), issuer.client_id(), &Secret::new("wrong-secret-value")).unwrap_err();
    assert!(err.contains("rejected") && !err.contains("wrong-secret-value"), "{err}");
}

fn s3_settings(server: &S3Server, bucket: &str) -> S3 {
    S3 {
        enabled: true,
        endpoint: Some(server.endpoint()),
        bucket: Some(bucket.to_string()),
        region: Some(server.region().to_string()),
        prefix: Some("preflight".into()),
        access_key: Some(server.access_key().to_string()),
        secret_key_file: None,
        secret_key: None,
        encryption: Default::default(),
    }
}

/// Every object left in the bucket (the probe must delete its object).
fn objects(server: &S3Server) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![server.data_dir().join(server.bucket())];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                found.push(path.display().to_string());
            }
        }
    }
    found
}

#[test]
fn s3_probe_writes_and_deletes_and_names_bad_settings() {
    let server = S3Server::start();
    NetworkVerifiers
        .probe(&s3_settings(&server, server.bucket()), &Secret::new(server.secret_key()), "preflight-host")
        .unwrap();
    let left: Vec<String> = objects(&server).into_iter().filter(|p| !p.contains(".s3s-fs")).collect();
    assert!(left.is_empty(), "the probe object was not deleted: {left:?}");

    let err = NetworkVerifiers
        .probe(&s3_settings(&server, server.bucket()), &Secret::new("not-the-secret"), "preflight-host")
        .unwrap_err();
    assert!(err.contains("credentials") || err.contains("SignatureDoesNotMatch") || err.contains("denied"), "{err}");
    assert!(!err.contains("not-the-secret"));

    let err = NetworkVerifiers
        .probe(&s3_settings(&server, "no-such-bucket"), &Secret::new(server.secret_key()), "preflight-host")
        .unwrap_err();
    assert!(err.contains("no-such-bucket"), "{err}");
}

fn install_with_s3(root: &std::path::Path, server: &S3Server, secret: &str) -> std::process::Output {
    assert_cmd::Command::cargo_bin("terrarium-install")
        .unwrap()
        .arg("--root")
        .arg(root)
        .args([
            "--non-interactive",
            "--render-only",
            "--domain",
            "example.com",
            "--idp",
            "local",
            "--storage-mode",
            "file",
            "--email",
            "ops@example.com",
        ])
        .args([
            "--enable-s3",
            "--s3-endpoint",
            &server.endpoint(),
            "--s3-bucket",
            server.bucket(),
            "--s3-region",
            server.region(),
            "--s3-access-key",
            server.access_key(),
        ])
        .env("TERRARIUM_S3_SECRET_KEY", secret)
        .env("TERRARIUM_LOG_FORMAT", "logfmt")
        .output()
        .unwrap()
}

#[test]
fn install_persists_s3_only_after_the_probe_passed() {
    let server = S3Server::start();
    let root = common::ubuntu_root();
    let bad = install_with_s3(root.path(), &server, "not-the-secret");
    assert_eq!(bad.status.code(), Some(5), "{}", String::from_utf8_lossy(&bad.stderr));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("S3 probe of bucket") && !stderr.contains("not-the-secret"), "{stderr}");
    assert!(!root.path().join("etc/terrarium").exists(), "a failed probe wrote something");

    let good = install_with_s3(root.path(), &server, server.secret_key());
    assert_eq!(good.status.code(), Some(0), "{}", String::from_utf8_lossy(&good.stderr));
    let secret = std::fs::read_to_string(root.path().join("etc/terrarium/secrets/s3-secret-key")).unwrap();
    assert_eq!(secret, server.secret_key());
    let config = std::fs::read_to_string(root.path().join("etc/terrarium/config.yaml")).unwrap();
    assert!(
        config.contains("secret_key_file: /etc/terrarium/secrets/s3-secret-key")
            && !config.contains(server.secret_key()),
        "{config}"
    );
}
