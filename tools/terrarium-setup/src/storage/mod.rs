//! Storage discovery for the ZFS pool: which disks, partitions and free space may be
//! used (disk and partition modes), the largest suggested, the others refused with a
//! reason. `facts` reads the block devices; `discover` is pure.

pub mod discover;
pub mod facts;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;

pub use discover::{Discovery, Refusal, Target, TargetKind, discover};
pub use facts::{StorageFacts, from_dir, probe};

/// Facts from a captured directory (tests) or from this machine's block devices.
pub fn load_facts(dir: Option<&std::path::Path>) -> Result<StorageFacts, facts::FactsError> {
    match dir {
        Some(dir) => from_dir(dir),
        None => probe(),
    }
}
