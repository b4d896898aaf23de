//! `terrarium-install`: set up a Terrarium host, interactively or from flags, verifying
//! before persisting. The library also holds `terrarium-reconfigure` and
//! `terrarium-status` (thin binaries over [`reconfigure`] and [`status`]). What install
//! shares with `terrarium-set` (flag groups, resolution, preflight, persisting, the
//! Ansible hand-off) is `terrarium_setup`.

use std::ffi::OsString;

use clap::{CommandFactory, FromArgMatches, Parser};
use terrarium_common::Exit;
use terrarium_common::cli::GlobalArgs;

pub mod install;
pub mod interactive;
pub mod reconfigure;
pub mod status;

pub use terrarium_setup::exit_for;

/// Set up a Terrarium host, interactively or from flags, verifying before persisting.
#[derive(Debug, Parser)]
#[command(name = "terrarium-install", version = terrarium_common::VERSION)]
pub struct Args {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(flatten)]
    pub install: terrarium_setup::args::InstallArgs,
}

/// The clap definition, reused for the man page and shell completions.
pub fn cli() -> clap::Command {
    Args::command()
}

/// Parse `args` (program name first) and run.
pub fn run(args: impl IntoIterator<Item = OsString>) -> anyhow::Result<Exit> {
    let matches = match cli().try_get_matches_from(args) {
        Ok(matches) => matches,
        Err(err) => {
            let _ = err.print();
            return Ok(if err.use_stderr() { Exit::Usage } else { Exit::Success });
        }
    };
    let mut args = Args::from_arg_matches(&matches)?;
    terrarium_common::output::init_logging("terrarium-install", args.global.verbosity());
    let paths = args.global.paths();
    install::run(&mut args.install, &paths, args.global.json, terrarium_setup::verify::network())
}
