//! `terrarium-set`: change one part of the Terrarium configuration, verify it, persist
//! it and reconcile.
//!
//! Each subcommand changes only the section it names ([`change`] is pure and tested
//! for that), re-verifies what changed (OIDC issuer, S3 probe), persists atomically
//! (secrets, then the config), then runs Ansible unless `--no-reconcile`. When a check
//! fails, nothing is written.

pub mod change;

use std::ffi::OsString;
use std::io::Write;

use clap::{CommandFactory, Parser};
use serde::Serialize;
use terrarium_common::cli::GlobalArgs;
use terrarium_common::{Config, Exit, Paths};
use terrarium_setup::ansible::{self, OneTimeSecrets};
use terrarium_setup::preflight::{self, Verifiers};

pub use change::{Change, Section};

/// Change one part of the Terrarium configuration, verify it, persist it and reconcile.
#[derive(Debug, Parser)]
#[command(name = "terrarium-set", version = terrarium_common::VERSION)]
pub struct Args {
    #[command(flatten)]
    pub global: GlobalArgs,
    /// Persist the change but do not run Ansible (run `terrariumctl reconfigure` later)
    #[arg(long, global = true)]
    pub no_reconcile: bool,
    /// Verify and show the change, write nothing
    #[arg(long, global = true)]
    pub dry_run: bool,
    #[command(subcommand)]
    pub section: Section,
}

/// The clap definition, reused for the man page and shell completions.
pub fn cli() -> clap::Command {
    Args::command()
}

/// Parse `args` (program name first) and run.
pub fn run(args: impl IntoIterator<Item = OsString>) -> anyhow::Result<Exit> {
    let args = match terrarium_common::cli::parse::<Args>(args) {
        Ok(args) => args,
        Err(exit) => return Ok(exit),
    };
    terrarium_common::output::init_logging("terrarium-set", args.global.verbosity());
    let paths = args.global.paths();
    apply(&args, &paths, terrarium_setup::verify::network())
}

/// What `set` did, for `--json`.
#[derive(Debug, Serialize)]
pub struct SetReport {
    pub section: &'static str,
    pub changed: bool,
    pub diff: String,
    pub secrets_changed: Vec<&'static str>,
    pub verified: Vec<&'static str>,
    pub reconciled: bool,
}

/// Run one `set` with the given verifiers (tests pass stand-ins for unit tests only).
pub fn apply(args: &Args, paths: &Paths, verifiers: Verifiers<'_>) -> anyhow::Result<Exit> {
    // A dry run writes nothing: no lock, so it never holds up a real run.
    let _lock =
        if args.dry_run { None } else { Some(terrarium_common::locks::CONFIG.acquire(paths, args.section.name())?) };
    let current = Config::load(paths)?;
    let change = change::compute(&args.section, &current)?;
    let diff = terrarium_setup::persist::diff(Some(&current), &change.config);
    let mut report = SetReport {
        section: args.section.name(),
        changed: !diff.is_empty() || !change.secrets.is_empty(),
        diff: diff.clone(),
        secrets_changed: Vec::new(),
        verified: Vec::new(),
        reconciled: false,
    };

    // Re-verify what changed, before anything is written.
    if change.verify_identity {
        preflight::verify_identity(
            &change.config,
            paths,
            change.secret(terrarium_common::config::secret_names::OIDC_CLIENT_SECRET),
            verifiers,
        )?;
        if change.config.identity.mode == terrarium_common::config::IdentityMode::Oidc {
            report.verified.push("oidc");
        }
    }
    if change.verify_s3 {
        preflight::verify_s3(
            &change.config,
            paths,
            change.secret(terrarium_common::config::secret_names::S3_SECRET_KEY),
            verifiers,
        )?;
        if change.config.s3.enabled {
            report.verified.push("s3");
        }
    }

    if !args.dry_run && report.changed {
        let persisted = terrarium_setup::persist::persist(paths, &change.config, &change.secrets)?;
        report.secrets_changed = persisted.secrets_changed;
    }
    if !args.dry_run && !args.no_reconcile && report.changed {
        ansible::reconcile(paths, &change.config, &OneTimeSecrets::default(), args.global.json)?;
        report.reconciled = true;
    }
    print_report(&report, args)?;
    Ok(Exit::Success)
}

fn print_report(report: &SetReport, args: &Args) -> anyhow::Result<()> {
    if args.global.json {
        terrarium_common::output::print_json(report)?;
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    if !report.changed {
        writeln!(out, "{}: nothing to change", report.section)?;
        return Ok(());
    }
    write!(out, "{}", report.diff)?;
    for name in &report.secrets_changed {
        writeln!(out, "secret {name} updated")?;
    }
    for what in &report.verified {
        writeln!(out, "verified: {what}")?;
    }
    if args.dry_run {
        writeln!(out, "--dry-run: nothing was written")?;
    } else if report.reconciled {
        writeln!(out, "saved; host converged")?;
    } else {
        writeln!(out, "saved; run `terrariumctl reconfigure` to apply it")?;
    }
    Ok(())
}
