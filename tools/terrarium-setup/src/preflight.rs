//! Checks before anything is written: the OS, the external OIDC issuer and client, the
//! S3 bucket. The network checks sit behind small traits so the decision logic is
//! tested with stand-ins and the real checks with a loopback issuer and s3s-fs.

use terrarium_common::config::{IdentityMode, S3};
use terrarium_common::secret::Secret;
use terrarium_common::{Config, Paths};

/// Checks an external OIDC issuer: discovery document, issuer match, endpoints,
/// client credentials accepted.
pub trait OidcVerifier {
    fn verify(&self, issuer: &str, client_id: &str, secret: &Secret) -> Result<(), String>;
}

/// Writes and deletes a probe object in the configured bucket.
pub trait S3Verifier {
    fn probe(&self, s3: &S3, secret: &Secret, host: &str) -> Result<(), String>;
}

/// The verifiers a run uses.
#[derive(Clone, Copy)]
pub struct Verifiers<'a> {
    pub oidc: &'a dyn OidcVerifier,
    pub s3: &'a dyn S3Verifier,
}

impl std::fmt::Debug for Verifiers<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Verifiers")
    }
}

/// A failed check. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    #[error("{0} (override with --allow-unsupported-os only for tests)")]
    Os(String),
    #[error("OIDC check of {issuer} failed: {message}; check --oidc, --oidc-client and the client secret")]
    Oidc { issuer: String, message: String },
    #[error(
        "S3 probe of bucket `{bucket}` at {endpoint} failed: {message}; check the --s3-* settings and the key's write permission"
    )]
    S3 { endpoint: String, bucket: String, message: String },
    #[error("{0}")]
    Secret(#[from] terrarium_common::config::ConfigError),
}

/// Check the identity settings of `config`. Local mode has nothing to check before
/// ZITADEL is deployed. `new_secret` is a secret not yet persisted.
pub fn verify_identity(
    config: &Config,
    paths: &Paths,
    new_secret: Option<&Secret>,
    verifiers: Verifiers<'_>,
) -> Result<(), PreflightError> {
    let identity = &config.identity;
    if identity.mode == IdentityMode::Local {
        return Ok(());
    }
    let issuer = config.issuer();
    let client_id = identity.client_id.clone().unwrap_or_default();
    let secret = match (new_secret, &identity.client_secret_file) {
        (Some(secret), _) => secret.clone(),
        (None, Some(file)) => config.read_secret(paths, "identity.client_secret_file", file)?,
        (None, None) => {
            return Err(PreflightError::Oidc { issuer, message: "no client secret was given".into() });
        }
    };
    log::info!(issuer = issuer.as_str(); "checking the OIDC issuer");
    verifiers.oidc.verify(&issuer, &client_id, &secret).map_err(|message| PreflightError::Oidc { issuer, message })
}

/// Probe the S3 bucket of `config` when S3 export is enabled.
pub fn verify_s3(
    config: &Config,
    paths: &Paths,
    new_secret: Option<&Secret>,
    verifiers: Verifiers<'_>,
) -> Result<(), PreflightError> {
    let s3 = &config.s3;
    if !s3.enabled {
        return Ok(());
    }
    let endpoint = s3.endpoint.clone().unwrap_or_default();
    let bucket = s3.bucket.clone().unwrap_or_default();
    let secret = match (new_secret, &s3.secret_key_file) {
        (Some(secret), _) => secret.clone(),
        (None, Some(file)) => config.read_secret(paths, "s3.secret_key_file", file)?,
        (None, None) => {
            return Err(PreflightError::S3 { endpoint, bucket, message: "no secret key was given".into() });
        }
    };
    log::info!(endpoint = endpoint.as_str(), bucket = bucket.as_str(); "probing the S3 bucket");
    let host = terrarium_archive::keys::host_name(paths).map_err(|err| PreflightError::S3 {
        endpoint: endpoint.clone(),
        bucket: bucket.clone(),
        message: err.to_string(),
    })?;
    verifiers.s3.probe(s3, &secret, &host).map_err(|message| PreflightError::S3 { endpoint, bucket, message })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// Stand-ins recording what they were asked; the real checks are tested against
    /// a loopback issuer and s3s-fs in tests/preflight.rs.
    struct Recorder {
        answer: Result<(), String>,
        calls: RefCell<Vec<String>>,
    }

    impl OidcVerifier for Recorder {
        fn verify(&self, issuer: &str, client_id: &str, secret: &Secret) -> Result<(), String> {
            self.calls.borrow_mut().push(format!("{issuer} {client_id} {}", secret.expose()));
            self.answer.clone()
        }
    }

    impl S3Verifier for Recorder {
        fn probe(&self, s3: &S3, secret: &Secret, _host: &str) -> Result<(), String> {
            self.calls.borrow_mut().push(format!("{} {}", s3.bucket.as_deref().unwrap_or(""), secret.expose()));
            self.answer.clone()
        }
    }

    fn config() -> Config {
        Config::from_yaml(
            "schema_version: 2\ndomains: {manage: m.example.com, proxy: p.example.com, lxd: l.example.com, auth: a.example.com}\n\
             emails: {contact: o@example.com, acme: o@example.com}\n\
             identity: {mode: oidc, issuer: 'https://id.example.com', client_id: c1, client_secret_file: /etc/terrarium/secrets/oidc-client-secret}\n\
             storage: {mode: file}\n\
             s3: {enabled: true, endpoint: 'http://127.0.0.1:1', bucket: bkt, access_key: ak, secret_key_file: /etc/terrarium/secrets/s3-secret-key}\n",
            "test",
        )
        .unwrap()
    }

    #[test]
    fn a_new_secret_is_checked_before_the_persisted_one() {
        let ok = Recorder { answer: Ok(()), calls: RefCell::new(Vec::new()) };
        let verifiers = Verifiers { oidc: &ok, s3: &ok };
        let paths = Paths::new("/nonexistent");
        verify_identity(&config(), &paths, Some(&Secret::new("new")), verifiers).unwrap();
        verify_s3(&config(), &paths, Some(&Secret::new("key")), verifiers).unwrap();
        assert_eq!(*ok.calls.borrow(), vec!["https://id.example.com c1 new".to_string(), "bkt key".to_string()]);
    }

    #[test]
    fn failures_name_what_was_checked_and_never_the_secret() {
        let bad = Recorder { answer: Err("invalid_client".into()), calls: RefCell::new(Vec::new()) };
        let verifiers = Verifiers { oidc: &bad, s3: &bad };
        let paths = Paths::new("/nonexistent");
        let err = verify_identity(&config(), &paths, Some(&Secret::new("hunter2")), verifiers).unwrap_err().to_string();
        assert!(
            err.contains("https://id.example.com") && err.contains("invalid_client") && !err.contains("hunter2"),
            "{err}"
        );
        let err = verify_s3(&config(), &paths, Some(&Secret::new("hunter2")), verifiers).unwrap_err().to_string();
        assert!(err.contains("`bkt`") && !err.contains("hunter2"), "{err}");
    }

    #[test]
    fn a_missing_persisted_secret_is_reported_with_its_key() {
        let ok = Recorder { answer: Ok(()), calls: RefCell::new(Vec::new()) };
        let err = verify_s3(&config(), &Paths::new("/nonexistent"), None, Verifiers { oidc: &ok, s3: &ok })
            .unwrap_err()
            .to_string();
        assert!(err.contains("s3.secret_key_file"), "{err}");
        assert!(ok.calls.borrow().is_empty());
    }

    #[test]
    fn local_mode_and_disabled_s3_check_nothing() {
        let ok = Recorder { answer: Err("must not be called".into()), calls: RefCell::new(Vec::new()) };
        let mut config = config();
        config.identity = terrarium_common::config::Identity {
            mode: IdentityMode::Local,
            issuer: None,
            client_id: None,
            client_secret_file: None,
            admin_group: "terrarium-admins".into(),
            client_secret: None,
        };
        config.s3.enabled = false;
        let verifiers = Verifiers { oidc: &ok, s3: &ok };
        verify_identity(&config, &Paths::new("/x"), None, verifiers).unwrap();
        verify_s3(&config, &Paths::new("/x"), None, verifiers).unwrap();
    }
}
