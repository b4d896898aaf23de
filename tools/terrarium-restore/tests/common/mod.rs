//! Shared by the restore tests: a scratch host (config under a root prefix) on a real
//! zfs-fuse pool and a real s3s-fs, file-tree checksums, S3 exports, and the tool itself.
#![allow(clippy::unwrap_used)] // tests: a panic is a failure
#![allow(dead_code)] // each test binary uses part of it

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use terrarium_archive::keys::KeyLayout;
use terrarium_archive::manifest::Manifest;
use terrarium_archive::s3::{S3Settings, Store, Tuning};
use terrarium_common::secret::Secret;
use terrarium_testkit::{S3Server, ZfsPool, require};

/// The host name exports are filed under in these tests (`--from-host`).
pub const HOST: &str = "testhost";

/// The restore points [`exported_host`] exports, oldest first (sanoid names, so
/// `--at 11-29` finds the second).
pub const A: &str = "autosnap_2026-11-28_10:00:00_daily";
pub const B: &str = "autosnap_2026-11-29_10:00:00_daily";
pub const C: &str = "autosnap_2026-11-30_10:00:00_daily";

/// A host whose instance `web` has `points` exported restore points (the first a full,
/// the others incrementals: [`A`], [`B`], [`C`]) holding versions 1, 2, ... of the tree
/// (`random_kib` of random data each), and the next version live, not exported.
pub fn exported_host(pool_mib: u64, points: usize, random_kib: usize) -> Host {
    let host = Host::new(pool_mib, true);
    host.create_instance("web");
    let files = host.files("web");
    let names = [A, B, C];
    for n in 0..points {
        write_tree(&files, &version(n as u8 + 1, random_kib));
        host.snapshot("web", names[n]);
        host.export("web", names[n], n.checked_sub(1).map(|base| names[base]));
    }
    write_tree(&files, &version(points as u8 + 1, random_kib));
    host
}

/// A scratch Terrarium host: a root prefix with a config naming the pool (and S3).
pub struct Host {
    pub pool: ZfsPool,
    pub s3: Option<S3Server>,
    pub root: tempfile::TempDir,
}

impl Host {
    pub fn new(pool_mib: u64, with_s3: bool) -> Self {
        let pool = ZfsPool::create(pool_mib);
        let s3 = with_s3.then(S3Server::start);
        let root = tempfile::tempdir().expect("temp root");
        let secret = root.path().join("etc/terrarium/secrets/s3-secret-key");
        std::fs::create_dir_all(secret.parent().unwrap()).unwrap();
        let s3_section = match &s3 {
            Some(s3) => {
                terrarium_common::fs::atomic_write(&secret, s3.secret_key().as_bytes(), 0o600).unwrap();
                format!(
                    "s3:\n  enabled: true\n  endpoint: {}\n  bucket: {}\n  region: {}\n  prefix: backups\n  access_key: {}\n  secret_key_file: /etc/terrarium/secrets/s3-secret-key\n",
                    s3.endpoint(),
                    s3.bucket(),
                    s3.region(),
                    s3.access_key()
                )
            }
            None => String::new(),
        };
        let config = format!(
            "schema_version: 2\ndomains:\n  root: example.com\n  manage: manage.example.com\n  proxy: proxy.example.com\n  lxd: lxd.example.com\n  auth: auth.example.com\nemails:\n  contact: ops@example.com\n  acme: acme@example.com\nidentity:\n  mode: oidc\n  issuer: https://id.example.com\n  client_id: terrarium\n  client_secret_file: /etc/terrarium/secrets/oidc-client-secret\nstorage:\n  mode: file\n  size: 1G\n  pool: {}\n{s3_section}",
            pool.name()
        );
        terrarium_common::fs::atomic_write(&root.path().join("etc/terrarium/config.yaml"), config.as_bytes(), 0o600)
            .unwrap();
        // The name terrarium-backup files exports under (and the restore's default --from-host).
        terrarium_common::fs::atomic_write(&root.path().join("etc/hostname"), format!("{HOST}\n").as_bytes(), 0o644)
            .unwrap();
        pool.zfs(&["create", &pool.dataset("containers")]);
        Self { pool, s3, root }
    }

    pub fn dataset(&self, instance: &str) -> String {
        self.pool.dataset(&format!("containers/{instance}"))
    }

    pub fn files(&self, instance: &str) -> PathBuf {
        self.pool.mountpoint(&format!("containers/{instance}"))
    }

    /// Create the instance's dataset.
    pub fn create_instance(&self, instance: &str) {
        self.pool.zfs(&["create", &self.dataset(instance)]);
    }

    pub fn snapshot(&self, instance: &str, name: &str) {
        self.pool.zfs(&["snapshot", &format!("{}@{name}", self.dataset(instance))]);
    }

    /// Short names of the dataset's snapshots, oldest first.
    pub fn snapshots(&self, instance: &str) -> Vec<String> {
        let dataset = self.dataset(instance);
        let out = self.pool.zfs(&["list", "-H", "-o", "name", "-t", "snapshot", "-s", "createtxg", "-r", &dataset]);
        out.lines().filter_map(|l| l.strip_prefix(&format!("{dataset}@"))).map(str::to_string).collect()
    }

    /// Every dataset of the pool (for "nothing left behind" checks).
    pub fn datasets(&self) -> Vec<String> {
        self.pool.zfs(&["list", "-H", "-o", "name", "-r", self.pool.name()]).lines().map(str::to_string).collect()
    }

    /// Staging and set-aside datasets (`<pool>/terrarium-restore/...`): none after a
    /// restore that finished.
    pub fn leftovers(&self) -> Vec<String> {
        self.datasets().into_iter().filter(|d| d.contains("/terrarium-restore/")).collect()
    }

    /// A restore refused for a checksum mismatch in `key` left `web` as it was: its files
    /// (`original`), its snapshots, nothing staged.
    pub fn assert_refused_untouched(
        &self,
        failed: &std::process::Output,
        key: &str,
        original: &BTreeMap<String, String>,
        snapshots: &[String],
    ) {
        assert_eq!(failed.status.code(), Some(5), "{}", stderr(failed));
        let message = stderr(failed);
        assert!(message.contains(&format!("checksum mismatch in {key}")), "{message}");
        assert!(message.contains("web is untouched"), "{message}");
        assert_eq!(&tree_checksums(&self.files("web")), original);
        assert_eq!(self.snapshots("web"), snapshots);
        assert!(self.leftovers().is_empty(), "{:?}", self.leftovers());
    }

    pub fn exists(&self, dataset: &str) -> bool {
        self.datasets().iter().any(|d| d == dataset)
    }

    pub fn store(&self) -> Store {
        let s3 = self.s3.as_ref().expect("a host with S3");
        Store::new(&S3Settings {
            endpoint: s3.endpoint(),
            bucket: s3.bucket().to_string(),
            region: s3.region().to_string(),
            prefix: Some("backups".into()),
            access_key: s3.access_key().to_string(),
            secret_key: Secret::new(s3.secret_key()),
            tuning: Tuning::default(),
        })
        .expect("S3 store")
    }

    pub fn keys(&self) -> KeyLayout {
        KeyLayout::new(Some("backups"), HOST)
    }

    /// Export the newest snapshot of `instance` (`snapshot`) to S3 with the real
    /// terrarium-backup (its library, in this process): a full stream the first time,
    /// else an incremental from `base`, the previous export. Returns its manifest.
    pub fn export(&self, instance: &str, snapshot: &str, base: Option<&str>) -> Manifest {
        let root = self.root.path().to_string_lossy().into_owned();
        let exit = terrarium_backup::run(
            ["terrarium-backup", "--root", &root, "export", "--instance", instance].map(std::ffi::OsString::from),
        )
        .unwrap_or_else(|err| panic!("terrarium-backup export: {err:#}"));
        assert_eq!(exit, terrarium_common::Exit::Success, "terrarium-backup export");
        let key = self.keys().manifest_key(instance, snapshot);
        let text = self.store().get_bytes(&key).unwrap_or_else(|err| panic!("manifest {key}: {err}"));
        let manifest = Manifest::parse(&String::from_utf8(text).unwrap(), &key).unwrap();
        assert_eq!(manifest.base.as_ref().map(|b| b.name.as_str()), base, "the export's base");
        manifest
    }

    pub fn get(&self, name: &str, property: &str) -> String {
        self.pool.zfs(&["get", "-Hp", "-o", "value", property, name]).trim().to_string()
    }

    /// The file of object `key` inside s3s-fs's data directory.
    pub fn object_path(&self, key: &str) -> PathBuf {
        let s3 = self.s3.as_ref().expect("a host with S3");
        s3.data_dir().join(s3.bucket()).join(key)
    }

    /// The tool, pointed at this host (and at `lxd` when given).
    pub fn restore(&self, env: &[(String, String)]) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::cargo_bin("terrarium-restore").expect("the binary");
        cmd.env("TERRARIUM_ROOT", self.root.path())
            .env("TERRARIUM_LOG_FORMAT", "human")
            .env("PATH", test_path(None))
            .envs(env.iter().cloned());
        cmd
    }
}

impl Drop for Host {
    /// Destroy the pool's datasets first (clones too: -R), retrying while zfs-fuse says "busy" (it does
    /// for a while after receives, under load), so the pool's own drop finds it idle.
    fn drop(&mut self) {
        let Some(zfs) = terrarium_testkit::find_program("zfs") else {
            return;
        };
        for child in ["containers", "terrarium-restore"] {
            let dataset = self.pool.dataset(child);
            for _ in 0..100 {
                let out = std::process::Command::new(&zfs).args(["destroy", "-R", "-f", &dataset]).output();
                match out {
                    Ok(out)
                        if out.status.success() || String::from_utf8_lossy(&out.stderr).contains("does not exist") =>
                    {
                        break;
                    }
                    _ => std::thread::sleep(std::time::Duration::from_millis(300)),
                }
            }
        }
    }
}

/// PATH with the zfs and lxc directories, and `first` (a stand-in dir) in front.
pub fn test_path(first: Option<&Path>) -> String {
    let mut dirs: Vec<PathBuf> = first.into_iter().map(Path::to_path_buf).collect();
    for program in ["zfs", "lxc"] {
        if let Some(dir) = require(program).parent() {
            dirs.push(dir.to_path_buf());
        }
    }
    dirs.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()));
    std::env::join_paths(dirs).unwrap().to_string_lossy().into_owned()
}

/// Write `files` (relative path → content) under `dir`, replacing what was there.
pub fn write_tree(dir: &Path, files: &[(&str, Vec<u8>)]) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() { std::fs::remove_dir_all(&path).unwrap() } else { std::fs::remove_file(&path).unwrap() }
    }
    for (rel, content) in files {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
    }
}

/// `backup.yaml` of the instance `web`, as LXD 5.0.2 wrote it.
pub const LXD_BACKUP_YAML: &str = include_str!("../fixtures/lxd-5.0.2-backup.yaml");

/// A version of `web`'s files as an `--as-new NEW` restore leaves them (from a local
/// copy or an S3 receive: no LXD snapshots): `backup.yaml` rewritten for `new`.
pub fn as_new(files: &[(&'static str, Vec<u8>)], new: &str) -> Vec<(&'static str, Vec<u8>)> {
    let snapshots = std::collections::BTreeSet::new();
    let rename = terrarium_restore::backup_yaml::Rename { old: "web", new, snapshots: &snapshots };
    let rewritten = terrarium_restore::backup_yaml::rewrite(LXD_BACKUP_YAML, &rename).unwrap();
    files
        .iter()
        .map(|(rel, content)| {
            (*rel, if *rel == "backup.yaml" { rewritten.clone().into_bytes() } else { content.clone() })
        })
        .collect()
}

/// Content of one version of an instance's files: text, a nested file, some
/// incompressible bytes.
pub fn version(n: u8, random_kib: usize) -> Vec<(&'static str, Vec<u8>)> {
    let mut noise = Vec::with_capacity(random_kib * 1024);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ u64::from(n);
    while noise.len() < random_kib * 1024 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        noise.extend_from_slice(&x.to_le_bytes());
    }
    vec![
        // As in every LXD instance volume (the volume of `web`): the `--as-new` hand-off rewrites it.
        ("backup.yaml", LXD_BACKUP_YAML.as_bytes().to_vec()),
        ("etc/hostname", format!("web-version-{n}\n").into_bytes()),
        ("srv/www/index.html", format!("<h1>version {n}</h1>\n").repeat(50).into_bytes()),
        ("var/lib/data.bin", noise),
    ]
}

/// sha256 of every file (and the list of directories) under `dir`, by relative path.
pub fn tree_checksums(dir: &Path) -> BTreeMap<String, String> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            let rel = path.strip_prefix(base).unwrap().to_string_lossy().into_owned();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                out.insert(format!("{rel}/"), "dir".into());
                walk(base, &path, out);
            } else if meta.file_type().is_symlink() {
                out.insert(rel, format!("-> {}", std::fs::read_link(&path).unwrap().display()));
            } else {
                out.insert(rel, hex::encode(Sha256::digest(std::fs::read(&path).unwrap())));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    assert!(!out.is_empty(), "{} is empty: not mounted?", dir.display());
    out
}

/// The expected checksums of a version, computed from a scratch copy.
pub fn checksums_of(files: &[(&str, Vec<u8>)]) -> BTreeMap<String, String> {
    let dir = tempfile::tempdir().unwrap();
    write_tree(dir.path(), files);
    tree_checksums(dir.path())
}

/// A directory with a stand-in `lxd` that records its arguments and whether its stdin
/// is a terminal, for the `lxd recover` hand-off. A stand-in because LXD cannot use
/// zfs-fuse pools here, so the real `lxd recover` would find nothing to import.
pub fn lxd_stand_in(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let record = dir.join("lxd-calls");
    let script = format!(
        "#!/bin/sh\n# Test stand-in for `lxd recover` (LXD cannot use zfs-fuse here).\nif [ -t 0 ]; then tty=terminal; else tty=no-terminal; fi\necho \"$* $tty\" >> '{}'\n",
        record.display()
    );
    let path = bin.join("lxd");
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

/// `pid` of a running container, from LXD (changes when it restarts).
pub fn container_pid(lxd: &terrarium_testkit::Lxd, name: &str) -> (String, i64) {
    let state: serde_json::Value =
        serde_json::from_str(&lxd.lxc(&["query", &format!("/1.0/instances/{name}/state")])).unwrap();
    (state["status"].as_str().unwrap_or_default().to_string(), state["pid"].as_i64().unwrap_or(-1))
}

pub fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A directory with an `lxc` that knows no instance: the dataset is one LXD does not use
/// (a legitimate state, after a rebuild), so a rollback needs no stop and start and no
/// LXD. Put it first on PATH ([`test_path`]).
pub fn no_instances_lxc(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("lxc");
    std::fs::write(&path, "#!/bin/sh\necho 'Error: Instance not found' >&2\nexit 1\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir.to_path_buf()
}
