//! Shared by the backup tests: a scratch host (config under a root prefix) with a real
//! zfs-fuse pool and a real s3s-fs, the tool itself, file checksums, data writers.
#![allow(dead_code)] // each test binary uses part of it

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::{Digest, Sha256};
use terrarium_testkit::{S3Server, ZfsPool, require, zfs_get_t_shim_dir};

pub const HOST: &str = "testhost";
/// terrarium-backup's hold tag.
const HOLD: &str = terrarium_archive::zfs::HOLD_TAG;
pub const PREFIX: &str = "backups";

/// A scratch Terrarium host: a root prefix with a config naming the pool and S3.
pub struct Host {
    pub pool: ZfsPool,
    pub s3: S3Server,
    pub root: tempfile::TempDir,
}

impl Host {
    pub fn new(pool_mib: u64) -> Self {
        let pool = ZfsPool::create(pool_mib);
        let s3 = S3Server::start();
        let root = tempfile::tempdir().expect("temp root");
        let host = Self { pool, s3, root };
        let endpoint = host.s3.endpoint();
        host.write_config(&endpoint);
        std::fs::create_dir_all(host.root.path().join("etc")).unwrap();
        std::fs::write(host.root.path().join("etc/hostname"), format!("{HOST}\n")).unwrap();
        terrarium_common::fs::atomic_write(
            &host.root.path().join("etc/terrarium/secrets/s3-secret-key"),
            host.s3.secret_key().as_bytes(),
            0o600,
        )
        .unwrap();
        host.pool.zfs(&["create", &host.pool.dataset("containers")]);
        host
    }

    /// A host whose config points at a fault proxy in front of its s3s-fs, with one
    /// instance `web` of ~20 MiB of incompressible data (three 8 MiB parts, from
    /// `seed`) and a snapshot `s1`.
    pub fn behind_proxy(seed: u64) -> (Self, terrarium_testkit::s3_faults::FaultProxy) {
        let host = Self::new(256);
        let proxy = terrarium_testkit::s3_faults::FaultProxy::start(host.s3.port());
        host.write_config(&proxy.endpoint());
        host.create_instance("web");
        write_random(&host.files("web").join("data.bin"), 20 << 20, seed);
        host.snapshot("web", "s1");
        (host, proxy)
    }

    /// (Re)write the config with `endpoint` (a fault proxy in front of s3s-fs, say).
    pub fn write_config(&self, endpoint: &str) {
        self.write_config_encrypted(endpoint, &[]);
    }

    /// (Re)write the config with exports encrypted to `recipients` (none: plain).
    pub fn write_config_encrypted(&self, endpoint: &str, recipients: &[String]) {
        let encryption: String = if recipients.is_empty() {
            String::new()
        } else {
            let lines: String = recipients.iter().map(|r| format!("      - '{r}'\n")).collect();
            format!("  encryption:\n    recipients:\n{lines}")
        };
        let config = format!(
            "schema_version: 2\ndomains:\n  manage: manage.example.com\n  proxy: proxy.example.com\n  lxd: lxd.example.com\n  auth: auth.example.com\nemails:\n  contact: ops@example.com\n  acme: acme@example.com\nidentity:\n  mode: oidc\n  issuer: https://id.example.com\n  client_id: terrarium\n  client_secret_file: /etc/terrarium/secrets/oidc-client-secret\nstorage:\n  mode: file\n  size: 1G\n  pool: {pool}\ns3:\n  enabled: true\n  endpoint: {endpoint}\n  bucket: {bucket}\n  region: {region}\n  prefix: {PREFIX}\n  access_key: {access}\n  secret_key_file: /etc/terrarium/secrets/s3-secret-key\n{encryption}backup:\n  zstd_level: 3\n  local_retention:\n    frequently: 2\n    hourly: 3\n    daily: 4\n    monthly: 1\n  s3_retention:\n    keep_last: 2\n    keep_days: 0\n    full_every_days: 30\n",
            pool = self.pool.name(),
            bucket = self.s3.bucket(),
            region = self.s3.region(),
            access = self.s3.access_key(),
        );
        terrarium_common::fs::atomic_write(
            &self.root.path().join("etc/terrarium/config.yaml"),
            config.as_bytes(),
            0o600,
        )
        .unwrap();
    }

    pub fn dataset(&self, instance: &str) -> String {
        self.pool.dataset(&format!("containers/{instance}"))
    }

    pub fn files(&self, instance: &str) -> PathBuf {
        self.pool.mountpoint(&format!("containers/{instance}"))
    }

    pub fn create_instance(&self, instance: &str) {
        self.pool.zfs(&["create", &self.dataset(instance)]);
    }

    pub fn snapshot(&self, instance: &str, name: &str) {
        self.pool.zfs(&["snapshot", &format!("{}@{name}", self.dataset(instance))]);
    }

    /// The snapshots of `instance` that carry terrarium-backup's own hold, sorted. Asked
    /// of each snapshot by releasing that tag and placing it again: zfs-fuse's
    /// `zfs holds` fails, and a `zfs send` that dies mid-stream leaves zfs-fuse's own
    /// temporary hold behind (OpenZFS drops it with the process), so `userrefs` counts
    /// holds that are not ours after a kill.
    pub fn held(&self, instance: &str) -> Vec<String> {
        let dataset = self.dataset(instance);
        let listing = self.pool.zfs(&["list", "-H", "-o", "name", "-t", "snapshot", "-r", &dataset]);
        let zfs = terrarium_testkit::require("zfs");
        let mut held = Vec::new();
        for snapshot in listing.lines().filter(|l| !l.is_empty()) {
            let released = std::process::Command::new(&zfs).args(["release", HOLD, snapshot]).output().unwrap();
            if released.status.success() {
                self.pool.zfs(&["hold", HOLD, snapshot]);
                held.push(snapshot.strip_prefix(&format!("{dataset}@")).unwrap_or(snapshot).to_string());
            }
        }
        held.sort();
        held
    }

    /// The tool with `--root` and a PATH that has zfs; logs as logfmt.
    pub fn tool(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_terrarium-backup"));
        command
            .arg("--root")
            .arg(self.root.path())
            .args(args)
            .env("PATH", tool_path())
            .env("TERRARIUM_LOG_FORMAT", "logfmt");
        command
    }

    /// Run the tool, return its output (any exit).
    pub fn run(&self, args: &[&str]) -> Output {
        self.tool(args).output().expect("run terrarium-backup")
    }

    /// Run the tool; it must succeed; its stdout parsed as JSON.
    pub fn run_json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.run(&all);
        assert!(
            out.status.success(),
            "terrarium-backup {args:?} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
    }

    pub fn state(&self, rel: &str) -> PathBuf {
        self.root.path().join("var/lib/terrarium").join(rel)
    }

    /// The object's key under the instance, as the docs describe it.
    pub fn key(&self, instance: &str, file: &str) -> String {
        format!("{PREFIX}/{HOST}/{instance}/{file}")
    }

    pub fn object(&self, key: &str) -> PathBuf {
        self.s3.data_dir().join(self.s3.bucket()).join(key)
    }

    /// Files s3s-fs keeps for multipart uploads that were neither completed nor aborted.
    pub fn incomplete_uploads(&self) -> Vec<String> {
        let mut found = Vec::new();
        collect_named(&self.s3.data_dir(), ".upload", &mut found);
        found
    }

    /// aws CLI against the test server.
    pub fn aws(&self) -> Command {
        let mut command = Command::new(require("aws"));
        command.envs(self.s3.aws_env()).args(["--endpoint-url", &self.s3.endpoint()]);
        command
    }

    /// Restore `keys` (oldest first) into `dataset` with standard tools only:
    /// `aws s3 cp - | zstd -d | zfs receive -F`.
    pub fn restore_with_standard_tools(&self, keys: &[String], dataset: &str) {
        self.restore_with_standard_tools_decrypting(keys, dataset, None);
    }

    /// As docs/backup.md "Restoring by hand" says, with `age -d -i IDENTITY` first when
    /// the streams are encrypted.
    pub fn restore_with_standard_tools_decrypting(&self, keys: &[String], dataset: &str, identity: Option<&Path>) {
        require("zstd");
        let decrypt = identity.map_or_else(String::new, |id| {
            require("age");
            format!(r#"age -d -i '{}' | "#, id.display())
        });
        for key in keys {
            let script = format!(
                r#"set -euo pipefail; aws --endpoint-url "$1" s3 cp "s3://$2/$3" - | {decrypt}zstd -d -q | zfs receive -F "$4""#
            );
            let out = Command::new("bash")
                .args(["-c", &script, "restore", &self.s3.endpoint(), self.s3.bucket(), key, dataset])
                .envs(self.s3.aws_env())
                .env("PATH", tool_path())
                .output()
                .expect("bash");
            assert!(
                out.status.success(),
                "restoring {key} with aws | zstd -d | zfs receive failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

fn collect_named(dir: &Path, prefix: &str, found: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.file_name().is_some_and(|n| n.to_string_lossy().starts_with(prefix)) {
            found.push(path.display().to_string());
        }
        if path.is_dir() {
            collect_named(&path, prefix, found);
        }
    }
}

/// An age key pair made by Debian's `age-keygen`: (the recipient, the identity file).
pub fn age_keygen(dir: &Path, name: &str) -> (String, PathBuf) {
    let identity = dir.join(name);
    let made = Command::new(require("age-keygen")).arg("-o").arg(&identity).output().expect("age-keygen");
    assert!(made.status.success(), "age-keygen: {}", String::from_utf8_lossy(&made.stderr));
    let public = Command::new(require("age-keygen")).arg("-y").arg(&identity).output().expect("age-keygen -y");
    assert!(public.status.success(), "age-keygen -y: {}", String::from_utf8_lossy(&public.stderr));
    (String::from_utf8(public.stdout).unwrap().trim().to_string(), identity)
}

/// PATH for the tool: the test's PATH plus where zfs, aws and zstd live.
pub fn tool_path() -> String {
    let zfs_dir = require("zfs").parent().unwrap().display().to_string();
    let aws_dir = require("aws").parent().unwrap().display().to_string();
    format!("{zfs_dir}:{aws_dir}:{}:/usr/sbin:/usr/bin:/sbin:/bin", std::env::var("PATH").unwrap_or_default())
}

/// Write `bytes` of pseudo-random (incompressible) data.
pub fn write_random(path: &Path, bytes: usize, seed: u64) {
    let mut state = seed | 1;
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut block = vec![0u8; 64 * 1024];
    let mut left = bytes;
    while left > 0 {
        for chunk in block.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let n = chunk.len();
            chunk.copy_from_slice(&state.to_le_bytes()[..n]);
        }
        let n = left.min(block.len());
        file.write_all(&block[..n]).unwrap();
        left -= n;
    }
    file.flush().unwrap();
}

/// Write `bytes` of compressible text.
pub fn write_text(path: &Path, bytes: usize, tag: &str) {
    let mut text = String::with_capacity(bytes + 100);
    let mut i = 0;
    while text.len() < bytes {
        text.push_str(&format!("{tag} line {i}: the quick brown fox jumps over the lazy dog\n"));
        i += 1;
    }
    std::fs::write(path, text).unwrap();
}

/// SHA-256 of every file under `dir`, by relative path.
pub fn checksums(dir: &Path) -> BTreeMap<String, String> {
    let mut sums = BTreeMap::new();
    walk(dir, dir, &mut sums);
    sums
}

fn walk(root: &Path, dir: &Path, sums: &mut BTreeMap<String, String>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(root, &path, sums);
        } else {
            let bytes = std::fs::read(&path).unwrap();
            sums.insert(path.strip_prefix(root).unwrap().display().to_string(), hex::encode(Sha256::digest(&bytes)));
        }
    }
}

/// SHA-256 of a file.
pub fn sha256_file(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

/// zfs-fuse lacks `zfs get -t`, which syncoid uses on both sides: the shim goes first on
/// the PATH of the tool and of the target's ssh sessions.
pub fn shim_path() -> String {
    format!("{}:{}", zfs_get_t_shim_dir().display(), tool_path())
}

/// The snapshot names of `dataset` in `pool`.
pub fn snapshots(pool: &ZfsPool, dataset: &str) -> Vec<String> {
    pool.zfs(&["list", "-H", "-o", "name", "-t", "snapshot", "-r", dataset])
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{dataset}@")).map(str::to_string))
        .collect()
}
