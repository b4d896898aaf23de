//! The inputs of storage discovery: `lsblk --json --bytes`, `sfdisk --json` per disk
//! and `blkid -p` signatures, parsed into plain data. Reading them from the block
//! devices is [`probe`]; reading captured copies from a directory is [`from_dir`].

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use terrarium_common::process::Cmd;

/// The `lsblk` columns discovery needs.
pub const LSBLK_COLUMNS: &str = "NAME,PATH,SIZE,TYPE,MOUNTPOINTS,FSTYPE,PKNAME,PTTYPE";

#[derive(Debug, Clone, Deserialize)]
pub struct LsblkOutput {
    pub blockdevices: Vec<BlockDevice>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct BlockDevice {
    pub name: String,
    pub path: String,
    #[serde(deserialize_with = "number_or_string")]
    pub size: u64,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub mountpoints: Vec<Option<String>>,
    #[serde(default)]
    pub fstype: Option<String>,
    #[serde(default)]
    pub pkname: Option<String>,
    #[serde(default)]
    pub pttype: Option<String>,
    #[serde(default)]
    pub children: Vec<BlockDevice>,
}

impl BlockDevice {
    /// Mount points of this device and everything on it.
    pub fn mounts_in_tree(&self) -> Vec<String> {
        let mut mounts: Vec<String> = self.mountpoints.iter().flatten().cloned().collect();
        for child in &self.children {
            mounts.extend(child.mounts_in_tree());
        }
        mounts
    }
}

/// lsblk before 2.37 printed sizes as strings even with `--bytes`.
fn number_or_string<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Number(u64),
        Text(String),
        Null(()),
    }
    match Size::deserialize(deserializer)? {
        Size::Number(n) => Ok(n),
        Size::Text(text) => text.trim().parse().map_err(serde::de::Error::custom),
        Size::Null(()) => Ok(0),
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct SfdiskOutput {
    pub partitiontable: PartitionTable,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PartitionTable {
    pub label: String,
    #[serde(default)]
    pub firstlba: Option<u64>,
    #[serde(default)]
    pub lastlba: Option<u64>,
    #[serde(default)]
    pub sectorsize: Option<u64>,
    #[serde(default)]
    pub partitions: Vec<TablePartition>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TablePartition {
    pub node: String,
    pub start: u64,
    pub size: u64,
}

/// Everything discovery looks at.
#[derive(Debug, Clone, Default)]
pub struct StorageFacts {
    pub devices: Vec<BlockDevice>,
    /// Partition tables by disk path; a disk without one is absent.
    pub tables: BTreeMap<String, PartitionTable>,
    /// Filesystem or RAID/LVM/ZFS signatures found by `blkid -p`, by device path.
    /// lsblk's FSTYPE comes from udev and is empty where udev does not run.
    pub signatures: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum FactsError {
    #[error("cannot list block devices: {0}")]
    Lsblk(#[from] terrarium_common::process::ProcessError),
    #[error("cannot parse {what}: {message}")]
    Parse { what: String, message: String },
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
}

pub fn parse_lsblk(text: &str) -> Result<Vec<BlockDevice>, FactsError> {
    serde_json::from_str::<LsblkOutput>(text)
        .map(|out| out.blockdevices)
        .map_err(|err| FactsError::Parse { what: "lsblk --json output".into(), message: err.to_string() })
}

pub fn parse_sfdisk(text: &str) -> Result<PartitionTable, FactsError> {
    serde_json::from_str::<SfdiskOutput>(text)
        .map(|out| out.partitiontable)
        .map_err(|err| FactsError::Parse { what: "sfdisk --json output".into(), message: err.to_string() })
}

/// Whole devices that may hold a partition table or a pool.
fn is_whole(device: &BlockDevice) -> bool {
    matches!(device.kind.as_str(), "disk" | "loop")
}

/// Read the facts from the block devices of this machine.
pub fn probe() -> Result<StorageFacts, FactsError> {
    let out = Cmd::new("lsblk")
        .args(["--json", "--bytes", "-o", LSBLK_COLUMNS])
        .install_hint("with `apt install util-linux`")
        .run()?;
    let devices = parse_lsblk(&out)?;
    let mut facts = StorageFacts { devices, ..StorageFacts::default() };
    let mut unmounted = Vec::new();
    for device in &facts.devices {
        if !is_whole(device) {
            continue;
        }
        // No partition table is a normal answer (sfdisk exits non-zero).
        if let Ok(text) = Cmd::new("sfdisk").args(["--json", &device.path]).run()
            && let Ok(table) = parse_sfdisk(&text)
        {
            facts.tables.insert(device.path.clone(), table);
        }
        collect_unmounted(device, &mut unmounted);
    }
    for path in unmounted {
        // Exit status 2 means "no signature": the device is blank.
        if let Ok(kind) = Cmd::new("blkid").args(["-p", "-o", "value", "-s", "TYPE", &path]).run() {
            let kind = kind.trim();
            if !kind.is_empty() {
                facts.signatures.insert(path, kind.to_string());
            }
        }
    }
    Ok(facts)
}

fn collect_unmounted(device: &BlockDevice, out: &mut Vec<String>) {
    if device.mounts_in_tree().is_empty() && device.fstype.is_none() {
        out.push(device.path.clone());
    }
    for child in &device.children {
        collect_unmounted(child, out);
    }
}

/// Captured facts: `lsblk.json`, `sfdisk-<name>.json` for disks with a table and
/// `blkid-<name>` holding a signature type.
pub fn from_dir(dir: &Path) -> Result<StorageFacts, FactsError> {
    let read = |path: &Path| {
        std::fs::read_to_string(path).map_err(|source| FactsError::Read { path: path.display().to_string(), source })
    };
    let devices = parse_lsblk(&read(&dir.join("lsblk.json"))?)?;
    let mut facts = StorageFacts { devices, ..StorageFacts::default() };
    let mut all = Vec::new();
    for device in &facts.devices {
        flatten(device, &mut all);
    }
    for (name, path) in all {
        let table = dir.join(format!("sfdisk-{name}.json"));
        if table.exists() {
            facts.tables.insert(path.clone(), parse_sfdisk(&read(&table)?)?);
        }
        let blkid = dir.join(format!("blkid-{name}"));
        if blkid.exists() {
            facts.signatures.insert(path, read(&blkid)?.trim().to_string());
        }
    }
    Ok(facts)
}

fn flatten(device: &BlockDevice, out: &mut Vec<(String, String)>) {
    out.push((device.name.clone(), device.path.clone()));
    for child in &device.children {
        flatten(child, out);
    }
}
