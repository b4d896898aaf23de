//! `terrarium-idp-sync`: Provision ZITADEL, check an external OIDC issuer and map the admin group in LXD.

pub mod oidc;

use std::ffi::OsString;

use clap::{CommandFactory, FromArgMatches, Parser};
use terrarium_common::Exit;
use terrarium_common::cli::GlobalArgs;

/// Provision ZITADEL, check an external OIDC issuer and map the admin group in LXD.
#[derive(Debug, Parser)]
#[command(name = "terrarium-idp-sync", version = terrarium_common::VERSION)]
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
    terrarium_common::output::init_logging("terrarium-idp-sync", args.global.verbosity());
    anyhow::bail!("not implemented yet")
}
