//! LXD 5.0 in a private network and mount namespace, with an offline busybox image.

mod image;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use terrarium_common::process::Cmd;

use crate::programs::require;
use crate::support::{
    kill_child, kill_netns_processes, log_tail, netns_of, spawn_tied, temp_dir, tied_command, wait_until,
};

/// The alias of the offline image every [`Lxd`] has.
pub const BUSYBOX_IMAGE: &str = "busybox";

/// An LXD daemon of its own (own `LXD_DIR`, own network and mount namespace, `dir`
/// storage, `lxdbr0` with DHCP) and the image `busybox`. One daemon per `Lxd`, so tests
/// never see each other's containers; start-up costs a few seconds.
///
/// Containers from the image get an IPv4 by DHCP and have every busybox applet, so a
/// test serves HTTP with `busybox httpd -f -p PORT -h DIR` and TCP with
/// `nc -lk -p PORT -e cat`: pass it as the start command of [`Lxd::launch_with`] (it
/// survives restarts and copies), or run it later with
/// `lxd.exec(name, &["sh", "-c", "httpd -p 80 -h /www"])` (without `-f` httpd forks).
///
/// Dropping it force-stops every container, shuts the daemon down, kills whatever is
/// left in its namespace and removes its directory.
#[derive(Debug)]
pub struct Lxd {
    daemon: Child,
    lxd_dir: PathBuf,
    client_dir: PathBuf,
    netns: Option<PathBuf>,
    // Last: removed after the daemon is gone.
    dir: tempfile::TempDir,
}

impl Lxd {
    /// Start the daemon, initialise it (`lxd init --auto --storage-backend dir`) and
    /// import the busybox image.
    pub fn start() -> Self {
        let lxd = require("lxd");
        require("lxc");
        let dir = temp_dir("lxd");
        let lxd_dir = dir.path().join("lxd");
        let client_dir = dir.path().join("client");
        let sys_aside = dir.path().join("sys");
        let log = dir.path().join("lxd.log");
        let script = dir.path().join("lxd-in-netns.sh");
        for d in [&lxd_dir, &client_dir, &sys_aside] {
            std::fs::create_dir_all(d).unwrap_or_else(|e| panic!("testkit: create {}: {e}", d.display()));
        }
        std::fs::write(&script, include_str!("../../scripts/lxd-in-netns.sh"))
            .unwrap_or_else(|e| panic!("testkit: write {}: {e}", script.display()));

        let mut command = tied_command(&require("unshare"));
        command
            .args(["--net", "--mount", "--propagation", "private", "--"])
            .arg(require("bash"))
            .arg(&script)
            .arg(&lxd)
            .arg(&sys_aside)
            .arg(&log)
            .env("LXD_DIR", &lxd_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("netns.log")).unwrap_or_else(|e| panic!("testkit: {e}")));
        let daemon = spawn_tied(command).unwrap_or_else(|e| panic!("testkit: start lxd in a namespace: {e}"));
        let mut this = Self { daemon, lxd_dir, client_dir, netns: None, dir };

        let ready = Cmd::new(&lxd)
            .args(["waitready", "--timeout=60"])
            .envs_from(&this.env())
            .timeout(Duration::from_secs(70))
            .run();
        if let Err(err) = ready {
            panic!(
                "testkit: LXD did not become ready: {err}\nnamespace log:\n{}\nlxd log:\n{}",
                log_tail(&this.dir.path().join("netns.log")),
                log_tail(&log)
            );
        }
        this.netns = netns_of(this.daemon.id());
        this.run_lxd(&["init", "--auto", "--storage-backend", "dir"]);
        let work = this.dir.path().join("image");
        let tarball = image::build_busybox_image(&work);
        this.lxc(&["image", "import", &tarball.to_string_lossy(), "--alias", BUSYBOX_IMAGE]);
        let _ = std::fs::remove_dir_all(&work);
        this
    }

    fn run_lxd(&self, args: &[&str]) -> String {
        Cmd::new(require("lxd"))
            .args(args)
            .envs_from(&self.env())
            .timeout(Duration::from_secs(120))
            .run()
            .unwrap_or_else(|err| panic!("testkit: {err}\nlxd log:\n{}", log_tail(&self.log_path())))
    }

    /// Environment that points `lxc` (and a tool under test that runs `lxc`) at this
    /// daemon: `LXD_DIR`, and `LXD_CONF` so the client keeps its config here, not in $HOME.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("LXD_DIR".into(), self.lxd_dir.to_string_lossy().into_owned()),
            ("LXD_CONF".into(), self.client_dir.to_string_lossy().into_owned()),
        ]
    }

    /// The daemon's `LXD_DIR`.
    pub fn lxd_dir(&self) -> &Path {
        &self.lxd_dir
    }

    /// The daemon's log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("lxd.log")
    }

    /// A process inside the namespace (for `nsenter --target PID --net`).
    pub fn pid(&self) -> u32 {
        self.daemon.id()
    }

    /// Run `lxc ARGS` against this daemon and return stdout; panic on failure.
    pub fn lxc(&self, args: &[&str]) -> String {
        self.try_lxc(args).unwrap_or_else(|err| panic!("testkit: {err}"))
    }

    /// Run `lxc ARGS`; `Err` holds the error message (command, status, stderr).
    pub fn try_lxc(&self, args: &[&str]) -> Result<String, String> {
        Cmd::new(require("lxc"))
            .args(args)
            .envs_from(&self.env())
            .timeout(Duration::from_secs(120))
            .run()
            .map_err(|e| e.to_string())
    }

    /// `lxc launch busybox NAME -c KEY=VALUE...`, then wait for the container's IPv4
    /// (returned).
    pub fn launch(&self, name: &str, config: &[(&str, &str)]) -> String {
        let mut args = vec!["launch", BUSYBOX_IMAGE, name];
        let pairs: Vec<String> = config.iter().map(|(k, v)| format!("{k}={v}")).collect();
        for pair in &pairs {
            args.extend(["-c", pair.as_str()]);
        }
        self.lxc(&args);
        self.wait_ipv4(name)
    }

    /// Like [`Lxd::launch`], and the container runs `start_command` (a `sh` command
    /// line, in the background, output to /var/log/start.log) at every boot, e.g.
    /// `mkdir -p /www && echo hi > /www/index.html && httpd -f -p 80 -h /www`.
    pub fn launch_with(&self, name: &str, config: &[(&str, &str)], start_command: &str) -> String {
        let mut args = vec!["init", BUSYBOX_IMAGE, name];
        let pairs: Vec<String> = config.iter().map(|(k, v)| format!("{k}={v}")).collect();
        for pair in &pairs {
            args.extend(["-c", pair.as_str()]);
        }
        self.lxc(&args);
        let rc_local = format!(
            "#!/bin/sh\n# Start command given by the test (terrarium-testkit).\ncd /\nsetsid sh -c {} </dev/null >/var/log/start.log 2>&1 &\n",
            crate::zfs::shell_quote(start_command)
        );
        self.push_file(name, "/etc/rc.local", rc_local.as_bytes(), 0o755);
        self.lxc(&["start", name]);
        self.wait_ipv4(name)
    }

    /// Write `contents` to `path` inside container `name` (running or stopped).
    pub fn push_file(&self, name: &str, path: &str, contents: &[u8], mode: u32) {
        let local =
            tempfile::NamedTempFile::new_in(self.dir.path()).unwrap_or_else(|e| panic!("testkit: temp file: {e}"));
        std::fs::write(local.path(), contents)
            .unwrap_or_else(|e| panic!("testkit: write {}: {e}", local.path().display()));
        let target = format!("{name}{path}");
        let mode = format!("{mode:o}");
        self.lxc(&["file", "push", "--create-dirs", "--mode", &mode, &local.path().to_string_lossy(), &target]);
    }

    /// `lxc exec NAME -- ARGS`, stdout returned; panic on failure.
    pub fn exec(&self, name: &str, args: &[&str]) -> String {
        let mut all = vec!["exec", name, "--"];
        all.extend_from_slice(args);
        self.lxc(&all)
    }

    /// The container's IPv4 address (not on `lo`), if it has one now.
    pub fn ipv4(&self, name: &str) -> Option<String> {
        let state = self.try_lxc(&["query", &format!("/1.0/instances/{name}/state")]).ok()?;
        let state: serde_json::Value = serde_json::from_str(&state).ok()?;
        let networks = state.get("network")?.as_object()?;
        networks
            .iter()
            .filter(|(interface, _)| interface.as_str() != "lo")
            .flat_map(|(_, network)| network.get("addresses").and_then(|a| a.as_array()).cloned().unwrap_or_default())
            .find(|address| address.get("family").and_then(|f| f.as_str()) == Some("inet"))
            .and_then(|address| address.get("address")?.as_str().map(str::to_string))
    }

    /// Wait (up to 60 s: a loaded CI machine) until container `name` has an IPv4, return it.
    pub fn wait_ipv4(&self, name: &str) -> String {
        let mut found = None;
        wait_until(Duration::from_secs(60), Duration::from_millis(100), || {
            found = self.ipv4(name);
            found.is_some()
        });
        found.unwrap_or_else(|| {
            let info = self.try_lxc(&["info", name, "--show-log"]).unwrap_or_else(|e| e);
            panic!("testkit: container {name} got no IPv4 within 60 s\n{info}")
        })
    }

    /// A command that runs `program` inside the daemon's network namespace (where the
    /// containers' addresses are reachable), with [`Lxd::env`] set. Add arguments and run it.
    pub fn in_netns(&self, program: impl AsRef<OsStr>) -> Command {
        let mut command = Command::new(require("nsenter"));
        command.arg(format!("--target={}", self.daemon.id())).arg("--net").arg("--").arg(program).envs(self.env());
        command
    }
}

impl Drop for Lxd {
    fn drop(&mut self) {
        let env = self.env();
        if let Some(lxc) = crate::programs::find_program("lxc") {
            let _ = Cmd::new(&lxc)
                .args(["stop", "--all", "--force"])
                .envs_from(&env)
                .timeout(Duration::from_secs(60))
                .run();
        }
        if let Some(lxd) = crate::programs::find_program("lxd") {
            let _ = Cmd::new(&lxd)
                .args(["shutdown", "--timeout=20"])
                .envs_from(&env)
                .timeout(Duration::from_secs(30))
                .run();
        }
        kill_child(&mut self.daemon);
        // dnsmasq, forkproxy and container monitors may outlive the daemon.
        if let Some(netns) = &self.netns {
            kill_netns_processes(netns);
        }
    }
}

/// `Cmd::env` for a list of pairs.
trait EnvsFrom {
    fn envs_from(self, env: &[(String, String)]) -> Self;
}

impl EnvsFrom for Cmd {
    fn envs_from(self, env: &[(String, String)]) -> Self {
        env.iter().fold(self, |cmd, (k, v)| cmd.env(k, v))
    }
}
