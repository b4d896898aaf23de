//! What a restore will do, as data: built by pure code from what was read (snapshots,
//! manifests, the instance's state), printed by `--dry-run` and in the confirmation, and
//! then carried out step by step by the shell.

use std::fmt::Write as _;

use serde::Serialize;
use terrarium_common::output::human_bytes;

use crate::args::Source;
use crate::at::{RestorePoint, describe};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub instance: String,
    pub source: Source,
    /// The instance that exists afterwards: `instance` in place, the new name with `--as-new`.
    pub target_instance: String,
    pub in_place: bool,
    pub restore_point: RestorePoint,
    pub steps: Vec<Step>,
}

/// One stream of an S3 chain, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainObject {
    pub key: String,
    pub kind: String,
    pub snapshot: String,
    pub base: Option<String>,
    pub compressed_bytes: u64,
    pub raw_bytes: u64,
    pub sha256: String,
    /// How the object is encrypted; `None` for a plain zstd frame.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption: Option<terrarium_archive::manifest::Encryption>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// `lxc stop` (the instance runs now).
    StopInstance { instance: String },
    /// `zfs rollback -r`: destroys the newer snapshots listed, and every change since.
    /// First releases terrarium-backup's hold on those of them in `releases` (OpenZFS
    /// refuses to destroy a held snapshot).
    Rollback { dataset: String, snapshot: String, destroys: Vec<String>, releases: Vec<String> },
    /// `zfs send | zfs receive` of a snapshot to a new dataset, independent of the source.
    Copy { snapshot: String, dataset: String },
    /// Remove what a killed earlier run left: the staging dataset.
    DestroyStale { dataset: String },
    /// Put back the dataset a killed earlier run had set aside and not replaced yet
    /// (its record in `restore-unfinished/` says so): `zfs rename aside dataset`.
    PutBack { aside: String, dataset: String },
    /// Download, check, decompress and receive each object into `staging`, then check
    /// that `staging@snapshot` has the restore point's GUID.
    ReceiveChain { staging: String, snapshot: String, guid: u64, objects: Vec<ChainObject> },
    /// Set `dataset` aside as `aside` (when it exists), then rename `staging` to `dataset`.
    Swap { staging: String, dataset: String, aside: Option<String> },
    /// Destroy the set-aside dataset (after the swap succeeded).
    DestroyOld { dataset: String },
    /// `--keep-old`: the set-aside dataset stays.
    KeepOld { dataset: String },
    /// `lxc start` (it ran before).
    StartInstance { instance: String },
    /// Rewrite the dataset's `backup.yaml` for the new instance, then import it with
    /// `lxd recover`: answered by the tool and started with `--yes`, else interactive.
    LxdRecover { instance: String, dataset: String },
}

impl Step {
    /// A short stable name (`swap`, `start-instance`): the kill point after the step.
    pub fn name(&self) -> &'static str {
        match self {
            Self::StopInstance { .. } => "stop-instance",
            Self::Rollback { .. } => "rollback",
            Self::Copy { .. } => "copy",
            Self::DestroyStale { .. } => "destroy-stale",
            Self::PutBack { .. } => "put-back",
            Self::ReceiveChain { .. } => "receive-chain",
            Self::Swap { .. } => "swap",
            Self::DestroyOld { .. } => "destroy-old",
            Self::KeepOld { .. } => "keep-old",
            Self::StartInstance { .. } => "start-instance",
            Self::LxdRecover { .. } => "lxd-recover",
        }
    }
}

impl Plan {
    /// Whether the plan destroys or replaces data (needs a confirmation).
    pub fn is_destructive(&self) -> bool {
        self.steps.iter().any(|s| matches!(s, Step::Rollback { .. } | Step::Swap { aside: Some(_), .. }))
    }

    /// Total compressed bytes to download.
    pub fn download_bytes(&self) -> u64 {
        self.steps
            .iter()
            .map(|s| match s {
                Step::ReceiveChain { objects, .. } => objects.iter().map(|o| o.compressed_bytes).sum(),
                _ => 0,
            })
            .sum()
    }

    /// The plan as people read it (`--dry-run`, the confirmation).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let source = match self.source {
            Source::Local => "local snapshots",
            Source::S3 => "S3",
        };
        let mode = if self.in_place {
            "in place".to_string()
        } else {
            format!("as the new instance {}", self.target_instance)
        };
        let _ = writeln!(out, "Restore {} from {source}, {mode}", self.instance);
        let _ = writeln!(out, "  restore point: {} guid {}", describe(&self.restore_point), self.restore_point.guid);
        for (number, step) in self.steps.iter().enumerate() {
            let _ = write!(out, "  {}. ", number + 1);
            render_step(&mut out, step);
        }
        out
    }
}

fn render_step(out: &mut String, step: &Step) {
    match step {
        Step::StopInstance { instance } => {
            let _ = writeln!(out, "stop the instance {instance} (it is running)");
        }
        Step::Rollback { dataset, snapshot, destroys, releases } => {
            let _ =
                writeln!(out, "roll back {dataset} to @{snapshot} (zfs rollback -r), losing every change made since");
            if destroys.is_empty() {
                let _ = writeln!(out, "     no newer snapshot is destroyed");
            } else {
                let _ = writeln!(
                    out,
                    "     destroying {} newer snapshot{}:",
                    destroys.len(),
                    if destroys.len() == 1 { "" } else { "s" }
                );
                for snapshot in destroys {
                    if releases.contains(snapshot) {
                        let _ = writeln!(
                            out,
                            "       {snapshot} (held by terrarium-backup as the base of the next S3 export: the hold is released first, and the next export sends a full stream)"
                        );
                    } else {
                        let _ = writeln!(out, "       {snapshot}");
                    }
                }
            }
        }
        Step::Copy { snapshot, dataset } => {
            let _ = writeln!(out, "copy {snapshot} to the new dataset {dataset} (zfs send | zfs receive)");
        }
        Step::DestroyStale { dataset } => {
            let _ = writeln!(out, "destroy {dataset}, left by an interrupted earlier restore");
        }
        Step::PutBack { aside, dataset } => {
            let _ = writeln!(out, "rename {aside} back to {dataset}: an interrupted earlier restore set it aside");
        }
        Step::ReceiveChain { staging, snapshot, guid, objects } => {
            let total: u64 = objects.iter().map(|o| o.compressed_bytes).sum();
            let _ = writeln!(
                out,
                "download, verify (sha256) and receive {} object{} ({}) into {staging}:",
                objects.len(),
                if objects.len() == 1 { "" } else { "s" },
                human_bytes(total)
            );
            for object in objects {
                let _ = writeln!(
                    out,
                    "       {} {} ({}, sha256 {}…)",
                    object.kind,
                    object.key,
                    human_bytes(object.compressed_bytes),
                    &object.sha256[..object.sha256.len().min(12)]
                );
            }
            let _ = writeln!(out, "     then check that {staging}@{snapshot} has guid {guid}");
        }
        Step::Swap { staging, dataset, aside: Some(aside) } => {
            let _ = writeln!(out, "rename {dataset} aside to {aside}, then rename {staging} to {dataset}");
        }
        Step::Swap { staging, dataset, aside: None } => {
            let _ = writeln!(out, "rename {staging} to {dataset}");
        }
        Step::DestroyOld { dataset } => {
            let _ = writeln!(out, "destroy the replaced dataset {dataset} (keep it with --keep-old)");
        }
        Step::KeepOld { dataset } => {
            let _ = writeln!(
                out,
                "keep the replaced dataset as {dataset} (--keep-old); destroy it with `zfs destroy -r {dataset}`"
            );
        }
        Step::StartInstance { instance } => {
            let _ = writeln!(out, "start the instance {instance} again");
        }
        Step::LxdRecover { instance, dataset } => {
            let _ = writeln!(
                out,
                "rewrite the backup.yaml of {dataset} for {instance} (its name, the snapshots it has, no copied volatile.* identity)"
            );
            let _ = writeln!(
                out,
                "     then hand off to `lxd recover` to import it as the instance {instance} (with --yes: answered, then started)"
            );
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn point() -> RestorePoint {
        RestorePoint {
            snapshot: "autosnap_2026-11-28_12:00:01_hourly".into(),
            guid: 42,
            createtxg: 12,
            created: 1_795_867_201,
        }
    }

    #[test]
    fn a_local_in_place_plan_lists_what_it_destroys() {
        let plan = Plan {
            instance: "web".into(),
            source: Source::Local,
            target_instance: "web".into(),
            in_place: true,
            restore_point: point(),
            steps: vec![
                Step::StopInstance { instance: "web".into() },
                Step::Rollback {
                    dataset: "tank/containers/web".into(),
                    snapshot: point().snapshot,
                    destroys: vec!["tank/containers/web@a".into(), "tank/containers/web@b".into()],
                    releases: vec!["tank/containers/web@b".into()],
                },
                Step::StartInstance { instance: "web".into() },
            ],
        };
        assert!(plan.is_destructive());
        insta::assert_snapshot!(plan.render());
        insta::assert_json_snapshot!(plan);
    }

    #[test]
    fn an_s3_as_new_plan_is_not_destructive() {
        let object = ChainObject {
            key: "host1/web/s1.zfs.zst".into(),
            kind: "full".into(),
            snapshot: "s1".into(),
            base: None,
            compressed_bytes: 3 * 1024 * 1024 / 2,
            raw_bytes: 4 * 1024 * 1024,
            sha256: "ab".repeat(32),
            encryption: None,
        };
        let plan = Plan {
            instance: "web".into(),
            source: Source::S3,
            target_instance: "web2".into(),
            in_place: false,
            restore_point: point(),
            steps: vec![
                Step::DestroyStale { dataset: "tank/terrarium-restore/web2.staging".into() },
                Step::ReceiveChain {
                    staging: "tank/terrarium-restore/web2.staging".into(),
                    snapshot: "s1".into(),
                    guid: 42,
                    objects: vec![object],
                },
                Step::Swap {
                    staging: "tank/terrarium-restore/web2.staging".into(),
                    dataset: "tank/containers/web2".into(),
                    aside: None,
                },
                Step::LxdRecover { instance: "web2".into(), dataset: "tank/containers/web2".into() },
            ],
        };
        assert!(!plan.is_destructive());
        assert_eq!(plan.download_bytes(), 3 * 1024 * 1024 / 2);
        insta::assert_snapshot!(plan.render());
    }
}
