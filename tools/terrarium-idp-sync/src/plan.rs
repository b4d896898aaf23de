//! The changes a run makes (or, with `--dry-run`, would make), and its report.

use serde::Serialize;

/// Where a change happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum System {
    Zitadel,
    Secrets,
    Lxd,
}

/// One change: `create project terrarium`, `update app terrarium-host (redirectUris)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub system: System,
    /// `create`, `update`, `write` or `regenerate`.
    pub action: &'static str,
    /// What kind of object: `project`, `app`, `role`, `user-grant`, `action`, `trigger`, `secret`, `config`, `auth-group`, ...
    pub object: &'static str,
    pub name: String,
    /// Why, for updates: the fields that drifted.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

impl Change {
    pub fn new(system: System, action: &'static str, object: &'static str, name: impl Into<String>) -> Self {
        Self { system, action, object, name: name.into(), detail: String::new() }
    }
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }

    /// One line for people: `zitadel: update app terrarium-host (redirectUris)`.
    pub fn line(&self) -> String {
        let system = match self.system {
            System::Zitadel => "zitadel",
            System::Secrets => "secrets",
            System::Lxd => "lxd",
        };
        let detail = if self.detail.is_empty() { String::new() } else { format!(" ({})", self.detail) };
        format!("{system}: {} {} {}{detail}", self.action, self.object, self.name)
    }
}

/// The outcome of a run, printed with `--json`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub mode: String,
    pub dry_run: bool,
    pub changes: Vec<Change>,
    /// Things the operator should know: what was skipped and why, what the provider must do.
    pub notes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<terrarium_oidc::IssuerReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lxd: Option<crate::lxd::LxdSummary>,
}

impl Report {
    pub fn record(&mut self, change: Change) {
        log::debug!(system = format!("{:?}", change.system).to_lowercase(), action = change.action, object = change.object, name = change.name.as_str(); "{}", if self.dry_run { "would change" } else { "changed" });
        self.changes.push(change);
    }
    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }
}
