//! `user.proxy` labels: splitting, parsing, planning and rendering.
//!
//! The input is up to three labels separated by a blank line, of three instances: one
//! running on IPv4, one created later running on IPv6 (so claims are contested) and
//! one stopped. Every rule that parses must write back as label text that parses to
//! the same rule; the plan must never publish on a reserved host or port (see
//! `terrarium_fuzz::check_plan`); the rendered Traefik file must be YAML quoting
//! exactly each route's host and path.
#![no_main]

use libfuzzer_sys::fuzz_target;
use terrarium_fuzz::{check_plan, check_rule, settings};
use terrarium_proxy_sync::instances::Instance;
use terrarium_proxy_sync::label::{parse_rule, split_rules};
use terrarium_proxy_sync::plan::plan;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for raw in split_rules(text) {
        assert!(!raw.is_empty() && raw.trim() == raw && !raw.contains('\n'), "split gave {raw:?}");
        match parse_rule(raw) {
            Ok(rule) => check_rule(raw, &rule),
            Err(err) => assert!(
                !err.problem.is_empty() && !err.fix.is_empty() && !err.problem.chars().any(char::is_control),
                "{raw:?}: error {err:?}"
            ),
        }
    }
    let labels: Vec<&str> = text.splitn(3, "\n\n").collect();
    let instance = |index: usize, name: &str, running: bool, address: &str| {
        labels.get(index).map(|label| Instance {
            name: name.to_string(),
            created: (format!("2026-11-28T17:39:3{index}"), 0),
            running,
            address: address.parse().ok(),
            label: Some(label.to_string()),
        })
    };
    let instances: Vec<Instance> = [
        instance(0, "first", true, "10.11.61.158"),
        instance(1, "second", true, "fd42:d78d:ffbd:daef:216:3eff:fe3d:72be"),
        instance(2, "stopped", false, "10.11.61.3"),
    ]
    .into_iter()
    .flatten()
    .collect();
    let settings = settings();
    let planned = plan(&instances, &settings);
    check_plan(&instances, &settings, &planned, true);
    assert!(
        planned.http.iter().all(|r| r.instance != "stopped") && planned.ports.iter().all(|r| r.instance != "stopped"),
        "a stopped instance publishes: {planned:?}"
    );
});
