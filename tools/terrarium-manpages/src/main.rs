//! `gen-manpages OUT_DIR`: man pages and shell completions for every Terrarium binary,
//! generated from the same clap definitions the binaries parse with, so they cannot drift.
//!
//! Writes `OUT_DIR/man/<bin>.1`, `OUT_DIR/completions/bash/<bin>`,
//! `OUT_DIR/completions/zsh/_<bin>` and `OUT_DIR/completions/fish/<bin>.fish`, the names
//! the packages' `[package.metadata.deb]` assets expect (cargo-deb gzips the man pages).
//! A build helper run by `debian/build-release-repo`; never packaged.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap_complete::Shell;

/// Every shipped binary and the clap definition it parses its arguments with.
fn binaries() -> Vec<(&'static str, clap::Command)> {
    vec![
        ("terrariumctl", terrariumctl::cli()),
        ("terrarium-backup", terrarium_backup::cli()),
        ("terrarium-idp-sync", terrarium_idp_sync::cli()),
        ("terrarium-install", terrarium_install::cli()),
        ("terrarium-reconfigure", terrarium_install::reconfigure::cli()),
        ("terrarium-status", terrarium_install::status::cli()),
        ("terrarium-proxy-sync", terrarium_proxy_sync::cli()),
        ("terrarium-restore", terrarium_restore::cli()),
        ("terrarium-set", terrarium_set::cli()),
    ]
}

/// Where each generated file goes under the output directory.
fn outputs(out: &Path, bin: &str) -> [(Option<Shell>, PathBuf); 4] {
    [
        (None, out.join("man").join(format!("{bin}.1"))),
        (Some(Shell::Bash), out.join("completions/bash").join(bin)),
        (Some(Shell::Zsh), out.join("completions/zsh").join(format!("_{bin}"))),
        (Some(Shell::Fish), out.join("completions/fish").join(format!("{bin}.fish"))),
    ]
}

/// The bytes of one output: a roff man page, or a completion script for `shell`.
fn render(bin: &'static str, cmd: &clap::Command, shell: Option<Shell>) -> std::io::Result<Vec<u8>> {
    // The page and the completions are named after the installed binary, whatever
    // name the definition carries.
    let mut cmd = cmd.clone().name(bin).bin_name(bin);
    let mut buf = Vec::new();
    match shell {
        None => clap_mangen::Man::new(cmd).render(&mut buf)?,
        Some(shell) => clap_complete::generate(shell, &mut cmd, bin, &mut buf),
    }
    Ok(buf)
}

fn write_all(out: &Path) -> Result<usize, String> {
    let mut written = 0;
    for (bin, cmd) in binaries() {
        for (shell, path) in outputs(out, bin) {
            let bytes = render(bin, &cmd, shell).map_err(|e| format!("rendering {}: {e}", path.display()))?;
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
            }
            std::fs::write(&path, bytes).map_err(|e| format!("writing {}: {e}", path.display()))?;
            written += 1;
        }
    }
    Ok(written)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [out] = args.as_slice() else {
        eprintln!("gen-manpages: expected one argument, the output directory (e.g. gen-manpages debian/generated)");
        return ExitCode::from(2);
    };
    match write_all(Path::new(out)) {
        Ok(count) => {
            println!("gen-manpages: wrote {count} files under {out}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("gen-manpages: {err}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_binary_gets_a_page_and_three_completions_named_after_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let count = write_all(dir.path()).expect("generation succeeds");
        assert_eq!(count, binaries().len() * 4);
        for (bin, _) in binaries() {
            let page = std::fs::read_to_string(dir.path().join(format!("man/{bin}.1"))).expect("man page");
            assert!(page.contains(&format!(".TH {bin} 1")), "{bin}.1 has its own title:\n{page}");
            let bash = std::fs::read_to_string(dir.path().join(format!("completions/bash/{bin}"))).expect("bash");
            assert!(
                bash.lines().any(|l| l.trim_start().starts_with("complete -F") && l.ends_with(&format!(" {bin}"))),
                "bash completes {bin}:\n{bash}"
            );
            let zsh = std::fs::read_to_string(dir.path().join(format!("completions/zsh/_{bin}"))).expect("zsh");
            assert!(zsh.starts_with(&format!("#compdef {bin}\n")), "zsh completes {bin}");
            let fish = std::fs::read_to_string(dir.path().join(format!("completions/fish/{bin}.fish"))).expect("fish");
            assert!(fish.contains(&format!("complete -c {bin} ")), "fish completes {bin}");
        }
    }

    #[test]
    fn no_generated_binary_is_named_like_a_tool() {
        // terrariumctl lists terrarium-* executables; this helper must never be one.
        assert!(!env!("CARGO_BIN_NAME").starts_with("terrarium-"));
    }
}
