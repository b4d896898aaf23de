//! `terrarium-backup export`: the newest snapshot of each container, to S3.

use serde::Serialize;
use terrarium_common::Exit;
use terrarium_common::fs::atomic_write;
use terrarium_common::killpoint;
use terrarium_common::output::{byte_progress, human_bytes, print_json};
use time::OffsetDateTime;

use super::{lock, now};
use crate::context::Context;
use crate::metrics::{self, Observed};
use crate::state::{self, PendingUpload, SentStream};
use terrarium_archive::chain::Catalog;
use terrarium_archive::keys::KeyLayout;
use terrarium_archive::manifest::{
    ENCRYPTED_SCHEMA_VERSION, Encryption, Kind, Manifest, PLAIN_SCHEMA_VERSION, SnapshotRef,
};
use terrarium_archive::pipeline::{PipelineError, Upload, compress_and_upload};
use terrarium_archive::resume::{ResumeMismatch, usable_parts};
use terrarium_archive::retention::full_is_due;
use terrarium_archive::s3::{Resume, S3Error, Store};
use terrarium_archive::seal::Recipients;
use terrarium_archive::zfs::{ContainerDataset, HOLD_TAG, Snapshot, Zfs};

/// What to do for one instance (pure: from the local snapshots and the recorded state).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    NoSnapshot,
    UpToDate { snapshot: Snapshot },
    Send { snapshot: Snapshot, base: Option<Snapshot>, reason: String },
}

pub(crate) struct Inputs<'a> {
    pub local: &'a [Snapshot],
    pub last: Option<&'a str>,
    /// The local catalog of the instance.
    pub catalog: &'a [Manifest],
    pub full_every_days: u32,
    pub force_full: bool,
    /// The fingerprints of the configured recipients; `None` when encryption is off.
    pub recipients: Option<&'a [String]>,
    pub now: OffsetDateTime,
}

pub(crate) fn decide(inputs: &Inputs<'_>) -> Decision {
    let Some(newest) = inputs.local.last() else {
        return Decision::NoSnapshot;
    };
    let catalog = Catalog::new(inputs.catalog.iter().cloned());
    let last_manifest = inputs.last.and_then(|name| catalog.find(name));
    let last_local = inputs.last.and_then(|name| {
        inputs.local.iter().find(|s| s.name == name && last_manifest.is_none_or(|m| m.snapshot.guid == s.guid))
    });
    if last_local.is_some_and(|s| s.guid == newest.guid) {
        return Decision::UpToDate { snapshot: newest.clone() };
    }
    let full = |reason: String| Decision::Send { snapshot: newest.clone(), base: None, reason };
    if inputs.force_full {
        return full("--full was given".into());
    }
    let Some(last) = inputs.last else {
        return full("first export of this instance".into());
    };
    let Some(base) = last_local else {
        return full(format!(
            "the last exported snapshot {last} no longer exists locally, so no incremental is possible"
        ));
    };
    // A chain is encrypted one way from its full on: a restore opens every stream of it
    // with the same identity, so a change of recipients starts a new chain.
    if let Some(manifest) = last_manifest
        && manifest.recipients() != inputs.recipients
    {
        return full(
            match (manifest.recipients(), inputs.recipients) {
                (None, _) => "encryption was turned on (s3.encryption.recipients): a new chain starts encrypted",
                (_, None) => "encryption was turned off: a new chain starts unencrypted",
                _ => "s3.encryption.recipients changed: the new recipients apply from this full",
            }
            .into(),
        );
    }
    if let Some(chain) = last_manifest.and_then(|m| catalog.chain_of(m).ok())
        && full_is_due(chain.full().finished_at, inputs.full_every_days, inputs.now)
    {
        return full(format!(
            "the chain's full stream is older than {} days (backup.s3_retention.full_every_days)",
            inputs.full_every_days
        ));
    }
    Decision::Send { snapshot: newest.clone(), base: Some(base.clone()), reason: format!("incremental from {last}") }
}

/// The snapshot (and base) of an interrupted export to send again and resume, when the
/// stream will be the same bytes: both snapshots still here with the same GUIDs, the
/// same zstd level, no encryption (age picks a new key per stream), young enough.
/// Pure; `Err` says why not.
pub(crate) fn resumable(
    pending: &PendingUpload,
    local: &[Snapshot],
    zstd_level: i32,
    encrypted: bool,
    max_age: std::time::Duration,
    now: OffsetDateTime,
) -> Result<(Snapshot, Option<Snapshot>), String> {
    let Some(stream) = &pending.stream else {
        return Err("it was encrypted, or recorded by an older version".into());
    };
    if encrypted {
        return Err("encryption is on, and an encrypted stream is never resumed".into());
    }
    if now - stream.started_at > max_age {
        return Err(format!(
            "it started more than {} hours ago (backup.export.resume_max_age_hours)",
            max_age.as_secs() / 3600
        ));
    }
    if stream.zstd_level != zstd_level {
        return Err(format!("backup.zstd_level changed from {} to {zstd_level}", stream.zstd_level));
    }
    let find = |name: &str, guid: u64| local.iter().find(|s| s.name == name && s.guid == guid).cloned();
    let snapshot =
        find(&stream.snapshot, stream.guid).ok_or_else(|| format!("its snapshot {} is gone", stream.snapshot))?;
    let base = match (&stream.base, stream.base_guid) {
        (Some(name), Some(guid)) => Some(find(name, guid).ok_or_else(|| format!("its base snapshot {name} is gone"))?),
        _ => None,
    };
    Ok((snapshot, base))
}

/// One instance's line in the report.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Item {
    instance: String,
    dataset: String,
    /// exported, up_to_date, no_snapshot, planned or failed
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<Kind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    snapshot: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    base: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    object_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    raw_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    compressed_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seconds: Option<f64>,
    /// Parts (and bytes) an interrupted export had stored, kept instead of sent again.
    #[serde(skip_serializing_if = "Option::is_none")]
    resumed_parts: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resumed_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// The report of a run (also left at reports/backup-export.json for `terrariumctl status`).
#[derive(Debug, Serialize)]
struct Report {
    tool_version: &'static str,
    dry_run: bool,
    ok: bool,
    #[serde(with = "time::serde::rfc3339")]
    started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    finished_at: OffsetDateTime,
    instances: Vec<Item>,
}

pub fn run(
    ctx: &Context,
    only: &[String],
    force_full: bool,
    dry_run: bool,
    bwlimit: Option<u64>,
    observed: &mut Observed,
) -> anyhow::Result<Exit> {
    let _lock = if dry_run { None } else { Some(lock(ctx, "export")?) };
    let started_at = now();
    // The S3 settings first (enabled, secret file, endpoint): a config error is named
    // before the pool is asked.
    let (mut store, keys) = ctx.store()?;
    if bwlimit.is_some() {
        store.set_bwlimit(bwlimit);
    }
    // A recipient that does not parse stops the run: never a stream unencrypted by mistake.
    let recipients = ctx.recipients()?;
    let zfs = Zfs::new();
    let datasets = zfs.container_datasets(ctx.pool())?;
    for name in only {
        if !datasets.iter().any(|d| &d.instance == name) {
            return Err(anyhow::Error::new(UnknownInstance(format!("{}/containers/{name}", ctx.pool()))));
        }
    }
    let selected: Vec<&ContainerDataset> =
        datasets.iter().filter(|d| only.is_empty() || only.contains(&d.instance)).collect();
    if !dry_run {
        let resuming: Vec<&str> =
            if recipients.is_none() { selected.iter().map(|d| d.instance.as_str()).collect() } else { Vec::new() };
        abort_stale_uploads(ctx, &store, &keys, &resuming);
        // Under the lock, no other export is writing parts there.
        terrarium_archive::part_buffer::sweep(&ctx.paths.spool_dir());
    }
    let mut items = Vec::new();
    let target = Target { store: &store, keys: &keys, recipients: recipients.as_ref() };
    for dataset in selected {
        let item = match export_one(ctx, &zfs, &target, dataset, force_full, dry_run) {
            Ok(item) => item,
            Err(err) => {
                let error = terrarium_common::output::error_chain(err.chain());
                log::error!(instance = dataset.instance.as_str(); "export failed: {error}");
                Item {
                    instance: dataset.instance.clone(),
                    dataset: dataset.dataset.clone(),
                    status: "failed",
                    error: Some(error),
                    ..Item::default()
                }
            }
        };
        if !dry_run {
            record_outcome(ctx, &item);
            observe(ctx, &item, observed);
        }
        items.push(item);
    }
    let failed = items.iter().filter(|i| i.status == "failed").count();
    let report = Report {
        tool_version: terrarium_common::VERSION,
        dry_run,
        ok: failed == 0,
        started_at,
        finished_at: now(),
        instances: items,
    };
    if !dry_run {
        let path = ctx.paths.report("backup-export");
        let text = serde_json::to_string_pretty(&report)? + "\n";
        atomic_write(&path, text.as_bytes(), 0o644).map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
        killpoint::reached("export.report-written");
    }
    if ctx.json {
        print_json(&report)?;
    }
    Ok(match failed {
        0 => Exit::Success,
        n if n == report.instances.len() => {
            let first = report.instances.iter().find_map(|i| i.error.clone()).unwrap_or_default();
            anyhow::bail!("export failed for every instance; first error: {first}")
        }
        _ => Exit::Partial,
    })
}

/// Leave the instance's result for `status` (a failure to is only a warning: the
/// export itself is done, and its report says the same).
fn record_outcome(ctx: &Context, item: &Item) {
    let record = state::Exported {
        at: now(),
        ok: item.status != "failed",
        snapshot: item.snapshot.clone(),
        error: item.error.clone(),
    };
    if let Err(err) = state::write_exported(&ctx.paths, &item.instance, &record) {
        log::warn!(instance = item.instance.as_str(); "{}", terrarium_common::output::error_chain(err.chain()));
    }
}

/// The instance's line in the metrics: what was sent, and its newest restore point
/// (from the catalog, so a failed export still reports how old the last one is).
fn observe(ctx: &Context, item: &Item, observed: &mut Observed) {
    let exported = metrics::Exported {
        ok: item.status != "failed",
        raw_bytes: item.raw_bytes.unwrap_or(0),
        compressed_bytes: item.compressed_bytes.unwrap_or(0),
        seconds: item.seconds.unwrap_or(0.0),
    };
    observed.exported.insert(item.instance.clone(), exported);
    if let Some(newest) = Catalog::new(state::read_catalog(&ctx.paths, &item.instance)).latest() {
        observed.newest_restore_point.insert(item.instance.clone(), newest.started_at);
    }
}

/// An `--instance` that has no dataset (bad input: exit 2).
#[derive(Debug, thiserror::Error)]
#[error("no container dataset {0}; `terrarium-backup list` shows the instances")]
pub(crate) struct UnknownInstance(pub String);

/// Abort uploads a killed run left behind: the ones recorded locally, and (where the
/// server can list them) any incomplete upload under this host's prefix. We hold the
/// lock, so none of them is in progress. The recorded upload of one of `resuming` (the
/// instances this run exports, when unencrypted) stays, for `export_one` to resume or
/// abort ([`resumable`] decides).
fn abort_stale_uploads(ctx: &Context, store: &Store, keys: &KeyLayout, resuming: &[&str]) {
    let mut kept = Vec::new();
    for (instance, pending) in state::pending_uploads(&ctx.paths) {
        if resuming.contains(&instance.as_str()) {
            kept.push(pending.upload_id);
            continue;
        }
        match store.abort_upload(&pending.key, &pending.upload_id) {
            Ok(()) => {
                log::info!(instance = instance.as_str(), key = pending.key.as_str(); "aborted the upload an interrupted run left")
            }
            Err(err) => log::debug!(key = pending.key.as_str(); "upload already gone: {err}"),
        }
        killpoint::reached("export.stale-upload-aborted");
        if let Err(err) = state::clear_pending(&ctx.paths, &instance) {
            log::warn!("{}", terrarium_common::output::error_chain(err.chain()));
        }
    }
    match store.incomplete_uploads(&keys.host_prefix()) {
        Ok(uploads) => {
            for upload in uploads.into_iter().filter(|u| !kept.contains(&u.upload_id)) {
                if let Err(err) = store.abort_upload(&upload.key, &upload.upload_id) {
                    log::warn!(key = upload.key.as_str(); "could not abort an incomplete upload: {err}");
                }
            }
        }
        // Some S3-compatible servers cannot list multipart uploads; the local record covers us.
        Err(err) => log::debug!("cannot list incomplete uploads: {err}"),
    }
}

/// Where streams go, and how they are encrypted.
struct Target<'a> {
    store: &'a Store,
    keys: &'a KeyLayout,
    recipients: Option<&'a Recipients>,
}

fn export_one(
    ctx: &Context,
    zfs: &Zfs,
    target: &Target<'_>,
    dataset: &ContainerDataset,
    force_full: bool,
    dry_run: bool,
) -> anyhow::Result<Item> {
    let instance = dataset.instance.as_str();
    // syncoid's own sync snapshots come and go with each replication run: never a base.
    let local: Vec<Snapshot> =
        zfs.snapshots(&dataset.dataset)?.into_iter().filter(|s| !s.name.starts_with("syncoid_")).collect();
    let catalog = state::read_catalog(&ctx.paths, instance);
    let last = state::read_last(&ctx.paths, instance);
    let mut decision = decide(&Inputs {
        local: &local,
        last: last.as_deref(),
        catalog: &catalog,
        full_every_days: ctx.config.backup.s3_retention.full_every_days,
        force_full,
        now: now(),
        recipients: target.recipients.map(Recipients::fingerprints),
    });
    // An interrupted export of this instance: finished first (its parts are kept), the
    // newest snapshot follows at the next run.
    let mut resume = None;
    if let Some(pending) = state::read_pending(&ctx.paths, instance) {
        let level = ctx.config.backup.zstd_level;
        let max_age = ctx.config.backup.export.resume_max_age();
        match resumable(&pending, &local, level, target.recipients.is_some(), max_age, now()) {
            Ok((snapshot, base)) if !force_full || base.is_none() => {
                let reason = format!("resuming the interrupted export of {}", snapshot.name);
                decision = Decision::Send { snapshot, base, reason };
                resume = Some(pending.clone());
            }
            Ok(_) => log::info!(instance = instance; "not resuming the interrupted export: --full was given"),
            Err(why) => log::info!(instance = instance; "not resuming the interrupted export: {why}"),
        }
        if resume.is_none() && !dry_run {
            abort_pending(target.store, &ctx.paths, instance, &pending);
        }
    }
    let mut item = Item { instance: instance.to_string(), dataset: dataset.dataset.clone(), ..Item::default() };
    let (snapshot, base, reason) = match decision {
        Decision::NoSnapshot => {
            log::warn!(instance = instance; "no snapshot to export yet (sanoid takes them)");
            item.status = "no_snapshot";
            return Ok(item);
        }
        Decision::UpToDate { snapshot } => {
            log::info!(instance = instance, snapshot = snapshot.name.as_str(); "already exported");
            if !dry_run {
                // Converge what a killed earlier run left: the hold on its snapshot.
                keep_one_hold(zfs, &dataset.dataset, instance, Some(&snapshot.name));
            }
            item.status = "up_to_date";
            item.snapshot = Some(snapshot.name);
            return Ok(item);
        }
        Decision::Send { snapshot, base, reason } => (snapshot, base, reason),
    };
    let kind = if base.is_some() { Kind::Incremental } else { Kind::Full };
    let key = target.keys.stream_key_for(instance, &snapshot.name, target.recipients.is_some());
    item.kind = Some(kind);
    item.snapshot = Some(snapshot.name.clone());
    item.base = base.as_ref().map(|b| b.name.clone());
    item.reason = Some(reason.clone());
    item.object_key = Some(key.clone());
    if dry_run {
        log::info!(instance = instance, kind = kind.as_str(), snapshot = snapshot.name.as_str(); "would export: {reason}");
        item.status = "planned";
        return Ok(item);
    }
    log::info!(instance = instance, kind = kind.as_str(), snapshot = snapshot.name.as_str(); "exporting: {reason}");
    killpoint::reached("export.snapshot-chosen");
    // The base stays held (since its own export) while this one is sent; the new
    // snapshot is held only once its stream and manifest are stored, so a run killed
    // mid-send leaves no hold behind.
    let resume = match resume {
        Some(pending) if pending.key == key => parts_to_keep(ctx, target.store, instance, &pending),
        Some(pending) => {
            abort_pending(target.store, &ctx.paths, instance, &pending);
            None
        }
        None => None,
    };
    let mut sent = send_and_record(ctx, zfs, target, instance, &snapshot, base.as_ref(), kind, &key, resume.clone());
    if let (Err(err), Some(_)) = (&sent, &resume)
        && let Some(mismatch) = ResumeMismatch::find(&**err)
    {
        log::warn!(instance = instance, snapshot = snapshot.name.as_str(); "{mismatch}");
        item.reason = Some(format!("{reason}; {mismatch}"));
        sent = send_and_record(ctx, zfs, target, instance, &snapshot, base.as_ref(), kind, &key, None);
    }
    let last_local = last.as_deref().filter(|name| local.iter().any(|s| s.name == *name));
    let exported = if sent.is_ok() { Some(snapshot.name.as_str()) } else { last_local };
    keep_one_hold(zfs, &dataset.dataset, instance, exported);
    let Sent { manifest, resumed_parts, resumed_bytes } = sent?;
    log::info!(
        instance = instance, kind = kind.as_str(), snapshot = snapshot.name.as_str(),
        raw_bytes = manifest.raw_bytes, compressed_bytes = manifest.compressed_bytes;
        "exported {} → {}", human_bytes(manifest.raw_bytes), human_bytes(manifest.compressed_bytes)
    );
    item.status = "exported";
    item.raw_bytes = Some(manifest.raw_bytes);
    item.compressed_bytes = Some(manifest.compressed_bytes);
    item.seconds = Some((manifest.finished_at - manifest.started_at).as_seconds_f64());
    if resumed_parts > 0 {
        item.resumed_parts = Some(resumed_parts);
        item.resumed_bytes = Some(resumed_bytes);
    }
    Ok(item)
}

/// Abort a recorded upload that will not be resumed, and forget it (best effort: the
/// server may have dropped it already; the next run's listing catches the rest).
fn abort_pending(store: &Store, paths: &terrarium_common::Paths, instance: &str, pending: &PendingUpload) {
    if let Err(err) = store.abort_upload(&pending.key, &pending.upload_id) {
        log::debug!(key = pending.key.as_str(); "upload already gone: {err}");
    }
    if let Err(err) = state::clear_pending(paths, instance) {
        log::warn!("{}", terrarium_common::output::error_chain(err.chain()));
    }
}

/// The parts of `pending` the new run may keep: those its journal records and the
/// server still lists with the same size (see [`terrarium_archive::resume`]). `None` (the upload
/// aborted, a fresh one follows) when there are none or the server cannot say.
fn parts_to_keep(ctx: &Context, store: &Store, instance: &str, pending: &PendingUpload) -> Option<Resume> {
    let journal = state::read_parts(&ctx.paths, instance);
    let parts = match store.list_parts(&pending.key, &pending.upload_id) {
        Ok(listed) => usable_parts(&journal, &listed),
        Err(err) => {
            log::info!(instance = instance; "not resuming the interrupted export: {err}");
            Default::default()
        }
    };
    if parts.is_empty() {
        abort_pending(store, &ctx.paths, instance, pending);
        return None;
    }
    let bytes: u64 = parts.values().map(|p| p.size).sum();
    log::info!(
        instance = instance, key = pending.key.as_str(), parts = parts.len(), bytes = bytes;
        "resuming the interrupted upload: {} parts ({}) are stored already", parts.len(), human_bytes(bytes)
    );
    let size_hint = pending.stream.as_ref().and_then(|s| s.size_hint);
    Some(Resume { upload_id: pending.upload_id.clone(), size_hint, parts })
}

/// Which holds to place and release so that exactly `keep` (the last exported snapshot:
/// the next incremental's base) carries [`HOLD_TAG`], from the snapshots that carry it
/// now. The hold comes first, so the base is never unheld in between.
pub(crate) fn hold_changes(held: &[String], keep: Option<&str>) -> (Option<String>, Vec<String>) {
    let place = keep.filter(|k| !held.iter().any(|h| h == k)).map(str::to_string);
    let release = held.iter().filter(|h| Some(h.as_str()) != keep).cloned().collect();
    (place, release)
}

/// Converge the holds of `dataset` to one, on `keep` (see [`hold_changes`]). Best effort:
/// a failure is logged and the next run tries again.
fn keep_one_hold(zfs: &Zfs, dataset: &str, instance: &str, keep: Option<&str>) {
    let held = match zfs.capabilities() {
        Ok(caps) if caps.holds => zfs.held_snapshots(dataset, HOLD_TAG),
        _ => return,
    };
    let held = match held {
        Ok(held) => held,
        Err(err) => return log::warn!(instance = instance; "could not read the holds of {dataset}: {err}"),
    };
    let (place, release) = hold_changes(&held, keep);
    if let Some(name) = &place
        && let Err(err) = zfs.hold(HOLD_TAG, &format!("{dataset}@{name}"))
    {
        // Without the hold on the base, nothing is released: better two holds than none.
        return log::warn!(instance = instance; "could not hold {name}: {err}");
    } else if place.is_some() {
        killpoint::reached("export.hold-placed");
    }
    for name in release {
        if let Err(err) = zfs.release(HOLD_TAG, &format!("{dataset}@{name}")) {
            log::warn!(instance = instance; "could not release the hold on {name}: {err}");
        }
        killpoint::reached("export.old-hold-released");
    }
}

/// What [`send_and_record`] stored.
struct Sent {
    manifest: Manifest,
    resumed_parts: u32,
    resumed_bytes: u64,
}

/// Send, upload (going on with `resume`'s upload when given), then record: manifest in
/// S3, local catalog, lastsnapshots (in that order, each only after the previous
/// succeeded).
#[allow(clippy::too_many_arguments)]
fn send_and_record(
    ctx: &Context,
    zfs: &Zfs,
    target: &Target<'_>,
    instance: &str,
    snapshot: &Snapshot,
    base: Option<&Snapshot>,
    kind: Kind,
    key: &str,
    resume: Option<Resume>,
) -> anyhow::Result<Sent> {
    let snapshot_name = snapshot.full_name();
    let base_name = base.map(Snapshot::full_name);
    let flags = zfs.capabilities()?.send_flags();
    // A resumed upload's parts were cut by the hint it had then: the same one again.
    let hint = match &resume {
        Some(resume) => resume.size_hint,
        None => zfs.send_size_estimate(&snapshot_name, base_name.as_deref(), flags).ok(),
    };
    let level = ctx.config.backup.zstd_level;
    let started_at = now();
    let bar = byte_progress(hint, instance);
    let mut send = zfs.send(&snapshot_name, base_name.as_deref(), flags)?;
    let stdout = send.take_stdout().ok_or_else(|| anyhow::anyhow!("zfs send has no stdout"))?;
    let mut send = Some(send);
    let (store, keys) = (target.store, target.keys);
    let paths = &ctx.paths;
    let mut record_error = None;
    // What a later run needs to send the same bytes again; none for an encrypted stream.
    let stream = target.recipients.is_none().then(|| SentStream {
        snapshot: snapshot.name.clone(),
        guid: snapshot.guid,
        base: base.map(|b| b.name.clone()),
        base_guid: base.map(|b| b.guid),
        zstd_level: level,
        size_hint: hint,
        started_at,
    });
    // The resume journal, for a stream that can be resumed.
    let journal = stream.is_some().then(|| {
        let (paths, instance) = (paths.clone(), instance.to_string());
        Box::new(move |part: &terrarium_archive::resume::StoredPart| {
            if let Err(err) = state::append_part(&paths, &instance, part) {
                log::warn!(instance = instance.as_str(); "{}", terrarium_common::output::error_chain(err.chain()));
            }
            killpoint::reached(&format!("export.part-{}-stored", part.number));
        }) as terrarium_archive::s3::PartJournal
    });
    let upload = Upload { key, level, recipients: target.recipients, size_hint: hint, resume, journal };
    let uploaded = compress_and_upload(
        store,
        upload,
        stdout,
        &|n| bar.inc(n),
        &mut |upload_id| {
            let pending =
                PendingUpload { key: key.to_string(), upload_id: upload_id.to_string(), stream: stream.clone() };
            if let Err(err) = state::record_pending(paths, instance, &pending) {
                record_error = Some(err);
            }
            killpoint::reached("export.upload-started");
        },
        &mut || match send.take() {
            Some(running) => running.finish().map_err(|e| PipelineError::Zfs(e.into())),
            None => Ok(()),
        },
    );
    bar.finish_and_clear();
    let uploaded = match uploaded {
        Ok(uploaded) => uploaded,
        Err(err) => {
            if let Some(running) = send.take() {
                running.kill();
            }
            // The upload was aborted; nothing is pending any more.
            let _ = state::clear_pending(paths, instance);
            return Err(err.into());
        }
    };
    killpoint::reached("export.stream-uploaded");
    if let Some(err) = record_error {
        log::warn!("{}", terrarium_common::output::error_chain(err.chain()));
    }
    let encryption = match (target.recipients, uploaded.plaintext_sha256) {
        (Some(recipients), Some(plaintext_sha256)) => Some(Encryption {
            scheme: terrarium_archive::seal::SCHEME.into(),
            recipients: recipients.fingerprints().to_vec(),
            plaintext_sha256,
        }),
        _ => None,
    };
    let manifest = Manifest {
        schema_version: if encryption.is_some() { ENCRYPTED_SCHEMA_VERSION } else { PLAIN_SCHEMA_VERSION },
        host: keys.host().to_string(),
        instance: instance.to_string(),
        dataset: snapshot.dataset.clone(),
        snapshot: SnapshotRef { name: snapshot.name.clone(), guid: snapshot.guid, createtxg: snapshot.createtxg },
        base: base.map(|b| SnapshotRef { name: b.name.clone(), guid: b.guid, createtxg: b.createtxg }),
        kind,
        object_key: key.to_string(),
        raw_bytes: uploaded.raw_bytes,
        compressed_bytes: uploaded.compressed_bytes,
        sha256: uploaded.sha256,
        encryption,
        send_flags: flags.iter().map(|flag| flag.to_string()).collect(),
        compression: "zstd".into(),
        zstd_level: level,
        tool_version: terrarium_common::VERSION.to_string(),
        started_at,
        finished_at: now(),
    };
    manifest.validate(key)?;
    store
        .put_bytes(&keys.manifest_key(instance, &snapshot.name), manifest.to_json().into_bytes())
        .map_err(upload_context)?;
    killpoint::reached("export.manifest-written");
    state::clear_pending(paths, instance)?;
    killpoint::reached("export.pending-cleared");
    state::write_catalog(paths, &manifest)?;
    killpoint::reached("export.catalog-written");
    state::write_last(paths, instance, &snapshot.name)?;
    killpoint::reached("export.last-recorded");
    Ok(Sent { manifest, resumed_parts: uploaded.resumed_parts, resumed_bytes: uploaded.resumed_bytes })
}

fn upload_context(err: S3Error) -> anyhow::Error {
    anyhow::Error::new(err).context("writing the manifest (the stream was uploaded; the next run exports it again)")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn snap(name: &str, guid: u64, txg: u64) -> Snapshot {
        Snapshot { dataset: "t/containers/web".into(), name: name.into(), guid, createtxg: txg }
    }

    fn manifest_of(s: &Snapshot, base: Option<&Snapshot>, finished: OffsetDateTime) -> Manifest {
        Manifest {
            schema_version: PLAIN_SCHEMA_VERSION,
            host: "h".into(),
            instance: "web".into(),
            dataset: s.dataset.clone(),
            snapshot: SnapshotRef { name: s.name.clone(), guid: s.guid, createtxg: s.createtxg },
            base: base.map(|b| SnapshotRef { name: b.name.clone(), guid: b.guid, createtxg: b.createtxg }),
            kind: if base.is_some() { Kind::Incremental } else { Kind::Full },
            object_key: format!("h/web/{}.zfs.zst", s.name),
            raw_bytes: 1,
            compressed_bytes: 1,
            sha256: "0".repeat(64),
            encryption: None,
            send_flags: Vec::new(),
            compression: "zstd".into(),
            zstd_level: 3,
            tool_version: "t".into(),
            started_at: finished,
            finished_at: finished,
        }
    }

    const NOW: OffsetDateTime = time::macros::datetime!(2026-02-01 00:00:00 UTC);

    fn decide_with(local: &[Snapshot], last: Option<&str>, catalog: &[Manifest], force_full: bool) -> Decision {
        decide(&Inputs { local, last, catalog, full_every_days: 30, force_full, now: NOW, recipients: None })
    }

    #[test]
    fn first_export_is_full() {
        let local = [snap("a", 1, 10)];
        assert!(
            matches!(decide_with(&local, None, &[], false), Decision::Send { base: None, reason, .. } if reason.contains("first export"))
        );
        assert_eq!(decide_with(&[], None, &[], false), Decision::NoSnapshot);
    }

    #[test]
    fn incremental_from_the_last_exported_snapshot() {
        let (a, b) = (snap("a", 1, 10), snap("b", 2, 20));
        let catalog = [manifest_of(&a, None, NOW - time::Duration::days(1))];
        let decision = decide_with(&[a.clone(), b.clone()], Some("a"), &catalog, false);
        assert_eq!(
            decision,
            Decision::Send { snapshot: b, base: Some(a.clone()), reason: "incremental from a".into() }
        );
        assert!(matches!(decide_with(std::slice::from_ref(&a), Some("a"), &catalog, false), Decision::UpToDate { .. }));
    }

    #[test]
    fn a_base_pruned_locally_or_recreated_means_a_full_that_says_why() {
        let (a, b) = (snap("a", 1, 10), snap("b", 2, 20));
        let catalog = [manifest_of(&a, None, NOW)];
        let decision = decide_with(std::slice::from_ref(&b), Some("a"), &catalog, false);
        assert!(
            matches!(&decision, Decision::Send { base: None, reason, .. } if reason.contains("no longer exists locally")),
            "{decision:?}"
        );
        // Same name, different GUID: not the snapshot we exported.
        let decision = decide_with(&[snap("a", 99, 10), b], Some("a"), &catalog, false);
        assert!(matches!(decision, Decision::Send { base: None, .. }));
    }

    #[test]
    fn a_new_full_every_full_every_days() {
        let (a, b, c) = (snap("a", 1, 10), snap("b", 2, 20), snap("c", 3, 30));
        let catalog = [
            manifest_of(&a, None, NOW - time::Duration::days(31)),
            manifest_of(&b, Some(&a), NOW - time::Duration::days(1)),
        ];
        let decision = decide_with(&[a, b, c], Some("b"), &catalog, false);
        assert!(
            matches!(&decision, Decision::Send { base: None, reason, .. } if reason.contains("older than 30 days")),
            "{decision:?}"
        );
    }

    #[test]
    fn exactly_the_last_exported_snapshot_stays_held() {
        let held = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert_eq!(hold_changes(&held(&["a"]), Some("b")), (Some("b".into()), held(&["a"])));
        assert_eq!(hold_changes(&held(&["a", "b", "c"]), Some("b")), (None, held(&["a", "c"])));
        assert_eq!(hold_changes(&[], Some("a")), (Some("a".into()), vec![]));
        // Nothing exported yet (a failed first export): no hold at all.
        assert_eq!(hold_changes(&held(&["a"]), None), (None, held(&["a"])));
    }

    #[test]
    fn a_change_of_encryption_starts_a_new_chain_that_says_why() {
        let (a, b) = (snap("a", 1, 10), snap("b", 2, 20));
        let plain = manifest_of(&a, None, NOW);
        let sealed_to = |recipients: &[&str]| {
            let mut m = plain.clone();
            m.schema_version = ENCRYPTED_SCHEMA_VERSION;
            m.encryption = Some(Encryption {
                scheme: "age".into(),
                recipients: recipients.iter().map(|r| r.to_string()).collect(),
                plaintext_sha256: "1".repeat(64),
            });
            m
        };
        let local = [a.clone(), b.clone()];
        let decide_to = |catalog: &[Manifest], recipients: Option<&[String]>| {
            decide(&Inputs {
                local: &local,
                last: Some("a"),
                catalog,
                full_every_days: 30,
                force_full: false,
                now: NOW,
                recipients,
            })
        };
        let one = ["age:1".to_string()];
        let two = ["age:1".to_string(), "age:2".to_string()];
        for (catalog, recipients, why) in [
            (vec![plain.clone()], Some(&one[..]), "turned on"),
            (vec![sealed_to(&["age:1"])], None, "turned off"),
            (vec![sealed_to(&["age:1"])], Some(&two[..]), "recipients changed"),
        ] {
            let decision = decide_to(&catalog, recipients);
            assert!(
                matches!(&decision, Decision::Send { base: None, reason, .. } if reason.contains(why)),
                "{why}: {decision:?}"
            );
        }
        // The same recipients: the chain goes on.
        let decision = decide_to(&[sealed_to(&["age:1"])], Some(&one[..]));
        assert!(matches!(decision, Decision::Send { base: Some(_), .. }), "{decision:?}");
        assert!(matches!(decide_to(&[plain], None), Decision::Send { base: Some(_), .. }));
    }

    #[test]
    fn an_interrupted_export_is_resumed_only_when_its_stream_would_be_the_same() {
        let (a, b) = (snap("a", 1, 10), snap("b", 2, 20));
        let stream = SentStream {
            snapshot: "b".into(),
            guid: 2,
            base: Some("a".into()),
            base_guid: Some(1),
            zstd_level: 3,
            size_hint: Some(1 << 30),
            started_at: NOW - time::Duration::hours(23),
        };
        let pending = |stream: Option<SentStream>| PendingUpload { key: "k".into(), upload_id: "u".into(), stream };
        let day = std::time::Duration::from_secs(48 * 3600);
        let local = [a.clone(), b.clone()];
        assert_eq!(
            resumable(&pending(Some(stream.clone())), &local, 3, false, day, NOW),
            Ok((b.clone(), Some(a.clone())))
        );
        let why = |p: &PendingUpload, local: &[Snapshot], level: i32, encrypted: bool, max_age| {
            resumable(p, local, level, encrypted, max_age, NOW).unwrap_err()
        };
        let sent = pending(Some(stream.clone()));
        assert!(why(&pending(None), &local, 3, false, day).contains("encrypted, or recorded by an older version"));
        assert!(why(&sent, &local, 3, true, day).contains("encryption is on"));
        assert!(why(&sent, &local, 3, false, std::time::Duration::from_secs(3600)).contains("more than 1 hours"));
        assert!(why(&sent, &local, 5, false, day).contains("zstd_level changed from 3 to 5"));
        assert!(why(&sent, std::slice::from_ref(&a), 3, false, day).contains("snapshot b is gone"));
        assert!(why(&sent, std::slice::from_ref(&b), 3, false, day).contains("base snapshot a is gone"));
        // Same names, other GUIDs: recreated snapshots, other bytes.
        assert!(why(&sent, &[snap("a", 1, 10), snap("b", 9, 20)], 3, false, day).contains("snapshot b is gone"));
        let full = SentStream { base: None, base_guid: None, ..stream };
        assert_eq!(resumable(&pending(Some(full)), std::slice::from_ref(&b), 3, false, day, NOW), Ok((b, None)));
    }

    #[test]
    fn full_can_be_forced() {
        let (a, b) = (snap("a", 1, 10), snap("b", 2, 20));
        let catalog = [manifest_of(&a, None, NOW)];
        assert!(matches!(decide_with(&[a, b], Some("a"), &catalog, true), Decision::Send { base: None, .. }));
    }
}
