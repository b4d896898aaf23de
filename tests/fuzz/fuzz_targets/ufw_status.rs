//! `ufw status` (active) and `ufw show added` (inactive) as proxy sync reads them, and
//! the reconciliation against the ports to publish.
//!
//! Parsed rules are sorted and unique, one-line trimmed fields. Reconciling never
//! deletes a rule without the proxy-sync marker, adds only wanted ports, and converges:
//! the rules after the changes need no further change. The wanted ports are the ones
//! the text mentions (so they meet its rules) plus two fixed ones.
#![no_main]

use std::collections::BTreeSet;

use libfuzzer_sys::fuzz_target;
use terrarium_proxy_sync::label::Protocol;
use terrarium_proxy_sync::ufw::{MARKER, UfwRule, parse_status, reconcile};

fn port_of(entry: &str) -> Option<(u16, Protocol)> {
    let (port, protocol) = entry.split_once('/')?;
    let protocol = match protocol {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        _ => return None,
    };
    Some((port.parse().ok()?, protocol))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let current = parse_status(text);
    assert!(current.windows(2).all(|w| w[0] < w[1]), "rules not sorted and unique: {current:?}");
    for rule in &current {
        for field in [&rule.to, &rule.action, &rule.from] {
            assert!(!field.contains('\n') && field.trim() == field, "field {field:?} of {rule:?}");
        }
        assert!(["ALLOW", "DENY", "REJECT", "LIMIT"].iter().any(|a| rule.action.starts_with(a)), "{rule:?}");
    }
    let mut wanted: BTreeSet<(u16, Protocol)> = [(10022, Protocol::Tcp), (10053, Protocol::Udp)].into();
    wanted.extend(current.iter().filter_map(|rule| port_of(&rule.to)).filter(|(port, _)| port % 2 == 0));
    let changes = reconcile(&current, &wanted);
    for entry in &changes.add {
        let key = port_of(entry).unwrap_or_else(|| panic!("adds {entry:?}, not PORT/PROTO"));
        assert!(wanted.contains(&key), "adds {entry}, which is not wanted");
    }
    let marked_simple = |rule: &UfwRule, entry: &str| {
        rule.comment.as_deref() == Some(MARKER)
            && port_of(&rule.to) == port_of(entry)
            && rule.action.starts_with("ALLOW")
            && rule.from == "Anywhere"
    };
    for entry in &changes.delete {
        let key = port_of(entry).unwrap_or_else(|| panic!("deletes {entry:?}, not PORT/PROTO"));
        assert!(!wanted.contains(&key), "deletes {entry}, which is wanted");
        assert!(current.iter().any(|rule| marked_simple(rule, entry)), "deletes {entry}, which no marked rule opens");
    }
    // Apply: `ufw delete allow PORT/PROTO` removes the marked rule; added ones are marked.
    // Ports compare as numbers: ufw itself never prints `05011/tcp`, but the fuzzer does.
    let mut after: Vec<UfwRule> =
        current.iter().filter(|rule| !changes.delete.iter().any(|entry| marked_simple(rule, entry))).cloned().collect();
    after.extend(changes.add.iter().map(|entry| UfwRule {
        to: entry.clone(),
        action: "ALLOW".into(),
        from: "Anywhere".into(),
        comment: Some(MARKER.into()),
    }));
    for rule in current.iter().filter(|rule| rule.comment.as_deref() != Some(MARKER)) {
        assert!(after.contains(rule), "an unmarked rule would go: {rule:?}");
    }
    let again = reconcile(&after, &wanted);
    assert!(again.is_empty(), "not converged: {changes:?} then {again:?}");
});
