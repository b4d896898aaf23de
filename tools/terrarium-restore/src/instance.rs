//! The instance as LXD sees it: running or not, stop and start (through `lxc`, which
//! honours `LXD_DIR`).

use std::time::Duration;

use terrarium_common::process::{Cmd, ProcessError};

/// What LXD says about an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceState {
    /// Running (or frozen): it must be stopped before its dataset changes.
    Running,
    Stopped,
    /// LXD has no instance of that name (a dataset without an instance, after a rebuild).
    Unknown,
}

#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    #[error("cannot ask LXD about the instance {instance}: {source}; make sure LXD runs (`lxc list` must answer)")]
    Query { instance: String, source: ProcessError },
    #[error("LXD answered about {instance} with something that is not an instance: {problem}")]
    Answer { instance: String, problem: String },
    #[error("could not {action} the instance {instance}: {source}")]
    Action { instance: String, action: &'static str, source: ProcessError },
}

fn lxc() -> Cmd {
    Cmd::new("lxc").install_hint("with `apt install lxd-client` (or the LXD snap)")
}

/// Read the state from the status string of `GET /1.0/instances/NAME`.
pub fn parse_state(json: &str) -> Result<InstanceState, String> {
    let value: serde_json::Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    match value.get("status").and_then(|s| s.as_str()) {
        Some("Running" | "Frozen" | "Freezing" | "Starting" | "Stopping") => Ok(InstanceState::Running),
        Some(_) => Ok(InstanceState::Stopped),
        None => Err("no `status` field".into()),
    }
}

pub fn state(instance: &str) -> Result<InstanceState, InstanceError> {
    let query = lxc().args(["query", &format!("/1.0/instances/{instance}")]).timeout(Duration::from_secs(60));
    match query.run() {
        Ok(json) => {
            parse_state(&json).map_err(|problem| InstanceError::Answer { instance: instance.to_string(), problem })
        }
        Err(err) if err.stderr().to_ascii_lowercase().contains("not found") => Ok(InstanceState::Unknown),
        Err(source) => Err(InstanceError::Query { instance: instance.to_string(), source }),
    }
}

pub fn stop(instance: &str) -> Result<(), InstanceError> {
    lxc()
        .args(["stop", instance])
        .timeout(Duration::from_secs(300))
        .run()
        .map(drop)
        .map_err(|source| InstanceError::Action { instance: instance.to_string(), action: "stop", source })
}

pub fn start(instance: &str) -> Result<(), InstanceError> {
    lxc()
        .args(["start", instance])
        .timeout(Duration::from_secs(300))
        .run()
        .map(drop)
        .map_err(|source| InstanceError::Action { instance: instance.to_string(), action: "start", source })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn states_come_from_the_status_field() {
        assert_eq!(parse_state(r#"{"name":"web","status":"Running"}"#), Ok(InstanceState::Running));
        assert_eq!(parse_state(r#"{"name":"web","status":"Frozen"}"#), Ok(InstanceState::Running));
        assert_eq!(parse_state(r#"{"name":"web","status":"Stopped"}"#), Ok(InstanceState::Stopped));
        assert!(parse_state("{}").is_err());
    }
}
