//! Manifest chains: which streams restore a restore point, and whether they are all there.
//!
//! A restore point is a manifest. Its chain is that manifest, its base's manifest (found
//! by the base snapshot's GUID), that one's base, and so on back to a full stream:
//! receiving the chain's streams oldest first with `zfs receive -F` rebuilds the dataset
//! at the restore point. The chain is contiguous when every incremental's base GUID is
//! the snapshot GUID of the link before it.

use std::collections::{BTreeMap, HashMap};

use crate::manifest::{Kind, Manifest};

/// A restore point's streams, full first, the restore point last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub links: Vec<Manifest>,
}

impl Chain {
    /// The restore point (the last link).
    pub fn target(&self) -> &Manifest {
        // A chain is never built empty.
        &self.links[self.links.len() - 1]
    }
    /// The full stream the chain starts with.
    pub fn full(&self) -> &Manifest {
        &self.links[0]
    }
    /// Sum of the stored objects' sizes.
    pub fn compressed_bytes(&self) -> u64 {
        self.links.iter().map(|m| m.compressed_bytes).sum()
    }
}

/// Why a chain cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error(
        "instance {instance} has no restore point {snapshot}; `terrarium-backup list --instance {instance}` shows the ones there are"
    )]
    NoSuchRestorePoint { instance: String, snapshot: String },
    #[error(
        "instance {instance}: restore point {snapshot} needs base {base} (GUID {base_guid}), whose manifest is missing: the chain is broken at {base}"
    )]
    MissingLink { instance: String, snapshot: String, base: String, base_guid: u64 },
    #[error("instance {instance}: the chain of {snapshot} loops back on itself at {at}")]
    Cycle { instance: String, snapshot: String, at: String },
    #[error("instance {instance}: the stream {key} of restore point {snapshot} is missing")]
    ObjectMissing { instance: String, snapshot: String, key: String },
    #[error(
        "instance {instance}: the stream {key} of restore point {snapshot} has {found} bytes, its manifest says {expected}"
    )]
    SizeMismatch { instance: String, snapshot: String, key: String, expected: u64, found: u64 },
}

/// The manifests of one instance, indexed by snapshot GUID (the newest manifest wins
/// when a snapshot was exported twice, such as re-exported as a full).
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    by_guid: HashMap<u64, Manifest>,
}

impl Catalog {
    /// Index the manifests of one instance (GUIDs are unique per pool, names only per
    /// dataset: do not mix instances in one catalog).
    pub fn new(manifests: impl IntoIterator<Item = Manifest>) -> Self {
        let mut by_guid: HashMap<u64, Manifest> = HashMap::new();
        for manifest in manifests {
            match by_guid.get(&manifest.snapshot.guid) {
                Some(existing) if existing.finished_at >= manifest.finished_at => {}
                _ => {
                    by_guid.insert(manifest.snapshot.guid, manifest);
                }
            }
        }
        Self { by_guid }
    }

    /// Every restore point, oldest first (by createtxg).
    pub fn restore_points(&self) -> Vec<&Manifest> {
        let mut points: Vec<&Manifest> = self.by_guid.values().collect();
        points.sort_by_key(|m| (m.snapshot.createtxg, m.snapshot.guid));
        points
    }

    /// The newest restore point.
    pub fn latest(&self) -> Option<&Manifest> {
        self.restore_points().last().copied()
    }

    /// The restore point with snapshot name `snapshot`.
    pub fn find(&self, snapshot: &str) -> Option<&Manifest> {
        self.restore_points().into_iter().rev().find(|m| m.snapshot.name == snapshot)
    }

    pub fn get(&self, guid: u64) -> Option<&Manifest> {
        self.by_guid.get(&guid)
    }

    /// The chain of the restore point named `snapshot`.
    pub fn chain_for(&self, instance: &str, snapshot: &str) -> Result<Chain, ChainError> {
        let target = self.find(snapshot).ok_or_else(|| ChainError::NoSuchRestorePoint {
            instance: instance.to_string(),
            snapshot: snapshot.to_string(),
        })?;
        self.chain_of(target)
    }

    /// The chain of `target` (which need not be in the catalog itself).
    pub fn chain_of(&self, target: &Manifest) -> Result<Chain, ChainError> {
        let mut links = vec![target.clone()];
        let mut current = target;
        while current.kind == Kind::Incremental {
            let Some(base) = &current.base else { break };
            let previous = self.by_guid.get(&base.guid).ok_or_else(|| ChainError::MissingLink {
                instance: target.instance.clone(),
                snapshot: current.snapshot.name.clone(),
                base: base.name.clone(),
                base_guid: base.guid,
            })?;
            if links.len() > self.by_guid.len() || previous.snapshot.createtxg >= current.snapshot.createtxg {
                return Err(ChainError::Cycle {
                    instance: target.instance.clone(),
                    snapshot: target.snapshot.name.clone(),
                    at: previous.snapshot.name.clone(),
                });
            }
            links.push(previous.clone());
            current = previous;
        }
        links.reverse();
        Ok(Chain { links })
    }

    /// The snapshot GUIDs `target`'s chain needs, as far as they can be followed (also
    /// for a broken chain: what exists of it must be kept).
    pub fn needed_by(&self, target: &Manifest) -> Vec<u64> {
        let mut needed = vec![target.snapshot.guid];
        let mut current = target;
        while let Some(base) = current.base.as_ref().filter(|_| current.kind == Kind::Incremental) {
            if needed.contains(&base.guid) {
                break;
            }
            needed.push(base.guid);
            match self.by_guid.get(&base.guid) {
                Some(previous) => current = previous,
                None => break,
            }
        }
        needed
    }
}

/// Check that every link's stream exists with its recorded size. `objects` maps keys
/// to sizes (from a listing of the instance's prefix).
pub fn check_objects(chain: &Chain, objects: &BTreeMap<String, u64>) -> Result<(), ChainError> {
    for link in &chain.links {
        let err_base = (link.instance.clone(), link.snapshot.name.clone(), link.object_key.clone());
        match objects.get(&link.object_key) {
            None => {
                return Err(ChainError::ObjectMissing { instance: err_base.0, snapshot: err_base.1, key: err_base.2 });
            }
            Some(&found) if found != link.compressed_bytes => {
                return Err(ChainError::SizeMismatch {
                    instance: err_base.0,
                    snapshot: err_base.1,
                    key: err_base.2,
                    expected: link.compressed_bytes,
                    found,
                });
            }
            Some(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::manifest::SnapshotRef;

    fn link(name: &str, guid: u64, txg: u64, base: Option<(&str, u64, u64)>) -> Manifest {
        let mut m = crate::manifest::sample(if base.is_some() { Kind::Incremental } else { Kind::Full });
        m.snapshot = SnapshotRef { name: name.into(), guid, createtxg: txg };
        m.base = base.map(|(n, g, t)| SnapshotRef { name: n.into(), guid: g, createtxg: t });
        m.object_key = format!("h/web/{name}.zfs.zst");
        m
    }

    fn three() -> Vec<Manifest> {
        vec![link("a", 1, 10, None), link("b", 2, 20, Some(("a", 1, 10))), link("c", 3, 30, Some(("b", 2, 20)))]
    }

    #[test]
    fn a_chain_runs_from_the_full_to_the_restore_point() {
        let catalog = Catalog::new(three());
        let chain = catalog.chain_for("web", "c").unwrap();
        let names: Vec<_> = chain.links.iter().map(|m| m.snapshot.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(catalog.chain_for("web", "a").unwrap().links.len(), 1);
        assert_eq!(catalog.latest().unwrap().snapshot.name, "c");
    }

    #[test]
    fn a_missing_link_is_named() {
        let mut manifests = three();
        manifests.remove(1);
        let err = Catalog::new(manifests).chain_for("web", "c").unwrap_err();
        assert_eq!(
            err,
            ChainError::MissingLink { instance: "web".into(), snapshot: "c".into(), base: "b".into(), base_guid: 2 }
        );
        assert!(err.to_string().contains("broken at b"), "{err}");
    }

    #[test]
    fn the_link_is_found_by_guid_not_by_name() {
        let mut manifests = three();
        manifests[1].snapshot.guid = 99; // `b` re-created with the same name
        assert!(matches!(
            Catalog::new(manifests).chain_for("web", "c"),
            Err(ChainError::MissingLink { base_guid: 2, .. })
        ));
    }

    #[test]
    fn objects_must_exist_with_their_size() {
        let catalog = Catalog::new(three());
        let chain = catalog.chain_for("web", "c").unwrap();
        let mut objects: BTreeMap<String, u64> =
            chain.links.iter().map(|m| (m.object_key.clone(), m.compressed_bytes)).collect();
        check_objects(&chain, &objects).unwrap();
        objects.insert("h/web/b.zfs.zst".into(), 7);
        assert!(matches!(check_objects(&chain, &objects), Err(ChainError::SizeMismatch { found: 7, .. })));
        objects.remove("h/web/a.zfs.zst");
        assert!(matches!(check_objects(&chain, &objects), Err(ChainError::ObjectMissing { .. })));
    }

    #[test]
    fn needed_by_follows_what_exists() {
        let mut manifests = three();
        manifests.remove(0);
        let catalog = Catalog::new(manifests);
        let c = catalog.find("c").unwrap().clone();
        assert_eq!(catalog.needed_by(&c), vec![3, 2, 1]);
    }
}
