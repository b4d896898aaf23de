//! `terrarium-backup status [--check]`: per instance, the newest local snapshot, the
//! newest S3 restore point, the last export and the last restore drill, judged against
//! `backup.alerts`. With `--check` it is a monitoring plugin: one status line, the
//! problems, performance data, and exit 0 ok, 1 warning, 2 critical, 3 unknown.
//!
//! Read from this host only (zfs and the state the exports and drills leave), so a
//! check every minute costs no S3 request; the weekly drill compares the catalog with
//! the bucket.

use terrarium_common::Exit;
use terrarium_common::backup_status::{BackupStatus, Level, Outcome, Point};
use terrarium_common::output::print_json;
use time::OffsetDateTime;

use super::now;
use crate::context::Context;
use crate::health::{self, Facts, human_age};
use crate::state;
use terrarium_archive::chain::Catalog;
use terrarium_archive::zfs::Zfs;

pub fn run(global: &terrarium_common::cli::GlobalArgs, check: bool) -> anyhow::Result<Exit> {
    let status = match Context::load(global).and_then(|ctx| gather(&ctx)) {
        Ok(status) => status,
        Err(err) if check => {
            // A check that cannot look is UNKNOWN (3), never an OK.
            let error = terrarium_common::output::error_chain(err.chain());
            println!("BACKUP UNKNOWN - {}", terrarium_common::terminal::escape(&error));
            return Ok(Exit::Partial);
        }
        Err(err) => return Err(err),
    };
    if global.json {
        print_json(&status)?;
    } else if check {
        print!("{}", plugin_output(&status));
    } else {
        print!("{}", human(&status));
    }
    Ok(if check { plugin_exit(status.level) } else { Exit::Success })
}

/// The plugin exit codes 0, 1 and 2 are the [`Exit`] values with those numbers.
fn plugin_exit(level: Level) -> Exit {
    match level {
        Level::Ok => Exit::Success,
        Level::Warning => Exit::Failure,
        Level::Critical => Exit::Usage,
    }
}

fn gather(ctx: &Context) -> anyhow::Result<BackupStatus> {
    let zfs = Zfs::new();
    let mut instances = Vec::new();
    for dataset in zfs.container_datasets(ctx.pool())? {
        let times = zfs.creation_times(&dataset.dataset)?;
        let created = times.dataset.and_then(unix);
        let local = times.newest_snapshot.and_then(|(name, at)| Some((name, unix(at)?)));
        let catalog = Catalog::new(state::read_catalog(&ctx.paths, &dataset.instance));
        let s3 = catalog.latest().map(|m| (m.snapshot.name.clone(), m.started_at));
        let s3_oldest = catalog.restore_points().iter().map(|m| m.started_at).min();
        let last_export = state::read_exported(&ctx.paths, &dataset.instance).map(|e| Outcome {
            at: e.at,
            ok: e.ok,
            instance: None,
            snapshot: e.snapshot,
            error: e.error,
        });
        let last_drill = state::read_drilled(&ctx.paths, &dataset.instance).map(|d| Outcome {
            at: d.at,
            ok: d.ok,
            instance: Some(dataset.instance.clone()),
            snapshot: None,
            error: None,
        });
        instances.push(Facts { instance: dataset.instance, created, local, s3, s3_oldest, last_export, last_drill });
    }
    Ok(health::assess(health::Inputs {
        now: now(),
        s3_enabled: ctx.s3_enabled(),
        alerts: &ctx.config.backup.alerts,
        instances,
    }))
}

fn unix(seconds: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(seconds).ok()
}

/// `BACKUP WARNING - db: ... | perfdata`, then one problem per line.
fn plugin_output(status: &BackupStatus) -> String {
    let escape = |text: &str| terrarium_common::terminal::escape(text).into_owned();
    let summary = match status.problems.first() {
        None => format!("{} instances backed up on time", status.instances.len()),
        Some(first) if status.problems.len() == 1 => escape(&first.line()),
        Some(first) => format!("{} (and {} more)", escape(&first.line()), status.problems.len() - 1),
    };
    let mut out = format!("BACKUP {} - {summary} | {}\n", status.level.word(), perfdata(status));
    if status.problems.len() > 1 {
        for problem in &status.problems {
            out.push_str(&format!("{}: {}\n", problem.level.word(), escape(&problem.line())));
        }
    }
    out
}

/// `web_local_age=600s;7200;21600;0 web_s3_age=...`: the ages with their thresholds, in
/// the performance-data format monitoring systems graph.
fn perfdata(status: &BackupStatus) -> String {
    let alerts = &status.thresholds;
    let mut data = Vec::new();
    for instance in &status.instances {
        let mut one = |what: &str, point: &Option<Point>, warn: u32, crit: u32| {
            if let Some(point) = point {
                data.push(format!(
                    "{}_{what}_age={}s;{};{};0",
                    instance.instance,
                    point.age_seconds,
                    u64::from(warn) * 3600,
                    u64::from(crit) * 3600
                ));
            }
        };
        one("local", &instance.local, alerts.local_snapshot.warning_hours, alerts.local_snapshot.critical_hours);
        if status.s3_enabled {
            one("s3", &instance.s3, alerts.s3_restore_point.warning_hours, alerts.s3_restore_point.critical_hours);
        }
    }
    data.join(" ")
}

/// A table per instance, then the problems.
fn human(status: &BackupStatus) -> String {
    let escape = |text: &str| terrarium_common::terminal::escape(text).into_owned();
    let point = |p: &Option<Point>| match p {
        Some(p) => {
            format!("{} ({} ago)", escape(&p.snapshot), human_age(time::Duration::seconds(p.age_seconds as i64)))
        }
        None => "none".to_string(),
    };
    let outcome = |o: &Option<Outcome>| match o {
        Some(o) => format!(
            "{} {} ago",
            if o.ok { "ok" } else { "FAILED" },
            human_age((status.checked_at - o.at).max(time::Duration::ZERO))
        ),
        None => "never".to_string(),
    };
    let mut out = String::new();
    for instance in &status.instances {
        out.push_str(&format!("{} ({}):\n", escape(&instance.instance), instance.level.word()));
        out.push_str(&format!("  local snapshot:   {}\n", point(&instance.local)));
        if status.s3_enabled {
            out.push_str(&format!("  S3 restore point: {}\n", point(&instance.s3)));
            out.push_str(&format!("  last export:      {}\n", outcome(&instance.last_export)));
            out.push_str(&format!("  last drill:       {}\n", outcome(&instance.last_drill)));
        }
    }
    if status.instances.is_empty() {
        out.push_str("no container datasets yet\n");
    }
    out.push_str(&format!("backups: {}\n", status.level.word()));
    for problem in &status.problems {
        out.push_str(&format!("  - {}: {}\n", problem.level.word(), escape(&problem.line())));
    }
    out
}
