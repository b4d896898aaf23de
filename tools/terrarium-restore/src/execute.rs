//! Carrying out a plan, step by step, with the one rule of this tool: until the swap,
//! the original dataset is never touched; a failure cleans up what the run made and
//! says that the original is untouched.

use std::time::Duration;

use anyhow::Context as _;
use terrarium_archive::s3::Store;
use terrarium_archive::zfs::{HOLD_TAG, Zfs};
use terrarium_common::{Paths, killpoint};

use crate::error::RestoreError;
use crate::instance;
use crate::names::work_parent;
use crate::plan::{Plan, Step};
use crate::receive::receive_object;
use crate::unfinished::{self, Unfinished};

/// What the shell needs to run steps.
#[derive(Debug)]
pub struct Context<'a> {
    pub zfs: &'a Zfs,
    pub store: Option<&'a Store>,
    /// The private keys for encrypted objects (the plan's, checked before it ran).
    pub identities: Option<&'a terrarium_archive::seal::Identities>,
    pub pool: &'a str,
    /// Where the run records what it owes (an S3 restore; `None` for a local one), and
    /// what a killed earlier run owed, which this plan pays.
    pub paths: Option<&'a Paths>,
    pub owed: Unfinished,
}

/// What a run did, for the summary.
#[derive(Debug, Default, serde::Serialize)]
pub struct Outcome {
    /// One line per step done.
    pub done: Vec<String>,
    /// Problems after the restore itself succeeded (a replaced dataset that could not be
    /// destroyed): reported, not fatal.
    pub warnings: Vec<String>,
}

/// A step that was skipped with a warning (the restore itself succeeded).
#[derive(Debug, thiserror::Error)]
#[error("step not done")]
struct NotDone;

#[derive(Debug, Default)]
struct Progress {
    stopped: Option<String>,
    staging: Option<String>,
    swapped: bool,
    /// The swap failed and the original could not be put back: it is not untouched.
    original_aside: bool,
}

pub fn execute(plan: &Plan, ctx: &Context<'_>) -> anyhow::Result<Outcome> {
    let mut outcome = Outcome::default();
    let mut progress = Progress::default();
    let mut owed = ctx.owed.clone();
    for step in &plan.steps {
        if matches!(step, Step::LxdRecover { .. }) {
            continue; // the hand-off is the caller's, after the summary
        }
        if let Some(before) = owed_before(step, plan, &owed) {
            record_owed(ctx, plan, &before)?;
            owed = before;
        }
        match run_step(step, ctx, &mut progress, &mut outcome) {
            // Logged once done: the description says what happened, in the past tense.
            Ok(()) => {
                log::info!("{}", describe(step));
                outcome.done.push(describe(step));
            }
            // Not done, but not a failure of the restore: a warning says why.
            Err(err) if err.is::<NotDone>() => {}
            Err(err) => return Err(recover_from(plan, ctx, &progress, &owed, err)),
        }
        killpoint::reached(&format!("restore.{}", step.name()));
        if let Some(after) = owed_after(step, &owed) {
            record_owed(ctx, plan, &after)?;
            owed = after;
        }
    }
    // An --as-new run still owes its hand-off, which the caller makes (and clears).
    if !owed.hand_off {
        clear_owed(ctx, plan)?;
    }
    Ok(outcome)
}

/// What the run owes once `step` starts, when that changes: a stopped instance must be
/// started, a set-aside dataset put back or destroyed, a moved one handed off. Pure.
fn owed_before(step: &Step, plan: &Plan, owed: &Unfinished) -> Option<Unfinished> {
    match step {
        Step::StopInstance { .. } => Some(Unfinished { start: true, ..owed.clone() }),
        Step::Swap { aside: Some(aside), .. } => Some(Unfinished {
            aside: Some(aside.clone()),
            destroy_aside: plan.steps.iter().any(|s| matches!(s, Step::DestroyOld { dataset } if dataset == aside)),
            ..owed.clone()
        }),
        Step::Swap { aside: None, .. } if !plan.in_place => Some(Unfinished { hand_off: true, ..owed.clone() }),
        _ => None,
    }
}

/// What the run owes once `step` is done, when that changes. Pure.
fn owed_after(step: &Step, owed: &Unfinished) -> Option<Unfinished> {
    match step {
        Step::StartInstance { .. } => Some(Unfinished { start: false, ..owed.clone() }),
        Step::PutBack { .. } => Some(Unfinished { aside: None, destroy_aside: false, ..owed.clone() }),
        Step::DestroyOld { dataset } if owed.aside.as_deref() == Some(dataset.as_str()) => {
            Some(Unfinished { aside: None, destroy_aside: false, ..owed.clone() })
        }
        _ => None,
    }
}

fn record_owed(ctx: &Context<'_>, plan: &Plan, owed: &Unfinished) -> anyhow::Result<()> {
    match ctx.paths {
        Some(paths) => unfinished::record(paths, &plan.target_instance, owed),
        None => Ok(()),
    }
}

/// Nothing is owed: the record goes (the caller does this for a hand-off).
pub fn clear_owed(ctx: &Context<'_>, plan: &Plan) -> anyhow::Result<()> {
    match ctx.paths {
        Some(paths) => unfinished::clear(paths, &plan.target_instance),
        None => Ok(()),
    }
}

fn run_step(step: &Step, ctx: &Context<'_>, progress: &mut Progress, outcome: &mut Outcome) -> anyhow::Result<()> {
    let zfs = ctx.zfs;
    match step {
        Step::StopInstance { instance } => {
            instance::stop(instance)?;
            progress.stopped = Some(instance.clone());
        }
        Step::StartInstance { instance } => {
            instance::start(instance)?;
            progress.stopped = None;
        }
        Step::Rollback { snapshot, dataset, releases, .. } => {
            // OpenZFS refuses to destroy a held snapshot ("dataset is busy"): the export's
            // hold on a snapshot this rollback destroys goes first, as the plan said.
            for held in releases {
                zfs.release(HOLD_TAG, held).with_context(|| format!("release terrarium-backup's hold on {held}"))?;
            }
            zfs.rollback(&format!("{dataset}@{snapshot}"), true)?;
        }
        Step::Copy { snapshot, dataset } => {
            zfs.copy_snapshot(snapshot, dataset)?;
        }
        Step::DestroyStale { dataset } => {
            if zfs.exists(dataset)? {
                zfs.destroy(dataset, true)?;
            }
        }
        Step::PutBack { aside, dataset } => {
            put_back(zfs, aside, dataset).with_context(|| format!("put {aside} back as {dataset}"))?;
        }
        Step::ReceiveChain { staging, snapshot, guid, objects } => {
            let store = ctx.store.context("an S3 step without an S3 store")?;
            ensure_work_parent(zfs, ctx.pool)?;
            progress.staging = Some(staging.clone());
            let total = objects.iter().map(|o| o.compressed_bytes).sum();
            let bar = terrarium_common::output::byte_progress(Some(total), "download, verify, receive");
            for object in objects {
                log::info!(key = object.key.as_str(), bytes = object.compressed_bytes; "receiving {} stream {}", object.kind, object.snapshot);
                receive_object(zfs, store, staging, object, ctx.identities, &instance_of(staging), &|n| bar.inc(n))?;
            }
            bar.finish_and_clear();
            let received = format!("{staging}@{snapshot}");
            let actual: u64 =
                zfs.get(&received, "guid")?.parse().with_context(|| format!("read the guid of {received}"))?;
            if actual != *guid {
                return Err(RestoreError::GuidMismatch {
                    dataset: staging.clone(),
                    snapshot: snapshot.clone(),
                    expected: *guid,
                    actual,
                    instance: instance_of(staging),
                }
                .into());
            }
        }
        Step::Swap { staging, dataset, aside } => {
            if let Err(err) = swap(zfs, staging, dataset, aside.as_deref()) {
                progress.original_aside = aside.as_deref().is_some_and(|a| zfs.exists(a).unwrap_or(true))
                    && !zfs.exists(dataset).unwrap_or(false);
                return Err(err);
            }
            progress.swapped = true;
            progress.staging = None;
        }
        Step::DestroyOld { dataset } => {
            // terrarium-backup holds the base of its next incremental; on the replaced
            // dataset that hold is stale (the next export finds its base gone and sends a
            // full), and it would keep the snapshot from being destroyed.
            for snapshot in zfs.snapshots(dataset).unwrap_or_default() {
                let _ = zfs.release(HOLD_TAG, &snapshot.full_name());
            }
            if let Err(err) = zfs.destroy(dataset, true) {
                outcome.warnings.push(format!("the replaced dataset {dataset} could not be destroyed ({err}); destroy it with `zfs destroy -r {dataset}`"));
                return Err(NotDone.into());
            }
        }
        Step::KeepOld { .. } | Step::LxdRecover { .. } => {}
    }
    Ok(())
}

/// The instance a staging dataset is for (for error messages).
fn instance_of(staging: &str) -> String {
    staging.rsplit('/').next().and_then(|s| s.strip_suffix(".staging")).unwrap_or(staging).to_string()
}

/// `<pool>/terrarium-restore`, not mounted, created when missing.
fn ensure_work_parent(zfs: &Zfs, pool: &str) -> anyhow::Result<()> {
    let parent = work_parent(pool);
    if !zfs.exists(&parent)? {
        zfs.cmd().args(["create", "-o", "mountpoint=none", "--", &parent]).run()?;
    }
    Ok(())
}

/// `zfs rename`, unmounting first when the dataset is busy (zfs-fuse cannot rename a
/// mounted dataset; OpenZFS remounts by itself).
fn rename(zfs: &Zfs, from: &str, to: &str) -> anyhow::Result<()> {
    let mut last = None;
    for attempt in 0..10 {
        match zfs.cmd().args(["rename", "--", from, to]).run() {
            Ok(_) => return Ok(()),
            Err(err) if err.stderr().contains("busy") => {
                if attempt == 0 {
                    let _ = zfs.cmd().args(["unmount", "--", from]).run();
                }
                last = Some(err);
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(err) => return Err(err.into()),
        }
    }
    Err(last.map_or_else(|| anyhow::anyhow!("zfs rename {from} {to} failed"), anyhow::Error::new))
}

/// Locally set `mountpoint` and `canmount` (LXD sets them on its datasets).
fn local_mount_properties(zfs: &Zfs, dataset: &str) -> anyhow::Result<Vec<(String, String)>> {
    let out =
        zfs.cmd().args(["get", "-H", "-o", "property,value,source", "--", "mountpoint,canmount", dataset]).run()?;
    Ok(out
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            (fields.len() == 3 && fields[2] == "local").then(|| (fields[0].to_string(), fields[1].to_string()))
        })
        .collect())
}

/// A user property on a set-aside dataset: the `canmount` it had (`inherit` when not set
/// locally) before the swap made it `noauto`.
const CANMOUNT_BEFORE: &str = "terrarium:canmount-before";

/// Rename a set-aside dataset back into place, with the `canmount` it had, mounted again
/// when it mounts by itself.
fn put_back(zfs: &Zfs, aside: &str, dataset: &str) -> anyhow::Result<()> {
    rename(zfs, aside, dataset)?;
    let before = zfs.get(dataset, CANMOUNT_BEFORE).unwrap_or_default();
    match before.as_str() {
        "" | "-" => return Ok(()),
        "inherit" => zfs.cmd().args(["inherit", "canmount", dataset]).run().map(drop)?,
        value => zfs.cmd().args(["set", &format!("canmount={value}"), dataset]).run().map(drop)?,
    }
    zfs.cmd().args(["inherit", CANMOUNT_BEFORE, dataset]).run()?;
    if zfs.get(dataset, "canmount").unwrap_or_default() == "on" {
        let _ = zfs.cmd().args(["mount", "--", dataset]).run();
    }
    Ok(())
}

/// Set `dataset` aside (if any), move `staging` into its place, carry LXD's mount
/// properties over. If the second rename fails the original is put back.
fn swap(zfs: &Zfs, staging: &str, dataset: &str, aside: Option<&str>) -> anyhow::Result<()> {
    let Some(aside) = aside else {
        return rename(zfs, staging, dataset).with_context(|| format!("rename {staging} to {dataset}"));
    };
    let properties = local_mount_properties(zfs, dataset)?;
    rename(zfs, dataset, aside).with_context(|| format!("set {dataset} aside as {aside}"))?;
    if properties.iter().any(|(p, _)| p == "mountpoint") {
        // The set-aside copy must not claim the instance's mountpoint. What canmount was
        // is kept on the dataset itself, so putting it back (now, or in a later run after
        // a kill) restores it.
        let before = properties.iter().find(|(p, _)| p == "canmount").map_or("inherit", |(_, v)| v.as_str());
        if before != "noauto" {
            let _ = zfs.cmd().args(["set", &format!("{CANMOUNT_BEFORE}={before}"), aside]).run();
            let _ = zfs.cmd().args(["set", "canmount=noauto", aside]).run();
        }
        let _ = zfs.cmd().args(["unmount", "--", aside]).run();
    }
    killpoint::reached("restore.set-aside");
    if let Err(err) = rename(zfs, staging, dataset) {
        return match put_back(zfs, aside, dataset) {
            Ok(()) => Err(err.context(format!("rename {staging} to {dataset} (the original was put back)"))),
            Err(back) => Err(err.context(format!(
                "rename {staging} to {dataset}; putting the original back failed too ({back:#}): it is at {aside}, restore it with `zfs rename {aside} {dataset}`"
            ))),
        };
    }
    for (property, value) in properties {
        zfs.cmd()
            .args(["set", &format!("{property}={value}"), dataset])
            .run()
            .with_context(|| format!("set {property} on {dataset}"))?;
    }
    Ok(())
}

/// Clean up after a failed step and say what state things are in. What is still owed
/// afterwards (`owed`, as recorded) stays recorded for the next run.
fn recover_from(
    plan: &Plan,
    ctx: &Context<'_>,
    progress: &Progress,
    owed: &Unfinished,
    err: anyhow::Error,
) -> anyhow::Error {
    let mut notes = Vec::new();
    if let Some(staging) = &progress.staging {
        match ctx.zfs.exists(staging) {
            Ok(true) => match ctx.zfs.destroy(staging, true) {
                Ok(()) => notes.push(format!("removed {staging}")),
                Err(e) => notes.push(format!("could not remove {staging} ({e}); the next run removes it")),
            },
            Ok(false) => {}
            Err(e) => notes.push(format!("could not check {staging} ({e}); the next run removes it")),
        }
    }
    // Stopped by this run (or by a killed earlier one whose debt this run took on).
    let stopped = progress.stopped.clone().or_else(|| owed.start.then(|| plan.instance.clone()));
    let mut still_stopped = false;
    if let Some(stopped) = &stopped {
        match instance::start(stopped) {
            Ok(()) => notes.push(format!("started {stopped} again")),
            Err(e) => {
                still_stopped = true;
                notes.push(format!("could not start {stopped} again ({e})"));
            }
        }
    }
    let aside_left = owed.aside.as_deref().is_some_and(|aside| ctx.zfs.exists(aside).unwrap_or(true));
    if !still_stopped
        && !aside_left
        && !progress.swapped
        && !owed.hand_off
        && let Err(e) = clear_owed(ctx, plan)
    {
        notes.push(format!("{e:#}"));
    }
    let untouched = !progress.swapped
        && !progress.original_aside
        && !plan.steps.iter().any(|s| matches!(s, Step::Rollback { .. } | Step::Copy { .. }));
    if untouched {
        let what = if plan.in_place {
            format!("{} is untouched", plan.instance)
        } else {
            format!("nothing was created for {}", plan.target_instance)
        };
        notes.push(what);
    }
    if notes.is_empty() { err } else { err.context(format!("restore failed ({})", notes.join("; "))) }
}

/// One line per step for logs and the summary.
pub fn describe(step: &Step) -> String {
    match step {
        Step::StopInstance { instance } => format!("stopped {instance}"),
        Step::StartInstance { instance } => format!("started {instance}"),
        Step::Rollback { dataset, snapshot, destroys, releases } => {
            let released = if releases.is_empty() {
                String::new()
            } else {
                format!(", after releasing terrarium-backup's hold on {}", releases.join(", "))
            };
            format!("rolled {dataset} back to @{snapshot} ({} newer snapshots destroyed{released})", destroys.len())
        }
        Step::Copy { snapshot, dataset } => format!("copied {snapshot} to {dataset}"),
        Step::DestroyStale { dataset } => format!("removed {dataset} left by an interrupted run"),
        Step::PutBack { aside, dataset } => {
            format!("put {aside} back as {dataset} (an interrupted run had set it aside)")
        }
        Step::ReceiveChain { staging, snapshot, objects, .. } => {
            format!("received {} objects into {staging} and verified @{snapshot}", objects.len())
        }
        Step::Swap { staging, dataset, aside: Some(aside) } => {
            format!("set {dataset} aside as {aside} and moved {staging} into its place")
        }
        Step::Swap { staging, dataset, aside: None } => format!("moved {staging} to {dataset}"),
        Step::DestroyOld { dataset } => format!("destroyed the replaced dataset {dataset}"),
        Step::KeepOld { dataset } => format!("kept the replaced dataset as {dataset}"),
        Step::LxdRecover { instance, .. } => format!("handed {instance} over to `lxd recover`"),
    }
}
