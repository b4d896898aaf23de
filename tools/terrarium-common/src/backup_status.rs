//! The contract of `terrarium-backup status --json`: what `terrarium-status` reads to
//! count the backups in a host's health (it runs the tool; no tool links another).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::config::Alerts;

/// How bad, in the order and with the exit codes of monitoring plugins (Nagios,
/// Icinga, sanoid's `--monitor-snapshots`): 0 ok, 1 warning, 2 critical.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warning,
    Critical,
}

impl Level {
    pub fn exit_code(self) -> u8 {
        match self {
            Self::Ok => 0,
            Self::Warning => 1,
            Self::Critical => 2,
        }
    }

    /// `OK`, `WARNING`, `CRITICAL`: the word a plugin's first line starts with.
    pub fn word(self) -> &'static str {
        match self {
            Self::Ok => "OK",
            Self::Warning => "WARNING",
            Self::Critical => "CRITICAL",
        }
    }
}

/// The exit code of a check that could not find out (no config, no zfs): UNKNOWN.
pub const UNKNOWN_EXIT: u8 = 3;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupStatus {
    pub tool_version: String,
    #[serde(with = "time::serde::rfc3339")]
    pub checked_at: OffsetDateTime,
    /// The worst level of every problem (ok when there is none).
    pub level: Level,
    pub s3_enabled: bool,
    pub thresholds: Alerts,
    pub instances: Vec<InstanceStatus>,
    /// The newest restore drill of any instance (the weekly drill takes one in turn).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub newest_drill: Option<Outcome>,
    /// Every finding, worst first, one line each.
    pub problems: Vec<Problem>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceStatus {
    pub instance: String,
    pub level: Level,
    /// The newest local snapshot (sanoid's time machine).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub local: Option<Point>,
    /// The newest S3 restore point (from the catalog the exports keep).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub s3: Option<Point>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_export: Option<Outcome>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_drill: Option<Outcome>,
}

/// A snapshot or restore point, when it was taken and how old it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Point {
    pub snapshot: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub age_seconds: u64,
}

/// How a run went for one instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub instance: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub snapshot: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub level: Level,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub instance: Option<String>,
    pub message: String,
}

impl Problem {
    /// `web: the newest S3 restore point is 40 h old (warning from 36 h)`.
    pub fn line(&self) -> String {
        match &self.instance {
            Some(instance) => format!("{instance}: {}", self.message),
            None => self.message.clone(),
        }
    }
}
