//! Planning a restore from the local snapshots (the time machine). Pure: the facts are
//! read by the caller.

use crate::args::Source;
use crate::at::{AtSpec, RestorePoint, resolve};
use crate::error::RestoreError;
use crate::instance::InstanceState;
use crate::names::container_dataset;
use crate::plan::{Plan, Step};

/// What was read before planning a local restore.
#[derive(Debug, Clone)]
pub struct LocalFacts {
    pub pool: String,
    pub instance: String,
    /// The snapshots of `<pool>/containers/<instance>`, any order.
    pub snapshots: Vec<RestorePoint>,
    /// The short names of the snapshots that carry terrarium-backup's hold.
    pub held: Vec<String>,
    pub state: InstanceState,
}

/// Plan rolling back in place, or cloning to `as_new` (whose absence the caller checked).
pub fn plan_local(facts: &LocalFacts, at: &AtSpec, as_new: Option<&str>) -> Result<Plan, RestoreError> {
    let dataset = container_dataset(&facts.pool, &facts.instance);
    let point = resolve(&facts.instance, &facts.snapshots, at).map_err(|err| match err {
        crate::at::AtError::NoPoints { instance, .. } => {
            crate::at::AtError::NoPoints { instance, where_: format!(" (no snapshots of {dataset})") }
        }
        other => other,
    })?;
    let mut steps = Vec::new();
    match as_new {
        None => {
            let mut newer: Vec<&RestorePoint> =
                facts.snapshots.iter().filter(|s| s.createtxg > point.createtxg).collect();
            newer.sort_by_key(|s| s.createtxg);
            let running = facts.state == InstanceState::Running;
            if running {
                steps.push(Step::StopInstance { instance: facts.instance.clone() });
            }
            steps.push(Step::Rollback {
                dataset: dataset.clone(),
                snapshot: point.snapshot.clone(),
                destroys: newer.iter().map(|s| format!("{dataset}@{}", s.snapshot)).collect(),
                // The export holds its last snapshot; a rollback across it must release it.
                releases: newer
                    .iter()
                    .filter(|s| facts.held.contains(&s.snapshot))
                    .map(|s| format!("{dataset}@{}", s.snapshot))
                    .collect(),
            });
            if running {
                steps.push(Step::StartInstance { instance: facts.instance.clone() });
            }
        }
        Some(new) => {
            let target = container_dataset(&facts.pool, new);
            steps.push(Step::Copy { snapshot: format!("{dataset}@{}", point.snapshot), dataset: target.clone() });
            steps.push(Step::LxdRecover { instance: new.to_string(), dataset: target });
        }
    }
    Ok(Plan {
        instance: facts.instance.clone(),
        source: Source::Local,
        target_instance: as_new.unwrap_or(&facts.instance).to_string(),
        in_place: as_new.is_none(),
        restore_point: point.clone(),
        steps,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::at::parse_at;

    fn facts(state: InstanceState) -> LocalFacts {
        let point = |name: &str, txg: u64| RestorePoint {
            snapshot: name.into(),
            guid: txg + 100,
            createtxg: txg,
            created: 1_795_824_000 + txg as i64 * 60,
        };
        LocalFacts {
            pool: "tank".into(),
            instance: "web".into(),
            snapshots: vec![point("c", 30), point("a", 10), point("b", 20)],
            held: vec!["b".into()],
            state,
        }
    }

    #[test]
    fn rolling_back_lists_exactly_the_newer_snapshots_and_stops_a_running_instance() {
        let plan = plan_local(&facts(InstanceState::Running), &parse_at(Some("a")), None).unwrap();
        assert_eq!(
            plan.steps,
            vec![
                Step::StopInstance { instance: "web".into() },
                Step::Rollback {
                    dataset: "tank/containers/web".into(),
                    snapshot: "a".into(),
                    destroys: vec!["tank/containers/web@b".into(), "tank/containers/web@c".into()],
                    releases: vec!["tank/containers/web@b".into()],
                },
                Step::StartInstance { instance: "web".into() },
            ]
        );
        assert!(plan.is_destructive());
    }

    #[test]
    fn a_stopped_instance_stays_stopped_and_the_newest_destroys_nothing() {
        let plan = plan_local(&facts(InstanceState::Stopped), &AtSpec::Newest, None).unwrap();
        assert_eq!(
            plan.steps,
            vec![Step::Rollback {
                dataset: "tank/containers/web".into(),
                snapshot: "c".into(),
                destroys: vec![],
                releases: vec![]
            }]
        );
    }

    #[test]
    fn a_hold_on_the_target_or_older_is_kept() {
        let plan = plan_local(&facts(InstanceState::Stopped), &parse_at(Some("b")), None).unwrap();
        assert!(
            matches!(&plan.steps[..], [Step::Rollback { releases, destroys, .. }] if releases.is_empty() && destroys.len() == 1),
            "{:?}",
            plan.steps
        );
    }

    #[test]
    fn as_new_copies_and_hands_off() {
        let plan = plan_local(&facts(InstanceState::Running), &parse_at(Some("b")), Some("web2")).unwrap();
        assert_eq!(
            plan.steps,
            vec![
                Step::Copy { snapshot: "tank/containers/web@b".into(), dataset: "tank/containers/web2".into() },
                Step::LxdRecover { instance: "web2".into(), dataset: "tank/containers/web2".into() },
            ]
        );
        assert!(!plan.is_destructive());
        assert_eq!(plan.target_instance, "web2");
    }

    #[test]
    fn no_snapshots_names_the_dataset() {
        let mut empty = facts(InstanceState::Stopped);
        empty.snapshots.clear();
        let err = plan_local(&empty, &AtSpec::Newest, None).unwrap_err();
        assert!(err.to_string().contains("no snapshots of tank/containers/web"), "{err}");
    }
}
