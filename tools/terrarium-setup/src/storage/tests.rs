//! Discovery over captured `lsblk`/`sfdisk`/`blkid` output of typical VPS layouts
//! (tests/fixtures/storage/<layout>/). The real block-device path is tested with loop
//! devices in tests/storage_loop.rs.

use std::path::PathBuf;

use terrarium_common::config::StorageMode;

use super::*;

fn layout(name: &str) -> StorageFacts {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/storage").join(name);
    from_dir(&dir).unwrap_or_else(|err| panic!("{name}: {err}"))
}

fn paths(targets: &[Target]) -> Vec<&str> {
    targets.iter().map(|t| t.path.as_str()).collect()
}

fn reason<'a>(discovery: &'a Discovery, path: &str) -> &'a str {
    discovery.refused.iter().find(|r| r.path == path).map_or("<not refused>", |r| r.reason.as_str())
}

#[test]
fn every_layout_snapshot() {
    for name in [
        "single-root-disk",
        "root-plus-blank-volume",
        "mounted-volume",
        "partitioned-second-disk",
        "lvm-root-and-spare-disks",
        "mbr-half-used",
    ] {
        let facts = layout(name);
        let both = serde_json::json!({
            "disk": discover(&facts, StorageMode::Disk),
            "partition": discover(&facts, StorageMode::Partition),
        });
        insta::assert_yaml_snapshot!(format!("discovery-{name}"), both);
    }
}

#[test]
fn a_single_root_disk_offers_nothing_and_says_why() {
    let facts = layout("single-root-disk");
    let disk = discover(&facts, StorageMode::Disk);
    assert!(disk.targets.is_empty());
    assert_eq!(reason(&disk, "/dev/vda"), "is the root disk (holds /)");
    assert_eq!(reason(&disk, "/dev/loop0"), "is mounted (at /snap/core22/1000)");
    let err = disk.select("auto", StorageMode::Disk).unwrap_err();
    assert!(err.contains("--storage-mode file") && err.contains("/dev/vda is the root disk"), "{err}");
    let partition = discover(&facts, StorageMode::Partition);
    assert!(partition.targets.is_empty());
    assert!(reason(&partition, "/dev/vda15").contains("is on /dev/vda, which is the root disk"));
}

#[test]
fn a_blank_volume_is_the_disk_target() {
    let discovery = discover(&layout("root-plus-blank-volume"), StorageMode::Disk);
    assert_eq!(paths(&discovery.targets), ["/dev/sdb"]);
    assert_eq!(discovery.select("auto", StorageMode::Disk).unwrap().path, "/dev/sdb");
    let err = discovery.select("/dev/sda", StorageMode::Disk).unwrap_err();
    assert!(
        err.starts_with("/dev/sda cannot be used: it is the root disk") && err.contains("/dev/sdb (largest)"),
        "{err}"
    );
    let err = discovery.select("/dev/sdz", StorageMode::Disk).unwrap_err();
    assert!(err.starts_with("/dev/sdz is not a block device"), "{err}");
}

#[test]
fn mounted_volumes_are_refused() {
    let discovery = discover(&layout("mounted-volume"), StorageMode::Disk);
    assert!(discovery.targets.is_empty());
    assert_eq!(reason(&discovery, "/dev/sdb"), "is mounted (at /mnt/HC_Volume_101)");
}

#[test]
fn partitions_and_free_space_largest_first() {
    let facts = layout("partitioned-second-disk");
    let discovery = discover(&facts, StorageMode::Partition);
    assert_eq!(paths(&discovery.targets), ["/dev/nvme1n1p2", "/dev/nvme1n1"]);
    assert_eq!(discovery.targets[0].size, 30 << 30);
    assert!(matches!(discovery.targets[1].kind, TargetKind::FreeSpace { .. }));
    assert_eq!(reason(&discovery, "/dev/nvme1n1p1"), "holds a ext4 signature (in use)");
    assert_eq!(discovery.select("auto", StorageMode::Partition).unwrap().path, "/dev/nvme1n1p2");
    let disk = discover(&facts, StorageMode::Disk);
    assert!(reason(&disk, "/dev/nvme1n1").contains("use --storage-mode partition"));
}

#[test]
fn lvm_root_swap_and_signatures_found_by_blkid_are_refused() {
    let discovery = discover(&layout("lvm-root-and-spare-disks"), StorageMode::Disk);
    assert_eq!(paths(&discovery.targets), ["/dev/sdb"]);
    assert_eq!(reason(&discovery, "/dev/sda"), "is the root disk (holds /)");
    assert_eq!(reason(&discovery, "/dev/sdc"), "holds a zfs_member signature (in use)");
    assert_eq!(reason(&discovery, "/dev/sdd"), "holds swap");
    assert_eq!(reason(&discovery, "/dev/sr0"), "is a rom device, not a disk");
}

#[test]
fn mbr_free_space_is_refused_with_the_way_out() {
    let discovery = discover(&layout("mbr-half-used"), StorageMode::Partition);
    assert!(
        discovery.targets.iter().all(|t| t.kind != TargetKind::FreeSpace { start_byte: (32u64 << 30) + (1 << 20) })
    );
    assert_eq!(
        reason(&discovery, "/dev/vdb"),
        "has free space, but a dos (MBR) partition table: Terrarium adds partitions only to GPT disks; create one \
         there yourself (fdisk) and choose it"
    );
}

#[test]
fn free_regions_are_aligned_and_skip_used_ranges() {
    let table = facts::PartitionTable {
        label: "gpt".into(),
        firstlba: Some(34),
        lastlba: Some(1_000_000),
        sectorsize: Some(512),
        partitions: vec![facts::TablePartition { node: "p1".into(), start: 4096, size: 4096 }],
    };
    let regions = discover::free_regions(&table, 0);
    // 34 aligns up to sector 2048; p1 covers 4096..8192; the rest runs to lastlba.
    assert_eq!(regions, vec![(2048 * 512, 2048 * 512), (8192 * 512, (1_000_001 - 8192) * 512)]);
}
