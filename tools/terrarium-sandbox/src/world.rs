//! The sandbox's world: real components started through terrarium-testkit, a scratch
//! host root the tools act on, and stand-ins only for what cannot run here.
//!
//! Nothing outside this world is touched: LXD, Traefik and ufw run in private
//! namespaces, the ZFS pool is file-backed with a unique name, S3 listens on loopback,
//! and every host path the tools write resolves under a temporary root
//! (`TERRARIUM_ROOT`). Every process dies with the sandbox (testkit ties them to it).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use anyhow::{Context, bail};
use terrarium_testkit::{Lxd, S3Server, Traefik, UfwSandbox, ZfsPool};

use crate::services;

pub struct World {
    /// Where the Terrarium binaries are (next to this program, or `--bin-dir`).
    pub bin_dir: PathBuf,
    pub scratch: tempfile::TempDir,
    pub s3: S3Server,
    pub ufw: UfwSandbox,
    pub traefik: Option<Traefik>,
    pub auth_stand_in: Option<Child>,
    // Dropped late: containers and daemon go after Traefik and the stand-in, and the
    // pool last, once nothing reads from it.
    pub lxd: Lxd,
    pub pool: ZfsPool,
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World").field("root", &self.root()).finish_non_exhaustive()
    }
}

impl World {
    pub fn start(bin_dir: PathBuf) -> anyhow::Result<Self> {
        for tool in crate::TOOLS {
            let path = bin_dir.join(tool);
            if !path.is_file() {
                bail!(
                    "{} is missing; build the tools first (`cargo build --workspace --bins`) or pass --bin-dir",
                    path.display()
                );
            }
        }
        let scratch =
            tempfile::Builder::new().prefix("terrarium-sandbox.").tempdir().context("create the sandbox directory")?;
        println!("   scratch directory {}", scratch.path().display());
        let pool = ZfsPool::create(512);
        println!("   ZFS pool {} (zfs-fuse, file-backed at {})", pool.name(), pool.image().display());
        let s3 = S3Server::start();
        println!("   S3 server {} bucket {}", s3.endpoint(), s3.bucket());
        let lxd = Lxd::start();
        println!("   LXD 5.0 in a private namespace (LXD_DIR={})", lxd.lxd_dir().display());
        let ufw = UfwSandbox::start();
        println!("   ufw with private state in its own namespace");
        let world = Self { bin_dir, scratch, pool, s3, ufw, traefik: None, auth_stand_in: None, lxd };
        std::fs::create_dir_all(world.root()).context("create the scratch root")?;
        services::write_systemctl_stand_in(&world.shim_dir(), &world.systemctl_log())?;
        Ok(world)
    }

    /// The host root every Terrarium tool acts on.
    pub fn root(&self) -> PathBuf {
        self.scratch.path().join("root")
    }

    /// Stand-ins for programs that need a real host (systemctl).
    pub fn shim_dir(&self) -> PathBuf {
        self.scratch.path().join("bin")
    }

    pub fn systemctl_log(&self) -> PathBuf {
        self.scratch.path().join("systemctl.log")
    }

    /// PATH for the tools: stand-ins and the ufw shim first, then the tools themselves.
    fn tool_path(&self) -> String {
        let original = std::env::var("PATH").unwrap_or_default();
        format!("{}:{}:{}:{original}", self.shim_dir().display(), self.ufw.shim_dir().display(), self.bin_dir.display())
    }

    /// A Terrarium tool as an operator would run it, inside the sandbox's environment.
    pub fn command(&self, tool: &str) -> Command {
        let mut command = Command::new(self.bin_dir.join(tool));
        command
            .env("TERRARIUM_ROOT", self.root())
            .env("PATH", self.tool_path())
            .env("TERRARIUM_LOG_FORMAT", "human")
            .envs(self.lxd.env());
        command
    }

    /// Run a tool, echoing the command line and its output; an error on failure.
    pub fn tool(&self, tool: &str, args: &[&str]) -> anyhow::Result<String> {
        let output = self.tool_output(tool, args)?;
        if !output.status.success() {
            bail!("`{tool} {}` exited with {}", args.join(" "), output.status);
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Run a tool and return its output whatever its exit status.
    pub fn tool_output(&self, tool: &str, args: &[&str]) -> anyhow::Result<Output> {
        println!("   $ {tool} {}", args.join(" "));
        let output =
            self.command(tool).args(args).stdin(Stdio::null()).output().with_context(|| format!("run {tool}"))?;
        for line in
            String::from_utf8_lossy(&output.stdout).lines().chain(String::from_utf8_lossy(&output.stderr).lines())
        {
            println!("     {line}");
        }
        Ok(output)
    }

    /// `lxc ARGS` against the sandbox's LXD, echoed.
    pub fn lxc(&self, args: &[&str]) -> anyhow::Result<String> {
        println!("   $ lxc {}", args.join(" "));
        self.lxd.try_lxc(args).map_err(anyhow::Error::msg)
    }

    /// A program run inside the LXD network namespace, where Traefik listens.
    pub fn in_netns(&self, program: impl AsRef<OsStr>, args: &[&str]) -> anyhow::Result<Output> {
        self.lxd
            .in_netns(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .context("run a program in the LXD namespace")
    }

    /// (Re)start Traefik on the static file under the root, as systemd would.
    pub fn restart_traefik(&mut self) {
        self.traefik = None;
        let static_file = terrarium_common::Paths::new(self.root()).traefik_static_file();
        self.traefik = Some(Traefik::start(&self.lxd, &static_file));
    }

    /// Whether a tool asked systemd to restart `unit` since the last call (and forget it).
    pub fn take_restart_request(&self, unit: &str) -> bool {
        let log = std::fs::read_to_string(self.systemctl_log()).unwrap_or_default();
        let asked = log.lines().any(|line| line.contains("restart") && line.contains(unit));
        if asked {
            let kept: String = log.lines().filter(|line| !line.contains(unit)).map(|l| format!("{l}\n")).collect();
            let _ = std::fs::write(self.systemctl_log(), kept);
        }
        asked
    }

    /// Write a secret file, mode 0600 (its directory 0700 when created).
    pub fn write_private(&self, path: &Path, contents: &str) -> anyhow::Result<()> {
        terrarium_common::fs::atomic_write(path, contents.as_bytes(), 0o600)
            .with_context(|| format!("write {}", path.display()))
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some(mut child) = self.auth_stand_in.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.traefik = None;
    }
}
