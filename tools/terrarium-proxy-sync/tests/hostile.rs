//! The real binary against hostile labels and a host that fails under it: Terrarium's
//! own hosts, ports something already listens on, labels with thousands of rules,
//! terminal escapes in labels, and a restart that fails or is killed.
#![allow(clippy::unwrap_used)] // tests may panic

mod common;

use common::{CONFIG, Host};

fn instance(name: &str, created: &str, ip: &str, label: &str) -> serde_json::Value {
    serde_json::json!({
        "name": name, "status": "Running", "created_at": created,
        "config": {"user.proxy": label}, "expanded_config": {"user.proxy": label},
        "state": {"network": {"eth0": {"host_name": "veth0", "type": "broadcast",
            "addresses": [{"family": "inet", "address": ip, "scope": "global"}]}}}
    })
}

fn instances_file(host: &Host, list: &[serde_json::Value]) -> std::path::PathBuf {
    let path = host.dir.path().join("instances.json");
    std::fs::write(&path, serde_json::Value::Array(list.to_vec()).to_string()).unwrap();
    path
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn json(output: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stdout)))
}

fn rejected(json: &serde_json::Value) -> Vec<(String, String)> {
    json["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["rule"].as_str().unwrap().to_string(), p["problem"].as_str().unwrap().to_string()))
        .collect()
}

#[test]
fn a_label_cannot_publish_on_terrariums_own_hosts_and_other_routes_stay() {
    let host = Host::new(CONFIG);
    let evil = "https://manage.example.com/cockpit, https://manage.example.com/oauth2/callback, https://auth.example.com/ui/login, \
                https://proxy.example.com/api, https://manage.example.com/app@auth, http://lxd.example.com, https://mine.example.com";
    let list = [
        instance("evil", "2026-01-01T00:00:00Z", "10.0.0.6", evil),
        instance("web", "2026-01-02T00:00:00Z", "10.0.0.7", "https://app.example.com"),
    ];
    let output = host.run(&instances_file(&host, &list), &["--json"]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let json = json(&output);
    let problems = rejected(&json);
    assert_eq!(problems.len(), 6, "{problems:?}");
    for (rule, problem) in &problems {
        let host_name = rule.split("://").nth(1).unwrap().split(['/', '@']).next().unwrap();
        assert!(
            problem.starts_with(&format!("{host_name} is Terrarium's")) && problem.contains("cannot publish on it"),
            "{rule}: {problem}"
        );
    }
    assert!(json["rejected"][0]["fix"].as_str().unwrap().contains("host name of its own"));
    let dynamic = host.read("etc/traefik/dynamic/terrarium-proxy.yml");
    for reserved in ["manage.example.com", "auth.example.com", "proxy.example.com", "lxd.example.com"] {
        assert!(!dynamic.contains(reserved), "{reserved} published:\n{dynamic}");
    }
    assert!(dynamic.contains("Host(`mine.example.com`)") && dynamic.contains("Host(`app.example.com`)"), "{dynamic}");
}

#[test]
fn in_oidc_mode_the_auth_host_is_not_terrariums_and_may_be_published() {
    let config = CONFIG.replace("  mode: local\n", "  mode: oidc\n  issuer: https://id.example.net\n  client_id: terrarium\n  client_secret_file: /etc/terrarium/secrets/oidc-client-secret\n");
    let host = Host::new(&config);
    host.write("etc/terrarium/secrets/oidc-client-secret", "s\n", 0o600);
    let list =
        [instance("idp", "2026-01-01T00:00:00Z", "10.0.0.6", "https://auth.example.com, https://manage.example.com/x")];
    let output = host.run(&instances_file(&host, &list), &["--json"]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert_eq!(
        rejected(&json(&output)).iter().map(|(rule, _)| rule.as_str()).collect::<Vec<_>>(),
        ["https://manage.example.com/x"]
    );
}

/// `/proc/net` tables as the kernel writes them: `sl local rem st ...`.
fn socket_table(rows: &[(&str, &str)]) -> String {
    let mut text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
        .to_string();
    for (index, (local, state)) in rows.iter().enumerate() {
        text.push_str(&format!("{index:4}: {local} 00000000:0000 {state} 00000000:00000000 00:00000000 00000000     0        0 1{index} 1 0 100 0 0 10 0\n"));
    }
    text
}

#[test]
fn ports_in_use_on_the_host_are_refused_but_traefiks_own_stay_published() {
    let host = Host::new(CONFIG);
    // systemd-resolved on 127.0.0.53:53 (tcp listen and udp), PostgreSQL on [::]:5433,
    // an outgoing connection from 40000 (not a listener), and Traefik itself on 10022
    // (an entrypoint proxy sync published earlier).
    let tcp = [("3500007F:0035", "0A"), ("0F02000A:9C40", "01")];
    host.write("proc/net/tcp", &socket_table(&tcp), 0o644);
    host.write("proc/net/tcp6", &socket_table(&[("00000000000000000000000000000000:1539", "0A")]), 0o644);
    host.write("proc/net/udp", &socket_table(&[("3500007F:0035", "07")]), 0o644);
    let label = "https://app.example.com, tcp://10022:22";
    let output = host.run(&instances_file(&host, &[instance("app", "2026-01-01T00:00:00Z", "10.0.0.7", label)]), &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(host.read("etc/traefik/traefik.yml").contains("tcp-10022:"));
    host.take_calls();
    // Traefik restarted and now listens on 10022 itself.
    host.write("proc/net/tcp", &socket_table(&[tcp[0], tcp[1], ("00000000:2726", "0A")]), 0o644);

    let label = "https://app.example.com, tcp://10022:22, udp://53:53, tcp://53:53, tcp://5433:5432, tcp://40000:80";
    let output =
        host.run(&instances_file(&host, &[instance("app", "2026-01-01T00:00:00Z", "10.0.0.7", label)]), &["--json"]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let json = json(&output);
    let problems = rejected(&json);
    assert_eq!(
        problems.iter().map(|(rule, _)| rule.as_str()).collect::<Vec<_>>(),
        ["udp://53:53", "tcp://53:53", "tcp://5433:5432"]
    );
    assert!(problems[0].1.contains("host port 53/udp is already in use on the host"), "{}", problems[0].1);
    assert!(json["rejected"][2]["fix"].as_str().unwrap().contains("ss -lnpt 'sport = :5433'"), "{json}");
    let ports: Vec<u64> = json["ports"].as_array().unwrap().iter().map(|p| p["host_port"].as_u64().unwrap()).collect();
    assert_eq!(ports, [10022, 40000]);
    let static_file = host.read("etc/traefik/traefik.yml");
    assert!(
        !static_file.contains("tcp-53:") && !static_file.contains("udp-53:") && !static_file.contains("tcp-5433:"),
        "{static_file}"
    );
    let calls = host.take_calls();
    assert!(!calls.contains("ufw allow 53") && !calls.contains("ufw allow 5433"), "{calls}");
}

#[test]
fn a_label_with_thousands_of_rules_opens_at_most_the_configured_ports() {
    let host = Host::new(&format!("{CONFIG}  max_rules_per_label: 40\n  max_ports_per_host: 50\n"));
    let many: Vec<String> = (0..5000).map(|i| format!("tcp://{}:22", 20000 + i)).collect();
    let list = [
        instance("flood", "2026-01-01T00:00:00Z", "10.0.0.6", &many.join("\n")),
        instance("flood2", "2026-01-02T00:00:00Z", "10.0.0.7", &many[1000..1040].join(",")),
    ];
    let output = host.run(&instances_file(&host, &list), &["--json"]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let json = json(&output);
    assert_eq!(json["ports"].as_array().unwrap().len(), 50);
    let problems = rejected(&json);
    // One problem for the 4,960 rules past the label limit, one per rule past the host's.
    assert_eq!(problems.len(), 1 + 30, "{problems:?}");
    assert!(problems[0].1.contains("5000 rules, more than the 40"), "{}", problems[0].1);
    assert!(problems[1].1.contains("already publishes 50 tcp/udp ports"), "{}", problems[1].1);
    let calls = host.take_calls();
    assert_eq!(calls.matches("ufw allow").count(), 50, "{calls}");

    // The defaults (32 per label) apply without the keys.
    let host = Host::new(CONFIG);
    let output = host.run(&instances_file(&host, &list[..1]), &["--json"]);
    assert_eq!(json_ports(&output), 32);
}

fn json_ports(output: &std::process::Output) -> usize {
    json(output)["ports"].as_array().unwrap().len()
}

#[test]
fn terminal_escapes_in_a_label_never_reach_the_terminal() {
    let host = Host::new(CONFIG);
    let label = "https://x\u{1b}]0;owned\u{7}.example.com, https://\u{202e}moc.elpmaxe.ppa, https://ok.example.com/\u{1b}[2J\rfake";
    let instances = instances_file(&host, &[instance("app", "2026-01-01T00:00:00Z", "10.0.0.7", label)]);
    for args in [&[][..], &["--dry-run"][..]] {
        let output = host.run(&instances, args);
        assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
        let shown = format!("{}{}", stderr(&output), String::from_utf8_lossy(&output.stdout));
        let raw: Vec<char> =
            shown.chars().filter(|c| *c != '\n' && terrarium_common::terminal::is_unsafe(*c)).collect();
        assert!(raw.is_empty(), "raw {raw:?} printed:\n{shown}");
        assert!(shown.contains(r"\u{1b}]0;owned\u{7}") && shown.contains(r"\u{202e}moc"), "{shown}");
    }
    // The report keeps the rule exactly (JSON: serde escapes the control characters).
    let report: serde_json::Value =
        serde_json::from_str(&host.read("var/lib/terrarium/reports/proxy-sync.json")).unwrap();
    assert_eq!(report["rejected"][0]["rule"], "https://x\u{1b}]0;owned\u{7}.example.com");
    assert!(!host.read("var/lib/terrarium/reports/proxy-sync.json").contains('\u{1b}'));
}

const PENDING: &str = "var/lib/terrarium/pending-restarts/proxy-sync.json";

#[test]
fn a_failed_restart_fails_the_run_and_the_next_run_retries_it() {
    let host = Host::new(CONFIG);
    let instances = instances_file(&host, &[instance("app", "2026-01-01T00:00:00Z", "10.0.0.7", "tcp://10022:22")]);
    std::fs::write(host.systemctl_fail(), "").unwrap();
    let output = host.run(&instances, &[]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stderr(&output).contains("the next run retries it"), "{}", stderr(&output));
    let report = host.read("var/lib/terrarium/reports/proxy-sync.json");
    assert!(report.contains("\"ok\": false"), "{report}");
    assert!(host.read(PENDING).contains("systemctl restart traefik.service"));
    assert!(host.read("etc/traefik/traefik.yml").contains("tcp-10022:"), "the file was written before the restart");
    host.take_calls();

    // Files are current now; the restart is still owed, and done.
    let output = host.run(&instances, &["--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let json = json(&output);
    assert_eq!(json["restarts"], serde_json::json!(["systemctl restart traefik.service"]));
    assert_eq!(json["restarts_owed"], serde_json::json!(["systemctl restart traefik.service"]));
    assert_eq!(json["files"], serde_json::json!([]));
    assert_eq!(host.take_calls().matches("systemctl restart traefik.service").count(), 1);
    assert!(!host.root().join(PENDING).exists());
    assert!(host.read("var/lib/terrarium/reports/proxy-sync.json").contains("\"ok\": true"));

    // Nothing owed any more: a third run restarts nothing.
    let output = host.run(&instances, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(!host.take_calls().contains("systemctl"));
}

#[test]
fn a_run_killed_during_its_restarts_leaves_them_owed_to_the_next_run() {
    let host = Host::new(CONFIG);
    host.write_route_auth_secrets();
    let instances = instances_file(
        &host,
        &[instance("app", "2026-01-01T00:00:00Z", "10.0.0.7", "https://app.example.com@auth, tcp://10022:22")],
    );
    std::fs::write(host.systemctl_kill(), "").unwrap();
    let output = host.run(&instances, &[]);
    assert_eq!(output.status.code(), None, "killed by SIGKILL: {}", stderr(&output));
    // daemon-reload and enable ran; the first restart killed the run.
    let owed = host.read(PENDING);
    assert!(
        !owed.contains("daemon-reload")
            && owed.contains("restart terrarium-oauth2-proxy-routes.service")
            && owed.contains("restart traefik.service"),
        "{owed}"
    );
    host.take_calls();

    let output = host.run(&instances, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stderr(&output).contains("an earlier run did not finish this restart"), "{}", stderr(&output));
    let calls = host.take_calls();
    let restarts: Vec<&str> = calls.lines().filter(|line| line.starts_with("systemctl")).collect();
    assert_eq!(
        restarts,
        ["systemctl restart terrarium-oauth2-proxy-routes.service", "systemctl restart traefik.service"]
    );
    assert!(!host.root().join(PENDING).exists());
}
