//! Golden directory tests: run the tool with `--root` over `tests/golden/<case>/input`
//! and `instances.json` (default: the real `lxc list` sample from LXD 5.0), then
//! compare the tree it wrote with `expected/` and the program calls it made with
//! `expected-calls.txt`. Every Traefik file written is checked against the official
//! schemas, and a second run must change nothing.
//!
//! To create expected output for a new case: `GOLDEN_UPDATE=1 cargo test -p
//! terrarium-proxy-sync --test golden`, then review every file it wrote.
#![allow(clippy::unwrap_used)] // tests and bench helpers may panic

mod common;

use std::path::{Path, PathBuf};

use common::{Host, Schemas, data, normalize_report, tree};

fn case_dir(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(case)
}

fn run_case(case: &str, expected_code: i32) {
    let dir = case_dir(case);
    let host = Host::from_tree(&dir.join("input"));
    if let Ok(rules) = std::fs::read_to_string(dir.join("ufw.rules")) {
        std::fs::write(host.ufw_state(), rules).unwrap();
    }
    let instances =
        if dir.join("instances.json").exists() { dir.join("instances.json") } else { data("lxc-list-lxd5.0.json") };

    let output = host.run(&instances, &[]);
    assert_eq!(
        output.status.code(),
        Some(expected_code),
        "{case}: stderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let calls = host.take_calls();
    let written: Vec<(String, String)> = tree(&host.root())
        .into_iter()
        .map(
            |(rel, text)| {
                if rel.ends_with("reports/proxy-sync.json") { (rel, normalize_report(&text)) } else { (rel, text) }
            },
        )
        .collect();

    let schemas = Schemas::load();
    for (rel, text) in &written {
        if rel == "etc/traefik/traefik.yml" {
            Schemas::check(&schemas.static_config, text, rel);
        } else if rel.starts_with("etc/traefik/dynamic/") {
            Schemas::check(&schemas.dynamic, text, rel);
        }
    }

    let expected_dir = dir.join("expected");
    if std::env::var_os("GOLDEN_UPDATE").is_some() {
        let _ = std::fs::remove_dir_all(&expected_dir);
        for (rel, text) in &written {
            let path = expected_dir.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        std::fs::write(dir.join("expected-calls.txt"), &calls).unwrap();
    }
    let expected = tree(&expected_dir);
    let names = |files: &[(String, String)]| files.iter().map(|(rel, _)| rel.clone()).collect::<Vec<_>>();
    assert_eq!(names(&written), names(&expected), "{case}: the set of files differs");
    for ((rel, got), (_, want)) in written.iter().zip(&expected) {
        if got != want {
            let diff = similar_diff(want, got);
            panic!("{case}: {rel} differs from expected (- expected, + written):\n{diff}");
        }
    }
    assert_eq!(calls, std::fs::read_to_string(dir.join("expected-calls.txt")).unwrap(), "{case}: program calls differ");

    // Idempotence: unchanged input writes no file, restarts nothing, touches no rule.
    let before = tree(&host.root());
    let again = host.run(&instances, &[]);
    assert_eq!(again.status.code(), Some(expected_code));
    assert_eq!(tree(&host.root()), before, "{case}: a second run changed files");
    assert_eq!(host.take_calls(), "ufw status\n", "{case}: a second run called more than `ufw status`");
}

fn similar_diff(want: &str, got: &str) -> String {
    let mut out = String::new();
    for (index, (a, b)) in want.lines().zip(got.lines()).enumerate() {
        if a != b {
            out.push_str(&format!("line {}:\n- {a}\n+ {b}\n", index + 1));
        }
    }
    let (w, g) = (want.lines().count(), got.lines().count());
    if w != g {
        out.push_str(&format!("({w} lines expected, {g} written)\n"));
    }
    out
}

#[test]
fn golden_real_lxd_sample_publishes_the_three_labelled_containers() {
    run_case("lxd5-fixture", 0);
}

#[test]
fn golden_mixed_labels_publish_what_is_valid_and_report_the_rest() {
    run_case("mixed", 3);
}
