use terrarium_archive::manifest::{Kind, SCHEMA_VERSION, SnapshotRef};

use super::*;
use crate::at::parse_at;

fn manifest(name: &str, guid: u64, txg: u64, base: Option<(&str, u64, u64)>) -> Manifest {
    let at = time::macros::datetime!(2026-11-28 13:00:00 UTC);
    Manifest {
        schema_version: SCHEMA_VERSION,
        host: "host1".into(),
        instance: "web".into(),
        dataset: "tank/containers/web".into(),
        snapshot: SnapshotRef { name: name.into(), guid, createtxg: txg },
        base: base.map(|(n, g, t)| SnapshotRef { name: n.into(), guid: g, createtxg: t }),
        kind: if base.is_some() { Kind::Incremental } else { Kind::Full },
        object_key: format!("host1/web/{name}.zfs.zst"),
        raw_bytes: 4000,
        compressed_bytes: 1000 + txg,
        sha256: "c".repeat(64),
        encryption: None,
        send_flags: Vec::new(),
        compression: "zstd".into(),
        zstd_level: 3,
        tool_version: "0.1.0".into(),
        started_at: at,
        finished_at: at,
    }
}

fn facts() -> RemoteFacts {
    let manifests = vec![
        manifest("autosnap_2026-11-28_10:00:00_hourly", 1, 10, None),
        manifest("autosnap_2026-11-28_11:00:00_hourly", 2, 20, Some(("autosnap_2026-11-28_10:00:00_hourly", 1, 10))),
        manifest("autosnap_2026-11-28_12:00:00_hourly", 3, 30, Some(("autosnap_2026-11-28_11:00:00_hourly", 2, 20))),
    ];
    let objects = manifests.iter().map(|m| (m.object_key.clone(), m.compressed_bytes)).collect();
    RemoteFacts {
        pool: "tank".into(),
        instance: "web".into(),
        manifests,
        objects,
        state: InstanceState::Running,
        target_exists: true,
        staging_exists: false,
        stamp: "20261128T140000Z".into(),
        unfinished: None,
        unfinished_aside_exists: false,
    }
}

fn step_names(plan: &Plan) -> Vec<&'static str> {
    plan.steps.iter().map(Step::name).collect()
}

const ASIDE: &str = "tank/terrarium-restore/web.replaced-20261128T130000Z";

#[test]
fn a_run_killed_between_the_renames_of_its_swap_is_finished_by_putting_the_original_back() {
    let mut facts = facts();
    facts.state = InstanceState::Stopped;
    facts.target_exists = false;
    facts.unfinished =
        Some(Unfinished { start: true, aside: Some(ASIDE.into()), destroy_aside: true, hand_off: false });
    facts.unfinished_aside_exists = true;
    let plan = plan_remote(&facts, &AtSpec::Newest, None, false).unwrap();
    assert_eq!(step_names(&plan), ["put-back", "receive-chain", "swap", "destroy-old", "start-instance"]);
    assert_eq!(plan.steps[0], Step::PutBack { aside: ASIDE.into(), dataset: "tank/containers/web".into() });
    // The put-back original is set aside again under this run's name, not lost.
    assert!(matches!(&plan.steps[2], Step::Swap { aside: Some(a), .. } if a.ends_with("20261128T140000Z")));
}

#[test]
fn a_run_killed_after_its_swap_has_its_set_aside_dataset_destroyed_unless_it_was_to_be_kept() {
    let mut facts = facts();
    facts.unfinished = Some(Unfinished { aside: Some(ASIDE.into()), destroy_aside: true, ..Unfinished::default() });
    facts.unfinished_aside_exists = true;
    let plan = plan_remote(&facts, &AtSpec::Newest, None, false).unwrap();
    assert_eq!(plan.steps[0], Step::DestroyOld { dataset: ASIDE.into() });
    facts.unfinished = Some(Unfinished { aside: Some(ASIDE.into()), destroy_aside: false, ..Unfinished::default() });
    let plan = plan_remote(&facts, &AtSpec::Newest, None, false).unwrap();
    assert_eq!(step_names(&plan), ["receive-chain", "stop-instance", "swap", "destroy-old", "start-instance"]);
}

#[test]
fn an_instance_a_killed_run_stopped_is_started_and_not_stopped_again() {
    let mut facts = facts();
    facts.state = InstanceState::Stopped;
    facts.unfinished = Some(Unfinished { start: true, ..Unfinished::default() });
    let plan = plan_remote(&facts, &AtSpec::Newest, None, false).unwrap();
    assert_eq!(step_names(&plan), ["receive-chain", "swap", "destroy-old", "start-instance"]);
    // Stopped by the operator (nothing owed): stays stopped.
    facts.unfinished = None;
    let plan = plan_remote(&facts, &AtSpec::Newest, None, false).unwrap();
    assert_eq!(step_names(&plan), ["receive-chain", "swap", "destroy-old"]);
}

#[test]
fn an_as_new_run_killed_after_moving_its_dataset_into_place_only_hands_off() {
    let mut facts = facts();
    facts.unfinished = Some(Unfinished { hand_off: true, ..Unfinished::default() });
    let plan = plan_remote(&facts, &AtSpec::Newest, Some("web2"), false).unwrap();
    assert_eq!(step_names(&plan), ["lxd-recover"]);
    facts.target_exists = false;
    let plan = plan_remote(&facts, &AtSpec::Newest, Some("web2"), false).unwrap();
    assert_eq!(step_names(&plan), ["receive-chain", "swap", "lxd-recover"]);
}

fn keys(plan: &Plan) -> Vec<String> {
    plan.steps
        .iter()
        .flat_map(|s| match s {
            Step::ReceiveChain { objects, .. } => objects.iter().map(|o| o.key.clone()).collect(),
            _ => vec![],
        })
        .collect()
}

#[test]
fn in_place_receives_the_whole_chain_before_stopping_and_swapping() {
    let plan = plan_remote(&facts(), &AtSpec::Newest, None, false).unwrap();
    assert_eq!(keys(&plan).len(), 3);
    let kinds: Vec<&str> = plan
        .steps
        .iter()
        .map(|s| match s {
            Step::ReceiveChain { .. } => "receive",
            Step::StopInstance { .. } => "stop",
            Step::Swap { .. } => "swap",
            Step::DestroyOld { .. } => "destroy-old",
            Step::StartInstance { .. } => "start",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["receive", "stop", "swap", "destroy-old", "start"]);
    assert!(plan.is_destructive());
    insta::assert_snapshot!(plan.render());
}

#[test]
fn a_middle_point_needs_only_its_part_of_the_chain() {
    let plan = plan_remote(&facts(), &parse_at(Some("11:00")), None, true).unwrap();
    assert_eq!(
        keys(&plan),
        [
            "host1/web/autosnap_2026-11-28_10:00:00_hourly.zfs.zst",
            "host1/web/autosnap_2026-11-28_11:00:00_hourly.zfs.zst"
        ]
    );
    assert!(
        plan.steps.contains(&Step::KeepOld { dataset: "tank/terrarium-restore/web.replaced-20261128T140000Z".into() })
    );
}

#[test]
fn timestamps_use_the_time_in_sanoid_names() {
    assert_eq!(snapshot_time("autosnap_2026-11-28_11:00:00_hourly"), Some(1_795_824_000 + 11 * 3600));
    assert_eq!(snapshot_time("manual"), None);
    let plan = plan_remote(&facts(), &parse_at(Some("2026-11-28T11:30")), None, false).unwrap();
    assert_eq!(plan.restore_point.snapshot, "autosnap_2026-11-28_11:00:00_hourly");
}

#[test]
fn a_missing_manifest_breaks_the_chain_and_is_named() {
    let mut facts = facts();
    facts.manifests.remove(1);
    let err = plan_remote(&facts, &AtSpec::Newest, None, false).unwrap_err();
    assert!(matches!(err, RestoreError::BrokenChain { .. }), "{err}");
    assert!(err.to_string().contains("broken at autosnap_2026-11-28_11:00:00_hourly"), "{err}");
}

#[test]
fn a_missing_or_short_object_breaks_the_chain_before_anything_is_touched() {
    let mut missing = facts();
    missing.objects.remove("host1/web/autosnap_2026-11-28_10:00:00_hourly.zfs.zst");
    let err = plan_remote(&missing, &AtSpec::Newest, None, false).unwrap_err();
    assert!(err.to_string().contains("autosnap_2026-11-28_10:00:00_hourly.zfs.zst of restore point autosnap_2026-11-28_10:00:00_hourly is missing"), "{err}");
    let mut short = facts();
    short.objects.insert("host1/web/autosnap_2026-11-28_12:00:00_hourly.zfs.zst".into(), 5);
    let err = plan_remote(&short, &AtSpec::Newest, None, false).unwrap_err();
    assert!(matches!(err, RestoreError::BrokenChain { .. }) && err.to_string().contains("has 5 bytes"), "{err}");
}

#[test]
fn a_fresh_host_has_nothing_to_set_aside_and_stale_staging_goes_first() {
    let mut fresh = facts();
    fresh.target_exists = false;
    fresh.staging_exists = true;
    fresh.state = InstanceState::Unknown;
    let plan = plan_remote(&fresh, &AtSpec::Newest, None, false).unwrap();
    assert_eq!(plan.steps[0], Step::DestroyStale { dataset: "tank/terrarium-restore/web.staging".into() });
    assert!(plan.steps.contains(&Step::Swap {
        staging: "tank/terrarium-restore/web.staging".into(),
        dataset: "tank/containers/web".into(),
        aside: None
    }));
    assert!(!plan.is_destructive());
}

#[test]
fn as_new_builds_the_new_dataset_and_hands_off() {
    let plan = plan_remote(&facts(), &AtSpec::Newest, Some("web2"), false).unwrap();
    assert_eq!(plan.steps.len(), 3);
    assert_eq!(
        plan.steps[1],
        Step::Swap {
            staging: "tank/terrarium-restore/web2.staging".into(),
            dataset: "tank/containers/web2".into(),
            aside: None
        }
    );
    assert_eq!(plan.steps[2], Step::LxdRecover { instance: "web2".into(), dataset: "tank/containers/web2".into() });
}

#[test]
fn no_manifests_says_so() {
    let mut empty = facts();
    empty.manifests.clear();
    let err = plan_remote(&empty, &AtSpec::Newest, None, false).unwrap_err();
    assert!(err.to_string().contains("web has no restore points in S3"), "{err}");
}
