//! A second "host" for replication tests: OpenSSH's sshd in a network namespace of its
//! own, listening on that namespace's loopback, with a host key and a client key made
//! for the test.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use terrarium_common::process::Cmd;

use crate::programs::require;
use crate::support::{
    kill_child, kill_netns_processes, log_tail, netns_of, run_or_panic, spawn_tied, temp_dir, tied_command, wait_until,
};

/// sshd refuses to start without its privilege separation directory (Debian's package
/// makes it at boot through tmpfiles; empty, root's, 0755).
const PRIVSEP_DIR: &str = "/run/sshd";

/// sshd in a new network namespace (only `lo`, up), listening on 127.0.0.1:22 there.
/// Logins: `root` with [`Sshd::client_key`] (sessions get `PATH` = the `session_path`
/// given to [`Sshd::start`], so `zfs` and test shims are found as on a real target).
/// Reach it from inside the namespace: [`Sshd::in_netns`] runs a program there.
/// Dropping it ends sshd, its sessions and the namespace.
#[derive(Debug)]
pub struct Sshd {
    holder: Child,
    netns: Option<PathBuf>,
    dir: tempfile::TempDir,
}

impl Sshd {
    /// Start sshd; `session_path` is the `PATH` its sessions get.
    pub fn start(session_path: &str) -> Self {
        let sshd = require("sshd");
        let dir = temp_dir("sshd");
        let w = dir.path();
        for name in ["host_key", "client_key", "other_host_key"] {
            run_or_panic(
                &Cmd::new(require("ssh-keygen"))
                    .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
                    .arg(w.join(name)),
            );
        }
        std::fs::copy(w.join("client_key.pub"), w.join("authorized_keys"))
            .unwrap_or_else(|e| panic!("testkit: authorized_keys: {e}"));
        // StrictModes off: the files live under /tmp (world-writable), not in a home.
        let config = format!(
            "ListenAddress 127.0.0.1:22\nHostKey {w}/host_key\nAuthorizedKeysFile {w}/authorized_keys\nPidFile none\n\
             StrictModes no\nUsePAM no\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nSetEnv PATH={session_path}\nLogLevel VERBOSE\n",
            w = w.display()
        );
        let config_file = w.join("sshd_config");
        std::fs::write(&config_file, config).unwrap_or_else(|e| panic!("testkit: write sshd_config: {e}"));
        std::fs::create_dir_all(PRIVSEP_DIR).unwrap_or_else(|e| panic!("testkit: create {PRIVSEP_DIR}: {e}"));
        run_or_panic(&Cmd::new(&sshd).arg("-t").arg("-f").arg(&config_file));

        let log = w.join("sshd.log");
        let mut command = tied_command(&require("unshare"));
        // unshare execs bash, bash execs sshd: the holder is sshd itself, in the namespace.
        command
            .args(["--net", "--", "bash", "-c", r#"ip link set lo up && exec "$0" -D -e -f "$1""#])
            .arg(&sshd)
            .arg(&config_file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap_or_else(|e| panic!("testkit: {e}")));
        let holder = spawn_tied(command).unwrap_or_else(|e| panic!("testkit: start sshd: {e}"));
        let mut this = Self { holder, netns: None, dir };
        let up = wait_until(Duration::from_secs(20), Duration::from_millis(100), || {
            std::fs::read_to_string(&log).is_ok_and(|text| text.contains("Server listening on 127.0.0.1 port 22"))
        });
        if !up {
            kill_child(&mut this.holder);
            panic!("testkit: sshd did not start listening within 20 s:\n{}", log_tail(&log));
        }
        this.netns = netns_of(this.holder.id());
        this
    }

    /// The private key `root` logs in with.
    pub fn client_key(&self) -> PathBuf {
        self.dir.path().join("client_key")
    }

    /// The known_hosts line of this sshd's host key for `host` (`HOST ssh-ed25519 AAAA...`).
    pub fn known_host_line(&self, host: &str) -> String {
        known_host_line(&self.dir.path().join("host_key.pub"), host)
    }

    /// A known_hosts line for `host` with a key this sshd does not have (a look-alike).
    pub fn wrong_known_host_line(&self, host: &str) -> String {
        known_host_line(&self.dir.path().join("other_host_key.pub"), host)
    }

    /// A command running `program` in sshd's network namespace (where 127.0.0.1:22 is it).
    pub fn in_netns(&self, program: impl AsRef<OsStr>) -> Command {
        let mut command = Command::new(require("nsenter"));
        command.arg(format!("--target={}", self.holder.id())).args(["--net", "--"]).arg(program);
        command
    }

    /// sshd's log so far (`LogLevel VERBOSE`: logins and the keys they used).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }
}

fn known_host_line(public_key: &Path, host: &str) -> String {
    let text = std::fs::read_to_string(public_key).unwrap_or_else(|e| panic!("testkit: {}: {e}", public_key.display()));
    let mut fields = text.split_whitespace();
    let (Some(kind), Some(key)) = (fields.next(), fields.next()) else {
        panic!("testkit: {} is not a public key", public_key.display())
    };
    format!("{host} {kind} {key}")
}

impl Drop for Sshd {
    fn drop(&mut self) {
        kill_child(&mut self.holder);
        if let Some(netns) = &self.netns {
            kill_netns_processes(netns);
        }
    }
}
