//! Backup manifests (the JSON beside every stream in S3) and the chains built from them.
//!
//! The input is one or more manifests separated by a line `---`. A manifest that
//! parses must validate and round-trip through `to_json`; one that does not must name
//! its origin. From the parsed ones (one instance's catalog), every restore point's
//! chain must start with a full stream, link each incremental to the snapshot before
//! it by GUID with growing createtxg, end at the restore point, and be kept by
//! `needed_by`; a broken chain must say so (missing link or loop) instead of looping.
//! `check_objects` must accept exactly the chain's objects at their recorded sizes.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use terrarium_archive::chain::{Catalog, ChainError, check_objects};
use terrarium_archive::manifest::{Kind, Manifest};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut manifests = Vec::new();
    for (index, piece) in text.split("\n---\n").enumerate().take(16) {
        let origin = format!("manifest-{index}.json");
        match Manifest::parse(piece, &origin) {
            Ok(manifest) => {
                let json = manifest.to_json();
                let again = Manifest::parse(&json, "to_json")
                    .unwrap_or_else(|err| panic!("to_json wrote a manifest that does not parse: {err}\n{json}"));
                assert_eq!(again, manifest, "to_json does not round-trip:\n{json}");
                manifests.push(manifest);
            }
            Err(err) => assert!(err.to_string().contains(&origin), "the error does not name the manifest: {err}"),
        }
    }
    let catalog = Catalog::new(manifests.iter().cloned());
    let size = catalog.restore_points().len();
    for target in &manifests {
        let needed = catalog.needed_by(target);
        assert_eq!(needed.first(), Some(&target.snapshot.guid));
        match catalog.chain_of(target) {
            Ok(chain) => {
                let links = &chain.links;
                assert!(!links.is_empty() && links.len() <= size + 1, "{} links from {size} manifests", links.len());
                assert_eq!(chain.target(), target, "the chain does not end at its restore point");
                assert_eq!(chain.full().kind, Kind::Full, "the chain does not start with a full stream");
                for pair in links.windows(2) {
                    let base = pair[1].base.as_ref().expect("an incremental link without a base");
                    assert_eq!(pair[1].kind, Kind::Incremental);
                    assert_eq!(base.guid, pair[0].snapshot.guid, "the chain is not contiguous");
                    assert!(pair[0].snapshot.createtxg < pair[1].snapshot.createtxg, "createtxg does not grow");
                }
                for link in links {
                    assert!(needed.contains(&link.snapshot.guid), "needed_by would prune a link of the chain");
                }
                let _ = chain.compressed_bytes();
                let mut objects: BTreeMap<String, u64> =
                    links.iter().map(|m| (m.object_key.clone(), m.compressed_bytes)).collect();
                // Two links sharing one object key with different sizes cannot both match.
                let consistent = links.iter().all(|m| objects[&m.object_key] == m.compressed_bytes);
                assert_eq!(
                    check_objects(&chain, &objects).is_ok(),
                    consistent,
                    "check_objects on the chain's own objects"
                );
                let key = chain.full().object_key.clone();
                objects.remove(&key);
                assert!(
                    matches!(
                        check_objects(&chain, &objects),
                        Err(ChainError::ObjectMissing { .. } | ChainError::SizeMismatch { .. })
                    ),
                    "a missing object was not reported"
                );
            }
            Err(err @ (ChainError::MissingLink { .. } | ChainError::Cycle { .. })) => {
                assert!(err.to_string().contains(&target.instance), "the error does not name the instance: {err}");
            }
            Err(other) => panic!("chain_of cannot fail with {other:?}"),
        }
    }
});
