//! The backups' health in the host overview: asked of `terrarium-backup status --json`,
//! a program and not a library (no tool crate links another), whose JSON is the
//! contract in [`terrarium_common::backup_status`].

use std::time::Duration;

use serde::Serialize;
use terrarium_common::Paths;
use terrarium_common::backup_status::{BackupStatus, Level};
use terrarium_common::process::{Cmd, ProcessError};

pub const TOOL: &str = "terrarium-backup";
/// It reads zfs and local state only (no S3 request), so this is generous.
const TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Serialize)]
pub struct Backups {
    /// What `terrarium-backup status --json` printed (its `level` is the verdict).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<BackupStatus>,
    /// Why there is no status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Backups {
    fn unknown(error: impl Into<String>) -> Self {
        Self { status: None, error: Some(error.into()) }
    }

    /// The lines for "missing or failing": each warning and critical problem, or why
    /// the health is unknown.
    pub fn findings(&self) -> Vec<String> {
        match (&self.status, &self.error) {
            (Some(status), _) => status
                .problems
                .iter()
                .filter(|p| p.level != Level::Ok)
                .map(|p| format!("backups ({}): {}", p.level.word().to_lowercase(), p.line()))
                .collect(),
            (None, Some(error)) => vec![format!("backups: {error}")],
            (None, None) => Vec::new(),
        }
    }
}

/// Ask the installed `terrarium-backup` (found like `terrariumctl` finds the tools).
pub fn ask(paths: &Paths) -> Backups {
    let Some(tool) = terrarium_common::tools::find(TOOL) else {
        return Backups::unknown(format!(
            "{TOOL} is not installed, so the backups' health is unknown (install the {TOOL} package)"
        ));
    };
    // Short log lines (`terrarium-backup: error: ...`): the last one is quoted in "missing".
    let command = Cmd::new(&tool)
        .arg("--root")
        .arg(paths.root())
        .args(["status", "--json"])
        .env(terrarium_common::paths::env::LOG_FORMAT, "human")
        .timeout(TIMEOUT);
    let output = match command.output() {
        Ok(output) => output,
        Err(ProcessError::Failed { stderr, code, .. }) => {
            return Backups::unknown(format!(
                "`{TOOL} status` failed (exit {}): {}",
                code.map_or_else(|| "by signal".to_string(), |c| c.to_string()),
                last_message(&stderr)
            ));
        }
        Err(err) => return Backups::unknown(format!("cannot run {TOOL} status: {err}")),
    };
    parse(&output.stdout)
}

/// The `status --json` output, or why it is not one.
pub fn parse(stdout: &str) -> Backups {
    match serde_json::from_str::<BackupStatus>(stdout) {
        Ok(status) => Backups { status: Some(status), error: None },
        Err(err) => Backups::unknown(format!("`{TOOL} status --json` printed something else than its report ({err})")),
    }
}

/// Its last line on stderr: the error, as the tool logged it.
fn last_message(stderr: &str) -> &str {
    stderr.lines().rev().map(str::trim).find(|l| !l.is_empty()).unwrap_or("no message")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_last_line_of_a_failed_status_is_quoted() {
        let stderr =
            "level=info tool=terrarium-backup msg=starting\nlevel=error tool=terrarium-backup msg=\"no pool\"\n\n";
        assert_eq!(last_message(stderr), "level=error tool=terrarium-backup msg=\"no pool\"");
        assert_eq!(last_message(""), "no message");
    }

    #[test]
    fn output_that_is_not_the_contract_is_an_unknown_health() {
        let backups = parse("{\"level\": \"ok\"}");
        assert!(backups.status.is_none());
        assert!(backups.findings()[0].contains("printed something else than its report"), "{:?}", backups.findings());
    }
}
