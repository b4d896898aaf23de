//! Kill points: an S3 restore (in place, and as a new instance) is killed with SIGKILL
//! (the test-only `TERRARIUM_TEST_KILL_AFTER`) after each of its steps, on a fresh pool
//! and bucket each time; the same command run again must then succeed and leave what a
//! run that was never killed leaves: the restore point's files, its snapshots, the
//! instance running, no staging or set-aside dataset, nothing recorded as owed. The
//! points are discovered from a normal run (`TERRARIUM_TEST_KILLPOINTS`), so a new step
//! is exercised without editing this file. Real zfs-fuse, s3s-fs and a namespaced LXD
//! (whose instance stands for the one using the dataset, as in `s3.rs`).
#![allow(clippy::unwrap_used)] // tests: a panic is a failure

mod common;

use std::os::unix::process::ExitStatusExt;

use common::*;
use terrarium_common::paths::env;
use terrarium_testkit::Lxd;

const KIB: usize = 64;

/// The points a normal run of `args` passes, in order, each once.
fn discover(host: &Host, env_vars: &[(String, String)], args: &[&str]) -> Vec<String> {
    let record = host.root.path().join("killpoints.txt");
    let out = host.restore(env_vars).args(args).env(env::KILLPOINTS, &record).output().unwrap();
    assert!(out.status.success(), "{args:?} failed: {}", stderr(&out));
    terrarium_testkit::killpoints::passed(&record)
}

/// Run `args` so that it dies at `point`; it must die by SIGKILL there.
fn kill_at(host: &Host, env_vars: &[(String, String)], args: &[&str], point: &str) {
    let out = host.restore(env_vars).args(args).env(env::KILL_AFTER, point).output().unwrap();
    assert_eq!(out.status.signal(), Some(9), "{args:?} was to die after {point}: {}", stderr(&out));
    // An orphaned `zfs receive` ends on its closed stdin; give it a moment.
    std::thread::sleep(std::time::Duration::from_millis(300));
}

fn owed(host: &Host, instance: &str) -> bool {
    host.root.path().join(format!("var/lib/terrarium/restore-unfinished/{instance}.json")).exists()
}

#[test]
fn an_s3_restore_in_place_killed_after_any_step_converges_on_the_next_run() {
    let lxd = Lxd::start();
    lxd.launch("web", &[]);
    let args = ["--source", "s3", "--instance", "web", "--yes"];
    let points = discover(&exported_host(256, 3, KIB), &lxd.env(), &args);
    eprintln!("{} kill points: {points:?}", points.len());
    for needed in ["restore.receive-chain", "restore.stop-instance", "restore.set-aside", "restore.swap"] {
        assert!(points.iter().any(|p| p == needed), "{needed} not passed by a normal restore: {points:?}");
    }
    for point in &points {
        let host = exported_host(256, 3, KIB);
        kill_at(&host, &lxd.env(), &args, point);
        let rerun = host.restore(&lxd.env()).args(args).output().unwrap();
        assert!(rerun.status.success(), "rerun after a kill at {point}: {}", stderr(&rerun));
        assert_eq!(tree_checksums(&host.files("web")), checksums_of(&version(3, KIB)), "files after {point}");
        assert_eq!(host.snapshots("web"), [A, B, C], "snapshots after {point}");
        assert!(host.leftovers().is_empty(), "left after a kill at {point}: {:?}", host.leftovers());
        assert_eq!(container_pid(&lxd, "web").0, "Running", "the instance after a kill at {point}");
        assert!(!owed(&host, "web"), "still recorded as owed after a kill at {point}");
    }
}

#[test]
fn an_s3_restore_as_new_killed_after_any_step_converges_on_the_next_run() {
    let lxd = Lxd::start();
    let stand_in_dir = tempfile::tempdir().unwrap();
    let bin = lxd_stand_in(stand_in_dir.path());
    let args = ["--source", "s3", "--instance", "web", "--as-new", "web2"];
    let points = discover(&exported_host(256, 3, KIB), &lxd.env(), &args);
    eprintln!("{} kill points: {points:?}", points.len());
    assert!(points.iter().any(|p| p == "restore.swap"), "{points:?}");
    for point in &points {
        let host = exported_host(256, 3, KIB);
        let original = tree_checksums(&host.files("web"));
        let run = |kill: Option<&str>| {
            let mut cmd = host.restore(&lxd.env());
            cmd.env("PATH", test_path(Some(&bin))).args(args);
            if let Some(point) = kill {
                cmd.env(env::KILL_AFTER, point);
            }
            cmd.output().unwrap()
        };
        let killed = run(Some(point));
        assert_eq!(killed.status.signal(), Some(9), "to die after {point}: {}", stderr(&killed));
        std::thread::sleep(std::time::Duration::from_millis(300));
        let rerun = run(None);
        assert!(rerun.status.success(), "rerun after a kill at {point}: {}", stderr(&rerun));
        assert!(stderr(&rerun).contains("`lxd recover` imports it"), "{}", stderr(&rerun));
        assert_eq!(
            tree_checksums(&host.files("web2")),
            checksums_of(&as_new(&version(3, KIB), "web2")),
            "after {point}"
        );
        assert_eq!(host.snapshots("web2"), [A, B, C], "after {point}");
        assert_eq!(tree_checksums(&host.files("web")), original, "the original after a kill at {point}");
        assert!(host.leftovers().is_empty(), "left after a kill at {point}: {:?}", host.leftovers());
        assert!(!owed(&host, "web2"), "still recorded as owed after a kill at {point}");
    }
}
