//! `prune` against real S3 objects: keeps keep_last restore points and whatever their
//! chains need, deletes the rest (manifest and stream), and the result still verifies.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use common::{Host, write_text};

fn names(value: &serde_json::Value) -> Vec<String> {
    value.as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect()
}

#[test]
fn prune_keeps_the_newest_and_every_link_they_need() {
    let host = Host::new(128);
    host.create_instance("web");
    let export = |snapshot: &str, full: bool| {
        write_text(&host.files("web").join(format!("{snapshot}.txt")), 20_000, snapshot);
        host.snapshot("web", snapshot);
        let args: &[&str] = if full { &["export", "--full"] } else { &["export"] };
        let report = host.run_json(args);
        assert_eq!(report["instances"][0]["kind"], if full { "full" } else { "incremental" }, "{report:#}");
    };
    export("s1", true);
    export("s2", false);
    export("s3", true);
    export("s4", false);
    export("s5", false);

    // keep_last: 2 keeps s4 and s5; s5 and s4 need s3 (the full); s1 and s2 can go.
    let plan = host.run_json(&["prune", "--dry-run"]);
    let web = &plan["instances"][0];
    assert_eq!(names(&web["keep"]), ["s4", "s5"], "{plan:#}");
    assert_eq!(names(&web["keep_for_chains"]), ["s3"], "{plan:#}");
    assert_eq!(names(&web["delete"]), ["s1", "s2"], "{plan:#}");
    assert!(host.object(&host.key("web", "s1.zfs.zst")).exists(), "--dry-run deletes nothing");

    host.run_json(&["prune"]);
    for gone in ["s1", "s2"] {
        assert!(!host.object(&host.key("web", &format!("{gone}.zfs.zst"))).exists(), "{gone} stream left");
        assert!(!host.object(&host.key("web", &format!("{gone}.manifest.json"))).exists(), "{gone} manifest left");
        assert!(
            !host.state(&format!("catalog/web/{gone}.manifest.json")).exists(),
            "{gone} still in the local catalog"
        );
    }
    for kept in ["s3", "s4", "s5"] {
        assert!(host.object(&host.key("web", &format!("{kept}.zfs.zst"))).exists(), "{kept} was deleted");
    }
    let verified = host.run_json(&["verify"]);
    assert_eq!(verified["ok"], true, "{verified:#}");
    assert_eq!(verified["instances"][0]["restore_points"], 3);

    // A second prune has nothing to do.
    let again = host.run_json(&["prune"]);
    assert!(again["instances"][0]["delete"].as_array().unwrap().is_empty(), "{again:#}");
}

#[test]
fn verify_names_the_missing_link_and_exits_5() {
    let host = Host::new(128);
    host.create_instance("web");
    for snapshot in ["s1", "s2", "s3"] {
        write_text(&host.files("web").join(format!("{snapshot}.txt")), 20_000, snapshot);
        host.snapshot("web", snapshot);
        host.run_json(&["export"]);
    }
    std::fs::remove_file(host.object(&host.key("web", "s2.manifest.json"))).unwrap();
    let out = host.run(&["verify"]);
    assert_eq!(out.status.code(), Some(5), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("restore point s3 needs base s2") && stderr.contains("the chain is broken at s2"),
        "{stderr}"
    );

    // A stream with the wrong size is named too.
    std::fs::write(host.object(&host.key("web", "s1.zfs.zst")), b"truncated").unwrap();
    let out = host.run(&["verify", "--json"]);
    assert_eq!(out.status.code(), Some(5));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let problems = report["instances"][0]["problems"].to_string();
    assert!(problems.contains("s1.zfs.zst of restore point s1 has 9 bytes"), "{problems}");
}

#[test]
fn prune_refuses_a_manifest_that_names_another_restore_points_stream() {
    let host = Host::new(128);
    host.create_instance("web");
    for snapshot in ["s1", "s2", "s3"] {
        write_text(&host.files("web").join(format!("{snapshot}.txt")), 20_000, snapshot);
        host.snapshot("web", snapshot);
        host.run_json(&["export", "--full"]);
    }
    // keep_last: 2 would delete s1. Its manifest is tampered with to name s3's stream,
    // the newest restore point: a prune that trusted the body would delete it.
    let s1_manifest = host.object(&host.key("web", "s1.manifest.json"));
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&s1_manifest).unwrap()).unwrap();
    let s3_stream = host.key("web", "s3.zfs.zst");
    manifest["object_key"] = serde_json::Value::from(s3_stream.clone());
    std::fs::write(&s1_manifest, serde_json::to_string_pretty(&manifest).unwrap()).unwrap();

    let out = host.run(&["prune", "--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "a skipped instance is a partial run: {stderr}");
    assert!(
        stderr.contains("not pruning this instance") && stderr.contains(&format!("names stream `{s3_stream}`")),
        "{stderr}"
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["skipped"], serde_json::json!(["web"]), "{report:#}");
    for kept in ["s1.manifest.json", "s1.zfs.zst", "s2.zfs.zst", "s3.zfs.zst", "s3.manifest.json"] {
        assert!(host.object(&host.key("web", kept)).exists(), "{kept} was deleted");
    }
    // verify names the manifest too.
    let verify = host.run(&["verify"]);
    assert_eq!(verify.status.code(), Some(5), "{}", String::from_utf8_lossy(&verify.stderr));
}
