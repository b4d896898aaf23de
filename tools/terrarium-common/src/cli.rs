//! Arguments every tool shares, flattened into each tool's clap command.

use std::path::PathBuf;

use clap::Args;

use crate::paths::{Paths, env};

#[derive(Debug, Clone, Default, Args)]
pub struct GlobalArgs {
    /// Act on the host tree under DIR instead of `/` (for tests and image builds)
    #[arg(long, global = true, value_name = "DIR", env = env::ROOT)]
    pub root: Option<PathBuf>,

    /// Print machine-readable JSON on stdout
    #[arg(long, global = true)]
    pub json: bool,

    /// More log output (repeatable)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Less log output (repeatable)
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "verbose")]
    pub quiet: u8,
}

impl GlobalArgs {
    pub fn paths(&self) -> Paths {
        Paths::resolve(self.root.as_deref())
    }

    /// `-v` count minus `-q` count, for [`crate::output::init_logging`].
    pub fn verbosity(&self) -> i8 {
        i8::try_from(i16::from(self.verbose) - i16::from(self.quiet)).unwrap_or(0)
    }
}

/// Parse a tool's arguments (program name first). For `--help` and `--version`, and for
/// a usage error, clap's text is printed and the exit code to end with comes back as
/// `Err` (0 and 2), so every tool answers bad usage the same way.
pub fn parse<T: clap::Parser>(args: impl IntoIterator<Item = std::ffi::OsString>) -> Result<T, crate::Exit> {
    T::try_parse_from(args).map_err(|err| {
        let _ = err.print();
        if err.use_stderr() { crate::Exit::Usage } else { crate::Exit::Success }
    })
}
