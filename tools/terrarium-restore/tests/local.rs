//! Local restores on a real zfs-fuse pool, with the instance stopped and started through
//! `lxc` against a real namespaced LXD. LXD cannot use zfs-fuse here, so the LXD
//! instance lives on LXD's `dir` storage: it stands for "the instance that uses this
//! dataset" (its state and restarts are real, its files are not on the pool).
#![allow(clippy::unwrap_used)] // tests: a panic is a failure

mod common;

use common::*;
use terrarium_testkit::Lxd;

#[test]
fn local_in_place_asks_first_then_rolls_back_and_restarts_the_instance() {
    let host = Host::new(256, false);
    host.create_instance("web");
    let files = host.files("web");
    write_tree(&files, &version(1, 64));
    host.snapshot("web", "autosnap_2026-11-28_10:00:01_hourly");
    // Creation times are real: take the next snapshots strictly later than `first_done`.
    let first_done = time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    write_tree(&files, &version(2, 64));
    host.snapshot("web", "autosnap_2026-11-28_11:00:01_hourly");
    write_tree(&files, &version(3, 64));
    host.snapshot("web", "before-upgrade");
    write_tree(&files, &version(4, 64));
    let current = tree_checksums(&files);

    let lxd = Lxd::start();
    lxd.launch("web", &[]);
    let (status, pid_before) = container_pid(&lxd, "web");
    assert_eq!(status, "Running");

    // No terminal and no --yes: refuses with exit 6 and changes nothing.
    let refused = host.restore(&lxd.env()).args(["--instance", "web", "--at", "10:00"]).output().unwrap();
    assert_eq!(refused.status.code(), Some(6), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("no terminal") && stderr(&refused).contains("--yes"), "{}", stderr(&refused));
    assert_eq!(tree_checksums(&files), current);
    assert_eq!(host.snapshots("web").len(), 3);
    assert_eq!(container_pid(&lxd, "web"), ("Running".into(), pid_before));

    // --dry-run by timestamp shows exactly what would be destroyed.
    let dry = host.restore(&lxd.env()).args(["--instance", "web", "--at", &first_done, "--dry-run"]).output().unwrap();
    assert!(dry.status.success(), "{}", stderr(&dry));
    let plan = stdout(&dry);
    assert!(plan.contains("roll back") && plan.contains("@autosnap_2026-11-28_10:00:01_hourly"), "{plan}");
    assert!(
        plan.contains("destroying 2 newer snapshots")
            && plan.contains("@before-upgrade")
            && plan.contains("web@autosnap_2026-11-28_11:00:01_hourly"),
        "{plan}"
    );
    assert!(plan.contains("stop the instance web") && plan.contains("start the instance web again"), "{plan}");
    assert_eq!(tree_checksums(&files), current);

    // A fragment, with the plan as JSON.
    let json = host
        .restore(&lxd.env())
        .args(["--instance", "web", "--at", "2026-11-28_10:00", "--dry-run", "--json"])
        .output()
        .unwrap();
    assert!(json.status.success(), "{}", stderr(&json));
    let value: serde_json::Value = serde_json::from_str(&stdout(&json)).unwrap();
    assert_eq!(value["restore_point"]["snapshot"], "autosnap_2026-11-28_10:00:01_hourly");
    assert_eq!(value["steps"][1]["destroys"].as_array().unwrap().len(), 2);

    let done = host.restore(&lxd.env()).args(["--instance", "web", "--at", "10:00", "--yes"]).output().unwrap();
    assert!(done.status.success(), "{}", stderr(&done));
    assert_eq!(tree_checksums(&files), checksums_of(&version(1, 64)));
    assert_eq!(host.snapshots("web"), ["autosnap_2026-11-28_10:00:01_hourly"]);
    let (status, pid_after) = container_pid(&lxd, "web");
    assert_eq!(status, "Running", "started again");
    assert_ne!(pid_after, pid_before, "the instance was stopped and started");
}

#[test]
fn local_as_new_copies_and_hands_off_to_lxd_recover_on_a_terminal() {
    let host = Host::new(256, false);
    host.create_instance("web");
    let files = host.files("web");
    write_tree(&files, &version(1, 16));
    host.snapshot("web", "first");
    write_tree(&files, &version(2, 16));
    host.snapshot("web", "second");
    let original = tree_checksums(&files);
    let lxd = Lxd::start();
    lxd.launch("taken", &[]);
    let stand_in_dir = tempfile::tempdir().unwrap();
    let bin = lxd_stand_in(stand_in_dir.path());
    let calls = stand_in_dir.path().join("lxd-calls");

    // A name LXD already has is refused.
    let taken = host
        .restore(&lxd.env())
        .env("PATH", test_path(Some(&bin)))
        .args(["--instance", "web", "--as-new", "taken", "--at", "first"])
        .output()
        .unwrap();
    assert_eq!(taken.status.code(), Some(2), "{}", stderr(&taken));
    assert!(
        stderr(&taken).contains("--as-new taken: an LXD instance named taken already exists"),
        "{}",
        stderr(&taken)
    );

    // Without a terminal: the copy is made, the next step is explained, nothing is exec'd.
    let plain = host
        .restore(&lxd.env())
        .env("PATH", test_path(Some(&bin)))
        .args(["--instance", "web", "--as-new", "web2", "--at", "first"])
        .output()
        .unwrap();
    assert!(plain.status.success(), "{}", stderr(&plain));
    assert!(stderr(&plain).contains("run `lxd recover` yourself"), "{}", stderr(&plain));
    assert!(!calls.exists(), "no hand-off without a terminal");
    assert_eq!(tree_checksums(&host.files("web2")), checksums_of(&as_new(&version(1, 16), "web2")));

    // The dataset exists now: the same name is refused.
    let again = host
        .restore(&lxd.env())
        .env("PATH", test_path(Some(&bin)))
        .args(["--instance", "web", "--as-new", "web2"])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2), "{}", stderr(&again));

    // On a terminal (a pty from `script`): exec of `lxd recover` with the terminal.
    let mut command = std::process::Command::new(terrarium_testkit::require("script"));
    let tool = assert_cmd::cargo::cargo_bin("terrarium-restore");
    command
        .args(["-qec", &format!("{} --instance web --as-new web3 --at second", tool.display()), "/dev/null"])
        .env("TERRARIUM_ROOT", host.root.path())
        .env("PATH", test_path(Some(&bin)))
        .envs(lxd.env())
        .stdin(std::process::Stdio::null());
    let handed = command.output().unwrap();
    assert!(handed.status.success(), "{}{}", stdout(&handed), stderr(&handed));
    assert!(stdout(&handed).contains("lxd recover"), "the explanation is shown: {}", stdout(&handed));
    assert_eq!(std::fs::read_to_string(&calls).unwrap(), "recover terminal\n");
    assert_eq!(tree_checksums(&host.files("web3")), checksums_of(&as_new(&version(2, 16), "web3")));
    assert_eq!(tree_checksums(&files), original, "the original is untouched");

    // The copies are datasets of their own: the snapshots they came from can go (a
    // clone's origin could not, nor could the original be deleted), and their files stay.
    for snapshot in ["first", "second"] {
        host.pool.zfs(&["destroy", &format!("{}@{snapshot}", host.dataset("web"))]);
    }
    assert_eq!(tree_checksums(&host.files("web2")), checksums_of(&as_new(&version(1, 16), "web2")));
    assert_eq!(tree_checksums(&host.files("web3")), checksums_of(&as_new(&version(2, 16), "web3")));
}
