//! ufw with private copies of its state, in a private network and mount namespace.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use terrarium_common::process::Cmd;

use crate::programs::require;
use crate::support::{kill_child, kill_netns_processes, netns_of, run_or_panic, spawn_tied, temp_dir, tied_command};
use crate::zfs::shell_quote;

/// Package defaults of ufw's rules and config (Debian's ufw ships them here).
const PRISTINE: &str = "/usr/share/ufw/iptables";

/// A long-lived namespace (net + mount) where /etc/ufw, /lib/ufw and /etc/default/ufw
/// are private copies, starting from the package defaults (inactive, no rules), so
/// `ufw enable` and rules touch neither the host's files nor its firewall. Put
/// [`UfwSandbox::shim_dir`] first on PATH of the tool under test. Dropping it ends the
/// namespace and removes the copies.
#[derive(Debug)]
pub struct UfwSandbox {
    holder: Child,
    pid: u32,
    netns: Option<PathBuf>,
    dir: tempfile::TempDir,
}

impl UfwSandbox {
    pub fn start() -> Self {
        let ufw = require("ufw");
        let dir = temp_dir("ufw");
        let w = dir.path();
        for (from, to) in [("/etc/ufw", "etc-ufw"), ("/lib/ufw", "lib-ufw"), ("/etc/default/ufw", "default-ufw")] {
            run_or_panic(&Cmd::new("cp").args(["-a", "--"]).arg(from).arg(w.join(to)));
        }
        reset_to_package_defaults(&w.join("etc-ufw"));
        let script = w.join("ufw-sandbox.sh");
        std::fs::write(&script, include_str!("../scripts/ufw-sandbox.sh"))
            .unwrap_or_else(|e| panic!("testkit: write {}: {e}", script.display()));

        let mut command = tied_command(&require("unshare"));
        command
            .args(["--net", "--mount", "--mount-proc", "--propagation", "private", "--"])
            .arg(require("bash"))
            .arg(&script)
            .arg(w)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(w.join("sandbox.log")).unwrap_or_else(|e| panic!("testkit: {e}")));
        let mut holder = spawn_tied(command).unwrap_or_else(|e| panic!("testkit: start the ufw sandbox: {e}"));
        let stdout = holder.stdout.take().unwrap_or_else(|| panic!("testkit: no stdout from the ufw sandbox"));
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = sender.send(line);
        });
        let line = receiver.recv_timeout(Duration::from_secs(20)).unwrap_or_default();
        let pid: u32 = line.trim().strip_prefix("ready ").and_then(|p| p.parse().ok()).unwrap_or_else(|| {
            kill_child(&mut holder);
            panic!(
                "testkit: the ufw sandbox did not start: {}",
                std::fs::read_to_string(w.join("sandbox.log")).unwrap_or_default()
            )
        });
        let netns = netns_of(pid);
        let this = Self { holder, pid, netns, dir };
        let shim = this.shim_dir();
        std::fs::create_dir_all(&shim).unwrap_or_else(|e| panic!("testkit: create {}: {e}", shim.display()));
        let wrapper = format!(
            "#!/bin/sh\n# terrarium-testkit: ufw inside the test's sandbox namespace, never the host's.\nexec {} --target={} --net --mount -- {} \"$@\"\n",
            shell_quote(&require("nsenter").to_string_lossy()),
            pid,
            shell_quote(&ufw.to_string_lossy())
        );
        let target = shim.join("ufw");
        std::fs::write(&target, wrapper)
            .and_then(|()| {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755))
            })
            .unwrap_or_else(|e| panic!("testkit: write {}: {e}", target.display()));
        this
    }

    /// A directory with a `ufw` that runs the real ufw inside this sandbox: put it first
    /// on PATH of the tool under test.
    pub fn shim_dir(&self) -> PathBuf {
        self.dir.path().join("bin")
    }

    /// PATH with [`UfwSandbox::shim_dir`] first, for `Command::env("PATH", ...)`.
    pub fn path_env(&self) -> String {
        let rest = std::env::var("PATH").unwrap_or_default();
        format!("{}:{rest}", self.shim_dir().display())
    }

    /// A command that runs `program` inside the sandbox (e.g. `iptables-save` to see
    /// the rules ufw wrote).
    pub fn in_sandbox(&self, program: impl AsRef<OsStr>) -> Command {
        let mut command = Command::new(require("nsenter"));
        command.arg(format!("--target={}", self.pid)).args(["--net", "--mount", "--"]).arg(program);
        command
    }

    /// Run `ufw ARGS` in the sandbox, return stdout; panic on failure.
    pub fn ufw(&self, args: &[&str]) -> String {
        run_or_panic(&Cmd::new(self.shim_dir().join("ufw")).args(args).timeout(Duration::from_secs(60)))
    }

    /// `ufw status verbose` in the sandbox.
    pub fn status(&self) -> String {
        self.ufw(&["status", "verbose"])
    }

    /// The sandbox's private copy of /etc/ufw (read `user.rules` from here).
    pub fn etc_ufw(&self) -> PathBuf {
        self.dir.path().join("etc-ufw")
    }

    /// The sandbox's private copy of /etc/default/ufw.
    pub fn default_ufw(&self) -> PathBuf {
        self.dir.path().join("default-ufw")
    }
}

/// Overwrite the copied rules and ufw.conf with the package's pristine ones, so a test
/// does not depend on how the machine's own ufw is configured.
fn reset_to_package_defaults(etc_copy: &Path) {
    let Ok(entries) = std::fs::read_dir(PRISTINE) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name_text = name.to_string_lossy();
        if name_text.ends_with(".rules") || name_text == "ufw.conf" {
            let _ = std::fs::copy(entry.path(), etc_copy.join(&name));
        }
    }
}

impl Drop for UfwSandbox {
    fn drop(&mut self) {
        kill_child(&mut self.holder);
        if let Some(netns) = &self.netns {
            kill_netns_processes(netns);
        }
    }
}
