//! File-backed zfs-fuse pools with unique names, and the one zfs-fuse daemon per machine.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use terrarium_common::process::Cmd;

use crate::programs::require;
use crate::support::{run_or_panic, temp_dir, wait_until};

/// Fixed place for the machine's one zfs-fuse daemon: its pidfile and the lock that
/// serialises starting it (several test processes may race to start it).
pub const RUN_DIR: &str = "/run/terrarium-testkit";

const MIB: u64 = 1024 * 1024;
static POOL_COUNTER: AtomicU32 = AtomicU32::new(0);

fn zpool_answers() -> bool {
    Cmd::new(require("zpool")).args(["list", "-H", "-o", "name"]).timeout(Duration::from_secs(20)).run().is_ok()
}

/// Make sure the machine's zfs-fuse daemon answers, starting it if it does not
/// (`ulimit -s unlimited`, pidfile in `/run/terrarium-testkit`). Never stops it: tests/run stops the
/// daemon at the end if it started it.
pub fn ensure_zfs_fuse() {
    if zpool_answers() {
        return;
    }
    std::fs::create_dir_all(RUN_DIR).unwrap_or_else(|e| panic!("testkit: create {RUN_DIR}: {e}"));
    let lock_path = Path::new(RUN_DIR).join("zfs-fuse.lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .unwrap_or_else(|e| panic!("testkit: open {}: {e}", lock_path.display()));
    lock.lock().unwrap_or_else(|e| panic!("testkit: lock {}: {e}", lock_path.display()));
    if zpool_answers() {
        return; // another test process started it while we waited for the lock
    }
    let daemon = require("zfs-fuse");
    let pidfile = Path::new(RUN_DIR).join("zfs-fuse.pid");
    // zfs-fuse refuses to start (exit 1) while a pidfile of a dead daemon is there.
    let stale = std::fs::read_to_string(&pidfile).ok().and_then(|pid| pid.trim().parse::<u32>().ok());
    if stale.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
        let _ = std::fs::remove_file(&pidfile);
    }
    // zfs-fuse forks into the background itself; its deep recursion needs a big stack.
    let status = Command::new("sh")
        .args(["-c", r#"ulimit -s unlimited; exec "$0" --pidfile "$1" --no-kstat-mount"#])
        .arg(&daemon)
        .arg(&pidfile)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("testkit: start {}: {e}", daemon.display()));
    assert!(status.success(), "testkit: {} exited with {status}", daemon.display());
    let up = wait_until(Duration::from_secs(20), Duration::from_millis(100), zpool_answers);
    assert!(up, "testkit: zfs-fuse was started but `zpool list` did not answer within 20 s");
    drop(lock);
}

/// A file-backed zfs-fuse pool with a unique name (`tt<pid>n<counter>`), mounted under
/// its own temporary directory. Destroyed on drop (retrying while "busy").
#[derive(Debug)]
pub struct ZfsPool {
    name: String,
    image: PathBuf,
    mountpoint: PathBuf,
    // Last: removed after the pool is destroyed.
    dir: tempfile::TempDir,
}

impl ZfsPool {
    /// Create a pool of `size_mib` MiB (at least 64; the file is sparse), starting the
    /// zfs-fuse daemon if needed.
    pub fn create(size_mib: u64) -> Self {
        assert!(size_mib >= 64, "testkit: a ZFS pool needs at least 64 MiB, got {size_mib}");
        ensure_zfs_fuse();
        let dir = temp_dir("zfs");
        let image = dir.path().join("pool.img");
        let mountpoint = dir.path().join("mnt");
        File::create(&image)
            .and_then(|file| file.set_len(size_mib * MIB))
            .unwrap_or_else(|e| panic!("testkit: create {}: {e}", image.display()));
        let name = unused_pool_name();
        // cachefile=none: a pool left behind by a killed test is not re-imported at the
        // daemon's next start, and /var/lib/zfs/zpool.cache stays as it was.
        run_or_panic(
            &Cmd::new(require("zpool"))
                .args(["create", "-f", "-o", "cachefile=none", "-m"])
                .arg(&mountpoint)
                .arg(&name)
                .arg(&image)
                .timeout(Duration::from_secs(60)),
        );
        register_with_run(&name);
        Self { name, image, mountpoint, dir }
    }

    /// The pool's name (also its root dataset).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The dataset `rel` inside the pool (`""` is the root dataset): `tt123n0/rel`.
    pub fn dataset(&self, rel: &str) -> String {
        let rel = rel.trim_matches('/');
        if rel.is_empty() { self.name.clone() } else { format!("{}/{rel}", self.name) }
    }

    /// Where dataset `rel` is mounted (inherited mountpoints): `<tmp>/mnt/rel`.
    pub fn mountpoint(&self, rel: &str) -> PathBuf {
        let rel = rel.trim_matches('/');
        if rel.is_empty() { self.mountpoint.clone() } else { self.mountpoint.join(rel) }
    }

    /// The file backing the pool.
    pub fn image(&self) -> &Path {
        &self.image
    }

    /// The pool's temporary directory (holds the image and the mountpoint; free space
    /// for a test's scratch files).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Run the real `zfs` with `args`, return stdout, panic on failure. `destroy` is
    /// retried for a few seconds while zfs-fuse says "dataset is busy".
    pub fn zfs(&self, args: &[&str]) -> String {
        let cmd = Cmd::new(require("zfs")).args(args).timeout(Duration::from_secs(120));
        let mut last = None;
        for _ in 0..30 {
            match cmd.run() {
                Ok(out) => return out,
                Err(err) if args.first() == Some(&"destroy") && err.stderr().contains("busy") => {
                    last = Some(err);
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(err) => panic!("testkit: {err}"),
            }
        }
        panic!("testkit: {}", last.map(|e| e.to_string()).unwrap_or_default())
    }
}

/// Environment variable set by tests/run: a directory where the testkit lists the pools
/// it creates, so the run checks and sweeps its own pools and no one else's.
pub const RUN_DIR_ENV: &str = "TERRARIUM_TESTKIT_RUN_DIR";

fn register_with_run(pool: &str) {
    use std::io::Write;
    let Some(dir) = std::env::var_os(RUN_DIR_ENV) else {
        return;
    };
    let list = Path::new(&dir).join("pools");
    let written = OpenOptions::new().create(true).append(true).open(&list).and_then(|mut f| writeln!(f, "{pool}"));
    if let Err(err) = written {
        eprintln!("testkit: could not record pool {pool} in {}: {err}", list.display());
    }
}

fn unused_pool_name() -> String {
    loop {
        let name = format!("tt{}n{}", std::process::id(), POOL_COUNTER.fetch_add(1, Ordering::Relaxed));
        let exists = Cmd::new(require("zpool")).args(["list", "-H", "-o", "name", &name]).run().is_ok();
        if !exists {
            return name;
        }
    }
}

impl Drop for ZfsPool {
    fn drop(&mut self) {
        let Some(zpool) = crate::programs::find_program("zpool") else {
            return;
        };
        let destroy = Cmd::new(&zpool).args(["destroy", "-f", &self.name]).timeout(Duration::from_secs(60));
        let mut result = destroy.run();
        for _ in 0..25 {
            match &result {
                Err(err) if err.stderr().contains("busy") => {
                    std::thread::sleep(Duration::from_millis(200));
                    result = destroy.run();
                }
                _ => break,
            }
        }
        if result.is_err() {
            // Unmount the pool's own datasets, deepest first, and try once more.
            // (No `require` here: a panic while unwinding would abort the test process.)
            let zfs = crate::programs::find_program("zfs").unwrap_or_else(|| PathBuf::from("zfs"));
            if let Ok(names) = Cmd::new(&zfs).args(["list", "-H", "-o", "name", "-r", &self.name]).run() {
                for dataset in names.lines().rev() {
                    let _ = Cmd::new(&zfs).args(["unmount", "-f", dataset]).timeout(Duration::from_secs(30)).run();
                }
            }
            result = destroy.run();
        }
        if let Err(err) = result {
            eprintln!("testkit: could not destroy pool {}: {err}; exporting it", self.name);
            let _ = Cmd::new(&zpool).args(["export", "-f", &self.name]).timeout(Duration::from_secs(60)).run();
            // Never delete files through a mount that is still alive.
            let _ = Command::new("umount").arg("-l").arg(&self.mountpoint).output();
        }
    }
}

/// A directory holding a test-only `zfs` wrapper for sanoid: zfs-fuse lacks
/// `zfs get -t TYPE`, the wrapper drops it and filters the output (snapshots are names
/// with '@'). Put it first on PATH of the sanoid under test; never on a host.
pub fn zfs_get_t_shim_dir() -> PathBuf {
    let real = require("zfs");
    let script =
        include_str!("../scripts/zfs-get-t-shim.sh").replace("@REAL_ZFS@", &shell_quote(&real.to_string_lossy()));
    let dir = std::env::temp_dir().join("terrarium-testkit-zfs-shim");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("testkit: create {}: {e}", dir.display()));
    let target = dir.join("zfs");
    if std::fs::read_to_string(&target).ok().as_deref() != Some(script.as_str()) {
        // Several test processes may write it at once: write aside, then rename.
        let aside = dir.join(format!(".zfs.{}", std::process::id()));
        std::fs::write(&aside, &script)
            .and_then(|()| {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&aside, std::fs::Permissions::from_mode(0o755))
            })
            .and_then(|()| std::fs::rename(&aside, &target))
            .unwrap_or_else(|e| panic!("testkit: write {}: {e}", target.display()));
    }
    dir
}

pub(crate) fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}
