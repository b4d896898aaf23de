//! The route-auth oauth2-proxy: one instance on 127.0.0.1:4181 serves every `@auth`
//! route and every group set (groups come per request in `allowed_groups`).
//!
//! Each protected host signs in on its own: the callback is `https://<host>/oauth2/callback`
//! (no `redirect_url`, so oauth2-proxy takes the host from the forwarded request) and the
//! session cookie has no `Domain`, so a browser sends it back only to the host that set
//! it. A cookie for the whole root domain would reach every container host, with or
//! without `@auth`, and any of them could replay it (docs/security.md).

use terrarium_common::paths::host;
use terrarium_common::ports;
use terrarium_common::secret::Secret;

/// The systemd unit proxy sync renders and restarts.
pub const UNIT_NAME: &str = "terrarium-oauth2-proxy-routes.service";
/// The config file name inside `oauth2_proxy_routes_dir()`.
pub const CONFIG_NAME: &str = "oauth2-proxy.cfg";
/// Where the oauth2-proxy binary lives on the host (installed by Ansible).
pub const BINARY: &str = "/usr/local/bin/oauth2-proxy";

/// What the config is made of.
#[derive(Debug, Clone)]
pub struct RouteAuth {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Secret,
    pub cookie_secret: Secret,
    /// The protected hosts, sorted: the only places sign-in may send a browser back to.
    pub hosts: Vec<String>,
}

/// The callback each protected host registers at the identity provider.
pub fn callback_url(host: &str) -> String {
    format!("https://{host}{CALLBACK_PATH}")
}

/// oauth2-proxy's own callback path, on every protected host.
pub const CALLBACK_PATH: &str = "/oauth2/callback";

/// A TOML basic string (JSON string escapes are a subset TOML accepts).
fn quoted(value: &str) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "\"\"".to_string())
}

/// The oauth2-proxy config file (TOML). It holds the client and cookie secrets, so it
/// is written 0600 and handed to the service as a systemd credential.
pub fn config(auth: &RouteAuth) -> String {
    let hosts: Vec<String> = auth.hosts.iter().map(|h| quoted(h)).collect();
    let lines = [
        "# Managed by terrarium-proxy-sync: the route-auth oauth2-proxy for @auth routes.".to_string(),
        format!("http_address = {}", quoted(&format!("127.0.0.1:{}", ports::OAUTH2_PROXY_ROUTES))),
        "reverse_proxy = true".to_string(),
        // X-Forwarded-* only from Traefik, on loopback (oauth2-proxy trusts every address
        // by default).
        "trusted_proxy_ips = [\"127.0.0.1/32\", \"::1/128\"]".to_string(),
        "provider = \"oidc\"".to_string(),
        format!("oidc_issuer_url = {}", quoted(&auth.issuer)),
        format!("client_id = {}", quoted(&auth.client_id)),
        format!("client_secret = {}", quoted(auth.client_secret.expose())),
        "oidc_groups_claim = \"groups\"".to_string(),
        "scope = \"openid email profile\"".to_string(),
        "email_domains = [\"*\"]".to_string(),
        // Only the auth endpoint is used; nothing is proxied through oauth2-proxy itself.
        "upstreams = [\"static://202\"]".to_string(),
        "set_xauthrequest = true".to_string(),
        // No redirect_url and no cookie_domains: see the module docs.
        format!("whitelist_domains = [{}]", hosts.join(", ")),
        "cookie_name = \"_terrarium_routes\"".to_string(),
        format!("cookie_secret = {}", quoted(auth.cookie_secret.expose())),
        "cookie_secure = true".to_string(),
        "cookie_samesite = \"lax\"".to_string(),
        "skip_provider_button = false".to_string(),
    ];
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

/// The hardened systemd unit. The config (with secrets) reaches the service as a
/// credential, so it runs as a dynamic user that cannot read anything else of ours.
pub fn unit() -> String {
    let config = format!("{}/{CONFIG_NAME}", host::OAUTH2_PROXY_ROUTES_DIR);
    format!(
        "# Managed by terrarium-proxy-sync.
[Unit]
Description=Terrarium route auth (oauth2-proxy for @auth routes)
Documentation=file:///usr/share/doc/terrarium-proxy-sync/labels.md
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
LoadCredential=config:{config}
ExecStart={BINARY} --config=${{CREDENTIALS_DIRECTORY}}/config
Restart=on-failure
RestartSec=2
DynamicUser=yes
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
CapabilityBoundingSet=
SystemCallArchitectures=native
SystemCallFilter=@system-service
UMask=0077

[Install]
WantedBy=multi-user.target
"
    )
}

/// 32 random bytes, base64 (URL alphabet, padded), as oauth2-proxy wants its cookie secret.
pub fn new_cookie_secret() -> std::io::Result<Secret> {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(Secret::new(base64_url(&bytes)))
}

fn base64_url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_known_vectors() {
        assert_eq!(base64_url(b""), "");
        assert_eq!(base64_url(b"f"), "Zg==");
        assert_eq!(base64_url(b"fo"), "Zm8=");
        assert_eq!(base64_url(b"foo"), "Zm9v");
        assert_eq!(base64_url(&[0xfb, 0xff]), "-_8=");
        assert_eq!(new_cookie_secret().unwrap().expose().len(), 44);
    }

    #[test]
    fn secrets_stay_out_of_the_unit_and_are_quoted_in_the_config() {
        let auth = RouteAuth {
            issuer: "https://auth.example.com".into(),
            client_id: "routes".into(),
            client_secret: Secret::new("s3\"cret"),
            cookie_secret: Secret::new("cookie"),
            hosts: vec!["app.example.com".into(), "wiki.example.org".into()],
        };
        let config = config(&auth);
        assert!(config.contains(r#"client_secret = "s3\"cret""#), "{config}");
        // Host-only cookies, a callback on each protected host, redirects only to them.
        assert!(!config.contains("cookie_domain") && !config.contains("redirect_url"), "{config}");
        assert!(config.contains(r#"whitelist_domains = ["app.example.com", "wiki.example.org"]"#), "{config}");
        assert_eq!(callback_url("app.example.com"), "https://app.example.com/oauth2/callback");
        assert!(!unit().contains("cret") && !unit().contains("cookie_secret"));
    }
}
