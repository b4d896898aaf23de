//! `terrarium-backup status [--check]` on a real zfs-fuse pool and s3s-fs: fresh
//! backups are OK; an S3 restore point older than its threshold is a warning, then
//! critical; a failed export is critical; a check that cannot look is UNKNOWN. The
//! JSON is the contract `terrarium-status` reads
//! (`terrarium_common::backup_status::BackupStatus`).
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use common::{Host, write_text};
use terrarium_common::backup_status::{BackupStatus, Level};

fn status(host: &Host) -> BackupStatus {
    serde_json::from_value(host.run_json(&["status"])).expect("status --json is a BackupStatus")
}

fn check(host: &Host) -> (i32, String) {
    let out = host.run(&["status", "--check"]);
    (out.status.code().unwrap(), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Move every recorded time of `instance`'s exports `hours` into the past, as if the
/// last export ran that long ago (the catalog's manifests and the export record).
fn age_exports(host: &Host, instance: &str, hours: i64) {
    let shift = |text: &str| -> String {
        let mut value: serde_json::Value = serde_json::from_str(text).unwrap();
        for key in ["started_at", "finished_at", "at"] {
            if let Some(at) = value.get(key).and_then(|v| v.as_str()) {
                let rfc = time::format_description::well_known::Rfc3339;
                let then = time::OffsetDateTime::parse(at, &rfc).unwrap() - time::Duration::hours(hours);
                value[key] = then.format(&rfc).unwrap().into();
            }
        }
        serde_json::to_string_pretty(&value).unwrap()
    };
    let catalog = host.state(&format!("catalog/{instance}"));
    for entry in std::fs::read_dir(&catalog).unwrap() {
        let path = entry.unwrap().path();
        std::fs::write(&path, shift(&std::fs::read_to_string(&path).unwrap())).unwrap();
    }
    let record = host.state(&format!("backup-exported/{instance}.json"));
    std::fs::write(&record, shift(&std::fs::read_to_string(&record).unwrap())).unwrap();
}

#[test]
fn the_check_says_ok_then_warning_then_critical_as_the_s3_restore_point_ages() {
    let host = Host::new(64);
    host.create_instance("web");
    write_text(&host.files("web").join("index.html"), 2_000, "web");
    host.snapshot("web", "s1");

    // A new instance not exported yet is not late (it is younger than 36 h).
    let before = status(&host);
    assert_eq!(before.level, Level::Ok, "{:?}", before.problems);
    assert_eq!(before.instances[0].local.as_ref().unwrap().snapshot, "s1");
    assert!(before.instances[0].s3.is_none());

    host.run_json(&["export"]);
    let after = status(&host);
    assert_eq!(after.level, Level::Ok, "{:?}", after.problems);
    let web = &after.instances[0];
    assert_eq!(web.s3.as_ref().unwrap().snapshot, "s1");
    assert!(web.last_export.as_ref().unwrap().ok);
    let (code, text) = check(&host);
    assert_eq!(code, 0, "{text}");
    assert!(text.starts_with("BACKUP OK - 1 instances backed up on time | web_local_age="), "{text}");
    assert!(text.contains(" web_s3_age="), "{text}");
    assert!(text.contains(";129600;259200;0"), "the S3 thresholds, in seconds: {text}");

    age_exports(&host, "web", 40);
    let (code, text) = check(&host);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.starts_with("BACKUP WARNING - web: the newest S3 restore point (s1) is 40 h old (warning from 36 h) |"),
        "{text}"
    );

    age_exports(&host, "web", 40);
    let (code, text) = check(&host);
    assert_eq!(code, 2, "{text}");
    assert!(text.starts_with("BACKUP CRITICAL - web: the newest S3 restore point (s1) is 3 d 8 h old"), "{text}");
    // Without --check the view is for people, and the exit says the tool worked.
    let out = host.run(&["status"]);
    assert_eq!(out.status.code(), Some(0));
    let view = String::from_utf8_lossy(&out.stdout);
    assert!(view.contains("web (CRITICAL):\n  local snapshot:   s1 ("), "{view}");
    assert!(view.contains("  last export:      ok 3 d 8 h ago"), "{view}");
}

#[test]
fn a_failed_export_is_critical_and_a_check_that_cannot_look_is_unknown() {
    let host = Host::new(64);
    host.create_instance("web");
    host.snapshot("web", "s1");
    host.write_config("http://127.0.0.1:9"); // nothing listens: the export fails
    assert_ne!(host.run(&["export"]).status.code(), Some(0));
    let status = status(&host);
    assert_eq!(status.level, Level::Critical);
    let export = status.instances[0].last_export.as_ref().unwrap();
    assert!(!export.ok);
    assert!(export.error.as_deref().unwrap().contains("127.0.0.1:9"), "{export:?}");
    let (code, text) = check(&host);
    assert_eq!(code, 2, "{text}");
    assert!(text.starts_with("BACKUP CRITICAL - web: the last export ("), "{text}");

    std::fs::remove_file(host.root.path().join("etc/terrarium/config.yaml")).unwrap();
    let (code, text) = check(&host);
    assert_eq!(code, 3, "{text}");
    assert!(text.starts_with("BACKUP UNKNOWN - no Terrarium config at "), "{text}");
}

/// A pool that is not there (not imported after a reboot, a typo in storage.pool) is
/// an error for the export and an UNKNOWN for the check: a backup of nothing must not
/// pass for a good one. A pool without `<pool>/containers` yet has nothing to back up.
#[test]
fn a_missing_pool_fails_the_export_and_the_check_but_an_empty_pool_is_fine() {
    let host = Host::new(64);
    assert_eq!(host.run(&["export"]).status.code(), Some(0), "no containers dataset yet: nothing to do");
    assert_eq!(check(&host).0, 0);

    let config = host.root.path().join("etc/terrarium/config.yaml");
    let text = std::fs::read_to_string(&config).unwrap();
    let gone = format!("{}gone", host.pool.name());
    std::fs::write(&config, text.replace(&format!("pool: {}\n", host.pool.name()), &format!("pool: {gone}\n")))
        .unwrap();
    let out = host.run(&["export"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("pool {gone} does not exist or is not imported: `zpool import {gone}`")),
        "{stderr}"
    );
    let (code, text) = check(&host);
    assert_eq!(code, 3, "{text}");
    assert!(text.starts_with(&format!("BACKUP UNKNOWN - pool {gone} does not exist")), "{text}");
}
