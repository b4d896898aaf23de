//! What the units run: `verify --deep --rotate` (the weekly drill) drills one instance
//! per run, the one whose turn it is, while still checking every instance's chains;
//! `prune --if-enabled` and `verify --if-enabled` do nothing while S3 is off. Real
//! zfs-fuse and s3s-fs.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use common::{Host, write_text};

fn drilled(report: &serde_json::Value) -> Vec<String> {
    let instances = report["instances"].as_array().unwrap();
    instances.iter().filter(|i| !i["deep"].is_null()).map(|i| i["instance"].as_str().unwrap().to_string()).collect()
}

#[test]
fn the_weekly_drill_goes_round_the_instances_one_per_run() {
    let host = Host::new(128);
    for instance in ["db", "web", "wiki"] {
        host.create_instance(instance);
        write_text(&host.files(instance).join("data.txt"), 5_000, instance);
        host.snapshot(instance, "s1");
    }
    host.run_json(&["export"]);
    let mut turns = Vec::new();
    for _ in 0..4 {
        let report = host.run_json(&["verify", "--deep", "--rotate"]);
        assert_eq!(report["ok"], true, "{report:#}");
        assert_eq!(report["instances"].as_array().unwrap().len(), 3, "every chain is checked: {report:#}");
        let once = drilled(&report);
        assert_eq!(once.len(), 1, "one drill per run: {report:#}");
        turns.push(once[0].clone());
    }
    // Never drilled first (by name), then the longest ago: round and round.
    assert_eq!(turns, ["db", "web", "wiki", "db"]);
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(host.state("backup-verified/web.json")).unwrap()).unwrap();
    assert_eq!(record["ok"], true, "{record:#}");
    assert!(!host.pool.zfs(&["list", "-H", "-o", "name"]).contains("terrarium-verify-"), "scratch dataset left");

    // --rotate is for --deep, and picks the instance itself.
    assert_eq!(host.run(&["verify", "--rotate"]).status.code(), Some(2));
    assert_eq!(host.run(&["verify", "--deep", "--rotate", "--instance", "web"]).status.code(), Some(2));
}

#[test]
fn the_units_commands_do_nothing_while_s3_is_off() {
    let host = Host::new(64);
    host.create_instance("web");
    host.snapshot("web", "s1");
    let config = host.root.path().join("etc/terrarium/config.yaml");
    let text = std::fs::read_to_string(&config).unwrap().replace("enabled: true", "enabled: false");
    std::fs::write(&config, text).unwrap();
    for args in [["prune", "--if-enabled"], ["verify", "--if-enabled"]] {
        let out = host.run(&args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stderr).contains("is not enabled"), "{args:?}");
    }
    // Without --if-enabled, S3 off is an error that says so.
    assert_ne!(host.run(&["prune"]).status.code(), Some(0));
}
