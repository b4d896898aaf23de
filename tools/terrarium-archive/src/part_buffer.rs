//! Where the parts of a multipart upload wait: in memory while they are small, in a
//! file once holding them would break the export's memory budget.
//!
//! S3 allows 10,000 parts, so a 5 TiB stream needs parts of about 0.5 to 1 GiB at its
//! end ([`crate::s3::part_size`]); a 200 GiB stream already has parts of 200 MiB. No
//! concurrency fits such parts in a small VPS's memory, so a part larger than half the
//! parts' share of the budget is written to an unlinked-on-drop file in the spool
//! directory and uploaded from there (the SDK re-reads the file on a retry). Every part
//! takes a permit for its bytes (memory) or its slot (spool) before it is filled and
//! gives it back when its upload has answered, so at any moment:
//!
//! - part bytes in memory ≤ `budget − FIXED_SHARE`;
//! - spool files ≤ [`SPOOL_SLOTS`], each at most one part.
//!
//! Concurrency therefore shrinks by itself as parts grow: four 8 MiB parts upload at
//! once, two 90 MiB parts, one spooled part while the next is written.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aws_sdk_s3::primitives::ByteStream;
use tempfile::TempPath;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

const MIB: u64 = 1024 * 1024;
/// What an export uses besides its parts: zstd's workers and window (about 30 MiB
/// measured by the export bench), the S3 client and its runtime, the copy buffers.
pub const FIXED_SHARE: u64 = 64 * MIB;
/// Spooled parts that may exist at once: one being written, one uploading.
pub const SPOOL_SLOTS: usize = 2;
/// The prefix of spool files, so a run can remove those a killed run left behind.
pub const SPOOL_PREFIX: &str = "terrarium-backup-part.";
/// Permits count KiB so that a 5 GiB part still fits a `u32` request.
const PERMIT_UNIT: u64 = 1024;

/// Where a part of `size` bytes is held under a memory `budget` (pure).
pub fn placement(size: u64, budget: u64) -> Placement {
    // Two parts must fit: one being filled while the previous one uploads.
    if size.saturating_mul(2) <= parts_share(budget) { Placement::Memory } else { Placement::Spool }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    Memory,
    Spool,
}

/// The bytes of the budget that parts may use.
pub fn parts_share(budget: u64) -> u64 {
    budget.saturating_sub(FIXED_SHARE)
}

/// The permits of one upload: memory bytes and spool slots.
#[derive(Debug, Clone)]
pub struct Budget {
    memory: Arc<Semaphore>,
    spool: Arc<Semaphore>,
    budget: u64,
    spool_dir: PathBuf,
}

impl Budget {
    pub fn new(budget: u64, spool_dir: &Path) -> Self {
        let units = usize::try_from(parts_share(budget) / PERMIT_UNIT).unwrap_or(usize::MAX);
        Self {
            memory: Arc::new(Semaphore::new(units.min(Semaphore::MAX_PERMITS))),
            spool: Arc::new(Semaphore::new(SPOOL_SLOTS)),
            budget,
            spool_dir: spool_dir.to_path_buf(),
        }
    }

    /// Start a part of `size` bytes, waiting (on `runtime`) until the budget has room.
    pub fn start(&self, size: u64, runtime: &tokio::runtime::Runtime) -> io::Result<Filling> {
        match placement(size, self.budget) {
            Placement::Memory => {
                let units = u32::try_from(size.div_ceil(PERMIT_UNIT)).unwrap_or(u32::MAX);
                let permit = runtime
                    .block_on(Arc::clone(&self.memory).acquire_many_owned(units))
                    .map_err(|_| io::Error::other("the part budget was closed"))?;
                let capacity = usize::try_from(size).unwrap_or(usize::MAX);
                Ok(Filling { body: Body::Memory(Vec::with_capacity(capacity)), len: 0, _permit: permit })
            }
            Placement::Spool => {
                let permit = runtime
                    .block_on(Arc::clone(&self.spool).acquire_owned())
                    .map_err(|_| io::Error::other("the spool budget was closed"))?;
                let file = tempfile::Builder::new().prefix(SPOOL_PREFIX).tempfile_in(&self.spool_dir).map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!(
                            "cannot create a part file in {} (parts larger than the memory budget wait there): {e}",
                            self.spool_dir.display()
                        ),
                    )
                })?;
                let (file, path) = file.into_parts();
                Ok(Filling { body: Body::Spool { file: Some(file), path }, len: 0, _permit: permit })
            }
        }
    }
}

/// A part being filled, then uploaded; it holds its permit until dropped.
#[derive(Debug)]
pub struct Filling {
    body: Body,
    len: u64,
    _permit: OwnedSemaphorePermit,
}

#[derive(Debug)]
enum Body {
    Memory(Vec<u8>),
    /// The file is closed once the part is full; the path is removed on drop.
    Spool {
        file: Option<File>,
        path: TempPath,
    },
}

impl Filling {
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn append(&mut self, data: &[u8]) -> io::Result<()> {
        match &mut self.body {
            Body::Memory(bytes) => bytes.extend_from_slice(data),
            Body::Spool { file: Some(file), path } => file
                .write_all(data)
                .map_err(|e| io::Error::new(e.kind(), format!("writing the part file {}: {e}", path.display())))?,
            Body::Spool { file: None, .. } => return Err(io::Error::other("the part file is already closed")),
        }
        self.len += data.len() as u64;
        Ok(())
    }

    /// The request body. A spooled part is read from its file, so the SDK can retry it.
    pub async fn byte_stream(&mut self) -> Result<ByteStream, String> {
        match &mut self.body {
            Body::Memory(bytes) => Ok(ByteStream::from(std::mem::take(bytes))),
            Body::Spool { file, path } => {
                // Closed, not synced: only this process reads it back, from the page cache.
                drop(file.take());
                ByteStream::read_from()
                    .path(&**path)
                    .buffer_size(256 * 1024)
                    .build()
                    .await
                    .map_err(|e| format!("reading the part file {}: {e}", path.display()))
            }
        }
    }
}

/// Remove the spool files a killed run left in `dir` (call under the export lock).
pub fn sweep(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(SPOOL_PREFIX) {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => log::info!("removed {}, a part file a killed export left", entry.path().display()),
                Err(err) => log::warn!("cannot remove the old part file {}: {err}", entry.path().display()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::s3::{MAX_PARTS, MAX_STREAM, part_size};

    const GIB: u64 = 1024 * MIB;

    /// Walk the whole part schedule of a 5 TiB stream for several hints and budgets:
    /// wherever a part is held, the bound holds, and memory is used while it can be.
    #[test]
    fn every_part_of_a_five_tib_stream_stays_within_the_budget() {
        for budget_mib in [96, 128, 256, 1024] {
            let budget = budget_mib * MIB;
            for hint in [None, Some(GIB), Some(200 * GIB), Some(MAX_STREAM)] {
                let (mut sent, mut spooled, mut largest_spooled) = (0u64, 0u32, 0u64);
                for n in 1..=MAX_PARTS {
                    let size = part_size(n, hint);
                    match placement(size, budget) {
                        // Memory parts: two (filling + uploading) always fit the share,
                        // and the semaphore caps the rest at the share.
                        Placement::Memory => assert!(2 * size <= parts_share(budget)),
                        Placement::Spool => {
                            assert!(2 * size > parts_share(budget), "a part that fits memory went to disk");
                            spooled += 1;
                            largest_spooled = largest_spooled.max(size);
                        }
                    }
                    sent += size;
                    if sent >= MAX_STREAM {
                        break;
                    }
                }
                assert!(sent >= MAX_STREAM, "5 TiB fits the schedule");
                // Disk: at most SPOOL_SLOTS parts, each under S3's 5 GiB part limit.
                assert!(SPOOL_SLOTS as u64 * largest_spooled <= 2 * 5 * GIB);
                assert!(spooled > 0, "a 5 TiB stream has parts over any budget here ({budget_mib} MiB)");
            }
        }
    }

    #[test]
    fn small_streams_never_touch_the_disk_at_the_default_budget() {
        let budget = 256 * MIB;
        // No hint: the first 100 parts (800 MiB) are 8 MiB; parts stay in memory until
        // they pass 96 MiB, about 45 GiB into the stream.
        let mut sent = 0;
        let mut n = 1;
        while placement(part_size(n, None), budget) == Placement::Memory {
            sent += part_size(n, None);
            n += 1;
        }
        assert!(sent > 40 * GIB, "memory held the first {} GiB", sent / GIB);
        // A 100 GiB stream with its size known: 23 MiB parts, all in memory.
        assert!((1..=4_500).all(|n| placement(part_size(n, Some(100 * GIB)), budget) == Placement::Memory));
    }

    #[test]
    fn the_memory_permits_hold_the_share_and_release_with_the_part() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let budget = Budget::new(96 * MIB, dir.path());
        // 32 MiB share: two 16 MiB parts fit, a third must wait for one to be dropped.
        let first = budget.start(16 * MIB, &runtime).unwrap();
        let _second = budget.start(16 * MIB, &runtime).unwrap();
        assert_eq!(budget.memory.available_permits(), 0);
        drop(first);
        assert_eq!(budget.memory.available_permits() as u64, 16 * MIB / PERMIT_UNIT);
    }

    #[test]
    fn a_spooled_part_is_a_file_until_dropped_and_sweep_removes_leftovers() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let budget = Budget::new(96 * MIB, dir.path());
        let mut part = budget.start(17 * MIB, &runtime).unwrap();
        part.append(b"stream bytes").unwrap();
        let files = || std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(files(), 1);
        let stream = runtime.block_on(part.byte_stream()).unwrap();
        let body = runtime.block_on(stream.collect()).unwrap().into_bytes();
        assert_eq!(&body[..], b"stream bytes");
        drop(part);
        assert_eq!(files(), 0, "the part file is removed with the part");

        std::fs::write(dir.path().join(format!("{SPOOL_PREFIX}left")), b"x").unwrap();
        std::fs::write(dir.path().join("unrelated"), b"x").unwrap();
        sweep(dir.path());
        assert_eq!(files(), 1, "only our leftovers are removed");
    }

    #[test]
    fn a_missing_spool_directory_is_named() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let budget = Budget::new(96 * MIB, Path::new("/nonexistent/spool"));
        let err = budget.start(GIB, &runtime).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/spool"), "{err}");
    }
}
