//! The issuer checks of `terrarium_oidc` against a real HTTP server on
//! loopback (`terrarium_testkit::oidc_issuer::TestIssuer`, a stand-in for an external
//! provider, which cannot run here).

#![allow(clippy::unwrap_used)]

use terrarium_common::secret::Secret;
use terrarium_oidc::{self as oidc, ClientCredentials, OidcError};
use terrarium_testkit::oidc_issuer::{IssuerMode, TestIssuer};

fn client(issuer: &TestIssuer) -> ClientCredentials {
    ClientCredentials { client_id: issuer.client_id().to_string(), client_secret: Secret::new(issuer.client_secret()) }
}

fn agent() -> ureq::Agent {
    oidc::agent(std::time::Duration::from_secs(5))
}

#[test]
fn a_good_issuer_passes_every_check() {
    let issuer = TestIssuer::start(IssuerMode::Good);
    let report = oidc::verify_issuer(&agent(), &issuer.issuer(), Some(&client(&issuer))).unwrap();
    assert_eq!(report.discovery.token_endpoint, issuer.token_endpoint());
    assert_eq!(report.jwks_keys, 1);
    assert!(report.credentials_checked);
    assert_eq!(report.discovery.advertises_groups(), Some(true));
    let paths: Vec<_> = issuer.requests().into_iter().map(|r| (r.method, r.path, r.authorized)).collect();
    assert_eq!(
        paths,
        [
            ("GET".to_string(), "/.well-known/openid-configuration".to_string(), false),
            ("GET".to_string(), "/keys".to_string(), false),
            ("POST".to_string(), "/oauth/token".to_string(), true),
        ]
    );
}

#[test]
fn a_wrong_secret_is_reported_as_bad_credentials() {
    let issuer = TestIssuer::start(IssuerMode::Good);
    let wrong =
        ClientCredentials { client_id: issuer.client_id().to_string(), client_secret: Secret::new("not-the-secret") };
    let err = oidc::verify_issuer(&agent(), &issuer.issuer(), Some(&wrong)).unwrap_err();
    assert!(matches!(err, OidcError::BadCredentials { .. }), "{err}");
    assert!(err.to_string().contains("invalid_client"), "{err}");
    assert!(!err.to_string().contains("not-the-secret"), "the secret leaked into the error: {err}");
}

#[test]
fn a_rejecting_issuer_is_reported_as_bad_credentials() {
    let issuer = TestIssuer::start(IssuerMode::RejectCredentials);
    let err = oidc::verify_issuer(&agent(), &issuer.issuer(), Some(&client(&issuer))).unwrap_err();
    assert!(matches!(err, OidcError::BadCredentials { .. }), "{err}");
}

#[test]
fn an_issuer_mismatch_shows_both_values() {
    let issuer = TestIssuer::start(IssuerMode::WrongIssuer);
    let err = oidc::verify_issuer(&agent(), &issuer.issuer(), Some(&client(&issuer))).unwrap_err();
    match &err {
        OidcError::IssuerMismatch { configured, advertised } => {
            assert_eq!(configured, &issuer.issuer());
            assert_eq!(advertised, &issuer.wrong_issuer());
        }
        other => panic!("expected a mismatch, got {other}"),
    }
    // Discovery failed, so no credential was sent anywhere.
    assert!(issuer.requests().iter().all(|r| !r.authorized));
}

#[test]
fn a_stopped_issuer_is_unreachable() {
    let issuer = TestIssuer::start(IssuerMode::Good);
    let url = issuer.issuer();
    drop(issuer);
    let err = oidc::verify_issuer(&agent(), &url, None).unwrap_err();
    assert!(matches!(err, OidcError::Unreachable { .. }), "{err}");
    assert!(err.to_string().contains(&url), "{err}");
}

#[test]
fn a_path_that_is_not_an_issuer_is_bad_discovery() {
    let issuer = TestIssuer::start(IssuerMode::Good);
    let err = oidc::verify_issuer(&agent(), &format!("{}/login", issuer.issuer()), None).unwrap_err();
    assert!(matches!(err, OidcError::BadDiscovery { .. }), "{err}");
}
