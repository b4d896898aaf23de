//! Export to a real s3s-fs from a real zfs-fuse pool, then restore without Terrarium.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use common::{Host, checksums, write_random, write_text};
use terrarium_archive::manifest::{Kind, Manifest};

fn manifest(host: &Host, instance: &str, snapshot: &str) -> Manifest {
    let key = host.key(instance, &format!("{snapshot}.manifest.json"));
    let text = std::fs::read_to_string(host.object(&key)).unwrap_or_else(|e| panic!("manifest {key}: {e}"));
    Manifest::parse(&text, &key).unwrap()
}

#[test]
fn full_then_incremental_export_restores_with_aws_zstd_and_zfs_alone() {
    let host = Host::new(256);
    host.create_instance("web");
    let files = host.files("web");
    write_random(&files.join("random.bin"), 3 << 20, 1);
    write_text(&files.join("notes.txt"), 2 << 20, "first");
    host.snapshot("web", "s1");

    let planned = host.run_json(&["export", "--dry-run"]);
    assert_eq!(planned["instances"][0]["status"], "planned", "{planned:#}");
    assert_eq!(planned["instances"][0]["reason"], "first export of this instance", "{planned:#}");
    assert!(
        host.incomplete_uploads().is_empty() && !host.object(&host.key("web", "s1.zfs.zst")).exists(),
        "--dry-run uploads nothing"
    );
    assert!(
        !host.state("lastsnapshots/web").exists() && !host.state("reports/backup-export.json").exists(),
        "--dry-run records nothing"
    );

    let report = host.run_json(&["export"]);
    let item = &report["instances"][0];
    assert_eq!(
        (item["instance"].as_str(), item["status"].as_str(), item["kind"].as_str()),
        (Some("web"), Some("exported"), Some("full")),
        "{report:#}"
    );
    let first = manifest(&host, "web", "s1");
    assert_eq!((first.kind, first.base.as_ref()), (Kind::Full, None));
    assert_eq!(first.object_key, host.key("web", "s1.zfs.zst"));
    let stored = host.object(&first.object_key);
    assert_eq!(std::fs::metadata(&stored).unwrap().len(), first.compressed_bytes);
    assert_eq!(common::sha256_file(&stored), first.sha256, "the manifest's sha256 is the stored object's");
    assert!(first.raw_bytes > 5 << 20 && first.compressed_bytes < first.raw_bytes, "{first:?}");
    assert_eq!(std::fs::read_to_string(host.state("lastsnapshots/web")).unwrap().trim(), "s1");
    let cataloged = std::fs::read_to_string(host.state("catalog/web/s1.manifest.json")).unwrap();
    assert_eq!(Manifest::parse(&cataloged, "catalog").unwrap(), first);
    let status: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(host.state("reports/backup-export.json")).unwrap()).unwrap();
    assert_eq!(status["ok"], true);

    // Nothing new: nothing sent.
    let again = host.run_json(&["export"]);
    assert_eq!(again["instances"][0]["status"], "up_to_date", "{again:#}");

    // Change data, snapshot, incremental.
    write_text(&files.join("notes.txt"), 1 << 20, "second");
    write_random(&files.join("more.bin"), 1 << 20, 2);
    host.snapshot("web", "s2");
    let report = host.run_json(&["export", "--instance", "web"]);
    assert_eq!(report["instances"][0]["kind"], "incremental", "{report:#}");
    let second = manifest(&host, "web", "s2");
    assert_eq!(second.base.as_ref().map(|b| (b.name.as_str(), b.guid)), Some(("s1", first.snapshot.guid)));
    assert!(second.compressed_bytes < first.compressed_bytes, "an incremental carries only the change");
    let expected = checksums(&files);

    // The chain is sound, and restores into a scratch dataset.
    let verified = host.run_json(&["verify", "--deep"]);
    assert_eq!(verified["ok"], true, "{verified:#}");
    assert_eq!(verified["instances"][0]["deep"]["streams"], 2, "{verified:#}");
    let listed = host.run_json(&["list"]);
    assert_eq!(listed[0]["s3"].as_array().unwrap().len(), 2, "{listed:#}");
    assert_eq!(listed[0]["s3"][1]["restorable"], true, "{listed:#}");

    // Disaster: the dataset is gone. Restore with aws, zstd and zfs only.
    host.pool.zfs(&["release", "terrarium-backup", &format!("{}@s2", host.dataset("web"))]);
    host.pool.zfs(&["destroy", "-r", &host.dataset("web")]);
    assert!(!files.join("notes.txt").exists());
    host.restore_with_standard_tools(&[first.object_key.clone(), second.object_key.clone()], &host.dataset("web"));
    assert_eq!(checksums(&files), expected, "restored files differ from the exported ones");
}

#[test]
fn a_base_pruned_locally_makes_the_next_export_a_full_that_says_so() {
    let host = Host::new(128);
    host.create_instance("db");
    write_text(&host.files("db").join("a.txt"), 100_000, "a");
    host.snapshot("db", "s1");
    host.run_json(&["export"]);

    // The exported snapshot is held, so sanoid cannot prune it by accident...
    let s1 = format!("{}@s1", host.dataset("db"));
    let destroy =
        std::process::Command::new(terrarium_testkit::require("zfs")).args(["destroy", &s1]).output().unwrap();
    assert!(!destroy.status.success(), "a held snapshot must not be destroyable");
    // ...but when it goes anyway, the next export cannot be an incremental.
    write_text(&host.files("db").join("b.txt"), 100_000, "b");
    host.snapshot("db", "s2");
    host.pool.zfs(&["release", "terrarium-backup", &s1]);
    host.pool.zfs(&["destroy", &s1]);
    let report = host.run_json(&["export"]);
    let item = &report["instances"][0];
    assert_eq!(item["kind"], "full", "{report:#}");
    assert!(item["reason"].as_str().unwrap().contains("s1 no longer exists locally"), "{report:#}");
    let m = manifest(&host, "db", "s2");
    assert_eq!((m.kind, m.base), (Kind::Full, None));
    assert_eq!(std::fs::read_to_string(host.state("lastsnapshots/db")).unwrap().trim(), "s2");

    // An instance that does not exist is bad input (exit 2), named with where to look.
    for args in [&["export", "--instance", "nope"][..], &["list", "--instance", "nope"][..]] {
        let out = host.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("containers/nope") && stderr.contains("`terrarium-backup list`"), "{args:?}: {stderr}");
    }
}

#[test]
fn a_second_run_while_one_holds_the_lock_exits_4() {
    let host = Host::new(64);
    let _held =
        terrarium_common::fs::RunLock::acquire(&host.state("locks"), "terrarium-backup", std::time::Duration::ZERO)
            .unwrap();
    let out = host.run(&["export"]);
    assert_eq!(out.status.code(), Some(4), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("another terrarium-backup run holds")
            && stderr.contains(&format!("pid {} (", std::process::id())),
        "{stderr}"
    );
}
