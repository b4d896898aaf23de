//! The metrics files export, prune and verify leave for node-exporter's textfile
//! collector, from real runs against a zfs-fuse pool and s3s-fs.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::path::PathBuf;

use common::{Host, write_text};
use terrarium_common::metrics::{Sample, find_value as value, parse};

/// node-exporter's directory under the host's root.
fn textfile_dir(host: &Host) -> PathBuf {
    host.root.path().join("var/lib/prometheus/node-exporter")
}

/// The samples of `terrarium_backup_<command>.prom`, which must parse strictly.
fn samples(host: &Host, command: &str) -> (String, Vec<Sample>) {
    let path = textfile_dir(host).join(format!("terrarium_backup_{command}.prom"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let samples = parse(&text).unwrap_or_else(|e| panic!("{} does not parse: {e}\n{text}", path.display()));
    (text, samples)
}

#[test]
fn export_prune_and_verify_leave_metrics_and_a_failed_run_keeps_the_last_success() {
    let host = Host::new(128);
    host.create_instance("web");
    write_text(&host.files("web").join("a.txt"), 300_000, "a");
    host.snapshot("web", "s1");

    // Without node-exporter's directory nothing is written, and it is not created.
    host.run_json(&["prune"]);
    assert!(!host.root.path().join("var/lib/prometheus").exists(), "the directory must not be created");

    std::fs::create_dir_all(textfile_dir(&host)).unwrap();
    host.run_json(&["export"]);
    let (text, exported) = samples(&host, "export");
    let export = [("command", "export")];
    let web = [("instance", "web")];
    assert_eq!(value(&exported, "terrarium_backup_last_run_success", &export), Some(1.0), "{text}");
    assert_eq!(value(&exported, "terrarium_backup_last_run_exit_code", &export), Some(0.0), "{text}");
    assert_eq!(value(&exported, "terrarium_backup_export_instance_success", &web), Some(1.0), "{text}");
    let raw = value(&exported, "terrarium_backup_export_last_raw_bytes", &web).unwrap();
    let compressed = value(&exported, "terrarium_backup_export_last_compressed_bytes", &web).unwrap();
    assert!(raw > 300_000.0 && compressed > 0.0 && compressed < raw, "{text}");
    let age = value(&exported, "terrarium_backup_restore_point_age_seconds", &[export[0], web[0]]).unwrap();
    assert!((0.0..600.0).contains(&age), "{text}");
    let finished = value(&exported, "terrarium_backup_last_run_timestamp_seconds", &export).unwrap();
    let succeeded = value(&exported, "terrarium_backup_last_success_timestamp_seconds", &export).unwrap();
    assert_eq!(succeeded, finished, "{text}");
    assert!(value(&exported, "terrarium_backup_last_run_duration_seconds", &export).unwrap() > 0.0, "{text}");
    let files: Vec<_> = std::fs::read_dir(textfile_dir(&host)).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(files, ["terrarium_backup_export.prom"], "one file, no temp file left");

    // A dry run leaves the last real run's file alone.
    host.run_json(&["export", "--dry-run"]);
    assert_eq!(samples(&host, "export").0, text);

    // A failed run says so, and keeps when the last success was.
    let secret = host.root.path().join("etc/terrarium/secrets/s3-secret-key");
    let aside = host.root.path().join("s3-secret-key.aside");
    std::fs::rename(&secret, &aside).unwrap();
    let out = host.run(&["export"]);
    assert!(!out.status.success(), "an export without its S3 secret must fail");
    let (text, failed) = samples(&host, "export");
    assert_eq!(value(&failed, "terrarium_backup_last_run_success", &export), Some(0.0), "{text}");
    assert_eq!(
        value(&failed, "terrarium_backup_last_run_exit_code", &export),
        out.status.code().map(f64::from),
        "{text}"
    );
    assert_eq!(value(&failed, "terrarium_backup_last_success_timestamp_seconds", &export), Some(succeeded), "{text}");
    assert!(value(&failed, "terrarium_backup_last_run_timestamp_seconds", &export).unwrap() > finished, "{text}");
    std::fs::rename(&aside, &secret).unwrap();

    host.run_json(&["prune"]);
    let (text, pruned) = samples(&host, "prune");
    let prune = [("command", "prune")];
    assert_eq!(value(&pruned, "terrarium_backup_last_run_success", &prune), Some(1.0), "{text}");
    assert_eq!(value(&pruned, "terrarium_backup_prune_last_deleted_restore_points", &web), Some(0.0), "{text}");
    assert!(value(&pruned, "terrarium_backup_restore_point_age_seconds", &[prune[0], web[0]]).is_some(), "{text}");

    host.run_json(&["verify"]);
    let (text, verified) = samples(&host, "verify");
    assert_eq!(value(&verified, "terrarium_backup_last_run_success", &[("command", "verify")]), Some(1.0), "{text}");
    assert_eq!(value(&verified, "terrarium_backup_verify_instance_success", &web), Some(1.0), "{text}");
    // The export's file is its own: the other commands never touch it.
    assert_eq!(value(&samples(&host, "export").1, "terrarium_backup_last_run_success", &export), Some(0.0));
}
