//! The streaming pipelines: `zfs send` → zstd → S3, and S3 → zstd -d → `zfs receive`,
//! hashing (SHA-256) and counting the stored bytes on the way.

use std::io::{self, Read, Write};

use sha2::{Digest, Sha256};

use crate::manifest::Manifest;
use crate::s3::{S3Error, Store};
use crate::zfs::{Zfs, ZfsError};

const COPY_BUFFER: usize = 1024 * 1024;
/// Bytes of input per zstd worker job (see `compress_and_upload`).
const ZSTD_JOB_SIZE: u32 = 2 * 1024 * 1024;

/// A writer that hashes and counts what passes through it.
#[derive(Debug)]
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        Self { inner, hasher: Sha256::new(), bytes: 0 }
    }
    /// The inner writer, the lower-case hex SHA-256 and the byte count.
    pub fn into_parts(self) -> (W, String, u64) {
        (self.inner, hex::encode(self.hasher.finalize()), self.bytes)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(data)?;
        self.hasher.update(&data[..written]);
        self.bytes += written as u64;
        Ok(written)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// What an upload pipeline produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploaded {
    pub raw_bytes: u64,
    pub compressed_bytes: u64,
    pub sha256: String,
    pub parts: u32,
}

/// Why a pipeline failed.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    S3(#[from] S3Error),
    #[error(transparent)]
    Zfs(#[from] ZfsError),
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
    #[error("{key}: the downloaded stream's SHA-256 is {found}, its manifest says {expected}: the object is corrupt")]
    Checksum { key: String, expected: String, found: String },
    #[error("{0}")]
    Source(String),
}

/// Compress `source` with zstd (multithreaded, one frame with a content checksum) and
/// upload it as `key`. `before_complete` runs after the source is exhausted and before
/// the upload is completed: check there that the producer (`zfs send`) succeeded; an
/// error aborts the upload. `on_created` gets the upload id as soon as it exists (to
/// record it, so a killed run's upload can be aborted later). `progress` gets raw bytes.
#[allow(clippy::too_many_arguments)]
pub fn compress_and_upload(
    store: &Store,
    key: &str,
    mut source: impl Read,
    level: i32,
    size_hint: Option<u64>,
    progress: &dyn Fn(u64),
    on_created: &mut dyn FnMut(&str),
    before_complete: &mut dyn FnMut() -> Result<(), PipelineError>,
) -> Result<Uploaded, PipelineError> {
    let upload = store.upload(key, size_hint)?;
    on_created(upload.upload_id());
    let io_err = |what: &str| {
        let what = format!("{what} s3://{}/{key}", store.bucket());
        move |source| PipelineError::Io { what: what.clone(), source }
    };
    let mut encoder =
        zstd::stream::write::Encoder::new(HashingWriter::new(upload), level).map_err(io_err("starting zstd for"))?;
    encoder.include_checksum(true).map_err(io_err("configuring zstd for"))?;
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8) as u32;
    if workers > 1 {
        encoder.multithread(workers).map_err(io_err("starting zstd workers for"))?;
        // zstd's default job size at low levels is several window sizes per worker, which
        // alone took ~100 MiB here; 2 MiB jobs keep the whole export near 80 MiB (the
        // bench measures it) at no visible cost in ratio or speed.
        encoder
            .set_parameter(zstd::zstd_safe::CParameter::JobSize(ZSTD_JOB_SIZE))
            .map_err(io_err("configuring zstd jobs for"))?;
    }
    let mut buffer = vec![0u8; COPY_BUFFER];
    let mut raw_bytes = 0u64;
    loop {
        let read = match source.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => {
                return Err(PipelineError::Source(format!(
                    "reading the stream for s3://{}/{key}: {err}",
                    store.bucket()
                )));
            }
        };
        encoder.write_all(&buffer[..read]).map_err(io_err("uploading"))?;
        raw_bytes += read as u64;
        progress(read as u64);
    }
    before_complete()?;
    let hashing = encoder.finish().map_err(io_err("finishing the zstd frame of"))?;
    let (upload, sha256, compressed_bytes) = hashing.into_parts();
    let summary = upload.finish()?;
    Ok(Uploaded { raw_bytes, compressed_bytes, sha256, parts: summary.parts })
}

/// Download `manifest`'s stream, check its SHA-256, decompress it and feed it to
/// `zfs receive -F -u target`. The receive is killed (nothing half-received is kept by
/// ZFS) when the download or the checksum fails.
pub fn receive_stream(
    store: &Store,
    zfs: &Zfs,
    manifest: &Manifest,
    target: &str,
    progress: &dyn Fn(u64),
) -> Result<(), PipelineError> {
    let key = &manifest.object_key;
    let mut receive = zfs.receive_unmounted(target)?;
    let stdin = receive.take_stdin().ok_or_else(|| PipelineError::Source("zfs receive has no stdin".into()))?;
    let decoder = match zstd::stream::write::Decoder::new(stdin) {
        Ok(decoder) => decoder,
        Err(source) => {
            receive.kill();
            return Err(PipelineError::Io { what: "starting zstd -d".into(), source });
        }
    };
    let mut hashing = HashingWriter::new(decoder);
    let downloaded = store.download_sized(key, manifest.compressed_bytes, &mut hashing, progress);
    let (mut decoder, sha256, _) = hashing.into_parts();
    let flushed = decoder.flush();
    drop(decoder);
    match downloaded {
        Err(S3Error::Sink { .. }) => {
            // zfs receive stopped reading: its own error says why.
            receive.finish().map_err(ZfsError::from)?;
            return Err(PipelineError::Source(format!("zfs receive of {key} stopped reading its input")));
        }
        Err(err) => {
            receive.kill();
            return Err(err.into());
        }
        Ok(_) => {}
    }
    if sha256 != manifest.sha256 {
        receive.kill();
        return Err(PipelineError::Checksum { key: key.clone(), expected: manifest.sha256.clone(), found: sha256 });
    }
    if let Err(source) = flushed {
        // zfs receive stopped reading: its own error says why.
        receive.finish().map_err(ZfsError::from)?;
        return Err(PipelineError::Io { what: format!("decompressing {key} into zfs receive"), source });
    }
    receive.finish().map_err(ZfsError::from)?;
    Ok(())
}
