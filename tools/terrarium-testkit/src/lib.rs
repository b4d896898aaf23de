//! Test harness of the Terrarium suite: the real components a test needs, started in a
//! way that never changes the machine the tests run on.
//!
//! | piece | what it is | teardown on drop |
//! | --- | --- | --- |
//! | [`require`] | a program on PATH or in the test cache, or a panic naming what installs it | - |
//! | [`ZfsPool`] | a file-backed zfs-fuse pool with a unique name | `zpool destroy`, temp dir removed |
//! | [`zfs_get_t_shim_dir`] | a dir with a test-only `zfs` wrapper emulating `zfs get -t` for sanoid | - |
//! | [`S3Server`] | s3s-fs on 127.0.0.1, random port, one bucket | process killed, data removed |
//! | [`Lxd`] | LXD 5.0 in a private network + mount namespace, offline `busybox` image | containers stopped, daemon and namespace ended |
//! | [`Traefik`] | Traefik v3 inside an [`Lxd`]'s network namespace | process killed |
//! | [`UfwSandbox`] | ufw with private copies of its state in a private namespace | namespace ended, copies removed |
//! | [`Sshd`] | OpenSSH's sshd on the loopback of a network namespace of its own (a replication target) | sshd, its sessions and the namespace ended |
//! | [`s3_faults::FaultProxy`] | a proxy in front of an [`S3Server`] giving chosen requests a fault (5xx, resets, corrupt bodies, lying listings) | threads end with the test process |
//! | [`oidc_issuer::TestIssuer`] | a stand-in OIDC issuer on loopback (no real one runs here) | server stopped |
//! | [`killpoints::passed`] | the kill points a tool run recorded (`TERRARIUM_TEST_KILLPOINTS`) | - |
//!
//! Each [`Lxd`] is a daemon of its own (about 2.5 s to start, in parallel too), so tests
//! never see each other's containers. Under tests/run, pools are listed in
//! `$TERRARIUM_TESTKIT_RUN_DIR/pools` so the run checks and sweeps exactly its own.
//!
//! Every long-running process is started from one keeper thread with `setpriv
//! --pdeathsig KILL`, so it dies with the test process even when that process is killed
//! without unwinding. A missing component is a test failure with an install hint, never a
//! skip: run `tests/run`, which installs everything listed in `tests/deps/`.

pub mod killpoints;
mod lxd;
pub mod oidc_issuer;
mod programs;
mod s3;
pub mod s3_faults;
mod sshd;
mod support;
mod traefik;
mod ufw;
mod zfs;

pub use lxd::{BUSYBOX_IMAGE, Lxd};
pub use programs::{find_program, require};
pub use s3::S3Server;
pub use sshd::Sshd;
pub use traefik::Traefik;
pub use ufw::UfwSandbox;
pub use zfs::{ZfsPool, ensure_zfs_fuse, zfs_get_t_shim_dir};
