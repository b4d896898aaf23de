//! Reading what planning needs from `zfs`. Manifests and objects in S3 are read by
//! `terrarium_archive::remote`, so restore, verify and prune agree on which manifest to trust.

use std::collections::BTreeMap;

use terrarium_archive::zfs::{HOLD_TAG, Zfs};

use crate::at::RestorePoint;

/// The snapshots of `dataset` as restore points (with their creation times).
pub fn local_points(zfs: &Zfs, dataset: &str) -> anyhow::Result<Vec<RestorePoint>> {
    let snapshots = zfs.snapshots(dataset)?;
    // `get -Hp` gives unix seconds on OpenZFS and zfs-fuse alike.
    let out = zfs.cmd().args(["get", "-Hp", "-r", "-d", "1", "-o", "name,value", "--", "creation", dataset]).run()?;
    let created: BTreeMap<&str, i64> = out
        .lines()
        .filter_map(|line| line.split_once('\t'))
        .filter_map(|(name, value)| Some((name.strip_prefix(dataset)?.strip_prefix('@')?, value.trim().parse().ok()?)))
        .collect();
    Ok(snapshots
        .into_iter()
        .map(|s| RestorePoint {
            created: created.get(s.name.as_str()).copied().unwrap_or(0),
            snapshot: s.name,
            guid: s.guid,
            createtxg: s.createtxg,
        })
        .collect())
}

/// The snapshots of `dataset` that terrarium-backup holds (short names; none where this
/// `zfs` has no holds).
pub fn backup_holds(zfs: &Zfs, dataset: &str) -> anyhow::Result<Vec<String>> {
    if !zfs.capabilities()?.holds {
        return Ok(Vec::new());
    }
    Ok(zfs.held_snapshots(dataset, HOLD_TAG)?)
}

/// Names of the filesystems directly under `parent` (empty when it does not exist).
pub fn children(zfs: &Zfs, parent: &str) -> anyhow::Result<Vec<String>> {
    match zfs.cmd().args(["list", "-H", "-o", "name", "-t", "filesystem", "-r", "-d", "1", "--", parent]).output() {
        Ok(out) => Ok(out.stdout.lines().filter(|l| *l != parent && !l.is_empty()).map(str::to_string).collect()),
        Err(err) if err.stderr().contains("does not exist") => Ok(Vec::new()),
        Err(err) => Err(err.into()),
    }
}
