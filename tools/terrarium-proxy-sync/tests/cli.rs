//! The real binary, end to end over a scratch root: usage, errors, --dry-run, --json,
//! the lock, label removal, idempotence and concurrent runs.
#![allow(clippy::unwrap_used)] // tests and bench helpers may panic

mod common;

use std::time::Duration;

use common::{CONFIG, Host, instances_file, one_instance, tree};
use terrarium_common::fs::RunLock;

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn filtered(text: &str, host: &Host) -> String {
    text.replace(&host.root().display().to_string(), "[ROOT]")
}

#[test]
fn help_lists_every_option() {
    let output = Host::new(CONFIG).command().arg("--help").output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    insta::assert_snapshot!(String::from_utf8_lossy(&output.stdout));
}

#[test]
fn debounce_without_watch_is_refused_not_ignored() {
    let host = Host::new(CONFIG);
    let instances = instances_file(&host, "[]");
    let output = host
        .command()
        .arg("--dry-run")
        .arg("--instances")
        .arg(&instances)
        .args(["--debounce-ms", "5"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("--debounce-ms applies only to watch mode: add --watch"), "{}", stderr(&output));
}

#[test]
fn a_missing_config_is_a_usage_error_naming_the_fix() {
    let host = Host::new(CONFIG);
    std::fs::remove_file(host.root().join("etc/terrarium/config.yaml")).unwrap();
    let output = host.run(&instances_file(&host, "[]"), &[]);
    assert_eq!(output.status.code(), Some(2));
    insta::assert_snapshot!(filtered(&stderr(&output), &host));
}

#[test]
fn missing_markers_name_the_static_file_and_terrarium_reconfigure() {
    let host = Host::new(CONFIG);
    host.write("etc/traefik/traefik.yml", "entryPoints:\n  web:\n    address: \":80\"\n", 0o644);
    let output = host.run(&instances_file(&host, "[]"), &[]);
    assert_eq!(output.status.code(), Some(1));
    insta::assert_snapshot!(filtered(&stderr(&output), &host));
    std::fs::remove_file(host.root().join("etc/traefik/traefik.yml")).unwrap();
    let output = host.run(&instances_file(&host, "[]"), &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("terrarium-reconfigure") && stderr(&output).contains("traefik.yml"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn an_unreadable_instance_list_fails_the_sync_and_changes_nothing() {
    let host = Host::new(CONFIG);
    let before = tree(&host.root());
    let output = host.run(&instances_file(&host, "{not json"), &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("lxc list --format=json"), "{}", stderr(&output));
    let after: Vec<_> = tree(&host.root()).into_iter().filter(|(rel, _)| !rel.contains("reports/")).collect();
    assert_eq!(after, before);
    let report = host.read("var/lib/terrarium/reports/proxy-sync.json");
    assert!(report.contains("\"ok\": false"), "{report}");
}

#[test]
fn dry_run_prints_the_plan_and_changes_nothing() {
    let host = Host::new(CONFIG);
    let instances =
        instances_file(&host, &one_instance("https://app.example.com:8080/api, tcp://10022:22, https://bad_host"));
    let before = tree(&host.root());
    let output = host.run(&instances, &["--dry-run"]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert_eq!(tree(&host.root()), before, "--dry-run wrote files");
    assert_eq!(host.take_calls(), "ufw status\n");
    insta::assert_snapshot!("dry_run_stdout", filtered(&String::from_utf8_lossy(&output.stdout), &host));
    insta::assert_snapshot!("dry_run_stderr", filtered(&stderr(&output), &host));
}

#[test]
fn json_output_carries_routes_changes_and_per_rule_errors() {
    let host = Host::new(CONFIG);
    let instances = instances_file(&host, &one_instance("https://app.example.com, udp://5432:53, udp://10053:53"));
    let output = host.run(&instances, &["--json"]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["exit"], "partial");
    assert_eq!(json["http"][0]["target"], "http://10.0.0.7:80");
    assert_eq!(json["ports"][0]["host_port"], 10053);
    assert_eq!(json["rejected"][0]["rule"], "udp://5432:53");
    assert!(json["rejected"][0]["problem"].as_str().unwrap().contains("reserved"));
    assert_eq!(json["firewall"]["add"][0], "10053/udp");
    assert_eq!(json["restarts"][0], "systemctl restart traefik.service");
}

#[test]
fn removing_a_label_removes_its_route_entrypoint_and_firewall_rule() {
    let host = Host::new(CONFIG);
    let output = host.run(&instances_file(&host, &one_instance("https://app.example.com, tcp://10022:22")), &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(host.read("etc/traefik/dynamic/terrarium-proxy.yml").contains("10.0.0.7:22"));
    assert!(host.read("etc/traefik/traefik.yml").contains("tcp-10022:"));
    let calls = host.take_calls();
    assert!(
        calls.contains("ufw allow 10022/tcp comment terrarium-proxy-sync")
            && calls.contains("systemctl restart traefik.service"),
        "{calls}"
    );

    let output = host.run(&instances_file(&host, &one_instance("https://app.example.com")), &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(!host.read("etc/traefik/dynamic/terrarium-proxy.yml").contains("tcp"));
    assert_eq!(host.read("etc/traefik/traefik.yml"), common::STATIC);
    let calls = host.take_calls();
    assert!(
        calls.contains("ufw delete allow 10022/tcp") && calls.contains("systemctl restart traefik.service"),
        "{calls}"
    );
    assert!(std::fs::read_to_string(host.ufw_state()).unwrap().is_empty());
}

#[test]
fn a_held_lock_makes_a_run_wait_then_exit_4() {
    let host = Host::new(CONFIG);
    let _held = RunLock::acquire(&host.root().join("var/lib/terrarium/locks"), "proxy-sync", Duration::ZERO).unwrap();
    let output = host.run(&instances_file(&host, "[]"), &["--lock-wait", "1"]);
    assert_eq!(output.status.code(), Some(4));
    assert!(stderr(&output).contains("another proxy-sync run holds"), "{}", stderr(&output));
}

#[test]
fn twenty_concurrent_runs_end_in_one_identical_state() {
    let label = "https://a.example.com, https://b.example.com/x@auth:ops, tcp://10022:22, udp://10053:53";
    let concurrent = Host::new(CONFIG);
    let single = Host::new(CONFIG);
    for host in [&concurrent, &single] {
        host.write("etc/terrarium/secrets/oidc-routes-client-id", "routes\n", 0o600);
        host.write("etc/terrarium/secrets/oidc-routes-client-secret", "s\n", 0o600);
        host.write(
            "etc/terrarium/secrets/oauth2-proxy-routes-cookie-secret",
            "Y29va2llLXNlY3JldC1mb3ItdGVzdHMtb25seS0zMmI=\n",
            0o600,
        );
    }
    let instances = instances_file(&concurrent, &one_instance(label));
    let children: Vec<_> = (0..20)
        .map(|_| {
            let mut command = concurrent.std_command();
            command.arg("--instances").arg(&instances).arg("--lock-wait").arg("120");
            command.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped()).spawn().unwrap()
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    }
    let output = single.run(&instances, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let normalize = |host: &Host| -> Vec<(String, String)> {
        tree(&host.root())
            .into_iter()
            .map(
                |(rel, text)| {
                    if rel.ends_with(".json") { (rel, common::normalize_report(&text)) } else { (rel, text) }
                },
            )
            .collect()
    };
    assert_eq!(normalize(&concurrent), normalize(&single));
    assert_eq!(
        std::fs::read_to_string(concurrent.ufw_state()).unwrap(),
        std::fs::read_to_string(single.ufw_state()).unwrap()
    );
    // Exactly one run changed anything: one restart of each kind, one add per port.
    let calls = concurrent.take_calls();
    assert_eq!(calls.matches("systemctl restart traefik.service").count(), 1, "{calls}");
    assert_eq!(calls.matches("ufw allow 10022/tcp").count(), 1, "{calls}");
    assert_eq!(calls.matches("systemctl restart terrarium-oauth2-proxy-routes.service").count(), 1, "{calls}");
}

#[test]
fn the_instance_list_can_come_from_stdin() {
    let host = Host::new(CONFIG);
    let output = host
        .command()
        .args(["--instances", "-", "--json"])
        .write_stdin(one_instance("http://app.example.com"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(host.read("etc/traefik/dynamic/terrarium-proxy.yml").contains("http://10.0.0.7:80"));
}

#[test]
fn firewall_extra_ports_and_ranges_are_reserved() {
    let host = Host::new(&format!("{CONFIG}firewall:\n  extra_ports: [\"9000/tcp\", \"60000:60010/udp\"]\n"));
    let output =
        host.run(&instances_file(&host, &one_instance("tcp://9000:80, udp://60005:53, udp://60011:53")), &["--json"]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let rejected: Vec<&str> =
        json["rejected"].as_array().unwrap().iter().map(|p| p["rule"].as_str().unwrap()).collect();
    assert_eq!(rejected, ["tcp://9000:80", "udp://60005:53"]);
    assert_eq!(json["ports"][0]["host_port"], 60011);
}
