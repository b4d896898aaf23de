//! Rebuilding a dataset from its S3 chain: for each object, oldest first,
//! download → sha256 → zstd decode → `zfs receive -F` into the staging dataset.
//!
//! Three stages run at once in bounded memory: the download (ranged GETs in parallel on
//! the S3 client's runtime, written in order on this thread) hashes each chunk and hands it over a bounded channel to a decoder
//! thread, which writes the decoded stream into `zfs receive`'s stdin. At most
//! [`CHANNEL_CHUNKS`] chunks wait between them, whatever the stream's size.
//!
//! A corrupt object usually breaks zstd or `zfs receive` before its end; the download
//! is still read to the end so the error names the real cause (the checksum of that
//! object) rather than a decoder symptom.

use std::io::{self, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use anyhow::Context as _;
use sha2::{Digest, Sha256};
use terrarium_backup::s3::Store;
use terrarium_backup::zfs::Zfs;
use zstd::stream::{raw, zio};

use crate::error::RestoreError;
use crate::plan::ChainObject;

/// Chunks in flight between the download and the decoder (chunks are at most 1 MiB:
/// see `Store::download_sized`).
pub const CHANNEL_CHUNKS: usize = 8;
/// The pipe to `zfs receive` is written in blocks of this size.
const PIPE_BUFFER: usize = 1 << 20;

/// Where the downloaded bytes go: hashed, counted and passed to the decoder thread
/// while it still accepts them. The decoder hands each buffer back once decoded, so the
/// same few buffers carry the whole stream (fresh ones would each cost page faults).
struct HashingSink {
    hasher: Sha256,
    bytes: u64,
    to_decoder: Option<SyncSender<Vec<u8>>>,
    returned: Receiver<Vec<u8>>,
}

impl Write for HashingSink {
    fn write(&mut self, chunk: &[u8]) -> io::Result<usize> {
        self.hasher.update(chunk);
        self.bytes += chunk.len() as u64;
        if let Some(sender) = &self.to_decoder {
            let mut buffer = self.returned.try_recv().unwrap_or_default();
            buffer.clear();
            buffer.extend_from_slice(chunk);
            // When the decoder stopped (its error is reported after the download), keep
            // hashing to tell a corrupt object from a failing `zfs receive`.
            if sender.send(buffer).is_err() {
                self.to_decoder = None;
            }
        }
        Ok(chunk.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Decode the chunks into `zfs receive`'s stdin. zstd decodes straight into a buffer of
/// [`PIPE_BUFFER`] bytes that is written to the pipe as it is (no second copy).
fn spawn_decoder(chunks: Receiver<Vec<u8>>, give_back: SyncSender<Vec<u8>>, stdin: std::process::ChildStdin) -> JoinHandle<io::Result<()>> {
    std::thread::spawn(move || {
        let mut decoder = zio::Writer::with_output_buffer(Vec::with_capacity(PIPE_BUFFER), stdin, raw::Decoder::new()?);
        for chunk in chunks {
            decoder.write_all(&chunk)?;
            // A full return channel only means the sink has spares enough.
            let _ = give_back.try_send(chunk);
        }
        decoder.flush()?;
        // Dropping the pipe closes `zfs receive`'s stdin: end of stream.
        Ok(())
    })
}

/// Receive one object into `staging` and check its sha256 against the manifest's.
pub fn receive_object(zfs: &Zfs, store: &Store, staging: &str, object: &ChainObject, instance: &str, progress: &dyn Fn(u64)) -> anyhow::Result<()> {
    let mut receive = zfs.receive(staging, true).with_context(|| format!("start `zfs receive -F {staging}`"))?;
    let stdin = receive.take_stdin().context("zfs receive has no stdin")?;
    let (sender, chunks) = sync_channel(CHANNEL_CHUNKS);
    let (give_back, returned) = sync_channel(CHANNEL_CHUNKS + 2);
    let decoder = spawn_decoder(chunks, give_back, stdin);
    let mut sink = HashingSink { hasher: Sha256::new(), bytes: 0, to_decoder: Some(sender), returned };
    let downloaded = store.download_sized(&object.key, object.compressed_bytes, &mut sink, progress);
    drop(sink.to_decoder.take());
    let decoded = decoder.join().unwrap_or_else(|_| Err(io::Error::other("the decoder thread panicked")));
    let actual = hex::encode(sink.hasher.finalize());
    if downloaded.is_ok() && actual != object.sha256 {
        receive.kill();
        return Err(RestoreError::Checksum { key: object.key.clone(), expected: object.sha256.clone(), actual, instance: instance.to_string() }.into());
    }
    if let Err(err) = downloaded {
        receive.kill();
        return Err(anyhow::Error::new(err).context(format!("download {}", object.key)));
    }
    let received = receive.finish();
    if let Err(err) = decoded {
        // A broken pipe means `zfs receive` gave up first: its own error says why.
        if err.kind() != io::ErrorKind::BrokenPipe || received.is_ok() {
            return Err(anyhow::Error::new(err).context(format!("decompress {} (zstd)", object.key)));
        }
    }
    received.with_context(|| format!("receive {} into {staging}", object.key))?;
    Ok(())
}
