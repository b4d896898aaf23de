//! `terrarium-backup`: ZFS time machine and S3 disaster-recovery export with verified, chain-aware manifests.
//!
//! The commands live here; the backup format and its transport (zfs, manifests, chains,
//! the S3 store, sealing, the pipelines) are `terrarium_archive`, shared with restore.

pub mod health;
pub mod sanoid;

use std::ffi::OsString;

use clap::{CommandFactory, Parser, Subcommand};
use terrarium_common::Exit;
use terrarium_common::cli::GlobalArgs;

mod cmd;
mod context;
mod metrics;
mod state;

/// ZFS time machine and S3 disaster-recovery export with verified, chain-aware manifests.
#[derive(Debug, Parser)]
#[command(name = "terrarium-backup", version = terrarium_common::VERSION)]
pub struct Args {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Render /etc/sanoid/sanoid.conf for <pool>/containers from the config's retention
    SanoidConfig {
        /// Print the file and whether it would change; write nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// Show local snapshots and, when S3 is enabled, the S3 restore points per instance
    List {
        /// Only this instance
        #[arg(long, value_name = "NAME")]
        instance: Option<String>,
        /// Local snapshots only, even when S3 is enabled
        #[arg(long)]
        local: bool,
    },
    /// Whether each instance's backups are on time: the newest local snapshot, S3
    /// restore point, export and restore drill, against backup.alerts
    Status {
        /// Be a monitoring plugin: one status line and exit 0 ok, 1 warning, 2 critical,
        /// 3 unknown
        #[arg(long)]
        check: bool,
    },
    /// Export the newest snapshot of each container to S3 (incremental when possible)
    Export {
        /// Only these instances (repeatable)
        #[arg(long, value_name = "NAME")]
        instance: Vec<String>,
        /// Send full streams even when an incremental is possible
        #[arg(long)]
        full: bool,
        /// Print what would be sent; send nothing
        #[arg(long)]
        dry_run: bool,
        /// Do nothing (and succeed) while s3.enabled is false (for the timer)
        #[arg(long)]
        if_enabled: bool,
        /// Hold the upload to this average rate: 20M, 512K (bytes per second, 1024-based)
        /// or 100Mbit; overrides backup.export.bwlimit
        #[arg(long, value_name = "RATE", value_parser = terrarium_common::rate::parse_rate)]
        bwlimit: Option<u64>,
    },
    /// Delete S3 restore points beyond the retention, never a link a kept one needs
    Prune {
        /// Print what would be deleted; delete nothing
        #[arg(long)]
        dry_run: bool,
        /// Do nothing (and succeed) while s3.enabled is false (for the unit)
        #[arg(long)]
        if_enabled: bool,
        /// Wait up to this many seconds for a running export or restore (default 5)
        #[arg(long, value_name = "SECONDS")]
        lock_wait: Option<u64>,
    },
    /// Check every restore point's chain and objects; --deep also restores into a scratch dataset
    Verify {
        /// Only this instance
        #[arg(long, value_name = "NAME")]
        instance: Option<String>,
        /// Download, check SHA-256 and receive the newest chain into a scratch dataset
        #[arg(long)]
        deep: bool,
        /// With --deep: drill only the instance whose last drill is the oldest (never
        /// drilled first), so a weekly timer goes round every instance in turn
        #[arg(long, requires = "deep", conflicts_with = "instance")]
        rotate: bool,
        /// With --deep: the private key that opens encrypted streams (an age identity
        /// file or an OpenSSH key; default s3.encryption.identity_file). Without one,
        /// an encrypted chain's drill checks its checksums only
        #[arg(long, value_name = "FILE", requires = "deep")]
        identity: Option<std::path::PathBuf>,
        /// Do nothing (and succeed) while s3.enabled is false (for the timer)
        #[arg(long)]
        if_enabled: bool,
        /// Wait up to this many seconds for a running export or restore (default 5)
        #[arg(long, value_name = "SECONDS")]
        lock_wait: Option<u64>,
    },
    /// Replicate <pool>/containers with syncoid to the configured target
    Replicate {
        /// Replicate to this local dataset (a second pool) or `user@host:pool/dataset` instead of syncoid.target
        #[arg(long, value_name = "DATASET")]
        to: Option<String>,
        /// Print the syncoid command; run nothing
        #[arg(long)]
        dry_run: bool,
        /// Do nothing (and succeed) while syncoid.enabled is false (for the timer)
        #[arg(long, conflicts_with = "to")]
        if_enabled: bool,
    },
    /// Upload stdin through the export pipeline (zstd, multipart) as KEY (benchmarks)
    #[command(hide = true)]
    Stream {
        #[arg(long)]
        key: String,
        /// Expected stream size in bytes (sizes the upload parts)
        #[arg(long)]
        size_hint: Option<u64>,
        /// As export's --bwlimit
        #[arg(long, value_name = "RATE", value_parser = terrarium_common::rate::parse_rate)]
        bwlimit: Option<u64>,
    },
}

/// The clap definition, reused for the man page and shell completions.
pub fn cli() -> clap::Command {
    Args::command()
}

/// The exit code for an error `run` returned: an unknown `--instance` or a refused flag
/// value is bad input (2),
/// the rest as every tool classifies them.
pub fn exit_code(err: &anyhow::Error) -> Exit {
    if err.chain().any(|cause| {
        cause.is::<cmd::UnknownInstance>()
            || cause.is::<cmd::BadInput>()
            || cause
                .downcast_ref::<terrarium_archive::seal::SealError>()
                .is_some_and(terrarium_archive::seal::SealError::is_bad_input)
    }) {
        return Exit::Usage;
    }
    Exit::classify(err.chain())
}

/// Parse `args` (program name first) and run.
pub fn run(args: impl IntoIterator<Item = OsString>) -> anyhow::Result<Exit> {
    let args = match terrarium_common::cli::parse::<Args>(args) {
        Ok(args) => args,
        Err(exit) => return Ok(exit),
    };
    terrarium_common::output::init_logging("terrarium-backup", args.global.verbosity());
    cmd::dispatch(&args)
}
