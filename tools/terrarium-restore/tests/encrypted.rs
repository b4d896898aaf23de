//! S3 restores of encrypted exports (s3.encryption), made by the real terrarium-backup
//! from a real zfs-fuse pool into a real s3s-fs, to an OpenSSH ed25519 key made by
//! `ssh-keygen`: restored with the private key, refused (nothing received, nothing
//! changed) without it or with another. The instance is one LXD does not know (an
//! `lxc` that finds none), so no LXD is needed.
#![allow(clippy::unwrap_used)] // tests: a panic is a failure

mod common;

use std::io::Write as _;
use std::path::Path;
use std::process::Command;

use common::*;
use terrarium_testkit::require;

/// An ed25519 key pair without a passphrase: the private key's path.
fn ssh_keygen(dir: &Path, name: &str) -> std::path::PathBuf {
    let key = dir.join(name);
    let out = Command::new(require("ssh-keygen"))
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "ops@laptop", "-f"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success(), "ssh-keygen: {}", String::from_utf8_lossy(&out.stderr));
    key
}

/// `SHA256:...` as `ssh-keygen -l` prints it for `key`.pub.
fn ssh_fingerprint(key: &Path) -> String {
    let out = Command::new(require("ssh-keygen")).arg("-lf").arg(key.with_extension("pub")).output().unwrap();
    String::from_utf8(out.stdout).unwrap().split_whitespace().nth(1).unwrap().to_string()
}

#[test]
fn an_encrypted_backup_restores_with_its_key_and_is_refused_untouched_without_it_or_with_another() {
    let keys = tempfile::tempdir().unwrap();
    let key = ssh_keygen(keys.path(), "id_ed25519");
    let other = ssh_keygen(keys.path(), "other_ed25519");
    let host = Host::new(256, true);
    // The s3 section ends the config: its encryption goes after it.
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let mut config =
        std::fs::OpenOptions::new().append(true).open(host.root.path().join("etc/terrarium/config.yaml")).unwrap();
    write!(config, "  encryption:\n    recipients:\n      - '{}'\n", public.trim()).unwrap();
    drop(config);

    host.create_instance("web");
    let files = host.files("web");
    write_tree(&files, &version(1, 64));
    host.snapshot("web", A);
    let full = host.export("web", A, None);
    write_tree(&files, &version(2, 64));
    host.snapshot("web", B);
    host.export("web", B, Some(A));
    let recipients = full.encryption.as_ref().map(|e| e.recipients.clone());
    assert_eq!(recipients, Some(vec![ssh_fingerprint(&key)]), "the manifest names the key as ssh-keygen -l does");
    write_tree(&files, &version(3, 64));
    let original = tree_checksums(&files);
    let snapshots = host.snapshots("web");
    let bin = tempfile::tempdir().unwrap();
    let path = test_path(Some(&no_instances_lxc(bin.path())));
    let restore = |extra: &[&str]| {
        let mut args = vec!["--source", "s3", "--instance", "web", "--yes"];
        args.extend_from_slice(extra);
        host.restore(&[]).env("PATH", &path).args(args).output().unwrap()
    };
    let other_arg = other.to_str().unwrap();
    for (refused, why) in [
        (restore(&[]), "pass --identity FILE"),
        (restore(&["--dry-run"]), "pass --identity FILE"),
        (restore(&["--identity", other_arg]), "matches none of the stream's recipients"),
        (restore(&["--identity", "/nonexistent/id"]), "cannot read it"),
    ] {
        let message = stderr(&refused);
        assert_eq!(refused.status.code(), Some(2), "{why}: {message}");
        assert!(message.contains(why), "{why}: {message}");
        assert_eq!(tree_checksums(&files), original, "{why}: the dataset is untouched");
        assert_eq!(host.snapshots("web"), snapshots, "{why}");
        assert!(host.leftovers().is_empty(), "{why}: nothing staged: {:?}", host.leftovers());
    }

    let done = restore(&["--identity", key.to_str().unwrap()]);
    assert!(done.status.success(), "{}", stderr(&done));
    assert_eq!(tree_checksums(&files), checksums_of(&version(2, 64)));
    assert_eq!(host.snapshots("web"), [A, B]);
    assert!(host.leftovers().is_empty(), "{:?}", host.leftovers());
}
