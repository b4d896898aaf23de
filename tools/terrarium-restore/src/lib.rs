//! `terrarium-restore`: restore containers from local snapshots or S3 backups without
//! destroying data before its replacement is verified.
//!
//! Functional core, imperative shell: [`at`], [`local`], [`remote`], [`plan`] and [`backup_yaml`] are
//! pure (restore point choice, plans, their rendering); the shell ([`facts`],
//! [`execute`], [`receive`], [`recover`]) reads `zfs`, `lxc` and S3, asks for a
//! confirmation and carries out the plan's steps.

pub mod args;
pub mod at;
pub mod backup_yaml;
pub mod confirm;
pub mod error;
pub mod execute;
pub mod facts;
pub mod instance;
pub mod local;
pub mod names;
pub mod plan;
pub mod receive;
pub mod recover;
pub mod remote;
mod shell;
pub mod unfinished;

use std::ffi::OsString;

use clap::CommandFactory;
use terrarium_common::Exit;

pub use args::Args;
pub use error::classify;

/// The clap definition, reused for the man page and shell completions.
pub fn cli() -> clap::Command {
    Args::command()
}

/// Parse `args` (program name first) and run.
pub fn run(args: impl IntoIterator<Item = OsString>) -> anyhow::Result<Exit> {
    let args = match Args::parse_args(args) {
        Ok(args) => args,
        Err(exit) => return Ok(exit),
    };
    terrarium_common::output::init_logging("terrarium-restore", args.global.verbosity());
    match &args.command {
        Some(args::Command::List(list)) => shell::list(&args.global, list),
        None => shell::restore(&args.global, &args.restore),
    }
}
