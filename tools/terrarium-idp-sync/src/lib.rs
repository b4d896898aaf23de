//! `terrarium-idp-sync`: Provision ZITADEL, check an external OIDC issuer and map the admin group in LXD.
//!
//! - local mode (`identity.mode: local`): reconcile the `terrarium` project, its OIDC
//!   apps, the admin role, the bootstrap admin's grant and the `groups` Action in the
//!   self-hosted ZITADEL ([`zitadel`]); client ids and secrets go to the secrets dir;
//! - oidc mode: verify the external issuer and the client credentials (`terrarium_oidc`);
//! - both: configure LXD's OIDC login and map the admin group to LXD admin ([`lxd`]).

pub mod lxd;
pub mod plan;
pub mod secrets;
pub mod zitadel;

use std::ffi::OsString;
use std::time::Duration;

use clap::{CommandFactory, Parser};
use terrarium_common::cli::GlobalArgs;
use terrarium_common::config::{IdentityMode, secret_names};
use terrarium_common::secret::{SecretError, read_secret_file};
use terrarium_common::{Config, Exit, Paths};

use plan::Report;

const TOOL: &str = "terrarium-idp-sync";

/// Provision ZITADEL, check an external OIDC issuer and map the admin group in LXD.
#[derive(Debug, Parser)]
#[command(name = "terrarium-idp-sync", version = terrarium_common::VERSION)]
pub struct Args {
    #[command(flatten)]
    pub global: GlobalArgs,

    /// Print what would change, change nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Leave LXD alone (only ZITADEL, or only the issuer check)
    #[arg(long)]
    pub skip_lxd: bool,

    /// Reach ZITADEL's API here instead of at the issuer (e.g. its loopback address)
    #[arg(long, value_name = "URL")]
    pub zitadel_url: Option<String>,

    /// Check this issuer instead of `identity.issuer` (oidc mode); plain http only on loopback
    #[arg(long, value_name = "URL")]
    pub issuer: Option<String>,

    /// Seconds one HTTP request may take
    #[arg(long, value_name = "SECONDS", default_value_t = 15)]
    pub timeout: u64,
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
    terrarium_common::output::init_logging(TOOL, args.global.verbosity());
    let paths = args.global.paths();
    let config = Config::load(&paths)?;
    // Dry runs take no lock (locks.rs): they change nothing and never hold up a real run.
    let _lock = if args.dry_run { None } else { Some(terrarium_common::locks::IDP_SYNC.acquire(&paths, "sync")?) };
    let mut report = Report { dry_run: args.dry_run, ..Report::default() };
    let timeout = Duration::from_secs(args.timeout.max(1));

    // Each override is for one mode; a flag the mode ignores would be a silent surprise.
    match (config.identity.mode, &args.issuer, &args.zitadel_url) {
        (IdentityMode::Local, Some(_), _) => return Err(mode_mismatch("--issuer", "local", "--zitadel-url")),
        (IdentityMode::Oidc, _, Some(_)) => return Err(mode_mismatch("--zitadel-url", "oidc", "--issuer")),
        _ => {}
    }
    let (lxd_issuer, lxd_client_id, exit) = match config.identity.mode {
        IdentityMode::Local => {
            report.mode = "local".into();
            let outcome = sync_zitadel(&args, &paths, &config, timeout, &mut report)?;
            (config.issuer(), outcome.lxd_client_id, if outcome.admin_missing { Exit::Partial } else { Exit::Success })
        }
        IdentityMode::Oidc => {
            report.mode = "oidc".into();
            let issuer = match &args.issuer {
                Some(issuer) => checked_override("--issuer", issuer)?,
                None => config.issuer(),
            };
            match verify_external(&paths, &config, &issuer, timeout, &mut report)? {
                Some(exit) => return Ok(exit),
                None => (issuer, config.identity.client_id.clone(), Exit::Success),
            }
        }
    };

    if args.skip_lxd {
        report.note("LXD was skipped (--skip-lxd)");
    } else {
        let settings = lxd::LxdSettings {
            issuer: lxd_issuer,
            client_id: lxd_client_id,
            admin_group: config.identity.admin_group.clone(),
            dry_run: args.dry_run,
        };
        match lxd::reconcile(&settings, &mut report) {
            Ok(summary) => report.lxd = Some(summary),
            Err(err) => {
                return Err(
                    anyhow::Error::new(err).context("LXD step failed (ZITADEL and secret changes above were applied)")
                );
            }
        }
    }

    print_report(&args, &report)?;
    if !args.dry_run {
        save_report(&paths, &report);
    }
    Ok(exit)
}

fn sync_zitadel(
    args: &Args,
    paths: &Paths,
    config: &Config,
    timeout: Duration,
    report: &mut Report,
) -> anyhow::Result<zitadel::Outcome> {
    let token_path = paths.secret(secret_names::ZITADEL_ADMIN_TOKEN);
    let token = read_secret_file(&token_path).map_err(|err| {
        let why = match err {
            SecretError::Unreadable { source, .. } => source.to_string(),
            other => other.to_string(),
        };
        anyhow::anyhow!(
            "no usable ZITADEL admin token at {} ({why}); create a personal access token for the Terrarium service user (ORG_OWNER) in ZITADEL and write it there with mode 0600",
            token_path.display()
        )
    })?;
    // The admin token goes to this URL: https, or plain http on loopback only.
    let base = match &args.zitadel_url {
        Some(url) => checked_override("--zitadel-url", url)?,
        None => config.issuer(),
    };
    let mut client = zitadel::api::Client::new(&base, token, &token_path.display().to_string(), timeout);
    let settings = zitadel::Settings {
        manage_domain: config.domains.manage.clone(),
        lxd_domain: config.domains.lxd.clone(),
        admin_group: config.identity.admin_group.clone(),
        admin_email: config.emails.zitadel_admin.clone(),
        route_callbacks: route_callbacks(paths),
        dry_run: args.dry_run,
    };
    Ok(zitadel::reconcile(&mut client, paths, &settings, report)?)
}

/// The sign-in callbacks of the `@auth` hosts, from proxy sync's last report (none when
/// it has not run or wrote no list): each protected host signs in on its own.
fn route_callbacks(paths: &Paths) -> Vec<String> {
    let Ok(text) = terrarium_common::fs::read_regular_to_string(&paths.report("proxy-sync")) else {
        return Vec::new();
    };
    let report: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let callbacks = report["route_auth_callbacks"].as_array().cloned().unwrap_or_default();
    // Only what proxy sync would write: https URLs of a host's /oauth2/callback.
    callbacks
        .iter()
        .filter_map(|c| c.as_str())
        .filter(|c| {
            c.starts_with("https://")
                && c.ends_with("/oauth2/callback")
                && c.is_ascii()
                && !c.contains(char::is_whitespace)
        })
        .map(str::to_string)
        .collect()
}

/// Verify the external issuer. `Some(exit)` when it failed (the error is printed here,
/// once, so the exit code can say "verification failed").
fn verify_external(
    paths: &Paths,
    config: &Config,
    issuer: &str,
    timeout: Duration,
    report: &mut Report,
) -> anyhow::Result<Option<Exit>> {
    let client_id = config.identity.client_id.clone().unwrap_or_default();
    let secret_file = config.identity.client_secret_file.clone().unwrap_or_default();
    let client_secret = config.read_secret(paths, "identity.client_secret_file", &secret_file)?;
    let client = terrarium_oidc::ClientCredentials { client_id, client_secret };
    match terrarium_oidc::verify_issuer(&terrarium_oidc::agent(timeout), issuer, Some(&client)) {
        Ok(found) => {
            let group = &config.identity.admin_group;
            report.note(format!(
                "the provider must put a `groups` claim (a list of group names) into the ID token or userinfo, containing `{group}` for the people who may manage this host"
            ));
            let domains = &config.domains;
            let routes = route_callbacks(paths);
            report.note(format!(
                "the client must allow the redirect URIs https://{0}/oauth2/callback and https://{1}/oidc/callback, and https://<host>/oauth2/callback for each host with an @auth route ({2})",
                domains.manage,
                domains.lxd,
                if routes.is_empty() { "none yet".to_string() } else { format!("now: {}", routes.join(", ")) }
            ));
            if found.discovery.advertises_groups() == Some(false) {
                report.note(format!("warning: {issuer} does not list `groups` in claims_supported; make sure it emits the claim, or no one will pass the admin gate"));
            }
            report.issuer = Some(found);
            Ok(None)
        }
        Err(err) => {
            terrarium_common::output::report_error(TOOL, &err.to_string(), Exit::Verification);
            Ok(Some(Exit::Verification))
        }
    }
}

/// `--issuer` and `--zitadel-url`: https anywhere, plain http only on loopback (a test
/// or a tunnel), and a host name, with nothing a URL cannot hold.
fn checked_override(flag: &str, url: &str) -> anyhow::Result<String> {
    let invalid = |problem: String| -> anyhow::Error {
        terrarium_common::config::ConfigError::Invalid {
            origin: flag.into(),
            key: flag.trim_start_matches('-').into(),
            problem,
            fix: "use an https URL such as https://id.example.com (plain http only on loopback)".into(),
        }
        .into()
    };
    let shown = terrarium_common::terminal::escape(url);
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(format!("`{shown}` is not a URL (it holds a space or a control character)")));
    }
    let loopback = ["http://127.0.0.1", "http://[::1]", "http://localhost"]
        .iter()
        .any(|prefix| url.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/'])));
    let Some(rest) = url.strip_prefix("https://").or(loopback.then(|| &url["http://".len()..])) else {
        return Err(invalid(format!("`{shown}` is not an https URL")));
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || host.starts_with(':') {
        return Err(invalid(format!("`{shown}` has no host name")));
    }
    Ok(url.to_string())
}

fn mode_mismatch(flag: &str, mode: &str, instead: &str) -> anyhow::Error {
    terrarium_common::config::ConfigError::Invalid {
        origin: flag.into(),
        key: flag.trim_start_matches('-').into(),
        problem: format!("does not apply in identity mode {mode}"),
        fix: format!("drop it (in {mode} mode, {instead} is the one to use)"),
    }
    .into()
}

fn print_report(args: &Args, report: &Report) -> anyhow::Result<()> {
    if args.global.json {
        terrarium_common::output::print_json(report)?;
        return Ok(());
    }

    if let Some(issuer) = &report.issuer {
        println!(
            "issuer {} verified: discovery, {} signing key(s), client {} accepted",
            issuer.issuer,
            issuer.jwks_keys,
            issuer.client_id.as_deref().unwrap_or("-")
        );
    }
    if report.changes.is_empty() {
        println!("nothing to change");
    } else {
        let count = report.changes.len();
        if report.dry_run {
            println!("{count} change(s) planned (dry run, nothing changed):");
        } else {
            println!("{count} change(s) applied:");
        }
        for change in &report.changes {
            println!("  {}", change.line());
        }
    }
    for note in &report.notes {
        println!("note: {note}");
    }
    Ok(())
}

/// Leave the last run's report for `terrariumctl status`; failing to is only a warning.
fn save_report(paths: &Paths, report: &Report) {
    let path = paths.report("idp-sync");
    let written = serde_json::to_vec_pretty(report)
        .map_err(std::io::Error::other)
        .and_then(|json| terrarium_common::fs::atomic_write(&path, &json, 0o644));
    if let Err(err) = written {
        log::warn!(path = path.display().to_string(); "cannot save the run report: {err}");
    }
}

#[cfg(test)]
mod tests {
    use super::checked_override;

    #[test]
    fn overrides_take_https_or_loopback_http_with_a_host() {
        for good in
            ["https://id.example.com", "https://id.example.com:8443/x", "http://127.0.0.1:8080", "http://localhost"]
        {
            assert_eq!(checked_override("--zitadel-url", good).map_err(|e| e.to_string()).as_deref(), Ok(good));
        }
        for (bad, problem) in [
            ("http://zitadel.example.com", "is not an https URL"),
            ("http://localhost.example.com", "is not an https URL"),
            ("not a url", "holds a space"),
            ("https://", "has no host name"),
            ("https://:443/x", "has no host name"),
            ("https://id.example.com/\u{1b}[2J", "control character"),
        ] {
            let err = checked_override("--zitadel-url", bad).unwrap_err().to_string();
            assert!(
                err.contains("--zitadel-url") && err.contains(problem) && err.contains("https URL such as"),
                "{bad}: {err}"
            );
            assert!(!err.contains('\u{1b}'), "{err:?}");
        }
    }
}
