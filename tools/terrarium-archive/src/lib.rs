//! The backup format and its transport, shared by every tool that reads or writes
//! Terrarium backups (`terrarium-backup`, `terrarium-restore`, install's S3 preflight):
//! - [`zfs`]: a typed wrapper over the `zfs` command line, with capability detection;
//! - [`keys`]: the S3 key layout, and so the host identity under which exports live;
//! - [`manifest`]: the JSON manifest of one exported stream, parse and validate;
//! - [`chain`]: resolve and check the manifest chain of a restore point;
//! - [`remote`]: read an instance's manifests and objects from S3;
//! - [`retention`]: which restore points a retention policy keeps;
//! - [`s3`]: the S3 [`s3::Store`]: streaming multipart upload, streaming download, probe;
//! - [`part_buffer`]: where upload parts wait, within the export's memory budget;
//! - [`pace`]: the upload's bandwidth limit;
//! - [`resume`]: which parts of an interrupted export's upload can stay;
//! - [`seal`]: client-side encryption of streams with age;
//! - [`pipeline`]: zfs send → zstd → S3 and S3 → zstd -d → zfs receive, hashed.
//!
//! Nothing here parses arguments or prints: the tools own their command lines.

pub mod chain;
pub mod keys;
pub mod manifest;
pub mod pace;
pub mod part_buffer;
pub mod pipeline;
pub mod remote;
pub mod resume;
pub mod retention;
pub mod s3;
pub mod seal;
pub mod zfs;

/// The version stamped into manifests.
pub const VERSION: &str = terrarium_common::VERSION;
