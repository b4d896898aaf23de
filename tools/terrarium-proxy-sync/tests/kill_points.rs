//! Kill points: a sync is killed (SIGKILL, through the test-only
//! `TERRARIUM_TEST_KILL_AFTER`) after each of its recorded steps (restarts recorded as
//! owed, each file written, each restart run and cleared), on a fresh host each time; a
//! normal rerun must then succeed, perform every restart the killed run still owed, and
//! leave the same files and firewall a run that was never killed leaves. The points are
//! discovered from a normal run (`TERRARIUM_TEST_KILLPOINTS`).
#![allow(clippy::unwrap_used)] // tests may panic

mod common;

use std::os::unix::process::ExitStatusExt;

use common::{CONFIG, Host, tree};
use terrarium_common::paths::env;

const PENDING: &str = "var/lib/terrarium/pending-restarts/proxy-sync.json";
const SIGKILL: i32 = 9;

/// A host with route auth configured and an instance with an authenticated HTTPS route
/// and a TCP port: the sync writes oauth2-proxy's files, both Traefik files, and runs
/// daemon-reload, enable and two restarts.
fn scene() -> (Host, std::path::PathBuf) {
    let host = Host::new(CONFIG);
    host.write_route_auth_secrets();
    let label = "https://app.example.com@auth, tcp://10022:22";
    let instance = serde_json::json!({
        "name": "app", "status": "Running", "created_at": "2026-01-01T00:00:00Z",
        "config": {"user.proxy": label}, "expanded_config": {"user.proxy": label},
        "state": {"network": {"eth0": {"host_name": "veth0", "type": "broadcast",
            "addresses": [{"family": "inet", "address": "10.0.0.7", "scope": "global"}]}}}
    });
    let instances = host.dir.path().join("instances.json");
    std::fs::write(&instances, serde_json::json!([instance]).to_string()).unwrap();
    (host, instances)
}

fn sync(host: &Host, instances: &std::path::Path) -> std::process::Command {
    let mut command = host.std_command();
    command.arg("--instances").arg(instances).arg("--json");
    command
}

/// Everything a run leaves that must not depend on whether it was killed: the root tree
/// (reports left out: they carry times) and the firewall rules.
fn outcome(host: &Host) -> (Vec<(String, String)>, String) {
    let files = tree(&host.root()).into_iter().filter(|(rel, _)| !rel.contains("/reports/")).collect();
    (files, std::fs::read_to_string(host.ufw_state()).unwrap_or_default())
}

fn restart_calls(calls: &str) -> Vec<String> {
    calls.lines().filter(|l| l.starts_with("systemctl")).map(str::to_string).collect()
}

#[test]
fn a_sync_killed_after_any_step_converges_on_the_next_run() {
    let (clean, instances) = scene();
    let record = clean.dir.path().join("killpoints.txt");
    let out = sync(&clean, &instances).env(env::KILLPOINTS, &record).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let clean_restarts = restart_calls(&clean.take_calls());
    let expected = outcome(&clean);
    let points = terrarium_testkit::killpoints::passed(&record);
    eprintln!("{} kill points: {points:?}", points.len());
    assert!(points.iter().any(|p| p == "proxy-sync.restarts-recorded"), "{points:?}");
    assert!(points.iter().any(|p| p == "proxy-sync.wrote-traefik.yml"), "{points:?}");
    // restarts recorded, 2+ files, 4 commands run and cleared, the firewall.
    assert!(points.len() >= 12, "fewer kill points than the sync has steps: {points:?}");

    for point in &points {
        let (host, instances) = scene();
        let out = sync(&host, &instances).env(env::KILL_AFTER, point).output().unwrap();
        assert_eq!(
            out.status.signal(),
            Some(SIGKILL),
            "to die after {point}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let killed_calls = restart_calls(&host.take_calls());
        let owed: Vec<String> = std::fs::read_to_string(host.root().join(PENDING))
            .map(|text| {
                let file: serde_json::Value = serde_json::from_str(&text).unwrap();
                file["restarts"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect()
            })
            .unwrap_or_default();

        let out = sync(&host, &instances).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "rerun after {point}: {}", String::from_utf8_lossy(&out.stderr));
        let rerun_calls = restart_calls(&host.take_calls());
        for command in &owed {
            assert!(rerun_calls.contains(command), "after {point}, {command} was owed and not run: {rerun_calls:?}");
        }
        for command in &clean_restarts {
            assert!(
                killed_calls.contains(command) || rerun_calls.contains(command),
                "after {point}, {command} never ran: killed run {killed_calls:?}, rerun {rerun_calls:?}"
            );
        }
        assert!(!host.root().join(PENDING).exists(), "restarts still owed after the rerun of {point}");
        assert_eq!(outcome(&host), expected, "files or firewall after a kill at {point} and a rerun");
    }
}
