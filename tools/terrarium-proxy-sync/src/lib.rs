//! `terrarium-proxy-sync`: Publish user.proxy labels of LXD containers as Traefik routes, firewall rules and route auth.

use std::ffi::OsString;

use clap::{CommandFactory, FromArgMatches, Parser};
use terrarium_common::Exit;
use terrarium_common::cli::GlobalArgs;

/// Publish user.proxy labels of LXD containers as Traefik routes, firewall rules and route auth.
#[derive(Debug, Parser)]
#[command(name = "terrarium-proxy-sync", version = terrarium_common::VERSION)]
pub struct Args {
    #[command(flatten)]
    pub global: GlobalArgs,
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
    let args = Args::from_arg_matches(&matches)?;
    terrarium_common::output::init_logging("terrarium-proxy-sync", args.global.verbosity());
    anyhow::bail!("not implemented yet")
}
