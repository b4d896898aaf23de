use age::secrecy::ExposeSecret as _;

use super::*;

/// A fresh age key pair: (recipient line, identity file in `dir`). Classic X25519, which
/// exports use (see `Recipients::parse`).
#[allow(deprecated)]
fn key_pair(dir: &Path, name: &str) -> (String, PathBuf) {
    let identity = age::x25519::Identity::generate();
    let path = dir.join(name);
    std::fs::write(&path, format!("# test key\n{}\n", identity.to_string().expose_secret())).unwrap();
    (identity.to_public().to_string(), path)
}

fn seal(recipients: &Recipients, plaintext: &[u8]) -> Vec<u8> {
    let mut sealer = recipients.seal(Vec::new()).unwrap();
    // In pieces, as zstd writes.
    for piece in plaintext.chunks(70_001) {
        sealer.write_all(piece).unwrap();
    }
    let (sealed, sha) = sealer.finish().unwrap();
    assert_eq!(sha, hex::encode(Sha256::digest(plaintext)), "the sealer hashes the plaintext");
    sealed
}

fn open(identities: &Identities, sealed: &[u8]) -> Result<(Vec<u8>, String), OpenError> {
    let mut writer = identities.open(Vec::new());
    // In pieces, as the download pushes them; a stopped thread shows in `finish`.
    for piece in sealed.chunks(100_003) {
        if writer.write_all(piece).is_err() {
            break;
        }
    }
    writer.finish()
}

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

#[test]
fn a_sealed_stream_opens_with_any_recipients_identity_and_only_with_one() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, alice_key) = key_pair(dir.path(), "alice.txt");
    let (bob, bob_key) = key_pair(dir.path(), "bob.txt");
    let (_, mallory_key) = key_pair(dir.path(), "mallory.txt");
    let recipients = Recipients::parse(&[alice, bob]).unwrap();
    let plaintext = data(3 << 20);
    let sealed = seal(&recipients, &plaintext);
    assert!(sealed.starts_with(b"age-encryption.org/v1\n"), "the age format, which the age CLI reads");
    assert!(sealed.len() > plaintext.len());
    for key in [&alice_key, &bob_key] {
        let (opened, sha) = open(&Identities::load(key).unwrap(), &sealed).unwrap();
        assert!(opened == plaintext, "{key:?} opens the stream");
        assert_eq!(sha, hex::encode(Sha256::digest(&plaintext)));
    }
    let err = open(&Identities::load(&mallory_key).unwrap(), &sealed).unwrap_err();
    assert!(
        matches!(&err, OpenError::NoMatchingKey { path } if path == &mallory_key)
            && err.to_string().contains("mallory.txt"),
        "{err}"
    );
}

#[test]
fn a_corrupt_or_truncated_stream_is_refused_not_half_opened() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, key) = key_pair(dir.path(), "alice.txt");
    let identities = Identities::load(&key).unwrap();
    let sealed = seal(&Recipients::parse(&[alice]).unwrap(), &data(200_000));
    let mut flipped = sealed.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 1;
    assert!(matches!(open(&identities, &flipped), Err(OpenError::Decrypt(_))));
    let truncated = &sealed[..sealed.len() - 10];
    assert!(matches!(open(&identities, truncated), Err(OpenError::Decrypt(_))));
    assert!(matches!(open(&identities, b"not age at all"), Err(OpenError::Decrypt(_))));
}

#[test]
fn bad_recipients_are_named_with_the_fix() {
    assert!(matches!(Recipients::parse(&[]), Err(SealError::NoRecipients)));
    for bad in [
        "age1notbech32",
        "ssh-ed25519 notbase64",
        "ssh-dss AAAAB3NzaC1kc3MAAACBAP",
        "-----BEGIN OPENSSH PRIVATE KEY-----",
        "AGE-SECRET-KEY-1QQQ",
    ] {
        let err = Recipients::parse(&[bad.to_string()]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("s3.encryption.recipients") && text.contains("age-keygen -y"), "{bad}: {text}");
    }
}

#[test]
fn fingerprints_name_keys_without_the_keys() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, _) = key_pair(dir.path(), "alice.txt");
    let fp = fingerprint(&alice).unwrap();
    assert_eq!(fp, format!("age:{}", hex::encode(Sha256::digest(alice.as_bytes()))));
    // The same key twice is one recipient.
    let twice = Recipients::parse(&[alice.clone(), format!("  {alice} ")]).unwrap();
    assert_eq!(twice.fingerprints(), [fp]);
    // An OpenSSH key: the base64 blob's SHA-256, unpadded base64, as ssh-keygen -l prints
    // (the tests of the backup tool check it against ssh-keygen itself).
    let blob = [0u8, 0, 0, 11].iter().chain(b"ssh-ed25519").copied().collect::<Vec<_>>();
    let line = format!("ssh-ed25519 {} me@host", base64::engine::general_purpose::STANDARD.encode(&blob));
    let expected = base64::engine::general_purpose::STANDARD_NO_PAD.encode(Sha256::digest(&blob));
    assert_eq!(fingerprint(&line).unwrap(), format!("SHA256:{expected}"));
}

#[test]
fn identity_files_that_cannot_work_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.txt");
    assert!(Identities::load(&missing).unwrap_err().to_string().contains("cannot read it"));
    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, "# nothing\n").unwrap();
    assert!(Identities::load(&empty).unwrap_err().to_string().contains("holds no key"));
    let public = dir.path().join("public.txt");
    let (alice, _) = key_pair(dir.path(), "alice.txt");
    std::fs::write(&public, format!("{alice}\n")).unwrap();
    let err = Identities::load(&public).unwrap_err().to_string();
    assert!(err.contains("public.txt") && err.contains("age-keygen"), "{err}");
}
