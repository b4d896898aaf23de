//! Non-interactive validation: each missing or invalid flag combination exits non-zero
//! with a one-line message naming the flag. Snapshots of stderr and the exit code.

#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::PermissionsExt;

fn run(root: &std::path::Path, args: &[&str]) -> String {
    let output = assert_cmd::Command::cargo_bin("terrarium-install")
        .unwrap()
        .arg("--root")
        .arg(root)
        .args(args)
        .env("TERRARIUM_LOG_FORMAT", "human")
        .env_remove("TERRARIUM_OIDC_CLIENT_SECRET")
        .env_remove("TERRARIUM_S3_SECRET_KEY")
        .env_remove("TERRARIUM_ROOT_PASSWORD")
        .write_stdin("")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).replace(&root.display().to_string(), "[ROOT]");
    let fixtures = common::manifest_dir().join("tests/fixtures").display().to_string();
    format!("exit: {}\n{}", output.status.code().unwrap_or(-1), stderr.replace(&fixtures, "[FIXTURES]"))
}

const BASE: [&str; 4] = ["--non-interactive", "--render-only", "--public-ip", "203.0.113.7"];

fn with_base<'a>(rest: &[&'a str]) -> Vec<&'a str> {
    BASE.iter().copied().chain(rest.iter().copied()).collect()
}

#[test]
fn every_missing_critical_flag_is_named_at_once() {
    let root = common::ubuntu_root();
    insta::assert_snapshot!("missing-all", run(root.path(), &["--non-interactive", "--public-ip", "203.0.113.7"]));
}

#[test]
fn missing_root_password_is_named_when_ansible_would_run() {
    let root = common::ubuntu_root();
    common::write(&root.path().join("etc/shadow"), "root:*:19000:0:99999:7:::\n", 0o640);
    insta::assert_snapshot!(
        "missing-root-password",
        run(
            root.path(),
            &[
                "--non-interactive",
                "--public-ip",
                "203.0.113.7",
                "--idp",
                "local",
                "--storage-mode",
                "file",
                "--email",
                "ops@example.com"
            ]
        )
    );
}

#[test]
fn oidc_needs_issuer_client_and_secret() {
    let root = common::ubuntu_root();
    insta::assert_snapshot!(
        "oidc-missing",
        run(root.path(), &with_base(&["--idp", "oidc", "--storage-mode", "file", "--email", "ops@example.com"]))
    );
}

#[test]
fn s3_and_syncoid_need_their_settings() {
    let root = common::ubuntu_root();
    insta::assert_snapshot!(
        "s3-syncoid-missing",
        run(
            root.path(),
            &with_base(&[
                "--idp",
                "local",
                "--storage-mode",
                "file",
                "--email",
                "ops@example.com",
                "--enable-s3",
                "--s3-bucket",
                "b1b",
                "--enable-syncoid"
            ])
        )
    );
}

#[test]
fn invalid_values_name_their_flag() {
    let root = common::ubuntu_root();
    let local = ["--idp", "local", "--storage-mode", "file"];
    let cases: [(&str, Vec<&str>); 7] = [
        ("invalid-email", vec!["--email", "ops.example.com"]),
        ("invalid-acme-email", vec!["--email", "ops@example.com", "--acme-email", "le@localhost"]),
        ("invalid-domain", vec!["--email", "ops@example.com", "--domain", "Example.com"]),
        ("invalid-manage-domain", vec!["--email", "ops@example.com", "--manage-domain", "cockpit"]),
        ("invalid-admin-group", vec!["--email", "ops@example.com", "--admin-group", "bad group"]),
        ("invalid-storage-size", vec!["--email", "ops@example.com", "--storage-size", "12X"]),
        ("invalid-storage-source-auto-in-file-mode", vec!["--email", "ops@example.com", "--storage-source", "auto"]),
    ];
    for (name, extra) in cases {
        let args: Vec<&str> = with_base(&local).into_iter().chain(extra).collect();
        insta::assert_snapshot!(name, run(root.path(), &args));
        assert!(!root.path().join("etc/terrarium/config.yaml").exists(), "{name} wrote a config");
    }
}

#[test]
fn storage_sources_are_checked_against_discovery() {
    let root = common::ubuntu_root();
    let facts = |layout: &str| common::storage_fixtures().join(layout).display().to_string();
    let single = facts("single-root-disk");
    let volume = facts("root-plus-blank-volume");
    let cases: [(&str, Vec<&str>); 4] = [
        (
            "storage-root-disk-refused",
            vec!["--storage-mode", "disk", "--storage-source", "/dev/sda", "--storage-facts", &volume],
        ),
        (
            "storage-auto-nothing-usable",
            vec!["--storage-mode", "partition", "--storage-source", "auto", "--storage-facts", &single],
        ),
        ("storage-source-missing", vec!["--storage-mode", "disk"]),
        (
            "storage-size-in-disk-mode",
            vec![
                "--storage-mode",
                "disk",
                "--storage-source",
                "/dev/sdb",
                "--storage-size",
                "10G",
                "--storage-facts",
                &volume,
            ],
        ),
    ];
    for (name, extra) in cases {
        let args: Vec<&str> =
            with_base(&["--idp", "local", "--email", "ops@example.com"]).into_iter().chain(extra).collect();
        insta::assert_snapshot!(name, run(root.path(), &args));
    }
}

#[test]
fn secret_files_must_be_private_and_flags_exclusive() {
    let root = common::ubuntu_root();
    let secret = root.path().join("oidc-secret");
    common::write(&secret, "s3cr3t\n", 0o644);
    let secret = secret.display().to_string();
    let oidc = [
        "--idp",
        "oidc",
        "--oidc",
        "https://id.example.com",
        "--oidc-client",
        "c1",
        "--storage-mode",
        "file",
        "--email",
        "ops@example.com",
    ];
    insta::assert_snapshot!(
        "secret-file-too-open",
        run(root.path(), &with_base(&[&oidc[..], &["--oidc-secret-file", &secret]].concat()))
    );
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    insta::assert_snapshot!(
        "secret-flag-and-file",
        run(root.path(), &with_base(&[&oidc[..], &["--oidc-secret-file", &secret, "--oidc-secret", "x"]].concat()))
    );
}

#[test]
fn other_operating_systems_are_refused() {
    let root = common::ubuntu_root();
    common::write(&root.path().join("etc/os-release"), "ID=debian\nVERSION_ID=\"12\"\n", 0o644);
    insta::assert_snapshot!(
        "unsupported-os",
        run(root.path(), &with_base(&["--idp", "local", "--storage-mode", "file", "--email", "ops@example.com"]))
    );
}

#[test]
fn interactive_mode_without_a_terminal_says_how_to_script_it() {
    let root = common::ubuntu_root();
    insta::assert_snapshot!("no-terminal", run(root.path(), &["--render-only"]));
}

#[test]
fn json_output_reports_what_was_written() {
    let root = common::ubuntu_root();
    let install = || {
        let output = assert_cmd::Command::cargo_bin("terrarium-install")
            .unwrap()
            .arg("--root")
            .arg(root.path())
            .args(with_base(&["--json", "--idp", "local", "--storage-mode", "file", "--email", "ops@example.com"]))
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_slice::<serde_json::Value>(&output.stdout).unwrap()
    };
    let first = install();
    assert_eq!(first["config_changed"], true);
    assert_eq!(first["reconciled"], false);
    assert!(first["rendered_vars"].as_str().unwrap().ends_with("var/lib/terrarium/ansible-vars.json"));
    assert!(first["diff"].as_str().unwrap().contains("+  contact: ops@example.com"), "{first}");
    // The same flags again: nothing changes.
    let again = install();
    assert_eq!(again["config_changed"], false);
    assert_eq!(again["diff"], "");
}
