//! `terrarium-status` (`terrariumctl status`): what is configured, what runs, what the
//! timers last did, the last proxy sync and S3 export, pool health. Works on a
//! half-installed host: everything it cannot find is listed under "missing".

pub mod backups;
pub mod report;
pub mod systemd;

use std::ffi::OsString;

use clap::{CommandFactory, Parser};
use serde::Serialize;
use terrarium_common::cli::GlobalArgs;
use terrarium_common::config::{ConfigError, IdentityMode};
use terrarium_common::process::{Cmd, ProcessError};
use terrarium_common::{Config, Exit, Paths};

use systemd::UnitState;

/// Show the state of this Terrarium host: config, services, timers, last runs, pool health.
#[derive(Debug, Parser)]
#[command(name = "terrarium-status", version = terrarium_common::VERSION)]
pub struct Args {
    #[command(flatten)]
    pub global: GlobalArgs,
    /// For monitoring: print nothing when healthy; otherwise list what is missing on
    /// stderr. The exit status is 0 when healthy and 1 when not, with or without it.
    #[arg(long, conflicts_with = "json")]
    pub check: bool,
}

pub fn cli() -> clap::Command {
    Args::command()
}

/// Services that should be running on an installed host, named as the Ansible roles
/// install them (`ansible/roles/*/templates/etc/systemd/system/`; cockpit.socket comes
/// with the cockpit package and gets a drop-in there): tests/status.rs checks it.
pub const SERVICES: [&str; 3] = ["traefik.service", "cockpit.socket", "oauth2-proxy.service"];
/// The route-auth oauth2-proxy, which proxy-sync installs only once a label asks for
/// `@auth`: checked when it is installed, not missed when it is not.
pub const ROUTE_AUTH_SERVICE: &str = "terrarium-oauth2-proxy-routes.service";
/// LXD is the snap on Ubuntu, a Debian package elsewhere.
pub const LXD_UNITS: [&str; 2] = ["snap.lxd.daemon.service", "lxd.service"];
pub const PROXY_SYNC_TIMER: &str = "terrarium-proxy-sync.timer";
pub const BACKUP_EXPORT_TIMER: &str = "terrarium-backup-export.timer";
pub const BACKUP_REPLICATE_TIMER: &str = "terrarium-backup-replicate.timer";
pub const SANOID_TIMER: &str = "sanoid.timer";

#[derive(Debug, Serialize)]
pub struct Status {
    pub healthy: bool,
    pub config: ConfigState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settings: Option<Settings>,
    pub endpoints: Vec<Endpoint>,
    pub services: Vec<UnitState>,
    pub timers: Vec<UnitState>,
    pub proxy_sync: report::LastRun,
    pub backup_export: report::LastRun,
    pub pool: PoolHealth,
    /// The backups' health from `terrarium-backup status` (asked when the config is valid).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backups: Option<backups::Backups>,
    /// What is missing or failing, one line each.
    pub missing: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct ConfigState {
    pub path: String,
    /// `present`, `missing` or `invalid`.
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Settings {
    pub domains: terrarium_common::config::Domains,
    pub identity_mode: IdentityMode,
    pub admin_group: String,
    pub issuer: String,
    pub storage_mode: terrarium_common::config::StorageMode,
    pub pool: String,
    pub s3_enabled: bool,
    pub syncoid_enabled: bool,
}

#[derive(Debug, Serialize)]
pub struct Endpoint {
    pub name: &'static str,
    pub url: String,
}

#[derive(Debug, Serialize)]
pub struct PoolHealth {
    pub pool: Option<String>,
    /// None when it could not be asked.
    pub healthy: Option<bool>,
    pub detail: String,
}

pub fn run(args: impl IntoIterator<Item = OsString>) -> anyhow::Result<Exit> {
    let args = match terrarium_common::cli::parse::<Args>(args) {
        Ok(args) => args,
        Err(exit) => return Ok(exit),
    };
    terrarium_common::output::init_logging("terrarium-status", args.global.verbosity());
    let status = gather(&args.global.paths());
    if args.check {
        for finding in &status.missing {
            eprintln!("terrarium-status: {finding}");
        }
    } else if args.global.json {
        terrarium_common::output::print_json(&status)?;
    } else {
        print!("{}", render(&status));
    }
    // Scripts and monitoring can test the exit code, as with `systemctl is-active`.
    Ok(if status.healthy { Exit::Success } else { Exit::Failure })
}

/// Collect the status of the host under `paths`. Never fails: what cannot be read is
/// reported as missing.
pub fn gather(paths: &Paths) -> Status {
    let mut missing = Vec::new();
    let (config, config_state) = match Config::load(paths) {
        Ok(config) => (
            Some(config),
            ConfigState { path: paths.config_file().display().to_string(), state: "present", error: None },
        ),
        Err(err @ ConfigError::Missing { .. }) => {
            missing.push(format!("config: {err}"));
            (None, ConfigState { path: paths.config_file().display().to_string(), state: "missing", error: None })
        }
        Err(err) => {
            missing.push(format!("config: invalid: {err}"));
            (
                None,
                ConfigState {
                    path: paths.config_file().display().to_string(),
                    state: "invalid",
                    error: Some(err.to_string()),
                },
            )
        }
    };

    let s3_enabled = config.as_ref().is_some_and(|c| c.s3.enabled);
    let syncoid_enabled = config.as_ref().is_some_and(|c| c.syncoid.enabled);
    let mut units: Vec<&str> = SERVICES.to_vec();
    units.push(ROUTE_AUTH_SERVICE);
    units.extend(LXD_UNITS);
    let timer_units = [SANOID_TIMER, PROXY_SYNC_TIMER, BACKUP_EXPORT_TIMER, BACKUP_REPLICATE_TIMER];
    units.extend(timer_units);
    let timer_services: Vec<String> = timer_units.iter().map(|t| t.replace(".timer", ".service")).collect();
    units.extend(timer_services.iter().map(String::as_str));

    let states = match systemd::show(&units) {
        Ok(states) => states,
        Err(err) => {
            missing.push(format!("systemd: cannot ask systemctl ({err}); unit states unknown"));
            units.iter().map(|u| UnitState::unknown(u)).collect()
        }
    };
    let state =
        |unit: &str| states.iter().find(|s| s.unit == unit).cloned().unwrap_or_else(|| UnitState::unknown(unit));
    let systemd_answered = states.iter().any(|s| s.load != "unknown");

    let mut services: Vec<UnitState> = SERVICES.iter().map(|u| state(u)).collect();
    let route_auth = state(ROUTE_AUTH_SERVICE);
    if route_auth.installed() {
        services.push(route_auth);
    }
    let lxd = LXD_UNITS.iter().map(|u| state(u)).find(UnitState::installed).unwrap_or_else(|| state(LXD_UNITS[0]));
    services.push(lxd);
    if systemd_answered {
        for service in &services {
            if !service.installed() {
                let name = if LXD_UNITS.contains(&service.unit.as_str()) {
                    "LXD (snap.lxd.daemon or lxd.service)".to_string()
                } else {
                    service.unit.clone()
                };
                missing.push(format!("{name} is not installed"));
            } else if service.active != "active" {
                missing.push(format!("{} is {} ({})", service.unit, service.active, service.sub));
            }
        }
    }

    let mut timers = Vec::new();
    for (timer, expected) in [
        (SANOID_TIMER, true),
        (PROXY_SYNC_TIMER, true),
        (BACKUP_EXPORT_TIMER, s3_enabled),
        (BACKUP_REPLICATE_TIMER, syncoid_enabled),
    ] {
        let mut timer_state = state(timer);
        let service = state(&timer.replace(".timer", ".service"));
        timer_state.result = service.result.clone().or(timer_state.result);
        if systemd_answered && expected {
            if !timer_state.installed() {
                missing.push(format!("{timer} is not installed"));
            } else if timer_state.active != "active" {
                missing.push(format!("{timer} is {}", timer_state.active));
            }
            if service.active == "failed" || service.result.as_deref().is_some_and(|r| r != "success") {
                missing.push(format!(
                    "the last run of {} failed ({})",
                    service.unit,
                    service.result.as_deref().unwrap_or(&service.active)
                ));
            }
        }
        if expected || timer_state.installed() {
            timers.push(timer_state);
        }
    }

    let proxy_sync = report::read(&paths.report("proxy-sync"));
    let backup_export = report::read(&paths.report("backup-export"));
    if proxy_sync.value.is_none() {
        missing.push(format!("proxy sync has not reported yet ({})", proxy_sync.path));
    }
    if s3_enabled && backup_export.value.is_none() {
        missing.push(format!("S3 export has not reported yet ({})", backup_export.path));
    }

    let pool = pool_health(config.as_ref().map(|c| c.storage.pool.as_str()));
    if pool.healthy != Some(true) {
        missing.push(format!("pool: {}", pool.detail));
    }
    // Without a valid config terrarium-backup would only repeat the config's error.
    let backups = config.as_ref().map(|_| backups::ask(paths));
    if let Some(backups) = &backups {
        missing.extend(backups.findings());
    }

    let endpoints = config.as_ref().map(endpoints).unwrap_or_default();
    let settings = config.as_ref().map(|c| Settings {
        domains: c.domains.clone(),
        identity_mode: c.identity.mode,
        admin_group: c.identity.admin_group.clone(),
        issuer: c.issuer(),
        storage_mode: c.storage.mode,
        pool: c.storage.pool.clone(),
        s3_enabled: c.s3.enabled,
        syncoid_enabled: c.syncoid.enabled,
    });
    Status {
        healthy: missing.is_empty(),
        config: config_state,
        settings,
        endpoints,
        services,
        timers,
        proxy_sync,
        backup_export,
        pool,
        backups,
        missing,
    }
}

fn endpoints(config: &Config) -> Vec<Endpoint> {
    let domains = &config.domains;
    let mut list = vec![
        Endpoint { name: "cockpit", url: format!("https://{}/", domains.manage) },
        Endpoint { name: "traefik-dashboard", url: format!("https://{}/dashboard/", domains.proxy) },
        Endpoint { name: "lxd", url: format!("https://{}/", domains.lxd) },
    ];
    if config.identity.mode == IdentityMode::Local {
        list.push(Endpoint { name: "zitadel", url: format!("https://{}/", domains.auth) });
    }
    list.push(Endpoint { name: "oidc-issuer", url: config.issuer() });
    list
}

/// `zpool status -x POOL`: "pool 'x' is healthy", or the problem.
fn pool_health(pool: Option<&str>) -> PoolHealth {
    let Some(pool) = pool else {
        return PoolHealth { pool: None, healthy: None, detail: "no pool configured".into() };
    };
    match Cmd::new("zpool").args(["status", "-x", pool]).timeout(std::time::Duration::from_secs(20)).output() {
        Ok(out) => {
            let detail = out.stdout.trim().to_string();
            let healthy = detail.contains("is healthy") || detail == "all pools are healthy";
            PoolHealth { pool: Some(pool.to_string()), healthy: Some(healthy), detail }
        }
        Err(ProcessError::NotFound { .. }) => PoolHealth {
            pool: Some(pool.to_string()),
            healthy: None,
            detail: "zpool is not installed (zfsutils-linux)".into(),
        },
        Err(ProcessError::Failed { stderr, .. }) => {
            let detail = if stderr.contains("no such pool") {
                format!("pool '{pool}' does not exist")
            } else {
                stderr.trim().replace('\n', " | ")
            };
            PoolHealth { pool: Some(pool.to_string()), healthy: Some(false), detail }
        }
        Err(err) => PoolHealth { pool: Some(pool.to_string()), healthy: None, detail: err.to_string() },
    }
}

/// The human view.
pub fn render(status: &Status) -> String {
    let mut out = String::new();
    // Every line escaped for the terminal, whatever it quotes (report fields, error
    // texts); the report summary's own line breaks are kept.
    let line = |out: &mut String, text: String| {
        out.push_str(&terrarium_common::terminal::escape_lines(&text));
        out.push('\n');
    };
    line(&mut out, format!("config: {} ({})", status.config.path, status.config.state));
    if let Some(settings) = &status.settings {
        let d = &settings.domains;
        line(
            &mut out,
            format!(
                "domains: root={} manage={} proxy={} lxd={} auth={}",
                d.root.as_deref().unwrap_or("-"),
                d.manage,
                d.proxy,
                d.lxd,
                d.auth
            ),
        );
        let mode = match settings.identity_mode {
            IdentityMode::Local => "local (ZITADEL)",
            IdentityMode::Oidc => "oidc (external)",
        };
        line(&mut out, format!("identity: {mode}, issuer {}, admin group {}", settings.issuer, settings.admin_group));
        line(
            &mut out,
            format!("backups: S3 export {}, syncoid {}", on_off(settings.s3_enabled), on_off(settings.syncoid_enabled)),
        );
    }
    if !status.endpoints.is_empty() {
        line(&mut out, "endpoints:".into());
        for endpoint in &status.endpoints {
            line(&mut out, format!("  {:<18} {}", endpoint.name, endpoint.url));
        }
    }
    line(&mut out, "services:".into());
    for unit in &status.services {
        line(&mut out, format!("  {:<40} {}", unit.unit, unit_word(unit)));
    }
    line(&mut out, "timers:".into());
    for unit in &status.timers {
        line(
            &mut out,
            format!(
                "  {:<40} {}; last {} ({}); next {}",
                unit.unit,
                unit_word(unit),
                unit.last_run.as_deref().unwrap_or("never"),
                unit.result.as_deref().unwrap_or("-"),
                unit.next_run.as_deref().unwrap_or("-")
            ),
        );
    }
    line(&mut out, format!("proxy sync: {}", report::summary(&status.proxy_sync)));
    line(&mut out, format!("S3 export: {}", report::summary(&status.backup_export)));
    line(&mut out, format!("pool: {}", status.pool.detail));
    if let Some(backups) = &status.backups {
        line(&mut out, format!("backups: {}", backups_summary(backups)));
    }
    if status.missing.is_empty() {
        line(&mut out, "healthy: nothing missing".into());
    } else {
        line(&mut out, "missing or failing:".into());
        for item in &status.missing {
            line(&mut out, format!("  - {item}"));
        }
    }
    out
}

/// `active (running)`, or `not installed` for a unit systemd does not know.
fn unit_word(unit: &UnitState) -> String {
    match unit.load.as_str() {
        "not-found" => "not installed".to_string(),
        "unknown" => "unknown (systemd not reachable)".to_string(),
        _ => format!("{} ({})", unit.active, unit.sub),
    }
}

/// `OK, 3 instances checked`; the problems themselves are listed under "missing".
fn backups_summary(backups: &backups::Backups) -> String {
    match &backups.status {
        Some(status) => format!(
            "{}, {} instances checked, {} problems",
            status.level.word(),
            status.instances.len(),
            status.problems.len()
        ),
        None => format!("unknown ({})", backups.error.as_deref().unwrap_or("no answer")),
    }
}

fn on_off(on: bool) -> &'static str {
    if on { "on" } else { "off" }
}
