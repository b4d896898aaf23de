//! Planning a restore from the S3 export. Pure: manifests, the object listing and the
//! local state are read by the caller. The whole chain is validated here, before
//! anything is touched.

use std::collections::BTreeMap;

use terrarium_archive::chain::{Catalog, check_objects};
use terrarium_archive::manifest::Manifest;
use time::OffsetDateTime;

use crate::args::Source;
use crate::at::{AtError, AtSpec, RestorePoint, resolve};
use crate::error::RestoreError;
use crate::instance::InstanceState;
use crate::names::{aside_dataset, container_dataset, staging_dataset};
use crate::plan::{ChainObject, Plan, Step};
use crate::unfinished::Unfinished;

/// What was read before planning an S3 restore.
#[derive(Debug, Clone)]
pub struct RemoteFacts {
    pub pool: String,
    pub instance: String,
    /// The instance's manifests (any order).
    pub manifests: Vec<Manifest>,
    /// Sizes of the objects under the instance's prefix.
    pub objects: BTreeMap<String, u64>,
    /// LXD's view of the instance restored in place (unused for `--as-new`).
    pub state: InstanceState,
    /// Whether the dataset that will be replaced (or created) exists now.
    pub target_exists: bool,
    /// Whether a staging dataset from an interrupted run exists.
    pub staging_exists: bool,
    /// `YYYYMMDDTHHMMSSZ` of this run, for the set-aside name.
    pub stamp: String,
    /// What a killed earlier run of this restore still owes (see [`crate::unfinished`]),
    /// and whether the dataset it set aside still exists.
    pub unfinished: Option<Unfinished>,
    pub unfinished_aside_exists: bool,
}

/// The restore points the manifests describe.
pub fn restore_points(manifests: &[Manifest]) -> Vec<RestorePoint> {
    Catalog::new(manifests.iter().cloned()).restore_points().into_iter().map(point_of).collect()
}

fn point_of(manifest: &Manifest) -> RestorePoint {
    RestorePoint {
        snapshot: manifest.snapshot.name.clone(),
        guid: manifest.snapshot.guid,
        createtxg: manifest.snapshot.createtxg,
        created: snapshot_time(&manifest.snapshot.name).unwrap_or(manifest.started_at.unix_timestamp()),
    }
}

/// When the snapshot was taken: from a sanoid name (`autosnap_2026-11-28_12:00:01_hourly`),
/// since manifests record when the export ran, which may be hours later.
pub fn snapshot_time(name: &str) -> Option<i64> {
    let rest = name.strip_prefix("autosnap_")?;
    let stamp = rest.get(..19)?;
    let format = time::macros::format_description!("[year]-[month]-[day]_[hour]:[minute]:[second]");
    let moment = time::PrimitiveDateTime::parse(stamp, format).ok()?;
    Some(moment.assume_utc().unix_timestamp())
}

/// `YYYYMMDDTHHMMSSZ`.
pub fn stamp(now: OffsetDateTime) -> String {
    now.format(time::macros::format_description!("[year][month][day]T[hour][minute][second]Z"))
        .unwrap_or_else(|_| now.unix_timestamp().to_string())
}

/// Plan the reconstruction of the chain and the swap (in place) or the hand-off (`as_new`).
pub fn plan_remote(
    facts: &RemoteFacts,
    at: &AtSpec,
    as_new: Option<&str>,
    keep_old: bool,
) -> Result<Plan, RestoreError> {
    let points = restore_points(&facts.manifests);
    let point = resolve(&facts.instance, &points, at).map_err(|err| match err {
        AtError::NoPoints { instance, .. } => AtError::NoPoints { instance, where_: " in S3".into() },
        other => other,
    })?;
    let catalog = Catalog::new(facts.manifests.iter().cloned());
    let broken = |detail: String| RestoreError::BrokenChain {
        instance: facts.instance.clone(),
        snapshot: point.snapshot.clone(),
        detail,
    };
    let chain = catalog.chain_for(&facts.instance, &point.snapshot).map_err(|e| broken(e.to_string()))?;
    check_objects(&chain, &facts.objects).map_err(|e| broken(e.to_string()))?;

    let target_instance = as_new.unwrap_or(&facts.instance).to_string();
    let dataset = container_dataset(&facts.pool, &target_instance);
    let staging = staging_dataset(&facts.pool, &target_instance);
    let owed = facts.unfinished.clone().unwrap_or_default();
    let mut steps = Vec::new();
    if let Some(new) = as_new
        && owed.hand_off
        && facts.target_exists
    {
        // A killed earlier run moved the received chain into place (one rename): only
        // the hand-off is left.
        steps.push(Step::LxdRecover { instance: new.to_string(), dataset });
        return Ok(plan_of(facts, &target_instance, as_new, point, steps));
    }
    let mut target_exists = facts.target_exists;
    if let Some(aside) = owed.aside.clone().filter(|_| facts.unfinished_aside_exists && as_new.is_none()) {
        if !target_exists {
            // Killed between the two renames of its swap: the original goes back first.
            steps.push(Step::PutBack { aside, dataset: dataset.clone() });
            target_exists = true;
        } else if owed.destroy_aside {
            // Killed after its swap: finish its clean-up.
            steps.push(Step::DestroyOld { dataset: aside });
        }
    }
    if facts.staging_exists {
        steps.push(Step::DestroyStale { dataset: staging.clone() });
    }
    let objects = chain
        .links
        .iter()
        .map(|m| ChainObject {
            key: m.object_key.clone(),
            kind: m.kind.as_str().to_string(),
            snapshot: m.snapshot.name.clone(),
            base: m.base.as_ref().map(|b| b.name.clone()),
            compressed_bytes: m.compressed_bytes,
            raw_bytes: m.raw_bytes,
            sha256: m.sha256.clone(),
            encryption: m.encryption.clone(),
        })
        .collect();
    steps.push(Step::ReceiveChain {
        staging: staging.clone(),
        snapshot: point.snapshot.clone(),
        guid: point.guid,
        objects,
    });
    match as_new {
        None => {
            let running = facts.state == InstanceState::Running;
            // Stopped by a killed earlier run, which owes it a start.
            let start_owed = owed.start && facts.state == InstanceState::Stopped;
            if running {
                steps.push(Step::StopInstance { instance: facts.instance.clone() });
            }
            let aside = target_exists.then(|| aside_dataset(&facts.pool, &facts.instance, &facts.stamp));
            steps.push(Step::Swap { staging, dataset, aside: aside.clone() });
            if let Some(aside) = aside {
                steps.push(if keep_old {
                    Step::KeepOld { dataset: aside }
                } else {
                    Step::DestroyOld { dataset: aside }
                });
            }
            if running || start_owed {
                steps.push(Step::StartInstance { instance: facts.instance.clone() });
            }
        }
        Some(new) => {
            steps.push(Step::Swap { staging, dataset: dataset.clone(), aside: None });
            steps.push(Step::LxdRecover { instance: new.to_string(), dataset });
        }
    }
    Ok(plan_of(facts, &target_instance, as_new, point, steps))
}

fn plan_of(facts: &RemoteFacts, target: &str, as_new: Option<&str>, point: &RestorePoint, steps: Vec<Step>) -> Plan {
    Plan {
        instance: facts.instance.clone(),
        source: Source::S3,
        target_instance: target.to_string(),
        in_place: as_new.is_none(),
        restore_point: point.clone(),
        steps,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
