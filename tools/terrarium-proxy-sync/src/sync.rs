//! The imperative shell of one sync: read the inputs, compute the desired files and
//! firewall rules with pure code, then apply only the difference.

use std::collections::BTreeSet;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;
use terrarium_common::config::secret_names;
use terrarium_common::fs::atomic_write;
use terrarium_common::killpoint;
use terrarium_common::process::Cmd;
use terrarium_common::secret::{Secret, read_secret_file};
use terrarium_common::{Config, Exit, Paths, locks, ports};

use crate::instances::{self, Instance};
use crate::label::Protocol;
use crate::listeners;
use crate::pending::{self, TRAEFIK_UNIT};
use crate::plan::{self, Plan, Settings};
use crate::render::{dynamic, entrypoints, oauth2_proxy};
use crate::ufw::{self, UfwChanges};

/// The lock and report name.
pub const TOOL: &str = "proxy-sync";
const LXC_TIMEOUT: Duration = Duration::from_secs(60);
const SYSTEMCTL_TIMEOUT: Duration = Duration::from_secs(90);

/// Where the instance list comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// `lxc list --format=json`.
    Lxc,
    /// A file with that output (`-` for stdin).
    File(PathBuf),
}

#[derive(Debug, Clone)]
pub struct Options {
    pub source: Source,
    pub dry_run: bool,
    pub lock_wait: Duration,
}

/// One file proxy sync owns, before and after.
#[derive(Debug, Clone, Serialize)]
pub struct FileChange {
    pub path: PathBuf,
    /// `create` or `update`.
    pub action: &'static str,
    /// A unified diff; `None` for files holding secrets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    #[serde(skip)]
    contents: String,
    #[serde(skip)]
    mode: u32,
}

/// What one sync did (or, with `--dry-run`, would do).
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub dry_run: bool,
    pub files: Vec<FileChange>,
    pub firewall: UfwChanges,
    /// Commands run after the files changed, such as `systemctl restart traefik.service`,
    /// and those an earlier run recorded and did not finish.
    pub restarts: Vec<String>,
    /// The part of `restarts` owed by an earlier run (it failed or was killed).
    pub restarts_owed: Vec<String>,
    /// Secret files created (names only).
    pub secrets_created: Vec<String>,
    #[serde(flatten)]
    pub plan: Plan,
    pub exit: Exit,
}

impl Outcome {
    pub fn changed(&self) -> bool {
        !self.files.is_empty()
            || !self.firewall.is_empty()
            || !self.secrets_created.is_empty()
            || !self.restarts.is_empty()
    }
}

/// Run one sync under the lock (no lock for a dry run: it changes nothing), then leave
/// its report and metrics (a dry run leaves neither).
pub fn sync(paths: &Paths, options: &Options) -> anyhow::Result<Outcome> {
    let started = std::time::Instant::now();
    let _lock = if options.dry_run {
        None
    } else {
        // Its own state, then Traefik's files, which the Ansible run of install, set and
        // reconfigure renders too (terrarium_common::locks has the order).
        let own = locks::PROXY_SYNC.acquire_within(paths, "sync", options.lock_wait)?;
        Some((own, locks::TRAEFIK.acquire_within(paths, "sync", options.lock_wait)?))
    };
    let (config, result) = match Config::load(paths) {
        Ok(config) => {
            let result = sync_locked(paths, &config, options);
            (Some(config), result)
        }
        Err(err) => (None, Err(err.into())),
    };
    if options.dry_run {
        return result;
    }
    let result = crate::report::write(paths, &result).context("cannot write the run report").and(result);
    crate::metrics::publish(paths, config.as_ref(), &result, started.elapsed().as_secs_f64());
    result
}

fn sync_locked(paths: &Paths, config: &Config, options: &Options) -> anyhow::Result<Outcome> {
    // `ufw status` (a Python program: ~100 ms on a VPS) runs while the plan is computed.
    std::thread::scope(|scope| {
        let firewall_rules = scope.spawn(ufw::current_rules);
        sync_with_firewall(paths, config, options, || match firewall_rules.join() {
            Ok(rules) => rules.context("cannot read the firewall rules"),
            Err(_) => Err(anyhow::anyhow!("reading the firewall rules panicked")),
        })
    })
}

fn sync_with_firewall(
    paths: &Paths,
    config: &Config,
    options: &Options,
    firewall_rules: impl FnOnce() -> anyhow::Result<Vec<ufw::UfwRule>>,
) -> anyhow::Result<Outcome> {
    let instances = read_instances(&options.source)?;
    let static_path = paths.traefik_static_file();
    let static_text = std::fs::read_to_string(&static_path).map_err(|err| {
        anyhow::anyhow!(
            "cannot read Traefik's static config {}: {err}; run `terrarium-reconfigure` to render it",
            static_path.display()
        )
    })?;
    let route_auth_client = route_auth_client(paths, config);
    let mut settings = settings(config, route_auth_client.as_ref().map(|_| ()).map_err(Clone::clone));
    // Ports Traefik holds for rules published earlier are in the tables too: they stay.
    let traefik_ports = entrypoints::current_ports(&static_text);
    settings.ports_in_use = ports_in_use(paths)?.difference(&traefik_ports).copied().collect();
    let plan = plan::plan(&instances, &settings);
    let restarts_owed = pending::load(paths)?;

    let mut files = Vec::new();
    let mut restarts = Vec::new();
    let mut secrets_created = Vec::new();

    // Route auth first, so its service is up before routes point at it.
    if plan.needs_route_auth()
        && let Ok((client_id, client_secret)) = route_auth_client
    {
        let cookie_path = paths.secret(secret_names::ROUTES_COOKIE_SECRET);
        let cookie_secret = match read_secret_file(&cookie_path) {
            Ok(secret) => secret,
            Err(_) if !cookie_path.exists() => {
                secrets_created.push(secret_names::ROUTES_COOKIE_SECRET.to_string());
                let secret =
                    oauth2_proxy::new_cookie_secret().context("cannot read random bytes for the cookie secret")?;
                if !options.dry_run {
                    atomic_write(&cookie_path, format!("{}\n", secret.expose()).as_bytes(), 0o600)
                        .with_context(|| format!("cannot write {}", cookie_path.display()))?;
                    killpoint::reached("proxy-sync.cookie-secret-written");
                }
                secret
            }
            Err(err) => return Err(err.into()),
        };
        let auth = oauth2_proxy::RouteAuth {
            issuer: config.issuer(),
            client_id,
            client_secret,
            cookie_secret,
            hosts: plan.auth_hosts(),
        };
        let config_path = paths.oauth2_proxy_routes_dir().join(oauth2_proxy::CONFIG_NAME);
        let unit_path = paths.systemd_unit_dir().join(oauth2_proxy::UNIT_NAME);
        let config_change = file_change(&config_path, oauth2_proxy::config(&auth), 0o600, true)?;
        let unit_change = file_change(&unit_path, oauth2_proxy::unit(), 0o644, false)?;
        if unit_change.is_some() {
            restarts.push("systemctl daemon-reload".to_string());
            restarts.push(format!("systemctl enable {}", oauth2_proxy::UNIT_NAME));
        }
        if config_change.is_some() || unit_change.is_some() {
            restarts.push(format!("systemctl restart {}", oauth2_proxy::UNIT_NAME));
        }
        files.extend(config_change);
        files.extend(unit_change);
    }

    let wanted_ports: BTreeSet<(u16, Protocol)> =
        plan.ports.iter().map(|route| (route.host_port, route.protocol)).collect();
    let static_mode = std::fs::metadata(&static_path).map(|m| m.permissions().mode() & 0o7777).unwrap_or(0o644);
    let (static_new, block_changed) = entrypoints::splice(
        &static_text,
        &entrypoints::block_lines(&wanted_ports),
        &static_path.display().to_string(),
    )?;
    if block_changed {
        files.extend(file_change(&static_path, static_new, static_mode, false)?);
        restarts.push(format!("systemctl restart {TRAEFIK_UNIT}"));
    }
    files.extend(file_change(&paths.traefik_proxy_file(), dynamic::render(&plan), 0o644, false)?);

    let firewall = ufw::reconcile(&firewall_rules()?, &wanted_ports);

    let exit = if plan.rejected.is_empty() { Exit::Success } else { Exit::Partial };
    let restarts = pending::merge(&restarts_owed, &restarts);
    let outcome =
        Outcome { dry_run: options.dry_run, files, firewall, restarts, restarts_owed, secrets_created, plan, exit };
    if !options.dry_run {
        apply(paths, &outcome)?;
    }
    Ok(outcome)
}

/// Apply in dependency order: oauth2-proxy, static file (+ Traefik restart), dynamic
/// file, firewall. The restarts are recorded as owed before any file is written and
/// cleared one by one as they succeed. Each step names what was already applied when
/// it fails.
fn apply(paths: &Paths, outcome: &Outcome) -> anyhow::Result<()> {
    let mut done: Vec<String> = Vec::new();
    let already = |done: &[String]| {
        if done.is_empty() {
            "nothing was changed".to_string()
        } else {
            format!("already applied: {}", done.join(", "))
        }
    };
    if outcome.restarts != outcome.restarts_owed {
        pending::record(paths, &outcome.restarts).context("nothing was changed")?;
        killpoint::reached("proxy-sync.restarts-recorded");
    }
    for file in &outcome.files {
        atomic_write(&file.path, file.contents.as_bytes(), file.mode)
            .with_context(|| format!("cannot write {} ({})", file.path.display(), already(&done)))?;
        done.push(format!("wrote {}", file.path.display()));
        killpoint::reached(&format!("proxy-sync.wrote-{}", file_label(&file.path)));
    }
    for (index, command) in outcome.restarts.iter().enumerate() {
        let args: Vec<&str> = command.split_whitespace().skip(1).collect();
        Cmd::new("systemctl")
            .args(&args)
            .timeout(SYSTEMCTL_TIMEOUT)
            .run()
            .with_context(|| format!("{}; the next run retries it ({})", already(&done), pending::describe(paths)))?;
        done.push(command.clone());
        killpoint::reached(&format!("proxy-sync.ran-{}", command.replace(' ', "-")));
        pending::record(paths, &outcome.restarts[index + 1..]).with_context(|| already(&done))?;
        killpoint::reached(&format!("proxy-sync.cleared-{}", command.replace(' ', "-")));
    }
    ufw::apply(&outcome.firewall).with_context(|| format!("cannot update the firewall ({})", already(&done)))?;
    killpoint::reached("proxy-sync.firewall-applied");
    Ok(())
}

/// A file's name for its kill point: the file name alone, so points do not depend on `--root`.
fn file_label(path: &Path) -> String {
    path.file_name().map_or_else(|| "file".to_string(), |name| name.to_string_lossy().into_owned())
}

/// The change to `path` when its contents or mode differ from `contents`/`mode`.
fn file_change(path: &Path, contents: String, mode: u32, secret: bool) -> anyhow::Result<Option<FileChange>> {
    let (old, old_mode) = match std::fs::read_to_string(path) {
        Ok(old) => (Some(old), std::fs::metadata(path).map(|m| m.permissions().mode() & 0o7777).ok()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => (None, None),
        Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
    };
    if old.as_deref() == Some(contents.as_str()) && old_mode == Some(mode) {
        return Ok(None);
    }
    let diff = (!secret).then(|| {
        let shown = path.display().to_string();
        similar::TextDiff::from_lines(old.as_deref().unwrap_or(""), &contents)
            .unified_diff()
            .header(&shown, &shown)
            .to_string()
    });
    Ok(Some(FileChange {
        path: path.to_path_buf(),
        action: if old.is_some() { "update" } else { "create" },
        diff,
        contents,
        mode,
    }))
}

fn read_instances(source: &Source) -> anyhow::Result<Vec<Instance>> {
    let (text, origin) = match source {
        Source::Lxc => {
            let text = Cmd::new("lxc")
                .args(["list", "--format=json"])
                .timeout(LXC_TIMEOUT)
                .install_hint("with `apt install lxd-client` (or the LXD snap)")
                .run()
                .context("cannot list the LXD instances")?;
            (text, "`lxc list --format=json`".to_string())
        }
        Source::File(path) if path.as_os_str() == "-" => {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).context("cannot read the instance list from stdin")?;
            (text, "stdin".to_string())
        }
        Source::File(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the instance list {}", path.display()))?;
            (text, path.display().to_string())
        }
    };
    Ok(instances::parse(&text, &origin)?)
}

/// The OIDC client of the route-auth oauth2-proxy: the routes client idp-sync
/// registered (local mode), else the configured client. `Err` explains what is missing.
fn route_auth_client(paths: &Paths, config: &Config) -> Result<(String, Secret), String> {
    let id_file = paths.secret(secret_names::ROUTES_CLIENT_ID);
    if id_file.exists() {
        let id =
            std::fs::read_to_string(&id_file).map_err(|err| format!("cannot read {}: {err}", id_file.display()))?;
        let secret =
            read_secret_file(&paths.secret(secret_names::ROUTES_CLIENT_SECRET)).map_err(|err| err.to_string())?;
        return Ok((id.trim().to_string(), secret));
    }
    match (&config.identity.client_id, &config.identity.client_secret_file) {
        (Some(id), Some(file)) => {
            let secret = config.read_secret(paths, "identity.client_secret_file", file).map_err(|err| err.to_string())?;
            Ok((id.clone(), secret))
        }
        _ => Err("no OIDC client for route auth (run `terrarium-idp-sync` in local mode, or set identity.client_id and identity.client_secret_file)".to_string()),
    }
}

/// Every host port a socket holds now, from `/proc/net/{tcp,udp}{,6}` under the root
/// (a table that does not exist, such as tcp6 without IPv6, holds nothing).
fn ports_in_use(paths: &Paths) -> anyhow::Result<BTreeSet<(u16, Protocol)>> {
    let mut ports = BTreeSet::new();
    for (table, protocol) in listeners::TABLES {
        let path = paths.proc_net(table);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(err) => {
                return Err(err).with_context(|| {
                    format!("cannot read the socket table {} (to find ports in use)", path.display())
                });
            }
        };
        ports.extend(listeners::parse(&text, protocol).into_iter().map(|port| (port, protocol)));
    }
    Ok(ports)
}

fn settings(config: &Config, route_auth: Result<(), String>) -> Settings {
    let mut reserved: BTreeSet<u16> = ports::RESERVED.iter().copied().collect();
    reserved.extend(config.proxy.reserved_ports.iter().copied());
    reserved.insert(config.firewall.ssh_port);
    // Extra firewall ports (`8443/tcp`, `9000`, `60000:61000/udp`) belong to host services too.
    for spec in &config.firewall.extra_ports {
        let ports = spec.split('/').next().unwrap_or_default();
        let (low, high) = ports.split_once(':').unwrap_or((ports, ports));
        if let (Ok(low), Ok(high)) = (low.parse::<u16>(), high.parse::<u16>()) {
            reserved.extend(low..=high);
        }
    }
    Settings {
        reserved_ports: reserved,
        route_auth,
        reserved_hosts: Settings::reserved_hosts(
            &config.domains,
            config.identity.mode == terrarium_common::config::IdentityMode::Local,
        ),
        ports_in_use: BTreeSet::new(),
        max_rules_per_label: usize::try_from(config.proxy.max_rules_per_label()).unwrap_or(usize::MAX),
        max_ports_per_host: usize::try_from(config.proxy.max_ports_per_host()).unwrap_or(usize::MAX),
    }
}
