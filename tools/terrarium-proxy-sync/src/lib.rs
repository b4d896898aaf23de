//! `terrarium-proxy-sync`: Publish user.proxy labels of LXD containers as Traefik routes, firewall rules and route auth.
//!
//! Functional core ([`label`], [`instances`], [`listeners`], [`plan`], [`render`], the
//! pure half of [`ufw`]) and imperative shell ([`sync`], [`watch`]): the labels become a plan, the
//! plan becomes file contents and firewall rules, and only the difference is applied.

pub mod instances;
pub mod label;
pub mod listeners;
mod metrics;
mod pending;
pub mod plan;
pub mod render;
mod report;
pub mod sync;
pub mod ufw;
mod watch;

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::{CommandFactory, Parser};
use terrarium_common::Exit;
use terrarium_common::cli::GlobalArgs;
use terrarium_common::terminal::{escape, escape_lines};

use crate::sync::{Options, Outcome, Source};

/// Publish user.proxy labels of LXD containers as Traefik routes, firewall rules and route auth.
///
/// Reads `lxc list --format=json` (or --instances), renders Traefik's dynamic file and
/// the managed entrypoints of its static file, reconciles the firewall and the route-auth
/// oauth2-proxy, and changes only what differs. Exit codes: 0 all published, 3 some
/// rules rejected (the rest applied), 1 sync failed, 4 another run holds the lock.
#[derive(Debug, Parser)]
#[command(name = "terrarium-proxy-sync", version = terrarium_common::VERSION)]
pub struct Args {
    #[command(flatten)]
    pub global: GlobalArgs,

    /// Read the instance list from FILE (output of `lxc list --format=json`; `-` for stdin) instead of running `lxc`
    #[arg(long, value_name = "FILE")]
    pub instances: Option<PathBuf>,

    /// Print the plan (file diffs, firewall adds and deletes, restarts) and change nothing
    #[arg(long, short = 'n')]
    pub dry_run: bool,

    /// Keep running: follow LXD's lifecycle events and sync within seconds of a change
    #[arg(long, conflicts_with_all = ["instances", "dry_run"])]
    pub watch: bool,

    /// Seconds to wait for a concurrent run to finish before giving up (exit 4)
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub lock_wait: u64,

    /// Watch mode: milliseconds of quiet after an event before syncing [default: 100]
    // No clap default and no `requires = "watch"`: `--watch`'s implicit `false` satisfies
    // `requires`, so clap accepted `--debounce-ms` alone; `run` checks it instead.
    #[arg(long, value_name = "MS")]
    pub debounce_ms: Option<u64>,
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
    if args.debounce_ms.is_some() && !args.watch {
        let err = cli().error(
            clap::error::ErrorKind::MissingRequiredArgument,
            "--debounce-ms applies only to watch mode: add --watch, or drop --debounce-ms",
        );
        return Ok(terrarium_common::cli::print_clap_error(err));
    }
    terrarium_common::output::init_logging("terrarium-proxy-sync", args.global.verbosity());
    let paths = args.global.paths();
    let source = match &args.instances {
        Some(path) => Source::File(path.clone()),
        None => Source::Lxc,
    };
    let options = Options { source, dry_run: args.dry_run, lock_wait: Duration::from_secs(args.lock_wait) };
    if args.watch {
        return watch::run(&paths, &options, Duration::from_millis(args.debounce_ms.unwrap_or(100)));
    }
    let outcome = sync::sync(&paths, &options)?;
    if args.global.json {
        terrarium_common::output::print_json(&outcome)?;
    } else {
        print_human(&outcome)?;
    }
    Ok(outcome.exit)
}

/// Problems as warnings on stderr; with `--dry-run`, the plan on stdout.
pub(crate) fn log_outcome(outcome: &Outcome) {
    for problem in &outcome.plan.rejected {
        log::warn!(instance = problem.instance.as_str(), rule = problem.rule.as_str(); "rule rejected: {}; {}", problem.problem, problem.fix);
    }
    for problem in &outcome.plan.contested {
        log::warn!(instance = problem.instance.as_str(), rule = problem.rule.as_str(); "contested: {}; {}", problem.problem, problem.fix);
    }
    for unpublished in &outcome.plan.unpublished {
        log::info!(instance = unpublished.instance.as_str(); "not published: {}", unpublished.reason);
    }
    for command in &outcome.restarts_owed {
        log::warn!(command = command.as_str(); "an earlier run did not finish this restart; running it now");
    }
    for ignored in &outcome.firewall.ignored {
        log::warn!(rule = ignored.as_str(); "firewall rule carries the proxy-sync marker but has a shape proxy sync never writes; left alone");
    }
    let verb = if outcome.dry_run { "would publish" } else { "published" };
    log::info!(
        http_routes = outcome.plan.http.len(),
        port_routes = outcome.plan.ports.len(),
        rejected = outcome.plan.rejected.len(),
        files_changed = outcome.files.len(),
        firewall_added = outcome.firewall.add.len(),
        firewall_deleted = outcome.firewall.delete.len();
        "{verb} {} http and {} tcp/udp routes{}",
        outcome.plan.http.len(),
        outcome.plan.ports.len(),
        if outcome.changed() { "" } else { "; nothing changed" }
    );
}

fn print_human(outcome: &Outcome) -> std::io::Result<()> {
    log_outcome(outcome);
    if !outcome.dry_run {
        return Ok(());
    }
    // Diffs and paths can quote label text: escaped for the terminal (`--json` is not).
    let mut out = std::io::stdout().lock();
    for name in &outcome.secrets_created {
        writeln!(out, "create secret {name} (0600)")?;
    }
    for file in &outcome.files {
        let path = file.path.display().to_string();
        let path = escape(&path);
        match &file.diff {
            Some(diff) => write!(out, "{} {path}\n{}", file.action, escape_lines(diff))?,
            None => writeln!(out, "{} {path} (holds secrets; diff not shown)", file.action)?,
        }
    }
    for spec in &outcome.firewall.add {
        writeln!(out, "ufw allow {spec} comment {}", ufw::MARKER)?;
    }
    for spec in &outcome.firewall.delete {
        writeln!(out, "ufw delete allow {spec}")?;
    }
    for command in &outcome.restarts {
        writeln!(out, "{command}")?;
    }
    if !outcome.changed() {
        writeln!(out, "nothing to change")?;
    }
    Ok(())
}
