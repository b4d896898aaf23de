//! The subcommands. Each reads its inputs, plans with pure code, then acts.

mod export;
mod list;
mod prune;
mod replicate;
mod sanoid_config;
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

pub fn dispatch(args: &Args) -> anyhow::Result<Exit> {
    let ctx = Context::load(&args.global)?;
    match &args.command {
        Command::SanoidConfig { dry_run } => sanoid_config::run(&ctx, *dry_run),
        Command::List { instance, local } => list::run(&ctx, instance.as_deref(), *local),
        Command::Export { if_enabled: true, .. } if !ctx.config.s3.enabled => Ok(disabled("S3 export", "s3.enabled")),
        Command::Export { instance, full, dry_run, .. } => export::run(&ctx, instance, *full, *dry_run),
        Command::Prune { dry_run } => prune::run(&ctx, *dry_run),
        Command::Verify { instance, deep } => verify::run(&ctx, instance.as_deref(), *deep),
        Command::Replicate { if_enabled: true, .. } if !ctx.config.syncoid.enabled => {
            Ok(disabled("replication", "syncoid.enabled"))
        }
        Command::Replicate { to, dry_run, .. } => replicate::run(&ctx, to.as_deref(), *dry_run),
        Command::Stream { key, size_hint } => stream::run(&ctx, key, *size_hint),
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

/// Bytes for people: `1.5 GiB`.
pub(crate) fn human_bytes(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < units.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{value:.1} {}", units[unit]) }
}
