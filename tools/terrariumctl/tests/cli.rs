//! terrariumctl over the real binary, with stand-in tools in a scratch directory.
#![allow(clippy::unwrap_used)] // test helpers: a failed step is the test failing

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use assert_cmd::Command;

fn stand_in(dir: &Path, name: &str, body: &str) {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// terrariumctl with only `dir` (and the system's /bin for `sh`) to search.
fn ctl(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("terrariumctl").unwrap();
    cmd.env("TERRARIUM_TOOL_PATH", dir).env("PATH", "/usr/bin:/bin");
    cmd
}

fn tools() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    stand_in(dir.path(), "terrarium-foo", "echo \"foo:$*\"");
    stand_in(dir.path(), "terrarium-foo-bar", "echo \"foo-bar:$*\"");
    stand_in(dir.path(), "terrarium-seven", "exit 7");
    stand_in(
        dir.path(),
        "terrarium-proxy-sync",
        "if [ \"$1\" = --help ]; then echo 'Publish user.proxy labels'; else cat; fi",
    );
    dir
}

#[test]
fn longest_match_runs_with_the_remaining_arguments() {
    let dir = tools();
    let out = ctl(dir.path()).args(["foo", "bar", "x", "--y"]).assert().success();
    assert_eq!(String::from_utf8_lossy(&out.get_output().stdout), "foo-bar:x --y\n");
    let out = ctl(dir.path()).args(["foo", "baz"]).assert().success();
    assert_eq!(String::from_utf8_lossy(&out.get_output().stdout), "foo:baz\n");
}

#[test]
fn exit_codes_and_stdin_pass_through() {
    let dir = tools();
    ctl(dir.path()).arg("seven").assert().code(7);
    ctl(dir.path()).args(["proxy", "sync"]).write_stdin("from stdin").assert().success().stdout("from stdin");
}

#[test]
fn an_unknown_word_exits_2_with_a_suggestion() {
    let dir = tools();
    let out = ctl(dir.path()).args(["proxy", "snyc"]).assert().code(2);
    insta::assert_snapshot!(String::from_utf8_lossy(&out.get_output().stderr), @"terrariumctl: error: `proxy snyc` is not a Terrarium tool (did you mean `terrariumctl proxy sync`?); run `terrariumctl --list` to see the installed tools");
    ctl(dir.path()).arg("nope").assert().code(2);
}

#[test]
fn a_flag_before_the_words_is_refused_saying_where_it_goes() {
    let dir = tools();
    let out = ctl(dir.path()).args(["--json", "status"]).assert().code(2);
    let text = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        text.contains("`--json` comes before the tool's words") && text.contains("`terrariumctl WORD... --json`"),
        "{text}"
    );
    assert!(!text.contains("is not a Terrarium tool"), "{text}");
}

#[test]
fn a_tool_that_is_not_executable_is_named() {
    let dir = tools();
    let path = dir.path().join("terrarium-broken");
    std::fs::write(&path, "").unwrap();
    let out = ctl(dir.path()).arg("broken").assert().code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(stderr.contains("terrarium-broken is not executable"), "{stderr}");
}

#[test]
fn listing_shows_each_tool_with_its_summary() {
    let dir = tools();
    for args in [vec![], vec!["--list"], vec!["help"]] {
        let out = ctl(dir.path()).args(&args).assert().success();
        let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
        assert!(stdout.contains("proxy sync") && stdout.contains("Publish user.proxy labels"), "{stdout}");
        assert!(stdout.contains("foo bar"), "{stdout}");
    }
}

#[test]
fn help_words_ask_the_tool_for_help() {
    let dir = tools();
    ctl(dir.path()).args(["help", "proxy", "sync"]).assert().success().stdout("Publish user.proxy labels\n");
}

#[test]
fn version_is_printed() {
    let dir = tools();
    ctl(dir.path()).arg("--version").assert().success().stdout(format!("terrariumctl {}\n", env!("CARGO_PKG_VERSION")));
}
