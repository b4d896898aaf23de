//! The interactive install driven through a pseudo-terminal (tmux): the answers,
//! including a re-asked invalid e-mail, produce the same config as the equivalent flags.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A private tmux server (own socket) running one command; killed on drop.
struct Tmux {
    tmux: PathBuf,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmux {
    fn start(command: &str) -> Self {
        let tmux = terrarium_testkit::require("tmux");
        let dir = tempfile::Builder::new().prefix("terrarium-tmux-").tempdir().unwrap();
        let socket = dir.path().join("socket");
        let status = Command::new(&tmux)
            .arg("-S")
            .arg(&socket)
            .args(["-f", "/dev/null", "new-session", "-d", "-x", "200", "-y", "60", "sh", "-c", command])
            .status()
            .unwrap();
        assert!(status.success(), "tmux did not start");
        Self { tmux, socket, _dir: dir }
    }
    fn tmux(&self) -> Command {
        let mut command = Command::new(&self.tmux);
        command.arg("-S").arg(&self.socket);
        command
    }
    fn screen(&self) -> String {
        let out = self.tmux().args(["capture-pane", "-p", "-S", "-200"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
    /// Wait until the screen shows `text` (a prompt), then type `keys`.
    fn answer(&self, text: &str, keys: &str, enter: bool) {
        self.answer_nth(text, 1, keys, enter);
    }
    /// Wait until `text` is on the screen `n` times (a prompt asked again), then type.
    fn answer_nth(&self, text: &str, n: usize, keys: &str, enter: bool) {
        let start = Instant::now();
        while self.screen().matches(text).count() < n {
            assert!(start.elapsed() < Duration::from_secs(20), "no {text:?} on the screen:\n{}", self.screen());
            std::thread::sleep(Duration::from_millis(50));
        }
        if !keys.is_empty() {
            assert!(self.tmux().args(["send-keys", "-l", keys]).status().unwrap().success());
        }
        if enter {
            assert!(self.tmux().args(["send-keys", "Enter"]).status().unwrap().success());
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux().arg("kill-server").status();
    }
}

fn wait_for_file(path: &Path, screen: impl Fn() -> String) -> String {
    let start = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && text.ends_with('\n')
        {
            return text;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "the install did not finish:\n{}", screen());
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn quote(path: &Path) -> String {
    format!("'{}'", path.display())
}

#[test]
fn the_interactive_flow_gives_the_same_config_as_the_flags() {
    let facts = common::storage_fixtures().join("root-plus-blank-volume");
    let binary = assert_cmd::cargo::cargo_bin("terrarium-install");

    let asked = common::ubuntu_root();
    let exit_file = asked.path().join("exit-code");
    let command = format!(
        "TERRARIUM_LOG_FORMAT=human {} --root {} --render-only --storage-facts {}; echo $? > {}; sleep 30",
        quote(&binary),
        quote(asked.path()),
        quote(&facts),
        quote(&exit_file)
    );
    let tmux = Tmux::start(&command);
    tmux.answer("Root domain", "example.com", true);
    tmux.answer("Contact e-mail", "not-an-email", true);
    tmux.answer("is not an e-mail address", "ops@example.com", true);
    tmux.answer("Identity provider", "", true);
    tmux.answer("ZITADEL administrator e-mail", "", true);
    tmux.answer("Storage", "", true);
    tmux.answer("Device (largest first)", "", true);
    tmux.answer("Wipe /dev/sdb", "y", false);
    tmux.answer("Export backups to S3?", "n", false);
    tmux.answer("Replicate with syncoid?", "n", false);
    let code = wait_for_file(&exit_file, || tmux.screen());
    assert_eq!(code.trim(), "0", "{}", tmux.screen());
    assert!(tmux.screen().contains("not offered: /dev/sda is the root disk"), "{}", tmux.screen());

    let flagged = common::ubuntu_root();
    let output = assert_cmd::Command::new(&binary)
        .arg("--root")
        .arg(flagged.path())
        .args([
            "--non-interactive",
            "--render-only",
            "--yes",
            "--domain",
            "example.com",
            "--email",
            "ops@example.com",
            "--idp",
            "local",
        ])
        .args([
            "--zitadel-admin-email",
            "ops@example.com",
            "--storage-mode",
            "disk",
            "--storage-source",
            "/dev/sdb",
            "--storage-facts",
        ])
        .arg(&facts)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));

    let config = |root: &Path| std::fs::read_to_string(root.join("etc/terrarium/config.yaml")).unwrap();
    assert_eq!(config(asked.path()), config(flagged.path()));
    assert!(config(asked.path()).contains("source: /dev/sdb"));
}

#[test]
fn a_failed_s3_probe_is_asked_again_and_the_root_password_reaches_ansible() {
    let server = terrarium_testkit::S3Server::start();
    terrarium_testkit::require("ansible-playbook");
    let root = common::ubuntu_root();
    common::write(&root.path().join("etc/shadow"), "root:!:19000:0:99999:7:::\n", 0o640);
    let work = tempfile::tempdir().unwrap();
    let exit_file = work.path().join("exit-code");
    let command = format!(
        "TERRARIUM_LOG_FORMAT=human TERRARIUM_PLAYBOOK={} TERRARIUM_TEST_OUT={} TERRARIUM_TEST_EXPECT_MANAGE=manage.example.com \
         TERRARIUM_TEST_EXPECT_ROOT_PWD=tmux-pass ANSIBLE_HOME={} ANSIBLE_LOCAL_TEMP={} {} --root {} --domain example.com --email ops@example.com \
         --idp local --zitadel-admin-email ops@example.com --storage-mode file; echo $? > {}; sleep 30",
        quote(&common::manifest_dir().join("tests/fixtures/ansible/assert-vars.yml")),
        quote(work.path()),
        quote(&work.path().join("ansible")),
        quote(&work.path().join("ansible/tmp")),
        quote(&assert_cmd::cargo::cargo_bin("terrarium-install")),
        quote(root.path()),
        quote(&exit_file)
    );
    let tmux = Tmux::start(&command);
    tmux.answer("Root password for Cockpit", "tmux-pass", true);
    tmux.answer("Repeat it", "tmux-pass", true);
    tmux.answer("Export backups to S3?", "y", false);
    tmux.answer("S3 endpoint URL", &server.endpoint(), true);
    tmux.answer("Bucket", server.bucket(), true);
    tmux.answer("Region", "", true);
    tmux.answer("Key prefix", "", true);
    tmux.answer("Access key id", server.access_key(), true);
    tmux.answer("Secret key", "wrong-secret", true);
    // Asked again, with the answers given as defaults.
    tmux.answer_nth("S3 endpoint URL", 2, "", true);
    tmux.answer_nth("Bucket", 2, "", true);
    tmux.answer_nth("Region", 2, "", true);
    tmux.answer_nth("Key prefix", 2, "", true);
    tmux.answer_nth("Access key id", 2, "", true);
    tmux.answer_nth("Secret key", 2, server.secret_key(), true);
    tmux.answer("Replicate with syncoid?", "n", false);
    let code = wait_for_file(&exit_file, || tmux.screen());
    let screen = tmux.screen();
    assert_eq!(code.trim(), "0", "{screen}");
    assert!(
        screen.contains("S3 probe of bucket `terrarium-test` failed")
            && screen.contains("The probe object was written and deleted."),
        "{screen}"
    );
    assert!(
        !screen.contains("wrong-secret") && !screen.contains(server.secret_key()),
        "a secret was echoed:\n{screen}"
    );
    let received: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(work.path().join("received.json")).unwrap()).unwrap();
    assert_eq!(received["got_root_password"], true);
    let config = std::fs::read_to_string(root.path().join("etc/terrarium/config.yaml")).unwrap();
    assert!(
        config.contains(&format!("endpoint: {}", server.endpoint())) && config.contains("enabled: true"),
        "{config}"
    );
}
