//! `terrarium-set` golden config diffs: each case in tests/golden/ runs on a copy of its
//! `input` tree with the arguments in `args` (always `--no-reconcile`; the Ansible
//! hand-off is tested in terrarium-install) and must leave exactly its `expected` tree:
//! only the named section changes, and nothing changes when verification fails.

#![allow(clippy::unwrap_used)]

#[path = "../../terrarium-install/tests/common/mod.rs"]
mod common;

#[test]
fn set_golden_cases() {
    common::run_golden_cases(&common::manifest_dir().join("tests/golden"), "terrarium-set", &[]);
}
