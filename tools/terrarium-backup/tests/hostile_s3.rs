//! export, verify and prune against a hostile S3 peer (the test kit's fault proxy in
//! front of the real s3s-fs): transient 503s and resets are retried; a wrong ETag, a
//! corrupted body or a listing that lies never ends in a reported success, a recorded
//! export or a deleted stream that a restore point needs.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use common::{Host, write_text};
use terrarium_testkit::s3_faults::{Fault, FaultProxy, Select};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn export_retries_a_503_slowdown_and_a_reset_connection() {
    let (host, proxy) = Host::behind_proxy(11);
    proxy.add(Select::put("*.zfs.zst").with_query("partNumber=1"), Fault::SlowDown503);
    proxy.add(Select::put("*.zfs.zst").with_query("partNumber=3"), Fault::Reset);
    proxy.add(Select::put("*.manifest.json"), Fault::SlowDown503);
    let report = host.run_json(&["export"]);
    assert_eq!(report["instances"][0]["status"], "exported", "{report:#}");
    assert_eq!(proxy.applied(Fault::SlowDown503), 2, "{:#?}", proxy.requests());
    assert_eq!(proxy.applied(Fault::Reset), 1, "{:#?}", proxy.requests());
    assert!(host.incomplete_uploads().is_empty(), "{:?}", host.incomplete_uploads());
    proxy.clear();
    let verified = host.run_json(&["verify", "--deep"]);
    assert_eq!(verified["ok"], true, "{verified:#}");
}

#[test]
fn a_wrong_part_etag_never_leaves_a_restore_point_that_does_not_verify() {
    let (host, proxy) = Host::behind_proxy(11);
    proxy.add(Select::put("*.zfs.zst").with_query("partNumber=2").times(1000), Fault::WrongEtag);
    let out = host.run(&["export", "--json"]);
    assert!(proxy.applied(Fault::WrongEtag) >= 1, "{:#?}", proxy.requests());
    assert!(host.incomplete_uploads().is_empty(), "orphan multipart upload left: {:?}", host.incomplete_uploads());
    proxy.clear();
    // AWS S3 refuses a CompleteMultipartUpload naming a wrong ETag (InvalidPart), so the
    // export fails and records nothing; s3s-fs accepts it and keeps the parts as sent.
    // Either way what vouches for a stream is the manifest's sha256, not the ETag.
    if out.status.success() {
        let verified = host.run_json(&["verify", "--deep"]);
        assert_eq!(verified["ok"], true, "an export reported done must verify: {verified:#}");
    } else {
        assert!(!host.object(&host.key("web", "s1.manifest.json")).exists(), "a manifest was written");
        assert!(!host.state("lastsnapshots/web").exists(), "lastsnapshots changed");
        assert!(!host.state("catalog/web/s1.manifest.json").exists(), "the catalog changed");
    }
}

#[test]
fn verify_deep_reports_a_corrupted_stream_and_exits_5() {
    let (host, proxy) = Host::behind_proxy(11);
    host.run_json(&["export"]);
    // Every GET of the stream answers with flipped bytes (same length, same ETag).
    proxy.add(Select::get("*.zfs.zst").times(1000), Fault::CorruptBody);
    let out = host.run(&["verify", "--deep", "--json"]);
    assert!(proxy.applied(Fault::CorruptBody) >= 1, "{:#?}", proxy.requests());
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], false, "{report:#}");
    let problems = report["instances"][0]["problems"].to_string();
    assert!(problems.contains("s1"), "the problem names the restore point: {problems}");
    assert!(!host.pool.zfs(&["list", "-H", "-o", "name"]).contains("terrarium-verify-web"), "scratch dataset left");

    // The same stream, read straight, is fine: the fault was the peer's.
    proxy.clear();
    assert_eq!(host.run_json(&["verify", "--deep"])["ok"], true);
}

#[test]
fn verify_reports_a_stream_the_listing_leaves_out_and_exits_5() {
    let (host, proxy) = Host::behind_proxy(11);
    host.run_json(&["export"]);
    proxy.add(Select::list().times(1000), Fault::ListOmits("*/s1.zfs.zst".into()));
    let out = host.run(&["verify"]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(stderr(&out).contains("s1.zfs.zst"), "{}", stderr(&out));
}

/// `web` with five exported restore points in one chain: s1 full, s2..s5 incremental.
fn one_chain_of_five() -> (Host, FaultProxy) {
    let host = Host::new(128);
    let proxy = FaultProxy::start(host.s3.port());
    host.write_config(&proxy.endpoint());
    host.create_instance("web");
    for snapshot in ["s1", "s2", "s3", "s4", "s5"] {
        write_text(&host.files("web").join(format!("{snapshot}.txt")), 20_000, snapshot);
        host.snapshot("web", snapshot);
        host.run_json(&["export"]);
    }
    (host, proxy)
}

fn assert_every_stream_kept(host: &Host) {
    for snapshot in ["s1", "s2", "s3", "s4", "s5"] {
        let stream = host.key("web", &format!("{snapshot}.zfs.zst"));
        assert!(host.object(&stream).exists(), "prune deleted {stream}, which s5's chain needs");
        let manifest = host.key("web", &format!("{snapshot}.manifest.json"));
        assert!(host.object(&manifest).exists(), "prune deleted {manifest}");
    }
}

#[test]
fn prune_with_a_listing_that_omits_a_manifest_deletes_no_stream_a_chain_needs() {
    let (host, proxy) = one_chain_of_five();
    // keep_last: 2 keeps s4 and s5, whose chain needs everything down to s1. Without
    // s3's manifest, s4's chain looks like it ends at s3.
    proxy.add(Select::list().times(1000), Fault::ListOmits("*/s3.manifest.json".into()));
    let out = host.run(&["prune", "--json"]);
    assert_every_stream_kept(&host);
    assert!(stderr(&out).contains("deleting nothing for this instance"), "the gap is named: {}", stderr(&out));
}

#[test]
fn prune_with_a_listing_that_names_a_missing_manifest_deletes_nothing() {
    let (host, proxy) = one_chain_of_five();
    let phantom = host.key("web", "s6.manifest.json");
    proxy.add(Select::list().times(1000), Fault::ListAdds(phantom.clone(), 700));
    let out = host.run(&["prune", "--json"]);
    assert_every_stream_kept(&host);
    assert_ne!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("s6.manifest.json"), "the error names the missing object: {}", stderr(&out));
}
