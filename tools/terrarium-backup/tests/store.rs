//! The library's S3 store against a real s3s-fs: probe, streaming multipart upload and
//! download, abort, and typed errors (what terrarium-install's preflight relies on).
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::io::Write;

use terrarium_backup::keys::KeyLayout;
use terrarium_backup::s3::{S3Error, S3Settings, Store, Tuning};
use terrarium_common::secret::Secret;
use terrarium_testkit::S3Server;

fn settings(s3: &S3Server, secret: &str) -> S3Settings {
    S3Settings {
        endpoint: s3.endpoint(),
        bucket: s3.bucket().to_string(),
        region: s3.region().to_string(),
        prefix: Some("p".into()),
        access_key: s3.access_key().to_string(),
        secret_key: Secret::new(secret),
        tuning: Tuning { max_attempts: 2, ..Tuning::default() },
    }
}

#[test]
fn probe_writes_and_deletes_and_names_bad_credentials() {
    let s3 = S3Server::start();
    let store = Store::new(&settings(&s3, s3.secret_key())).unwrap();
    let keys = KeyLayout::new(Some("p"), "h");
    store.probe(&keys).unwrap();
    assert!(store.list("p/").unwrap().is_empty(), "the probe object is deleted");

    let wrong = Store::new(&settings(&s3, "wrong")).unwrap();
    assert!(matches!(wrong.probe(&keys), Err(S3Error::Credentials { .. })));
}

#[test]
fn a_multipart_stream_round_trips_and_an_unfinished_one_leaves_nothing() {
    let s3 = S3Server::start();
    let store = Store::new(&settings(&s3, s3.secret_key())).unwrap();
    // 20 MiB + a bit: three parts of the minimum size.
    let data: Vec<u8> = (0..(20 << 20) + 12345).map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let mut upload = store.upload("p/h/i/obj", None).unwrap();
    for chunk in data.chunks(1 << 20) {
        upload.write_all(chunk).unwrap();
    }
    let summary = upload.finish().unwrap();
    assert_eq!((summary.bytes, summary.parts), (data.len() as u64, 3));
    assert_eq!(store.head("p/h/i/obj").unwrap().map(|o| o.size), Some(data.len() as u64));
    let mut back = Vec::new();
    store.download("p/h/i/obj", &mut back, &|_| {}).unwrap();
    assert!(back == data, "downloaded bytes differ");

    // Dropped before finish: aborted, no parts left on the server.
    let mut unfinished = store.upload("p/h/i/gone", None).unwrap();
    unfinished.write_all(&data).unwrap();
    drop(unfinished);
    assert_eq!(store.head("p/h/i/gone").unwrap(), None);
    let mut leftovers = Vec::new();
    for entry in std::fs::read_dir(s3.data_dir()).unwrap().flatten() {
        if entry.file_name().to_string_lossy().starts_with(".upload") {
            leftovers.push(entry.path());
        }
    }
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert!(matches!(store.get_bytes("p/h/i/gone"), Err(S3Error::NotFound { .. })));
}
