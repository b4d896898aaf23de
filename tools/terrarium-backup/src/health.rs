//! Whether the backups are on time, from what `status` gathered (pure): each age
//! against its threshold in `backup.alerts`, each last run's result, one level per
//! instance and one for the host, in the way monitoring plugins count them.

use terrarium_common::backup_status::{BackupStatus, InstanceStatus, Level, Outcome, Point, Problem};
use terrarium_common::config::{Alerts, Threshold};
use time::OffsetDateTime;

/// What is known of one instance.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub instance: String,
    /// When its dataset was created: an instance younger than a threshold is not late.
    pub created: Option<OffsetDateTime>,
    /// The newest local snapshot and when it was taken.
    pub local: Option<(String, OffsetDateTime)>,
    /// The newest S3 restore point and when its export started.
    pub s3: Option<(String, OffsetDateTime)>,
    /// When the export of its oldest S3 restore point started: how long a drill has
    /// been possible.
    pub s3_oldest: Option<OffsetDateTime>,
    pub last_export: Option<Outcome>,
    pub last_drill: Option<Outcome>,
}

#[derive(Debug)]
pub struct Inputs<'a> {
    pub now: OffsetDateTime,
    pub s3_enabled: bool,
    pub alerts: &'a Alerts,
    pub instances: Vec<Facts>,
}

pub fn assess(inputs: Inputs<'_>) -> BackupStatus {
    let Inputs { now, s3_enabled, alerts, instances } = inputs;
    let mut problems = Vec::new();
    let mut statuses = Vec::new();
    let first_export = instances.iter().filter_map(|f| f.s3_oldest).min();
    for facts in instances {
        let mut found = Vec::new();
        let young = |threshold: Threshold| facts.created.is_some_and(|c| age(now, c) < hours(threshold.warning_hours));
        let local = point(now, facts.local.clone());
        judge_age(&mut found, "local snapshot", local.as_ref(), alerts.local_snapshot, young(alerts.local_snapshot));
        let s3 = point(now, facts.s3.clone());
        if s3_enabled {
            judge_age(
                &mut found,
                "S3 restore point",
                s3.as_ref(),
                alerts.s3_restore_point,
                young(alerts.s3_restore_point),
            );
            if let Some(export) = facts.last_export.as_ref().filter(|e| !e.ok) {
                found.push((
                    Level::Critical,
                    format!(
                        "the last export ({}) failed: {}",
                        rfc3339(export.at),
                        export.error.as_deref().unwrap_or("see the export's log")
                    ),
                ));
            }
            if let Some(drill) = facts.last_drill.as_ref().filter(|d| !d.ok) {
                found.push((
                    Level::Critical,
                    format!(
                        "the last restore drill ({}) failed; `terrarium-backup verify --deep --instance {}` says why",
                        rfc3339(drill.at),
                        facts.instance
                    ),
                ));
            }
        }
        let level = found.iter().map(|(level, _)| *level).max().unwrap_or(Level::Ok);
        for (level, message) in found {
            problems.push(Problem { level, instance: Some(facts.instance.clone()), message });
        }
        statuses.push(InstanceStatus {
            instance: facts.instance,
            level,
            local,
            s3,
            last_export: facts.last_export,
            last_drill: facts.last_drill,
        });
    }
    // The weekly drill takes one instance per run, so the host's newest drill says
    // whether drills run at all; each instance's own failed drill is counted above.
    let newest_drill = statuses.iter().filter_map(|s| s.last_drill.clone()).max_by_key(|d| d.at);
    if s3_enabled && !statuses.is_empty() {
        let drill_age = newest_drill.as_ref().map(|d| age(now, d.at));
        let message = match drill_age {
            Some(age) => format!("the newest restore drill is {} old", human_age(age)),
            None => "no restore drill has run (terrarium-backup-verify.timer)".to_string(),
        };
        let threshold = alerts.drill;
        // Never drilled: late once a restore point has waited past the threshold.
        let waited = drill_age.or(first_export.map(|at| age(now, at)));
        if let Some(level) = waited.and_then(|age| over(age, threshold)) {
            problems.push(Problem { level, instance: None, message: with_limit(message, level, threshold) });
        }
    }
    problems.sort_by(|a, b| b.level.cmp(&a.level).then_with(|| a.instance.cmp(&b.instance)));
    BackupStatus {
        tool_version: terrarium_common::VERSION.to_string(),
        checked_at: now,
        level: problems.iter().map(|p| p.level).max().unwrap_or(Level::Ok),
        s3_enabled,
        thresholds: alerts.clone(),
        instances: statuses,
        newest_drill,
        problems,
    }
}

fn judge_age(found: &mut Vec<(Level, String)>, what: &str, point: Option<&Point>, threshold: Threshold, young: bool) {
    match point {
        None if young => {}
        None => found.push((Level::Critical, format!("no {what}"))),
        Some(point) => {
            let age = time::Duration::seconds(point.age_seconds as i64);
            if let Some(level) = over(age, threshold) {
                let message = format!("the newest {what} ({}) is {} old", point.snapshot, human_age(age));
                found.push((level, with_limit(message, level, threshold)));
            }
        }
    }
}

fn over(age: time::Duration, threshold: Threshold) -> Option<Level> {
    if age > hours(threshold.critical_hours) {
        Some(Level::Critical)
    } else if age > hours(threshold.warning_hours) {
        Some(Level::Warning)
    } else {
        None
    }
}

fn with_limit(message: String, level: Level, threshold: Threshold) -> String {
    let limit = if level == Level::Critical { threshold.critical_hours } else { threshold.warning_hours };
    format!("{message} ({} from {limit} h)", level.word().to_lowercase())
}

fn point(now: OffsetDateTime, taken: Option<(String, OffsetDateTime)>) -> Option<Point> {
    taken.map(|(snapshot, at)| Point { snapshot, at, age_seconds: age(now, at).whole_seconds().max(0) as u64 })
}

fn age(now: OffsetDateTime, then: OffsetDateTime) -> time::Duration {
    (now - then).max(time::Duration::ZERO)
}

fn hours(n: u32) -> time::Duration {
    time::Duration::hours(i64::from(n))
}

/// `40 min`, `5 h`, `3 d 4 h`.
pub fn human_age(age: time::Duration) -> String {
    let minutes = age.whole_minutes();
    match minutes {
        ..120 => format!("{minutes} min"),
        120..2880 => format!("{} h", minutes / 60),
        _ => format!("{} d {} h", minutes / 1440, (minutes % 1440) / 60),
    }
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339).unwrap_or_else(|_| at.to_string())
}

#[cfg(test)]
#[path = "health_tests.rs"]
mod tests;
