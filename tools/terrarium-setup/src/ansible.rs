//! The hand-off to Ansible: the `terrarium_*` variables of the persisted config in a
//! 0600 temporary file, the one-time secrets through a FIFO (never on disk), and
//! `ansible-playbook -c local -i localhost, site.yml -e @vars [-e @overrides] -e @secrets`,
//! streamed. The overrides are the host's checked `ansible-overrides.yml` ([`crate::overrides`]).
//! The playbook inherits none of our secret environment variables and dies with us.

use std::io::IsTerminal;
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Map, Value};
use terrarium_common::config::ansible_vars;
use terrarium_common::secret::Secret;
use terrarium_common::{Config, Paths};

use crate::cleanup::{ChildGuard, GroupLifeline, SecretDir};

/// Run this playbook instead of the packaged `site.yml` (tests, development).
pub const PLAYBOOK_ENV: &str = "TERRARIUM_PLAYBOOK";
/// Where `--render-only` leaves the variables (no one-time secrets), for review and images.
pub const RENDERED_VARS_FILE: &str = "/var/lib/terrarium/ansible-vars.json";

/// Values Ansible needs once and that are never persisted.
#[derive(Debug, Clone, Default)]
pub struct OneTimeSecrets {
    /// Set as root's password so Cockpit (PAM) can log in.
    pub root_password: Option<Secret>,
}

impl OneTimeSecrets {
    /// `{"terrarium_root_password": ...}`: the only place the value is written.
    fn to_json(&self) -> String {
        let mut map = Map::new();
        if let Some(password) = &self.root_password {
            map.insert("terrarium_root_password".into(), Value::from(password.expose()));
        }
        Value::Object(map).to_string()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AnsibleError {
    #[error("no playbook at {0}; install the terrarium packages (or use --render-only to stop before Ansible)")]
    NoPlaybook(PathBuf),
    #[error("`ansible-playbook` was not found; install ansible-core (apt install ansible-core)")]
    NotInstalled,
    #[error("cannot prepare the Ansible variables: {0}")]
    Io(#[from] std::io::Error),
    #[error("ansible-playbook failed ({0}); the config is saved: fix the cause and run `terrariumctl reconfigure`")]
    Failed(String),
    #[error("the config is saved, but Ansible did not run: {0}")]
    Overrides(#[from] crate::overrides::OverridesError),
    #[error("the config is saved, but Ansible did not run (run `terrariumctl reconfigure` once the other run is done)")]
    Busy(#[from] terrarium_common::fs::LockError),
}

/// The playbook to run: `TERRARIUM_PLAYBOOK`, else the packaged one under the root.
pub fn playbook(paths: &Paths) -> PathBuf {
    match std::env::var_os(PLAYBOOK_ENV) {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => paths.ansible_dir().join("site.yml"),
    }
}

/// The variables as pretty JSON (what `--render-only` writes).
pub fn vars_json(config: &Config) -> String {
    let mut text = serde_json::to_string_pretty(&Value::Object(ansible_vars(config))).unwrap_or_else(|_| "{}".into());
    text.push('\n');
    text
}

/// Write the variables for review (`--render-only`), mode 0600.
pub fn render_vars(paths: &Paths, config: &Config) -> std::io::Result<PathBuf> {
    let path = paths.host(RENDERED_VARS_FILE);
    terrarium_common::fs::write_if_changed(&path, vars_json(config).as_bytes(), 0o600)?;
    Ok(path)
}

/// Converge the host to `config`. The temporary files are gone when this returns,
/// whatever happened, and on interrupt (see [`crate::cleanup`]).
pub fn reconcile(
    paths: &Paths,
    config: &Config,
    once: &OneTimeSecrets,
    output_to_stderr: bool,
) -> Result<(), AnsibleError> {
    let playbook = playbook(paths);
    if !playbook.is_file() {
        return Err(AnsibleError::NoPlaybook(playbook));
    }
    let contract = ansible_vars(config);
    let overrides = crate::overrides::load(&paths.ansible_overrides_file(), &contract)?;
    crate::cleanup::remove_stale_dirs();
    let dir = SecretDir::new()?;
    let vars = dir.write("vars.json", vars_json(config).as_bytes())?;
    // The checked copy, not the file itself: what Ansible reads is what was checked.
    let overrides = if overrides.is_empty() {
        None
    } else {
        Some(dir.write("overrides.json", Value::Object(overrides).to_string().as_bytes())?)
    };
    let (secrets, feed) = dir.fifo("secrets.json", once.to_json().into_bytes())?;
    terrarium_common::killpoint::reached("install.secrets-dir-made");
    // The playbook renders /etc/traefik/traefik.yml, which proxy-sync also rewrites.
    let traefik = terrarium_common::locks::TRAEFIK.acquire(paths, "ansible-playbook")?;
    log::info!(playbook = playbook.display().to_string().as_str(); "running ansible-playbook");
    let status = run_playbook(&playbook, &vars, overrides.as_deref(), &secrets, output_to_stderr);
    // Before the secrets directory goes: a kill here leaves it for the next run.
    terrarium_common::killpoint::reached("install.playbook-finished");
    drop(traefik);
    feed.finish();
    drop(dir);
    status
}

fn run_playbook(
    playbook: &Path,
    vars: &Path,
    overrides: Option<&Path>,
    secrets: &Path,
    output_to_stderr: bool,
) -> Result<(), AnsibleError> {
    let mut command = Command::new("ansible-playbook");
    command.args(["-c", "local", "-i", "localhost,"]).arg(playbook).arg("-e").arg(format!("@{}", vars.display()));
    if let Some(overrides) = overrides {
        command.arg("-e").arg(format!("@{}", overrides.display()));
    }
    command
        .arg("-e")
        .arg(format!("@{}", secrets.display()))
        .stdin(Stdio::null())
        // Its own process group: an interrupt stops Ansible and its workers together
        // (see crate::cleanup), and only after the secrets are accounted for.
        .process_group(0);
    terrarium_common::process::prepare_child(&mut command);
    // The ansible.cfg beside the playbook (the packaged one), whatever the working
    // directory: Ansible would otherwise look for one there. An explicit ANSIBLE_CONFIG wins.
    let config = playbook.with_file_name("ansible.cfg");
    if std::env::var_os("ANSIBLE_CONFIG").is_none() && config.is_file() {
        command.env("ANSIBLE_CONFIG", config);
    }
    if std::io::stdout().is_terminal() {
        command.env("ANSIBLE_FORCE_COLOR", "1");
    }
    if output_to_stderr {
        // --json keeps stdout for the result; Ansible's progress goes to stderr.
        command.stdout(Stdio::from(std::io::stderr().as_fd().try_clone_to_owned()?));
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Err(AnsibleError::NotInstalled);
        }
        Err(err) => return Err(err.into()),
    };
    let guard = ChildGuard::new(child.id());
    let lifeline = GroupLifeline::new(child.id())
        .map_err(|err| {
            log::warn!("cannot start the watchdog ({err}); if this run is killed, Ansible's workers may run on")
        })
        .ok();
    let status = child.wait();
    drop(lifeline);
    drop(guard);
    let status = status?;
    if status.success() { Ok(()) } else { Err(AnsibleError::Failed(status.to_string())) }
}
