//! Error kinds that decide the exit code, and the mapping to it.

use terrarium_common::Exit;

use crate::preflight::PreflightError;
use crate::resolve::ResolveError;
use crate::secrets::SecretInputError;

/// Bad usage or input that is not a flag-parsing error (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// A confirmation was needed but there is no terminal and no `--yes` (exit 6).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NeedsConfirmation(pub String);

/// The exit code for an error that ended a run.
pub fn exit_for(err: &anyhow::Error) -> Exit {
    for cause in err.chain() {
        if cause.is::<PreflightError>() {
            return Exit::Verification;
        }
        if cause.is::<ResolveError>() || cause.is::<UsageError>() {
            return Exit::Usage;
        }
        if let Some(err) = cause.downcast_ref::<SecretInputError>()
            && !matches!(err, SecretInputError::Write { .. })
        {
            return Exit::Usage;
        }
        if cause.is::<NeedsConfirmation>() {
            return Exit::NeedsConfirmation;
        }
    }
    Exit::classify(err.chain())
}
