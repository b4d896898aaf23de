//! The JSON report of the last run, read by `terrariumctl status`.
//!
//! It is rewritten only when its content (apart from the time) changes, so a no-op
//! run writes no file; `time` is when the run that produced this outcome happened.

use serde::Serialize;
use terrarium_common::Paths;
use terrarium_common::fs::write_if_changed;

use crate::plan::{HttpRoute, PortRoute, Problem, Unpublished};
use crate::render::oauth2_proxy::callback_url;
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
    /// The sign-in callbacks the identity provider must allow for the route-auth client,
    /// one per `@auth` host (terrarium-idp-sync registers them at ZITADEL).
    route_auth_callbacks: Vec<String>,
}

/// Write the report of `result`. A failed run keeps the routes of the last good one
/// out of the report (they may or may not be live), and names the error.
pub fn write(paths: &Paths, result: &anyhow::Result<Outcome>) -> std::io::Result<bool> {
    let empty = (&[][..], &[][..], &[][..], &[][..], &[][..]);
    let (http, ports, rejected, contested, unpublished) = match result {
        Ok(outcome) => (
            &outcome.plan.http[..],
            &outcome.plan.ports[..],
            &outcome.plan.rejected[..],
            &outcome.plan.contested[..],
            &outcome.plan.unpublished[..],
        ),
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
        error: result.as_ref().err().map(|err| terrarium_common::output::error_chain(err.chain())),
        http_routes: http,
        port_routes: ports,
        rejected,
        contested,
        unpublished,
        route_auth_callbacks: match result {
            Ok(outcome) => outcome.plan.auth_hosts().iter().map(|h| callback_url(h)).collect(),
            Err(_) => Vec::new(),
        },
    };
    let path = paths.report(TOOL);
    // Compare as text with the old report's time put in: no JSON parsing on the no-op
    // path (the field order is fixed by the struct).
    if let Ok(old) = std::fs::read_to_string(&path)
        && let Some(old_time) = time_of(&old)
    {
        report.time = old_time.to_string();
        if render(&report)? == old {
            return Ok(false);
        }
    }
    report.time = now_rfc3339();
    write_if_changed(&path, render(&report)?.as_bytes(), 0o644)
}

fn render(report: &Report<'_>) -> std::io::Result<String> {
    let mut text = serde_json::to_string_pretty(report).map_err(std::io::Error::other)?;
    text.push('\n');
    Ok(text)
}

/// The value of the top-level `"time"` field of a report we wrote.
fn time_of(text: &str) -> Option<&str> {
    let line = text.lines().find(|line| line.starts_with("  \"time\": \""))?;
    line.strip_prefix("  \"time\": \"")?.strip_suffix("\",")
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}
