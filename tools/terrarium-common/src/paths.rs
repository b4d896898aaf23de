//! Every runtime path and environment variable name of Terrarium, in one place.
//!
//! Host paths are written here as absolute paths on a real host and resolved under a
//! root prefix, so tests (and image builders) can point a tool at a scratch tree with
//! `--root DIR` or `TERRARIUM_ROOT=DIR` and nothing outside it is touched.

use std::path::{Path, PathBuf};

/// Environment variable names read by the Terrarium tools.
pub mod env {
    /// Root prefix under which every host path resolves (same as `--root`).
    pub const ROOT: &str = "TERRARIUM_ROOT";
    /// Log format: `auto` (default), `human` or `logfmt`.
    pub const LOG_FORMAT: &str = "TERRARIUM_LOG_FORMAT";
    /// Log level: `error`, `warn`, `info` (default), `debug`.
    pub const LOG_LEVEL: &str = "TERRARIUM_LOG";
    /// Extra directories (colon separated) searched first for the tools (see [`crate::tools`]).
    pub const TOOL_PATH: &str = "TERRARIUM_TOOL_PATH";
    /// Set by systemd for services whose output goes to the journal.
    pub const JOURNAL_STREAM: &str = "JOURNAL_STREAM";
    /// Secret alternatives to command-line flags, so secrets stay out of argv.
    pub const OIDC_CLIENT_SECRET: &str = "TERRARIUM_OIDC_CLIENT_SECRET";
    pub const S3_SECRET_KEY: &str = "TERRARIUM_S3_SECRET_KEY";
    pub const ROOT_PASSWORD: &str = "TERRARIUM_ROOT_PASSWORD";
    /// The secret variables above: removed from the environment of every program a tool
    /// starts (see [`crate::process`]), so Ansible and its modules never see them.
    pub const SECRETS: &[&str] = &[OIDC_CLIENT_SECRET, S3_SECRET_KEY, ROOT_PASSWORD];
    /// Tests only (see [`crate::killpoint`]): the kill point after which the tool sends
    /// itself SIGKILL, e.g. `export.manifest-written`.
    pub const KILL_AFTER: &str = "TERRARIUM_TEST_KILL_AFTER";
    /// Tests only (see [`crate::killpoint`]): a file every kill point passed is appended to.
    pub const KILLPOINTS: &str = "TERRARIUM_TEST_KILLPOINTS";

    /// The variables an operator may set or meet, with what they do: the source of
    /// docs/environment.md ([`super::environment_reference`]; a test keeps it current).
    pub const DOCUMENTED: &[(&str, &str)] = &[
        (ROOT, "Root prefix under which every host path resolves, like `--root DIR` (tests, image builders)."),
        (
            LOG_LEVEL,
            "Log level: `error`, `warn`, `info` (default), `debug` or `trace`; each `-v` is one step more, \
             each `-q` one less. Other crates' lines (the AWS SDK's retries and timeouts) show their \
             warnings by default and everything from `-v` on; they end in `from=CRATE`.",
        ),
        (
            LOG_FORMAT,
            "Log format: `human` (short lines) or `logfmt` (`level=... tool=... msg=...`). Unset: human on \
             a terminal, logfmt under systemd, in pipes and in scripts.",
        ),
        (
            JOURNAL_STREAM,
            "Set by systemd. When it names the tool's stderr, every line starts with its syslog priority \
             (`<3>` error, `<4>` warning, `<6>` info, `<7>` debug), so `journalctl -p err` shows the errors.",
        ),
        (
            TOOL_PATH,
            "Extra directories (colon separated) searched first for the tools, by `terrariumctl` and by \
             `terrarium-status` (which runs `terrarium-backup status`).",
        ),
        (OIDC_CLIENT_SECRET, "The OIDC client secret for `terrarium-install`/`terrarium-set`, instead of a flag."),
        (S3_SECRET_KEY, "The S3 secret key for `terrarium-install`/`terrarium-set`, instead of a flag."),
        (ROOT_PASSWORD, "The root password `terrarium-install` sets for Cockpit, instead of `--root-pwd-file`."),
    ];
}

/// docs/environment.md: the variables of [`env::DOCUMENTED`] as a Markdown table.
pub fn environment_reference() -> String {
    let mut text = String::from(
        "# Environment variables\n\n\
         <!-- Generated from tools/terrarium-common/src/paths.rs (env::DOCUMENTED); \
         `TERRARIUM_UPDATE_GOLDEN=1 cargo test -p terrarium-common` rewrites it. -->\n\n\
         Every Terrarium tool reads these. Secret values in the environment are removed \
         from the environment of every program a tool starts.\n\n\
         | variable | meaning |\n| --- | --- |\n",
    );
    for (name, meaning) in env::DOCUMENTED {
        text.push_str(&format!("| `{name}` | {meaning} |\n"));
    }
    text
}

/// Absolute host paths, before the root prefix is applied.
pub mod host {
    pub const OPT_DIR: &str = "/opt/terrarium";
    pub const ETC_DIR: &str = "/etc/terrarium";
    pub const CONFIG_FILE: &str = "/etc/terrarium/config.yaml";
    pub const SECRETS_DIR: &str = "/etc/terrarium/secrets";
    /// Role defaults this host changes (release mirrors, the ACME server): extra
    /// variables for every converge, beside config.yaml's, never in place of them.
    pub const ANSIBLE_OVERRIDES_FILE: &str = "/etc/terrarium/ansible-overrides.yml";
    pub const STATE_DIR: &str = "/var/lib/terrarium";
    pub const CATALOG_DIR: &str = "/var/lib/terrarium/catalog";
    pub const LAST_SNAPSHOTS_DIR: &str = "/var/lib/terrarium/lastsnapshots";
    pub const OAUTH2_PROXY_DIR: &str = "/var/lib/terrarium/oauth2-proxy";
    pub const OAUTH2_PROXY_ROUTES_DIR: &str = "/var/lib/terrarium/oauth2-proxy-routes";
    pub const LOCKS_DIR: &str = "/var/lib/terrarium/locks";
    /// Where tools leave a JSON report of their last run, read by `terrariumctl status`.
    pub const REPORTS_DIR: &str = "/var/lib/terrarium/reports";
    pub const TRAEFIK_DIR: &str = "/etc/traefik";
    pub const TRAEFIK_STATIC_FILE: &str = "/etc/traefik/traefik.yml";
    pub const TRAEFIK_DYNAMIC_DIR: &str = "/etc/traefik/dynamic";
    /// The one dynamic file proxy sync owns inside Traefik's file-provider directory.
    pub const TRAEFIK_PROXY_FILE: &str = "/etc/traefik/dynamic/terrarium-proxy.yml";
    pub const SANOID_DIR: &str = "/etc/sanoid";
    pub const SANOID_CONF: &str = "/etc/sanoid/sanoid.conf";
    pub const SYSTEMD_UNIT_DIR: &str = "/etc/systemd/system";
    pub const ANSIBLE_DIR: &str = "/usr/share/terrarium/ansible";
    pub const LIB_DIR: &str = "/usr/lib/terrarium";
    /// Restarts a tool still owes (recorded before its files change, cleared after).
    pub const PENDING_RESTARTS_DIR: &str = "/var/lib/terrarium/pending-restarts";
    /// What a restore still owes an instance (an instance to start, a set-aside dataset to
    /// put back or destroy): written before each such step, removed when the run is done.
    pub const RESTORE_UNFINISHED_DIR: &str = "/var/lib/terrarium/restore-unfinished";
    /// Where export parts too large for the memory budget wait: on disk (`/tmp` may be a
    /// tmpfs, which is memory again), and private to the export unit (`PrivateTmp=`).
    pub const SPOOL_DIR: &str = "/var/tmp";
    /// node-exporter's textfile collector directory (Debian's and Ubuntu's
    /// prometheus-node-exporter package): the default of `metrics.textfile_dir`.
    pub const NODE_EXPORTER_TEXTFILE_DIR: &str = "/var/lib/prometheus/node-exporter";
    /// The kernel's socket tables (`tcp`, `tcp6`, `udp`, `udp6`); under `--root` tests supply them.
    pub const PROC_NET_DIR: &str = "/proc/net";
    /// The replication target's host keys (`syncoid.known_hosts`), written by
    /// `terrarium-backup replicate` for syncoid's ssh (`UserKnownHostsFile`).
    pub const SYNCOID_KNOWN_HOSTS: &str = "/var/lib/terrarium/ssh/known_hosts";
}

/// Host paths resolved under a root prefix (`/` on a real host).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    root: PathBuf,
}

impl Default for Paths {
    fn default() -> Self {
        Self::new("/")
    }
}

impl Paths {
    /// Paths under an explicit root prefix.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The root from `--root` when given, else `TERRARIUM_ROOT`, else `/`.
    pub fn resolve(cli_root: Option<&Path>) -> Self {
        match cli_root {
            Some(root) => Self::new(root),
            None => match std::env::var_os(env::ROOT) {
                Some(root) if !root.is_empty() => Self::new(root),
                _ => Self::default(),
            },
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// True when tools act on the real host rather than a scratch tree.
    pub fn is_host_root(&self) -> bool {
        self.root == Path::new("/")
    }

    /// Resolve an absolute host path (such as [`host::CONFIG_FILE`]) under the root.
    pub fn host(&self, absolute: impl AsRef<Path>) -> PathBuf {
        let absolute = absolute.as_ref();
        let relative = absolute.strip_prefix("/").unwrap_or(absolute);
        self.root.join(relative)
    }

    pub fn config_file(&self) -> PathBuf {
        self.host(host::CONFIG_FILE)
    }
    pub fn secrets_dir(&self) -> PathBuf {
        self.host(host::SECRETS_DIR)
    }
    /// A secret file by name, such as `s3-secret-key`.
    pub fn secret(&self, name: &str) -> PathBuf {
        self.secrets_dir().join(name)
    }
    pub fn state_dir(&self) -> PathBuf {
        self.host(host::STATE_DIR)
    }
    pub fn catalog_dir(&self) -> PathBuf {
        self.host(host::CATALOG_DIR)
    }
    pub fn last_snapshots_dir(&self) -> PathBuf {
        self.host(host::LAST_SNAPSHOTS_DIR)
    }
    pub fn oauth2_proxy_dir(&self) -> PathBuf {
        self.host(host::OAUTH2_PROXY_DIR)
    }
    pub fn oauth2_proxy_routes_dir(&self) -> PathBuf {
        self.host(host::OAUTH2_PROXY_ROUTES_DIR)
    }
    pub fn locks_dir(&self) -> PathBuf {
        self.host(host::LOCKS_DIR)
    }
    pub fn reports_dir(&self) -> PathBuf {
        self.host(host::REPORTS_DIR)
    }
    /// The JSON report a tool leaves of its last run, e.g. `report("proxy-sync")`.
    pub fn report(&self, tool: &str) -> PathBuf {
        self.reports_dir().join(format!("{tool}.json"))
    }
    pub fn traefik_static_file(&self) -> PathBuf {
        self.host(host::TRAEFIK_STATIC_FILE)
    }
    pub fn traefik_dynamic_dir(&self) -> PathBuf {
        self.host(host::TRAEFIK_DYNAMIC_DIR)
    }
    pub fn traefik_proxy_file(&self) -> PathBuf {
        self.host(host::TRAEFIK_PROXY_FILE)
    }
    pub fn sanoid_conf(&self) -> PathBuf {
        self.host(host::SANOID_CONF)
    }
    pub fn systemd_unit_dir(&self) -> PathBuf {
        self.host(host::SYSTEMD_UNIT_DIR)
    }
    pub fn ansible_dir(&self) -> PathBuf {
        self.host(host::ANSIBLE_DIR)
    }
    pub fn ansible_overrides_file(&self) -> PathBuf {
        self.host(host::ANSIBLE_OVERRIDES_FILE)
    }
    pub fn lib_dir(&self) -> PathBuf {
        self.host(host::LIB_DIR)
    }
    /// The restarts `tool` still owes, e.g. `pending_restarts("proxy-sync")`.
    pub fn pending_restarts(&self, tool: &str) -> PathBuf {
        self.host(host::PENDING_RESTARTS_DIR).join(format!("{tool}.json"))
    }
    /// What a restore of `instance` (the target: `--as-new` names it) still owes.
    pub fn restore_unfinished(&self, instance: &str) -> PathBuf {
        self.host(host::RESTORE_UNFINISHED_DIR).join(format!("{instance}.json"))
    }
    /// The known_hosts file syncoid's ssh checks the replication target against.
    pub fn syncoid_known_hosts(&self) -> PathBuf {
        self.host(host::SYNCOID_KNOWN_HOSTS)
    }
    /// The metrics file of `job` (`terrarium_backup_export`) in the textfile collector
    /// directory `dir` (a host path, such as [`host::NODE_EXPORTER_TEXTFILE_DIR`]).
    pub fn metrics_file(&self, dir: &Path, job: &str) -> PathBuf {
        self.host(dir).join(format!("{job}.prom"))
    }
    pub fn spool_dir(&self) -> PathBuf {
        self.host(host::SPOOL_DIR)
    }
    /// `/proc/net/NAME`, such as `proc_net("tcp6")`.
    pub fn proc_net(&self, name: &str) -> PathBuf {
        self.host(host::PROC_NET_DIR).join(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_reference_is_current() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/environment.md");
        let want = environment_reference();
        if std::env::var_os("TERRARIUM_UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, &want).expect("write docs/environment.md");
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(have, want, "docs/environment.md is stale: rerun with TERRARIUM_UPDATE_GOLDEN=1");
        for name in [env::ROOT, env::LOG_LEVEL, env::LOG_FORMAT, env::JOURNAL_STREAM, env::TOOL_PATH] {
            assert!(have.contains(&format!("`{name}`")), "{name} undocumented");
        }
        for name in env::SECRETS {
            assert!(have.contains(&format!("`{name}`")), "{name} undocumented");
        }
    }

    #[test]
    fn host_paths_resolve_under_the_root() {
        let paths = Paths::new("/tmp/t");
        assert_eq!(paths.config_file(), Path::new("/tmp/t/etc/terrarium/config.yaml"));
        assert_eq!(paths.secret("s3-secret-key"), Path::new("/tmp/t/etc/terrarium/secrets/s3-secret-key"));
        assert_eq!(paths.report("proxy-sync"), Path::new("/tmp/t/var/lib/terrarium/reports/proxy-sync.json"));
        assert_eq!(
            paths.metrics_file(Path::new(host::NODE_EXPORTER_TEXTFILE_DIR), "terrarium_proxy_sync"),
            Path::new("/tmp/t/var/lib/prometheus/node-exporter/terrarium_proxy_sync.prom")
        );
        assert!(!paths.is_host_root());
    }

    #[test]
    fn the_default_root_is_the_host() {
        let paths = Paths::default();
        assert_eq!(paths.config_file(), Path::new(host::CONFIG_FILE));
        assert!(paths.is_host_root());
    }

    #[test]
    fn cli_root_wins_over_environment() {
        let paths = Paths::resolve(Some(Path::new("/x")));
        assert_eq!(paths.root(), Path::new("/x"));
    }
}
