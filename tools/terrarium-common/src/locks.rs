//! The run locks, all named here: one per piece of shared state, so every tool that
//! changes that state takes the same lock, and no state is guarded twice.
//!
//! Each lock is an `flock` on `/var/lib/terrarium/locks/<name>.lock` ([`RunLock`]),
//! released when the run ends or dies. The holder writes its pid and tool into the file;
//! a run that waited the lock's bound gives up with exit 4 and names them.
//!
//! | lock | guards | taken by |
//! |---|---|---|
//! | [`BACKUPS`] `terrarium-backup` | container datasets and their snapshots, the `terrarium-backup` holds, the S3 objects, the local backup state | `terrarium-backup export`, `prune`, `replicate`, `verify --deep`; `terrarium-restore` |
//! | [`SANOID_CONFIG`] `sanoid-config` | `/etc/sanoid/sanoid.conf` | `terrarium-backup sanoid-config` |
//! | [`CONFIG`] `config` | `/etc/terrarium/config.yaml` and its secrets | `terrarium-install`, `terrarium-set`, `terrarium-reconfigure` |
//! | [`TRAEFIK`] `traefik` | `/etc/traefik/traefik.yml` (Ansible renders it, proxy-sync splices its entrypoints in) and Traefik's dynamic files | the Ansible run of install, set and reconfigure; `terrarium-proxy-sync` |
//! | [`PROXY_SYNC`] `proxy-sync` | proxy-sync's own state: its ufw rules, the route-auth oauth2-proxy, its report | `terrarium-proxy-sync` |
//! | [`IDP_SYNC`] `idp-sync` | the OIDC clients at the identity provider, their secret files, LXD's OIDC settings, its report | `terrarium-idp-sync` |
//!
//! Dry runs take no lock: they change nothing, and must never hold up a real run.
//!
//! A run that holds two takes them in one order: `config` before `traefik`, and
//! `proxy-sync` before `traefik`; nothing waits for another lock while it holds
//! `traefik`, `terrarium-backup` or `sanoid-config`. So no two runs wait on each other.

use std::time::Duration;

use crate::fs::{LockError, RunLock, program_name};
use crate::paths::Paths;

/// One named lock and how long a run waits for it by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lock {
    /// The file name under the locks directory, without `.lock`.
    pub name: &'static str,
    /// How long a run waits for the current holder before it gives up (exit 4).
    pub wait: Duration,
}

impl Lock {
    /// Take the lock for `what` this program does (`export`, `ansible-playbook`),
    /// waiting up to [`Lock::wait`].
    pub fn acquire(self, paths: &Paths, what: &str) -> Result<RunLock, LockError> {
        self.acquire_within(paths, what, self.wait)
    }

    /// [`Lock::acquire`] with a wait of the caller's (a `--lock-wait` flag).
    pub fn acquire_within(self, paths: &Paths, what: &str, wait: Duration) -> Result<RunLock, LockError> {
        RunLock::acquire_as(&paths.locks_dir(), self.name, wait, &format!("{} {what}", program_name()))
    }
}

/// Backups: every command that changes container datasets, their snapshots and holds,
/// or the S3 restore points. A few seconds: the holder is a long export or restore,
/// and a timer or an operator should hear about it, not queue behind it.
pub const BACKUPS: Lock = Lock { name: "terrarium-backup", wait: Duration::from_secs(5) };
/// `/etc/sanoid/sanoid.conf`, rendered by `terrarium-backup sanoid-config`.
pub const SANOID_CONFIG: Lock = Lock { name: "sanoid-config", wait: Duration::from_secs(5) };
/// The persisted config: one install, set or reconfigure at a time.
pub const CONFIG: Lock = Lock { name: "config", wait: Duration::from_secs(5) };
/// Traefik's files. Ansible waits for a proxy-sync run (seconds); proxy-sync waits its
/// `--lock-wait` for an Ansible run and, when that is longer, exits 4 and is retried by
/// its watcher and timer.
pub const TRAEFIK: Lock = Lock { name: "traefik", wait: Duration::from_secs(120) };
/// proxy-sync's own state.
pub const PROXY_SYNC: Lock = Lock { name: "proxy-sync", wait: Duration::from_secs(30) };

/// The identity provider's clients and the secret files idp-sync writes. Not `config`:
/// install and set run idp-sync while they hold that.
pub const IDP_SYNC: Lock = Lock { name: "idp-sync", wait: Duration::from_secs(30) };

/// Every lock, for documentation and tests.
pub const ALL: [Lock; 6] = [BACKUPS, SANOID_CONFIG, CONFIG, TRAEFIK, PROXY_SYNC, IDP_SYNC];

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_lock_has_its_own_file() {
        let mut names: Vec<&str> = ALL.iter().map(|l| l.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
    }

    #[test]
    fn a_held_lock_names_its_holder_and_maps_to_exit_4() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path());
        let held = BACKUPS.acquire(&paths, "export").unwrap();
        let err = BACKUPS.acquire_within(&paths, "restore", Duration::from_millis(50)).unwrap_err();
        let shown = err.to_string();
        assert!(shown.contains(&format!("pid {} ({} export)", std::process::id(), program_name())), "{shown}");
        assert_eq!(crate::Exit::classify([&err as &(dyn std::error::Error + 'static)]), crate::Exit::Busy);
        // Another lock is independent.
        drop(TRAEFIK.acquire_within(&paths, "x", Duration::ZERO).unwrap());
        drop(held);
        BACKUPS.acquire_within(&paths, "restore", Duration::ZERO).unwrap();
    }
}
