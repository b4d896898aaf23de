//! Shared building blocks of the Terrarium tools.
//!
//! Every Terrarium tool (`terrarium-proxy-sync`, `terrarium-backup`, ...) is a small
//! Unix program; this crate holds the few things they must agree on:
//!
//! - [`config`]: the typed model of `/etc/terrarium/config.yaml`, its validation and migration;
//! - [`paths`]: every host path and environment variable name, resolved under a root prefix;
//! - [`process`]: running external programs from argument vectors, with timeouts and redaction;
//! - [`fs`]: atomic writes, write-if-changed and the exclusive run lock;
//! - [`instance`]: what a valid LXD instance name is;
//! - [`killpoint`]: test-only places where a tool can be made to die, to prove reruns converge;
//! - [`locks`]: every run lock by name, what it guards and who takes it;
//! - [`metrics`]: Prometheus text files for node-exporter's textfile collector;
//! - [`output`]: exit codes, `--json` helpers, logging and progress conventions;
//! - [`yaml`]: the one place YAML is parsed and written;
//! - [`terminal`]: escaping untrusted text before it is printed for people;
//! - [`cli`]: the arguments every tool shares (`--root`, `--json`, verbosity);
//! - [`journal`]: syslog priorities on the lines a tool writes to the journal;
//! - [`tools`]: finding the other tools, for those that run one another;
//! - [`rate`]: transfer rates as operators write them (`20M`, `100Mbit`);
//! - [`backup_status`]: the backup health `terrarium-backup status` reports and `terrarium-status` reads.

pub mod backup_status;
pub mod cli;
pub mod config;
pub mod fs;
pub mod instance;
pub mod journal;
pub mod killpoint;
pub mod locks;
pub mod metrics;
pub mod output;
pub mod paths;
pub mod ports;
pub mod process;
pub mod rate;
pub mod secret;
pub mod terminal;
pub mod tools;
pub mod yaml;

pub use config::Config;
pub use output::Exit;
pub use paths::Paths;

/// The version of the Terrarium suite, stamped into manifests and `--version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
