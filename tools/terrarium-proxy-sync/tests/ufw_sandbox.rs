//! The firewall against the real ufw, in its namespace sandbox (testkit): proxy-sync
//! adds and deletes only its own marked rules; the SSH rule and the operator's rules
//! survive every run. systemd is not PID 1 here: `systemctl` is the recording stand-in.
#![allow(clippy::unwrap_used)] // tests and bench helpers may panic

mod common;

use common::{CONFIG, Host};
use terrarium_testkit::UfwSandbox;

fn instances(host: &Host, label: &str) -> std::path::PathBuf {
    let json = serde_json::json!([{
        "name": "app", "status": "Running", "created_at": "2026-01-01T00:00:00Z",
        "config": {"user.proxy": label}, "expanded_config": {},
        "state": {"network": {"eth0": {"host_name": "veth0", "type": "broadcast",
            "addresses": [{"family": "inet", "address": "10.0.0.7", "scope": "global"}]}}}
    }]);
    let path = host.dir.path().join("instances.json");
    std::fs::write(&path, json.to_string()).unwrap();
    path
}

fn sync(host: &Host, ufw: &UfwSandbox, label: &str) {
    let output =
        host.std_command_with(&[&ufw.shim_dir()]).arg("--instances").arg(instances(host, label)).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
}

/// Rule lines of `ufw status` (after the header), for comparisons.
fn rules(ufw: &UfwSandbox) -> Vec<String> {
    let status = ufw.ufw(&["status"]);
    status
        .lines()
        .skip_while(|l| !l.starts_with("--"))
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn ufw_reconcile_keeps_operator_rules_and_owns_only_marked_ones() {
    let ufw = UfwSandbox::start();
    let host = Host::new(CONFIG);
    ufw.ufw(&["allow", "22/tcp"]);
    ufw.ufw(&["allow", "3000", "comment", "operator"]);

    // Inactive ufw: reconciled from `ufw show added`.
    sync(&host, &ufw, "tcp://10022:22");
    let added = ufw.ufw(&["show", "added"]);
    assert!(added.contains("ufw allow 10022/tcp comment 'terrarium-proxy-sync'"), "{added}");

    ufw.ufw(&["--force", "enable"]);
    sync(&host, &ufw, "tcp://10022:22, udp://10053:53, tcp://3000:80");
    let after = rules(&ufw);
    for expected in [
        "22/tcp ALLOW Anywhere",
        "3000 ALLOW Anywhere # operator",
        "10022/tcp ALLOW Anywhere # terrarium-proxy-sync",
        "10053/udp ALLOW Anywhere # terrarium-proxy-sync",
        "10053/udp (v6) ALLOW Anywhere (v6) # terrarium-proxy-sync",
        "22/tcp (v6) ALLOW Anywhere (v6)",
    ] {
        assert!(after.contains(&expected.to_string()), "missing `{expected}` in {after:#?}");
    }
    // 3000/tcp is already open through the operator's rule: no second rule.
    assert!(!after.iter().any(|l| l.starts_with("3000/tcp")), "{after:#?}");

    // Unchanged labels: not a single firewall change.
    host.take_calls();
    sync(&host, &ufw, "tcp://10022:22, udp://10053:53, tcp://3000:80");
    assert_eq!(rules(&ufw), after);

    // A removed rule disappears for IPv4 and IPv6; everything else stays.
    sync(&host, &ufw, "udp://10053:53");
    let now = rules(&ufw);
    assert!(!now.iter().any(|l| l.starts_with("10022/tcp")), "{now:#?}");
    assert!(now.contains(&"10053/udp ALLOW Anywhere # terrarium-proxy-sync".to_string()), "{now:#?}");

    sync(&host, &ufw, "https://app.example.com");
    assert_eq!(
        rules(&ufw),
        [
            "22/tcp ALLOW Anywhere",
            "3000 ALLOW Anywhere # operator",
            "22/tcp (v6) ALLOW Anywhere (v6)",
            "3000 (v6) ALLOW Anywhere (v6) # operator"
        ]
    );
}
