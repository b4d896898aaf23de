//! The README's first command: Terrarium's main job end to end, in a throwaway sandbox.
//!
//! 1. LXD in a private namespace with three containers (a web app, a second one behind
//!    `@auth:devs`, a TCP service), published with `user.proxy` labels;
//! 2. `terrarium-proxy-sync` against the real LXD, real Traefik and a sandboxed ufw; the
//!    routes answer (the protected one refuses a request without a session); then the
//!    watch mode publishes a changed label within seconds;
//! 3. a file-backed ZFS pool holds the containers' data; sanoid takes snapshots from the
//!    config `terrarium-backup` renders; `terrarium-backup export` sends them to S3 on
//!    loopback; the data is damaged and `terrarium-restore` brings it back from S3, then
//!    from a local snapshot (checksums compared);
//! 4. a summary of what ran and how long each step took.
//!
//! The tools run exactly as an operator runs them (their CLIs; the config from
//! `terrarium-install --render-only`); only `TERRARIUM_ROOT` points them at the scratch
//! root, and stand-ins replace what cannot run here (systemd as PID 1, oauth2-proxy).

mod journal;
mod scenario;
mod services;
mod world;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// The Terrarium binaries the sandbox drives.
pub const TOOLS: &[&str] =
    &["terrarium-install", "terrarium-proxy-sync", "terrarium-backup", "terrarium-restore", "terrariumctl"];

/// Run Terrarium's main job end to end in a throwaway sandbox on this machine.
#[derive(Debug, Parser)]
#[command(name = "sandbox", version = terrarium_common::VERSION)]
pub struct Args {
    /// Leave everything running at the end and print how to reach each part; clean up
    /// when Enter is pressed (or stdin closes)
    #[arg(long)]
    pub keep: bool,

    /// Where the Terrarium binaries are (default: next to this program)
    #[arg(long, value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,
}

pub fn run(args: impl IntoIterator<Item = OsString>) -> anyhow::Result<ExitCode> {
    let args = Args::parse_from(args);
    let bin_dir = match args.bin_dir {
        Some(dir) => dir,
        None => std::env::current_exe()?.parent().map(PathBuf::from).unwrap_or_default(),
    };
    let mut journal = journal::Journal::default();
    let outcome = scenario::run(&mut journal, bin_dir, args.keep);
    print!("{}", journal.summary());
    match outcome {
        Ok(()) if journal.all_ok() => {
            println!("\nThe sandbox ran Terrarium's main job end to end; everything it started is gone.");
            Ok(ExitCode::SUCCESS)
        }
        Ok(()) => Ok(ExitCode::FAILURE),
        Err(err) => Err(err),
    }
}
