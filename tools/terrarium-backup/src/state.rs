//! Local state: the catalog of exported manifests, the last exported snapshot per
//! instance, and the id of an upload in progress with the parts it stored (so a killed
//! run's upload is resumed or aborted).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::PathBuf;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use terrarium_common::Paths;
use terrarium_common::fs::{atomic_write, remove_if_exists};
use time::OffsetDateTime;

use terrarium_archive::manifest::Manifest;
use terrarium_archive::resume::StoredPart;

/// `catalog/<instance>/<snapshot>.manifest.json`.
pub fn catalog_file(paths: &Paths, instance: &str, snapshot: &str) -> PathBuf {
    paths.catalog_dir().join(instance).join(format!("{snapshot}{}", terrarium_archive::keys::MANIFEST_SUFFIX))
}

/// The instance's manifests in the local catalog (unreadable files are skipped with a warning).
pub fn read_catalog(paths: &Paths, instance: &str) -> Vec<Manifest> {
    let dir = paths.catalog_dir().join(instance);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut manifests = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.to_string_lossy().ends_with(terrarium_archive::keys::MANIFEST_SUFFIX) {
            continue;
        }
        match terrarium_common::fs::read_regular_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|t| Manifest::parse(&t, &path.display().to_string()).map_err(|e| e.to_string()))
        {
            Ok(manifest) => manifests.push(manifest),
            Err(err) => {
                log::warn!(path = path.display().to_string(); "skipping an unreadable catalog entry: {err}")
            }
        }
    }
    manifests.sort_by_key(|m| m.snapshot.createtxg);
    manifests
}

pub fn write_catalog(paths: &Paths, manifest: &Manifest) -> anyhow::Result<()> {
    let path = catalog_file(paths, &manifest.instance, &manifest.snapshot.name);
    atomic_write(&path, manifest.to_json().as_bytes(), 0o644).with_context(|| format!("writing {}", path.display()))
}

pub fn remove_catalog(paths: &Paths, instance: &str, snapshot: &str) -> anyhow::Result<()> {
    let path = catalog_file(paths, instance, snapshot);
    remove_if_exists(&path).with_context(|| format!("removing {}", path.display()))?;
    Ok(())
}

/// `lastsnapshots/<instance>`: the short name of the last exported snapshot.
pub fn last_file(paths: &Paths, instance: &str) -> PathBuf {
    paths.last_snapshots_dir().join(instance)
}

pub fn read_last(paths: &Paths, instance: &str) -> Option<String> {
    let text = terrarium_common::fs::read_regular_to_string(&last_file(paths, instance)).ok()?;
    let name = text.trim();
    (!name.is_empty()).then(|| name.to_string())
}

pub fn write_last(paths: &Paths, instance: &str, snapshot: &str) -> anyhow::Result<()> {
    let path = last_file(paths, instance);
    atomic_write(&path, format!("{snapshot}\n").as_bytes(), 0o644)
        .with_context(|| format!("writing {}", path.display()))
}

/// When `verify --deep` last drilled an instance, and whether the drill passed: what
/// `verify --deep --rotate` reads to pick the instance whose turn it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drilled {
    #[serde(with = "time::serde::rfc3339")]
    pub at: time::OffsetDateTime,
    pub ok: bool,
}

/// Where a per-instance record of `kind` lives: `/var/lib/terrarium/<kind>/<instance>.json`.
fn record_file(paths: &Paths, kind: &str, instance: &str) -> PathBuf {
    paths.state_dir().join(kind).join(format!("{instance}.json"))
}

/// A per-instance record (none when there is none, or it is unreadable: these records
/// only inform `status` and the drill's rotation, so a damaged one counts as absent).
fn read_record<T: serde::de::DeserializeOwned>(paths: &Paths, kind: &str, instance: &str) -> Option<T> {
    let text = terrarium_common::fs::read_regular_to_string(&record_file(paths, kind, instance)).ok()?;
    serde_json::from_str(&text).ok()
}

fn write_record<T: Serialize>(paths: &Paths, kind: &str, instance: &str, record: &T) -> anyhow::Result<()> {
    let path = record_file(paths, kind, instance);
    let text = serde_json::to_string_pretty(record)? + "\n";
    atomic_write(&path, text.as_bytes(), 0o644).with_context(|| format!("writing {}", path.display()))
}

const DRILLED: &str = "backup-verified";
const EXPORTED: &str = "backup-exported";

/// The last drill of `instance` (none when it was never drilled, or its record is unreadable).
pub fn read_drilled(paths: &Paths, instance: &str) -> Option<Drilled> {
    read_record(paths, DRILLED, instance)
}

pub fn write_drilled(paths: &Paths, instance: &str, drilled: &Drilled) -> anyhow::Result<()> {
    write_record(paths, DRILLED, instance, drilled)
}

/// How the last export of an instance went (not a dry run): what `status` reports as
/// the last export's result. Written after the run decided, whatever it decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exported {
    #[serde(with = "time::serde::rfc3339")]
    pub at: time::OffsetDateTime,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

pub fn read_exported(paths: &Paths, instance: &str) -> Option<Exported> {
    read_record(paths, EXPORTED, instance)
}

pub fn write_exported(paths: &Paths, instance: &str, exported: &Exported) -> anyhow::Result<()> {
    write_record(paths, EXPORTED, instance, exported)
}

/// An upload that was started and not yet completed or aborted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingUpload {
    pub key: String,
    pub upload_id: String,
    /// What the stream was, for a run that resumes it; absent for a stream that cannot
    /// be resumed (encrypted) and in records of earlier versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<SentStream>,
}

/// What makes a re-sent stream the same bytes: the snapshots, the zstd level and the
/// size hint (which cuts the parts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentStream {
    pub snapshot: String,
    pub guid: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_guid: Option<u64>,
    pub zstd_level: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_hint: Option<u64>,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
}

fn pending_dir(paths: &Paths) -> PathBuf {
    paths.state_dir().join("backup-uploads")
}

pub fn record_pending(paths: &Paths, instance: &str, pending: &PendingUpload) -> anyhow::Result<()> {
    let path = pending_dir(paths).join(format!("{instance}.json"));
    let text = serde_json::to_string(pending)?;
    atomic_write(&path, text.as_bytes(), 0o600).with_context(|| format!("writing {}", path.display()))
}

/// Forget an upload: its record, then its parts journal.
pub fn clear_pending(paths: &Paths, instance: &str) -> anyhow::Result<()> {
    for path in [pending_dir(paths).join(format!("{instance}.json")), parts_journal(paths, instance)] {
        remove_if_exists(&path).with_context(|| format!("removing {}", path.display()))?;
    }
    Ok(())
}

/// The parts the pending upload of `instance` has stored (see [`terrarium_archive::resume`]).
fn parts_journal(paths: &Paths, instance: &str) -> PathBuf {
    pending_dir(paths).join(format!("{instance}.parts"))
}

/// Append one stored part to the journal. Not synced: a line lost in a crash only means
/// that part is sent again.
pub fn append_part(paths: &Paths, instance: &str, part: &StoredPart) -> anyhow::Result<()> {
    let path = parts_journal(paths, instance);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    file.write_all(part.to_line().as_bytes()).with_context(|| format!("writing {}", path.display()))
}

/// The parts the journal of `instance` records (none when it is missing).
pub fn read_parts(paths: &Paths, instance: &str) -> BTreeMap<u32, StoredPart> {
    let text = terrarium_common::fs::read_regular_to_string(&parts_journal(paths, instance)).unwrap_or_default();
    terrarium_archive::resume::parse_journal(&text)
}

/// The recorded pending upload of `instance` (none when there is none, or it is unreadable).
pub fn read_pending(paths: &Paths, instance: &str) -> Option<PendingUpload> {
    read_record(paths, "backup-uploads", instance)
}

/// Every recorded pending upload, as (instance, upload).
pub fn pending_uploads(paths: &Paths) -> Vec<(String, PendingUpload)> {
    let Ok(entries) = std::fs::read_dir(pending_dir(paths)) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let path = entry.path();
            let instance = path.file_name()?.to_str()?.strip_suffix(".json")?.to_string();
            let pending = serde_json::from_str(&terrarium_common::fs::read_regular_to_string(&path).ok()?).ok()?;
            Some((instance, pending))
        })
        .collect()
}
