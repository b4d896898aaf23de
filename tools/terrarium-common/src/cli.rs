//! Arguments every tool shares, flattened into each tool's clap command.

use std::path::PathBuf;

use clap::Args;

use crate::paths::{Paths, env};

#[derive(Debug, Clone, Default, Args)]
pub struct GlobalArgs {
    /// Act on the host tree under DIR instead of `/` (for tests and image builds)
    #[arg(long, global = true, value_name = "DIR", env = env::ROOT, value_parser = parse_root)]
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

/// `--root`: an empty value would make every host path relative to the working
/// directory, and a file cannot hold a host tree; both are refused.
fn parse_root(value: &str) -> Result<PathBuf, String> {
    if value.is_empty() {
        return Err("is empty; give the directory that holds the host tree, such as `--root /srv/image` (or leave the flag out for `/`)".into());
    }
    let path = PathBuf::from(value);
    match std::fs::metadata(&path) {
        Ok(meta) if !meta.is_dir() => {
            Err(format!("`{value}` is not a directory; give the directory that holds the host tree"))
        }
        _ => Ok(path),
    }
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
    T::try_parse_from(args).map_err(print_clap_error)
}

/// Print a clap error (or `--help`/`--version` text) and return the exit code it ends
/// with, as [`parse`] does: for tools that check more than clap can express.
pub fn print_clap_error(err: clap::Error) -> crate::Exit {
    let _ = err.print();
    if err.use_stderr() { crate::Exit::Usage } else { crate::Exit::Success }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_root_or_a_file_as_root_is_refused() {
        assert!(parse_root("").unwrap_err().contains("is empty"));
        let file = tempfile::NamedTempFile::new().unwrap();
        assert!(parse_root(file.path().to_str().unwrap()).unwrap_err().contains("is not a directory"));
        assert_eq!(parse_root("/nonexistent/image").unwrap(), PathBuf::from("/nonexistent/image"));
    }
}
