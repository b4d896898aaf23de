//! The real network checks behind [`crate::preflight`]'s traits: the OIDC issuer
//! checks of `terrarium-idp-sync` and the S3 probe of `terrarium-backup`.

use terrarium_common::config::S3;
use terrarium_common::secret::Secret;
use terrarium_idp_sync::oidc;

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
    fn probe(&self, _s3: &S3, _secret: &Secret) -> Result<(), String> {
        Err("the S3 probe is not available in this build".into())
    }
}

static NETWORK: NetworkVerifiers = NetworkVerifiers;

/// The verifiers of a real run.
pub fn network() -> Verifiers<'static> {
    Verifiers { oidc: &NETWORK, s3: &NETWORK }
}
