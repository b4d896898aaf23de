//! Storage discovery on real block devices: loop devices over sparse files, with
//! partition tables written by sfdisk in the test, read back through the real `lsblk`,
//! `sfdisk --json` and `blkid`. The loop devices are a host resource: each is detached
//! in `Drop`, also when an assertion fails. Only the devices made here are judged (the
//! machine may have others), plus the machine's own root disk, which must be refused.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use terrarium_common::config::StorageMode;
use terrarium_setup::storage::{self, TargetKind};

const GIB: u64 = 1 << 30;

struct LoopDevice {
    path: String,
    _dir: tempfile::TempDir,
}

impl LoopDevice {
    /// A loop device over a sparse file of `size` bytes; `table` (sfdisk script) is
    /// written to the file first, and the kernel scans it (`losetup -P`).
    fn new(size: u64, table: Option<&str>) -> Self {
        terrarium_testkit::require("losetup");
        let sfdisk = terrarium_testkit::require("sfdisk");
        let dir = tempfile::Builder::new().prefix("terrarium-loop-").tempdir().unwrap();
        let image = dir.path().join("disk.img");
        std::fs::File::create(&image).unwrap().set_len(size).unwrap();
        if let Some(table) = table {
            let mut child =
                Command::new(&sfdisk).arg("--quiet").arg(&image).stdin(std::process::Stdio::piped()).spawn().unwrap();
            std::io::Write::write_all(child.stdin.as_mut().unwrap(), table.as_bytes()).unwrap();
            assert!(child.wait().unwrap().success(), "sfdisk failed");
        }
        let out = Command::new("losetup").args(["--find", "--show", "--partscan"]).arg(&image).output().unwrap();
        assert!(out.status.success(), "losetup: {}", String::from_utf8_lossy(&out.stderr));
        let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if table.is_some() {
            // The partition scan of `losetup -P` does not always happen in a container;
            // ask for it explicitly ("already added" is fine).
            let _ = Command::new(terrarium_testkit::require("partx")).args(["--add", &path]).output();
        }
        Self { path, _dir: dir }
    }
    fn partition(&self, n: u32) -> String {
        format!("{}p{n}", self.path)
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("--detach").arg(&self.path).status();
    }
}

/// Wait until the kernel lists the partition (no udev here, so /dev may lack its node;
/// lsblk reads /sys).
fn wait_for_partition(path: &str) {
    let name = path.trim_start_matches("/dev/");
    let disk = name.rsplit_once('p').map_or(name, |(disk, _)| disk);
    let sys = format!("/sys/block/{disk}/{name}");
    for _ in 0..50 {
        if Path::new(&sys).exists() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("{path} did not appear");
}

#[test]
fn loop_devices_with_real_partition_tables() {
    let blank = LoopDevice::new(3 * GIB, None);
    // 1.5 GiB partition at the start, about 2.5 GiB free behind it.
    let partitioned = LoopDevice::new(4 * GIB, Some("label: gpt\nsize=1536MiB\n"));
    wait_for_partition(&partitioned.partition(1));

    let facts = storage::probe().unwrap();
    let ours = |path: &str| path == blank.path || path.starts_with(&partitioned.path);

    let disk = storage::discover(&facts, StorageMode::Disk);
    let targets: Vec<(&str, u64)> =
        disk.targets.iter().filter(|t| ours(&t.path)).map(|t| (t.path.as_str(), t.size)).collect();
    assert_eq!(targets, vec![(blank.path.as_str(), 3 * GIB)]);
    let refusal =
        disk.refused.iter().find(|r| r.path == partitioned.path).expect("the partitioned disk is refused in disk mode");
    assert!(refusal.reason.contains("partition"), "{}", refusal.reason);

    let partition = storage::discover(&facts, StorageMode::Partition);
    let targets: Vec<_> = partition.targets.iter().filter(|t| ours(&t.path)).collect();
    assert_eq!(targets.len(), 2, "{targets:?}");
    // Largest first: the free space (~2.5 GiB), then the unused partition (1.5 GiB).
    assert_eq!(targets[0].path, partitioned.path);
    assert!(matches!(targets[0].kind, TargetKind::FreeSpace { .. }));
    assert!(targets[0].size > 2 * GIB && targets[0].size < 5 * GIB / 2, "{}", targets[0].size);
    assert_eq!((targets[1].path.as_str(), targets[1].size), (partitioned.partition(1).as_str(), 1536 << 20));
    assert!(partition.refused.iter().any(|r| r.path == blank.path && r.reason.contains("no partition table")));

    // The machine's own root disk is never offered.
    let root_disk =
        facts.devices.iter().find(|d| d.mounts_in_tree().iter().any(|m| m == "/")).map(|d| PathBuf::from(&d.path));
    if let Some(root_disk) = root_disk {
        let shown = root_disk.display().to_string();
        let refusal = disk.refused.iter().find(|r| r.path == shown).expect("root disk refused");
        assert!(refusal.reason.contains("root disk"), "{}", refusal.reason);
        assert!(disk.targets.iter().all(|t| t.path != shown));
    }
}
