//! The metrics file of each backup command (docs/backup.md, "Metrics"):
//! `terrarium_backup_<command>.prom` in node-exporter's textfile directory.
//!
//! The commands fill an [`Observed`] as they go (so a run that fails half way still
//! reports what it got to); [`families`] turns it and the run's end into metrics
//! (pure); [`publish`] reads the previous file's last success and writes the new one.

use std::collections::BTreeMap;

use terrarium_common::Exit;
use terrarium_common::metrics::{LAST_SUCCESS, Metrics, Run, previous_value, record_run, unix_seconds};
use time::OffsetDateTime;

use crate::context::Context;

const PREFIX: &str = "terrarium_backup";

/// One instance's export in this run.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Exported {
    pub ok: bool,
    /// Bytes of the `zfs send` stream and of what was stored (0 when nothing was sent).
    pub raw_bytes: u64,
    pub compressed_bytes: u64,
    /// How long its send and upload took (0 when nothing was sent).
    pub seconds: f64,
}

/// What a command saw of each instance, by instance name.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Observed {
    pub exported: BTreeMap<String, Exported>,
    /// When the export of the instance's newest restore point started (the age
    /// `status` judges against `backup.alerts.s3_restore_point`).
    pub newest_restore_point: BTreeMap<String, OffsetDateTime>,
    /// prune: the restore points it deleted.
    pub pruned: BTreeMap<String, u64>,
    /// verify: whether every chain and object checked out (and the drill, if any).
    pub verified: BTreeMap<String, bool>,
    /// verify --deep: whether the restore drill passed.
    pub drilled: BTreeMap<String, bool>,
}

fn flag(ok: bool) -> f64 {
    if ok { 1.0 } else { 0.0 }
}

/// The families of `command`'s file (pure). Every backup command counts only exit 0 as
/// a success: a partial export left an instance without its restore point.
pub(crate) fn families(command: &str, observed: &Observed, run: &Run, previous_success: Option<f64>) -> Metrics {
    let mut metrics = Metrics::new();
    let labels = [("command", command)];
    record_run(&mut metrics, PREFIX, &labels, run, previous_success);
    for (instance, at) in &observed.newest_restore_point {
        let labels = [("command", command), ("instance", instance.as_str())];
        metrics
            .gauge(
                "terrarium_backup_restore_point_age_seconds",
                "Age of the instance's newest S3 restore point when the command last looked (since its export started).",
            )
            .with(&labels, (run.finished_at - *at).as_seconds_f64().max(0.0));
        metrics
            .gauge(
                "terrarium_backup_restore_point_timestamp_seconds",
                "When the export of the instance's newest S3 restore point started, in seconds since the Unix epoch.",
            )
            .with(&labels, unix_seconds(*at));
    }
    for (instance, export) in &observed.exported {
        let labels = [("instance", instance.as_str())];
        metrics
            .gauge(
                "terrarium_backup_export_instance_success",
                "Whether the instance's export in the last run succeeded.",
            )
            .with(&labels, flag(export.ok));
        metrics
            .gauge(
                "terrarium_backup_export_last_raw_bytes",
                "Bytes of the zfs send stream the last run exported for the instance (0: nothing new).",
            )
            .with(&labels, export.raw_bytes as f64);
        metrics
            .gauge(
                "terrarium_backup_export_last_compressed_bytes",
                "Bytes the last run stored in S3 for the instance, after zstd (0: nothing new).",
            )
            .with(&labels, export.compressed_bytes as f64);
        metrics
            .gauge(
                "terrarium_backup_export_last_duration_seconds",
                "Seconds the last run spent sending and uploading the instance's stream.",
            )
            .with(&labels, export.seconds);
    }
    for (instance, deleted) in &observed.pruned {
        metrics
            .gauge("terrarium_backup_prune_last_deleted_restore_points", "Restore points the last prune deleted.")
            .with(&[("instance", instance.as_str())], *deleted as f64);
    }
    for (instance, ok) in &observed.verified {
        metrics
            .gauge(
                "terrarium_backup_verify_instance_success",
                "Whether every chain and object of the instance checked out in the last verify.",
            )
            .with(&[("instance", instance.as_str())], flag(*ok));
    }
    for (instance, ok) in &observed.drilled {
        metrics
            .gauge(
                "terrarium_backup_verify_drill_success",
                "Whether the instance's restore drill passed, in the last verify --deep that drilled it.",
            )
            .with(&[("instance", instance.as_str())], flag(*ok));
    }
    metrics
}

/// Write `terrarium_backup_<command>.prom` for a run that ended with `exit` after
/// `seconds` (never an error: see [`terrarium_common::metrics::publish`]).
pub(crate) fn publish(ctx: &Context, command: &str, observed: &Observed, exit: Exit, seconds: f64) {
    let Some(dir) = ctx.config.metrics.textfile_dir() else {
        return;
    };
    let path = ctx.paths.metrics_file(dir, &format!("{PREFIX}_{command}"));
    let previous = previous_value(&path, &format!("{PREFIX}{LAST_SUCCESS}"), &[("command", command)]);
    let run = Run { finished_at: crate::cmd::now(), seconds, exit, success: exit == Exit::Success };
    terrarium_common::metrics::publish(&path, &families(command, observed, &run, previous));
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use terrarium_common::metrics::{parse, render};

    const AT: OffsetDateTime = time::macros::datetime!(2026-12-01 00:00:00 UTC);

    fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        parse(text).unwrap().into_iter().find_map(|s| {
            let same = s.name == name
                && s.labels.len() == labels.len()
                && s.labels.iter().zip(labels).all(|((n, v), (wn, wv))| n == wn && v == wv);
            same.then_some(s.value)
        })
    }

    #[test]
    fn an_export_reports_each_instance_and_the_run() {
        let mut observed = Observed::default();
        observed
            .exported
            .insert("web".into(), Exported { ok: true, raw_bytes: 5000, compressed_bytes: 1200, seconds: 1.5 });
        observed.exported.insert("db".into(), Exported { ok: false, raw_bytes: 0, compressed_bytes: 0, seconds: 0.0 });
        observed.newest_restore_point.insert("web".into(), AT - time::Duration::seconds(90));
        let run = Run { finished_at: AT, seconds: 3.0, exit: Exit::Partial, success: false };
        let text = render(&families("export", &observed, &run, Some(42.0)));
        let export = [("command", "export")];
        assert_eq!(value(&text, "terrarium_backup_last_run_success", &export), Some(0.0));
        assert_eq!(value(&text, "terrarium_backup_last_run_exit_code", &export), Some(3.0));
        assert_eq!(value(&text, "terrarium_backup_last_success_timestamp_seconds", &export), Some(42.0));
        assert_eq!(value(&text, "terrarium_backup_export_last_raw_bytes", &[("instance", "web")]), Some(5000.0));
        assert_eq!(value(&text, "terrarium_backup_export_last_compressed_bytes", &[("instance", "web")]), Some(1200.0));
        assert_eq!(value(&text, "terrarium_backup_export_instance_success", &[("instance", "db")]), Some(0.0));
        let web = [("command", "export"), ("instance", "web")];
        assert_eq!(value(&text, "terrarium_backup_restore_point_age_seconds", &web), Some(90.0));
        assert_eq!(
            value(&text, "terrarium_backup_restore_point_timestamp_seconds", &web),
            Some(unix_seconds(AT) - 90.0)
        );
        assert!(!text.contains("prune") && !text.contains("verify"), "{text}");
    }

    #[test]
    fn prune_and_verify_report_their_own_families() {
        let mut observed = Observed::default();
        observed.pruned.insert("web".into(), 2);
        observed.verified.insert("web".into(), true);
        observed.drilled.insert("web".into(), false);
        let run = Run { finished_at: AT, seconds: 1.0, exit: Exit::Success, success: true };
        let text = render(&families("verify", &observed, &run, None));
        assert_eq!(
            value(&text, "terrarium_backup_prune_last_deleted_restore_points", &[("instance", "web")]),
            Some(2.0)
        );
        assert_eq!(value(&text, "terrarium_backup_verify_instance_success", &[("instance", "web")]), Some(1.0));
        assert_eq!(value(&text, "terrarium_backup_verify_drill_success", &[("instance", "web")]), Some(0.0));
        assert_eq!(
            value(&text, "terrarium_backup_last_success_timestamp_seconds", &[("command", "verify")]),
            Some(unix_seconds(AT))
        );
    }

    #[test]
    fn every_family_is_documented_in_backup_md() {
        let mut observed = Observed::default();
        let export = Exported { ok: true, raw_bytes: 1, compressed_bytes: 1, seconds: 1.0 };
        observed.exported.insert("web".into(), export);
        observed.newest_restore_point.insert("web".into(), AT);
        observed.pruned.insert("web".into(), 1);
        observed.verified.insert("web".into(), true);
        observed.drilled.insert("web".into(), true);
        let run = Run { finished_at: AT, seconds: 1.0, exit: Exit::Success, success: true };
        let text = render(&families("export", &observed, &run, None));
        let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/backup.md")).unwrap();
        let names: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("# TYPE ")?.split(' ').next()).collect();
        assert_eq!(names.len(), 14, "{text}");
        for name in names {
            assert!(docs.contains(&format!("| `{name}` |")), "{name} is missing from docs/backup.md's Metrics table");
        }
    }
}
