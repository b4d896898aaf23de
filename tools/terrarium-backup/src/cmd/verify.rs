//! `terrarium-backup verify [--deep]`: every chain contiguous, every object present with
//! its size; `--deep` restores the newest chain into a scratch dataset (a restore drill).

use serde::Serialize;
use terrarium_common::Exit;
use terrarium_common::instance::check_name;
use terrarium_common::output::{byte_progress, print_json};

use super::lock_waiting;
use crate::context::Context;
use crate::metrics::Observed;
use crate::state;
use terrarium_archive::chain::{Chain, check_objects};
use terrarium_archive::pipeline::{HashingWriter, receive_stream};
use terrarium_archive::remote;
use terrarium_archive::s3::Store;
use terrarium_archive::seal::Identities;
use terrarium_archive::zfs::Zfs;

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
    /// `receive`: the chain was received into a scratch dataset; `checksum`: it is
    /// encrypted and no identity is on this host, so every stream was downloaded and
    /// its SHA-256 checked, but none decrypted.
    mode: &'static str,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Which instances a run looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Only<'a> {
    /// Every instance with restore points.
    All,
    /// `--instance NAME`.
    Instance(&'a str),
    /// `--deep --rotate`: every instance's chains are checked, and only the one whose
    /// turn it is is drilled.
    NextInTurn,
}

/// The instance whose drill is the oldest: one never drilled first, then the longest
/// ago; ties go by name. Pure.
pub(crate) fn next_in_turn(
    instances: &[String],
    last_drill: impl Fn(&str) -> Option<time::OffsetDateTime>,
) -> Option<&str> {
    instances.iter().map(String::as_str).min_by_key(|name| (last_drill(name), *name))
}

pub fn run(
    ctx: &Context,
    only: Only<'_>,
    deep: bool,
    identity: Option<&std::path::Path>,
    lock_wait: Option<u64>,
    observed: &mut Observed,
) -> anyhow::Result<Exit> {
    let (store, keys) = ctx.store()?;
    // A named key that cannot be read is bad input, said before anything is downloaded.
    let identities = if deep { ctx.identities(identity)? } else { None };
    let _lock = if deep { Some(lock_waiting(ctx, "verify --deep", lock_wait)?) } else { None };
    let instances = remote::instances(&store, &keys)?;
    let mut drill_only = None;
    let names = match only {
        Only::Instance(name) => {
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
        Only::NextInTurn => {
            drill_only = next_in_turn(&instances, |name| state::read_drilled(&ctx.paths, name).map(|d| d.at))
                .map(str::to_string);
            if let Some(name) = &drill_only {
                log::info!(instance = name.as_str(); "its turn for the restore drill");
            }
            instances
        }
        Only::All => instances,
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
        let drill_this = deep && drill_only.as_ref().is_none_or(|chosen| *chosen == name);
        let deep_result = match (&newest_chain, drill_this) {
            (Some(chain), true) => {
                let tools = DrillTools { ctx, store: &store, zfs: &zfs, identities: identities.as_ref() };
                Some(drill(&tools, &name, chain))
            }
            _ => None,
        };
        if let Some(drilled) = &deep_result {
            // Recorded pass or fail: a failing instance must not take every later turn.
            let record = state::Drilled { at: super::now(), ok: drilled.ok };
            if let Err(err) = state::write_drilled(&ctx.paths, &name, &record) {
                log::warn!(instance = name.as_str(); "{err:#}");
            }
        }
        if let Some(d) = deep_result.as_ref().filter(|d| !d.ok) {
            problems.push(d.error.clone().unwrap_or_default());
        }
        for problem in &problems {
            log::error!(instance = name.as_str(); "{problem}");
        }
        if problems.is_empty() {
            log::info!(instance = name.as_str(), restore_points = remote.manifests.len(); "verified");
        }
        observed.verified.insert(name.clone(), problems.is_empty());
        if let Some(drilled) = &deep_result {
            observed.drilled.insert(name.clone(), drilled.ok);
        }
        if let Some(newest) = catalog.latest() {
            observed.newest_restore_point.insert(name.clone(), newest.started_at);
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

/// What a restore drill works with.
#[derive(Clone, Copy)]
struct DrillTools<'a> {
    ctx: &'a Context,
    store: &'a Store,
    zfs: &'a Zfs,
    /// The private keys for an encrypted chain, when this host has them.
    identities: Option<&'a Identities>,
}

/// Receive `chain` into `<pool>/terrarium-verify-<instance>`, compare the final GUID,
/// destroy the scratch dataset whatever happened. An encrypted chain with no identity
/// on this host (the recommended setup: exports need only public keys) is checked as
/// far as it can be: every stream downloaded and its SHA-256 compared.
fn drill(tools: &DrillTools<'_>, instance: &str, chain: &Chain) -> DeepResult {
    let target = chain.target();
    let encrypted = chain.links.iter().any(|link| link.encryption.is_some());
    let (mode, outcome) = if encrypted && tools.identities.is_none() {
        log::warn!(
            instance = instance;
            "the chain is encrypted and this host has no identity: checking the streams' checksums, not decrypting them (pass --identity FILE, or set s3.encryption.identity_file, for a full drill)"
        );
        ("checksum", download_and_check(tools.store, instance, chain))
    } else {
        ("receive", receive_chain(tools, instance, chain))
    };
    DeepResult {
        snapshot: target.snapshot.name.clone(),
        streams: chain.links.len(),
        mode,
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

/// Download every stream of `chain` and compare its SHA-256 with its manifest's.
fn download_and_check(store: &Store, instance: &str, chain: &Chain) -> anyhow::Result<()> {
    let bar = byte_progress(Some(chain.compressed_bytes()), &format!("verify {instance}"));
    for link in &chain.links {
        let mut hashing = HashingWriter::new(std::io::sink());
        store.download_sized(&link.object_key, link.compressed_bytes, &mut hashing, &|n| bar.inc(n))?;
        let (_, sha256, _) = hashing.into_parts();
        if sha256 != link.sha256 {
            anyhow::bail!(
                "{}: the downloaded stream's SHA-256 is {sha256}, its manifest says {}: the object is corrupt",
                link.object_key,
                link.sha256
            );
        }
    }
    bar.finish_and_clear();
    Ok(())
}

fn receive_chain(tools: &DrillTools<'_>, instance: &str, chain: &Chain) -> anyhow::Result<()> {
    let DrillTools { ctx, store, zfs, identities } = *tools;
    let scratch = format!("{}/terrarium-verify-{instance}", ctx.pool());
    let target = chain.target();
    let outcome = (|| -> anyhow::Result<()> {
        if zfs.exists(&scratch)? {
            zfs.destroy(&scratch, true)?;
        }
        let bar = byte_progress(Some(chain.compressed_bytes()), &format!("verify {instance}"));
        for link in &chain.links {
            receive_stream(store, zfs, link, &scratch, identities, &|n| bar.inc(n))?;
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
    outcome
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_turn_goes_to_the_never_drilled_then_to_the_longest_ago() {
        let instances: Vec<String> = ["db", "web", "wiki"].map(String::from).to_vec();
        let day = |d: i64| Some(time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(d));
        assert_eq!(next_in_turn(&instances, |_| None), Some("db"), "ties go by name");
        assert_eq!(next_in_turn(&instances, |n| if n == "wiki" { None } else { day(3) }), Some("wiki"));
        let drilled = |n: &str| match n {
            "db" => day(10),
            "web" => day(2),
            _ => day(5),
        };
        assert_eq!(next_in_turn(&instances, drilled), Some("web"));
        assert_eq!(next_in_turn(&[], drilled), None);
    }
}
