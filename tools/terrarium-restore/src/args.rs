//! The command line. Restore flags live at the top level, as users of the original tool
//! know them (`terrarium-restore --instance web --at 2026-11-28`); `list` is a subcommand.

use clap::{Parser, Subcommand, ValueEnum};
use serde::Serialize;
use terrarium_common::cli::GlobalArgs;

/// Restore containers from local snapshots or S3 backups without destroying data before
/// its replacement is verified.
///
/// In place (the default), the instance's dataset is rolled back (local) or replaced by
/// the reconstructed dataset (S3); with `--as-new NAME` a new dataset is made and
/// `lxd recover` imports it. Every mode shows its plan with `--dry-run`.
#[derive(Debug, Parser)]
#[command(
    name = "terrarium-restore",
    version = terrarium_common::VERSION,
    // Not `args_conflicts_with_subcommands`: it refuses the global flags too
    // (`--root DIR list`); [`Args::parse_args`] refuses the restore flags with `list`.
    subcommand_negates_reqs = true
)]
pub struct Args {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(flatten)]
    pub restore: RestoreArgs,

    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Args {
    /// Parse `args` (program name first). The global flags (`--root`, `--json`, `-v`)
    /// go before or after `list`; the restore flags only without it. On a usage
    /// error, `--help` or `--version` the text is printed and the exit code returned.
    pub fn parse_args(args: impl IntoIterator<Item = std::ffi::OsString>) -> Result<Self, terrarium_common::Exit> {
        use clap::{ArgMatches, CommandFactory, FromArgMatches, parser::ValueSource};
        use terrarium_common::cli::print_clap_error;
        let mut command = Self::command();
        let matches: ArgMatches = command.try_get_matches_from_mut(args).map_err(print_clap_error)?;
        if let Some((name, _)) = matches.subcommand() {
            let restore_flags = <RestoreArgs as clap::Args>::augment_args(clap::Command::new("restore"));
            let given = restore_flags
                .get_arguments()
                .find(|arg| matches.value_source(arg.get_id().as_str()) == Some(ValueSource::CommandLine));
            if let Some(arg) = given {
                let flag = arg.get_long().map_or_else(|| arg.get_id().to_string(), |long| format!("--{long}"));
                let message = format!(
                    "`{flag}` before `{name}` is a restore option; give `{name}` its own options after it (`terrarium-restore {name} --help` lists them)"
                );
                return Err(print_clap_error(command.error(clap::error::ErrorKind::ArgumentConflict, message)));
            }
        }
        Self::from_arg_matches(&matches).map_err(print_clap_error)
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the restore points of an instance (local snapshots, or S3 restore points)
    List(ListArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The local ZFS snapshots (the time machine)
    Local,
    /// The S3 export (disaster recovery)
    S3,
}

#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The instance (container) to restore
    #[arg(long, value_name = "NAME", required = true)]
    pub instance: Option<String>,

    /// Where the restore point comes from
    #[arg(long, value_enum, default_value_t = Source::Local)]
    pub source: Source,

    /// The restore point: a snapshot name fragment (`hourly`, `2026-11-28_12`) or a
    /// timestamp (`2026-11-28`, `2026-11-28T12:00`, RFC 3339) meaning the newest restore
    /// point taken by then (UTC unless an offset is given); default the newest
    #[arg(long, value_name = "FRAGMENT|TIME", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub at: Option<String>,

    /// Restore into a new instance NAME instead of in place, then hand off to `lxd recover`
    #[arg(long, value_name = "NEWNAME")]
    pub as_new: Option<String>,

    /// Do not ask for confirmation; with --as-new, import and start the new instance without a prompt
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// Print the plan and change nothing
    #[arg(long)]
    pub dry_run: bool,

    /// S3 in place: keep the replaced dataset (renamed aside) instead of destroying it
    #[arg(long)]
    pub keep_old: bool,

    /// S3: the host whose export to restore from (default this host's name)
    #[arg(long, value_name = "HOST")]
    pub from_host: Option<String>,

    /// S3: the private key that opens encrypted backups (an age identity file from
    /// `age-keygen`, or an unencrypted OpenSSH key); default s3.encryption.identity_file
    #[arg(long, value_name = "FILE")]
    pub identity: Option<std::path::PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// The instance whose restore points to list
    #[arg(long, value_name = "NAME")]
    pub instance: String,

    /// Where the restore points come from
    #[arg(long, value_enum, default_value_t = Source::Local)]
    pub source: Source,

    /// S3: the host whose export to list (default this host's name)
    #[arg(long, value_name = "HOST")]
    pub from_host: Option<String>,
}
