//! `replicate` to another host over ssh, as on a real first run: a second sshd (OpenSSH)
//! on the loopback of a network namespace of its own, with its own zfs-fuse pool as the
//! target, and the real syncoid. The target's host key comes from the config
//! (`syncoid.known_hosts`) only: no `~/.ssh/known_hosts`, no prompt.
//!
//! The tool runs inside the sshd's namespace (`nsenter --net`), where 127.0.0.1:22 is
//! that sshd; zfs-fuse is reached through its socket file, so both "hosts" share the
//! machine's one daemon and each has its own pool. The target logs in as root: zfs-fuse
//! has no `zfs allow` (its delegation needs pyzfs, and only root may open its socket), so
//! the delegated user docs/backup.md describes is not tested here.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::process::{Command, Output, Stdio};

use common::{Host, shim_path, snapshots, write_text};
use terrarium_testkit::{Sshd, ZfsPool};

fn datasets(pool: &ZfsPool) -> Vec<String> {
    pool.zfs(&["list", "-H", "-o", "name", "-r", pool.name()]).lines().map(str::to_string).collect()
}

/// A source host with `web` (a file and snapshot `s1`), a target pool behind an sshd,
/// and the config naming that target with `known_hosts`.
struct Setup {
    host: Host,
    target: ZfsPool,
    sshd: Sshd,
    /// The host's config without a syncoid section.
    base_config: String,
}

impl Setup {
    fn new() -> Self {
        let host = Host::new(128);
        let target = ZfsPool::create(128);
        let sshd = Sshd::start(&shim_path());
        host.create_instance("web");
        write_text(&host.files("web").join("a.txt"), 50_000, "one");
        host.snapshot("web", "s1");
        let key = host.root.path().join("etc/terrarium/secrets/syncoid-ssh-key");
        terrarium_common::fs::atomic_write(&key, &std::fs::read(sshd.client_key()).unwrap(), 0o600).unwrap();
        let base_config = std::fs::read_to_string(host.root.path().join("etc/terrarium/config.yaml")).unwrap();
        Self { host, target, sshd, base_config }
    }

    /// The host's config with a syncoid section naming the target and `known_hosts`.
    fn configure(&self, known_hosts: &[String]) {
        let config_file = self.host.root.path().join("etc/terrarium/config.yaml");
        let mut config = self.base_config.clone();
        let quoted: Vec<String> = known_hosts.iter().map(|l| format!("'{l}'")).collect();
        config.push_str(&format!(
            "syncoid:\n  enabled: true\n  target: root@127.0.0.1\n  target_dataset: {}\n  ssh_key_file: /etc/terrarium/secrets/syncoid-ssh-key\n  known_hosts: [{}]\n",
            self.target.dataset("replica"),
            quoted.join(", ")
        ));
        terrarium_common::fs::atomic_write(&config_file, config.as_bytes(), 0o600).unwrap();
    }

    /// `terrarium-backup --root R replicate ARGS` in the sshd's network namespace; no
    /// terminal, stdin closed (a prompt would fail, not wait).
    fn replicate(&self, args: &[&str]) -> Output {
        let mut command: Command = self.sshd.in_netns(env!("CARGO_BIN_EXE_terrarium-backup"));
        command
            .arg("--root")
            .arg(self.host.root.path())
            .arg("replicate")
            .args(args)
            .env("PATH", shim_path())
            .env("TERRARIUM_LOG_FORMAT", "logfmt")
            .stdin(Stdio::null());
        command.output().unwrap()
    }
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

#[test]
fn replicate_reaches_a_new_ssh_target_on_the_first_run_with_the_host_key_from_the_config() {
    let setup = Setup::new();
    setup.configure(&[setup.sshd.known_host_line("127.0.0.1")]);
    let known_hosts = setup.host.state("ssh/known_hosts");

    let dry = setup.replicate(&["--dry-run"]);
    assert!(dry.status.success(), "{}", text(&dry));
    assert!(
        String::from_utf8_lossy(&dry.stdout).contains(&format!(
            "--sshoption=UserKnownHostsFile={} --sshoption=GlobalKnownHostsFile=/dev/null --sshoption=StrictHostKeyChecking=yes --sshoption=BatchMode=yes -- {} root@127.0.0.1:{}",
            known_hosts.display(),
            setup.host.pool.dataset("containers"),
            setup.target.dataset("replica")
        )),
        "{}",
        text(&dry)
    );
    assert!(!known_hosts.exists(), "a dry run writes nothing");

    let out = setup.replicate(&[]);
    assert!(out.status.success(), "replicate failed: {}\nsshd:\n{}", text(&out), setup.sshd.log());
    let replica = setup.target.dataset("replica/web");
    assert!(snapshots(&setup.target, &replica).contains(&"s1".to_string()), "{:?}", datasets(&setup.target));
    let copied = std::fs::read_to_string(setup.target.mountpoint("replica/web").join("a.txt")).unwrap();
    assert!(copied.starts_with("one line 0:"), "{}", &copied[..20]);

    use std::os::unix::fs::PermissionsExt;
    let written = std::fs::read_to_string(&known_hosts).unwrap();
    assert!(written.ends_with(&format!("{}\n", setup.sshd.known_host_line("127.0.0.1"))), "{written}");
    assert_eq!(std::fs::metadata(&known_hosts).unwrap().permissions().mode() & 0o777, 0o644);
    assert!(setup.sshd.log().contains("Accepted publickey for root"), "{}", setup.sshd.log());

    // The next run is incremental, over the same checked key.
    write_text(&setup.host.files("web").join("a.txt"), 50_000, "two");
    setup.host.snapshot("web", "s2");
    // syncoid names its sync snapshot by the second.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let out = setup.replicate(&[]);
    assert!(out.status.success(), "second replicate failed: {}", text(&out));
    assert!(snapshots(&setup.target, &replica).contains(&"s2".to_string()));
}

#[test]
fn a_wrong_or_missing_host_key_fails_without_a_prompt_and_nothing_is_received() {
    let setup = Setup::new();
    let before = datasets(&setup.target);

    // A key for another host only: refused before syncoid runs, naming the setting.
    setup.configure(&[setup.sshd.known_host_line("zfs.example.com")]);
    for args in [&["--dry-run"][..], &[]] {
        let out = setup.replicate(args);
        let shown = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {shown}");
        assert!(
            shown.contains("syncoid.known_hosts has no host key for 127.0.0.1")
                && shown.contains("ssh-keyscan -t ed25519 127.0.0.1"),
            "{shown}"
        );
    }

    // The right host with a key the target does not have: ssh refuses it.
    setup.configure(&[setup.sshd.wrong_known_host_line("127.0.0.1")]);
    let started = std::time::Instant::now();
    let out = setup.replicate(&[]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(started.elapsed() < std::time::Duration::from_secs(60), "it waited: {shown}");
    assert!(shown.contains("Host key verification failed"), "ssh's own words are kept: {shown}");
    assert!(
        shown.contains("is not the one syncoid.known_hosts names")
            && shown.contains("ssh-keyscan -t ed25519 127.0.0.1"),
        "{shown}"
    );
    assert_eq!(datasets(&setup.target), before, "nothing received");
    assert!(!setup.sshd.log().contains("Accepted publickey"), "no login happened: {}", setup.sshd.log());
}
