//! The local time machine and replication with the real sanoid and syncoid on zfs-fuse.
//! zfs-fuse lacks `zfs get -t`, which both use: the testkit's test-only shim goes first on
//! their PATH (production OpenZFS has `-t`; the product never uses the shim).
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::process::Command;

use common::{Host, shim_path, snapshots, write_text};
use terrarium_testkit::{ZfsPool, require};

#[test]
fn sanoid_with_the_rendered_config_takes_and_prunes_container_snapshots() {
    let host = Host::new(128);
    host.create_instance("web");
    let report = host.run_json(&["sanoid-config"]);
    assert_eq!(report["changed"], true);
    assert_eq!(host.run_json(&["sanoid-config"])["changed"], false, "a second run changes nothing");
    let config_dir = host.root.path().join("etc/sanoid");
    std::fs::copy("/usr/share/sanoid/sanoid.defaults.conf", config_dir.join("sanoid.defaults.conf"))
        .expect("sanoid.defaults.conf: run tests/run; it installs the Debian package sanoid");
    let web = host.dataset("web");
    let work = tempfile::tempdir().unwrap();
    let sanoid = |action: &str| {
        let out = Command::new(require("sanoid"))
            .args([action, "--configdir"])
            .arg(&config_dir)
            .arg("--cache-dir")
            .arg(work.path())
            .arg("--run-dir")
            .arg(work.path())
            .env("PATH", shim_path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "sanoid {action}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    sanoid("--take-snapshots");
    let taken = snapshots(&host.pool, &web);
    for period in ["frequently", "hourly", "daily", "monthly"] {
        assert!(
            taken.iter().any(|s| s.starts_with("autosnap_") && s.ends_with(period)),
            "no new {period} snapshot: {taken:?}"
        );
    }
    assert!(
        snapshots(&host.pool, &host.pool.dataset("containers")).iter().all(|s| !s.starts_with("autosnap_")),
        "the containers parent itself is not snapshotted"
    );
    // Retention 0 for hourly: sanoid prunes every hourly snapshot older than now.
    let config_file = host.root.path().join("etc/terrarium/config.yaml");
    let config = std::fs::read_to_string(&config_file).unwrap().replace("    hourly: 3\n", "    hourly: 0\n");
    terrarium_common::fs::atomic_write(&config_file, config.as_bytes(), 0o600).unwrap();
    assert_eq!(host.run_json(&["sanoid-config"])["changed"], true);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    sanoid("--prune-snapshots");
    let left = snapshots(&host.pool, &web);
    assert!(left.iter().all(|s| !s.ends_with("_hourly")), "hourly: 0 prunes every hourly snapshot: {left:?}");
    assert!(
        left.iter().any(|s| s.ends_with("_daily")) && left.iter().any(|s| s.ends_with("_monthly")),
        "the others stay: {left:?}"
    );
}

#[test]
fn replicate_copies_the_containers_to_a_second_pool_with_syncoid() {
    let host = Host::new(128);
    let target = ZfsPool::create(128);
    host.create_instance("web");
    write_text(&host.files("web").join("a.txt"), 50_000, "one");
    host.snapshot("web", "s1");
    let destination = target.dataset("replica");
    let run = |expect: &str| {
        let out = host.tool(&["replicate", "--to", &destination]).env("PATH", shim_path()).output().unwrap();
        assert!(out.status.success(), "replicate: {}", String::from_utf8_lossy(&out.stderr));
        let copied = std::fs::read_to_string(target.mountpoint("replica/web").join("a.txt")).unwrap();
        assert!(copied.starts_with(expect), "{}", &copied[..20]);
    };
    let dry = host.run(&["replicate", "--to", &destination, "--dry-run"]);
    assert!(String::from_utf8_lossy(&dry.stdout).contains(&format!(
        "syncoid --recursive --no-privilege-elevation --quiet -- {} {destination}",
        host.pool.dataset("containers")
    )));
    run("one");
    assert!(snapshots(&target, &target.dataset("replica/web")).contains(&"s1".to_string()));
    write_text(&host.files("web").join("a.txt"), 50_000, "two");
    host.snapshot("web", "s2");
    // syncoid names its sync snapshot by the second: a second run within the same
    // second would collide with the first one's snapshot name.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    run("two");
    assert!(snapshots(&target, &target.dataset("replica/web")).contains(&"s2".to_string()));
}
