//! `terrarium-backup list`: local snapshots and S3 restore points per instance.

use std::collections::BTreeMap;

use serde::Serialize;
use terrarium_common::Exit;
use terrarium_common::output::{human_bytes, print_json};

use crate::context::Context;
use terrarium_archive::manifest::Kind;
use terrarium_archive::remote;
use terrarium_archive::zfs::{Zfs, ZfsError};

#[derive(Debug, Default, Serialize)]
struct Instance {
    instance: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    dataset: Option<String>,
    local: Vec<LocalSnapshot>,
    /// `null` when S3 is not enabled (or `--local`).
    s3: Option<Vec<RestorePoint>>,
}

#[derive(Debug, Serialize)]
struct LocalSnapshot {
    name: String,
    guid: String,
    createtxg: u64,
}

#[derive(Debug, Serialize)]
struct RestorePoint {
    snapshot: String,
    kind: Kind,
    base: Option<String>,
    compressed_bytes: u64,
    #[serde(with = "time::serde::rfc3339")]
    finished_at: time::OffsetDateTime,
    /// Whether its chain resolves back to a full stream.
    restorable: bool,
    manifest_key: String,
}

pub fn run(ctx: &Context, only: Option<&str>, local_only: bool) -> anyhow::Result<Exit> {
    let zfs = Zfs::new();
    let mut instances: BTreeMap<String, Instance> = BTreeMap::new();
    let datasets = match zfs.container_datasets(ctx.pool()) {
        Ok(datasets) => datasets,
        // After a disaster the pool may not be there yet: what S3 holds is what matters.
        Err(err @ ZfsError::NoPool(_)) if ctx.s3_enabled() && !local_only => {
            log::warn!("{err}; listing the S3 restore points only");
            Vec::new()
        }
        Err(err) => return Err(err.into()),
    };
    for dataset in datasets {
        if only.is_some_and(|o| o != dataset.instance) {
            continue;
        }
        let local = zfs
            .snapshots(&dataset.dataset)?
            .into_iter()
            .map(|s| LocalSnapshot { name: s.name, guid: s.guid.to_string(), createtxg: s.createtxg })
            .collect();
        instances.insert(
            dataset.instance.clone(),
            Instance { instance: dataset.instance, dataset: Some(dataset.dataset), local, s3: None },
        );
    }
    if ctx.s3_enabled() && !local_only {
        let (store, keys) = ctx.store()?;
        let names = match only {
            Some(name) => vec![name.to_string()],
            None => remote::instances(&store, &keys)?,
        };
        for name in names {
            let remote = remote::load_instance(&store, &keys, &name)?;
            let catalog = remote.catalog();
            let points: Vec<RestorePoint> = catalog
                .restore_points()
                .into_iter()
                .map(|m| RestorePoint {
                    snapshot: m.snapshot.name.clone(),
                    kind: m.kind,
                    base: m.base.as_ref().map(|b| b.name.clone()),
                    compressed_bytes: m.compressed_bytes,
                    finished_at: m.finished_at,
                    restorable: catalog
                        .chain_of(m)
                        .is_ok_and(|c| terrarium_archive::chain::check_objects(&c, &remote.objects).is_ok()),
                    manifest_key: keys.manifest_key(&name, &m.snapshot.name),
                })
                .collect();
            if points.is_empty() && !instances.contains_key(&name) {
                continue; // neither here nor in S3: not an instance (see below)
            }
            instances
                .entry(name.clone())
                .or_insert_with(|| Instance { instance: name.clone(), ..Instance::default() })
                .s3 = Some(points);
        }
        for instance in instances.values_mut() {
            instance.s3.get_or_insert_with(Vec::new);
        }
    }
    if let Some(name) = only
        && instances.is_empty()
    {
        return Err(anyhow::Error::new(super::UnknownInstance(format!("{}/containers/{name}", ctx.pool())))
            .context(format!("no instance {name} here and no restore points of it in S3")));
    }
    let instances: Vec<Instance> = instances.into_values().collect();
    if ctx.json {
        print_json(&instances)?;
        return Ok(Exit::Success);
    }
    for instance in &instances {
        println!(
            "{}{}",
            instance.instance,
            instance.dataset.as_ref().map(|d| format!(" ({d})")).unwrap_or_else(|| " (no local dataset)".into())
        );
        println!("  local snapshots: {}", instance.local.len());
        for snapshot in &instance.local {
            println!("    {}", snapshot.name);
        }
        if let Some(points) = &instance.s3 {
            println!("  S3 restore points: {}", points.len());
            for point in points {
                let base = point.base.as_ref().map(|b| format!(" on {b}")).unwrap_or_default();
                let broken = if point.restorable { "" } else { "  BROKEN CHAIN" };
                println!(
                    "    {} {}{} {}{}",
                    point.snapshot,
                    point.kind.as_str(),
                    base,
                    human_bytes(point.compressed_bytes),
                    broken
                );
            }
        }
    }
    Ok(Exit::Success)
}
