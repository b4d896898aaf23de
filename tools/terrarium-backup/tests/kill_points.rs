//! Kill points: `export` and `prune` are killed (SIGKILL, through the test-only
//! `TERRARIUM_TEST_KILL_AFTER`) after each of their recorded steps, on a fresh scene
//! each time; a normal rerun must then succeed and leave the same state a run that was
//! never killed leaves. The points are discovered from a normal run
//! (`TERRARIUM_TEST_KILLPOINTS`), so a new step is exercised without editing this file.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;

use common::{Host, write_text};
use terrarium_common::paths::env;

/// The points a normal run of `args` passes, in order, each once.
fn discover(host: &Host, args: &[&str]) -> Vec<String> {
    let record = host.root.path().join("killpoints.txt");
    let out = host.tool(args).env(env::KILLPOINTS, &record).output().unwrap();
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    terrarium_testkit::killpoints::passed(&record)
}

/// Run `args` so that it dies at `point`; it must die by SIGKILL there.
fn kill_at(host: &Host, args: &[&str], point: &str) {
    let out = host.tool(args).env(env::KILL_AFTER, point).output().unwrap();
    assert_eq!(
        out.status.signal(),
        Some(libc_sigkill()),
        "{args:?} was to die after {point} but ended with {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

const fn libc_sigkill() -> i32 {
    9
}

fn export(host: &Host, snapshot: &str, full: bool) {
    write_text(&host.files("web").join(format!("{snapshot}.txt")), 20_000, snapshot);
    host.snapshot("web", snapshot);
    host.run_json(if full { &["export", "--full"] } else { &["export"] });
}

/// Names of files directly in `dir` (none when it does not exist).
fn file_names(dir: &std::path::Path) -> BTreeSet<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return BTreeSet::new();
    };
    entries.flatten().filter(|e| e.path().is_file()).map(|e| e.file_name().to_string_lossy().into_owned()).collect()
}

/// The restore points of `web` in the bucket (snapshot names).
fn restore_points(host: &Host) -> BTreeSet<String> {
    let dir = host.object(&host.key("web", ""));
    file_names(&dir).iter().filter_map(|n| n.strip_suffix(".manifest.json").map(str::to_string)).collect()
}

/// What a converged host looks like: exactly `points` in the bucket, each with its
/// stream and nothing else; no incomplete upload; the local catalog and lastsnapshots
/// agree with the bucket; one hold, on `latest`; no pending upload recorded.
fn assert_converged(host: &Host, points: &[&str], latest: &str, after: &str) {
    let expected: BTreeSet<String> = points.iter().map(|p| p.to_string()).collect();
    assert_eq!(restore_points(host), expected, "restore points after a kill at {after}");
    let mut objects = BTreeSet::new();
    for point in points {
        let manifest: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(host.object(&host.key("web", &format!("{point}.manifest.json")))).unwrap(),
        )
        .unwrap();
        let key = manifest["object_key"].as_str().unwrap().to_string();
        assert!(host.object(&key).is_file(), "{point}'s stream {key} is gone after a kill at {after}");
        objects.insert(key.rsplit('/').next().unwrap().to_string());
        objects.insert(format!("{point}.manifest.json"));
    }
    let stored: BTreeSet<String> =
        file_names(&host.object(&host.key("web", ""))).into_iter().filter(|n| !n.starts_with('.')).collect();
    assert_eq!(stored, objects, "objects no manifest names (or missing) after a kill at {after}");
    assert!(
        host.incomplete_uploads().is_empty(),
        "incomplete upload after a kill at {after}: {:?}",
        host.incomplete_uploads()
    );
    let catalog: BTreeSet<String> = file_names(&host.state("catalog/web"))
        .iter()
        .filter_map(|n| n.strip_suffix(".manifest.json").map(str::to_string))
        .collect();
    assert_eq!(catalog, expected, "the local catalog after a kill at {after}");
    assert_eq!(std::fs::read_to_string(host.state("lastsnapshots/web")).unwrap().trim(), latest, "after {after}");
    assert_eq!(host.held("web"), [latest], "terrarium-backup's holds after a kill at {after}");
    assert!(file_names(&host.state("backup-uploads")).is_empty(), "a pending upload is still recorded after {after}");
    let verified = host.run_json(&["verify"]);
    assert_eq!(verified["ok"], true, "after a kill at {after}: {verified:#}");
}

/// s1 exported (full), s2 taken and not yet exported; streams encrypted to a fresh
/// age key when `encrypted`.
fn export_scene(encrypted: bool) -> Host {
    let host = Host::new(128);
    if encrypted {
        let (recipient, _) = common::age_keygen(host.root.path(), "age.key");
        host.write_config_encrypted(&host.s3.endpoint(), &[recipient]);
    }
    host.create_instance("web");
    export(&host, "s1", true);
    write_text(&host.files("web").join("s2.txt"), 20_000, "s2");
    host.snapshot("web", "s2");
    host
}

#[test]
fn an_export_killed_after_any_step_converges_on_the_next_run() {
    killed_exports_converge(false);
}

/// An encrypted stream cannot be resumed (age picks a new key for every stream), so
/// what matters is the same: the next run starts over and leaves no trace of the kill.
#[test]
fn an_encrypted_export_killed_after_any_step_converges_on_the_next_run() {
    killed_exports_converge(true);
}

fn killed_exports_converge(encrypted: bool) {
    let points = discover(&export_scene(encrypted), &["export"]);
    eprintln!("{} kill points: {points:?}", points.len());
    for needed in ["export.snapshot-chosen", "export.manifest-written", "export.hold-placed", "export.last-recorded"] {
        assert!(points.iter().any(|p| p == needed), "{needed} not passed by a normal export: {points:?}");
    }
    assert!(points.len() >= 10, "fewer kill points than the export has steps: {points:?}");
    for point in &points {
        let host = export_scene(encrypted);
        kill_at(&host, &["export"], point);
        let report = host.run_json(&["export"]);
        assert_eq!(report["ok"], true, "rerun after a kill at {point}: {report:#}");
        assert_converged(&host, &["s1", "s2"], "s2", point);
    }
}

/// s1 (full), s2, s3 (full), s4 exported: keep_last 2 keeps s3 and s4, prune deletes s1, s2.
fn prune_scene() -> Host {
    let host = Host::new(128);
    host.create_instance("web");
    export(&host, "s1", true);
    export(&host, "s2", false);
    export(&host, "s3", true);
    export(&host, "s4", false);
    host
}

#[test]
fn a_prune_killed_after_any_step_converges_on_the_next_run() {
    let points = discover(&prune_scene(), &["prune"]);
    eprintln!("{} kill points: {points:?}", points.len());
    assert!(points.len() >= 3, "fewer kill points than a deletion has steps: {points:?}");
    for point in &points {
        let host = prune_scene();
        kill_at(&host, &["prune"], point);
        host.run_json(&["prune"]);
        assert_converged(&host, &["s3", "s4"], "s4", point);
    }
}
