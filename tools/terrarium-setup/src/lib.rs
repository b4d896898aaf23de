//! Changing a Terrarium host's configuration, shared by `terrarium-install` (the first
//! set-up) and `terrarium-set` (one change later):
//! - [`args`]: the flag groups both tools accept;
//! - [`host_facts`], [`storage`]: what the host is (addresses, disks) and where the pool can go;
//! - [`resolve`]: flags and facts into a config, pure;
//! - [`secrets`]: secret inputs (files, stdin, generated), never from argv;
//! - [`preflight`], [`verify`]: check the OIDC issuer and the S3 store before persisting;
//! - [`persist`]: write the config and secrets, with the diff;
//! - [`ansible`], [`cleanup`]: the hand-off to the packaged playbook, one-time secrets removed on every exit path;
//! - [`errors`]: the exit code of each failure.

pub mod ansible;
pub mod args;
pub mod cleanup;
pub mod errors;
pub mod host_facts;
pub mod overrides;
pub mod persist;
pub mod preflight;
pub mod resolve;
pub mod secrets;
pub mod storage;
pub mod verify;

pub use errors::exit_for;
