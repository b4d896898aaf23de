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
use crate::metrics::Observed;
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
    // A config that cannot be loaded leaves no metrics: where to write them (and
    // whether to) is in it. The run's last-run timestamp then goes stale, which is
    // what an alert on it is for.
    let ctx = Context::load(&args.global)?;
    let started = std::time::Instant::now();
    let mut observed = Observed::default();
    let result = run_command(&ctx, &args.command, &mut observed);
    if let Some(command) = metrics_command(&ctx, &args.command) {
        let exit = match &result {
            Ok(exit) => *exit,
            Err(err) => crate::exit_code(err),
        };
        crate::metrics::publish(&ctx, command, &observed, exit, started.elapsed().as_secs_f64());
    }
    result
}

/// The command a run writes metrics for: the ones timers run, when they act. Dry runs
/// and runs that do nothing because their feature is disabled leave the last real
/// run's file as it is.
fn metrics_command(ctx: &Context, command: &Command) -> Option<&'static str> {
    let s3 = ctx.config.s3.enabled;
    match command {
        Command::Export { dry_run: false, if_enabled, .. } if s3 || !if_enabled => Some("export"),
        Command::Prune { dry_run: false, if_enabled, .. } if s3 || !if_enabled => Some("prune"),
        Command::Verify { if_enabled, .. } if s3 || !if_enabled => Some("verify"),
        Command::Replicate { dry_run: false, if_enabled, .. } if ctx.config.syncoid.enabled || !if_enabled => {
            Some("replicate")
        }
        _ => None,
    }
}

fn run_command(ctx: &Context, command: &Command, observed: &mut Observed) -> anyhow::Result<Exit> {
    match command {
        Command::Status { .. } => unreachable!("dispatched above"),
        Command::SanoidConfig { dry_run } => sanoid_config::run(ctx, *dry_run),
        Command::List { instance, local } => list::run(ctx, instance.as_deref(), *local),
        Command::Export { if_enabled: true, .. } if !ctx.config.s3.enabled => Ok(disabled("S3 export", "s3.enabled")),
        Command::Export { instance, full, dry_run, bwlimit, .. } => {
            export::run(ctx, instance, *full, *dry_run, *bwlimit, observed)
        }
        Command::Prune { if_enabled: true, .. } if !ctx.config.s3.enabled => Ok(disabled("S3 prune", "s3.enabled")),
        Command::Prune { dry_run, lock_wait, .. } => prune::run(ctx, *dry_run, *lock_wait, observed),
        Command::Verify { if_enabled: true, .. } if !ctx.config.s3.enabled => Ok(disabled("S3 verify", "s3.enabled")),
        Command::Verify { instance, deep, rotate, identity, lock_wait, .. } => {
            let only = match (instance, rotate) {
                (Some(name), _) => verify::Only::Instance(name),
                (None, true) => verify::Only::NextInTurn,
                (None, false) => verify::Only::All,
            };
            verify::run(ctx, only, *deep, identity.as_deref(), *lock_wait, observed)
        }
        Command::Replicate { if_enabled: true, .. } if !ctx.config.syncoid.enabled => {
            Ok(disabled("replication", "syncoid.enabled"))
        }
        Command::Replicate { to, dry_run, .. } => replicate::run(ctx, to.as_deref(), *dry_run),
        Command::Stream { key, size_hint, bwlimit } => stream::run(ctx, key, *size_hint, *bwlimit),
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
