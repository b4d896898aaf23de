//! proxy-sync and the Ansible run of install, set and reconfigure both rewrite
//! /etc/traefik/traefik.yml: proxy-sync takes the shared `traefik` lock
//! (terrarium_common::locks) before it reads or writes Traefik's files.
#![allow(clippy::unwrap_used)] // tests may panic

mod common;

use common::{CONFIG, Host};

#[test]
fn a_run_waits_for_the_traefik_lock_then_exits_4_naming_the_holder_and_writes_nothing() {
    let host = Host::new(CONFIG);
    let instances = host.dir.path().join("instances.json");
    std::fs::write(&instances, "[]").unwrap();
    let before = host.read("etc/traefik/traefik.yml");
    let paths = terrarium_common::Paths::new(host.root());
    let held = terrarium_common::locks::TRAEFIK.acquire(&paths, "ansible-playbook").unwrap();
    let output = host.run(&instances, &["--lock-wait", "1"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains(&format!("pid {} (", std::process::id())) && stderr.contains(" ansible-playbook)"),
        "{stderr}"
    );
    assert_eq!(host.read("etc/traefik/traefik.yml"), before);
    assert_eq!(host.take_calls(), "", "nothing runs without the lock");
    // A dry run takes no lock.
    let dry = host.run(&instances, &["--dry-run"]);
    assert_eq!(dry.status.code(), Some(0), "{}", String::from_utf8_lossy(&dry.stderr));
    drop(held);
    let output = host.run(&instances, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
}
