//! The real binary over a scratch root: usage, configuration errors, clear S3 errors
//! (wrong credentials, bucket, endpoint against a real s3s-fs), the sanoid golden tree.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::path::Path;
use std::process::{Command, Output};

use terrarium_testkit::S3Server;

const BASE_CONFIG: &str = "schema_version: 2\ndomains:\n  manage: manage.example.com\n  proxy: proxy.example.com\n  lxd: lxd.example.com\n  auth: auth.example.com\nemails:\n  contact: ops@example.com\n  acme: acme@example.com\nidentity:\n  mode: oidc\n  issuer: https://id.example.com\n  client_id: terrarium\n  client_secret_file: /etc/terrarium/secrets/oidc-client-secret\nstorage:\n  mode: file\n  size: 1G\n  pool: terrarium-cli-test-no-such-pool\n";

fn root(extra: &str) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    terrarium_common::fs::atomic_write(
        &root.path().join("etc/terrarium/config.yaml"),
        format!("{BASE_CONFIG}{extra}").as_bytes(),
        0o600,
    )
    .unwrap();
    std::fs::write(root.path().join("etc/hostname"), "clihost\n").unwrap();
    root
}

fn s3_section(endpoint: &str, bucket: &str, access: &str) -> String {
    format!(
        "s3:\n  enabled: true\n  endpoint: {endpoint}\n  bucket: {bucket}\n  access_key: {access}\n  secret_key_file: /etc/terrarium/secrets/s3-secret-key\n"
    )
}

fn write_secret(root: &Path, secret: &str) {
    terrarium_common::fs::atomic_write(&root.join("etc/terrarium/secrets/s3-secret-key"), secret.as_bytes(), 0o600)
        .unwrap();
}

fn run(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_terrarium-backup"))
        .arg("--root")
        .arg(root)
        .args(args)
        .env("PATH", common::tool_path())
        .env("TERRARIUM_LOG_FORMAT", "human")
        .output()
        .unwrap()
}

fn stderr(output: &Output, root: &Path) -> String {
    String::from_utf8_lossy(&output.stderr).replace(&root.display().to_string(), "[ROOT]")
}

#[test]
fn help_lists_every_command() {
    let output = Command::new(env!("CARGO_BIN_EXE_terrarium-backup")).arg("--help").output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    insta::assert_snapshot!(String::from_utf8_lossy(&output.stdout));
}

#[test]
fn a_missing_config_is_a_usage_error_naming_the_fix() {
    let root = tempfile::tempdir().unwrap();
    let output = run(root.path(), &["list"]);
    assert_eq!(output.status.code(), Some(2));
    insta::assert_snapshot!(stderr(&output, root.path()));
}

#[test]
fn export_without_s3_says_how_to_enable_it_and_the_timer_mode_is_a_no_op() {
    let root = root("");
    let output = run(root.path(), &["export"]);
    assert_eq!(output.status.code(), Some(1));
    insta::assert_snapshot!(stderr(&output, root.path()));
    let output = run(root.path(), &["export", "--if-enabled"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output, root.path()));
    let output = run(root.path(), &["replicate", "--if-enabled"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output, root.path()));
}

#[test]
fn wrong_credentials_bucket_and_endpoint_get_one_clear_line_each() {
    let s3 = S3Server::start();
    let filter = |text: String| text.replace(&s3.endpoint(), "[ENDPOINT]");

    let root1 = root(&s3_section(&s3.endpoint(), s3.bucket(), s3.access_key()));
    write_secret(root1.path(), "not-the-secret");
    let output = run(root1.path(), &["list"]);
    assert_eq!(output.status.code(), Some(1));
    insta::assert_snapshot!("wrong_secret", filter(stderr(&output, root1.path())));

    let root2 = root(&s3_section(&s3.endpoint(), "no-such-bucket", s3.access_key()));
    write_secret(root2.path(), s3.secret_key());
    let output = run(root2.path(), &["list"]);
    assert_eq!(output.status.code(), Some(1));
    insta::assert_snapshot!("wrong_bucket", filter(stderr(&output, root2.path())));

    // Nothing listens on port 9 of loopback (discard): connection refused, after retries.
    let root3 = root(&s3_section("http://127.0.0.1:9", s3.bucket(), s3.access_key()));
    write_secret(root3.path(), s3.secret_key());
    let output = run(root3.path(), &["list"]);
    assert_eq!(output.status.code(), Some(1));
    // This config's pool does not exist (no zfs needed here): `list` warns and lists S3.
    let text = stderr(&output, root3.path());
    let (warning, error) = text.split_once('\n').unwrap();
    assert!(warning.starts_with("warning: pool terrarium-cli-test-no-such-pool does not exist"), "{text}");
    assert!(error.starts_with("terrarium-backup: error: cannot reach the S3 endpoint http://127.0.0.1:9: "), "{text}");
    assert!(error.trim_end().ends_with("check s3.endpoint and the network"), "{text}");
    assert_eq!(error.trim_end().lines().count(), 1, "one error line: {text}");
}

#[test]
fn an_open_secret_file_is_refused() {
    let root = root(&s3_section("http://127.0.0.1:9", "bucket", "key"));
    write_secret(root.path(), "secret");
    let secret = root.path().join("etc/terrarium/secrets/s3-secret-key");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    let output = run(root.path(), &["list"]);
    assert_eq!(output.status.code(), Some(1));
    insta::assert_snapshot!(stderr(&output, root.path()));
}

/// Copy `tests/golden/<case>/input` to a scratch root, run, and compare the tree with
/// `expected` (only files; the config itself is input).
#[test]
fn golden_sanoid_config() {
    let case = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/sanoid");
    let root = tempfile::tempdir().unwrap();
    copy_tree(&case.join("input"), root.path());
    let output = run(root.path(), &["sanoid-config"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output, root.path()));
    let mut written = files(root.path());
    // The run lock stays behind by design (terrarium_common::locks): state, not output.
    assert!(written.remove("var/lib/terrarium/locks/sanoid-config.lock").is_some(), "{written:?}");
    let mut expected = files(&case.join("expected"));
    for (path, text) in files(&case.join("input")) {
        expected.insert(path, text);
    }
    assert_eq!(written, expected);
    let dry = run(root.path(), &["sanoid-config", "--dry-run", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&dry.stdout).unwrap();
    assert_eq!(report["changed"], false);
}

fn copy_tree(from: &Path, to: &Path) {
    for (rel, text) in files(from) {
        let target = to.join(&rel);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::write(target, text).unwrap();
    }
}

fn files(dir: &Path) -> std::collections::BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut std::collections::BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.insert(
                    path.strip_prefix(root).unwrap().display().to_string(),
                    std::fs::read_to_string(&path).unwrap(),
                );
            }
        }
    }
    let mut out = Default::default();
    walk(dir, dir, &mut out);
    out
}

#[test]
fn a_replication_target_that_is_an_option_or_shell_syntax_is_refused_before_syncoid_runs() {
    let root = root("");
    for to in [
        "--to=--sshkey=/tmp/k",
        "--to=-r",
        "--to=a;touch${IFS}x@zfs.example.com:backup/t",
        "--to=backup@zfs.example.com:backup/t;id",
    ] {
        for dry_run in [false, true] {
            let mut args = vec!["replicate", to];
            if dry_run {
                args.push("--dry-run");
            }
            let output = run(root.path(), &args);
            let shown = stderr(&output, root.path());
            assert_eq!(output.status.code(), Some(2), "{args:?}: {shown}");
            assert!(shown.contains("--to: ") && shown.contains("user@host:pool/dataset"), "{args:?}: {shown}");
            assert!(
                output.stdout.is_empty(),
                "{args:?} printed a command: {}",
                String::from_utf8_lossy(&output.stdout)
            );
        }
    }
}

#[test]
fn sanoid_config_takes_its_lock_and_a_dry_run_does_not() {
    let root = root("");
    let paths = terrarium_common::Paths::new(root.path());
    let held = terrarium_common::locks::SANOID_CONFIG.acquire(&paths, "sanoid-config").unwrap();
    let dry = run(root.path(), &["sanoid-config", "--dry-run"]);
    assert_eq!(dry.status.code(), Some(0), "{}", stderr(&dry, root.path()));
    let busy = run(root.path(), &["sanoid-config"]);
    let shown = stderr(&busy, root.path());
    assert_eq!(busy.status.code(), Some(4), "{shown}");
    assert!(shown.contains(&format!("pid {} (", std::process::id())) && shown.contains(" sanoid-config)"), "{shown}");
    assert!(!root.path().join("etc/sanoid/sanoid.conf").exists(), "written while another run held the lock");
    drop(held);
    assert_eq!(run(root.path(), &["sanoid-config"]).status.code(), Some(0));
    assert!(root.path().join("etc/sanoid/sanoid.conf").is_file());
}

/// One bad config file per case; what `list` says about each, root replaced.
/// One case: what it is, and how it breaks the root's config.
type BadConfig<'a> = (&'a str, &'a dyn Fn(&Path));

fn bad_config_messages(cases: &[BadConfig]) -> String {
    let mut shown = String::new();
    for (name, make) in cases {
        let root = tempfile::tempdir().unwrap();
        make(root.path());
        let output = run(root.path(), &["list"]);
        let message = stderr(&output, root.path());
        assert!(output.status.code().is_some_and(|code| code != 0), "{name} exited 0: {message}");
        assert_eq!(message.lines().count(), 1, "{name}: one line: {message}");
        for library_words in ["DuplicateKeyPolicy", "from_str_multiple", "Options"] {
            assert!(!message.contains(library_words), "{name}: library wording: {message}");
        }
        shown.push_str(&format!("{name} (exit {}):\n{message}\n", output.status.code().unwrap_or(-1)));
    }
    shown
}

fn config_file(root: &Path) -> std::path::PathBuf {
    root.join("etc/terrarium/config.yaml")
}

fn write_config(root: &Path, text: &str) {
    terrarium_common::fs::atomic_write(&config_file(root), text.as_bytes(), 0o600).unwrap();
}

#[test]
fn bad_config_files_are_named_with_the_fix_and_each_cause_once() {
    let cases: &[BadConfig] = &[
        ("a duplicate key", &|root| write_config(root, &format!("{BASE_CONFIG}storage:\n  mode: file\n"))),
        ("two documents", &|root| write_config(root, &format!("{BASE_CONFIG}---\nschema_version: 2\n"))),
        ("a syntax error", &|root| write_config(root, &BASE_CONFIG.replace("domains:\n", "domains: [\n"))),
        ("an unknown key of schema version 1", &|root| {
            write_config(root, "manage_domain: a.example.com\nfrobnicate: 1\n")
        }),
        ("a schema version from the future", &|root| {
            write_config(root, &BASE_CONFIG.replace("schema_version: 2", "schema_version: 7"))
        }),
        ("a control character in the S3 access key", &|root| {
            write_config(
                root,
                &format!("{BASE_CONFIG}{}", s3_section("http://127.0.0.1:9", "bucket", "\"AKIA\\x01\"")),
            );
        }),
        ("a FIFO instead of the config", &|root| {
            std::fs::create_dir_all(root.join("etc/terrarium")).unwrap();
            assert!(Command::new("mkfifo").arg(config_file(root)).status().unwrap().success());
        }),
        ("a directory instead of the config", &|root| std::fs::create_dir_all(config_file(root)).unwrap()),
        ("a file where the config directory belongs", &|root| {
            std::fs::create_dir_all(root.join("etc")).unwrap();
            std::fs::write(root.join("etc/terrarium"), "").unwrap();
        }),
    ];
    insta::assert_snapshot!(bad_config_messages(cases));
}

/// The AWS SDK's own events (through `tracing`'s `log` feature): its retries show at
/// `-v`, marked with the crate they come from, and stay out of a plain run.
#[test]
fn the_sdks_retries_reach_the_log_at_verbose_only() {
    let root = root(&s3_section("http://127.0.0.1:9", "bucket-one", "access"));
    write_secret(root.path(), "secret");
    let plain = stderr(&run(root.path(), &["verify"]), root.path());
    assert!(!plain.contains("retrying"), "{plain}");
    assert_eq!(plain.trim_end().lines().count(), 1, "one line: {plain}");
    let verbose = stderr(&run(root.path(), &["-v", "verify"]), root.path());
    let retry = verbose.lines().find(|l| l.contains("failed with") && l.contains("retrying after"));
    let retry = retry.unwrap_or_else(|| panic!("no SDK retry line at -v:\n{verbose}"));
    assert!(retry.ends_with("from=aws_smithy_runtime"), "{retry}");
}

/// Under systemd, each line starts with its syslog priority for journald (`<3>` an
/// error), but only when stderr is the stream `JOURNAL_STREAM` names: a tool whose
/// stderr someone captured keeps plain lines.
#[test]
fn lines_to_the_journal_carry_their_priority() {
    use std::os::unix::fs::MetadataExt;
    let root = root(""); // no pool, S3 off: export fails
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("journal");
    let run_with = |journal_stream: &str| {
        let file = std::fs::File::create(&log).unwrap();
        let meta = file.metadata().unwrap();
        let stream = journal_stream.replace("DEV", &meta.dev().to_string()).replace("INO", &meta.ino().to_string());
        let status = Command::new(env!("CARGO_BIN_EXE_terrarium-backup"))
            .arg("--root")
            .arg(root.path())
            .args(["export", "--dry-run"])
            .env("JOURNAL_STREAM", stream)
            .env_remove("TERRARIUM_LOG_FORMAT")
            .stderr(file)
            .status()
            .unwrap();
        assert!(!status.success());
        std::fs::read_to_string(&log).unwrap()
    };
    let journal = run_with("DEV:INO");
    assert!(journal.starts_with("<3>level=error tool=terrarium-backup msg="), "{journal}");
    let captured = run_with("DEV:1");
    assert!(captured.starts_with("level=error "), "{captured}");
}
