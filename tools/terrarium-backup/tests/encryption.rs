//! Client-side encryption (s3.encryption) against a real zfs-fuse pool, a real s3s-fs
//! and Debian's age CLI: keys from `age-keygen`, streams opened by `age -d` as
//! docs/backup.md "Restoring by hand" says.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::process::Command;

use common::{Host, age_keygen, checksums, sha256_file, write_random, write_text};
use terrarium_archive::manifest::{Kind, Manifest};
use terrarium_testkit::require;

fn manifest(host: &Host, snapshot: &str) -> Manifest {
    let key = host.key("web", &format!("{snapshot}.manifest.json"));
    Manifest::parse(&std::fs::read_to_string(host.object(&key)).unwrap(), &key).unwrap()
}

/// `age -d -i identity < stored | sha256sum`, with the real age CLI.
fn decrypted_sha256(stored: &std::path::Path, identity: &std::path::Path) -> String {
    let out = Command::new(require("age")).arg("-d").arg("-i").arg(identity).arg(stored).output().unwrap();
    assert!(out.status.success(), "age -d: {}", String::from_utf8_lossy(&out.stderr));
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(&out.stdout))
}

#[test]
fn encryption_turned_on_mid_chain_starts_an_encrypted_full_that_age_and_zstd_restore_by_hand() {
    let host = Host::new(256);
    let keys = tempfile::tempdir().unwrap();
    let (recipient, identity) = age_keygen(keys.path(), "ops.key");
    let (_, stranger) = age_keygen(keys.path(), "stranger.key");
    host.create_instance("web");
    let files = host.files("web");
    write_random(&files.join("random.bin"), 2 << 20, 7);
    host.snapshot("web", "s1");
    assert_eq!(host.run_json(&["export"])["instances"][0]["kind"], "full");
    assert!(manifest(&host, "s1").encryption.is_none());

    // Encryption on: the next export cannot continue a plain chain.
    host.write_config_encrypted(&host.s3.endpoint(), std::slice::from_ref(&recipient));
    write_text(&files.join("notes.txt"), 1 << 20, "second");
    host.snapshot("web", "s2");
    let report = host.run_json(&["export"]);
    let item = &report["instances"][0];
    assert_eq!(item["kind"], "full", "{report:#}");
    assert!(item["reason"].as_str().unwrap().contains("encryption was turned on"), "{report:#}");
    let sealed = manifest(&host, "s2");
    let encryption = sealed.encryption.clone().expect("s2's manifest records its encryption");
    assert_eq!(sealed.schema_version, 2, "an encrypted stream's manifest is schema 2");
    assert_eq!(encryption.scheme, "age");
    assert_eq!(encryption.recipients, [terrarium_archive::seal::fingerprint(&recipient).unwrap()]);
    assert!(!encryption.recipients[0].contains(&recipient), "fingerprints, not keys");
    assert_eq!(sealed.object_key, host.key("web", "s2.zfs.zst.age"));
    let stored = host.object(&sealed.object_key);
    let bytes = std::fs::read(&stored).unwrap();
    assert!(bytes.starts_with(b"age-encryption.org/v1\n"), "the stored object is an age file");
    assert_eq!(bytes.len() as u64, sealed.compressed_bytes);
    assert_eq!(sha256_file(&stored), sealed.sha256, "the manifest's sha256 is the stored object's");
    assert_eq!(decrypted_sha256(&stored, &identity), encryption.plaintext_sha256, "age -d prints the zstd frame");

    // The chain goes on encrypted.
    write_random(&files.join("more.bin"), 1 << 20, 8);
    host.snapshot("web", "s3");
    assert_eq!(host.run_json(&["export"])["instances"][0]["kind"], "incremental");
    let third = manifest(&host, "s3");
    assert_eq!(
        (third.kind, third.encryption.as_ref().map(|e| &e.recipients)),
        (Kind::Incremental, Some(&encryption.recipients))
    );
    let expected = checksums(&files);

    // Without the identity (the host that exports needs none), the drill checks
    // checksums; with it, the chain is received; with another key, it fails and says so.
    let verified = host.run_json(&["verify", "--deep"]);
    assert_eq!(verified["ok"], true, "{verified:#}");
    assert_eq!(verified["instances"][0]["deep"]["mode"], "checksum", "{verified:#}");
    let identity_arg = identity.to_str().unwrap();
    let verified = host.run_json(&["verify", "--deep", "--identity", identity_arg]);
    assert_eq!(
        (&verified["ok"], &verified["instances"][0]["deep"]["mode"], &verified["instances"][0]["deep"]["streams"]),
        (&serde_json::json!(true), &serde_json::json!("receive"), &serde_json::json!(2)),
        "{verified:#}"
    );
    let wrong = host.run(&["--json", "verify", "--deep", "--identity", stranger.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&wrong.stdout);
    assert_eq!(wrong.status.code(), Some(5), "a drill with the wrong key fails verification: {stdout}");
    assert!(stdout.contains("stranger.key") && stdout.contains("matches none"), "{stdout}");
    let missing = host.run(&["verify", "--deep", "--identity", "/nonexistent/key.txt"]);
    assert_eq!(missing.status.code(), Some(2), "{}", String::from_utf8_lossy(&missing.stderr));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/key.txt"));

    // Disaster: restore with aws, age, zstd and zfs only.
    let dataset = host.dataset("web");
    host.pool.zfs(&["release", "terrarium-backup", &format!("{dataset}@s3")]);
    host.pool.zfs(&["destroy", "-r", &dataset]);
    host.restore_with_standard_tools_decrypting(
        &[sealed.object_key.clone(), third.object_key.clone()],
        &dataset,
        Some(&identity),
    );
    assert_eq!(checksums(&files), expected, "restored files differ from the exported ones");
}

#[test]
fn a_recipient_that_is_not_a_public_key_stops_the_export_before_anything_is_sent() {
    let host = Host::new(64);
    host.create_instance("web");
    write_text(&host.files("web").join("a.txt"), 10_000, "a");
    host.snapshot("web", "s1");
    for (bad, why) in [("AGE-SECRET-KEY-1QQQQ", "private key"), ("ssh-ed25519 AAAA", "ssh-ed25519")] {
        host.write_config_encrypted(&host.s3.endpoint(), &[bad.to_string()]);
        let out = host.run(&["export"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {stderr}");
        assert!(stderr.contains("s3.encryption.recipients[0]") && stderr.contains(why), "{bad}: {stderr}");
        assert!(stderr.contains("age-keygen -y"), "the fix is named: {stderr}");
        assert!(!host.object(&host.key("web", "s1.zfs.zst")).exists() && host.incomplete_uploads().is_empty());
        assert!(!host.state("lastsnapshots/web").exists(), "nothing recorded");
    }
}
