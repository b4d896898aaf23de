//! The subcommands. Each reads its inputs, plans with pure code, then acts.

mod export;
mod list;
mod prune;
mod replicate;
mod sanoid_config;
mod status;
mod stream;
mod verify;

use terrarium_common::Exit;
use terrarium_common::fs::RunLock;
use terrarium_common::locks;

pub(crate) use export::UnknownInstance;

/// A flag value refused before anything ran (exit 2); the message names the flag and the fix.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct BadInput(pub String);

use crate::context::Context;
use crate::{Args, Command};

/// One lock for every command that changes backups, so export, prune, a deep verify,
/// replicate and terrarium-restore never overlap (they share snapshots, holds and S3
/// objects). `what` names the command in the lock file, for a waiting run's message.
pub(crate) fn lock(ctx: &Context, what: &str) -> anyhow::Result<RunLock> {
    Ok(locks::BACKUPS.acquire(&ctx.paths, what)?)
}

/// [`lock`], waiting `seconds` (a `--lock-wait`) instead of the lock's default: a timer
/// that may meet a long export waits for it rather than fail.
pub(crate) fn lock_waiting(ctx: &Context, what: &str, seconds: Option<u64>) -> anyhow::Result<RunLock> {
    match seconds {
        Some(seconds) => {
            Ok(locks::BACKUPS.acquire_within(&ctx.paths, what, std::time::Duration::from_secs(seconds))?)
        }
        None => lock(ctx, what),
    }
}

pub fn dispatch(args: &Args) -> anyhow::Result<Exit> {
    if let Command::Status { check } = &args.command {
        // Loads the config itself: with --check, a config it cannot read is UNKNOWN.
        return status::run(&args.global, *check);
    }
    let ctx = Context::load(&args.global)?;
    match &args.command {
        Command::Status { .. } => unreachable!("dispatched above"),
        Command::SanoidConfig { dry_run } => sanoid_config::run(&ctx, *dry_run),
        Command::List { instance, local } => list::run(&ctx, instance.as_deref(), *local),
        Command::Export { if_enabled: true, .. } if !ctx.config.s3.enabled => Ok(disabled("S3 export", "s3.enabled")),
        Command::Export { instance, full, dry_run, bwlimit, .. } => {
            export::run(&ctx, instance, *full, *dry_run, *bwlimit)
        }
        Command::Prune { if_enabled: true, .. } if !ctx.config.s3.enabled => Ok(disabled("S3 prune", "s3.enabled")),
        Command::Prune { dry_run, lock_wait, .. } => prune::run(&ctx, *dry_run, *lock_wait),
        Command::Verify { if_enabled: true, .. } if !ctx.config.s3.enabled => Ok(disabled("S3 verify", "s3.enabled")),
        Command::Verify { instance, deep, rotate, lock_wait, .. } => {
            let only = match (instance, rotate) {
                (Some(name), _) => verify::Only::Instance(name),
                (None, true) => verify::Only::NextInTurn,
                (None, false) => verify::Only::All,
            };
            verify::run(&ctx, only, *deep, *lock_wait)
        }
        Command::Replicate { if_enabled: true, .. } if !ctx.config.syncoid.enabled => {
            Ok(disabled("replication", "syncoid.enabled"))
        }
        Command::Replicate { to, dry_run, .. } => replicate::run(&ctx, to.as_deref(), *dry_run),
        Command::Stream { key, size_hint, bwlimit } => stream::run(&ctx, key, *size_hint, *bwlimit),
    }
}

fn disabled(what: &str, key: &str) -> Exit {
    log::info!("{what} is not enabled ({key} is false); nothing to do");
    Exit::Success
}

/// Now, in UTC.
pub(crate) fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}
