//! End to end: real LXD 5.0 (namespaced, testkit), real `lxc`, real Traefik v3 loading
//! the files proxy-sync renders. Two busybox containers serve HTTP, a third is the backend of a raw TCP route.
//!
//! Stand-ins, because nothing real runs here:
//! - oauth2-proxy cannot be installed on this machine: a small Python server on
//!   127.0.0.1:4181 implements its `/oauth2/auth` contract (202 with a session, 401
//!   without, 403 when `allowed_groups` does not match) and a sign-in page.
//! - systemd is not PID 1: `systemctl` records its calls, and when proxy-sync asked for
//!   `systemctl restart traefik.service` this test restarts the real Traefik itself.
//! - the firewall runs against the real ufw in its sandbox.
#![allow(clippy::unwrap_used)] // tests and bench helpers may panic

mod common;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{CONFIG, Host};
use terrarium_testkit::{Lxd, Traefik, UfwSandbox};

/// The stand-in of oauth2-proxy's auth endpoint. A session is the cookie
/// `_terrarium_routes=USER:GROUP+GROUP`.
const OAUTH2_STANDIN: &str = r#"
import http.server, urllib.parse
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        query = urllib.parse.parse_qs(url.query)
        cookies = dict(c.strip().split("=", 1) for c in self.headers.get("Cookie", "").split(";") if "=" in c)
        if url.path == "/oauth2/auth":
            session = cookies.get("_terrarium_routes")
            if not session:
                return self.reply(401, "no session")
            user, _, groups = session.partition(":")
            wanted = [g for g in ",".join(query.get("allowed_groups", [])).split(",") if g]
            if wanted and not set(wanted) & set(groups.split("+")):
                return self.reply(403, "not in " + ",".join(wanted))
            return self.reply(202, "", {"X-Auth-Request-User": user})
        if url.path == "/oauth2/sign_in":
            return self.reply(200, "stand-in sign-in rd=" + ",".join(query.get("rd", [])))
        self.reply(404, "stand-in: unknown path " + url.path)
    def reply(self, code, body, headers={}):
        self.send_response(code)
        for k, v in headers.items(): self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body.encode())
http.server.HTTPServer(("127.0.0.1", 4181), H).serve_forever()
"#;

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Traefik's static file for the test: like Ansible's, with the file provider pointing
/// into the test root, `web` first (the testkit talks to the first entrypoint) and no
/// ACME resolver (the test publishes http:// routes only).
fn static_file(root: &Path) -> String {
    format!(
        "global:\n  checkNewVersion: false\n  sendAnonymousUsage: false\nentryPoints:\n  web:\n    address: \":80\"\n  # BEGIN terrarium-proxy-sync managed entrypoints\n  # END terrarium-proxy-sync managed entrypoints\nproviders:\n  file:\n    directory: {}\n    watch: true\n",
        root.join("etc/traefik/dynamic").display()
    )
}

fn sync(host: &Host, lxd: &Lxd, ufw: &UfwSandbox) -> String {
    let mut command = host.std_command_with(&[&ufw.shim_dir()]);
    command.envs(lxd.env());
    let output = command.output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    host.take_calls()
}

/// A raw TCP exchange with 127.0.0.1:PORT inside the namespace (bash's /dev/tcp, no
/// HTTP client: the route is plain TCP passthrough); retried for a few seconds while
/// Traefik loads the route. Returns what came back.
fn tcp_exchange(lxd: &Lxd, traefik: &Traefik, port: u16, expect: &str) -> String {
    let script =
        format!("exec 3<>/dev/tcp/127.0.0.1/{port} && printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3 && timeout 3 cat <&3");
    let mut last = String::new();
    for _ in 0..20 {
        let output = lxd.in_netns("bash").arg("-c").arg(&script).output().unwrap();
        last = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout).trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
        if last.contains(expect) {
            return last;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!(
        "TCP 127.0.0.1:{port} never answered {expect}: {last}\ntraefik log:\n{}",
        std::fs::read_to_string(traefik.log_path()).unwrap_or_default()
    );
}

#[test]
fn labels_become_live_routes_on_real_lxd_and_traefik() {
    let lxd = Lxd::start();
    let ufw = UfwSandbox::start();
    ufw.ufw(&["--force", "enable"]);
    let host = Host::new(CONFIG);
    host.write("etc/traefik/traefik.yml", &static_file(&host.root()), 0o644);
    host.write("etc/terrarium/secrets/oidc-routes-client-id", "routes\n", 0o600);
    host.write("etc/terrarium/secrets/oidc-routes-client-secret", "secret\n", 0o600);

    lxd.launch_with("web1", &[], "mkdir -p /www && echo web1 > /www/index.html && httpd -f -p 80 -h /www");
    lxd.launch_with("web2", &[], "mkdir -p /www/two && echo web2 > /www/two/index.html && echo web2 > /www/index.html && httpd -f -p 8080 -h /www");
    // The TCP backend: any TCP server will do; busybox httpd on 7000, spoken to raw.
    lxd.launch_with("echo", &[], "mkdir -p /www && echo tcp-backend > /www/index.html && httpd -f -p 7000 -h /www");
    lxd.lxc(&["config", "set", "web1", "user.proxy", "http://one.example.com"]);
    lxd.lxc(&[
        "config",
        "set",
        "web2",
        "user.proxy",
        "http://one.example.com:8080/two\nhttp://private.example.com:8080@auth:ops",
    ]);
    lxd.lxc(&["config", "set", "echo", "user.proxy", "tcp://10022:7000"]);
    let _standin = Killed(lxd.in_netns("python3").arg("-c").arg(OAUTH2_STANDIN).stdin(Stdio::null()).spawn().unwrap());

    let calls = sync(&host, &lxd, &ufw);
    assert!(calls.contains("systemctl restart traefik.service"), "{calls}");
    assert!(calls.contains("systemctl restart terrarium-oauth2-proxy-routes.service"), "{calls}");
    let static_path = host.root().join("etc/traefik/traefik.yml");
    let mut traefik = Traefik::start(&lxd, &static_path);

    assert_eq!(traefik.wait_for_status("one.example.com", "/", 200).trim(), "web1");
    assert_eq!(traefik.wait_for_status("one.example.com", "/two/", 200).trim(), "web2", "path routing");
    tcp_exchange(&lxd, &traefik, 10022, "tcp-backend");
    assert!(ufw.ufw(&["status"]).contains("10022/tcp"), "firewall opened");

    // @auth: no session -> the sign-in page (status 401) with the way back; a session
    // in the group -> the app; a session outside the group -> 403.
    let body = traefik.wait_for_status("private.example.com", "/", 401);
    assert!(body.contains("stand-in sign-in rd=http://private.example.com/"), "{body}");
    let curl = |cookie: &str| {
        let out = lxd
            .in_netns("curl")
            .args(["-s", "-o", "-", "-w", "\n%{http_code}", "-H", "Host: private.example.com", "-H"])
            .arg(format!("Cookie: _terrarium_routes={cookie}"))
            .arg(format!("http://{}/", traefik.address()))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(
        curl("ann:ops+devs").ends_with("\n200") && curl("ann:ops+devs").starts_with("web2"),
        "{}",
        curl("ann:ops+devs")
    );
    assert!(curl("bob:devs").ends_with("\n403"), "{}", curl("bob:devs"));

    // Removing labels removes the routes (and the TCP entrypoint: Traefik restart).
    lxd.lxc(&["config", "unset", "web1", "user.proxy"]);
    lxd.lxc(&["config", "unset", "echo", "user.proxy"]);
    let calls = sync(&host, &lxd, &ufw);
    assert!(calls.contains("systemctl restart traefik.service"), "{calls}");
    drop(traefik);
    traefik = Traefik::start(&lxd, &static_path);
    traefik.wait_for_status("one.example.com", "/", 404);
    assert_eq!(traefik.wait_for_status("one.example.com", "/two/", 200).trim(), "web2");
    assert!(!ufw.ufw(&["status"]).contains("10022/tcp"), "firewall closed again");

    // Watch mode: a new label is live within a bound generous for a loaded machine
    // (the latency itself is measured by tests/bench/proxy-sync.sh).
    let mut watch = host.std_command_with(&[&ufw.shim_dir()]);
    watch.envs(lxd.env()).arg("--watch").stdout(Stdio::null()).stderr(Stdio::null());
    let _watch = Killed(watch.spawn().unwrap());
    std::thread::sleep(Duration::from_secs(2));
    let started = Instant::now();
    lxd.lxc(&["config", "set", "web1", "user.proxy", "http://three.example.com"]);
    assert_eq!(traefik.wait_for_status("three.example.com", "/", 200).trim(), "web1");
    assert!(started.elapsed() < Duration::from_secs(20));
}
