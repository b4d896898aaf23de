//! `terrarium-status` on a half-installed and a fully installed scratch root.
//!
//! systemd is not PID 1 on the test machine, so `systemctl` is a stand-in on PATH that
//! answers `systemctl show` from files (one per unit, `Key=value` lines) and says
//! `not-found` for the rest, the way systemctl does for unknown units. The pool health
//! comes from a real `zpool status -x` on a zfs-fuse pool, the backups' health from the
//! real `terrarium-backup status --json` built from this workspace.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

/// A directory with a `systemctl` stand-in answering from `units/<unit>` files.
struct SystemctlStandIn {
    dir: tempfile::TempDir,
}

impl SystemctlStandIn {
    fn new(fail: bool) -> Self {
        let dir = tempfile::Builder::new().prefix("terrarium-systemctl-").tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("units")).unwrap();
        let script = if fail {
            "#!/bin/sh\necho 'System has not been booted with systemd as init system (PID 1). Can'\\''t operate.' >&2\nexit 1\n".to_string()
        } else {
            format!(
                "#!/bin/sh\n# systemctl stand-in: `show [-p PROPS] UNIT...` from {units}/UNIT files\n[ \"$1\" = show ] || exit 1\nshift\nfirst=1\nwhile [ $# -gt 0 ]; do\n  case \"$1\" in\n    -p) shift 2; continue ;;\n    -*) shift; continue ;;\n  esac\n  [ $first = 1 ] || echo\n  first=0\n  if [ -f \"{units}/$1\" ]; then echo \"Id=$1\"; cat \"{units}/$1\"; else printf 'Id=%s\\nLoadState=not-found\\nActiveState=inactive\\nSubState=dead\\n' \"$1\"; fi\n  shift\ndone\n",
                units = dir.path().join("units").display()
            )
        };
        common::write(&dir.path().join("systemctl"), &script, 0o755);
        Self { dir }
    }
    fn unit(&self, name: &str, state: &str) {
        common::write(&self.dir.path().join("units").join(name), state, 0o644);
    }
    fn path_env(&self) -> String {
        format!("{}:{}", self.dir.path().display(), std::env::var("PATH").unwrap_or_default())
    }
}

/// The directory holding this workspace's `terrarium-backup`, built now: `cargo test -p
/// terrarium-install` builds only this package's binaries, and terrarium-status runs
/// the backup tool as a program (as on a host), found through `TERRARIUM_TOOL_PATH`.
fn backup_tool_dir() -> std::path::PathBuf {
    static BUILT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut build = std::process::Command::new(cargo);
            build.args(["build", "--quiet", "-p", "terrarium-backup", "--bin", "terrarium-backup"]);
            // Without the variables cargo sets for this test: ring's build script reruns
            // when CARGO_MANIFEST_DIR changes, which would rebuild half the workspace.
            for (key, _) in std::env::vars_os() {
                let key = key.to_string_lossy().into_owned();
                if key.starts_with("CARGO_") && !["CARGO_HOME", "CARGO_TARGET_DIR"].contains(&key.as_str()) {
                    build.env_remove(&key);
                }
            }
            let built = build.env_remove("LD_LIBRARY_PATH").current_dir(common::manifest_dir()).status().unwrap();
            assert!(built.success(), "cargo build -p terrarium-backup failed");
            let dir = assert_cmd::cargo::cargo_bin("terrarium-status").parent().unwrap().to_path_buf();
            assert!(dir.join("terrarium-backup").is_file(), "no terrarium-backup in {}", dir.display());
            dir
        })
        .clone()
}

fn status(root: &Path, systemctl: &SystemctlStandIn, json: bool) -> (i32, String) {
    let mut command = assert_cmd::Command::cargo_bin("terrarium-status").unwrap();
    command
        .arg("--root")
        .arg(root)
        .env("PATH", systemctl.path_env())
        .env("TERRARIUM_TOOL_PATH", backup_tool_dir())
        .env("TERRARIUM_LOG_FORMAT", "logfmt");
    if json {
        command.arg("--json");
    }
    let output = command.output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).replace(&root.display().to_string(), "[ROOT]"),
    )
}

#[test]
fn a_half_installed_host_says_what_is_missing() {
    let root = tempfile::tempdir().unwrap();
    let systemctl = SystemctlStandIn::new(false);
    systemctl.unit("traefik.service", "LoadState=loaded\nActiveState=active\nSubState=running\nResult=success\n");
    let (code, text) = status(root.path(), &systemctl, false);
    assert_eq!(code, 1, "something is missing: the exit says so");
    insta::assert_snapshot!("half-installed", text);
    let (_, json) = status(root.path(), &systemctl, true);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["healthy"], false);
    assert_eq!(json["config"]["state"], "missing");
    let missing: Vec<&str> = json["missing"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(missing.iter().any(|m| m.starts_with("cockpit.socket is not installed")), "{missing:?}");
    assert!(!missing.iter().any(|m| m.starts_with("traefik.service")), "{missing:?}");
}

#[test]
fn check_prints_nothing_on_stdout_and_lists_what_is_missing_on_stderr() {
    let root = tempfile::tempdir().unwrap();
    let systemctl = SystemctlStandIn::new(false);
    systemctl.unit("traefik.service", "LoadState=loaded\nActiveState=active\nSubState=running\nResult=success\n");
    let output = assert_cmd::Command::cargo_bin("terrarium-status")
        .unwrap()
        .arg("--root")
        .arg(root.path())
        .arg("--check")
        .env("PATH", systemctl.path_env())
        .env("TERRARIUM_TOOL_PATH", backup_tool_dir())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty(), "{}", String::from_utf8_lossy(&output.stdout));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("terrarium-status: cockpit.socket is not installed"), "{stderr}");
}

#[test]
fn without_systemd_the_unit_states_are_unknown_and_said_so() {
    let root = tempfile::tempdir().unwrap();
    let systemctl = SystemctlStandIn::new(true);
    let (code, json) = status(root.path(), &systemctl, true);
    assert_eq!(code, 1, "nothing says the services run");
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let missing = json["missing"].to_string();
    assert!(
        missing.contains("systemd: cannot ask systemctl") && missing.contains("has not been booted with systemd"),
        "{missing}"
    );
    assert_eq!(json["services"][0]["load"], "unknown");
}

const ACTIVE: &str = "LoadState=loaded\nActiveState=active\nSubState=running\nResult=success\n";

fn timer(last: &str) -> String {
    format!(
        "LoadState=loaded\nActiveState=active\nSubState=waiting\nResult=success\nLastTriggerUSec={last}\nNextElapseUSecRealtime=Sat 2026-11-28 19:01:00 UTC\n"
    )
}

/// The config of an installed host with S3 on, on `pool`.
fn write_installed_config(root: &Path, pool: &terrarium_testkit::ZfsPool) {
    let config = format!(
        "schema_version: 2\ndomains: {{root: example.com, manage: manage.example.com, proxy: proxy.example.com, lxd: lxd.example.com, auth: auth.example.com}}\n\
         emails: {{contact: ops@example.com, acme: ops@example.com}}\nidentity: {{mode: local, admin_group: ops}}\n\
         storage: {{mode: file, pool: {}}}\n\
         s3: {{enabled: true, endpoint: 'https://s3.example.com', bucket: backups, access_key: ak, secret_key_file: /etc/terrarium/secrets/s3-secret-key}}\n",
        pool.name()
    );
    common::write(&root.join("etc/terrarium/config.yaml"), &config, 0o600);
}

#[test]
fn an_installed_host_shows_settings_timers_reports_and_pool_health() {
    let pool = terrarium_testkit::ZfsPool::create(128);
    let root = tempfile::tempdir().unwrap();
    write_installed_config(root.path(), &pool);
    let reports = root.path().join("var/lib/terrarium/reports");
    common::write(
        &reports.join("proxy-sync.json"),
        r#"{"finished_at":"2026-11-28T19:00:00Z","routes":[{"host":"app.example.com","instance":"web"}],"rejected":[{"instance":"bad","label":"ftp://x","reason":"unsupported scheme"}]}"#,
        0o644,
    );
    common::write(
        &reports.join("backup-export.json"),
        r#"{"finished_at":"2026-11-28T03:00:00Z","instances":{"web":{"snapshot":"autosnap_2026-11-28_03:00:00_hourly","kind":"incremental"}}}"#,
        0o644,
    );
    let systemctl = SystemctlStandIn::new(false);
    // The units the roles install (see the test below), and no route-auth proxy: this
    // host has no `@auth` label.
    for unit in ["traefik.service", "cockpit.socket", "oauth2-proxy.service", "snap.lxd.daemon.service"] {
        systemctl.unit(unit, ACTIVE);
    }
    for name in ["sanoid", "terrarium-proxy-sync", "terrarium-backup-export"] {
        systemctl.unit(&format!("{name}.timer"), &timer("Sat 2026-11-28 19:00:00 UTC"));
        systemctl.unit(
            &format!("{name}.service"),
            "LoadState=loaded\nActiveState=inactive\nSubState=dead\nResult=success\n",
        );
    }
    let (code, json) = status(root.path(), &systemctl, true);
    assert_eq!(code, 0, "{json}");
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["missing"], serde_json::json!([]), "{json}");
    assert_eq!(value["healthy"], true);
    assert_eq!(value["backups"]["status"]["level"], "ok", "terrarium-backup answered: {json}");
    assert_eq!(value["backups"]["status"]["s3_enabled"], true);
    assert_eq!(value["pool"]["healthy"], true);
    assert_eq!(value["settings"]["admin_group"], "ops");
    assert_eq!(value["services"][3]["unit"], "snap.lxd.daemon.service");
    assert_eq!(value["proxy_sync"]["value"]["rejected"][0]["reason"], "unsupported scheme");
    let (_, text) = status(root.path(), &systemctl, false);
    let text = text.replace(pool.name(), "[POOL]");
    insta::assert_snapshot!("installed", text);

    // A failed last run of a timer's service is reported.
    systemctl.unit(
        "terrarium-proxy-sync.service",
        "LoadState=loaded\nActiveState=failed\nSubState=failed\nResult=exit-code\n",
    );
    let (code, json) = status(root.path(), &systemctl, true);
    assert_eq!(code, 1);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        value["missing"],
        serde_json::json!(["the last run of terrarium-proxy-sync.service failed (exit-code)"])
    );
}

/// What `terrarium-backup status` finds wrong is counted in the host's health: here a
/// container whose last export failed (the record an export leaves), then a host where
/// the backup tool is not installed.
#[test]
fn a_failed_export_and_a_missing_backup_tool_make_the_host_unhealthy() {
    let pool = terrarium_testkit::ZfsPool::create(128);
    pool.zfs(&["create", "-p", &pool.dataset("containers/web")]);
    let root = tempfile::tempdir().unwrap();
    write_installed_config(root.path(), &pool);
    let at = time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap();
    common::write(
        &root.path().join("var/lib/terrarium/backup-exported/web.json"),
        &serde_json::json!({"at": at, "ok": false, "error": "S3 endpoint unreachable"}).to_string(),
        0o644,
    );
    let systemctl = SystemctlStandIn::new(false);
    let (code, json) = status(root.path(), &systemctl, true);
    assert_eq!(code, 1, "{json}");
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["healthy"], false);
    assert_eq!(value["backups"]["status"]["level"], "critical", "{json}");
    let missing = value["missing"].to_string();
    assert!(missing.contains("backups (critical): web: the last export ("), "{missing}");
    let (_, text) = status(root.path(), &systemctl, false);
    assert!(text.contains("backups: CRITICAL, 1 instances checked, "), "{text}");

    // No terrarium-backup anywhere (its tool path points at an empty directory, and the
    // status binary's own directory holds none): said, and unhealthy.
    let alone = tempfile::tempdir().unwrap();
    let status_bin = alone.path().join("terrarium-status");
    std::fs::copy(assert_cmd::cargo::cargo_bin("terrarium-status"), &status_bin).unwrap();
    let output = std::process::Command::new(&status_bin)
        .args(["--json", "--root"])
        .arg(root.path())
        .env("PATH", format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", systemctl.dir.path().display()))
        .env("TERRARIUM_TOOL_PATH", alone.path().join("none"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let missing = value["missing"].to_string();
    assert!(missing.contains("backups: terrarium-backup is not installed"), "{missing}");

    // A pool that is gone: terrarium-backup cannot look, and its error is quoted.
    drop(pool);
    let (code, json) = status(root.path(), &systemctl, true);
    assert_eq!(code, 1);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(value["backups"]["status"].is_null(), "{json}");
    let missing = value["missing"].to_string();
    assert!(
        missing.contains("backups: `terrarium-backup status` failed (exit 1): terrarium-backup: error: pool "),
        "{missing}"
    );
}

/// The stand-in systemctl answers for whatever units a test names, so the names status
/// expects are checked against what installs them: a unit file of an Ansible role, or
/// (cockpit.socket, from its package) a drop-in the cockpit role writes for it; the
/// route-auth unit against proxy-sync's.
#[test]
fn status_expects_the_units_the_roles_and_proxy_sync_install() {
    let repo = common::manifest_dir().join("../..");
    for unit in terrarium_install::status::SERVICES {
        let installed_by_a_role = std::fs::read_dir(repo.join("ansible/roles")).unwrap().flatten().any(|role| {
            let dir = role.path().join("templates/etc/systemd/system");
            dir.join(format!("{unit}.j2")).is_file() || dir.join(format!("{unit}.d")).is_dir()
        });
        assert!(installed_by_a_role, "no Ansible role installs {unit}");
    }
    let proxy_sync =
        std::fs::read_to_string(repo.join("tools/terrarium-proxy-sync/src/render/oauth2_proxy.rs")).unwrap();
    assert!(
        proxy_sync
            .contains(&format!("pub const UNIT_NAME: &str = \"{}\";", terrarium_install::status::ROUTE_AUTH_SERVICE)),
        "proxy-sync names the route-auth unit differently"
    );
}

#[test]
fn a_route_auth_proxy_that_is_installed_must_run() {
    let root = tempfile::tempdir().unwrap();
    let systemctl = SystemctlStandIn::new(false);
    for unit in ["traefik.service", "cockpit.socket", "oauth2-proxy.service", "lxd.service"] {
        systemctl.unit(unit, ACTIVE);
    }
    systemctl.unit(
        terrarium_install::status::ROUTE_AUTH_SERVICE,
        "LoadState=loaded\nActiveState=failed\nSubState=failed\nResult=exit-code\n",
    );
    let (_, json) = status(root.path(), &systemctl, true);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    let missing = value["missing"].to_string();
    assert!(missing.contains("terrarium-oauth2-proxy-routes.service is failed"), "{json}");
}

#[test]
fn label_text_in_a_report_is_escaped_for_the_terminal_and_kept_in_json() {
    // What a container can put in the world-readable proxy-sync report: a rejected rule
    // stored verbatim, with an OSC title, a carriage return, a line wipe and a bidi override.
    let rule = "https://x\u{1b}]0;pwned\u{7}\r\u{1b}[2Kok\u{202e}moc.elpmaxe\u{2066}";
    let root = tempfile::tempdir().unwrap();
    let report = serde_json::json!({"tool": "proxy-sync", "ok": true, "rejected": [{"instance": "evil\u{9b}31m", "rule": rule, "problem": "p", "fix": "f"}]});
    common::write(&root.path().join("var/lib/terrarium/reports/proxy-sync.json"), &report.to_string(), 0o644);
    let systemctl = SystemctlStandIn::new(false);

    let (code, text) = status(root.path(), &systemctl, false);
    assert_eq!(code, 1, "no config: unhealthy");
    let unsafe_chars: Vec<char> =
        text.chars().filter(|c| *c != '\n' && terrarium_common::terminal::is_unsafe(*c)).collect();
    assert!(unsafe_chars.is_empty(), "raw {unsafe_chars:?} in:\n{text}");
    assert!(text.contains(r"rule=https://x\u{1b}]0;pwned\u{7}\r\u{1b}[2Kok\u{202e}moc.elpmaxe\u{2066}"), "{text}");
    assert!(text.contains(r"instance=evil\u{9b}31m"), "{text}");

    let (_, json) = status(root.path(), &systemctl, true);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["proxy_sync"]["value"]["rejected"][0]["rule"], rule, "JSON keeps the exact text");
}
