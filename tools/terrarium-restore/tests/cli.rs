//! The command line over the real binary: help, usage errors, `list`, and the `--at`
//! errors (which come before LXD is asked anything), on a real zfs-fuse pool and s3s-fs.
#![allow(clippy::unwrap_used)] // tests: a panic is a failure

mod common;

use common::*;

fn bare() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("terrarium-restore").unwrap();
    cmd.env("TERRARIUM_LOG_FORMAT", "human").env_remove("TERRARIUM_ROOT");
    cmd
}

#[test]
fn help_shows_the_flags_users_know() {
    let out = bare().arg("--help").output().unwrap();
    assert!(out.status.success());
    insta::assert_snapshot!(stdout(&out));
}

#[test]
fn usage_errors_exit_2_and_name_the_flag() {
    let missing = bare().output().unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(stderr(&missing).contains("--instance"), "{}", stderr(&missing));
    let bad = bare().args(["--instance", "web/x", "--root", "/nonexistent"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    insta::assert_snapshot!(stderr(&bad).trim(), @"terrarium-restore: error: --instance `web/x` is not a valid instance name; use letters, digits and `-`, starting with a letter (at most 63)");
    let keep = bare().args(["--instance", "web", "--keep-old", "--root", "/nonexistent"]).output().unwrap();
    assert_eq!(keep.status.code(), Some(2));
    assert!(stderr(&keep).contains("--keep-old applies to an S3 restore in place only"), "{}", stderr(&keep));
    let source = bare().args(["--instance", "web", "--source", "tape"]).output().unwrap();
    assert_eq!(source.status.code(), Some(2));
}

#[test]
fn local_at_errors_name_the_nearest_or_the_matches() {
    let host = Host::new(128, false);
    host.create_instance("web");
    write_tree(&host.files("web"), &version(1, 4));
    for name in [
        "autosnap_2026-11-28_10:00:01_hourly",
        "autosnap_2026-11-28_11:00:01_hourly",
        "autosnap_2026-11-28_11:15:01_frequently",
    ] {
        host.snapshot("web", name);
    }

    let list = host.restore(&[]).args(["list", "--instance", "web"]).output().unwrap();
    assert!(list.status.success(), "{}", stderr(&list));
    let lines: Vec<&str> = std::str::from_utf8(&list.stdout).unwrap().lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[0].starts_with("autosnap_2026-11-28_10:00:01_hourly ("), "{lines:?}");
    let json = host.restore(&[]).args(["list", "--instance", "web", "--json"]).output().unwrap();
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(value["restore_points"].as_array().unwrap().len(), 3);
    assert_eq!(value["restore_points"][2]["snapshot"], "autosnap_2026-11-28_11:15:01_frequently");

    let ambiguous = host.restore(&[]).args(["--instance", "web", "--at", "hourly", "--yes"]).output().unwrap();
    assert_eq!(ambiguous.status.code(), Some(2), "{}", stderr(&ambiguous));
    let message = stderr(&ambiguous);
    assert!(
        message.contains("--at \"hourly\" matches 2 restore points of web: autosnap_2026-11-28_10:00:01_hourly"),
        "{message}"
    );

    let missing = host.restore(&[]).args(["--instance", "web", "--at", "12:00", "--yes"]).output().unwrap();
    assert_eq!(missing.status.code(), Some(2), "{}", stderr(&missing));
    assert!(
        stderr(&missing).contains("no restore point of web matches --at \"12:00\"; nearest: "),
        "{}",
        stderr(&missing)
    );

    // Before every snapshot: the oldest ones are named.
    let early = host.restore(&[]).args(["--instance", "web", "--at", "2001-01-01", "--yes"]).output().unwrap();
    assert_eq!(early.status.code(), Some(2), "{}", stderr(&early));
    assert!(stderr(&early).contains("nearest: autosnap_2026-11-28_10:00:01_hourly ("), "{}", stderr(&early));

    let unknown = host.restore(&[]).args(["--instance", "nope", "--yes"]).output().unwrap();
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        stderr(&unknown).contains(&format!(
            "unknown instance nope: no dataset {}/containers/nope (instances with datasets: web)",
            host.pool.name()
        )),
        "{}",
        stderr(&unknown)
    );
    // Nothing changed.
    assert_eq!(host.snapshots("web").len(), 3);
}

#[test]
fn s3_list_and_at_errors_come_from_the_manifests() {
    let host = Host::new(128, true);
    host.create_instance("web");
    write_tree(&host.files("web"), &version(1, 4));
    host.snapshot("web", "autosnap_2026-11-28_10:00:00_daily");
    host.export("web", "autosnap_2026-11-28_10:00:00_daily", None);
    write_tree(&host.files("web"), &version(2, 4));
    host.snapshot("web", "autosnap_2026-11-29_10:00:00_daily");
    host.export("web", "autosnap_2026-11-29_10:00:00_daily", Some("autosnap_2026-11-28_10:00:00_daily"));

    let list = host
        .restore(&[])
        .args(["list", "--instance", "web", "--source", "s3", "--from-host", HOST, "--json"])
        .output()
        .unwrap();
    assert!(list.status.success(), "{}", stderr(&list));
    let value: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let names: Vec<&str> =
        value["restore_points"].as_array().unwrap().iter().map(|p| p["snapshot"].as_str().unwrap()).collect();
    assert_eq!(names, ["autosnap_2026-11-28_10:00:00_daily", "autosnap_2026-11-29_10:00:00_daily"]);

    let early = host
        .restore(&[])
        .args(["--instance", "web", "--source", "s3", "--from-host", HOST, "--at", "2026-11-27", "--yes"])
        .output()
        .unwrap();
    assert_eq!(early.status.code(), Some(2), "{}", stderr(&early));
    assert!(
        stderr(&early).contains("nearest: autosnap_2026-11-28_10:00:00_daily (2026-11-28 10:00:00 UTC)"),
        "{}",
        stderr(&early)
    );

    let other =
        host.restore(&[]).args(["--instance", "db", "--source", "s3", "--from-host", HOST, "--yes"]).output().unwrap();
    assert_eq!(other.status.code(), Some(2), "{}", stderr(&other));
    assert!(
        stderr(&other).contains("unknown instance db: no restore points in s3://")
            && stderr(&other).contains("(instances there: web)"),
        "{}",
        stderr(&other)
    );

    // A manifest deleted from the middle: the chain is broken, and the missing link named.
    std::fs::remove_file(host.object_path(&host.keys().manifest_key("web", "autosnap_2026-11-28_10:00:00_daily")))
        .unwrap();
    let broken =
        host.restore(&[]).args(["--instance", "web", "--source", "s3", "--from-host", HOST, "--yes"]).output().unwrap();
    assert_eq!(broken.status.code(), Some(5), "{}", stderr(&broken));
    assert!(stderr(&broken).contains("broken at autosnap_2026-11-28_10:00:00_daily"), "{}", stderr(&broken));
}

#[test]
fn a_run_killed_between_the_two_renames_is_named_with_the_way_back() {
    let host = Host::new(128, true);
    host.create_instance("web");
    write_tree(&host.files("web"), &version(1, 4));
    host.snapshot("web", "autosnap_2026-11-28_10:00:00_daily");
    host.export("web", "autosnap_2026-11-28_10:00:00_daily", None);
    // What a run killed inside the swap leaves: the original set aside, nothing in place.
    let aside = format!("{}/terrarium-restore/web.replaced-20261128T120000Z", host.pool.name());
    host.pool.zfs(&["create", "-o", "mountpoint=none", &format!("{}/terrarium-restore", host.pool.name())]);
    host.pool.zfs(&["unmount", &host.dataset("web")]);
    host.pool.zfs(&["rename", &host.dataset("web"), &aside]);

    let out = host.restore(&[]).args(["--instance", "web", "--source", "s3", "--yes"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("put it back with `zfs rename {aside} {}`", host.dataset("web"))),
        "{}",
        stderr(&out)
    );
    assert!(host.exists(&aside), "nothing was changed");
}

#[test]
fn a_restore_waits_for_the_backups_lock_then_exits_4_naming_the_holder_but_a_dry_run_goes_ahead() {
    let host = Host::new(128, false);
    host.create_instance("web");
    host.snapshot("web", "first");
    host.snapshot("web", "second");
    // The lock export, prune, replicate and `verify --deep` take.
    let paths = terrarium_common::Paths::new(host.root.path());
    let held = terrarium_common::locks::BACKUPS.acquire(&paths, "export").unwrap();
    let bin = tempfile::tempdir().unwrap();
    let path = test_path(Some(&no_instances_lxc(bin.path())));
    let dry = host
        .restore(&[])
        .env("PATH", &path)
        .args(["--instance", "web", "--at", "first", "--dry-run"])
        .output()
        .unwrap();
    assert_eq!(dry.status.code(), Some(0), "{}", stderr(&dry));
    assert!(stdout(&dry).contains("roll back"), "{}", stdout(&dry));
    let real =
        host.restore(&[]).env("PATH", &path).args(["--instance", "web", "--at", "first", "--yes"]).output().unwrap();
    assert_eq!(real.status.code(), Some(4), "{}", stderr(&real));
    assert!(
        stderr(&real).contains(&format!("pid {} (", std::process::id())) && stderr(&real).contains(" export)"),
        "{}",
        stderr(&real)
    );
    assert_eq!(host.snapshots("web"), ["first", "second"], "nothing was rolled back");
    drop(held);
}

#[test]
fn global_flags_work_before_and_after_list_and_restore_flags_do_not_mix_with_it() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().to_str().unwrap();
    let wanted = format!("no Terrarium config at {dir}/etc/terrarium/config.yaml");
    for args in [
        vec!["--root", dir, "list", "--instance", "web"],
        vec!["list", "--root", dir, "--instance", "web"],
        vec!["--json", "--root", dir, "list", "--instance", "web"],
    ] {
        let out = bare().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(&wanted), "{args:?} did not reach the config: {}", stderr(&out));
    }
    let mixed = bare().args(["--instance", "web", "list", "--instance", "web", "--root", dir]).output().unwrap();
    assert_eq!(mixed.status.code(), Some(2));
    assert!(stderr(&mixed).contains("`--instance` before `list` is a restore option"), "{}", stderr(&mixed));
}
