//! `terrarium-reconfigure` (`terrariumctl reconfigure`): converge the host to the
//! persisted config with Ansible, changing nothing in the config.

use std::ffi::OsString;

use clap::{CommandFactory, Parser};
use terrarium_common::cli::GlobalArgs;
use terrarium_common::{Config, Exit, locks};

use terrarium_setup::ansible::{self, OneTimeSecrets};

/// Converge this host to /etc/terrarium/config.yaml with the packaged Ansible playbook.
#[derive(Debug, Parser)]
#[command(name = "terrarium-reconfigure", version = terrarium_common::VERSION)]
pub struct Args {
    #[command(flatten)]
    pub global: GlobalArgs,
    /// Print the Ansible variables that would be passed, and stop
    #[arg(long)]
    pub dry_run: bool,
}

pub fn cli() -> clap::Command {
    Args::command()
}

pub fn run(args: impl IntoIterator<Item = OsString>) -> anyhow::Result<Exit> {
    let args = match terrarium_common::cli::parse::<Args>(args) {
        Ok(args) => args,
        Err(exit) => return Ok(exit),
    };
    terrarium_common::output::init_logging("terrarium-reconfigure", args.global.verbosity());
    let paths = args.global.paths();
    let config = Config::load(&paths)?;
    if args.dry_run {
        // Prints the variables only: no lock, so it never holds up a real run.
        print!("{}", ansible::vars_json(&config));
        return Ok(Exit::Success);
    }
    let _lock = locks::CONFIG.acquire(&paths, "reconfigure")?;
    // Read again under the lock: a set may have saved a change meanwhile.
    let config = Config::load(&paths)?;
    ansible::reconcile(&paths, &config, &OneTimeSecrets::default(), args.global.json)?;
    if args.global.json {
        terrarium_common::output::print_json(&serde_json::json!({"reconciled": true}))?;
    } else {
        println!("host converged");
    }
    Ok(Exit::Success)
}
