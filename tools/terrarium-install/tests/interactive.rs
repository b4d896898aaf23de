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
        let start = Instant::now();
        while !self.screen().contains(text) {
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
        if let Ok(text) = std::fs::read_to_string(path) {
            if text.ends_with('\n') {
                return text;
            }
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
    let facts = common::manifest_dir().join("tests/fixtures/storage/root-plus-blank-volume");
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
        .args(["--non-interactive", "--render-only", "--yes", "--domain", "example.com", "--email", "ops@example.com", "--idp", "local"])
        .args(["--zitadel-admin-email", "ops@example.com", "--storage-mode", "disk", "--storage-source", "/dev/sdb", "--storage-facts"])
        .arg(&facts)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));

    let config = |root: &Path| std::fs::read_to_string(root.join("etc/terrarium/config.yaml")).unwrap();
    assert_eq!(config(asked.path()), config(flagged.path()));
    assert!(config(asked.path()).contains("source: /dev/sdb"));
}
