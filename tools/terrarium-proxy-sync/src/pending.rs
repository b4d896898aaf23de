//! Restarts a run still owes. A changed file only takes effect after its service
//! restarts, and a later run finds the file current: so the restarts are recorded
//! (atomically, in the state dir) before the files are written and each is cleared
//! after it succeeded. A run that failed or was killed in between leaves them
//! recorded, and the next run performs them even when every file is current.

use std::path::PathBuf;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use terrarium_common::Paths;
use terrarium_common::fs::atomic_write;

use crate::render::oauth2_proxy;
use crate::sync::TOOL;

pub const TRAEFIK_UNIT: &str = "traefik.service";

/// Every command a run may owe, in the order they must run: systemd learns about a
/// new unit, enables it, then the route-auth service restarts before Traefik (routes
/// point at it).
pub fn known() -> [String; 4] {
    [
        "systemctl daemon-reload".to_string(),
        format!("systemctl enable {}", oauth2_proxy::UNIT_NAME),
        format!("systemctl restart {}", oauth2_proxy::UNIT_NAME),
        format!("systemctl restart {TRAEFIK_UNIT}"),
    ]
}

/// `earlier` (still owed) and `now` (this run's file changes) together, once each, in
/// the order of [`known`]. Commands not in [`known`] are dropped: the file never holds
/// anything else, and only these may run.
pub fn merge(earlier: &[String], now: &[String]) -> Vec<String> {
    known().into_iter().filter(|command| earlier.contains(command) || now.contains(command)).collect()
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PendingFile {
    /// Commands recorded before the files changed and not yet run successfully.
    restarts: Vec<String>,
}

fn path(paths: &Paths) -> PathBuf {
    paths.pending_restarts(TOOL)
}

/// The restarts earlier runs left owed (none when the file is absent).
pub fn load(paths: &Paths) -> anyhow::Result<Vec<String>> {
    let path = path(paths);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => {
            return Err(err).with_context(|| format!("cannot read the pending restarts {}", path.display()));
        }
    };
    let file: PendingFile = serde_json::from_str(&text).with_context(|| {
        format!(
            "the pending restarts {} are not valid; delete the file and run `systemctl restart {TRAEFIK_UNIT}`",
            path.display()
        )
    })?;
    Ok(merge(&file.restarts, &[]))
}

/// Where the owed restarts are kept, for messages.
pub fn describe(paths: &Paths) -> String {
    format!("recorded in {}", path(paths).display())
}

/// Record `restarts` as owed; an empty list removes the file.
pub fn record(paths: &Paths, restarts: &[String]) -> anyhow::Result<()> {
    let path = path(paths);
    if restarts.is_empty() {
        return match std::fs::remove_file(&path) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                Err(err).with_context(|| format!("cannot remove {}", path.display()))
            }
            _ => Ok(()),
        };
    }
    let mut text = serde_json::to_string_pretty(&PendingFile { restarts: restarts.to_vec() })?;
    text.push('\n');
    atomic_write(&path, text.as_bytes(), 0o644)
        .with_context(|| format!("cannot record the pending restarts in {}", path.display()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn merging_keeps_the_order_drops_duplicates_and_unknown_commands() {
        let traefik = format!("systemctl restart {TRAEFIK_UNIT}");
        let reload = "systemctl daemon-reload".to_string();
        assert_eq!(
            merge(std::slice::from_ref(&traefik), &[reload.clone(), traefik.clone()]),
            [reload.clone(), traefik.clone()]
        );
        assert_eq!(merge(&["systemctl poweroff".into(), "rm -rf /".into()], &[]), Vec::<String>::new());
        assert_eq!(merge(&[], &[]), Vec::<String>::new());
    }

    #[test]
    fn record_load_and_clear_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path());
        assert!(load(&paths).unwrap().is_empty());
        let owed = known()[2..].to_vec();
        record(&paths, &owed).unwrap();
        assert_eq!(load(&paths).unwrap(), owed);
        record(&paths, &[]).unwrap();
        assert!(!path(&paths).exists());
        record(&paths, &[]).unwrap();
        std::fs::write(path(&paths), "{").unwrap();
        let err = format!("{:#}", load(&paths).unwrap_err());
        assert!(err.contains("pending-restarts/proxy-sync.json") && err.contains("delete the file"), "{err}");
    }
}
