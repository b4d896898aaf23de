//! The real network checks behind [`crate::preflight`]'s traits: the OIDC issuer
//! checks of `terrarium-oidc` and the S3 probe of `terrarium-archive`, under the
//! host name exports use.

use std::time::Duration;

use terrarium_archive::s3::{S3Settings, Store, Tuning};
use terrarium_common::config::S3;
use terrarium_common::secret::Secret;
use terrarium_oidc as oidc;

use crate::preflight::{OidcVerifier, S3Verifier, Verifiers};

/// The region signed with when none is configured (what most S3-compatible stores accept).
pub const DEFAULT_REGION: &str = "us-east-1";

/// Checks over the network: the OIDC issuer and the S3 bucket.
#[derive(Debug, Default)]
pub struct NetworkVerifiers;

impl OidcVerifier for NetworkVerifiers {
    fn verify(&self, issuer: &str, client_id: &str, secret: &Secret) -> Result<(), String> {
        let agent = oidc::agent(oidc::DEFAULT_TIMEOUT);
        let client = oidc::ClientCredentials { client_id: client_id.to_string(), client_secret: secret.clone() };
        oidc::verify_issuer(&agent, issuer, Some(&client)).map(|_| ()).map_err(|err| err.to_string())
    }
}

impl S3Verifier for NetworkVerifiers {
    fn probe(&self, s3: &S3, secret: &Secret, host: &str) -> Result<(), String> {
        let settings = S3Settings {
            endpoint: s3.endpoint.clone().unwrap_or_default(),
            bucket: s3.bucket.clone().unwrap_or_default(),
            region: s3.region.clone().unwrap_or_else(|| DEFAULT_REGION.to_string()),
            prefix: s3.prefix.clone(),
            access_key: s3.access_key.clone().unwrap_or_default(),
            secret_key: secret.clone(),
            // A preflight answers quickly: few retries, short timeouts.
            tuning: Tuning {
                max_attempts: 2,
                initial_backoff: Duration::from_millis(200),
                connect_timeout: Duration::from_secs(5),
                read_timeout: Duration::from_secs(20),
                ..Tuning::default()
            },
        };
        let store = Store::new(&settings).map_err(|err| err.to_string())?;
        let keys = store.keys(host);
        // Listing first: backups need it, and some S3 servers create a missing bucket
        // on PUT instead of refusing it.
        store.list(&keys.host_prefix()).map_err(|err| err.to_string())?;
        store.probe(&keys).map_err(|err| err.to_string())
    }
}

static NETWORK: NetworkVerifiers = NetworkVerifiers;

/// The verifiers of a real run.
pub fn network() -> Verifiers<'static> {
    Verifiers { oidc: &NETWORK, s3: &NETWORK }
}
