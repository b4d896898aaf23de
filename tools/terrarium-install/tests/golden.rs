//! `terrarium-install --render-only` golden tests: each case in tests/golden/install/
//! runs on a copy of its `input` tree with the flags in `args` and must leave exactly
//! its `expected` tree (config, secrets, Ansible variables) and exit with `exit`.

#![allow(clippy::unwrap_used)]

mod common;

#[test]
fn install_render_only_golden_cases() {
    common::run_golden_cases(&common::manifest_dir().join("tests/golden/install"), "terrarium-install", &[]);
}
