//! Restores from a hostile S3 peer (the test kit's fault proxy in front of the real
//! s3s-fs): a 503 or a reset is retried and the restore succeeds; a corrupted body is
//! refused before anything is swapped, and the instance dataset is untouched.
#![allow(clippy::unwrap_used)] // tests: a panic is a failure

mod common;

use common::*;
use terrarium_testkit::Lxd;
use terrarium_testkit::s3_faults::{Fault, FaultProxy, Select};

/// A host whose `web` has two exported restore points (versions 1 and 2) and version
/// 3 live, its config then pointed at a fault proxy in front of s3s-fs.
fn exported_host_behind_proxy() -> (Host, FaultProxy) {
    let host = exported_host(256, 2, 64);
    let s3 = host.s3.as_ref().unwrap();
    let proxy = FaultProxy::start(s3.port());
    let config_path = host.root.path().join("etc/terrarium/config.yaml");
    let config = std::fs::read_to_string(&config_path).unwrap();
    let direct = format!("endpoint: {}\n", s3.endpoint());
    assert!(config.contains(&direct), "{config}");
    let proxied = config.replace(&direct, &format!("endpoint: {}\n", proxy.endpoint()));
    terrarium_common::fs::atomic_write(&config_path, proxied.as_bytes(), 0o600).unwrap();
    (host, proxy)
}

fn restore_args() -> Vec<&'static str> {
    vec!["--source", "s3", "--from-host", HOST, "--instance", "web", "--yes"]
}

#[test]
fn a_corrupted_body_is_refused_and_the_instance_is_untouched() {
    let (host, proxy) = exported_host_behind_proxy();
    let lxd = Lxd::start();
    lxd.launch("web", &[]);
    let original = tree_checksums(&host.files("web"));
    let snapshots = host.snapshots("web");
    // Every GET of B's stream: flipped bytes, same length, same ETag.
    proxy.add(Select::get(&format!("*/{B}.zfs.zst")).times(1000), Fault::CorruptBody);

    let failed = host.restore(&lxd.env()).args(restore_args()).output().unwrap();
    assert!(proxy.applied(Fault::CorruptBody) >= 1, "{:#?}", proxy.requests());
    host.assert_refused_untouched(&failed, &format!("backups/{HOST}/web/{B}.zfs.zst"), &original, &snapshots);
}

#[test]
fn a_503_on_the_first_gets_and_a_reset_are_retried_and_the_restore_succeeds() {
    let (host, proxy) = exported_host_behind_proxy();
    let lxd = Lxd::start();
    lxd.launch("web", &[]);
    proxy.add(Select::get("*.manifest.json"), Fault::SlowDown503);
    proxy.add(Select::get("*.zfs.zst"), Fault::SlowDown503);
    proxy.add(Select::get("*.zfs.zst").nth(2), Fault::Reset);

    let done = host.restore(&lxd.env()).args(restore_args()).output().unwrap();
    assert!(done.status.success(), "{}", stderr(&done));
    assert_eq!(proxy.applied(Fault::SlowDown503), 2, "{:#?}", proxy.requests());
    assert_eq!(proxy.applied(Fault::Reset), 1, "{:#?}", proxy.requests());
    assert_eq!(tree_checksums(&host.files("web")), checksums_of(&version(2, 64)));
    assert_eq!(host.snapshots("web"), [A, B]);
    assert!(host.leftovers().is_empty(), "{:?}", host.leftovers());
}
