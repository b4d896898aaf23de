//! Finding `terrarium-*` executables: search order, longest match, listing.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use terrarium_common::process::Cmd;

const PREFIX: &str = "terrarium-";
/// The longest word run tried; tool names are short.
const MAX_WORDS: usize = 4;

/// An installed tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tool {
    /// File name, such as `terrarium-proxy-sync`.
    pub name: String,
    pub path: PathBuf,
}

impl Tool {
    /// The words that select it: `proxy sync`.
    pub fn words(&self) -> String {
        self.name.trim_start_matches(PREFIX).replace('-', " ")
    }

    /// The tool's one-line description: the first line of its `--help`.
    pub fn summary(&self) -> String {
        Cmd::new(&self.path)
            .arg("--help")
            .timeout(Duration::from_secs(2))
            .run()
            .ok()
            .and_then(|help| help.lines().map(str::trim).find(|l| !l.is_empty()).map(str::to_string))
            .unwrap_or_default()
    }
}

/// Why no tool was selected.
#[derive(Debug)]
pub enum NotFound {
    /// No tool matches these words.
    Unknown(String),
    /// The best match exists but cannot be executed.
    NotExecutable(PathBuf),
}

pub use terrarium_common::tools::search_dirs;

/// The longest run of leading words naming a tool, and how many arguments it used.
pub fn find_tool(args: &[OsString], dirs: &[PathBuf]) -> Result<(Tool, usize), NotFound> {
    let words: Vec<&str> = args.iter().map_while(|a| a.to_str()).take_while(|w| is_word(w)).take(MAX_WORDS).collect();
    if words.is_empty() {
        let shown = args.first().map(|a| a.to_string_lossy().into_owned()).unwrap_or_default();
        return Err(NotFound::Unknown(shown));
    }
    let mut not_executable = None;
    for count in (1..=words.len()).rev() {
        let name = format!("{PREFIX}{}", words[..count].join("-"));
        for dir in dirs {
            let path = dir.join(&name);
            match std::fs::metadata(&path) {
                Ok(meta) if meta.is_file() && meta.permissions().mode() & 0o111 != 0 => {
                    return Ok((Tool { name, path }, count));
                }
                Ok(meta) if meta.is_file() => {
                    not_executable.get_or_insert(path);
                }
                _ => {}
            }
        }
        if let Some(path) = not_executable {
            return Err(NotFound::NotExecutable(path));
        }
    }
    Err(NotFound::Unknown(words.join(" ")))
}

/// A word may name part of a tool: lower-case letters, digits and inner hyphens.
fn is_word(word: &str) -> bool {
    !word.is_empty()
        && !word.starts_with('-')
        && word.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Every executable `terrarium-*` in the search directories, first one found wins.
pub fn list_tools(dirs: &[PathBuf]) -> Vec<Tool> {
    let mut found: BTreeMap<String, PathBuf> = BTreeMap::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(rest) = name.strip_prefix(PREFIX) else {
                continue;
            };
            if !is_word(rest) || found.contains_key(&name) {
                continue;
            }
            let executable =
                std::fs::metadata(entry.path()).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
            if executable {
                found.insert(name, entry.path());
            }
        }
    }
    found.into_iter().map(|(name, path)| Tool { name, path }).collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn tool(dir: &Path, name: &str, mode: u32) {
        let path = dir.join(name);
        std::fs::write(&path, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_longest_run_of_words_wins() {
        let dir = tempfile::tempdir().unwrap();
        tool(dir.path(), "terrarium-foo", 0o755);
        tool(dir.path(), "terrarium-foo-bar", 0o755);
        let dirs = vec![dir.path().to_path_buf()];
        let (found, used) = find_tool(&args(&["foo", "bar", "x"]), &dirs).unwrap();
        assert_eq!((found.name.as_str(), used), ("terrarium-foo-bar", 2));
        let (found, used) = find_tool(&args(&["foo", "baz"]), &dirs).unwrap();
        assert_eq!((found.name.as_str(), used), ("terrarium-foo", 1));
        let (found, used) = find_tool(&args(&["foo", "--bar"]), &dirs).unwrap();
        assert_eq!((found.name.as_str(), used), ("terrarium-foo", 1));
    }

    #[test]
    fn earlier_directories_win() {
        let first = tempfile::tempdir().unwrap();
        let second = tempfile::tempdir().unwrap();
        tool(first.path(), "terrarium-foo", 0o755);
        tool(second.path(), "terrarium-foo", 0o755);
        let dirs = vec![first.path().to_path_buf(), second.path().to_path_buf()];
        assert_eq!(find_tool(&args(&["foo"]), &dirs).unwrap().0.path, first.path().join("terrarium-foo"));
        assert_eq!(list_tools(&dirs).len(), 1);
    }

    #[test]
    fn a_non_executable_match_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        tool(dir.path(), "terrarium-foo", 0o644);
        assert!(matches!(find_tool(&args(&["foo"]), &[dir.path().to_path_buf()]), Err(NotFound::NotExecutable(_))));
    }
}
