//! Shared test scaffolding: a scratch host root, and stand-ins for the programs the
//! tool calls that cannot run for real in a plain test.
//!
//! - `systemctl`: systemd is not PID 1 on the test machine, so a stand-in records its
//!   arguments (restarts are checked from that record).
//! - `ufw`: tests that check files use a small stand-in that keeps rules in a text file
//!   and prints `ufw status` tables; the firewall behaviour itself is tested against
//!   the real ufw in its namespace sandbox (tests/ufw_sandbox.rs).
#![allow(dead_code, clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

pub const CONFIG: &str = "\
schema_version: 2
domains:
  root: example.com
  manage: manage.example.com
  proxy: proxy.example.com
  lxd: lxd.example.com
  auth: auth.example.com
emails:
  contact: ops@example.com
  acme: acme@example.com
identity:
  mode: local
  admin_group: terrarium-admins
storage:
  mode: file
  size: 64G
  pool: terrarium
proxy:
  reserved_ports: [5432]
";

/// Traefik's static file as Ansible renders it (empty managed block).
pub const STATIC: &str = "\
# Ansible managed
global:
  checkNewVersion: false
  sendAnonymousUsage: false

log:
  level: INFO

entryPoints:
  # BEGIN terrarium-proxy-sync managed entrypoints
  # END terrarium-proxy-sync managed entrypoints
  web:
    address: \":80\"
  websecure:
    address: \":443\"
    http:
      tls:
        certResolver: letsencrypt
  traefik:
    address: \"127.0.0.1:8080\"

api:
  dashboard: true
  insecure: true

providers:
  file:
    directory: /etc/traefik/dynamic
    watch: true
";

/// Records the call. A test makes the next restart fail by creating `$SYSTEMCTL_FAIL`
/// (a unit that does not start), or kills the tool from inside its restart by creating
/// `$SYSTEMCTL_KILL` (the run dies after its files were written); either file is
/// removed once used, so the call after it succeeds.
const SYSTEMCTL: &str = r#"#!/bin/sh
# Stand-in: systemd is not PID 1 here. Records the call.
echo "systemctl $*" >> "$SHIM_LOG"
if [ "$1" = restart ] && [ -n "${SYSTEMCTL_FAIL:-}" ] && [ -e "$SYSTEMCTL_FAIL" ]; then
  rm -f "$SYSTEMCTL_FAIL"; echo "Job for $2 failed because the control process exited with error code." >&2; exit 1
fi
if [ "$1" = restart ] && [ -n "${SYSTEMCTL_KILL:-}" ] && [ -e "$SYSTEMCTL_KILL" ]; then
  rm -f "$SYSTEMCTL_KILL"; kill -9 "$PPID"; exit 1
fi
"#;

const UFW: &str = r#"#!/bin/bash
# Stand-in for ufw in file-focused tests (the real ufw is tested in its sandbox):
# rules live in $UFW_STATE as "SPEC|COMMENT" lines; output mimics `ufw status`.
set -euo pipefail
state="$UFW_STATE"; touch "$state"
echo "ufw $*" >> "$SHIM_LOG"
case "$1" in
  status)
    printf 'Status: active\n\nTo                         Action      From\n--                         ------      ----\n'
    for v6 in "" " (v6)"; do
      while IFS='|' read -r spec comment; do
        [ -n "$spec" ] || continue
        line=$(printf '%-26s %-11s %s' "$spec$v6" ALLOW "Anywhere$v6")
        if [ -n "$comment" ]; then line=$(printf '%-50s # %s' "$line" "$comment"); fi
        echo "$line"
      done < "$state"
    done ;;
  allow)
    spec="$2"; comment="${4:-}"
    grep -q "^$spec|" "$state" || echo "$spec|$comment" >> "$state"
    echo "Rule added" ;;
  delete)
    spec="$3"; grep -v "^$spec|" "$state" > "$state.new" || true; mv "$state.new" "$state"
    echo "Rule deleted" ;;
  *) echo "ufw stand-in: unsupported $*" >&2; exit 1 ;;
esac
"#;

/// A scratch host: a root tree and a directory of stand-in programs.
pub struct Host {
    pub dir: tempfile::TempDir,
}

impl Host {
    /// A host with the config and Traefik's static file.
    pub fn new(config: &str) -> Self {
        let host = Self::new_shims(Self { dir: tempfile::tempdir().unwrap() });
        host.write("etc/terrarium/config.yaml", config, 0o600);
        host.write("etc/traefik/traefik.yml", STATIC, 0o644);
        host
    }

    /// A host whose root starts as a copy of `input`.
    pub fn from_tree(input: &Path) -> Self {
        let host = Self { dir: tempfile::tempdir().unwrap() };
        copy_tree(input, &host.root());
        // Git keeps no modes: secrets and the config are 0600 on a real host.
        for (rel, _) in tree(&host.root()) {
            if rel.contains("/secrets/") || rel.ends_with("config.yaml") {
                std::fs::set_permissions(host.root().join(rel), std::fs::Permissions::from_mode(0o600)).unwrap();
            }
        }
        Self::new_shims(host)
    }

    fn new_shims(host: Self) -> Self {
        for (name, text) in [("systemctl", SYSTEMCTL), ("ufw", UFW)] {
            let path = host.shims().join(name);
            std::fs::create_dir_all(host.shims()).unwrap();
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        host
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }
    pub fn shims(&self) -> PathBuf {
        self.dir.path().join("shims")
    }
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("calls.log")
    }
    pub fn ufw_state(&self) -> PathBuf {
        self.dir.path().join("ufw.rules")
    }
    /// While this file exists, the next `systemctl restart` fails (see [`SYSTEMCTL`]).
    pub fn systemctl_fail(&self) -> PathBuf {
        self.dir.path().join("systemctl.fail")
    }
    /// While this file exists, the next `systemctl restart` kills the tool.
    pub fn systemctl_kill(&self) -> PathBuf {
        self.dir.path().join("systemctl.kill")
    }

    /// The calls recorded by the stand-ins, and forget them.
    pub fn take_calls(&self) -> String {
        let calls = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let _ = std::fs::remove_file(self.log_path());
        calls
    }

    pub fn write(&self, rel: &str, contents: &str, mode: u32) {
        let path = self.root().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, contents).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// The route-auth client and cookie secrets idp-sync would have written, so that
    /// `@auth` routes are planned with their oauth2-proxy.
    pub fn write_route_auth_secrets(&self) {
        for (name, text) in [
            ("oidc-routes-client-id", "routes\n"),
            ("oidc-routes-client-secret", "s\n"),
            ("oauth2-proxy-routes-cookie-secret", "Y29va2llLXNlY3JldC1mb3ItdGVzdHMtb25seS0zMmI=\n"),
        ] {
            self.write(&format!("etc/terrarium/secrets/{name}"), text, 0o600);
        }
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    /// The tool with `--root`, the stand-ins first on PATH and human logs.
    pub fn std_command(&self) -> std::process::Command {
        self.std_command_with(&[])
    }

    /// Like [`Host::std_command`], with `first` ahead of the stand-ins on PATH (a real
    /// program's shim, such as the ufw sandbox's).
    pub fn std_command_with(&self, first: &[&Path]) -> std::process::Command {
        let mut command = std::process::Command::new(assert_cmd::cargo::cargo_bin("terrarium-proxy-sync"));
        let mut dirs: Vec<String> = first.iter().map(|d| d.display().to_string()).collect();
        dirs.push(self.shims().display().to_string());
        dirs.push(std::env::var("PATH").unwrap_or_default());
        let path = dirs.join(":");
        command
            .arg("--root")
            .arg(self.root())
            .env("PATH", path)
            .env("SHIM_LOG", self.log_path())
            .env("UFW_STATE", self.ufw_state())
            .env("SYSTEMCTL_FAIL", self.systemctl_fail())
            .env("SYSTEMCTL_KILL", self.systemctl_kill())
            .env("TERRARIUM_LOG_FORMAT", "human")
            .env_remove("TERRARIUM_ROOT")
            .env_remove("TERRARIUM_LOG");
        command
    }

    pub fn command(&self) -> assert_cmd::Command {
        assert_cmd::Command::from_std(self.std_command())
    }

    /// Run with `--instances FILE` and more arguments.
    pub fn run(&self, instances: &Path, args: &[&str]) -> Output {
        self.command().arg("--instances").arg(instances).args(args).output().unwrap()
    }
}

pub fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Every file under `dir` (relative path, contents), sorted; lock files left out.
pub fn tree(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let entry = entry.unwrap();
        let path = entry.path();
        if entry.file_type().unwrap().is_dir() {
            walk(base, &path, out);
        } else {
            let rel = path.strip_prefix(base).unwrap().to_string_lossy().into_owned();
            if rel.contains("/locks/") {
                continue;
            }
            out.push((rel, std::fs::read_to_string(&path).unwrap_or_else(|_| "<binary>".into())));
        }
    }
}

/// The report with its time blanked, for comparisons.
pub fn normalize_report(text: &str) -> String {
    let mut value: serde_json::Value = serde_json::from_str(text).unwrap();
    value["time"] = serde_json::Value::String("<time>".into());
    serde_json::to_string_pretty(&value).unwrap() + "\n"
}

/// Compiled Traefik schemas (from SchemaStore, copied into tests/data).
pub struct Schemas {
    pub dynamic: jsonschema::Validator,
    pub static_config: jsonschema::Validator,
}

impl Schemas {
    pub fn load() -> Self {
        let load = |name: &str| {
            let schema: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(data(name)).unwrap()).unwrap();
            jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{name}: {e}"))
        };
        Self { dynamic: load("traefik-v3-file-provider.json"), static_config: load("traefik-v3.json") }
    }

    /// Panic with every violation when `yaml` does not satisfy `schema`.
    pub fn check(schema: &jsonschema::Validator, yaml: &str, what: &str) {
        let value: serde_json::Value =
            terrarium_common::yaml::from_str(yaml, what).unwrap_or_else(|e| panic!("{what}: not YAML: {e}"));
        let errors: Vec<String> = schema.iter_errors(&value).map(|e| format!("{} at {}", e, e.instance_path)).collect();
        assert!(errors.is_empty(), "{what} violates the Traefik schema:\n{}\n---\n{yaml}", errors.join("\n"));
    }
}

/// Write `json` as the host's `lxc list` output and return its path.
pub fn instances_file(host: &Host, json: &str) -> std::path::PathBuf {
    let path = host.dir.path().join("instances.json");
    std::fs::write(&path, json).unwrap();
    path
}

/// One running instance `app` at 10.0.0.7 with `label`.
pub fn one_instance(label: &str) -> String {
    serde_json::json!([{
        "name": "app", "status": "Running", "created_at": "2026-01-01T00:00:00Z",
        "config": {"user.proxy": label}, "expanded_config": {"user.proxy": label},
        "state": {"network": {"eth0": {"host_name": "veth0", "type": "broadcast",
            "addresses": [{"family": "inet", "address": "10.0.0.7", "scope": "global"}]}}}
    }])
    .to_string()
}
