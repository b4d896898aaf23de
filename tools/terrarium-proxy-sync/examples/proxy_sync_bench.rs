//! Benchmark helper for tests/bench/proxy-sync.sh (not a test): writes N synthetic
//! instances in `lxc list --format=json` shape and prints the in-process cost of
//! plan + render next to its baseline, parsing the same list.
//!
//!     cargo run --release --example proxy_sync_bench -- N OUT_DIR
#![allow(clippy::unwrap_used)] // a bench helper may panic

use std::time::{Duration, Instant};

use terrarium_proxy_sync::{instances, plan, render};

fn synthetic(n: usize) -> String {
    let list: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            // Every instance has an HTTPS route; every tenth also a TCP port, every
            // twentieth an @auth route with groups.
            let mut label = format!("https://i{i}.example.com:8080");
            if i % 10 == 0 {
                label.push_str(&format!(", tcp://{}:22", 20000 + i));
            }
            if i % 20 == 0 {
                label.push_str(&format!(", https://i{i}.example.com/admin@auth:ops,devs"));
            }
            serde_json::json!({
                "name": format!("i{i}"), "status": "Running", "status_code": 103, "type": "container",
                "created_at": format!("2026-01-01T00:00:00.{i:09}Z"),
                "config": {"user.proxy": label, "image.os": "busybox"},
                "expanded_config": {"user.proxy": label, "image.os": "busybox"},
                "state": {"status": "Running", "network": {
                    "eth0": {"host_name": format!("veth{i}"), "type": "broadcast", "state": "up", "addresses": [
                        {"family": "inet", "address": format!("10.{}.{}.{}", i / 65536 % 256, i / 256 % 256, i % 256 + 1), "netmask": "8", "scope": "global"},
                        {"family": "inet6", "address": format!("fd42::{i:x}"), "netmask": "64", "scope": "global"}]},
                    "lo": {"host_name": "", "type": "loopback", "state": "up", "addresses": [
                        {"family": "inet", "address": "127.0.0.1", "netmask": "8", "scope": "local"}]}}}
            })
        })
        .collect();
    serde_json::to_string(&list).unwrap_or_default()
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(n), Some(out)) = (args.get(1).and_then(|n| n.parse::<usize>().ok()), args.get(2)) else {
        eprintln!("usage: proxy_sync_bench N OUT_DIR");
        std::process::exit(2);
    };
    let json = synthetic(n);
    std::fs::create_dir_all(out).expect("create OUT_DIR");
    std::fs::write(format!("{out}/instances.json"), &json).expect("write instances.json");

    let settings = plan::Settings {
        reserved_ports: terrarium_common::ports::RESERVED.iter().copied().collect(),
        route_auth: Ok(()),
        reserved_hosts: [("manage.example.com".to_string(), "the management host".to_string())].into(),
        ports_in_use: Default::default(),
        // Every synthetic port publishes, as with the limits raised in the config.
        max_rules_per_label: 32,
        max_ports_per_host: usize::MAX,
    };
    let rounds = (20_000 / n.max(1)).clamp(3, 200);
    let mut parse_only = Vec::new();
    let mut full = Vec::new();
    let mut rendered = 0;
    for _ in 0..rounds {
        let start = Instant::now();
        let list = instances::parse(&json, "bench").expect("parse");
        parse_only.push(start.elapsed());

        let start = Instant::now();
        let list2 = instances::parse(&json, "bench").expect("parse");
        let planned = plan::plan(&list2, &settings);
        let text = render::dynamic::render(&planned);
        full.push(start.elapsed());
        rendered = text.len();
        drop(list);
    }
    let (parse_only, full) = (median(parse_only), median(full));
    println!(
        "{n:>6} instances: parse {:>9.3} ms | parse+plan+render {:>9.3} ms | plan+render {:>9.3} ms ({:.2}x the parse) | {} KiB rendered, {rounds} rounds",
        parse_only.as_secs_f64() * 1e3,
        full.as_secs_f64() * 1e3,
        full.saturating_sub(parse_only).as_secs_f64() * 1e3,
        full.as_secs_f64() / parse_only.as_secs_f64().max(1e-9),
        rendered / 1024,
    );
}
