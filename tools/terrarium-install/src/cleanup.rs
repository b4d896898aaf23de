//! Temporary secret files removed on every exit path: on return and on error by
//! `Drop`, on SIGINT, SIGTERM and SIGHUP by a signal handler that also stops the
//! running `ansible-playbook` and exits with 130.

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

/// A private (0700) temporary directory for one-time secret files, removed when
/// dropped or when the process is interrupted.
#[derive(Debug)]
pub struct SecretDir {
    dir: Option<tempfile::TempDir>,
}

impl SecretDir {
    pub fn new() -> std::io::Result<Self> {
        install_signal_handler();
        let dir = tempfile::Builder::new().prefix("terrarium-secrets-").tempdir()?;
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
}
