//! Resumable exports against a real zfs-fuse pool and a real s3s-fs: an export killed
//! (SIGKILL, at the test-only kill point after its Nth part was stored) goes on from
//! there at the next run, which sends the same snapshot again, checks the stored parts
//! against it and uploads only the rest; a stream that differs, or an interrupted
//! export too old to resume, starts over.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::os::unix::process::ExitStatusExt;

use common::{Host, checksums, sha256_file, write_random};
use terrarium_archive::manifest::Manifest;
use terrarium_common::paths::env;

/// `web` with 80 MiB of random data in snapshot `s1`: several 8 MiB parts, more than
/// the uploader has in flight at once.
fn scene() -> Host {
    let host = Host::new(320);
    host.create_instance("web");
    write_random(&host.files("web").join("data.bin"), 80 << 20, 11);
    host.snapshot("web", "s1");
    host
}

/// An export that dies by SIGKILL once its `part`th part is stored and journaled.
fn export_killed_after_part(host: &Host, part: u32) {
    let point = format!("export.part-{part}-stored");
    let out = host.tool(&["export"]).env(env::KILL_AFTER, &point).output().unwrap();
    assert_eq!(out.status.signal(), Some(9), "{point}: {}", String::from_utf8_lossy(&out.stderr));
}

/// The journal's lines (one per stored part).
fn journal(host: &Host) -> Vec<String> {
    std::fs::read_to_string(host.state("backup-uploads/web.parts")).unwrap().lines().map(str::to_string).collect()
}

/// The export is whole: its manifest matches the stored object, nothing is pending,
/// and aws | zstd -d | zfs receive gives back the files.
fn assert_whole(host: &Host) {
    let key = host.key("web", "s1.manifest.json");
    let manifest = Manifest::parse(&std::fs::read_to_string(host.object(&key)).unwrap(), &key).unwrap();
    let stored = host.object(&manifest.object_key);
    assert_eq!(sha256_file(&stored), manifest.sha256, "the manifest's sha256 is the stored object's");
    assert_eq!(std::fs::metadata(&stored).unwrap().len(), manifest.compressed_bytes);
    assert!(host.incomplete_uploads().is_empty(), "{:?}", host.incomplete_uploads());
    let pending = std::fs::read_dir(host.state("backup-uploads")).map_or(0, Iterator::count);
    assert_eq!(pending, 0, "nothing is recorded as pending");
    let expected = checksums(&host.files("web"));
    let dataset = host.dataset("web");
    host.pool.zfs(&["release", "terrarium-backup", &format!("{dataset}@s1")]);
    host.pool.zfs(&["destroy", "-r", &dataset]);
    host.restore_with_standard_tools(&[manifest.object_key], &dataset);
    assert_eq!(checksums(&host.files("web")), expected, "the resumed stream restores the same files");
}

#[test]
fn an_export_killed_after_its_third_part_keeps_the_stored_parts_and_sends_only_the_rest() {
    let host = scene();
    export_killed_after_part(&host, 3);
    // Parts answer out of order (four are in flight at once): the journal holds part 3
    // and whichever others had answered.
    let stored = journal(&host);
    assert!(stored.iter().any(|line| line.starts_with("3 ")), "{stored:?}");
    let stored_bytes: u64 = stored.iter().map(|line| line.split(' ').nth(1).unwrap().parse::<u64>().unwrap()).sum();
    assert!(!host.incomplete_uploads().is_empty(), "the interrupted upload is kept for the next run");

    let report = host.run_json(&["export"]);
    let item = &report["instances"][0];
    assert_eq!((item["status"].as_str(), item["kind"].as_str()), (Some("exported"), Some("full")), "{report:#}");
    assert!(item["reason"].as_str().unwrap().contains("resuming the interrupted export of s1"), "{report:#}");
    // Every journaled part is kept (the server lists them all), and only the rest is sent.
    assert_eq!(item["resumed_parts"].as_u64(), Some(stored.len() as u64), "{report:#}");
    assert_eq!(item["resumed_bytes"].as_u64(), Some(stored_bytes), "{report:#}");
    assert!(item["compressed_bytes"].as_u64().unwrap() > stored_bytes, "some parts were left to send: {report:#}");
    assert_whole(&host);
}

#[test]
fn a_resent_stream_that_differs_from_the_stored_parts_starts_over_and_says_why() {
    let host = scene();
    export_killed_after_part(&host, 2);
    // As if `zfs send` had given other bytes this time: the first part's prefix hash
    // no longer matches the stream.
    let lines: Vec<String> = journal(&host)
        .into_iter()
        .map(|line| {
            let mut fields: Vec<String> = line.split(' ').map(str::to_string).collect();
            if fields[0] == "1" {
                fields[2] = "0".repeat(64);
            }
            fields.join(" ")
        })
        .collect();
    std::fs::write(host.state("backup-uploads/web.parts"), lines.join("\n") + "\n").unwrap();

    let report = host.run_json(&["export"]);
    let item = &report["instances"][0];
    assert_eq!(item["status"], "exported", "{report:#}");
    let reason = item["reason"].as_str().unwrap();
    assert!(reason.contains("part 1 of the re-sent stream differs") && reason.contains("starts over"), "{reason}");
    assert!(item.get("resumed_parts").is_none(), "{report:#}");
    assert_whole(&host);
}

#[test]
fn an_interrupted_export_older_than_resume_max_age_hours_is_aborted_and_sent_again() {
    let host = scene();
    export_killed_after_part(&host, 2);
    // Started three days ago (the default limit is 48 hours).
    let record = host.state("backup-uploads/web.json");
    let mut pending: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&record).unwrap()).unwrap();
    assert_eq!(pending["stream"]["snapshot"], "s1", "{pending:#}");
    let old = time::OffsetDateTime::now_utc() - time::Duration::days(3);
    pending["stream"]["started_at"] = old.format(&time::format_description::well_known::Rfc3339).unwrap().into();
    std::fs::write(&record, pending.to_string()).unwrap();

    let report = host.run_json(&["export"]);
    let item = &report["instances"][0];
    assert_eq!(item["status"], "exported", "{report:#}");
    assert_eq!(item["reason"], "first export of this instance", "{report:#}");
    assert!(item.get("resumed_parts").is_none(), "{report:#}");
    assert_whole(&host);
}
