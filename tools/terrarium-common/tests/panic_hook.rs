//! The panic hook every tool installs: a panic ends the run with one line and exit 1,
//! not Rust's 101 and a backtrace. The test runs itself again as the panicking child.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::process::{Command, Output};

const CHILD: &str = "TERRARIUM_TEST_PANIC_CHILD";

fn run_child(test: &str, backtrace: Option<&str>) -> Output {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.args(["--exact", test, "--nocapture", "--test-threads=1"]).env(CHILD, "1").env_remove("RUST_BACKTRACE");
    if let Some(value) = backtrace {
        command.env("RUST_BACKTRACE", value);
    }
    command.output().unwrap()
}

fn panic_in_child() {
    terrarium_common::output::install_panic_hook("terrarium-test");
    panic!("signer: invalid header value\nsecond line of the payload");
}

#[test]
fn a_panic_prints_one_line_and_exits_1() {
    if std::env::var_os(CHILD).is_some() {
        panic_in_child();
    }
    let out = run_child("a_panic_prints_one_line_and_exits_1", None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line, no backtrace or note: {stderr}");
    assert!(lines[0].starts_with("terrarium-test: internal error: signer: invalid header value at "), "{stderr}");
    assert!(lines[0].contains("panic_hook.rs:") && lines[0].contains("please report"), "{stderr}");
}

#[test]
fn rust_backtrace_still_shows_the_details() {
    if std::env::var_os(CHILD).is_some() {
        panic_in_child();
    }
    let out = run_child("rust_backtrace_still_shows_the_details", Some("1"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("stack backtrace"), "{stderr}");
    assert!(stderr.lines().last().unwrap().starts_with("terrarium-test: internal error: "), "{stderr}");
}
