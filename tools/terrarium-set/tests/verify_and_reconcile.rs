//! `terrarium-set` end to end: the S3 probe against s3s-fs decides whether anything is
//! written, the error messages name what to fix, and without `--no-reconcile` the real
//! `ansible-playbook` runs (the install crate's asserting test playbook).

#![allow(clippy::unwrap_used)]

#[path = "../../terrarium-install/tests/common/mod.rs"]
mod common;

use terrarium_testkit::S3Server;

const CONFIG: &str = "schema_version: 2\n\
domains: {root: example.com, manage: manage.example.com, proxy: proxy.example.com, lxd: lxd.example.com, auth: auth.example.com}\n\
emails: {contact: ops@example.com, acme: ops@example.com}\n\
identity: {mode: local, admin_group: terrarium-admins}\n\
storage: {mode: file, size: 64G}\n";

fn scratch() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    common::write(&root.path().join("etc/terrarium/config.yaml"), CONFIG, 0o600);
    root
}

fn set(root: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut command = assert_cmd::Command::cargo_bin("terrarium-set").unwrap();
    command
        .arg("--root")
        .arg(root)
        .args(args)
        .env("TERRARIUM_LOG_FORMAT", "human")
        .env_remove("TERRARIUM_S3_SECRET_KEY");
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().unwrap();
    let shown = |bytes: &[u8]| String::from_utf8_lossy(bytes).replace(&root.display().to_string(), "[ROOT]");
    (output.status.code().unwrap_or(-1), shown(&output.stdout), shown(&output.stderr))
}

#[test]
fn s3_is_enabled_only_after_the_probe_passed() {
    let server = S3Server::start();
    let root = scratch();
    let before = std::fs::read_to_string(root.path().join("etc/terrarium/config.yaml")).unwrap();
    let endpoint = server.endpoint();
    let args = [
        "s3",
        "--no-reconcile",
        "--enable",
        "--s3-endpoint",
        &endpoint,
        "--s3-bucket",
        server.bucket(),
        "--s3-access-key",
        server.access_key(),
    ];

    let (code, _, stderr) = set(root.path(), &args, &[("TERRARIUM_S3_SECRET_KEY", "not-the-secret")]);
    assert_eq!(code, 5, "{stderr}");
    assert!(stderr.contains("S3 probe of bucket") && !stderr.contains("not-the-secret"), "{stderr}");
    assert_eq!(std::fs::read_to_string(root.path().join("etc/terrarium/config.yaml")).unwrap(), before);
    assert!(!root.path().join("etc/terrarium/secrets").exists());

    let (code, stdout, stderr) = set(root.path(), &args, &[("TERRARIUM_S3_SECRET_KEY", server.secret_key())]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("+  enabled: true") && stdout.contains("verified: s3"), "{stdout}");
    assert_eq!(
        std::fs::read_to_string(root.path().join("etc/terrarium/secrets/s3-secret-key")).unwrap(),
        server.secret_key()
    );
}

#[test]
fn error_messages_name_the_fix() {
    let root = scratch();
    let cases: [(&str, Vec<&str>); 5] = [
        ("nothing-named", vec!["emails"]),
        ("invalid-email", vec!["emails", "--acme-email", "nope"]),
        ("oidc-missing", vec!["idp", "oidc"]),
        ("oidc-flags-in-local-mode", vec!["idp", "local", "--oidc", "https://id.example.com"]),
        ("syncoid-missing", vec!["syncoid", "--enable"]),
    ];
    for (name, args) in cases {
        let (code, _, stderr) = set(root.path(), &args, &[]);
        insta::assert_snapshot!(name, format!("exit: {code}\n{stderr}"));
    }
    let fresh = tempfile::tempdir().unwrap();
    let (code, _, stderr) = set(fresh.path(), &["emails", "--email", "a@example.com"], &[]);
    insta::assert_snapshot!("not-installed", format!("exit: {code}\n{stderr}"));
}

#[test]
fn a_syncoid_target_with_shell_syntax_is_refused_and_nothing_is_written() {
    let root = scratch();
    let before = std::fs::read_to_string(root.path().join("etc/terrarium/config.yaml")).unwrap();
    let key = root.path().join("key");
    common::write(&key, "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n", 0o600);
    let key = key.display().to_string();
    for target in ["a;touch${IFS}x@zfs.example.com", "-oProxyCommand=id@zfs.example.com", "backup@zfs.example.com$(id)"]
    {
        // `=`: a value starting with `-` is otherwise taken for a flag by clap, which
        // refuses it before the target's own check can.
        let target_flag = format!("--syncoid-target={target}");
        let args = [
            "syncoid",
            "--no-reconcile",
            "--enable",
            &target_flag,
            "--syncoid-target-dataset",
            "backup/t",
            "--syncoid-ssh-key",
            &key,
        ];
        let (code, _, stderr) = set(root.path(), &args, &[]);
        assert_eq!(code, 2, "{target}: {stderr}");
        assert!(stderr.contains("--syncoid-target") && stderr.contains("backup@zfs.example.com"), "{target}: {stderr}");
        assert_eq!(std::fs::read_to_string(root.path().join("etc/terrarium/config.yaml")).unwrap(), before);
        assert!(!root.path().join("etc/terrarium/secrets").exists());
    }
}

#[test]
fn a_change_is_reconciled_with_ansible() {
    terrarium_testkit::require("ansible-playbook");
    let root = scratch();
    let work = tempfile::tempdir().unwrap();
    let playbook = common::manifest_dir().join("../terrarium-install/tests/fixtures/ansible/assert-vars.yml");
    let env = [
        ("TERRARIUM_PLAYBOOK", playbook.to_str().unwrap()),
        ("TERRARIUM_TEST_OUT", work.path().to_str().unwrap()),
        ("TERRARIUM_TEST_EXPECT_MANAGE", "manage.example.org"),
        ("TERRARIUM_TEST_EXPECT_ROOT_PWD", ""),
        ("ANSIBLE_HOME", work.path().to_str().unwrap()),
        ("ANSIBLE_LOCAL_TEMP", work.path().to_str().unwrap()),
    ];
    let (code, stdout, stderr) = set(root.path(), &["domains", "example.org"], &env);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("saved; host converged"), "{stdout}");
    let received: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(work.path().join("received.json")).unwrap()).unwrap();
    assert_eq!(received["manage"], "manage.example.org");
    // Nothing to change: Ansible is not run again.
    std::fs::remove_file(work.path().join("received.json")).unwrap();
    let (code, stdout, _) = set(root.path(), &["domains", "example.org"], &env);
    assert_eq!(code, 0);
    assert!(stdout.contains("domains: nothing to change"), "{stdout}");
    assert!(!work.path().join("received.json").exists());
}

#[test]
fn a_dry_run_is_not_held_up_by_the_config_lock_and_a_real_run_names_the_holder() {
    let root = scratch();
    let paths = terrarium_common::Paths::new(root.path());
    let _held = terrarium_common::locks::CONFIG.acquire(&paths, "install").unwrap();
    let args = ["emails", "--no-reconcile", "--acme-email", "acme@example.com"];
    let (code, stdout, stderr) = set(root.path(), &[&["--dry-run"][..], &args[..]].concat(), &[]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("--dry-run: nothing was written"), "{stdout}");
    let (code, _, stderr) = set(root.path(), &args, &[]);
    assert_eq!(code, 4, "{stderr}");
    assert!(stderr.contains(&format!("pid {} (", std::process::id())) && stderr.contains(" install)"), "{stderr}");
}
