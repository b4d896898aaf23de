//! S3 faults during an export: retried when transient; when not, or when the process is
//! killed mid-stream, nothing is recorded, no incomplete multipart upload is left, and
//! the next run succeeds. Faults come from a small proxy in front of the real s3s-fs.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::time::{Duration, Instant};

use common::Host;
use terrarium_testkit::s3_faults::Fault;

fn assert_nothing_recorded(host: &Host) {
    assert!(!host.object(&host.key("web", "s1.manifest.json")).exists(), "a manifest was written for a failed upload");
    assert!(!host.object(&host.key("web", "s1.zfs.zst")).exists(), "a stream object exists for a failed upload");
    assert!(!host.state("lastsnapshots/web").exists(), "lastsnapshots changed after a failed upload");
    assert!(!host.state("catalog/web/s1.manifest.json").exists(), "the catalog changed after a failed upload");
}

#[test]
fn transient_5xx_dropped_connections_and_truncated_downloads_are_retried() {
    let (host, proxy) = Host::behind_proxy(7);
    proxy.inject("partNumber=1", Fault::Status500, 1);
    proxy.inject("partNumber=2", Fault::Drop, 1);
    proxy.inject("uploads", Fault::Status500, 1); // CreateMultipartUpload (POST ?uploads)
    let report = host.run_json(&["export"]);
    assert_eq!(report["instances"][0]["status"], "exported", "{report:#}");
    assert_eq!(proxy.applied(Fault::Status500), 2);
    assert_eq!(proxy.applied(Fault::Drop), 1);
    assert!(host.incomplete_uploads().is_empty(), "{:?}", host.incomplete_uploads());

    // A truncated GET during the restore drill is resumed, and the checksum still matches.
    proxy.inject("s1.zfs.zst?x-id=GetObject", Fault::Truncate, 1);
    let verified = host.run_json(&["verify", "--deep"]);
    assert_eq!(verified["ok"], true, "{verified:#}");
    assert_eq!(proxy.applied(Fault::Truncate), 1, "{:#?}", proxy.requests());
}

#[test]
fn a_persistent_s3_failure_aborts_the_upload_and_records_nothing() {
    let (host, proxy) = Host::behind_proxy(7);
    proxy.inject("partNumber=2", Fault::Status500, 1000);
    let out = host.run(&["export"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("the upload was aborted"), "{stderr}");
    assert_nothing_recorded(&host);
    assert!(host.incomplete_uploads().is_empty(), "incomplete multipart upload left: {:?}", host.incomplete_uploads());
    let status: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(host.state("reports/backup-export.json")).unwrap()).unwrap();
    assert_eq!(status["ok"], false);
    assert_eq!(status["instances"][0]["status"], "failed");

    proxy.clear();
    let report = host.run_json(&["export"]);
    assert_eq!(report["instances"][0]["status"], "exported", "{report:#}");
    assert_eq!(std::fs::read_to_string(host.state("lastsnapshots/web")).unwrap().trim(), "s1");
}

#[test]
fn a_killed_export_records_nothing_and_the_next_run_cleans_up_and_succeeds() {
    let (host, proxy) = Host::behind_proxy(7);
    proxy.inject("partNumber=2", Fault::Hang, 1);
    let mut child =
        host.tool(&["export"]).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
    let started = Instant::now();
    while proxy.applied(Fault::Hang) == 0 {
        assert!(started.elapsed() < Duration::from_secs(60), "the export never reached part 2");
        assert!(child.try_wait().unwrap().is_none(), "the export ended before it was killed");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300)); // let the other parts land
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    assert_nothing_recorded(&host);
    assert!(!host.incomplete_uploads().is_empty(), "the killed run should have left its upload on the server");
    assert!(host.held("web").is_empty(), "a send killed midway left a hold: {:?}", host.held("web"));

    let report = host.run_json(&["export"]);
    assert_eq!(report["instances"][0]["status"], "exported", "{report:#}");
    assert!(
        host.incomplete_uploads().is_empty(),
        "the next run must abort the killed run's upload: {:?}",
        host.incomplete_uploads()
    );
    assert!(host.object(&host.key("web", "s1.manifest.json")).exists());
    assert_eq!(host.held("web"), ["s1"], "the exported snapshot is held once its export is recorded");
}
