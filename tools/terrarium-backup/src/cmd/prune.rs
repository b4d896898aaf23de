//! `terrarium-backup prune`: S3 retention, chain-aware.

use serde::Serialize;
use terrarium_common::Exit;
use terrarium_common::killpoint;
use terrarium_common::output::print_json;

use std::collections::HashSet;

use super::{lock_waiting, now};
use crate::context::Context;
use crate::metrics::Observed;
use crate::state;
use terrarium_archive::keys::KeyLayout;
use terrarium_archive::manifest::Manifest;
use terrarium_archive::remote::{self, RemoteInstance};
use terrarium_archive::retention::{Policy, plan};
use terrarium_archive::s3::Store;

#[derive(Debug, Serialize)]
struct InstancePlan {
    instance: String,
    keep: Vec<String>,
    keep_for_chains: Vec<String>,
    delete: Vec<String>,
    /// Streams no manifest names (keys) and local catalog entries no manifest backs
    /// (snapshots): what an interrupted prune or export left.
    leftover_streams: Vec<String>,
    leftover_catalog: Vec<String>,
}

/// The manifest of one of `streams` that the listing did not show but the bucket has.
fn listed_wrongly(store: &Store, streams: &[String]) -> anyhow::Result<Option<String>> {
    for stream in streams {
        if let Some(manifest) = KeyLayout::manifest_key_for_stream(stream)
            && store.head(&manifest)?.is_some()
        {
            return Ok(Some(manifest));
        }
    }
    Ok(None)
}

/// What an interrupted run left for `remote`'s instance: streams under its prefix that
/// no manifest names (a prune killed between deleting a manifest and its stream, an
/// export killed between its upload and its manifest), and local catalog entries whose
/// manifest is gone from S3 (a prune killed before its catalog step). Pure.
fn leftovers(remote: &RemoteInstance, catalog: &[Manifest]) -> (Vec<String>, Vec<String>) {
    let named: HashSet<&str> = remote.manifests.iter().map(|m| m.object_key.as_str()).collect();
    let streams = remote.objects.keys().filter(|k| KeyLayout::is_stream_key(k) && !named.contains(k.as_str()));
    let points: HashSet<&str> = remote.manifests.iter().map(|m| m.snapshot.name.as_str()).collect();
    let stale = catalog.iter().map(|m| &m.snapshot.name).filter(|name| !points.contains(name.as_str()));
    (streams.cloned().collect(), stale.cloned().collect())
}

pub fn run(ctx: &Context, dry_run: bool, lock_wait: Option<u64>, observed: &mut Observed) -> anyhow::Result<Exit> {
    let _lock = if dry_run { None } else { Some(lock_waiting(ctx, "prune", lock_wait)?) };
    let (store, keys) = ctx.store()?;
    let retention = &ctx.config.backup.s3_retention;
    let policy = Policy { keep_last: retention.keep_last, keep_days: retention.keep_days };
    let mut plans = Vec::new();
    let mut skipped = Vec::new();
    for instance in remote::instances(&store, &keys)? {
        let remote = remote::load_instance(&store, &keys, &instance)?;
        if !remote.unreadable.is_empty() {
            // Without every manifest we cannot tell which streams a chain needs, and a
            // manifest out of place may name an object that is not its own.
            let (key, problem) = &remote.unreadable[0];
            log::error!(instance = instance.as_str(), key = key.as_str(); "not pruning this instance: {problem}");
            skipped.push(instance);
            continue;
        }
        let planned = plan(&remote.manifests, policy, now());
        let names = |v: &[Manifest]| v.iter().map(|m| m.snapshot.name.clone()).collect::<Vec<_>>();
        let (leftover_streams, leftover_catalog) = leftovers(&remote, &state::read_catalog(&ctx.paths, &instance));
        // A stream looks left over when the listing shows no manifest for it. Ask for
        // the manifest itself before believing that: a listing that left out a manifest
        // that is there would make this run delete a stream a chain needs.
        if let Some(hidden) = listed_wrongly(&store, &leftover_streams)? {
            log::error!(instance = instance.as_str(), key = hidden.as_str(); "not pruning this instance: the listing left out {hidden}, which is in the bucket; rerun when the S3 server lists it");
            skipped.push(instance);
            continue;
        }
        if !dry_run {
            // Before the planned deletions, so a run killed after a manifest delete is
            // finished by the next one, whatever that one plans.
            for key in &leftover_streams {
                store.delete(key)?;
                killpoint::reached("prune.leftover-stream-deleted");
                log::info!(instance = instance.as_str(), key = key.as_str(); "deleted a stream no restore point names");
            }
            for snapshot in &leftover_catalog {
                state::remove_catalog(&ctx.paths, &instance, snapshot)?;
                log::info!(instance = instance.as_str(), snapshot = snapshot.as_str(); "forgot a restore point that is gone from S3");
            }
            for manifest in &planned.delete {
                // Manifest first: a restore point never names a stream that is gone.
                store.delete(&keys.manifest_key(&instance, &manifest.snapshot.name))?;
                killpoint::reached("prune.manifest-deleted");
                store.delete(&manifest.object_key)?;
                killpoint::reached("prune.stream-deleted");
                state::remove_catalog(&ctx.paths, &instance, &manifest.snapshot.name)?;
                killpoint::reached("prune.catalog-removed");
                log::info!(instance = instance.as_str(), snapshot = manifest.snapshot.name.as_str(); "deleted restore point");
            }
        } else {
            for manifest in &planned.delete {
                log::info!(instance = instance.as_str(), snapshot = manifest.snapshot.name.as_str(); "would delete restore point");
            }
            for key in &leftover_streams {
                log::info!(instance = instance.as_str(), key = key.as_str(); "would delete a stream no restore point names");
            }
        }
        if !dry_run {
            observed.pruned.insert(instance.clone(), planned.delete.len() as u64);
            // Prune never deletes the newest restore point (keep_last is at least 1).
            if let Some(newest) = remote.catalog().latest() {
                observed.newest_restore_point.insert(instance.clone(), newest.started_at);
            }
        }
        plans.push(InstancePlan {
            instance,
            keep: names(&planned.selected),
            keep_for_chains: names(&planned.needed),
            delete: names(&planned.delete),
            leftover_streams,
            leftover_catalog,
        });
    }
    if ctx.json {
        print_json(&serde_json::json!({ "dry_run": dry_run, "instances": plans, "skipped": skipped }))?;
    } else {
        for p in &plans {
            let leftovers = p.leftover_streams.len() + p.leftover_catalog.len();
            println!(
                "{}: keep {}, keep for chains {}, {} {}{}",
                p.instance,
                p.keep.len(),
                p.keep_for_chains.len(),
                if dry_run { "would delete" } else { "deleted" },
                p.delete.len(),
                match leftovers {
                    0 => String::new(),
                    n => format!(" and {n} left by an interrupted run"),
                }
            );
        }
        for instance in &skipped {
            println!("{instance}: not pruned (see the error above)");
        }
    }
    // The instances that were skipped keep everything: the run is only partly done.
    Ok(if skipped.is_empty() { Exit::Success } else { Exit::Partial })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use terrarium_archive::manifest::Kind;
    use terrarium_archive::manifest::sample;

    #[test]
    fn leftovers_are_streams_no_manifest_names_and_catalog_entries_s3_lost() {
        let kept = sample(Kind::Full);
        let mut gone = sample(Kind::Full);
        gone.snapshot.name = "old".into();
        let objects = [
            (kept.object_key.clone(), 5),
            (terrarium_archive::keys::KeyLayout::manifest_key_for_stream(&kept.object_key).unwrap(), 1),
            ("terrarium/host1/web/old.zfs.zst".to_string(), 5),
            ("terrarium/host1/web/notes.txt".to_string(), 5),
        ];
        let remote = RemoteInstance {
            instance: "web".into(),
            manifests: vec![kept.clone()],
            objects: objects.into_iter().collect(),
            unreadable: Vec::new(),
        };
        let (streams, catalog) = leftovers(&remote, &[kept, gone]);
        // Only what export writes is swept: a file someone else put there stays.
        assert_eq!(streams, ["terrarium/host1/web/old.zfs.zst"]);
        assert_eq!(catalog, ["old"]);
    }
}
