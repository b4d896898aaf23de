//! Reading what planning needs: snapshots (`zfs`), manifests and objects (S3).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context as _;
use terrarium_backup::keys::{KeyLayout, MANIFEST_SUFFIX};
use terrarium_backup::manifest::Manifest;
use terrarium_backup::s3::Store;
use terrarium_backup::zfs::{HOLD_TAG, Zfs};

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

/// The manifests of `instance` and the sizes of every object under its prefix.
pub fn remote_catalog(
    store: &Store,
    keys: &KeyLayout,
    instance: &str,
) -> anyhow::Result<(Vec<Manifest>, BTreeMap<String, u64>)> {
    let listing = store.list(&keys.instance_prefix(instance))?;
    let keys: Vec<String> =
        listing.iter().filter(|o| o.key.ends_with(MANIFEST_SUFFIX)).map(|o| o.key.clone()).collect();
    let mut manifests = Vec::new();
    for (key, bytes) in keys.iter().zip(store.get_many(&keys)) {
        let text = String::from_utf8(bytes?).with_context(|| format!("manifest {key} is not UTF-8"))?;
        manifests.push(Manifest::parse(&text, key)?);
    }
    let sizes = listing.into_iter().map(|o| (o.key, o.size)).collect();
    Ok((manifests, sizes))
}

/// The instances with at least one manifest under the host's prefix.
pub fn remote_instances(store: &Store, keys: &KeyLayout) -> anyhow::Result<Vec<String>> {
    let listing = store.list(&keys.host_prefix())?;
    let names: BTreeSet<String> =
        listing.iter().filter_map(|o| keys.parse_manifest_key(&o.key)).map(|(instance, _)| instance).collect();
    Ok(names.into_iter().collect())
}

/// This host's name, the default `--from-host`: the name terrarium-backup files its
/// exports under (`/etc/hostname` under the root, else the kernel's).
pub fn this_host(paths: &terrarium_common::Paths) -> String {
    [paths.host("/etc/hostname"), "/proc/sys/kernel/hostname".into()]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .map(|text| text.trim().to_string())
        .find(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".into())
}
