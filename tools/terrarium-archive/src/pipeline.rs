//! The streaming pipelines: `zfs send` → zstd → S3, and S3 → zstd -d → `zfs receive`,
//! hashing (SHA-256) and counting the stored bytes on the way.

use std::io::{self, Read, Write};

use sha2::{Digest, Sha256};

use crate::manifest::Manifest;
use crate::s3::{PartJournal, Resume, S3Error, Store};
use crate::seal::{Identities, OpenError, OpenWriter, Recipients, Sealer};
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
    /// Bytes of the stored object (encrypted, when it is).
    pub compressed_bytes: u64,
    /// SHA-256 of the stored object.
    pub sha256: String,
    /// SHA-256 of the zstd frame before encryption; `None` for a plain stream.
    pub plaintext_sha256: Option<String>,
    pub parts: u32,
    /// Parts (and their bytes) an interrupted export had stored, kept instead of sent.
    pub resumed_parts: u32,
    pub resumed_bytes: u64,
    /// The upload's transfer time ([`crate::s3::UploadSummary::transfer`]).
    pub transfer: std::time::Duration,
}

/// One stream to upload, and how.
pub struct Upload<'a> {
    pub key: &'a str,
    pub level: i32,
    /// Encrypt to these (see [`crate::seal`]); `None`: a plain zstd frame.
    pub recipients: Option<&'a Recipients>,
    /// The expected stream size, which sizes the parts.
    pub size_hint: Option<u64>,
    /// The interrupted upload of this same stream to go on with (see [`crate::resume`]).
    pub resume: Option<Resume>,
    /// Told of every part the server stored (the resume journal).
    pub journal: Option<PartJournal>,
}

impl std::fmt::Debug for Upload<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upload").field("key", &self.key).field("resume", &self.resume).finish_non_exhaustive()
    }
}

/// A stream's bytes going to `W` as they are, or through age (`S`: encrypting on the way
/// out, decrypting on the way in).
enum Layer<W, S> {
    Plain(W),
    Sealed(S),
}

/// Where zstd's output goes: to the upload (which hashes what it stores), through age
/// first when the stream is encrypted.
type Outlet<W> = Layer<W, Sealer<W>>;
/// Where a download goes: to the decoder, through age first when the stream is encrypted.
type Inlet<W> = Layer<W, OpenWriter<W>>;

impl<W: Write, S: Write> Write for Layer<W, S> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(writer) => writer.write(data),
            Self::Sealed(writer) => writer.write(data),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(writer) => writer.flush(),
            Self::Sealed(writer) => writer.flush(),
        }
    }
}

impl<W: Write> Layer<W, Sealer<W>> {
    /// The upload, and the plaintext's SHA-256 when encrypted.
    fn finish(self) -> io::Result<(W, Option<String>)> {
        match self {
            Self::Plain(upload) => Ok((upload, None)),
            Self::Sealed(sealer) => sealer.finish().map(|(upload, plaintext)| (upload, Some(plaintext))),
        }
    }
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
    #[error(
        "{key} is encrypted (to {recipients}); pass --identity FILE with the private key of one of those recipients, or set s3.encryption.identity_file"
    )]
    NoIdentity { key: String, recipients: String },
}

/// Compress `source` with zstd (multithreaded, one frame with a content checksum) and
/// upload it as `upload` says (encrypted, resumed). `before_complete` runs after the source is exhausted and before
/// the upload is completed: check there that the producer (`zfs send`) succeeded; an
/// error aborts the upload. `on_created` gets the upload id as soon as it exists (to
/// record it, so a killed run's upload can be aborted later). `progress` gets raw bytes.
#[allow(clippy::too_many_arguments)]
pub fn compress_and_upload(
    store: &Store,
    upload: Upload<'_>,
    mut source: impl Read,
    progress: &dyn Fn(u64),
    on_created: &mut dyn FnMut(&str),
    before_complete: &mut dyn FnMut() -> Result<(), PipelineError>,
) -> Result<Uploaded, PipelineError> {
    let Upload { key, level, recipients, size_hint, resume, journal } = upload;
    let mut upload = match resume {
        Some(resume) => store.resume_upload(key, resume),
        None => {
            let upload = store.upload(key, size_hint)?;
            on_created(upload.upload_id());
            upload
        }
    };
    if let Some(journal) = journal {
        upload.set_journal(journal);
    }
    let io_err = |what: &str| {
        let what = format!("{what} s3://{}/{key}", store.bucket());
        move |source| PipelineError::Io { what: what.clone(), source }
    };
    let outlet = match recipients {
        None => Outlet::Plain(upload),
        Some(recipients) => Outlet::Sealed(
            recipients
                .seal(upload)
                .map_err(|e| PipelineError::Source(format!("encrypting s3://{}/{key}: {e}", store.bucket())))?,
        ),
    };
    let mut encoder = zstd::stream::write::Encoder::new(outlet, level).map_err(io_err("starting zstd for"))?;
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
    let outlet = encoder.finish().map_err(io_err("finishing the zstd frame of"))?;
    let (upload, plaintext_sha256) = outlet.finish().map_err(io_err("finishing the encryption of"))?;
    let summary = upload.finish()?;
    Ok(Uploaded {
        raw_bytes,
        compressed_bytes: summary.bytes,
        sha256: summary.sha256,
        plaintext_sha256,
        parts: summary.parts,
        resumed_parts: summary.resumed_parts,
        resumed_bytes: summary.resumed_bytes,
        transfer: summary.transfer,
    })
}

impl<W: Write> Layer<W, OpenWriter<W>> {
    /// The decoder, and the plaintext's SHA-256 when the stream was encrypted.
    fn finish(self) -> Result<(W, Option<String>), OpenError> {
        match self {
            Self::Plain(writer) => Ok((writer, None)),
            Self::Sealed(writer) => writer.finish().map(|(inner, sha)| (inner, Some(sha))),
        }
    }
}

/// The error for an encrypted stream and no identity to open it, before anything runs.
pub fn identity_needed(manifest: &Manifest) -> Option<PipelineError> {
    let encryption = manifest.encryption.as_ref()?;
    Some(PipelineError::NoIdentity { key: manifest.object_key.clone(), recipients: encryption.recipients.join(", ") })
}

/// Download `manifest`'s stream, check its SHA-256, decrypt it (with `identities`, when
/// it is encrypted), decompress it and feed it to `zfs receive -F -u target`. The
/// receive is killed (nothing half-received is kept by ZFS) when the download, the
/// checksum or the decryption fails.
pub fn receive_stream(
    store: &Store,
    zfs: &Zfs,
    manifest: &Manifest,
    target: &str,
    identities: Option<&Identities>,
    progress: &dyn Fn(u64),
) -> Result<(), PipelineError> {
    let key = &manifest.object_key;
    let identities = match (&manifest.encryption, identities) {
        (None, _) => None,
        (Some(_), Some(identities)) => Some(identities),
        (Some(_), None) => return Err(identity_needed(manifest).unwrap_or(PipelineError::Source(key.clone()))),
    };
    let mut receive = zfs.receive_unmounted(target)?;
    let stdin = receive.take_stdin().ok_or_else(|| PipelineError::Source("zfs receive has no stdin".into()))?;
    let decoder = match zstd::stream::write::Decoder::new(stdin) {
        Ok(decoder) => decoder,
        Err(source) => {
            receive.kill();
            return Err(PipelineError::Io { what: "starting zstd -d".into(), source });
        }
    };
    let inlet = match identities {
        Some(identities) => Inlet::Sealed(identities.open(decoder)),
        None => Inlet::Plain(decoder),
    };
    let mut hashing = HashingWriter::new(inlet);
    let downloaded = store.download_sized(key, manifest.compressed_bytes, &mut hashing, progress);
    let (inlet, sha256, _) = hashing.into_parts();
    let opened = inlet.finish();
    if let Err(err) = downloaded {
        if !matches!(err, S3Error::Sink { .. }) {
            receive.kill();
            return Err(err.into());
        }
        if matches!(opened, Err(OpenError::NoMatchingKey { .. } | OpenError::Decrypt(_))) {
            receive.kill();
            return Err(opened.err().map_or(PipelineError::Source(key.clone()), |e| open_error(key, e)));
        }
        // zfs receive stopped reading: its own error says why, once its input is closed.
        drop(opened);
        receive.finish().map_err(ZfsError::from)?;
        return Err(PipelineError::Source(format!("zfs receive of {key} stopped reading its input")));
    }
    if sha256 != manifest.sha256 {
        receive.kill();
        return Err(PipelineError::Checksum { key: key.clone(), expected: manifest.sha256.clone(), found: sha256 });
    }
    let mut decoder = match opened {
        Ok((decoder, plaintext)) => {
            let expected = manifest.encryption.as_ref().map(|e| &e.plaintext_sha256);
            if let (Some(found), Some(expected)) = (plaintext, expected)
                && &found != expected
            {
                receive.kill();
                return Err(PipelineError::Checksum {
                    key: format!("{key} (decrypted)"),
                    expected: expected.clone(),
                    found,
                });
            }
            decoder
        }
        Err(OpenError::Sink(source)) => {
            receive.finish().map_err(ZfsError::from)?;
            return Err(PipelineError::Io { what: format!("decompressing {key} into zfs receive"), source });
        }
        Err(err) => {
            receive.kill();
            return Err(open_error(key, err));
        }
    };
    let flushed = decoder.flush();
    drop(decoder);
    if let Err(source) = flushed {
        // zfs receive stopped reading: its own error says why.
        receive.finish().map_err(ZfsError::from)?;
        return Err(PipelineError::Io { what: format!("decompressing {key} into zfs receive"), source });
    }
    receive.finish().map_err(ZfsError::from)?;
    Ok(())
}

fn open_error(key: &str, err: OpenError) -> PipelineError {
    PipelineError::Source(format!("{key}: {err}"))
}
