//! The library's S3 store against a real s3s-fs: probe, streaming multipart upload and
//! download (one stream, and ranges in parallel through a fault-injecting proxy), abort,
//! and typed errors (what terrarium-install's preflight relies on).
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::cell::Cell;
use std::io::Write;
use std::time::Duration;

use terrarium_testkit::s3_faults::{Fault, FaultProxy};

use terrarium_archive::keys::KeyLayout;
use terrarium_archive::s3::{S3Error, S3Settings, Store, Tuning};
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
    use sha2::Digest as _;
    assert_eq!(summary.sha256, hex::encode(sha2::Sha256::digest(&data)), "the upload hashes what it stores");
    assert_eq!(store.head("p/h/i/obj").unwrap().map(|o| o.size), Some(data.len() as u64));
    let mut back = Vec::new();
    store.download("p/h/i/obj", &mut back, &|_| {}).unwrap();
    assert!(back == data, "downloaded bytes differ");

    // Dropped before finish: aborted, no parts left on the server.
    let mut unfinished = store.upload("p/h/i/gone", None).unwrap();
    unfinished.write_all(&data).unwrap();
    drop(unfinished);
    assert_eq!(store.head("p/h/i/gone").unwrap(), None);
    assert!(upload_leftovers(&s3).is_empty(), "{:?}", upload_leftovers(&s3));
    assert!(matches!(store.get_bytes("p/h/i/gone"), Err(S3Error::NotFound { .. })));
}

#[test]
fn a_paced_upload_transfers_no_faster_than_its_limit_and_reports_the_transfer_apart() {
    let s3 = S3Server::start();
    let mut store = Store::new(&settings(&s3, s3.secret_key())).unwrap();
    store.set_bwlimit(Some(4 << 20));
    let started = std::time::Instant::now();
    let mut upload = store.upload("p/h/i/paced", None).unwrap();
    // 6 MiB at 4 MiB/s: the last write may go no sooner than 1.5 s after the start.
    for chunk in vec![7u8; 6 << 20].chunks(256 << 10) {
        upload.write_all(chunk).unwrap();
    }
    let summary = upload.finish().unwrap();
    // Lower bounds and an order, not a speed: the limit holds however slow the machine.
    assert!(summary.transfer >= Duration::from_millis(1500), "{:?}", summary.transfer);
    assert!(summary.transfer <= started.elapsed(), "the transfer is part of the run");
    assert_eq!(store.head("p/h/i/paced").unwrap().map(|o| o.size), Some(6 << 20));
}

#[test]
fn parts_over_the_memory_budget_go_through_files_that_are_removed_on_every_exit() {
    let s3 = S3Server::start();
    let spool = tempfile::tempdir().unwrap();
    // 96 MiB budget: 32 MiB for parts, so parts over 16 MiB are spooled. A 100 GiB size
    // hint makes every part 22.8 MiB: this 50 MiB stream is three spooled parts.
    let tuning = Tuning { memory_budget: 96 << 20, spool_dir: spool.path().to_path_buf(), ..Tuning::default() };
    let store = Store::new(&S3Settings { tuning, ..settings(&s3, s3.secret_key()) }).unwrap();
    let data: Vec<u8> = (0..(50u32 << 20)).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect();
    let spooled = || std::fs::read_dir(spool.path()).unwrap().count();
    let mut upload = store.upload("p/h/i/big", Some(100 << 30)).unwrap();
    let mut most = 0;
    for chunk in data.chunks(1 << 20) {
        upload.write_all(chunk).unwrap();
        most = most.max(spooled());
    }
    assert!(most >= 1, "the parts were written to files");
    assert!(most <= terrarium_archive::part_buffer::SPOOL_SLOTS, "{most} part files at once");
    let summary = upload.finish().unwrap();
    assert_eq!((summary.bytes, summary.parts), (data.len() as u64, 3));
    assert_eq!(spooled(), 0, "every part file is removed once its part is stored");
    let mut back = Vec::new();
    store.download("p/h/i/big", &mut back, &|_| {}).unwrap();
    assert!(back == data, "the object is the stream");

    // Dropped half-way: aborted, and its part files are gone too.
    let mut unfinished = store.upload("p/h/i/gone", Some(100 << 30)).unwrap();
    unfinished.write_all(&data[..30 << 20]).unwrap();
    drop(unfinished);
    assert_eq!(spooled(), 0);
    assert_eq!(store.head("p/h/i/gone").unwrap(), None);
}

/// Names of the files s3s-fs keeps for multipart uploads in progress.
fn upload_leftovers(s3: &S3Server) -> Vec<std::path::PathBuf> {
    let entries = std::fs::read_dir(s3.data_dir()).unwrap().flatten();
    entries.filter(|e| e.file_name().to_string_lossy().starts_with(".upload")).map(|e| e.path()).collect()
}

#[test]
fn a_dropped_upload_hears_back_from_every_part_in_flight_before_it_aborts() {
    // S3 may store a part that is still in flight while its upload is aborted (the
    // AbortMultipartUpload documentation says so), and nothing would ever delete it.
    let s3 = S3Server::start();
    let proxy = FaultProxy::start(s3.port());
    let store = Store::new(&S3Settings { endpoint: proxy.endpoint(), ..settings(&s3, s3.secret_key()) }).unwrap();
    proxy.inject("partNumber=2", Fault::SlowAnswer, 1);
    let mut upload = store.upload("p/h/i/gone", None).unwrap();
    // Two whole parts go out; the rest stays in the writer's buffer.
    upload.write_all(&vec![7u8; 17 << 20]).unwrap();
    // Part 2 has reached the proxy, which forwards it and holds back its answer.
    for _ in 0..500 {
        if proxy.seen("partNumber=2") > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(proxy.seen("partNumber=2"), 1, "{:#?}", proxy.requests());
    drop(upload);

    let events = proxy.events();
    let part_answered = events.iter().position(|e| e.starts_with("< ") && e.contains("partNumber=2"));
    let abort_sent = events.iter().position(|e| e.starts_with("> DELETE ") && e.contains("uploadId="));
    assert!(matches!((part_answered, abort_sent), (Some(answer), Some(abort)) if answer < abort), "{events:#?}");
    assert!(upload_leftovers(&s3).is_empty(), "{:?}", upload_leftovers(&s3));
}

#[test]
fn many_small_gets_come_back_in_the_order_asked_each_with_its_own_result() {
    let s3 = S3Server::start();
    let store = Store::new(&settings(&s3, s3.secret_key())).unwrap();
    // More keys than fetched at once, one of them missing.
    let mut keys = Vec::new();
    for i in 0..(2 * terrarium_archive::s3::SMALL_GETS_AT_ONCE + 3) {
        let key = format!("p/h/i/m{i}.manifest.json");
        if i != 5 {
            store.put_bytes(&key, format!("manifest {i}").into_bytes()).unwrap();
        }
        keys.push(key);
    }
    let results = store.get_many(&keys);
    assert_eq!(results.len(), keys.len());
    for (i, result) in results.into_iter().enumerate() {
        match result {
            Ok(bytes) => assert_eq!(String::from_utf8(bytes).unwrap(), format!("manifest {i}")),
            Err(S3Error::NotFound { .. }) => assert_eq!(i, 5, "only m5 is missing"),
            Err(err) => panic!("m{i}: {err}"),
        }
    }
}

#[test]
fn a_sized_download_fetches_ranges_in_order_and_resumes_truncated_ones() {
    let s3 = S3Server::start();
    let direct = Store::new(&settings(&s3, s3.secret_key())).unwrap();
    // Five and a half 1 MiB ranges: the last one short.
    let data: Vec<u8> = (0..(11 << 19) + 777).map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect();
    direct.put_bytes("p/h/i/big", data.clone()).unwrap();

    let proxy = FaultProxy::start(s3.port());
    let tuning = Tuning {
        download_range: 1 << 20,
        download_window: 3,
        max_attempts: 3,
        initial_backoff: Duration::from_millis(10),
        ..Tuning::default()
    };
    let store =
        Store::new(&S3Settings { endpoint: proxy.endpoint(), tuning, ..settings(&s3, s3.secret_key()) }).unwrap();
    proxy.inject("big?x-id=GetObject", Fault::Truncate, 2);
    let mut back = Vec::new();
    let progressed = Cell::new(0u64);
    let fetched = store
        .download_sized("p/h/i/big", data.len() as u64, &mut back, &|n| progressed.set(progressed.get() + n))
        .unwrap();
    assert_eq!(fetched, data.len() as u64);
    assert_eq!(progressed.get(), data.len() as u64);
    assert!(back == data, "the ranges were not reassembled in order");
    assert_eq!(proxy.applied(Fault::Truncate), 2, "{:#?}", proxy.requests());
    // Six ranges, each truncated one fetched again from where it stopped.
    assert_eq!(proxy.seen("big?x-id=GetObject"), 6 + 2, "{:#?}", proxy.requests());

    // An object of another size than expected is not silently read short or long.
    let err = store.download_sized("p/h/i/big", data.len() as u64 + 1, &mut Vec::new(), &|_| {}).unwrap_err();
    assert!(err.to_string().contains(&format!("expected a {}-byte object", data.len() + 1)), "{err}");
}

/// Counts what it is given and, at each write, checks how many ranges were requested
/// against how far the writing got.
struct WindowWatch<'a> {
    proxy: &'a FaultProxy,
    range: u64,
    window: u64,
    written: u64,
    most_ahead: u64,
}

impl Write for WindowWatch<'_> {
    fn write(&mut self, chunk: &[u8]) -> std::io::Result<usize> {
        let done = self.written / self.range; // ranges written out whole
        let requested = self.proxy.seen("big?x-id=GetObject") as u64;
        let half = self.window / 2;
        // Never more than a window ahead, and refills come half a window at a time.
        assert!(requested <= self.window + done - done % half, "{requested} ranges requested with {done} written out");
        self.most_ahead = self.most_ahead.max(requested - done);
        self.written += chunk.len() as u64;
        // A slow writer, like `zfs receive`: the downloads get ahead of it.
        std::thread::sleep(Duration::from_millis(1));
        Ok(chunk.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_sized_download_stays_within_its_window_and_refills_it_half_at_a_time() {
    let s3 = S3Server::start();
    let direct = Store::new(&settings(&s3, s3.secret_key())).unwrap();
    let data = vec![7u8; 12 << 20];
    direct.put_bytes("p/h/i/big", data.clone()).unwrap();
    let proxy = FaultProxy::start(s3.port());
    let tuning = Tuning { download_range: 1 << 20, download_window: 4, ..Tuning::default() };
    let store =
        Store::new(&S3Settings { endpoint: proxy.endpoint(), tuning, ..settings(&s3, s3.secret_key()) }).unwrap();
    let mut watch = WindowWatch { proxy: &proxy, range: 1 << 20, window: 4, written: 0, most_ahead: 0 };
    store.download_sized("p/h/i/big", data.len() as u64, &mut watch, &|_| {}).unwrap();
    assert_eq!(watch.written, data.len() as u64);
    assert_eq!(watch.most_ahead, 4, "the window was never full: no range was fetched ahead of the writer");
    assert_eq!(proxy.seen("big?x-id=GetObject"), 12);
}
