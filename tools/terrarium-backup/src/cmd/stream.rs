//! `terrarium-backup stream --key KEY`: upload stdin through the export pipeline. Hidden;
//! the benchmarks use it to push a synthetic stream of any size through the same code.

use serde::Serialize;
use terrarium_common::Exit;
use terrarium_common::output::{byte_progress, print_json};

use crate::context::Context;
use terrarium_archive::pipeline::{Upload, compress_and_upload};

#[derive(Debug, Serialize)]
struct Report {
    key: String,
    raw_bytes: u64,
    compressed_bytes: u64,
    sha256: String,
    encrypted: bool,
    parts: u32,
    seconds: f64,
    /// From the upload's start to its last part stored (what `--bwlimit` paces).
    transfer_seconds: f64,
}

pub fn run(ctx: &Context, key: &str, size_hint: Option<u64>, bwlimit: Option<u64>) -> anyhow::Result<Exit> {
    let (mut store, _) = ctx.store()?;
    if bwlimit.is_some() {
        store.set_bwlimit(bwlimit);
    }
    // Encrypted as exports are (s3.encryption.recipients), so the bench measures both.
    let recipients = ctx.recipients()?;
    let bar = byte_progress(size_hint, key);
    let started = std::time::Instant::now();
    let stdin = std::io::stdin().lock();
    let upload = Upload {
        key,
        level: ctx.config.backup.zstd_level,
        recipients: recipients.as_ref(),
        size_hint,
        resume: None,
        journal: None,
    };
    let uploaded = compress_and_upload(&store, upload, stdin, &|n| bar.inc(n), &mut |_| {}, &mut || Ok(()))?;
    bar.finish_and_clear();
    let report = Report {
        key: key.to_string(),
        raw_bytes: uploaded.raw_bytes,
        compressed_bytes: uploaded.compressed_bytes,
        sha256: uploaded.sha256,
        encrypted: uploaded.plaintext_sha256.is_some(),
        parts: uploaded.parts,
        seconds: started.elapsed().as_secs_f64(),
        transfer_seconds: uploaded.transfer.as_secs_f64(),
    };
    if ctx.json {
        print_json(&report)?;
    } else {
        println!(
            "{} raw={} compressed={} parts={} seconds={:.2}",
            report.key, report.raw_bytes, report.compressed_bytes, report.parts, report.seconds
        );
    }
    Ok(Exit::Success)
}
