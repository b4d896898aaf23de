//! `terrarium-backup verify [--deep]`: every chain contiguous, every object present with
//! its size; `--deep` restores the newest chain into a scratch dataset (a restore drill).

use serde::Serialize;
use terrarium_common::Exit;
use terrarium_common::instance::check_name;
use terrarium_common::output::{byte_progress, print_json};

use super::lock;
use crate::chain::{Chain, check_objects};
use crate::context::Context;
use crate::pipeline::receive_stream;
use crate::remote;
use crate::s3::Store;
use crate::zfs::Zfs;

#[derive(Debug, Serialize)]
struct InstanceResult {
    instance: String,
    restore_points: usize,
    problems: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    deep: Option<DeepResult>,
}

#[derive(Debug, Serialize)]
struct DeepResult {
    snapshot: String,
    streams: usize,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

pub fn run(ctx: &Context, only: Option<&str>, deep: bool) -> anyhow::Result<Exit> {
    let (store, keys) = ctx.store()?;
    let _lock = if deep { Some(lock(ctx, "verify --deep")?) } else { None };
    let instances = remote::instances(&store, &keys)?;
    let names = match only {
        Some(name) => {
            check_name("--instance", name).map_err(super::BadInput)?;
            if !instances.iter().any(|i| i == name) {
                // Nothing to verify is bad input (exit 2), not a failed verification (5).
                return Err(super::BadInput(format!(
                    "--instance {name}: no restore point of {name} in S3 under {}; `terrarium-backup list` shows the instances",
                    keys.host_prefix()
                ))
                .into());
            }
            vec![name.to_string()]
        }
        None => instances,
    };
    let zfs = Zfs::new();
    let mut results = Vec::new();
    for name in names {
        let remote = remote::load_instance(&store, &keys, &name)?;
        let catalog = remote.catalog();
        let mut problems: Vec<String> = remote.unreadable.iter().map(|(_, p)| p.clone()).collect();
        if remote.manifests.is_empty() && problems.is_empty() {
            problems.push(format!("instance {name} has no restore point in S3"));
        }
        let mut newest_chain: Option<Chain> = None;
        for point in catalog.restore_points() {
            match catalog.chain_of(point).and_then(|chain| check_objects(&chain, &remote.objects).map(|()| chain)) {
                Ok(chain) => newest_chain = Some(chain),
                Err(err) => problems.push(err.to_string()),
            }
        }
        let deep_result = match (&newest_chain, deep) {
            (Some(chain), true) => Some(drill(ctx, &store, &zfs, &name, chain)),
            _ => None,
        };
        if let Some(d) = deep_result.as_ref().filter(|d| !d.ok) {
            problems.push(d.error.clone().unwrap_or_default());
        }
        for problem in &problems {
            log::error!(instance = name.as_str(); "{problem}");
        }
        if problems.is_empty() {
            log::info!(instance = name.as_str(), restore_points = remote.manifests.len(); "verified");
        }
        results.push(InstanceResult {
            instance: name,
            restore_points: remote.manifests.len(),
            problems,
            deep: deep_result,
        });
    }
    let ok = results.iter().all(|r| r.problems.is_empty());
    if ctx.json {
        print_json(&serde_json::json!({ "ok": ok, "deep": deep, "instances": results }))?;
    } else {
        for r in &results {
            let deep = r
                .deep
                .as_ref()
                .map(|d| {
                    format!(
                        ", restore drill of {} ({} streams) {}",
                        d.snapshot,
                        d.streams,
                        if d.ok { "passed" } else { "FAILED" }
                    )
                })
                .unwrap_or_default();
            println!("{}: {} restore points, {} problems{deep}", r.instance, r.restore_points, r.problems.len());
        }
    }
    Ok(if ok { Exit::Success } else { Exit::Verification })
}

/// Receive `chain` into `<pool>/terrarium-verify-<instance>`, compare the final GUID,
/// destroy the scratch dataset whatever happened.
fn drill(ctx: &Context, store: &Store, zfs: &Zfs, instance: &str, chain: &Chain) -> DeepResult {
    let scratch = format!("{}/terrarium-verify-{instance}", ctx.pool());
    let target = chain.target();
    let outcome = (|| -> anyhow::Result<()> {
        if zfs.exists(&scratch)? {
            zfs.destroy(&scratch, true)?;
        }
        let bar = byte_progress(Some(chain.compressed_bytes()), &format!("verify {instance}"));
        for link in &chain.links {
            receive_stream(store, zfs, link, &scratch, &|n| bar.inc(n))?;
        }
        bar.finish_and_clear();
        let received = zfs.snapshots(&scratch)?;
        match received.iter().find(|s| s.name == target.snapshot.name) {
            Some(s) if s.guid == target.snapshot.guid => Ok(()),
            Some(s) => anyhow::bail!(
                "restore drill: {scratch}@{} has GUID {}, the manifest says {}",
                s.name,
                s.guid,
                target.snapshot.guid
            ),
            None => {
                anyhow::bail!("restore drill: {scratch}@{} is missing after receiving the chain", target.snapshot.name)
            }
        }
    })();
    if let Ok(true) = zfs.exists(&scratch)
        && let Err(err) = zfs.destroy(&scratch, true)
    {
        log::warn!(dataset = scratch.as_str(); "could not destroy the scratch dataset: {err}");
    }
    DeepResult {
        snapshot: target.snapshot.name.clone(),
        streams: chain.links.len(),
        ok: outcome.is_ok(),
        error: outcome.err().map(|e| {
            format!(
                "instance {instance}: restore drill of {} failed: {}",
                target.snapshot.name,
                terrarium_common::output::error_chain(e.chain())
            )
        }),
    }
}
