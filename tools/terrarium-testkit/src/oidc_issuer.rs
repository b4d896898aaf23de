//! A local OIDC issuer for tests: a real HTTP server on 127.0.0.1 with a random port.
//!
//! No OIDC provider runs on the test machine, so this is a small stand-in that speaks
//! the parts of the protocol Terrarium checks before it trusts an issuer:
//!
//! - `GET /.well-known/openid-configuration`: the discovery document (OIDC Discovery 1.0);
//! - `GET /keys`: a JWKS with one RSA public key;
//! - `POST /oauth/token`: a token endpoint that authenticates the client with HTTP basic
//!   (`client_secret_basic`, RFC 6749 §2.3.1) and never issues a token. Its answers follow
//!   RFC 6749 §5.2, client authentication first:
//!   - wrong or missing credentials: `401` with `{"error":"invalid_client"}` and a
//!     `WWW-Authenticate: Basic` header;
//!   - a bad request (no `grant_type`/`code`): `400 invalid_request`;
//!   - right credentials, any code: `400 invalid_grant` (no code is ever valid here).
//!
//! So a `400 invalid_grant` proves the credentials were accepted; see
//! `terrarium_oidc` for the client side of that contract.
//!
//! Modes ([`IssuerMode`]): a good issuer, one whose discovery document names another
//! issuer (the classic `localhost` vs `127.0.0.1` mistake), one that rejects every
//! client, and hostile ones serving a malformed discovery document (not JSON, no
//! `jwks_uri`) or JWKS (not JSON, no keys, a key whose modulus is not base64url). Every request is recorded ([`TestIssuer::requests`]). The server stops when
//! the value is dropped.

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// How the issuer behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssuerMode {
    /// Discovery matches, JWKS has a key, the configured client is accepted.
    Good,
    /// The discovery document's `issuer` is `http://localhost:PORT`, not the URL served.
    WrongIssuer,
    /// Every client is answered `401 invalid_client`.
    RejectCredentials,
    /// The discovery document is an HTML page (what a login page behind the URL gives).
    DiscoveryNotJson,
    /// The discovery document has every field but `jwks_uri`.
    DiscoveryWithoutJwksUri,
    /// The JWKS is an HTML page.
    JwksNotJson,
    /// The JWKS is `{"keys": []}`.
    JwksWithoutKeys,
    /// The JWKS's only key is an RSA key whose `n` is not base64url.
    JwksBadModulus,
}

/// One request the issuer received: method, path (with query) and whether it carried
/// an `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerRequest {
    pub method: String,
    pub path: String,
    pub authorized: bool,
}

/// The issuer; see the module docs.
pub struct TestIssuer {
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
    port: u16,
    client_id: String,
    client_secret: String,
    requests: Arc<Mutex<Vec<IssuerRequest>>>,
}

/// The default client the issuer accepts.
pub const TEST_CLIENT_ID: &str = "terrarium-test-client";
pub const TEST_CLIENT_SECRET: &str = "terrarium-test-secret:with/odd chars";

impl TestIssuer {
    /// Start an issuer accepting [`TEST_CLIENT_ID`] / [`TEST_CLIENT_SECRET`].
    pub fn start(mode: IssuerMode) -> Self {
        Self::start_with_client(mode, TEST_CLIENT_ID, TEST_CLIENT_SECRET)
    }

    /// Start an issuer accepting the given client.
    pub fn start_with_client(mode: IssuerMode, client_id: &str, client_secret: &str) -> Self {
        Self::start_behind(mode, client_id, client_secret, None)
    }

    /// Start an issuer that names `public_base` (such as `https://id.example.test`) in
    /// its discovery document: for clients that reach it through a TLS terminator or a
    /// forward (the VM suite's guest), not on 127.0.0.1 directly.
    pub fn start_behind(mode: IssuerMode, client_id: &str, client_secret: &str, public_base: Option<&str>) -> Self {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind the test OIDC issuer on 127.0.0.1"));
        let port = server.server_addr().to_ip().expect("the test issuer listens on IP").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let state = State {
            mode,
            base: public_base
                .map_or_else(|| format!("http://127.0.0.1:{port}"), |base| base.trim_end_matches('/').to_string()),
            port,
            expected_authorization: basic_auth(client_id, client_secret),
            requests: Arc::clone(&requests),
        };
        let serving = Arc::clone(&server);
        let thread = std::thread::Builder::new()
            .name(format!("test-oidc-issuer-{port}"))
            .spawn(move || {
                for request in serving.incoming_requests() {
                    state.answer(request);
                }
            })
            .expect("start the test OIDC issuer thread");
        Self {
            server,
            thread: Some(thread),
            port,
            client_id: client_id.to_string(),
            client_secret: client_secret.to_string(),
            requests,
        }
    }

    /// The issuer URL (`http://127.0.0.1:PORT`, no trailing slash).
    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
    pub fn port(&self) -> u16 {
        self.port
    }
    /// The `issuer` the discovery document names in [`IssuerMode::WrongIssuer`].
    pub fn wrong_issuer(&self) -> String {
        format!("http://localhost:{}", self.port)
    }
    pub fn client_id(&self) -> &str {
        &self.client_id
    }
    pub fn client_secret(&self) -> &str {
        &self.client_secret
    }
    pub fn token_endpoint(&self) -> String {
        format!("{}/oauth/token", self.issuer())
    }
    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<IssuerRequest> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl std::fmt::Debug for TestIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestIssuer")
            .field("issuer", &self.issuer())
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl Drop for TestIssuer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct State {
    mode: IssuerMode,
    base: String,
    port: u16,
    expected_authorization: String,
    requests: Arc<Mutex<Vec<IssuerRequest>>>,
}

impl State {
    fn answer(&self, mut request: tiny_http::Request) {
        let authorization =
            request.headers().iter().find(|h| h.field.equiv("Authorization")).map(|h| h.value.as_str().to_string());
        let method = request.method().as_str().to_string();
        let path = request.url().to_string();
        if let Ok(mut log) = self.requests.lock() {
            log.push(IssuerRequest { method: method.clone(), path: path.clone(), authorized: authorization.is_some() });
        }
        let mut body = String::new();
        let _ = std::io::Read::read_to_string(request.as_reader(), &mut body);
        let route = path.split('?').next().unwrap_or("");
        let not_json = matches!(
            (self.mode, route),
            (IssuerMode::DiscoveryNotJson, "/.well-known/openid-configuration") | (IssuerMode::JwksNotJson, "/keys")
        );
        if not_json && method == "GET" {
            let page = "<!doctype html><html><body>Sign in</body></html>";
            let response = tiny_http::Response::from_string(page).with_header(header("Content-Type", "text/html"));
            let _ = request.respond(response);
            return;
        }
        let (status, json, extra) = match (method.as_str(), route) {
            ("GET", "/.well-known/openid-configuration") => (200, self.discovery(), None),
            ("GET", "/keys") => (200, jwks(self.mode), None),
            ("POST", "/oauth/token") => self.token(authorization.as_deref(), &body),
            _ => (404, serde_json::json!({"error": "not_found"}), None),
        };
        let mut response = tiny_http::Response::from_string(json.to_string())
            .with_status_code(status)
            .with_header(header("Content-Type", "application/json"));
        if let Some((name, value)) = extra {
            response = response.with_header(header(name, value));
        }
        let _ = request.respond(response);
    }

    fn discovery(&self) -> serde_json::Value {
        let issuer = match self.mode {
            IssuerMode::WrongIssuer => format!("http://localhost:{}", self.port),
            _ => self.base.clone(),
        };
        let mut document = serde_json::json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{}/oauth/authorize", self.base),
            "token_endpoint": format!("{}/oauth/token", self.base),
            "userinfo_endpoint": format!("{}/oidc/userinfo", self.base),
            "jwks_uri": format!("{}/keys", self.base),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            "scopes_supported": ["openid", "profile", "email", "groups"],
            "claims_supported": ["sub", "email", "name", "groups"],
        });
        if self.mode == IssuerMode::DiscoveryWithoutJwksUri
            && let Some(fields) = document.as_object_mut()
        {
            fields.remove("jwks_uri");
        }
        document
    }

    fn token(
        &self,
        authorization: Option<&str>,
        body: &str,
    ) -> (u16, serde_json::Value, Option<(&'static str, &'static str)>) {
        let accepted =
            self.mode != IssuerMode::RejectCredentials && authorization == Some(self.expected_authorization.as_str());
        if !accepted {
            let error =
                serde_json::json!({"error": "invalid_client", "error_description": "client authentication failed"});
            return (401, error, Some(("WWW-Authenticate", "Basic realm=\"token\"")));
        }
        let form: Vec<(&str, &str)> = body.split('&').filter_map(|pair| pair.split_once('=')).collect();
        let grant = form.iter().find(|(k, _)| *k == "grant_type").map(|(_, v)| *v);
        let has_code = form.iter().any(|(k, v)| *k == "code" && !v.is_empty());
        if grant != Some("authorization_code") || !has_code {
            return (
                400,
                serde_json::json!({"error": "invalid_request", "error_description": "grant_type=authorization_code and code are required"}),
                None,
            );
        }
        (
            400,
            serde_json::json!({"error": "invalid_grant", "error_description": "the code is invalid or expired"}),
            None,
        )
    }
}

fn header(name: &str, value: &str) -> tiny_http::Header {
    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("a valid static header")
}

/// One RSA public key (a 2048-bit modulus from `openssl genrsa`, private half discarded). The issuer never signs
/// anything; Terrarium only checks that keys are published.
fn jwks(mode: IssuerMode) -> serde_json::Value {
    match mode {
        IssuerMode::JwksWithoutKeys => return serde_json::json!({"keys": []}),
        IssuerMode::JwksBadModulus => {
            return serde_json::json!({"keys": [{
                "kty": "RSA", "use": "sig", "alg": "RS256", "kid": "terrarium-test-key", "e": "AQAB",
                "n": "not a modulus!"
            }]});
        }
        _ => {}
    }
    serde_json::json!({"keys": [{
        "kty": "RSA",
        "use": "sig",
        "alg": "RS256",
        "kid": "terrarium-test-key",
        "e": "AQAB",
        "n": "pv_7I4JQipFdS0i4_J2S8zk2i8omkGkqZ6eBUImpdI1JXZgZEwQU8H_8jnNHPX2c93muVvqawibuK5V6CYvBBaAdAChHMPUVtlWt0Vh2JjYIp1ok3FH1zaBymB4IlE_09QhAnJ00KDL36f6Yy9_fZRBjwy__PAogfknYtbFI-9CZ1PslkOVcYk0-JY4_yqiDkcUSx_6qHAYDO9e4SBpTmrwzIqgBiqjMBneRfHobXajJAyp_yG70NYHvok-SpBvoipN93ffZti8OyNBuJekbq7IJpQvsyeHfYooqzcy-g_z8Ts6u4gfevyy2Yn4pLxlt7M73Vs8hbYFJosSEa8aw_w"
    }]})
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 §2.3.1), written out
/// here so the issuer does not share the client's implementation.
fn basic_auth(client_id: &str, client_secret: &str) -> String {
    format!("Basic {}", base64(format!("{}:{}", form_encode(client_id), form_encode(client_secret)).as_bytes()))
}

fn form_encode(value: &str) -> String {
    value
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => char::from(byte).to_string(),
            b' ' => "+".to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (plain, encoded) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foobar", "Zm9vYmFy")] {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
        assert_eq!(basic_auth("a b", "c:d"), "Basic YStiOmMlM0Fk");
    }
}
