//! The subcommands. Each reads its inputs, plans with pure code, then acts.

mod export;
mod list;
mod prune;
mod replicate;
mod sanoid_config;
mod stream;
mod verify;

use std::time::Duration;

use terrarium_common::Exit;
use terrarium_common::fs::RunLock;

pub(crate) use export::UnknownInstance;

use crate::context::Context;
use crate::{Args, Command};

/// One lock for every command that changes backups, so export, prune, a deep verify and
/// replicate never overlap (they share snapshots, holds and S3 objects).
pub(crate) fn lock(ctx: &Context) -> anyhow::Result<RunLock> {
    Ok(RunLock::acquire(&ctx.paths.locks_dir(), "terrarium-backup", Duration::from_secs(5))?)
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
