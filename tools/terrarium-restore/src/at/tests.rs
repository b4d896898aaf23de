use proptest::prelude::*;

use super::*;

/// 2026-11-28 00:00:00 UTC.
const DAY: i64 = 1_795_824_000;

fn point(snapshot: &str, txg: u64, created: i64) -> RestorePoint {
    RestorePoint { snapshot: snapshot.to_string(), guid: txg * 1000 + 7, createtxg: txg, created }
}

fn sanoid_points() -> Vec<RestorePoint> {
    vec![
        point("autosnap_2026-11-28_10:00:01_hourly", 10, DAY + 10 * 3600 + 1),
        point("autosnap_2026-11-28_11:00:01_hourly", 11, DAY + 11 * 3600 + 1),
        point("autosnap_2026-11-28_12:00:01_hourly", 12, DAY + 12 * 3600 + 1),
        point("autosnap_2026-11-28_12:15:01_frequently", 13, DAY + 12 * 3600 + 15 * 60 + 1),
        point("before-upgrade", 14, DAY + 13 * 3600),
    ]
}

fn chosen(spec: Option<&str>) -> Result<String, AtError> {
    let points = sanoid_points();
    resolve("web", &points, &parse_at(spec)).map(|p| p.snapshot.clone())
}

#[test]
fn the_newest_point_is_the_default() {
    assert_eq!(chosen(None).unwrap(), "before-upgrade");
    assert_eq!(chosen(Some("  ")).unwrap(), "before-upgrade");
}

#[test]
fn timestamps_and_fragments_are_told_apart() {
    assert_eq!(parse_at(Some("2026-11-28")), AtSpec::By { text: "2026-11-28".into(), until: DAY + 86_399 });
    assert_eq!(
        parse_at(Some("2026-11-28T12:00")),
        AtSpec::By { text: "2026-11-28T12:00".into(), until: DAY + 12 * 3600 + 59 }
    );
    assert_eq!(
        parse_at(Some("2026-11-28 12")),
        AtSpec::By { text: "2026-11-28 12".into(), until: DAY + 13 * 3600 - 1 }
    );
    assert_eq!(
        parse_at(Some("2026-11-28T12:00:05Z")),
        AtSpec::By { text: "2026-11-28T12:00:05Z".into(), until: DAY + 12 * 3600 + 5 }
    );
    assert_eq!(
        parse_at(Some("2026-11-28T13:00:00+01:00")),
        AtSpec::By { text: "2026-11-28T13:00:00+01:00".into(), until: DAY + 12 * 3600 }
    );
    // sanoid's own spelling (underscore) is a fragment of the name, not a time.
    assert_eq!(parse_at(Some("2026-11-28_12:00")), AtSpec::Fragment("2026-11-28_12:00".into()));
    assert_eq!(parse_at(Some("hourly")), AtSpec::Fragment("hourly".into()));
    assert_eq!(parse_at(Some("2026-13-40")), AtSpec::Fragment("2026-13-40".into()));
}

#[test]
fn a_timestamp_takes_the_newest_point_within_its_precision() {
    // 12:00 covers the snapshot taken at 12:00:01.
    assert_eq!(chosen(Some("2026-11-28T12:00")).unwrap(), "autosnap_2026-11-28_12:00:01_hourly");
    // To the second, 12:00:00 is before it.
    assert_eq!(chosen(Some("2026-11-28T12:00:00Z")).unwrap(), "autosnap_2026-11-28_11:00:01_hourly");
    assert_eq!(chosen(Some("2026-11-28 12")).unwrap(), "autosnap_2026-11-28_12:15:01_frequently");
    assert_eq!(chosen(Some("2026-11-28")).unwrap(), "before-upgrade");
    assert_eq!(chosen(Some("2027-01-01")).unwrap(), "before-upgrade");
}

#[test]
fn a_timestamp_before_every_point_names_the_oldest_ones() {
    let err = chosen(Some("2026-11-27")).unwrap_err();
    let AtError::NoMatch { nearest, .. } = &err else { panic!("{err:?}") };
    assert_eq!(nearest.len(), 3);
    assert!(nearest[0].starts_with("autosnap_2026-11-28_10:00:01_hourly (2026-11-28 10:00:01 UTC)"), "{nearest:?}");
    assert!(err.to_string().contains("no restore point of web matches --at \"2026-11-27\""), "{err}");
}

#[test]
fn fragments_match_one_name_or_say_which() {
    assert_eq!(chosen(Some("12:15")).unwrap(), "autosnap_2026-11-28_12:15:01_frequently");
    assert_eq!(chosen(Some("upgrade")).unwrap(), "before-upgrade");
    let err = chosen(Some("hourly")).unwrap_err();
    let AtError::Ambiguous { matches, .. } = &err else { panic!("{err:?}") };
    assert_eq!(matches.len(), 3);
    assert!(err.to_string().contains("matches 3 restore points of web"), "{err}");
}

#[test]
fn an_exact_name_wins_over_longer_names_containing_it() {
    let points = vec![point("daily", 1, DAY), point("daily-2", 2, DAY + 1)];
    assert_eq!(resolve("web", &points, &parse_at(Some("daily"))).unwrap().snapshot, "daily");
}

#[test]
fn a_missing_fragment_names_the_most_similar_points() {
    let err = chosen(Some("before-upgrad3")).unwrap_err();
    let AtError::NoMatch { nearest, .. } = &err else { panic!("{err:?}") };
    assert!(nearest[0].starts_with("before-upgrade "), "{nearest:?}");
}

#[test]
fn no_points_at_all_is_its_own_error() {
    assert!(matches!(resolve("web", &[], &AtSpec::Newest), Err(AtError::NoPoints { .. })));
}

#[test]
fn equal_times_in_one_txg_are_one_state_but_across_txgs_ambiguous() {
    let same_txg = vec![point("a_hourly", 5, DAY), point("a_daily", 5, DAY)];
    assert!(resolve("web", &same_txg, &parse_at(Some("2026-11-28"))).is_ok());
    let two_txgs = vec![point("a_hourly", 5, DAY), point("b_daily", 6, DAY)];
    assert!(matches!(resolve("web", &two_txgs, &parse_at(Some("2026-11-28"))), Err(AtError::Ambiguous { .. })));
}

fn arbitrary_points() -> impl Strategy<Value = Vec<RestorePoint>> {
    prop::collection::vec(("[a-z0-9_:-]{1,12}", 0i64..500_000), 1..12).prop_map(|raw| {
        let mut seen = std::collections::BTreeSet::new();
        raw.into_iter()
            .filter(|(name, _)| seen.insert(name.clone()))
            .enumerate()
            .map(|(i, (name, offset))| point(&name, i as u64 + 1, DAY + offset))
            .collect()
    })
}

proptest! {
    #[test]
    fn a_chosen_point_always_satisfies_the_spec(points in arbitrary_points(), fragment in "[a-z0-9_:-]{1,4}", until in 0i64..600_000) {
        let spec = AtSpec::Fragment(fragment.clone());
        match resolve("i", &points, &spec) {
            Ok(p) => {
                prop_assert!(p.snapshot.contains(&fragment));
                let exact = points.iter().any(|q| q.snapshot == fragment);
                let containing = points.iter().filter(|q| q.snapshot.contains(&fragment)).count();
                prop_assert!(exact || containing == 1);
            }
            Err(AtError::Ambiguous { matches, .. }) => {
                prop_assert!(matches.len() >= 2);
                prop_assert!(points.iter().all(|q| q.snapshot != fragment));
            }
            Err(AtError::NoMatch { nearest, .. }) => {
                prop_assert!(points.iter().all(|q| !q.snapshot.contains(&fragment)));
                prop_assert_eq!(nearest.len(), points.len().min(3));
            }
            Err(other) => prop_assert!(false, "{other:?}"),
        }
        let by = AtSpec::By { text: "t".into(), until: DAY + until };
        match resolve("i", &points, &by) {
            Ok(p) => {
                prop_assert!(p.created <= DAY + until);
                prop_assert!(points.iter().all(|q| q.created <= p.created || q.created > DAY + until));
            }
            Err(AtError::NoMatch { .. }) => prop_assert!(points.iter().all(|q| q.created > DAY + until)),
            Err(AtError::Ambiguous { matches, .. }) => prop_assert!(matches.len() >= 2),
            Err(other) => prop_assert!(false, "{other:?}"),
        }
    }
}
