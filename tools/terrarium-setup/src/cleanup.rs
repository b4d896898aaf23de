//! Temporary hand-off files removed on every exit path: on return and on error by
//! `Drop`, on SIGINT, SIGTERM and SIGHUP by a signal handler that also stops the
//! running `ansible-playbook` and exits with 130. A SIGKILL runs none of that, so
//! secrets never sit in a file: they go through a FIFO ([`SecretDir::fifo`]), whose
//! bytes live only in the kernel's pipe buffer and die with the process, and the
//! directories a killed run left behind are removed by the next run
//! ([`remove_stale_dirs`]).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, Once};

use terrarium_common::process::Cmd;

#[derive(Default)]
struct Registry {
    dirs: Vec<PathBuf>,
    children: Vec<u32>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry { dirs: Vec::new(), children: Vec::new() });
static HANDLER: Once = Once::new();

/// Exit status after an interrupt, as shells report SIGINT.
pub const INTERRUPTED_EXIT: i32 = 130;

/// Install the signal handler (once per process).
pub fn install_signal_handler() {
    HANDLER.call_once(|| {
        let installed = ctrlc::set_handler(|| {
            let registry = REGISTRY.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            // Children run in their own process group (see `ChildGuard`): stop the
            // whole group, workers included, politely first.
            for pid in &registry.children {
                let _ = Cmd::new("kill").args(["-TERM", "--", &format!("-{pid}")]).run();
            }
            if !registry.children.is_empty() {
                std::thread::sleep(std::time::Duration::from_secs(2));
                for pid in &registry.children {
                    let _ = Cmd::new("kill").args(["-KILL", "--", &format!("-{pid}")]).run();
                }
            }
            for dir in &registry.dirs {
                let _ = std::fs::remove_dir_all(dir);
            }
            eprintln!("interrupted: temporary secrets removed, nothing further applied");
            std::process::exit(INTERRUPTED_EXIT);
        });
        if let Err(err) = installed {
            log::warn!(
                "cannot install the interrupt handler ({err}); temporary files are still removed on normal exit"
            );
        }
    });
}

/// Name prefix of the private temporary directories, under `TMPDIR`.
const DIR_PREFIX: &str = "terrarium-secrets-";

/// Remove the hand-off directories that killed runs left under `TMPDIR`: those whose
/// name carries the pid of a process that no longer exists. Returns how many.
pub fn remove_stale_dirs() -> usize {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(DIR_PREFIX)
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let path = entry.path();
        let alive = Path::new("/proc").join(pid.to_string()).exists();
        if !alive && entry.file_type().is_ok_and(|t| t.is_dir()) && std::fs::remove_dir_all(&path).is_ok() {
            log::info!(path = path.display().to_string().as_str(); "removed the hand-off directory of a killed run");
            removed += 1;
        }
    }
    removed
}

/// A private (0700) temporary directory for one-time hand-off files, removed when
/// dropped or when the process is interrupted.
#[derive(Debug)]
pub struct SecretDir {
    dir: Option<tempfile::TempDir>,
}

impl SecretDir {
    pub fn new() -> std::io::Result<Self> {
        install_signal_handler();
        // The pid in the name tells a later run whether the directory is left over.
        let dir = tempfile::Builder::new().prefix(&format!("{DIR_PREFIX}{}-", std::process::id())).tempdir()?;
        // Only root may even list it (tempfile's default mode follows the umask).
        std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
        lock().dirs.push(dir.path().to_path_buf());
        Ok(Self { dir: Some(dir) })
    }

    pub fn path(&self) -> &Path {
        self.dir.as_ref().map_or(Path::new("/nonexistent"), |d| d.path())
    }

    /// Write a 0600 file in the directory.
    pub fn write(&self, name: &str, contents: &[u8]) -> std::io::Result<PathBuf> {
        let path = self.path().join(name);
        terrarium_common::fs::atomic_write(&path, contents, 0o600)?;
        Ok(path)
    }

    /// Hand `contents` to the one program that opens `name` (Ansible's `-e @PATH`)
    /// through a FIFO (mode 0600): the bytes are never written to a disk, and a
    /// SIGKILL leaves at most an empty FIFO behind. Ansible resolves `@/dev/fd/N` to
    /// the pipe's or memfd's name and cannot read it, hence a named FIFO. Call
    /// [`FifoFeed::finish`] (or drop it) after the reader exited.
    pub fn fifo(&self, name: &str, contents: Vec<u8>) -> std::io::Result<(PathBuf, FifoFeed)> {
        use rustix::fs::{CWD, Mode};
        let path = self.path().join(name);
        rustix::fs::mkfifoat(CWD, &path, Mode::RUSR | Mode::WUSR)?;
        let writer_path = path.clone();
        let writer = std::thread::spawn(move || {
            use std::io::Write;
            // Blocks until the reader opens the FIFO (or `finish` does).
            if let Ok(mut fifo) = std::fs::OpenOptions::new().write(true).open(&writer_path) {
                let _ = fifo.write_all(&contents);
            }
        });
        Ok((path.clone(), FifoFeed { path, writer: Some(writer) }))
    }
}

/// The writer of a [`SecretDir::fifo`].
#[derive(Debug)]
pub struct FifoFeed {
    path: PathBuf,
    writer: Option<std::thread::JoinHandle<()>>,
}

impl FifoFeed {
    /// Stop feeding: when the reader never opened the FIFO, open it here so the writer
    /// thread stops waiting, then wait for it.
    pub fn finish(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let Some(writer) = self.writer.take() else {
            return;
        };
        let mut drained = None;
        if !writer.is_finished() {
            use std::os::unix::fs::OpenOptionsExt;
            // A non-blocking read open never waits, and lets the writer's open return;
            // the few bytes then go to the pipe buffer and are dropped with it.
            drained = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
                .open(&self.path)
                .ok();
        }
        let _ = writer.join();
        drop(drained);
    }
}

impl Drop for FifoFeed {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Drop for SecretDir {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            let path = dir.path().to_path_buf();
            let _ = dir.close();
            lock().dirs.retain(|d| d != &path);
        }
    }
}

/// Kills a child's whole process group when this process dies, even by SIGKILL,
/// which no handler sees. `PR_SET_PDEATHSIG` (see `terrarium_common::process`) stops
/// `ansible-playbook` itself, but not the workers and modules it forked; a small
/// watchdog (`sh`, outside the group) waits on a pipe that only this process holds
/// open, and kills the group when the pipe closes. Dropping the lifeline stops the
/// watchdog.
#[derive(Debug)]
pub struct GroupLifeline {
    watchdog: Option<std::process::Child>,
}

impl GroupLifeline {
    pub fn new(group: u32) -> std::io::Result<Self> {
        let mut command = std::process::Command::new("sh");
        command
            // No `--` before the group: dash's kill (Debian's sh) takes it for a pid.
            .args(["-c", r#"read -r _; kill -KILL "-$1" 2>/dev/null"#, "terrarium-lifeline", &group.to_string()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        terrarium_common::process::remove_secret_env(&mut command);
        Ok(Self { watchdog: Some(command.spawn()?) })
    }
}

impl Drop for GroupLifeline {
    fn drop(&mut self) {
        if let Some(mut watchdog) = self.watchdog.take() {
            // Killed, not told: the group may be gone and its id reused.
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
    }
}

/// Note a child process to stop on interrupt; forget it when the guard drops. The
/// child must lead its own process group (`CommandExt::process_group(0)`), so the
/// handler can stop it with everything it started.
#[derive(Debug)]
pub struct ChildGuard(u32);

impl ChildGuard {
    pub fn new(pid: u32) -> Self {
        lock().children.push(pid);
        Self(pid)
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        lock().children.retain(|p| *p != self.0);
    }
}

fn lock() -> std::sync::MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn secret_files_are_private_and_removed_on_drop() {
        let dir = SecretDir::new().unwrap();
        let file = dir.write("secrets.json", b"{}").unwrap();
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(dir.path()).unwrap().permissions().mode() & 0o777, 0o700);
        let path = dir.path().to_path_buf();
        drop(dir);
        assert!(!path.exists());
        assert!(!lock().dirs.contains(&path));
    }

    #[test]
    fn a_fifo_hands_its_bytes_to_one_reader_and_is_never_a_file() {
        use std::os::unix::fs::FileTypeExt;
        let dir = SecretDir::new().unwrap();
        let (path, feed) = dir.fifo("secrets.json", b"{\"x\": 1}".to_vec()).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert!(meta.file_type().is_fifo());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"x\": 1}");
        feed.finish();
        // A reader that never comes does not block the run.
        let (_, unread) = dir.fifo("unread.json", b"secret".to_vec()).unwrap();
        unread.finish();
    }
}
