//! Benchmark helper for tests/bench/proxy-sync.sh (not a test): watch-mode latency on
//! real LXD 5.0 and Traefik v3 (testkit). For each round it sets a new `user.proxy`
//! label on a running busybox container and measures the time until proxy-sync (in
//! `--watch`) has written the route, and until Traefik answers 200 for it.
//! `systemctl` and `ufw` are recording stand-ins here (systemd is not PID 1; the bench
//! publishes http:// routes only, which open no firewall port).
//!
//!     cargo run --release --example proxy_sync_watch_latency -- ROUNDS PROXY_SYNC_BINARY
#![allow(clippy::unwrap_used)] // a bench helper may panic

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use terrarium_testkit::{Lxd, Traefik};

const CONFIG: &str = "schema_version: 2\ndomains:\n  root: example.com\n  manage: manage.example.com\n  proxy: proxy.example.com\n  lxd: lxd.example.com\n  auth: auth.example.com\nemails:\n  contact: ops@example.com\n  acme: acme@example.com\nidentity:\n  mode: local\nstorage:\n  mode: file\n";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(rounds), Some(binary)) = (args.get(1).and_then(|r| r.parse::<usize>().ok()), args.get(2)) else {
        eprintln!("usage: proxy_sync_watch_latency ROUNDS PROXY_SYNC_BINARY");
        std::process::exit(2);
    };
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path().join("root");
    let shims = work.path().join("shims");
    for dir in [root.join("etc/terrarium"), root.join("etc/traefik/dynamic"), shims.clone()] {
        std::fs::create_dir_all(dir).expect("mkdir");
    }
    std::fs::write(root.join("etc/terrarium/config.yaml"), CONFIG).expect("config");
    std::fs::set_permissions(root.join("etc/terrarium/config.yaml"), std::fs::Permissions::from_mode(0o600))
        .expect("chmod");
    let static_path = root.join("etc/traefik/traefik.yml");
    // providersThrottleDuration as the product sets it (ansible/roles/traefik/templates/
    // etc/traefik/traefik.yml.j2): Traefik's default of 2 s alone would use the budget.
    std::fs::write(
        &static_path,
        format!(
            "global:\n  checkNewVersion: false\n  sendAnonymousUsage: false\nentryPoints:\n  web:\n    address: \":80\"\n  # BEGIN terrarium-proxy-sync managed entrypoints\n  # END terrarium-proxy-sync managed entrypoints\nproviders:\n  providersThrottleDuration: 500ms\n  file:\n    directory: {}\n    watch: true\n",
            root.join("etc/traefik/dynamic").display()
        ),
    )
    .expect("static");
    for (name, body) in [("systemctl", "exit 0"), ("ufw", "echo 'Status: active'")] {
        let path = shims.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n# bench stand-in\n{body}\n")).expect("shim");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }

    let lxd = Lxd::start();
    lxd.launch_with("web", &[], "mkdir -p /www && echo web > /www/index.html && httpd -f -p 80 -h /www");
    let traefik = Traefik::start(&lxd, &static_path);
    let mut watch = std::process::Command::new(binary)
        .arg("--root")
        .arg(&root)
        .arg("--watch")
        .envs(lxd.env())
        .env("PATH", format!("{}:{}", shims.display(), std::env::var("PATH").unwrap_or_default()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start proxy-sync --watch");
    std::thread::sleep(Duration::from_secs(2));

    let dynamic = root.join("etc/traefik/dynamic/terrarium-proxy.yml");
    let (mut to_file, mut to_live) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let host = format!("r{round}.example.com");
        let started = Instant::now();
        lxd.lxc(&["config", "set", "web", "user.proxy", &format!("http://{host}")]);
        while !std::fs::read_to_string(&dynamic).unwrap_or_default().contains(&host) {
            assert!(started.elapsed() < Duration::from_secs(30), "route {host} never written");
            std::thread::sleep(Duration::from_millis(5));
        }
        to_file.push(started.elapsed());
        while traefik.http_get(&host, "/").0 != 200 {
            assert!(started.elapsed() < Duration::from_secs(30), "route {host} never live");
            std::thread::sleep(Duration::from_millis(20));
        }
        to_live.push(started.elapsed());
    }
    let _ = watch.kill();
    let _ = watch.wait();
    let ms = |d: &Duration| d.as_secs_f64() * 1e3;
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (file, live) = (median(&mut to_file), median(&mut to_live));
    println!("watch mode, {rounds} rounds (lxc config set -> ...), median:");
    println!(
        "  route written by proxy-sync   {:>8.1} ms (max {:.1} ms)",
        ms(&file),
        to_file.iter().map(ms).fold(0.0, f64::max)
    );
    println!(
        "  route live in Traefik (200)   {:>8.1} ms (max {:.1} ms; goal <= 2000 ms: {})",
        ms(&live),
        to_live.iter().map(ms).fold(0.0, f64::max),
        if live <= Duration::from_secs(2) { "met" } else { "MISSED" }
    );
}
