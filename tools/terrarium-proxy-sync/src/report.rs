//! The JSON report of the last run, read by `terrariumctl status`.
//!
//! It is rewritten only when its content (apart from the time) changes, so a no-op
//! run writes no file; `time` is when the run that produced this outcome happened.

use serde::Serialize;
use terrarium_common::Paths;
use terrarium_common::fs::write_if_changed;

use crate::plan::{HttpRoute, PortRoute, Problem, Unpublished};
use crate::sync::{Outcome, TOOL};

#[derive(Debug, Serialize)]
struct Report<'a> {
    tool: &'static str,
    version: &'static str,
    time: String,
    ok: bool,
    exit: terrarium_common::Exit,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    http_routes: &'a [HttpRoute],
    port_routes: &'a [PortRoute],
    rejected: &'a [Problem],
    contested: &'a [Problem],
    unpublished: &'a [Unpublished],
}

/// Write the report of `result`. A failed run keeps the routes of the last good one
/// out of the report (they may or may not be live), and names the error.
pub fn write(paths: &Paths, result: &anyhow::Result<Outcome>) -> std::io::Result<bool> {
    let empty = (&[][..], &[][..], &[][..], &[][..], &[][..]);
    let (http, ports, rejected, contested, unpublished) = match result {
        Ok(outcome) => (&outcome.plan.http[..], &outcome.plan.ports[..], &outcome.plan.rejected[..], &outcome.plan.contested[..], &outcome.plan.unpublished[..]),
        Err(_) => empty,
    };
    let exit = match result {
        Ok(outcome) => outcome.exit,
        Err(err) => terrarium_common::Exit::classify(err.chain()),
    };
    let mut report = Report {
        tool: TOOL,
        version: terrarium_common::VERSION,
        time: String::new(),
        ok: result.is_ok(),
        exit,
        error: result.as_ref().err().map(|err| format!("{err:#}")),
        http_routes: http,
        port_routes: ports,
        rejected,
        contested,
        unpublished,
    };
    let path = paths.report(TOOL);
    let without_time = serde_json::to_value(&report).map_err(std::io::Error::other)?;
    if let Ok(old) = std::fs::read_to_string(&path) {
        if let Ok(mut old) = serde_json::from_str::<serde_json::Value>(&old) {
            if let Some(map) = old.as_object_mut() {
                map.insert("time".into(), serde_json::Value::String(String::new()));
            }
            if old == without_time {
                return Ok(false);
            }
        }
    }
    report.time = now_rfc3339();
    let mut text = serde_json::to_string_pretty(&report).map_err(std::io::Error::other)?;
    text.push('\n');
    write_if_changed(&path, text.as_bytes(), 0o644)
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}
