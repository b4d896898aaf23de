//! The metrics file every sync leaves for node-exporter's textfile collector, from the
//! real binary over a scratch root (and its watch mode over an `lxc` stand-in).
#![allow(clippy::unwrap_used)] // tests may panic

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::{CONFIG, Host, instances_file, one_instance};
use terrarium_common::metrics::{Sample, find_value as value, parse};

const DIR: &str = "var/lib/prometheus/node-exporter";
const FILE: &str = "var/lib/prometheus/node-exporter/terrarium_proxy_sync.prom";

/// The file's samples; it must parse strictly.
fn samples(host: &Host, rel: &str) -> (String, Vec<Sample>) {
    let text = host.read(rel);
    let samples = parse(&text).unwrap_or_else(|e| panic!("{rel} does not parse: {e}\n{text}"));
    (text, samples)
}

#[test]
fn each_sync_leaves_its_metrics_and_a_failed_one_keeps_the_last_success() {
    let host = Host::new(CONFIG);
    std::fs::create_dir_all(host.root().join(DIR)).unwrap();
    // 5432 is reserved in CONFIG: one rule rejected, two published (exit 3).
    let instances = instances_file(&host, &one_instance("https://app.example.com, udp://5432:53, tcp://10022:22"));
    let output = host.run(&instances, &[]);
    assert_eq!(output.status.code(), Some(3), "{}", String::from_utf8_lossy(&output.stderr));
    let (text, synced) = samples(&host, FILE);
    assert_eq!(value(&synced, "terrarium_proxy_sync_routes", &[("state", "published")]), Some(2.0), "{text}");
    assert_eq!(value(&synced, "terrarium_proxy_sync_routes", &[("state", "rejected")]), Some(1.0), "{text}");
    assert_eq!(value(&synced, "terrarium_proxy_sync_last_run_success", &[]), Some(1.0), "{text}");
    assert_eq!(value(&synced, "terrarium_proxy_sync_last_run_exit_code", &[]), Some(3.0), "{text}");
    let finished = value(&synced, "terrarium_proxy_sync_last_run_timestamp_seconds", &[]).unwrap();
    let succeeded = value(&synced, "terrarium_proxy_sync_last_success_timestamp_seconds", &[]).unwrap();
    assert_eq!(succeeded, finished, "{text}");
    assert!(value(&synced, "terrarium_proxy_sync_last_run_duration_seconds", &[]).unwrap() > 0.0, "{text}");
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        assert!(text.contains(&format!("# TYPE {} gauge\n", line.split(['{', ' ']).next().unwrap())), "{line}");
    }

    // A dry run leaves the file alone.
    host.run(&instances, &["--dry-run"]);
    assert_eq!(host.read(FILE), text);

    // A failed sync says so, keeps the last success, and no longer claims routes.
    let output = host.run(&instances_file(&host, "{not json"), &[]);
    assert_eq!(output.status.code(), Some(1));
    let (text, failed) = samples(&host, FILE);
    assert_eq!(value(&failed, "terrarium_proxy_sync_last_run_success", &[]), Some(0.0), "{text}");
    assert_eq!(value(&failed, "terrarium_proxy_sync_last_run_exit_code", &[]), Some(1.0), "{text}");
    assert_eq!(value(&failed, "terrarium_proxy_sync_last_success_timestamp_seconds", &[]), Some(succeeded), "{text}");
    assert!(value(&failed, "terrarium_proxy_sync_last_run_timestamp_seconds", &[]).unwrap() > finished, "{text}");
    assert!(!text.contains("terrarium_proxy_sync_routes"), "{text}");
    let files: Vec<_> = std::fs::read_dir(host.root().join(DIR)).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(files, ["terrarium_proxy_sync.prom"], "one file, no temp file left");
}

#[test]
fn without_the_directory_nothing_is_written_and_the_config_can_move_or_disable_it() {
    let instances = |host: &Host| instances_file(host, &one_instance("https://app.example.com"));
    let host = Host::new(CONFIG);
    assert_eq!(host.run(&instances(&host), &[]).status.code(), Some(0));
    assert!(!host.root().join("var/lib/prometheus").exists(), "the directory must not be created");

    let host = Host::new(&format!("{CONFIG}metrics:\n  textfile_dir: /srv/textfiles\n"));
    std::fs::create_dir_all(host.root().join("srv/textfiles")).unwrap();
    assert_eq!(host.run(&instances(&host), &[]).status.code(), Some(0));
    let (_, moved) = samples(&host, "srv/textfiles/terrarium_proxy_sync.prom");
    assert_eq!(value(&moved, "terrarium_proxy_sync_routes", &[("state", "published")]), Some(1.0));

    let host = Host::new(&format!("{CONFIG}metrics:\n  enabled: false\n"));
    std::fs::create_dir_all(host.root().join(DIR)).unwrap();
    assert_eq!(host.run(&instances(&host), &[]).status.code(), Some(0));
    assert!(!host.root().join(FILE).exists(), "metrics.enabled: false writes nothing");
}

/// `lxc list` prints the instances of `$LXC_LIST`; `lxc monitor` reports no event.
const LXC: &str = "#!/bin/sh\ncase \"$1\" in\n  list) cat \"$LXC_LIST\" ;;\n  monitor) exec sleep 20 ;;\nesac\n";

#[test]
fn the_watch_modes_syncs_write_metrics_too() {
    let host = Host::new(CONFIG);
    std::fs::create_dir_all(host.root().join(DIR)).unwrap();
    let lxc = host.shims().join("lxc");
    std::fs::write(&lxc, LXC).unwrap();
    std::fs::set_permissions(&lxc, std::fs::Permissions::from_mode(0o755)).unwrap();
    let list = instances_file(&host, &one_instance("https://app.example.com"));
    let mut watch = host
        .std_command()
        .arg("--watch")
        .env("LXC_LIST", &list)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !host.root().join(FILE).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    watch.kill().unwrap();
    watch.wait().unwrap();
    let (text, watched) = samples(&host, FILE);
    assert_eq!(value(&watched, "terrarium_proxy_sync_last_run_success", &[]), Some(1.0), "{text}");
    assert_eq!(value(&watched, "terrarium_proxy_sync_routes", &[("state", "published")]), Some(1.0), "{text}");
}
