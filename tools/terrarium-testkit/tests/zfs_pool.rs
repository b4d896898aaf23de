//! Smoke test of the real zfs-fuse pool: create, write, snapshot, send, receive.

use std::process::Command;

use terrarium_testkit::{ZfsPool, require, zfs_get_t_shim_dir};

fn pool_exists(name: &str) -> bool {
    Command::new(require("zpool"))
        .args(["list", "-H", "-o", "name", name])
        .output()
        .expect("run zpool")
        .status
        .success()
}

#[test]
fn pool_snapshot_send_receive_round_trip_and_destroy_on_drop() {
    let pool = ZfsPool::create(128);
    let name = pool.name().to_string();
    assert!(name.starts_with("tt"), "unique test prefix: {name}");
    assert!(pool_exists(&name));

    pool.zfs(&["create", &pool.dataset("data")]);
    let file = pool.mountpoint("data").join("hello.txt");
    std::fs::write(&file, b"hello from a zfs-fuse pool\n").expect("write into the dataset");
    pool.zfs(&["snapshot", &format!("{}@one", pool.dataset("data"))]);
    let snapshots = pool.zfs(&["list", "-H", "-o", "name", "-t", "snapshot", "-r", pool.name()]);
    assert_eq!(snapshots.trim(), format!("{}@one", pool.dataset("data")));

    // send | receive through a file: the stream is real and restores the content.
    let stream = pool.dir().join("one.zstream");
    let sent = Command::new(require("zfs"))
        .args(["send", &format!("{}@one", pool.dataset("data"))])
        .stdout(std::fs::File::create(&stream).expect("create stream file"))
        .status()
        .expect("run zfs send");
    assert!(sent.success());
    assert!(std::fs::metadata(&stream).expect("stream").len() > 1000, "a send stream has content");
    let received = Command::new(require("zfs"))
        .args(["receive", &pool.dataset("copy")])
        .stdin(std::fs::File::open(&stream).expect("open stream"))
        .status()
        .expect("run zfs receive");
    assert!(received.success());
    let copy = std::fs::read(pool.mountpoint("copy").join("hello.txt")).expect("received file");
    assert_eq!(copy, b"hello from a zfs-fuse pool\n");
    pool.zfs(&["destroy", "-r", &pool.dataset("copy")]);

    let dir = pool.dir().to_path_buf();
    drop(pool);
    assert!(!pool_exists(&name), "pool {name} is destroyed on drop");
    assert!(!dir.exists(), "its temporary directory is removed");
}

#[test]
fn two_pools_get_distinct_names() {
    let a = ZfsPool::create(64);
    let b = ZfsPool::create(64);
    assert_ne!(a.name(), b.name());
    assert_eq!(a.dataset(""), a.name());
    assert_eq!(a.dataset("x/y"), format!("{}/x/y", a.name()));
}

#[test]
fn get_t_shim_lists_only_snapshots_like_openzfs() {
    let pool = ZfsPool::create(64);
    pool.zfs(&["create", &pool.dataset("fs")]);
    pool.zfs(&["snapshot", &format!("{}@s1", pool.dataset("fs"))]);
    pool.zfs(&["snapshot", &format!("{}@s2", pool.dataset("fs"))]);
    let shim = zfs_get_t_shim_dir().join("zfs");
    // The form sanoid uses.
    let out =
        Command::new(&shim).args(["get", "-Hrpt", "snapshot", "creation", pool.name()]).output().expect("run the shim");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let names: Vec<String> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| l.split('\t').next().unwrap_or("").to_string()).collect();
    assert_eq!(names, vec![format!("{}@s1", pool.dataset("fs")), format!("{}@s2", pool.dataset("fs"))]);
    // Filesystems only, with -t as its own word.
    let out = Command::new(&shim)
        .args(["get", "-H", "-r", "-t", "filesystem", "-o", "name", "name", pool.name()])
        .output()
        .expect("run the shim");
    let names: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
    assert_eq!(names, vec![pool.name().to_string(), pool.dataset("fs")]);
    // Other subcommands pass through.
    let out = Command::new(&shim).args(["list", "-H", "-o", "name", pool.name()]).output().expect("run the shim");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), pool.name());
}
