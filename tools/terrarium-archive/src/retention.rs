//! S3 retention: which restore points `prune` keeps, chain-aware.
//!
//! Kept: the `keep_last` newest restore points of an instance and every one younger
//! than `keep_days`. Also kept: every stream a kept restore point's chain needs (its
//! base, the base's base, ... back to the full). Everything else is deleted. So a
//! deleted stream is never a link of a kept chain.

use std::collections::HashSet;

use time::OffsetDateTime;

use crate::chain::Catalog;
use crate::manifest::Manifest;

/// The retention policy (from `backup.s3_retention`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub keep_last: u32,
    pub keep_days: u32,
}

/// What prune does for one instance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrunePlan {
    /// Restore points kept because the policy selects them.
    pub selected: Vec<Manifest>,
    /// Restore points kept only because a selected chain needs them.
    pub needed: Vec<Manifest>,
    /// Restore points whose stream and manifest are deleted.
    pub delete: Vec<Manifest>,
}

/// Plan the pruning of one instance's restore points.
pub fn plan(manifests: &[Manifest], policy: Policy, now: OffsetDateTime) -> PrunePlan {
    let catalog = Catalog::new(manifests.iter().cloned());
    let points = catalog.restore_points();
    let cutoff = now - time::Duration::days(i64::from(policy.keep_days));
    let newest_first: Vec<&Manifest> = points.iter().rev().copied().collect();
    let selected: Vec<&Manifest> = newest_first
        .iter()
        .enumerate()
        .filter(|(index, m)| *index < policy.keep_last as usize || m.finished_at >= cutoff)
        .map(|(_, m)| *m)
        .collect();
    let selected_guids: HashSet<u64> = selected.iter().map(|m| m.snapshot.guid).collect();
    let needed_guids: HashSet<u64> = selected.iter().flat_map(|m| catalog.needed_by(m)).collect();
    // A kept chain with a link whose manifest is not here (not listed, deleted by hand)
    // may need any older stream: which ones, only the missing manifest could tell.
    // Deleting by what is visible would break that chain, so keep everything.
    let missing_link = needed_guids.iter().find(|guid| catalog.get(**guid).is_none());
    if let Some(guid) = missing_link {
        let instance = points.first().map_or("", |m| m.instance.as_str());
        log::warn!(instance = instance, missing_guid = guid.to_string().as_str(); "a kept restore point's chain needs a snapshot whose manifest is not in S3; deleting nothing for this instance (run verify)");
    }
    let mut result = PrunePlan::default();
    for point in points {
        if selected_guids.contains(&point.snapshot.guid) {
            result.selected.push(point.clone());
        } else if needed_guids.contains(&point.snapshot.guid) || missing_link.is_some() {
            result.needed.push(point.clone());
        } else {
            result.delete.push(point.clone());
        }
    }
    // Duplicates of a snapshot (an older export of the same GUID) are superseded: the
    // catalog keeps the newest; delete older copies only if their key differs.
    let kept_keys: HashSet<&str> =
        result.selected.iter().chain(&result.needed).map(|m| m.object_key.as_str()).collect();
    let listed: HashSet<(u64, &str)> =
        catalog.restore_points().iter().map(|m| (m.snapshot.guid, m.object_key.as_str())).collect();
    for manifest in manifests {
        if missing_link.is_none()
            && !listed.contains(&(manifest.snapshot.guid, manifest.object_key.as_str()))
            && !kept_keys.contains(manifest.object_key.as_str())
        {
            result.delete.push(manifest.clone());
        }
    }
    result
}

/// Whether the chain's full is old enough that the next export should start a new chain.
pub fn full_is_due(full_finished_at: OffsetDateTime, full_every_days: u32, now: OffsetDateTime) -> bool {
    now - full_finished_at >= time::Duration::days(i64::from(full_every_days))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::manifest::{Kind, SnapshotRef};
    use proptest::prelude::*;

    const T0: OffsetDateTime = time::macros::datetime!(2026-01-01 00:00:00 UTC);

    fn point(i: u64, base: Option<u64>, day: i64) -> Manifest {
        let mut m = crate::manifest::sample(if base.is_some() { Kind::Incremental } else { Kind::Full });
        m.snapshot = SnapshotRef { name: format!("s{i}"), guid: 1000 + i, createtxg: 10 * (i + 1) };
        m.base = base.map(|b| SnapshotRef { name: format!("s{b}"), guid: 1000 + b, createtxg: 10 * (b + 1) });
        m.object_key = format!("h/web/s{i}.zfs.zst");
        m.started_at = T0 + time::Duration::days(day);
        m.finished_at = m.started_at;
        m
    }

    #[test]
    fn keeps_the_newest_and_their_bases() {
        // s0 full, s1..s4 incrementals on the previous; s5 full, s6 on s5.
        let mut chain: Vec<Manifest> = (0..5).map(|i| point(i, i.checked_sub(1), i as i64)).collect();
        chain.push(point(5, None, 5));
        chain.push(point(6, Some(5), 6));
        let plan = plan(&chain, Policy { keep_last: 3, keep_days: 0 }, T0 + time::Duration::days(100));
        let names = |v: &[Manifest]| v.iter().map(|m| m.snapshot.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&plan.selected), ["s4", "s5", "s6"]);
        assert_eq!(names(&plan.needed), ["s0", "s1", "s2", "s3"]);
        assert!(plan.delete.is_empty());
        let plan = super::plan(&chain, Policy { keep_last: 2, keep_days: 0 }, T0 + time::Duration::days(100));
        assert_eq!(names(&plan.delete), ["s0", "s1", "s2", "s3", "s4"]);
    }

    #[test]
    fn a_kept_chain_with_a_missing_manifest_deletes_nothing() {
        // s0 full, s1..s4 incrementals; s2's manifest is not seen (a listing that left
        // it out). s4 and s3 are kept; s3 needs s2, which needs s1 and s0.
        let chain: Vec<Manifest> = (0..5).filter(|i| *i != 2).map(|i| point(i, i.checked_sub(1), i as i64)).collect();
        let plan = plan(&chain, Policy { keep_last: 2, keep_days: 0 }, T0 + time::Duration::days(100));
        assert!(plan.delete.is_empty(), "{:?}", plan.delete);
        assert_eq!(plan.selected.len() + plan.needed.len(), 4);
    }

    #[test]
    fn keeps_everything_younger_than_keep_days() {
        let chain: Vec<Manifest> = (0..5).map(|i| point(i, None, i as i64)).collect();
        let plan = plan(&chain, Policy { keep_last: 1, keep_days: 2 }, T0 + time::Duration::days(4));
        assert_eq!(plan.selected.len(), 3, "days 2, 3, 4");
        assert_eq!(plan.delete.len(), 2);
    }

    #[test]
    fn a_full_is_due_after_full_every_days() {
        assert!(!full_is_due(T0, 30, T0 + time::Duration::days(29)));
        assert!(full_is_due(T0, 30, T0 + time::Duration::days(30)));
    }

    /// Random histories: each export is a full or an incremental on an earlier export,
    /// some manifests are already missing (a broken chain), random policy and clock.
    fn history() -> impl Strategy<Value = (Vec<Manifest>, Policy, i64)> {
        (1usize..25, any::<u64>(), 1u32..8, 0u32..20, 0i64..40).prop_map(
            |(len, seed, keep_last, keep_days, now_day)| {
                let mut rng = seed;
                let mut next = move || {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    rng
                };
                let mut all = Vec::new();
                for i in 0..len as u64 {
                    let base = if i == 0 || next() % 4 == 0 { None } else { Some(i - 1 - next() % i.min(3)) };
                    all.push(point(i, base, (i as i64) + (next() % 2) as i64));
                }
                let present: Vec<Manifest> = all.into_iter().filter(|_| next() % 10 != 0).collect();
                (present, Policy { keep_last, keep_days }, now_day)
            },
        )
    }

    proptest! {
        #[test]
        fn prune_never_breaks_a_kept_chain((manifests, policy, now_day) in history()) {
            let before = Catalog::new(manifests.clone());
            let plan = plan(&manifests, policy, T0 + time::Duration::days(now_day));
            let after = Catalog::new(plan.selected.iter().chain(&plan.needed).cloned());
            // Nothing is lost or invented.
            prop_assert_eq!(plan.selected.len() + plan.needed.len() + plan.delete.len(), manifests.len());
            // Every selected restore point that was restorable still is, with the same chain.
            for point in &plan.selected {
                if let Ok(chain) = before.chain_of(point) {
                    prop_assert_eq!(after.chain_of(point).ok(), Some(chain));
                }
            }
            // Nothing deleted is a link of a kept chain.
            for deleted in &plan.delete {
                for kept in plan.selected.iter() {
                    prop_assert!(!before.needed_by(kept).contains(&deleted.snapshot.guid));
                }
            }
            // The newest keep_last points are always selected.
            let newest: Vec<u64> = before.restore_points().iter().rev().take(policy.keep_last as usize).map(|m| m.snapshot.guid).collect();
            for guid in newest {
                prop_assert!(plan.selected.iter().any(|m| m.snapshot.guid == guid));
            }
        }
    }
}
