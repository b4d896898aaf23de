//! Unit states from `systemctl show`, parsed from its `Key=value` blocks.

use std::collections::BTreeMap;

use serde::Serialize;
use terrarium_common::process::Cmd;

/// The properties status reads.
pub const PROPERTIES: &str =
    "Id,LoadState,ActiveState,SubState,Result,LastTriggerUSec,NextElapseUSecRealtime,ExecMainExitTimestamp";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnitState {
    pub unit: String,
    /// `loaded`, `not-found`, ... or `unknown` when systemd could not be asked.
    pub load: String,
    pub active: String,
    pub sub: String,
    /// `success`, `exit-code`, ... (for a timer: the result of its service's last run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_run: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_run: Option<String>,
}

impl UnitState {
    pub fn unknown(unit: &str) -> Self {
        Self {
            unit: unit.to_string(),
            load: "unknown".into(),
            active: "unknown".into(),
            sub: "unknown".into(),
            result: None,
            last_run: None,
            next_run: None,
        }
    }
    pub fn installed(&self) -> bool {
        self.load == "loaded"
    }
}

/// Parse the blocks of `systemctl show UNIT...` (one per unit, blank-line separated,
/// in the order asked).
pub fn parse_show(text: &str, units: &[&str]) -> Vec<UnitState> {
    let blocks: Vec<BTreeMap<&str, &str>> = text
        .split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| block.lines().filter_map(|line| line.split_once('=')).collect())
        .collect();
    units
        .iter()
        .map(|unit| {
            let block = blocks.iter().find(|b| b.get("Id") == Some(unit));
            match block {
                None => UnitState::unknown(unit),
                Some(block) => {
                    let value = |key: &str| {
                        block.get(key).map(|v| v.trim().to_string()).filter(|v| !v.is_empty() && v != "n/a" && v != "0")
                    };
                    UnitState {
                        unit: unit.to_string(),
                        load: value("LoadState").unwrap_or_else(|| "unknown".into()),
                        active: value("ActiveState").unwrap_or_else(|| "unknown".into()),
                        sub: value("SubState").unwrap_or_else(|| "unknown".into()),
                        result: value("Result"),
                        last_run: value("LastTriggerUSec").or_else(|| value("ExecMainExitTimestamp")),
                        next_run: value("NextElapseUSecRealtime"),
                    }
                }
            }
        })
        .collect()
}

/// Ask systemd about `units`. Err when systemctl cannot answer (no systemd running).
pub fn show(units: &[&str]) -> Result<Vec<UnitState>, String> {
    let out = Cmd::new("systemctl")
        .args(["show", "--no-pager", "-p", PROPERTIES])
        .args(units)
        .timeout(std::time::Duration::from_secs(20))
        .run()
        .map_err(|err| err.to_string())?;
    Ok(parse_show(&out, units))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_matched_by_id_and_empty_values_dropped() {
        let text = "Id=traefik.service\nLoadState=loaded\nActiveState=active\nSubState=running\nResult=success\nExecMainExitTimestamp=\n\n\
                    Id=sanoid.timer\nLoadState=loaded\nActiveState=active\nSubState=waiting\nResult=success\nLastTriggerUSec=Sat 2026-11-28 18:00:00 UTC\nNextElapseUSecRealtime=Sat 2026-11-28 18:15:00 UTC\n\n\
                    Id=nope.service\nLoadState=not-found\nActiveState=inactive\nSubState=dead\nLastTriggerUSec=n/a\n";
        let states = parse_show(text, &["traefik.service", "sanoid.timer", "nope.service", "absent.service"]);
        assert_eq!(states[0].active, "active");
        assert_eq!(states[0].last_run, None);
        assert_eq!(states[1].last_run.as_deref(), Some("Sat 2026-11-28 18:00:00 UTC"));
        assert!(!states[2].installed());
        assert_eq!(states[2].last_run, None);
        assert_eq!(states[3].load, "unknown");
    }
}
