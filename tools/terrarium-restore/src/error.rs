//! The errors a restore reports on purpose, each with its exit code.

use terrarium_common::Exit;

use crate::at::AtError;

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// A bad flag value (the message names the flag and the fix).
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    At(#[from] AtError),
    #[error("unknown instance {instance}: {detail}")]
    UnknownInstance { instance: String, detail: String },
    #[error("--as-new {name}: {what} already exists; choose another name, or restore in place")]
    TargetExists { name: String, what: String },
    /// Manifests that cannot be read or are out of place (see `terrarium_archive::remote`).
    #[error("{instance}: {problems}; {advice}")]
    UntrustedManifests { instance: String, problems: String, advice: String },
    #[error("broken chain for {instance} at {snapshot}: {detail}; nothing was changed")]
    BrokenChain { instance: String, snapshot: String, detail: String },
    #[error("checksum mismatch in {key}: expected sha256 {expected}, got {actual}; {instance} is untouched")]
    Checksum { key: String, expected: String, actual: String, instance: String },
    #[error(
        "received {dataset}@{snapshot} has guid {actual}, but the restore point has {expected}; {instance} is untouched"
    )]
    GuidMismatch { dataset: String, snapshot: String, expected: u64, actual: u64, instance: String },
    #[error(
        "this restore needs a confirmation, but there is no terminal to ask on; rerun with --yes (or look first with --dry-run). Nothing was changed"
    )]
    NeedsConfirmation,
    #[error(
        "{instance} has no dataset at {dataset}, but an earlier restore left {aside}; put it back with `zfs rename {aside} {dataset}` (or restore again as you meant to), then rerun"
    )]
    Interrupted { instance: String, dataset: String, aside: String },
}

impl RestoreError {
    pub fn exit(&self) -> Exit {
        match self {
            Self::Usage(_) | Self::At(_) | Self::UnknownInstance { .. } | Self::TargetExists { .. } => Exit::Usage,
            Self::BrokenChain { .. }
            | Self::UntrustedManifests { .. }
            | Self::Checksum { .. }
            | Self::GuidMismatch { .. } => Exit::Verification,
            Self::NeedsConfirmation => Exit::NeedsConfirmation,
            Self::Interrupted { .. } => Exit::Failure,
        }
    }
}

/// The exit code for an error that ended a run.
pub fn classify(err: &anyhow::Error) -> Exit {
    for cause in err.chain() {
        if let Some(restore) = cause.downcast_ref::<RestoreError>() {
            return restore.exit();
        }
    }
    Exit::classify(err.chain())
}
