//! Choosing the restore point from `--at`: pure code over a list of restore points.
//!
//! - no `--at`: the newest restore point;
//! - a timestamp (`2026-11-28`, `2026-11-28T12`, `2026-11-28 12:00`, `2026-11-28T12:00:05`,
//!   RFC 3339 with an offset): the newest restore point taken by the end of the given
//!   precision (`12:00` includes 12:00:59, a date includes the whole day), because sanoid
//!   snapshots a little after the minute; UTC unless an offset is given;
//! - anything else is a fragment of the snapshot name: an exact name wins, else the one
//!   name that contains it.
//!
//! No match names the nearest restore points; several matches name them all.

use serde::Serialize;
use time::{Date, Duration, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// One point an instance can be restored to: a local snapshot or an S3 restore point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RestorePoint {
    /// The snapshot name (the part after `@`).
    pub snapshot: String,
    pub guid: u64,
    pub createtxg: u64,
    /// When the snapshot was taken, unix seconds.
    pub created: i64,
}

/// What `--at` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AtSpec {
    Newest,
    /// The newest point created at or before this moment (unix seconds).
    By {
        text: String,
        until: i64,
    },
    Fragment(String),
}

/// Why no single restore point was chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AtError {
    #[error("{instance} has no restore points{where_}; take a snapshot or run an export first")]
    NoPoints { instance: String, where_: String },
    #[error("no restore point of {instance} matches --at {spec:?}; nearest: {}. Pass one of them (or a fragment of it) to --at", .nearest.join(", "))]
    NoMatch { instance: String, spec: String, nearest: Vec<String> },
    #[error("--at {spec:?} matches {} restore points of {instance}: {}. Pass a longer fragment", .matches.len(), .matches.join(", "))]
    Ambiguous { instance: String, spec: String, matches: Vec<String> },
}

/// How many near misses an error shows.
const NEAREST: usize = 3;

/// Read `--at`: a timestamp when it parses as one, else a name fragment.
pub fn parse_at(text: Option<&str>) -> AtSpec {
    match text.map(str::trim) {
        None | Some("") => AtSpec::Newest,
        Some(text) => match parse_until(text) {
            Some(until) => AtSpec::By { text: text.to_string(), until },
            None => AtSpec::Fragment(text.to_string()),
        },
    }
}

/// The last second covered by a timestamp of the given precision, unix seconds.
fn parse_until(text: &str) -> Option<i64> {
    if let Ok(moment) = OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339) {
        return Some(moment.unix_timestamp());
    }
    let (date_text, rest) = match text.split_once(['T', ' ']) {
        Some((date, rest)) => (date, Some(rest)),
        None => (text, None),
    };
    let date = Date::parse(date_text, time::macros::format_description!("[year]-[month]-[day]")).ok()?;
    let (clock, last) = match rest {
        None => (Time::MIDNIGHT, Duration::days(1)),
        Some(rest) => parse_clock(rest.strip_suffix('Z').unwrap_or(rest))?,
    };
    let start = PrimitiveDateTime::new(date, clock).assume_offset(UtcOffset::UTC);
    Some((start + last).unix_timestamp() - 1)
}

/// `HH`, `HH:MM` or `HH:MM:SS`, and the length of the window it names.
fn parse_clock(text: &str) -> Option<(Time, Duration)> {
    let parts: Vec<&str> = text.split(':').collect();
    let number = |s: &str| -> Option<u8> {
        (s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
    };
    let (h, m, s, window) = match parts.as_slice() {
        [h] => (number(h)?, 0, 0, Duration::hours(1)),
        [h, m] => (number(h)?, number(m)?, 0, Duration::minutes(1)),
        [h, m, s] => (number(h)?, number(m)?, number(s)?, Duration::seconds(1)),
        _ => return None,
    };
    Some((Time::from_hms(h, m, s).ok()?, window))
}

/// Choose the restore point `spec` names among `points` (any order).
pub fn resolve<'a>(instance: &str, points: &'a [RestorePoint], spec: &AtSpec) -> Result<&'a RestorePoint, AtError> {
    let mut sorted: Vec<&RestorePoint> = points.iter().collect();
    sorted.sort_by_key(|p| (p.createtxg, p.created));
    let Some(newest) = sorted.last() else {
        return Err(AtError::NoPoints { instance: instance.to_string(), where_: String::new() });
    };
    match spec {
        AtSpec::Newest => Ok(newest),
        AtSpec::By { text, until } => {
            let Some(best) = sorted.iter().filter(|p| p.created <= *until).map(|p| p.created).max() else {
                let nearest = sorted.iter().take(NEAREST).map(|p| describe(p)).collect();
                return Err(AtError::NoMatch { instance: instance.to_string(), spec: text.clone(), nearest });
            };
            let ties: Vec<&&RestorePoint> = sorted.iter().filter(|p| p.created == best).collect();
            // Snapshots of one transaction group hold the same data: any of them will do.
            if ties.iter().all(|p| p.createtxg == ties[0].createtxg) {
                return Ok(ties[ties.len() - 1]);
            }
            Err(AtError::Ambiguous {
                instance: instance.to_string(),
                spec: text.clone(),
                matches: ties.iter().map(|p| describe(p)).collect(),
            })
        }
        AtSpec::Fragment(fragment) => {
            if let Some(exact) = sorted.iter().find(|p| p.snapshot == *fragment) {
                return Ok(exact);
            }
            let matches: Vec<&&RestorePoint> =
                sorted.iter().filter(|p| p.snapshot.contains(fragment.as_str())).collect();
            match matches.as_slice() {
                [one] => Ok(one),
                [] => Err(AtError::NoMatch {
                    instance: instance.to_string(),
                    spec: fragment.clone(),
                    nearest: nearest_names(&sorted, fragment),
                }),
                many => Err(AtError::Ambiguous {
                    instance: instance.to_string(),
                    spec: fragment.clone(),
                    matches: many.iter().map(|p| describe(p)).collect(),
                }),
            }
        }
    }
}

/// The names most like `fragment`: longest common substring, newest first on ties.
fn nearest_names(sorted: &[&RestorePoint], fragment: &str) -> Vec<String> {
    let mut scored: Vec<(usize, usize, &RestorePoint)> = sorted
        .iter()
        .enumerate()
        .map(|(index, p)| (longest_common_substring(&p.snapshot, fragment), index, *p))
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
    scored.into_iter().take(NEAREST).map(|(_, _, p)| describe(p)).collect()
}

fn longest_common_substring(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut best = 0;
    let mut previous = vec![0usize; b.len() + 1];
    for x in &a {
        let mut current = vec![0usize; b.len() + 1];
        for (j, y) in b.iter().enumerate() {
            if x == y {
                current[j + 1] = previous[j] + 1;
                best = best.max(current[j + 1]);
            }
        }
        previous = current;
    }
    best
}

/// `name (2026-11-28 12:00:01 UTC)`, as errors and listings show a point.
pub fn describe(point: &RestorePoint) -> String {
    format!("{} ({})", point.snapshot, format_time(point.created))
}

/// A unix time as `2026-11-28 12:00:01 UTC`.
pub fn format_time(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC")).ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
