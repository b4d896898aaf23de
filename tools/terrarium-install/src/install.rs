//! The install run: facts, choices (flags or prompts), preflight, the difference to a
//! previous install, persist, then Ansible (or stop with `--render-only`).

use std::io::{IsTerminal, Write};

use anyhow::Context;
use serde::Serialize;
use terrarium_common::config::{ConfigError, StorageMode};
use terrarium_common::paths::env;
use terrarium_common::{Config, Exit, Paths};

use crate::interactive;
use terrarium_setup::ansible::{self, OneTimeSecrets};
use terrarium_setup::args::InstallArgs;
use terrarium_setup::errors::{NeedsConfirmation, UsageError};
use terrarium_setup::host_facts;
use terrarium_setup::persist;
use terrarium_setup::preflight::{self, PreflightError, Verifiers};
use terrarium_setup::resolve::{self, HostFacts, Resolved, SecretInputs};
use terrarium_setup::secrets::{read_key_file, secret_from};
use terrarium_setup::storage;

/// What install did, for `--json`.
#[derive(Debug, Serialize)]
pub struct InstallReport {
    pub config: String,
    pub config_changed: bool,
    pub secrets_changed: Vec<&'static str>,
    pub diff: String,
    pub rendered_vars: Option<String>,
    pub reconciled: bool,
}

/// The persisted config, or None on a fresh host.
pub fn load_existing(paths: &Paths) -> anyhow::Result<Option<Config>> {
    match Config::load(paths) {
        Ok(config) => Ok(Some(config)),
        Err(ConfigError::Missing { .. }) => Ok(None),
        Err(err) => Err(err).context(
            "the persisted config cannot be used; fix it (the message says how) or move it away to install afresh",
        ),
    }
}

/// Secrets from flags, files and the environment.
pub fn secret_inputs(args: &InstallArgs) -> anyhow::Result<SecretInputs> {
    Ok(SecretInputs {
        oidc_client_secret: secret_from(
            "--oidc-secret-file",
            args.idp_args.oidc_secret.as_deref(),
            args.idp_args.oidc_secret_file.as_deref(),
            env::OIDC_CLIENT_SECRET,
        )?,
        s3_secret_key: secret_from(
            "--s3-secret-key-file",
            args.s3.s3_secret_key.as_deref(),
            args.s3.s3_secret_key_file.as_deref(),
            env::S3_SECRET_KEY,
        )?,
        root_password: secret_from(
            "--root-pwd-file",
            args.root_pwd.as_deref(),
            args.root_pwd_file.as_deref(),
            env::ROOT_PASSWORD,
        )?,
        syncoid_ssh_key: match &args.syncoid.syncoid_ssh_key {
            Some(path) => Some(read_key_file("--syncoid-ssh-key", path)?),
            None => None,
        },
    })
}

/// Storage discovery for disk and partition mode.
pub fn discover_storage(args: &InstallArgs, mode: StorageMode) -> anyhow::Result<storage::Discovery> {
    let facts = storage::load_facts(args.storage_facts.as_deref())?;
    Ok(storage::discover(&facts, mode))
}

pub fn run(args: &mut InstallArgs, paths: &Paths, json: bool, verifiers: Verifiers<'_>) -> anyhow::Result<Exit> {
    let _lock = terrarium_common::locks::CONFIG.acquire(paths, "install")?;
    let base = load_existing(paths)?;
    if !args.allow_unsupported_os {
        host_facts::check_os(paths).map_err(PreflightError::Os)?;
    }
    let interactive = !args.non_interactive;
    if interactive && !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return Err(UsageError(
            "no terminal to ask on; pass --non-interactive with --idp, --storage-mode and --email (see --help)".into(),
        )
        .into());
    }
    let mut secrets = secret_inputs(args)?;
    let mut facts = HostFacts {
        root_has_password: host_facts::root_has_password(paths),
        public_ip: args.domains.public_ip.or_else(host_facts::detect_public_ip),
        storage: None,
        host_name: host_facts::host_name(paths).ok(),
    };
    let need_root_password = !args.render_only;
    let resolved = if interactive {
        interactive::ask(args, &mut secrets, base.as_ref(), &mut facts, need_root_password, verifiers)?
    } else {
        if let Some(mode) = args.storage_mode.or(base.as_ref().map(|c| c.storage.mode))
            && mode != StorageMode::File
            && args.storage_source.is_some()
        {
            facts.storage = Some(discover_storage(args, mode)?);
        }
        let resolved = resolve::resolve(args, &secrets, base.as_ref(), &facts, need_root_password)?;
        preflight::verify_identity(&resolved.config, paths, secrets.oidc_client_secret.as_ref(), verifiers)?;
        preflight::verify_s3(&resolved.config, paths, secrets.s3_secret_key.as_ref(), verifiers)?;
        resolved
    };
    let diff = persist::diff(base.as_ref(), &resolved.config);
    confirm_changes(args, interactive, base.is_some(), &diff, &resolved, json)?;

    let persisted = persist::persist(paths, &resolved.config, &resolved.secrets)?;
    log::info!(path = paths.config_file().display().to_string().as_str(), changed = persisted.config_changed; "config saved");
    let mut report = InstallReport {
        config: paths.config_file().display().to_string(),
        config_changed: persisted.config_changed,
        secrets_changed: persisted.secrets_changed,
        diff,
        rendered_vars: None,
        reconciled: false,
    };
    if args.render_only {
        report.rendered_vars = Some(ansible::render_vars(paths, &resolved.config)?.display().to_string());
    } else {
        let once = OneTimeSecrets { root_password: resolved.root_password.clone() };
        ansible::reconcile(paths, &resolved.config, &once, json)?;
        report.reconciled = true;
    }
    print_report(&report, json)?;
    terrarium_common::killpoint::reached("install.reported");
    Ok(Exit::Success)
}

/// Show a change to an existing install and a disk wipe; go on only when confirmed.
fn confirm_changes(
    args: &InstallArgs,
    interactive: bool,
    reinstall: bool,
    diff: &str,
    resolved: &Resolved,
    json: bool,
) -> anyhow::Result<()> {
    if reinstall && !diff.is_empty() {
        let mut out: Box<dyn Write> = if json { Box::new(std::io::stderr()) } else { Box::new(std::io::stdout()) };
        writeln!(out, "This host is already installed; the config changes as follows:\n{diff}")?;
        if !args.yes {
            if !interactive {
                return Err(NeedsConfirmation(
                    "the persisted config would change (diff above); pass --yes to apply it".into(),
                )
                .into());
            }
            if !interactive::confirm("Apply these changes?", false)? {
                return Err(UsageError("cancelled; nothing was changed".into()).into());
            }
        }
    }
    // The interactive flow asked when the disk was chosen.
    if let Some(device) = &resolved.wipes
        && !args.yes
        && !interactive
    {
        return Err(NeedsConfirmation(format!(
            "disk mode wipes {device}: every partition and all data on it are lost; pass --yes to confirm"
        ))
        .into());
    }
    Ok(())
}

fn print_report(report: &InstallReport, json: bool) -> anyhow::Result<()> {
    if json {
        terrarium_common::output::print_json(report)?;
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    let state = if report.config_changed { "written" } else { "unchanged" };
    writeln!(out, "config {state}: {}", report.config)?;
    if let Some(vars) = &report.rendered_vars {
        writeln!(out, "ansible variables: {vars} (--render-only: Ansible was not run)")?;
    }
    if report.reconciled {
        writeln!(out, "host converged")?;
    }
    Ok(())
}
