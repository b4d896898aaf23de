//! S3 restores of exports made by the real terrarium-backup, on a real zfs-fuse pool
//! and a real s3s-fs, the instance stopped and
//! started through `lxc` against a real namespaced LXD. LXD cannot use zfs-fuse here, so
//! the LXD instance lives on LXD's `dir` storage: it stands for "the instance that uses
//! this dataset" (its state and restarts are real, its files are not on the pool).
#![allow(clippy::unwrap_used)] // tests: a panic is a failure

mod common;

use std::time::{Duration, Instant};

use common::*;
use terrarium_testkit::Lxd;

fn s3_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["--source", "s3", "--from-host", HOST];
    args.extend_from_slice(extra);
    args
}

#[test]
fn s3_in_place_replaces_the_dataset_only_after_the_chain_is_verified() {
    let host = exported_host(512, 3, 256);
    let lxd = Lxd::start();
    lxd.launch("web", &[]);
    let (_, pid_before) = container_pid(&lxd, "web");

    let dry =
        host.restore(&lxd.env()).args(s3_args(&["--instance", "web", "--at", "11-29", "--dry-run"])).output().unwrap();
    assert!(dry.status.success(), "{}", stderr(&dry));
    let plan = stdout(&dry);
    assert!(
        plan.contains("receive 2 objects")
            && plan.contains(&format!("{A}.zfs.zst"))
            && plan.contains(&format!("{B}.zfs.zst")),
        "{plan}"
    );
    assert!(
        plan.contains(&format!(
            "rename {} aside to {}/terrarium-restore/web.replaced-",
            host.dataset("web"),
            host.pool.name()
        )),
        "{plan}"
    );

    let done =
        host.restore(&lxd.env()).args(s3_args(&["--instance", "web", "--at", "11-29", "--yes"])).output().unwrap();
    assert!(done.status.success(), "{}", stderr(&done));
    assert_eq!(tree_checksums(&host.files("web")), checksums_of(&version(2, 256)));
    assert_eq!(host.snapshots("web"), [A, B]);
    assert!(host.leftovers().is_empty(), "staging and the replaced dataset are gone: {:?}", host.leftovers());
    let (status, pid_after) = container_pid(&lxd, "web");
    assert_eq!(status, "Running");
    assert_ne!(pid_after, pid_before, "stopped for the swap and started again");

    // The newest point, keeping the replaced dataset.
    let kept = host
        .restore(&lxd.env())
        .args(s3_args(&["--instance", "web", "--keep-old", "--yes", "--json"]))
        .output()
        .unwrap();
    assert!(kept.status.success(), "{}", stderr(&kept));
    assert_eq!(tree_checksums(&host.files("web")), checksums_of(&version(3, 256)));
    let left = host.leftovers();
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].contains("/terrarium-restore/web.replaced-"), "{left:?}");
    let summary: serde_json::Value = serde_json::from_slice(&kept.stdout).unwrap();
    assert_eq!(summary["restore_point"]["snapshot"], C);
}

#[test]
fn s3_as_new_rebuilds_a_new_dataset_and_hands_off() {
    let host = exported_host(512, 3, 64);
    let original = tree_checksums(&host.files("web"));
    let lxd = Lxd::start();
    let stand_in_dir = tempfile::tempdir().unwrap();
    let bin = lxd_stand_in(stand_in_dir.path());

    // No --from-host: the default is this host's name (/etc/hostname under the root),
    // the name terrarium-backup filed the export under.
    let done = host
        .restore(&lxd.env())
        .env("PATH", test_path(Some(&bin)))
        .args(["--source", "s3", "--instance", "web", "--as-new", "web2"])
        .output()
        .unwrap();
    assert!(done.status.success(), "{}", stderr(&done));
    assert!(stderr(&done).contains("`lxd recover` imports it"), "{}", stderr(&done));
    assert_eq!(tree_checksums(&host.files("web2")), checksums_of(&as_new(&version(3, 64), "web2")));
    assert_eq!(host.snapshots("web2"), [A, B, C]);
    assert_eq!(tree_checksums(&host.files("web")), original, "the original is untouched");
    assert!(host.leftovers().is_empty(), "{:?}", host.leftovers());
}

#[test]
fn a_corrupted_object_fails_before_the_swap_and_leaves_the_original() {
    let host = exported_host(512, 3, 64);
    let lxd = Lxd::start();
    lxd.launch("web", &[]);
    let (_, pid_before) = container_pid(&lxd, "web");
    let original = tree_checksums(&host.files("web"));
    let snapshots = host.snapshots("web");

    // Flip one byte in the middle of the second stream: same size, so only the
    // checksum (or the decoder) can tell.
    let path = host.object_path(&host.keys().stream_key("web", B));
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&path, bytes).unwrap();

    let failed = host.restore(&lxd.env()).args(s3_args(&["--instance", "web", "--yes"])).output().unwrap();
    host.assert_refused_untouched(&failed, &format!("backups/{HOST}/web/{B}.zfs.zst"), &original, &snapshots);
    assert_eq!(container_pid(&lxd, "web"), ("Running".into(), pid_before), "never stopped");
}

/// Child processes of `pid` with their command lines (from /proc).
fn children(pid: u32) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).into_iter().flatten().flatten() {
        let list = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        for child in list.split_whitespace().filter_map(|c| c.parse::<u32>().ok()) {
            let cmdline = std::fs::read(format!("/proc/{child}/cmdline")).unwrap_or_default();
            found.push((child, String::from_utf8_lossy(&cmdline).replace('\0', " ").trim().to_string()));
        }
    }
    found
}

#[test]
fn a_restore_killed_during_receive_leaves_the_original_and_a_rerun_succeeds() {
    // Enough data that the receive takes a moment.
    let host = exported_host(512, 3, 16 * 1024);
    let lxd = Lxd::start();
    lxd.launch("web", &[]);
    let original = tree_checksums(&host.files("web"));

    let tool = assert_cmd::cargo::cargo_bin("terrarium-restore");
    let mut child = std::process::Command::new(&tool)
        .args(s3_args(&["--instance", "web", "--yes"]))
        .env("TERRARIUM_ROOT", host.root.path())
        .env("PATH", test_path(None))
        .envs(lxd.env())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen_receive = false;
    while Instant::now() < deadline {
        if children(child.id()).iter().any(|(_, cmdline)| cmdline.contains("zfs receive")) {
            seen_receive = true;
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "the restore ended before its receive was seen");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(seen_receive, "no `zfs receive` seen within 120 s");
    child.kill().unwrap();
    child.wait().unwrap();
    // The orphaned `zfs receive` ends on its closed stdin; give it a moment.
    std::thread::sleep(Duration::from_millis(500));

    assert_eq!(tree_checksums(&host.files("web")), original, "the original is untouched");
    assert_eq!(container_pid(&lxd, "web").0, "Running", "the instance was never stopped");

    let rerun = host.restore(&lxd.env()).args(s3_args(&["--instance", "web", "--yes"])).output().unwrap();
    assert!(rerun.status.success(), "{}", stderr(&rerun));
    assert_eq!(tree_checksums(&host.files("web")), checksums_of(&version(3, 16 * 1024)));
    assert!(host.leftovers().is_empty(), "{:?}", host.leftovers());
}

#[test]
fn a_local_rollback_across_the_exported_snapshot_releases_its_hold_first() {
    let host = Host::new(256, true);
    host.create_instance("web");
    let files = host.files("web");
    write_tree(&files, &version(1, 16));
    host.snapshot("web", A);
    write_tree(&files, &version(2, 16));
    host.snapshot("web", B);
    host.export("web", B, None);
    let held_b = format!("{}@{B}", host.dataset("web"));
    // Holds are counted by `userrefs`: zfs-fuse's `zfs holds` fails, and only the export
    // places holds here.
    let holds = |snapshot: &str| host.pool.zfs(&["get", "-H", "-o", "value", "userrefs", snapshot]).trim().to_string();
    assert_eq!(holds(&held_b), "1", "the export holds its snapshot");
    write_tree(&files, &version(3, 16));
    host.snapshot("web", C);
    let bin = tempfile::tempdir().unwrap();
    let path = test_path(Some(&no_instances_lxc(bin.path())));

    let dry =
        host.restore(&[]).env("PATH", &path).args(["--instance", "web", "--at", A, "--dry-run"]).output().unwrap();
    assert!(dry.status.success(), "{}", stderr(&dry));
    let plan = stdout(&dry);
    assert!(
        plan.contains(&format!("{held_b} (held by terrarium-backup")) && plan.contains("the hold is released first"),
        "{plan}"
    );
    let json = host
        .restore(&[])
        .env("PATH", &path)
        .args(["--instance", "web", "--at", A, "--dry-run", "--json"])
        .output()
        .unwrap();
    let value: serde_json::Value = serde_json::from_str(&stdout(&json)).unwrap();
    assert_eq!(value["steps"][0]["releases"], serde_json::json!([held_b]), "{value:#}");

    let done = host.restore(&[]).env("PATH", &path).args(["--instance", "web", "--at", A, "--yes"]).output().unwrap();
    assert!(done.status.success(), "{}", stderr(&done));
    assert_eq!(host.snapshots("web"), [A]);
    assert_eq!(tree_checksums(&files), checksums_of(&version(1, 16)));

    // The next export finds its base gone and sends a full, and holds that snapshot.
    write_tree(&files, &version(4, 16));
    host.snapshot("web", "after-rollback");
    host.export("web", "after-rollback", None);
    assert_eq!(holds(&format!("{}@after-rollback", host.dataset("web"))), "1");
}
