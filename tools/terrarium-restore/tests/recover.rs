//! The `--as-new` hand-off on the real LXD 5.0 (namespaced, `dir` storage).
//!
//! LXD cannot use zfs-fuse pools here, so the restore's own path (a ZFS receive of
//! `<pool>/containers/NAME`, mounted for the edit) is not reachable with a real LXD.
//! This test replicates what that path hands over: the volume of a stopped c1, copied
//! to c2 as a receive of a snapshot leaves it (the files, no LXD snapshots), then the same two
//! functions the restore calls after mounting the dataset (`examples/recover_hand_off.rs`):
//! `recover::rewrite_volume` (the new `backup.yaml`) and `recover::import_without_prompts`
//! (the `--yes` hand-off: `lxd recover` answered, then `lxc start`).
#![allow(clippy::unwrap_used)] // tests: a panic is a failure

use std::path::{Path, PathBuf};

use terrarium_testkit::{Lxd, require};

fn config(lxd: &Lxd, name: &str) -> serde_json::Value {
    let instance: serde_json::Value =
        serde_json::from_str(&lxd.lxc(&["query", &format!("/1.0/instances/{name}")])).unwrap();
    instance["config"].clone()
}

fn status(lxd: &Lxd, name: &str) -> String {
    let state: serde_json::Value =
        serde_json::from_str(&lxd.lxc(&["query", &format!("/1.0/instances/{name}/state")])).unwrap();
    state["status"].as_str().unwrap_or_default().to_string()
}

#[test]
fn a_copied_volume_is_imported_as_a_new_instance_with_its_own_identity_and_runs() {
    let lxd = Lxd::start();
    lxd.launch("c1", &[]);
    lxd.lxc(&["snapshot", "c1", "s0"]);
    lxd.lxc(&["stop", "c1", "--force"]);
    let c1 = config(&lxd, "c1");
    assert!(c1["volatile.eth0.hwaddr"].is_string() && c1["volatile.uuid"].is_string(), "{c1}");

    // What a restore as new makes of c1: its volume's files under the new name, no snapshots.
    let containers = lxd.lxd_dir().join("storage-pools/default/containers");
    let copied = std::process::Command::new(require("cp"))
        .arg("-a")
        .arg(containers.join("c1"))
        .arg(containers.join("c2"))
        .status()
        .unwrap();
    assert!(copied.success());

    // The hand-off runs in a process with LXD's environment (the functions call `lxd`
    // and `lxc`, which find the daemon through LXD_DIR).
    let inner = std::process::Command::new(example("recover_hand_off"))
        .arg(containers.join("c2"))
        .args(["c1", "c2"])
        .env("PATH", path_with_lxd())
        .envs(lxd.env())
        .output()
        .unwrap();
    assert!(
        inner.status.success(),
        "the hand-off failed:\n{}{}\nlxd log:\n{}",
        String::from_utf8_lossy(&inner.stdout),
        String::from_utf8_lossy(&inner.stderr),
        std::fs::read_to_string(lxd.log_path()).unwrap_or_default()
    );

    assert_eq!(status(&lxd, "c2"), "Running");
    lxd.wait_ipv4("c2");
    let c2 = config(&lxd, "c2");
    for key in ["volatile.eth0.hwaddr", "volatile.uuid"] {
        assert!(c2[key].is_string(), "LXD gave c2 a {key}: {c2}");
        assert_ne!(c2[key], c1[key], "{key} is c2's own");
    }
    let snapshots = lxd.lxc(&["query", "/1.0/instances/c2/snapshots"]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&snapshots).unwrap(),
        serde_json::json!([]),
        "c2 has no snapshots"
    );
    let listed = lxd.lxc(&["list", "-f", "csv", "-c", "ns"]);
    assert!(listed.lines().any(|l| l == "c2,RUNNING"), "{listed}");

    // c1 is untouched and starts too, next to c2.
    lxd.lxc(&["start", "c1"]);
    assert_eq!(status(&lxd, "c1"), "Running");
    lxd.wait_ipv4("c1");
    assert_eq!(config(&lxd, "c1")["volatile.uuid"], c1["volatile.uuid"]);
}

/// An example of this package: `cargo test` builds them into `target/<profile>/examples`,
/// next to the `deps` directory that holds this test binary.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().and_then(Path::parent).unwrap().join("examples").join(name);
    assert!(path.is_file(), "{} is missing: run the test with cargo test, which builds the examples", path.display());
    path
}

/// PATH with the directories of `lxd` and `lxc` first.
fn path_with_lxd() -> std::ffi::OsString {
    let mut dirs: Vec<std::path::PathBuf> =
        ["lxd", "lxc"].iter().filter_map(|p| require(p).parent().map(Path::to_path_buf)).collect();
    dirs.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()));
    std::env::join_paths(dirs).unwrap()
}
