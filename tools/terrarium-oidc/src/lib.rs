//! Verify an OIDC issuer before anything depends on it.
//!
//! Four checks, in order, each with its own error:
//!
//! 1. discovery: `GET <issuer>/.well-known/openid-configuration` answers with JSON;
//! 2. the document's `issuer` equals the configured issuer exactly (OIDC Discovery 1.0
//!    §4.3: clients must reject a mismatch, and oauth2-proxy and LXD do);
//! 3. `authorization_endpoint`, `token_endpoint` and `jwks_uri` are present, and the JWKS
//!    answers with at least one key;
//! 4. the client credentials are accepted by the token endpoint.
//!
//! ## How the credential check works
//!
//! There is no standard "check my client secret" endpoint, so we ask the token endpoint
//! for a token with a code that cannot be valid: `grant_type=authorization_code`,
//! `code=terrarium-credential-check-...`, the client authenticated with HTTP basic
//! (`client_secret_basic`, RFC 6749 §2.3.1). RFC 6749 §5.2 orders the checks: a server
//! authenticates the client first, so
//!
//! - `401`, or `error=invalid_client`: the credentials were **rejected**;
//! - `400` with `error=invalid_grant` (the code is bad) or `unauthorized_client` (the
//!   authenticated client may not use this grant): the credentials were **accepted**;
//! - anything else (a 2xx, a 5xx, another error): the answer proves nothing, and we say so.
//!
//! No token can be issued by this request and nothing changes on the provider.

use std::time::Duration;

use serde::Serialize;
use terrarium_common::secret::Secret;

/// The path appended to the issuer for discovery.
pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";

/// The code sent in the credential check; no provider can have issued it.
pub const PROBE_CODE: &str = "terrarium-credential-check-not-a-real-code";

/// How long one request to the issuer may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// An OIDC client: its id and secret.
#[derive(Debug, Clone)]
pub struct ClientCredentials {
    pub client_id: String,
    pub client_secret: Secret,
}

/// The parts of the discovery document Terrarium relies on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Discovery {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub userinfo_endpoint: Option<String>,
    /// `claims_supported`, when the provider publishes it (optional in the spec).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claims_supported: Option<Vec<String>>,
}

impl Discovery {
    /// Whether the provider advertises a `groups` claim: `Some(false)` is worth a
    /// warning, `None` (no `claims_supported`) proves nothing.
    pub fn advertises_groups(&self) -> Option<bool> {
        self.claims_supported.as_ref().map(|claims| claims.iter().any(|c| c == "groups"))
    }
}

/// What a successful verification found.
#[derive(Debug, Clone, Serialize)]
pub struct IssuerReport {
    pub issuer: String,
    pub discovery: Discovery,
    pub jwks_keys: usize,
    /// Whether the client credentials were checked (and so accepted).
    pub credentials_checked: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

/// Why an issuer failed verification.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error(
        "OIDC issuer {issuer} is unreachable ({url}: {reason}); check identity.issuer and that this host can reach it"
    )]
    Unreachable { issuer: String, url: String, reason: String },
    #[error(
        "OIDC discovery at {url} is not usable: {reason}; check that identity.issuer is the issuer URL, not a login page"
    )]
    BadDiscovery { url: String, reason: String },
    #[error(
        "OIDC issuer mismatch: configured {configured:?} but the provider says {advertised:?}; set identity.issuer to exactly {advertised:?}"
    )]
    IssuerMismatch { configured: String, advertised: String },
    #[error("OIDC discovery at {url} has no {field}; the provider must publish it (is this an OAuth2-only server?)")]
    MissingEndpoint { url: String, field: &'static str },
    #[error("JWKS at {url} is unusable: {reason}; the provider's signing keys must be published there")]
    BadJwks { url: String, reason: String },
    #[error(
        "OIDC client {client_id:?} was rejected by {token_endpoint} ({detail}); check identity.client_id and the client secret file"
    )]
    BadCredentials { client_id: String, token_endpoint: String, detail: String },
    #[error(
        "cannot tell whether OIDC client {client_id:?} is accepted: {token_endpoint} answered {detail}; expected invalid_grant (accepted) or invalid_client (rejected)"
    )]
    Inconclusive { client_id: String, token_endpoint: String, detail: String },
}

/// An HTTP agent with Terrarium's timeouts.
pub fn agent(timeout: Duration) -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(timeout)
        .redirects(0)
        .user_agent(concat!("terrarium-idp-sync/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// The discovery URL of an issuer (a trailing `/` is dropped first, as the spec says).
pub fn discovery_url(issuer: &str) -> String {
    format!("{}{DISCOVERY_PATH}", issuer.trim_end_matches('/'))
}

/// Run every check. `client` is skipped when `None` (nothing to check yet).
pub fn verify_issuer(
    agent: &ureq::Agent,
    issuer: &str,
    client: Option<&ClientCredentials>,
) -> Result<IssuerReport, OidcError> {
    let discovery = discover(agent, issuer)?;
    let jwks_keys = check_jwks(agent, issuer, &discovery.jwks_uri)?;
    if let Some(client) = client {
        check_client(agent, &discovery.token_endpoint, client)?;
    }
    Ok(IssuerReport {
        issuer: issuer.to_string(),
        discovery,
        jwks_keys,
        credentials_checked: client.is_some(),
        client_id: client.map(|c| c.client_id.clone()),
    })
}

/// Fetch the discovery document and check the issuer and the required endpoints.
pub fn discover(agent: &ureq::Agent, issuer: &str) -> Result<Discovery, OidcError> {
    let url = discovery_url(issuer);
    let body = get_json(agent, issuer, &url).map_err(|err| match err {
        GetError::Transport(reason) => OidcError::Unreachable { issuer: issuer.to_string(), url: url.clone(), reason },
        GetError::Content(reason) => OidcError::BadDiscovery { url: url.clone(), reason },
    })?;
    parse_discovery(issuer, &url, &body)
}

/// The pure half of [`discover`]: check a parsed discovery document.
pub fn parse_discovery(issuer: &str, url: &str, body: &serde_json::Value) -> Result<Discovery, OidcError> {
    let field =
        |name: &'static str| body.get(name).and_then(|v| v.as_str()).filter(|s| !s.is_empty()).map(str::to_string);
    let advertised = field("issuer").ok_or(OidcError::MissingEndpoint { url: url.to_string(), field: "issuer" })?;
    if advertised != issuer {
        return Err(OidcError::IssuerMismatch { configured: issuer.to_string(), advertised });
    }
    let required =
        |name: &'static str| field(name).ok_or(OidcError::MissingEndpoint { url: url.to_string(), field: name });
    let claims_supported = body
        .get("claims_supported")
        .and_then(|v| v.as_array())
        .map(|claims| claims.iter().filter_map(|c| c.as_str().map(str::to_string)).collect());
    Ok(Discovery {
        issuer: advertised,
        authorization_endpoint: required("authorization_endpoint")?,
        token_endpoint: required("token_endpoint")?,
        jwks_uri: required("jwks_uri")?,
        userinfo_endpoint: field("userinfo_endpoint"),
        claims_supported,
    })
}

/// Fetch the JWKS and count its keys; an empty set is an error (no token could verify).
pub fn check_jwks(agent: &ureq::Agent, issuer: &str, jwks_uri: &str) -> Result<usize, OidcError> {
    let body = get_json(agent, issuer, jwks_uri).map_err(|err| match err {
        GetError::Transport(reason) | GetError::Content(reason) => {
            OidcError::BadJwks { url: jwks_uri.to_string(), reason }
        }
    })?;
    let keys = body
        .get("keys")
        .and_then(|k| k.as_array())
        .ok_or_else(|| OidcError::BadJwks { url: jwks_uri.to_string(), reason: "no \"keys\" array".into() })?;
    let problems: Vec<Option<String>> = keys.iter().map(key_problem).collect();
    let usable = problems.iter().filter(|p| p.is_none()).count();
    if usable == 0 {
        let reason = problems.into_iter().flatten().next().unwrap_or_else(|| "the key set is empty".into());
        return Err(OidcError::BadJwks { url: jwks_uri.to_string(), reason });
    }
    Ok(usable)
}

/// Why a JWK could verify no token, if it could not: no `kty`, or an RSA key whose
/// modulus `n` or exponent `e` is not base64url (RFC 7518 §6.3.1).
fn key_problem(key: &serde_json::Value) -> Option<String> {
    use base64::Engine as _;
    let kid = key.get("kid").and_then(|k| k.as_str()).unwrap_or("(no kid)");
    let Some(kty) = key.get("kty").and_then(|t| t.as_str()) else {
        return Some(format!("key {kid} has no \"kty\""));
    };
    if kty != "RSA" {
        return None;
    }
    for (field, what) in [("n", "modulus"), ("e", "exponent")] {
        let text = key.get(field).and_then(|v| v.as_str()).unwrap_or("");
        let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text.trim_end_matches('='));
        if !decoded.is_ok_and(|bytes| !bytes.is_empty()) {
            return Some(format!("RSA key {kid} has a {what} \"{field}\" that is not base64url"));
        }
    }
    None
}

/// The token endpoint's answer to the probe, classified (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeVerdict {
    Accepted,
    Rejected,
    Inconclusive,
}

/// Classify a token endpoint answer by status and OAuth2 `error` code.
pub fn classify_probe(status: u16, error: Option<&str>) -> ProbeVerdict {
    match (status, error) {
        (_, Some("invalid_client")) | (401, _) => ProbeVerdict::Rejected,
        (400, Some("invalid_grant" | "unauthorized_client")) => ProbeVerdict::Accepted,
        _ => ProbeVerdict::Inconclusive,
    }
}

/// Check the client credentials against the token endpoint (see the module docs).
pub fn check_client(agent: &ureq::Agent, token_endpoint: &str, client: &ClientCredentials) -> Result<(), OidcError> {
    let authorization = basic_auth(&client.client_id, &client.client_secret);
    let result = agent
        .post(token_endpoint)
        .set("Authorization", authorization.expose())
        .set("Accept", "application/json")
        .send_form(&[("grant_type", "authorization_code"), ("code", PROBE_CODE)]);
    let (status, body) = match result {
        Ok(response) => (response.status(), response.into_string().unwrap_or_default()),
        Err(ureq::Error::Status(status, response)) => (status, response.into_string().unwrap_or_default()),
        Err(ureq::Error::Transport(transport)) => {
            return Err(OidcError::Unreachable {
                issuer: token_endpoint.to_string(),
                url: token_endpoint.to_string(),
                reason: transport.to_string(),
            });
        }
    };
    let parsed: Option<serde_json::Value> = serde_json::from_str(&body).ok();
    let error = parsed.as_ref().and_then(|b| b.get("error")).and_then(|e| e.as_str());
    let description = parsed.as_ref().and_then(|b| b.get("error_description")).and_then(|e| e.as_str());
    let detail = match (error, description) {
        (Some(error), Some(description)) => format!("HTTP {status}, {error}: {description}"),
        (Some(error), None) => format!("HTTP {status}, {error}"),
        _ => format!("HTTP {status} without an OAuth2 error"),
    };
    let who = || (client.client_id.clone(), token_endpoint.to_string(), detail.clone());
    match classify_probe(status, error) {
        ProbeVerdict::Accepted => Ok(()),
        ProbeVerdict::Rejected => {
            let (client_id, token_endpoint, detail) = who();
            Err(OidcError::BadCredentials { client_id, token_endpoint, detail })
        }
        ProbeVerdict::Inconclusive => {
            let (client_id, token_endpoint, detail) = who();
            Err(OidcError::Inconclusive { client_id, token_endpoint, detail })
        }
    }
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))`, as RFC 6749 §2.3.1 asks.
pub fn basic_auth(client_id: &str, client_secret: &Secret) -> Secret {
    use base64::Engine as _;
    let pair = format!("{}:{}", form_encode(client_id), form_encode(client_secret.expose()));
    Secret::new(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair)))
}

/// `application/x-www-form-urlencoded` encoding of one value.
pub fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => out.push(char::from(byte)),
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

enum GetError {
    /// The server could not be reached at all.
    Transport(String),
    /// It answered, but not with a JSON document.
    Content(String),
}

fn get_json(agent: &ureq::Agent, _issuer: &str, url: &str) -> Result<serde_json::Value, GetError> {
    match agent.get(url).set("Accept", "application/json").call() {
        Ok(response) => {
            response.into_json::<serde_json::Value>().map_err(|err| GetError::Content(format!("not JSON ({err})")))
        }
        Err(ureq::Error::Status(status, _)) => Err(GetError::Content(format!("HTTP {status}"))),
        Err(ureq::Error::Transport(transport)) => Err(GetError::Transport(transport.to_string())),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(issuer: &str) -> serde_json::Value {
        json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": format!("{issuer}/token"),
            "jwks_uri": format!("{issuer}/keys"),
        })
    }

    #[test]
    fn a_matching_document_is_accepted() {
        let found = parse_discovery("https://id.example", "u", &doc("https://id.example")).unwrap();
        assert_eq!(found.token_endpoint, "https://id.example/token");
        assert_eq!(found.advertises_groups(), None);
    }

    #[test]
    fn a_mismatch_names_both_issuers() {
        let err = parse_discovery("https://id.example/", "u", &doc("https://id.example")).unwrap_err();
        let shown = err.to_string();
        assert!(matches!(err, OidcError::IssuerMismatch { .. }));
        assert!(shown.contains("\"https://id.example/\"") && shown.contains("\"https://id.example\""), "{shown}");
    }

    #[test]
    fn each_required_endpoint_is_named_when_missing() {
        for field in ["authorization_endpoint", "token_endpoint", "jwks_uri"] {
            let mut body = doc("https://id.example");
            body.as_object_mut().unwrap().remove(field);
            let err = parse_discovery("https://id.example", "u", &body).unwrap_err();
            assert!(matches!(err, OidcError::MissingEndpoint { field: f, .. } if f == field), "{err}");
        }
    }

    #[test]
    fn probe_answers_are_classified_by_rfc_6749() {
        assert_eq!(classify_probe(401, Some("invalid_client")), ProbeVerdict::Rejected);
        assert_eq!(classify_probe(400, Some("invalid_client")), ProbeVerdict::Rejected);
        assert_eq!(classify_probe(401, None), ProbeVerdict::Rejected);
        assert_eq!(classify_probe(400, Some("invalid_grant")), ProbeVerdict::Accepted);
        assert_eq!(classify_probe(400, Some("unauthorized_client")), ProbeVerdict::Accepted);
        assert_eq!(classify_probe(200, None), ProbeVerdict::Inconclusive);
        assert_eq!(classify_probe(500, Some("server_error")), ProbeVerdict::Inconclusive);
        assert_eq!(classify_probe(400, Some("invalid_request")), ProbeVerdict::Inconclusive);
    }

    #[test]
    fn basic_auth_form_encodes_before_base64() {
        // "a b:c:d" form-encoded is "a+b:c%3Ad"; base64 of that.
        let header = basic_auth("a b", &Secret::new("c:d"));
        assert_eq!(header.expose(), "Basic YStiOmMlM0Fk");
        assert_eq!(format!("{header:?}"), "Secret(<redacted>)");
    }

    #[test]
    fn the_discovery_url_drops_one_trailing_slash() {
        assert_eq!(discovery_url("https://id.example/"), "https://id.example/.well-known/openid-configuration");
        assert_eq!(
            discovery_url("https://id.example/realms/x"),
            "https://id.example/realms/x/.well-known/openid-configuration"
        );
    }
}
