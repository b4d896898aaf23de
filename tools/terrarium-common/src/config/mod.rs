//! The typed model of `/etc/terrarium/config.yaml`.
//!
//! The file holds the long-lived choices of an installation. Secrets never live in
//! it: the config names files under `/etc/terrarium/secrets/` (mode 0600) instead.
//! Loading is strict (unknown keys are errors that name the key), older schema
//! versions are migrated, and saving is atomic with mode 0600.

mod ansible_vars;
mod migrate;
pub mod validate;

pub use ansible_vars::ansible_vars;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::paths::Paths;
use crate::secret::{Secret, SecretError, read_secret_file};
use crate::yaml::{self, YamlError};

/// The schema version this build writes. Older versions are migrated on load.
pub const SCHEMA_VERSION: u32 = 2;

/// The default name of the group whose members may manage the host.
pub const DEFAULT_ADMIN_GROUP: &str = "terrarium-admins";

/// Standard secret file names under `/etc/terrarium/secrets/`.
pub mod secret_names {
    pub const OIDC_CLIENT_SECRET: &str = "oidc-client-secret";
    pub const S3_SECRET_KEY: &str = "s3-secret-key";
    pub const SYNCOID_SSH_KEY: &str = "syncoid-ssh-key";
    pub const COOKIE_SECRET: &str = "oauth2-proxy-cookie-secret";
    pub const ROUTES_COOKIE_SECRET: &str = "oauth2-proxy-routes-cookie-secret";
    /// OIDC clients that `terrarium-idp-sync` registers in local (ZITADEL) mode. In oidc
    /// mode these files are absent and the tools use `identity.client_id` and
    /// `identity.client_secret_file` for every client.
    pub const HOST_CLIENT_ID: &str = "oidc-host-client-id";
    pub const HOST_CLIENT_SECRET: &str = "oidc-host-client-secret";
    pub const ROUTES_CLIENT_ID: &str = "oidc-routes-client-id";
    pub const ROUTES_CLIENT_SECRET: &str = "oidc-routes-client-secret";
    pub const LXD_CLIENT_ID: &str = "oidc-lxd-client-id";
    /// ZITADEL service-account token (personal access token) used by idp-sync.
    pub const ZITADEL_ADMIN_TOKEN: &str = "zitadel-admin-token";
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub schema_version: u32,
    pub domains: Domains,
    pub emails: Emails,
    pub identity: Identity,
    pub storage: Storage,
    #[serde(default)]
    pub s3: S3,
    #[serde(default)]
    pub syncoid: Syncoid,
    #[serde(default)]
    pub proxy: Proxy,
    #[serde(default)]
    pub firewall: Firewall,
    #[serde(default)]
    pub backup: Backup,
    /// Left out of the file while it holds the defaults, so configs written before it
    /// existed do not change.
    #[serde(default, skip_serializing_if = "Metrics::is_default")]
    pub metrics: Metrics,
}

/// Public host names. `root` is optional; the service names are always set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Domains {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    pub manage: String,
    pub proxy: String,
    pub lxd: String,
    pub auth: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Emails {
    pub contact: String,
    pub acme: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zitadel_admin: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum IdentityMode {
    /// Self-hosted ZITADEL on the auth host name.
    Local,
    /// An external OIDC issuer.
    Oidc,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    pub mode: IdentityMode,
    /// The issuer URL; derived from the auth host name in local mode when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// File holding the OIDC client secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_file: Option<PathBuf>,
    #[serde(default = "default_admin_group")]
    pub admin_group: String,
    /// Present only to catch a secret written inline; always rejected.
    #[serde(default, skip_serializing)]
    pub client_secret: Option<String>,
}

fn default_admin_group() -> String {
    DEFAULT_ADMIN_GROUP.to_string()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum StorageMode {
    /// A dedicated non-root block device, wiped.
    Disk,
    /// An unused partition or free space on a non-root disk.
    Partition,
    /// A file on the root filesystem.
    File,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Storage {
    pub mode: StorageMode,
    /// The device or partition (disk, partition modes) or the file path (file mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Size of the pool file in file mode, such as `64G`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    #[serde(default = "default_pool")]
    pub pool: String,
}

fn default_pool() -> String {
    "terrarium".to_string()
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3 {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_file: Option<PathBuf>,
    /// Present only to catch a secret written inline; always rejected.
    #[serde(default, skip_serializing)]
    pub secret_key: Option<String>,
    /// Client-side encryption of the exported streams; written only when set.
    #[serde(default, skip_serializing_if = "S3Encryption::is_off")]
    pub encryption: S3Encryption,
}

/// Exported streams are encrypted with age to `recipients` when there are any
/// (docs/backup.md, "Encryption"). Only public keys live here: the host that exports
/// never needs a private key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Encryption {
    /// age recipients (`age1...`, from `age-keygen -y`) or OpenSSH public keys
    /// (`ssh-ed25519 AAAA...`, `ssh-rsa AAAA...`). A change applies from the next full
    /// stream, which the next export starts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<String>,
    /// The private key `terrarium-restore` and `terrarium-backup verify --deep` use when
    /// no `--identity` is given (an age identity file or an unencrypted OpenSSH key).
    /// Leave it unset where the host should not be able to read its own backups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_file: Option<PathBuf>,
}

impl S3Encryption {
    fn is_off(&self) -> bool {
        self == &Self::default()
    }

    /// Whether exports are encrypted.
    pub fn enabled(&self) -> bool {
        !self.recipients.is_empty()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Syncoid {
    #[serde(default)]
    pub enabled: bool,
    /// `user@host` of the receiving ZFS host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_dataset: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_key_file: Option<PathBuf>,
    /// The target's ssh host keys, as known_hosts lines (`zfs.example.com ssh-ed25519
    /// AAAA...`, what `ssh-keyscan -t ed25519 zfs.example.com` prints). `replicate`
    /// writes the ones naming the target's host to the file syncoid's ssh checks
    /// (`StrictHostKeyChecking=yes`), so the first unattended run needs no prompt.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub known_hosts: Vec<String>,
    /// Present only to catch a key written inline; always rejected.
    #[serde(default, skip_serializing)]
    pub ssh_key: Option<String>,
}

/// Settings of `terrarium-proxy-sync`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proxy {
    /// Host ports that `tcp://` and `udp://` labels may never claim, beyond the built-in set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reserved_ports: Vec<u16>,
    /// Most rules one `user.proxy` label may hold (default [`Proxy::DEFAULT_MAX_RULES_PER_LABEL`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rules_per_label: Option<u32>,
    /// Most `tcp://`/`udp://` host ports all labels together may open (default
    /// [`Proxy::DEFAULT_MAX_PORTS_PER_HOST`]): each is a Traefik entrypoint and a firewall rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ports_per_host: Option<u32>,
}

impl Proxy {
    pub const DEFAULT_MAX_RULES_PER_LABEL: u32 = 32;
    pub const DEFAULT_MAX_PORTS_PER_HOST: u32 = 256;

    pub fn max_rules_per_label(&self) -> u32 {
        self.max_rules_per_label.unwrap_or(Self::DEFAULT_MAX_RULES_PER_LABEL)
    }

    pub fn max_ports_per_host(&self) -> u32 {
        self.max_ports_per_host.unwrap_or(Self::DEFAULT_MAX_PORTS_PER_HOST)
    }
}

/// Extra public ports the host firewall opens beyond SSH, 80 and 443 (`8443/tcp`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Firewall {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_ports: Vec<String>,
    #[serde(default = "default_ssh_port")]
    pub ssh_port: u16,
}

fn default_ssh_port() -> u16 {
    22
}

impl Default for Firewall {
    fn default() -> Self {
        Self { extra_ports: Vec::new(), ssh_port: default_ssh_port() }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Backup {
    #[serde(default = "default_zstd_level")]
    pub zstd_level: i32,
    #[serde(default)]
    pub local_retention: LocalRetention,
    #[serde(default)]
    pub s3_retention: S3Retention,
    #[serde(default)]
    pub alerts: Alerts,
    /// How an export uses memory and the uplink; written only when changed.
    #[serde(default, skip_serializing_if = "ExportLimits::is_default")]
    pub export: ExportLimits,
}

impl Default for Backup {
    fn default() -> Self {
        Self {
            zstd_level: default_zstd_level(),
            local_retention: LocalRetention::default(),
            s3_retention: S3Retention::default(),
            alerts: Alerts::default(),
            export: ExportLimits::default(),
        }
    }
}

/// The resources an S3 export may take: memory for the parts it holds, and the uplink.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportLimits {
    /// Peak memory of an export in MiB (default [`ExportLimits::DEFAULT_MEMORY_BUDGET_MIB`]):
    /// parts too large to hold within it go through a file in /var/tmp. Keep the export
    /// unit's `MemoryMax=` above it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_budget_mib: Option<u32>,
    /// Average upload rate (`20M`, `100Mbit`; see [`crate::rate`]); unlimited when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bwlimit: Option<String>,
    /// An interrupted (unencrypted) export is resumed by a run within this many hours of
    /// its start (default [`ExportLimits::DEFAULT_RESUME_MAX_AGE_HOURS`]); an older one is
    /// aborted, and its parts deleted. 0: never resume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_max_age_hours: Option<u32>,
}

impl ExportLimits {
    pub const DEFAULT_MEMORY_BUDGET_MIB: u32 = 256;
    /// Below this, the fixed share (zstd's workers, the S3 client) leaves no room for
    /// two of the smallest parts.
    pub const MIN_MEMORY_BUDGET_MIB: u32 = 96;
    /// Two days: the next daily run, and the one after should that fail too.
    pub const DEFAULT_RESUME_MAX_AGE_HOURS: u32 = 48;

    /// How old an interrupted export may be and still be resumed.
    pub fn resume_max_age(&self) -> std::time::Duration {
        let hours = self.resume_max_age_hours.unwrap_or(Self::DEFAULT_RESUME_MAX_AGE_HOURS);
        std::time::Duration::from_secs(u64::from(hours) * 3600)
    }

    fn is_default(&self) -> bool {
        self == &Self::default()
    }

    pub fn memory_budget_bytes(&self) -> u64 {
        u64::from(self.memory_budget_mib.unwrap_or(Self::DEFAULT_MEMORY_BUDGET_MIB)) << 20
    }

    /// The upload rate in bytes per second; `Err` names the problem (validation has
    /// already refused a bad value in a loaded config).
    pub fn bwlimit_bytes(&self) -> Result<Option<u64>, String> {
        self.bwlimit.as_deref().map(crate::rate::parse_rate).transpose()
    }
}

/// When `terrarium-backup status --check` (and `terrarium-status`) call a backup late:
/// the age of the newest local snapshot of each instance, of its newest S3 restore
/// point, and of the host's newest restore drill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alerts {
    #[serde(default = "Threshold::local_snapshot")]
    pub local_snapshot: Threshold,
    #[serde(default = "Threshold::s3_restore_point")]
    pub s3_restore_point: Threshold,
    #[serde(default = "Threshold::drill")]
    pub drill: Threshold,
}

impl Default for Alerts {
    fn default() -> Self {
        Self {
            local_snapshot: Threshold::local_snapshot(),
            s3_restore_point: Threshold::s3_restore_point(),
            drill: Threshold::drill(),
        }
    }
}

/// An age in hours past which something is a warning, and one past which it is critical.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    pub warning_hours: u32,
    pub critical_hours: u32,
}

impl Threshold {
    /// sanoid snapshots every 15 minutes: two hours without one means it stopped.
    fn local_snapshot() -> Self {
        Self { warning_hours: 2, critical_hours: 6 }
    }

    /// The export runs daily: 36 hours allows one late or failed run.
    fn s3_restore_point() -> Self {
        Self { warning_hours: 36, critical_hours: 72 }
    }

    /// The drill runs weekly: 14 days allows one missed week.
    fn drill() -> Self {
        Self { warning_hours: 14 * 24, critical_hours: 28 * 24 }
    }
}

fn default_zstd_level() -> i32 {
    3
}

/// sanoid's retention for the container datasets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalRetention {
    pub frequently: u32,
    pub hourly: u32,
    pub daily: u32,
    pub monthly: u32,
}

impl Default for LocalRetention {
    fn default() -> Self {
        Self { frequently: 4, hourly: 24, daily: 14, monthly: 3 }
    }
}

/// How many S3 restore points to keep, and how often a new full stream starts a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Retention {
    /// Keep at least this many newest restore points per instance.
    pub keep_last: u32,
    /// Keep every restore point younger than this many days.
    pub keep_days: u32,
    /// Start a new full stream when the chain's full is older than this many days.
    pub full_every_days: u32,
}

impl Default for S3Retention {
    fn default() -> Self {
        Self { keep_last: 7, keep_days: 30, full_every_days: 30 }
    }
}

/// The Prometheus metrics files the tools leave for node-exporter's textfile collector
/// (docs/metrics.md). Without node-exporter's directory they write nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metrics {
    /// `false`: write no metrics file, even where the directory exists.
    #[serde(default = "enabled", skip_serializing_if = "is_true")]
    pub enabled: bool,
    /// The directory node-exporter's textfile collector reads (absolute; default
    /// [`crate::paths::host::NODE_EXPORTER_TEXTFILE_DIR`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub textfile_dir: Option<PathBuf>,
}

fn enabled() -> bool {
    true
}

fn is_true(value: &bool) -> bool {
    *value
}

impl Default for Metrics {
    fn default() -> Self {
        Self { enabled: true, textfile_dir: None }
    }
}

impl Metrics {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// The host directory to write the files in; none when metrics are disabled.
    pub fn textfile_dir(&self) -> Option<&Path> {
        self.enabled
            .then(|| self.textfile_dir.as_deref().unwrap_or(Path::new(crate::paths::host::NODE_EXPORTER_TEXTFILE_DIR)))
    }
}

/// Why a config could not be loaded, validated or saved.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("no Terrarium config at {path}; run `terrarium-install` first")]
    Missing { path: PathBuf },
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Yaml(#[from] YamlError),
    #[error("{origin}: {key}: {problem}; {fix}")]
    Invalid { origin: String, key: String, problem: String, fix: String },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("{key}: {source}")]
    Secret { key: String, source: SecretError },
}

impl ConfigError {
    pub(crate) fn invalid(key: &str, problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Self::Invalid { origin: String::new(), key: key.to_string(), problem: problem.into(), fix: fix.into() }
    }

    fn with_origin(self, origin: &str) -> Self {
        match self {
            Self::Invalid { key, problem, fix, .. } => Self::Invalid { origin: origin.to_string(), key, problem, fix },
            other => other,
        }
    }

    /// The dotted key the error is about, when it is about one.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::Invalid { key, .. } | Self::Secret { key, .. } => Some(key),
            Self::Yaml(err) => err.key_path.as_deref(),
            _ => None,
        }
    }
}

impl Config {
    /// Load, migrate and validate the config of the host under `paths`.
    pub fn load(paths: &Paths) -> Result<Self, ConfigError> {
        let path = paths.config_file();
        let text = match crate::fs::read_regular_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(ConfigError::Missing { path });
            }
            Err(source) => return Err(ConfigError::Read { path, source }),
        };
        Self::from_yaml(&text, &path.display().to_string())
    }

    /// Parse, migrate and validate config text; `origin` names it in errors.
    pub fn from_yaml(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let text = migrate::to_current(text, origin).map_err(|err| err.with_origin(origin))?;
        let config: Config = yaml::from_str(&text, origin)?;
        config.validate().map_err(|err| err.with_origin(origin))?;
        Ok(config)
    }

    /// Render as YAML, as it is saved.
    pub fn to_yaml(&self) -> Result<String, ConfigError> {
        Ok(format!(
            "# Terrarium host configuration. Change it with `terrarium-set`; secrets live in\n# {}.\n{}",
            crate::paths::host::SECRETS_DIR,
            yaml::to_string(self)?
        ))
    }

    /// Validate, then write atomically with mode 0600. Returns whether the file changed.
    pub fn save(&self, paths: &Paths) -> Result<bool, ConfigError> {
        self.validate()?;
        let path = paths.config_file();
        crate::fs::write_if_changed(&path, self.to_yaml()?.as_bytes(), 0o600)
            .map_err(|source| ConfigError::Write { path, source })
    }

    /// The OIDC issuer: explicit, or `https://<auth domain>` in local mode.
    pub fn issuer(&self) -> String {
        match &self.identity.issuer {
            Some(issuer) => issuer.clone(),
            None => format!("https://{}", self.domains.auth),
        }
    }

    /// Read a secret file named by the config, resolved under the root of `paths`.
    pub fn read_secret(&self, paths: &Paths, key: &str, file: &Path) -> Result<Secret, ConfigError> {
        read_secret_file(&paths.host(file)).map_err(|source| ConfigError::Secret { key: key.to_string(), source })
    }

    /// Check every value; the first problem is returned, naming its key and the fix.
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate_model::check(self)
    }
}

mod validate_model;

#[cfg(test)]
mod tests;
