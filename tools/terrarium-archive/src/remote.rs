//! Reading an instance's restore points from S3: its manifests and its objects' sizes.

use std::collections::BTreeMap;

use crate::chain::Catalog;
use crate::keys::{KeyLayout, MANIFEST_SUFFIX};
use crate::manifest::{Manifest, ManifestError};
use crate::s3::{S3Error, Store};

/// What S3 holds for one instance.
#[derive(Debug, Clone, Default)]
pub struct RemoteInstance {
    pub instance: String,
    /// Every valid manifest, oldest first.
    pub manifests: Vec<Manifest>,
    /// Every object under the instance's prefix, key → size.
    pub objects: BTreeMap<String, u64>,
    /// Manifests that could not be read or parsed (key, problem).
    pub unreadable: Vec<(String, String)>,
}

impl RemoteInstance {
    pub fn catalog(&self) -> Catalog {
        Catalog::new(self.manifests.iter().cloned())
    }
}

/// Why the remote state could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error(transparent)]
    S3(#[from] S3Error),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
}

/// The instances with objects under the host's prefix, sorted.
pub fn instances(store: &Store, keys: &KeyLayout) -> Result<Vec<String>, RemoteError> {
    let mut names: Vec<String> = store
        .list(&keys.host_prefix())?
        .into_iter()
        .filter_map(|o| keys.parse_manifest_key(&o.key).map(|(instance, _)| instance))
        .collect();
    names.dedup();
    Ok(names)
}

/// Read one instance's manifests and object sizes. A manifest that cannot be parsed is
/// reported in `unreadable` (so `verify` can name it) rather than failing the listing.
pub fn load_instance(store: &Store, keys: &KeyLayout, instance: &str) -> Result<RemoteInstance, RemoteError> {
    let listing = store.list(&keys.instance_prefix(instance))?;
    let objects: BTreeMap<String, u64> = listing.iter().map(|o| (o.key.clone(), o.size)).collect();
    let mut manifests = Vec::new();
    let mut unreadable = Vec::new();
    let manifest_keys: Vec<String> = objects.keys().filter(|k| k.ends_with(MANIFEST_SUFFIX)).cloned().collect();
    for (key, bytes) in manifest_keys.iter().zip(store.get_many(&manifest_keys)) {
        let bytes = bytes?;
        match Manifest::parse(&String::from_utf8_lossy(&bytes), key)
            .map_err(|err| unreadable_manifest(&err, instance))
            .and_then(|m| check_location(keys, instance, key, m))
        {
            Ok(manifest) => manifests.push(manifest),
            Err(problem) => unreadable.push((key.clone(), problem)),
        }
    }
    manifests.sort_by_key(|m| (m.snapshot.createtxg, m.finished_at));
    Ok(RemoteInstance { instance: instance.to_string(), manifests, objects, unreadable })
}

/// What to do about a manifest that does not parse: export never writes one, and until
/// it is gone `prune` leaves the instance alone, so say so (a newer Terrarium's manifest
/// says to upgrade already).
fn unreadable_manifest(err: &ManifestError, instance: &str) -> String {
    let problem = err.to_string();
    if problem.contains("upgrade") {
        return problem;
    }
    format!(
        "{problem}; terrarium-backup export never writes such a manifest: remove it (prune leaves {instance} alone until it is gone)"
    )
}

/// A manifest is trusted only for the place it was read from: its instance, snapshot
/// and stream key must be the ones its own key implies. Otherwise a manifest written
/// by hand, by another tool or by someone with write access to the bucket could make
/// `prune` delete (or `restore` read) any object it names.
fn check_location(keys: &KeyLayout, instance: &str, key: &str, manifest: Manifest) -> Result<Manifest, String> {
    let expected_stream = keys.stream_key_for(instance, &manifest.snapshot.name, manifest.encryption.is_some());
    let problem = if manifest.instance != instance {
        format!("names instance `{}`, but it is stored under instance `{instance}`", manifest.instance)
    } else if keys.manifest_key(instance, &manifest.snapshot.name) != key {
        format!("names snapshot `{}`, which is not the one its key names", manifest.snapshot.name)
    } else if manifest.object_key != expected_stream {
        format!("names stream `{}`, but a manifest at this key must name `{expected_stream}`", manifest.object_key)
    } else {
        return Ok(manifest);
    };
    Err(format!(
        "{key}: {problem}; it was not written by terrarium-backup export for this place: remove it, or move it back to where it belongs"
    ))
}
