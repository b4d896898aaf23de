//! Which block devices may hold the Terrarium pool, and why the others may not.
//! Pure: the same facts always give the same answer.

use serde::Serialize;
use terrarium_common::config::StorageMode;
use terrarium_common::output::human_bytes;

use super::facts::{BlockDevice, PartitionTable, StorageFacts};

/// Smaller targets are not offered: a pool for containers needs room.
pub const MIN_TARGET_BYTES: u64 = 1 << 30;
/// New partitions start on 1 MiB boundaries.
const ALIGN_BYTES: u64 = 1 << 20;
/// Mount points that make a disk the system disk.
const SYSTEM_MOUNTS: [&str; 6] = ["/", "/boot", "/boot/efi", "/usr", "/var", "[SWAP]"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TargetKind {
    /// A whole unused disk (disk mode; wiped).
    Disk,
    /// An unused partition (partition mode).
    Partition,
    /// Unallocated space on a disk's partition table; a partition is created there.
    FreeSpace { start_byte: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    /// The device path to configure: the disk, the partition, or for free space the disk.
    pub path: String,
    #[serde(flatten)]
    pub kind: TargetKind,
    pub size: u64,
}

impl Target {
    pub fn describe(&self) -> String {
        match self.kind {
            TargetKind::Disk => format!("{} (whole disk, {}, will be wiped)", self.path, human_bytes(self.size)),
            TargetKind::Partition => format!("{} (unused partition, {})", self.path, human_bytes(self.size)),
            TargetKind::FreeSpace { .. } => {
                format!("{} (free space, {}, a new partition)", self.path, human_bytes(self.size))
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    pub path: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Discovery {
    /// Largest first.
    pub targets: Vec<Target>,
    pub refused: Vec<Refusal>,
}

impl Discovery {
    pub fn largest(&self) -> Option<&Target> {
        self.targets.first()
    }

    /// The target for `--storage-source`: `auto` is the largest; a path must be a
    /// valid target, else the reason it was refused.
    pub fn select(&self, source: &str, mode: StorageMode) -> Result<Target, String> {
        if source == "auto" {
            return self.largest().cloned().ok_or_else(|| {
                let why: Vec<String> = self.refused.iter().map(|r| format!("{} {}", r.path, r.reason)).collect();
                let why =
                    if why.is_empty() { "no block devices besides the root disk".to_string() } else { why.join("; ") };
                format!(
                    "auto found no usable {} target ({why}); attach a disk, or use --storage-mode file",
                    mode_word(mode)
                )
            });
        }
        if let Some(target) = self.targets.iter().find(|t| t.path == source) {
            return Ok(target.clone());
        }
        if let Some(refusal) = self.refused.iter().find(|r| r.path == source) {
            return Err(format!("{} cannot be used: it {}{}", source, refusal.reason, self.alternatives()));
        }
        Err(format!("{source} is not a block device on this host{}", self.alternatives()))
    }

    fn alternatives(&self) -> String {
        match self.largest() {
            Some(best) => {
                format!("; usable: {}", self.targets.iter().map(|t| t.path.as_str()).collect::<Vec<_>>().join(", "))
                    .replace(&best.path, &format!("{} (largest)", best.path))
            }
            None => "; no usable target was found, consider --storage-mode file".to_string(),
        }
    }
}

fn mode_word(mode: StorageMode) -> &'static str {
    match mode {
        StorageMode::Disk => "disk",
        StorageMode::Partition => "partition",
        StorageMode::File => "file",
    }
}

/// Targets for `mode` (none for file mode), largest first, and every refusal.
pub fn discover(facts: &StorageFacts, mode: StorageMode) -> Discovery {
    let mut discovery = Discovery::default();
    for device in &facts.devices {
        match mode {
            StorageMode::Disk => consider_disk(facts, device, &mut discovery),
            StorageMode::Partition => consider_partitions(facts, device, &mut discovery),
            StorageMode::File => {}
        }
    }
    discovery.targets.sort_by(|a, b| b.size.cmp(&a.size).then_with(|| a.path.cmp(&b.path)));
    discovery
}

fn refuse(discovery: &mut Discovery, path: &str, reason: impl Into<String>) {
    discovery.refused.push(Refusal { path: path.to_string(), reason: reason.into() });
}

/// Why a whole device can never be used, whatever the mode.
fn whole_device_refusal(device: &BlockDevice) -> Option<String> {
    if !matches!(device.kind.as_str(), "disk" | "loop") {
        return Some(format!("is a {} device, not a disk", device.kind));
    }
    if device.name.starts_with("zram") {
        return Some("is a compressed RAM device".to_string());
    }
    let mounts = device.mounts_in_tree();
    if let Some(system) = SYSTEM_MOUNTS.iter().find(|system| mounts.iter().any(|m| m == *system)) {
        let what =
            if *system == "[SWAP]" { "holds swap".to_string() } else { format!("is the root disk (holds {system})") };
        return Some(what);
    }
    None
}

fn signature<'a>(facts: &'a StorageFacts, device: &'a BlockDevice) -> Option<&'a str> {
    device.fstype.as_deref().or_else(|| facts.signatures.get(&device.path).map(String::as_str))
}

fn consider_disk(facts: &StorageFacts, device: &BlockDevice, discovery: &mut Discovery) {
    if let Some(reason) = whole_device_refusal(device) {
        return refuse(discovery, &device.path, reason);
    }
    let mounts = device.mounts_in_tree();
    if let Some(mount) = mounts.first() {
        return refuse(discovery, &device.path, format!("is mounted (at {mount})"));
    }
    if !device.children.is_empty() {
        return refuse(
            discovery,
            &device.path,
            format!("has {} partition(s); use --storage-mode partition", device.children.len()),
        );
    }
    if let Some(kind) = signature(facts, device) {
        return refuse(discovery, &device.path, format!("holds a {kind} signature (in use)"));
    }
    if device.size < MIN_TARGET_BYTES {
        return refuse(
            discovery,
            &device.path,
            format!("is too small ({}, at least {} needed)", human_bytes(device.size), human_bytes(MIN_TARGET_BYTES)),
        );
    }
    discovery.targets.push(Target { path: device.path.clone(), kind: TargetKind::Disk, size: device.size });
}

fn consider_partitions(facts: &StorageFacts, device: &BlockDevice, discovery: &mut Discovery) {
    if let Some(reason) = whole_device_refusal(device) {
        // Partitions on the root disk are refused with it: Terrarium never repartitions it.
        for child in &device.children {
            refuse(discovery, &child.path, format!("is on {}, which {reason}", device.path));
        }
        return refuse(discovery, &device.path, reason);
    }
    for part in &device.children {
        if part.kind != "part" {
            refuse(discovery, &part.path, format!("is a {} device, not a partition", part.kind));
            continue;
        }
        if let Some(mount) = part.mounts_in_tree().first() {
            refuse(discovery, &part.path, format!("is mounted (at {mount})"));
        } else if !part.children.is_empty() {
            refuse(discovery, &part.path, "is in use (it holds other devices, such as LVM or RAID)");
        } else if let Some(kind) = signature(facts, part) {
            refuse(discovery, &part.path, format!("holds a {kind} signature (in use)"));
        } else if part.size < MIN_TARGET_BYTES {
            refuse(
                discovery,
                &part.path,
                format!("is too small ({}, at least {} needed)", human_bytes(part.size), human_bytes(MIN_TARGET_BYTES)),
            );
        } else {
            discovery.targets.push(Target { path: part.path.clone(), kind: TargetKind::Partition, size: part.size });
        }
    }
    match facts.tables.get(&device.path) {
        // sgdisk writes GPT: on an MBR disk it would convert the table, and a disk that
        // boots from its MBR would no longer boot. Its partitions stay choosable above.
        Some(table)
            if table.label != "gpt"
                && free_regions(table, device.size).iter().any(|(_, size)| *size >= MIN_TARGET_BYTES) =>
        {
            refuse(
                discovery,
                &device.path,
                format!(
                    "has free space, but a {} (MBR) partition table: Terrarium adds partitions only to GPT disks; \
                     create one there yourself (fdisk) and choose it",
                    table.label
                ),
            );
        }
        Some(table) => {
            let best = free_regions(table, device.size)
                .into_iter()
                .filter(|(_, size)| *size >= MIN_TARGET_BYTES)
                .max_by_key(|(_, size)| *size);
            if let Some((start_byte, size)) = best {
                discovery.targets.push(Target {
                    path: device.path.clone(),
                    kind: TargetKind::FreeSpace { start_byte },
                    size,
                });
            } else if device.children.is_empty() {
                refuse(
                    discovery,
                    &device.path,
                    format!("has no free space of at least {}", human_bytes(MIN_TARGET_BYTES)),
                );
            }
        }
        None if device.children.is_empty() => {
            let mounts = device.mounts_in_tree();
            let reason = match signature(facts, device) {
                _ if !mounts.is_empty() => format!("is mounted (at {})", mounts[0]),
                Some(kind) => format!("holds a {kind} signature (in use)"),
                None => "has no partition table; use --storage-mode disk for a whole disk".to_string(),
            };
            refuse(discovery, &device.path, reason);
        }
        None => {}
    }
}

/// Unallocated regions of a partition table as (start, size) in bytes, aligned to 1 MiB.
pub fn free_regions(table: &PartitionTable, disk_bytes: u64) -> Vec<(u64, u64)> {
    let sector = table.sectorsize.unwrap_or(512).max(1);
    // An MBR table with four entries cannot take another primary partition.
    if table.label == "dos" && table.partitions.len() >= 4 {
        return Vec::new();
    }
    let first = table.firstlba.unwrap_or(ALIGN_BYTES / sector) * sector;
    let end = match table.lastlba {
        Some(last) => (last + 1) * sector,
        None => disk_bytes,
    };
    let mut used: Vec<(u64, u64)> =
        table.partitions.iter().map(|p| (p.start * sector, (p.start + p.size) * sector)).collect();
    used.sort();
    let mut regions = Vec::new();
    let mut cursor = first;
    for (start, stop) in used.into_iter().chain(std::iter::once((end, end))) {
        let aligned = cursor.div_ceil(ALIGN_BYTES) * ALIGN_BYTES;
        if start > aligned {
            regions.push((aligned, start - aligned));
        }
        cursor = cursor.max(stop);
    }
    regions
}
