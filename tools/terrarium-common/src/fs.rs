//! Files that survive crashes and concurrent runs: atomic writes, write-if-changed,
//! and the exclusive run lock.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Write `contents` to `path` so that readers see the old file or the new one, never a
/// mix: a temp file in the same directory, fsync, rename, fsync of the directory.
/// Parent directories are created (mode 0755, or 0700 for a 0600 file's parent).
pub fn atomic_write(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let dir = parent_of(path)?;
    create_dir_all(dir, if mode & 0o077 == 0 { 0o700 } else { 0o755 })?;
    let mut temp = tempfile::Builder::new().prefix(".terrarium-").suffix(".tmp").tempfile_in(dir)?;
    temp.as_file().set_permissions(std::fs::Permissions::from_mode(mode))?;
    temp.write_all(contents)?;
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|err| err.error)?;
    File::open(dir)?.sync_all()
}

/// Write only when the content or mode differs. Returns whether anything changed, so
/// callers can skip restarts and report an idempotent run.
pub fn write_if_changed(path: &Path, contents: &[u8], mode: u32) -> io::Result<bool> {
    match std::fs::read(path) {
        Ok(existing) if existing == contents => {
            let current = std::fs::metadata(path)?.permissions().mode() & 0o7777;
            if current == mode {
                return Ok(false);
            }
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
            Ok(true)
        }
        Ok(_) => atomic_write(path, contents, mode).map(|()| true),
        Err(err) if err.kind() == io::ErrorKind::NotFound => atomic_write(path, contents, mode).map(|()| true),
        Err(err) => Err(err),
    }
}

/// Read a whole file that must be a regular file (a config, a report, a manifest).
/// A FIFO, a device or a socket in its place is refused at once, instead of a read
/// that waits forever for a writer: the open does not block and the type is checked
/// on the opened file, so nothing can be swapped in between.
pub fn read_regular(path: &Path) -> io::Result<Vec<u8>> {
    use std::os::unix::fs::OpenOptionsExt;
    let nonblock = rustix::fs::OFlags::NONBLOCK.bits() as i32;
    let mut file = OpenOptions::new().read(true).custom_flags(nonblock).open(path).map_err(|err| {
        if err.kind() == io::ErrorKind::NotADirectory {
            // ENOTDIR alone does not say which part is wrong, nor what to do.
            io::Error::new(
                err.kind(),
                "a file stands where one of its parent directories belongs; replace it with a directory",
            )
        } else {
            err
        }
    })?;
    let kind = file.metadata()?.file_type();
    if !kind.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("it is {}, not a regular file; replace it with a file", describe_type(kind)),
        ));
    }
    // O_NONBLOCK means nothing for a regular file's reads.
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// [`read_regular`] as UTF-8 text.
pub fn read_regular_to_string(path: &Path) -> io::Result<String> {
    String::from_utf8(read_regular(path)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "it is not UTF-8 text"))
}

fn describe_type(kind: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_block_device() || kind.is_char_device() {
        "a device"
    } else {
        "not a file"
    }
}

/// Remove a file, treating "already gone" as success. Returns whether it existed.
pub fn remove_if_exists(path: &Path) -> io::Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(err) => Err(err),
    }
}

/// Create a directory and its parents with `mode` for the ones created.
pub fn create_dir_all(dir: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(mode).create(dir)
}

fn parent_of(path: &Path) -> io::Result<&Path> {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => Ok(parent),
        _ => Ok(Path::new(".")),
    }
}

/// Why the run lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another {name} run holds {path} ({holder}); waited {waited:?}. Let it finish, or stop it first")]
    Busy { name: String, path: PathBuf, holder: String, waited: Duration },
    #[error("cannot open lock file {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

/// An exclusive lock held for the life of one run, released on drop (and by the kernel
/// if the process dies, since it is an `flock`).
#[derive(Debug)]
pub struct RunLock {
    file: File,
    path: PathBuf,
}

impl RunLock {
    /// Take `locks/<name>.lock`, waiting up to `wait` for a running holder to finish.
    /// The holder is named by this program's name (see [`RunLock::acquire_as`]).
    pub fn acquire(locks_dir: &Path, name: &str, wait: Duration) -> Result<Self, LockError> {
        Self::acquire_as(locks_dir, name, wait, &program_name())
    }

    /// Take `locks/<name>.lock` as `tool` (`terrarium-backup export`): the pid and `tool`
    /// are written into the lock file, for the message a waiting run gives up with.
    pub fn acquire_as(locks_dir: &Path, name: &str, wait: Duration, tool: &str) -> Result<Self, LockError> {
        let path = locks_dir.join(format!("{name}.lock"));
        let io_err = |source| LockError::Io { path: path.clone(), source };
        create_dir_all(locks_dir, 0o755).map_err(io_err)?;
        let mut file =
            OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(io_err)?;
        let started = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) => {
                    if started.elapsed() >= wait {
                        let mut holder = String::new();
                        let _ = file.read_to_string(&mut holder);
                        let holder = if holder.trim().is_empty() {
                            "holder unknown".to_string()
                        } else {
                            holder.trim().to_string()
                        };
                        return Err(LockError::Busy { name: name.to_string(), path, holder, waited: wait });
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(std::fs::TryLockError::Error(err)) => return Err(io_err(err)),
            }
        }
        // Record who holds it, for the message another run prints.
        let holder = format!("pid {} ({tool}) since unix time {}", std::process::id(), unix_now());
        file.set_len(0).map_err(io_err)?;
        file.write_all(holder.as_bytes()).map_err(io_err)?;
        Ok(Self { file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

/// The file name this process was started as (`terrarium-backup`).
pub fn program_name() -> String {
    std::env::args_os()
        .next()
        .map(PathBuf::from)
        .and_then(|path| path.file_name().map(|name| name.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "unknown program".to_string())
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_sets_mode_and_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/secret");
        atomic_write(&path, b"x", 0o600).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"x");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(dir.path().join("a/b")).unwrap().permissions().mode() & 0o777, 0o700);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("a/b")).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "temp file left behind");
    }

    #[test]
    fn write_if_changed_reports_changes_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        assert!(write_if_changed(&path, b"1", 0o644).unwrap());
        assert!(!write_if_changed(&path, b"1", 0o644).unwrap());
        assert!(write_if_changed(&path, b"1", 0o600).unwrap());
        assert!(write_if_changed(&path, b"2", 0o600).unwrap());
    }

    #[test]
    fn reading_a_fifo_or_a_directory_is_refused_without_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("config.yaml");
        rustix::fs::mkfifoat(rustix::fs::CWD, &fifo, rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR).unwrap();
        let started = Instant::now();
        let err = read_regular(&fifo).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(err.to_string(), "it is a FIFO, not a regular file; replace it with a file");
        assert!(read_regular(dir.path()).unwrap_err().to_string().contains("a directory"));
        let file = dir.path().join("f");
        std::fs::write(&file, "text").unwrap();
        assert_eq!(read_regular_to_string(&file).unwrap(), "text");
        assert_eq!(read_regular(&dir.path().join("missing")).unwrap_err().kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn a_second_lock_is_refused_with_the_holder_named() {
        let dir = tempfile::tempdir().unwrap();
        let first = RunLock::acquire(dir.path(), "proxy-sync", Duration::ZERO).unwrap();
        let err = RunLock::acquire(dir.path(), "proxy-sync", Duration::from_millis(50)).unwrap_err();
        let shown = err.to_string();
        assert!(shown.contains(&format!("pid {} ({})", std::process::id(), program_name())), "{shown}");
        let named = RunLock::acquire_as(dir.path(), "other", Duration::ZERO, "terrarium-backup export").unwrap();
        let shown = RunLock::acquire(dir.path(), "other", Duration::ZERO).unwrap_err().to_string();
        assert!(shown.contains(&format!("pid {} (terrarium-backup export)", std::process::id())), "{shown}");
        drop(named);
        drop(first);
        RunLock::acquire(dir.path(), "proxy-sync", Duration::ZERO).unwrap();
    }
}
