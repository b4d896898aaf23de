//! The few files the sandbox writes itself, standing in for what Ansible and systemd
//! provide on a real host (neither converges nor runs as PID 1 here).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::Context;
use terrarium_common::ports::{self, traefik};

/// A `systemctl` that records what it was asked to do. The sandbox plays systemd: it
/// restarts Traefik itself when a tool asked for it.
pub fn write_systemctl_stand_in(dir: &Path, log: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let script = format!(
        "#!/bin/sh\n# Sandbox stand-in: systemd is not PID 1 here. Records the request.\necho \"$*\" >> '{}'\nexit 0\n",
        log.display()
    );
    let path = dir.join("systemctl");
    std::fs::write(&path, script).with_context(|| format!("write {}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).context("chmod systemctl stand-in")
}

/// Traefik's static file as the Ansible traefik role renders it (entrypoints, the
/// file provider, the managed block proxy sync owns), with ACME pointed at a closed
/// loopback port: there is no internet here, so HTTPS uses Traefik's default cert.
pub fn traefik_static_yaml(root: &Path) -> String {
    let dynamic = root.join("etc/traefik/dynamic");
    let acme = root.join("var/lib/traefik/acme.json");
    format!(
        "global:\n  checkNewVersion: false\n  sendAnonymousUsage: false\n\
         log:\n  level: WARN\n\
         entryPoints:\n  {web}:\n    address: \":80\"\n  {websecure}:\n    address: \":443\"\n  {begin}\n  {end}\n\
         providers:\n  providersThrottleDuration: 500ms\n  file:\n    directory: {dynamic}\n    watch: true\n\
         certificatesResolvers:\n  {resolver}:\n    acme:\n      email: ops@sandbox.test\n      storage: {acme}\n      caServer: https://127.0.0.1:1/directory\n      httpChallenge:\n        entryPoint: {web}\n",
        web = traefik::WEB_ENTRYPOINT,
        websecure = traefik::WEBSECURE_ENTRYPOINT,
        begin = traefik::MANAGED_BEGIN,
        end = traefik::MANAGED_END,
        resolver = traefik::CERT_RESOLVER,
        dynamic = dynamic.display(),
        acme = acme.display(),
    )
}

/// A stand-in for oauth2-proxy's `/oauth2/auth` contract (oauth2-proxy cannot be
/// installed here): 401 without a session cookie, 403 when `allowed_groups` does not
/// meet the session's groups, 202 otherwise. A session is the cookie
/// `_oauth2_proxy=<user>:<group>+<group>`.
pub const AUTH_STAND_IN: &str = r#"
import http.server, urllib.parse
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        if not url.path.startswith("/oauth2/"):
            self.send_response(404); self.end_headers(); return
        if url.path.startswith("/oauth2/start"):
            self.send_response(302); self.send_header("Location", "https://auth.sandbox.test/authorize"); self.end_headers(); return
        cookies = dict(c.strip().split("=", 1) for c in (self.headers.get("Cookie") or "").split(";") if "=" in c)
        session = cookies.get("_oauth2_proxy")
        if not session:
            self.send_response(401); self.end_headers(); return
        user, _, groups = session.partition(":")
        wanted = [g for g in urllib.parse.parse_qs(url.query).get("allowed_groups", [""])[0].split(",") if g]
        if wanted and not set(wanted) & set(groups.split("+")):
            self.send_response(403); self.end_headers(); return
        self.send_response(202); self.send_header("X-Auth-Request-User", user); self.end_headers()
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", PORT), H).serve_forever()
"#;

pub fn auth_stand_in_script() -> String {
    AUTH_STAND_IN.replace("PORT", &ports::OAUTH2_PROXY_ROUTES.to_string())
}
