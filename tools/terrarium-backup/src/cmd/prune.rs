//! `terrarium-backup prune`: S3 retention, chain-aware.

use serde::Serialize;
use terrarium_common::Exit;
use terrarium_common::output::print_json;

use super::{lock, now};
use crate::context::Context;
use crate::remote;
use crate::retention::{Policy, plan};
use crate::state;

#[derive(Debug, Serialize)]
struct InstancePlan {
    instance: String,
    keep: Vec<String>,
    keep_for_chains: Vec<String>,
    delete: Vec<String>,
}

pub fn run(ctx: &Context, dry_run: bool) -> anyhow::Result<Exit> {
    let _lock = if dry_run { None } else { Some(lock(ctx, "prune")?) };
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
        let names = |v: &[crate::manifest::Manifest]| v.iter().map(|m| m.snapshot.name.clone()).collect::<Vec<_>>();
        if !dry_run {
            for manifest in &planned.delete {
                // Manifest first: a restore point never names a stream that is gone.
                store.delete(&keys.manifest_key(&instance, &manifest.snapshot.name))?;
                store.delete(&manifest.object_key)?;
                state::remove_catalog(&ctx.paths, &instance, &manifest.snapshot.name)?;
                log::info!(instance = instance.as_str(), snapshot = manifest.snapshot.name.as_str(); "deleted restore point");
            }
        } else {
            for manifest in &planned.delete {
                log::info!(instance = instance.as_str(), snapshot = manifest.snapshot.name.as_str(); "would delete restore point");
            }
        }
        plans.push(InstancePlan {
            instance,
            keep: names(&planned.selected),
            keep_for_chains: names(&planned.needed),
            delete: names(&planned.delete),
        });
    }
    if ctx.json {
        print_json(&serde_json::json!({ "dry_run": dry_run, "instances": plans, "skipped": skipped }))?;
    } else {
        for p in &plans {
            println!(
                "{}: keep {}, keep for chains {}, {} {}",
                p.instance,
                p.keep.len(),
                p.keep_for_chains.len(),
                if dry_run { "would delete" } else { "deleted" },
                p.delete.len()
            );
        }
        for instance in &skipped {
            println!("{instance}: not pruned (see the error above)");
        }
    }
    // The instances that were skipped keep everything: the run is only partly done.
    Ok(if skipped.is_empty() { Exit::Success } else { Exit::Partial })
}
