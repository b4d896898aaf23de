#![allow(clippy::unwrap_used)]

use super::*;

fn now() -> OffsetDateTime {
    OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000)
}

fn ago(h: i64) -> OffsetDateTime {
    now() - time::Duration::hours(h)
}

fn outcome(at: OffsetDateTime, ok: bool) -> Outcome {
    Outcome { at, ok, instance: None, snapshot: None, error: (!ok).then(|| "S3 said no".to_string()) }
}

/// An instance created long ago, snapshotted `local_h` hours ago, exported `s3_h` hours
/// ago, drilled two days ago; every run passed.
fn instance(name: &str, local_h: i64, s3_h: i64) -> Facts {
    Facts {
        instance: name.into(),
        created: Some(ago(24 * 365)),
        local: Some(("autosnap_x".into(), ago(local_h))),
        s3: Some(("autosnap_y".into(), ago(s3_h))),
        s3_oldest: Some(ago(s3_h)),
        last_export: Some(outcome(ago(s3_h), true)),
        last_drill: Some(outcome(ago(48), true)),
    }
}

fn assess_all(s3_enabled: bool, instances: Vec<Facts>) -> BackupStatus {
    assess(Inputs { now: now(), s3_enabled, alerts: &Alerts::default(), instances })
}

fn lines(status: &BackupStatus) -> Vec<String> {
    status.problems.iter().map(|p| format!("{:?} {}", p.level, p.line())).collect()
}

#[test]
fn fresh_backups_are_ok() {
    let status = assess_all(true, vec![instance("web", 0, 10)]);
    assert_eq!(status.level, Level::Ok, "{:?}", lines(&status));
    assert_eq!(status.instances[0].local.as_ref().unwrap().age_seconds, 0);
    assert_eq!(status.instances[0].s3.as_ref().unwrap().age_seconds, 10 * 3600);
}

#[test]
fn each_age_is_a_warning_past_its_threshold_and_critical_past_the_second() {
    let status = assess_all(true, vec![instance("web", 3, 10), instance("db", 0, 40), instance("wiki", 0, 80)]);
    assert_eq!(
        lines(&status),
        [
            "Critical wiki: the newest S3 restore point (autosnap_y) is 3 d 8 h old (critical from 72 h)",
            "Warning db: the newest S3 restore point (autosnap_y) is 40 h old (warning from 36 h)",
            "Warning web: the newest local snapshot (autosnap_x) is 3 h old (warning from 2 h)",
        ]
    );
    assert_eq!(status.level, Level::Critical);
    let levels: Vec<Level> = status.instances.iter().map(|i| i.level).collect();
    assert_eq!(levels, [Level::Warning, Level::Warning, Level::Critical]);
    assert_eq!(status.level.exit_code(), 2);
}

#[test]
fn a_failed_export_or_drill_is_critical_even_when_the_ages_are_fine() {
    let mut web = instance("web", 0, 1);
    web.last_export = Some(outcome(ago(1), false));
    let mut db = instance("db", 0, 1);
    db.last_drill = Some(outcome(ago(30), false));
    let status = assess_all(true, vec![web, db]);
    assert_eq!(status.level, Level::Critical);
    let text = lines(&status).join("\n");
    assert!(text.contains("web: the last export ("), "{text}");
    assert!(text.contains("failed: S3 said no"), "{text}");
    assert!(text.contains("db: the last restore drill ("), "{text}");
    assert!(text.contains("verify --deep --instance db"), "{text}");
}

#[test]
fn a_missing_backup_is_critical_unless_the_instance_is_younger_than_the_threshold() {
    let old = Facts { instance: "old".into(), created: Some(ago(100)), ..Facts::default() };
    let new = Facts { instance: "new".into(), created: Some(now() - time::Duration::minutes(30)), ..Facts::default() };
    let status = assess(Inputs { now: now(), s3_enabled: true, alerts: &Alerts::default(), instances: vec![old, new] });
    let text = lines(&status);
    assert!(text.contains(&"Critical old: no local snapshot".to_string()), "{text:?}");
    assert!(text.contains(&"Critical old: no S3 restore point".to_string()), "{text:?}");
    assert!(!text.iter().any(|l| l.contains("new:")), "{text:?}");
}

#[test]
fn without_s3_only_the_time_machine_is_judged() {
    let mut web = instance("web", 0, 500);
    web.last_export = Some(outcome(ago(500), false));
    web.last_drill = None;
    let status = assess_all(false, vec![web]);
    assert_eq!(status.level, Level::Ok, "{:?}", lines(&status));
}

#[test]
fn the_host_is_late_for_a_drill_when_none_ran_within_the_threshold() {
    let never = |mut f: Facts| {
        f.last_drill = None;
        f
    };
    let status = assess_all(true, vec![never(instance("web", 0, 1)), never(instance("db", 0, 1))]);
    assert_eq!(lines(&status), Vec::<String>::new(), "a one-hour-old first restore point: not late yet");
    // Restore points for 20 days and no drill ever: the drill timer is not running.
    let mut web = never(instance("web", 0, 1));
    web.s3_oldest = Some(ago(20 * 24));
    let status = assess_all(true, vec![web]);
    assert_eq!(
        lines(&status),
        ["Warning no restore drill has run (terrarium-backup-verify.timer) (warning from 336 h)"]
    );
    // One instance drilled 30 days ago, the other never: the host's newest drill counts.
    let mut db = instance("db", 0, 1);
    db.last_drill = Some(outcome(ago(30 * 24), true));
    let status = assess_all(true, vec![never(instance("web", 0, 1)), db]);
    assert_eq!(lines(&status), ["Critical the newest restore drill is 30 d 0 h old (critical from 672 h)"]);
    assert_eq!(status.newest_drill.unwrap().at, ago(30 * 24));
}

#[test]
fn ages_read_as_people_say_them() {
    assert_eq!(human_age(time::Duration::minutes(45)), "45 min");
    assert_eq!(human_age(time::Duration::hours(5)), "5 h");
    assert_eq!(human_age(time::Duration::hours(75)), "3 d 3 h");
}
