//! Rebuilding a dataset from its S3 chain: for each object, oldest first,
//! download → sha256 → zstd decode → `zfs receive -F` into the staging dataset.
//!
//! The ranged GETs run in parallel on the S3 client's runtime; their bytes arrive here
//! in order, as the HTTP client hands them over, and each chunk is hashed and decoded
//! in place into the pipe buffer of `zfs receive` (no copy of the compressed stream, no
//! hand-over between threads: on a small machine the S3 server and ZFS need the cores
//! more than this tool). Memory is bounded by the downloads in flight (see
//! `Store::download_sized`) and one pipe buffer, whatever the stream's size.
//!
//! A corrupt object usually breaks zstd or `zfs receive` before its end; the download
//! is still read to the end so the error names the real cause (the checksum of that
//! object) rather than a decoder symptom. An encrypted object goes through age first
//! (on a thread, see `terrarium_archive::seal`); an identity that matches none of its
//! recipients stops the download at once, since no byte of it can be used.

use std::io::{self, Write};
use std::process::ChildStdin;

use anyhow::Context as _;
use sha2::{Digest, Sha256};
use terrarium_archive::s3::Store;
use terrarium_archive::seal::{Identities, OpenError, OpenWriter};
use terrarium_archive::zfs::Zfs;
use zstd::stream::raw::{self, InBuffer, Operation, OutBuffer};

use crate::error::RestoreError;
use crate::plan::ChainObject;

/// The pipe to `zfs receive` is written in blocks of this size (zfs-fuse spends less
/// per byte on few large writes than on many small ones).
const PIPE_BUFFER: usize = 1 << 20;

/// zstd decoding straight into a [`PIPE_BUFFER`] that is written to the pipe when full.
struct PipeDecoder<W: Write> {
    decoder: raw::Decoder<'static>,
    out: Vec<u8>,
    pipe: W,
    /// zstd's hint after the last call that made progress: 0 when a frame ended and all
    /// of it was output.
    hint: usize,
}

impl<W: Write> PipeDecoder<W> {
    fn new(pipe: W) -> io::Result<Self> {
        Ok(Self { decoder: raw::Decoder::new()?, out: Vec::with_capacity(PIPE_BUFFER), pipe, hint: 0 })
    }

    fn decode(&mut self, input: &[u8]) -> io::Result<()> {
        let mut src = InBuffer::around(input);
        while src.pos() < input.len() {
            self.step(&mut src)?;
        }
        Ok(())
    }

    /// Output what zstd still holds, close the pipe, and refuse a stream cut in a frame.
    fn finish(mut self) -> io::Result<()> {
        loop {
            self.step(&mut InBuffer::around(&[]))?;
            // zstd had no more to give when it left room in the buffer.
            if self.out.len() < self.out.capacity() {
                break;
            }
        }
        self.pipe.write_all(&self.out)?;
        if self.hint != 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the zstd stream ends in the middle of a frame"));
        }
        Ok(())
    }

    /// One decoding call into the free part of the buffer, emptied first when full.
    fn step(&mut self, src: &mut InBuffer<'_>) -> io::Result<()> {
        if self.out.len() == self.out.capacity() {
            self.pipe.write_all(&self.out)?;
            self.out.clear();
        }
        let (filled, read) = (self.out.len(), src.pos());
        let hint = self.decoder.run(src, &mut OutBuffer::around_pos(&mut self.out, filled))?;
        // A call that neither read nor wrote says nothing of the frame (after a frame's
        // end, zstd hints at the header of a next one).
        if src.pos() > read || self.out.len() > filled {
            self.hint = hint;
        }
        Ok(())
    }
}

/// The decrypting thread writes the plaintext into the decoder.
impl<W: Write> Write for PipeDecoder<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.decode(data)?;
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Where the hashed bytes go: the decoder, through age first for an encrypted object.
enum Decoding {
    Plain(PipeDecoder<ChildStdin>),
    Sealed(OpenWriter<PipeDecoder<ChildStdin>>),
}

/// Why the decoding stopped.
#[derive(Debug)]
enum SinkFailure {
    /// zstd or the pipe to `zfs receive`.
    Decode(io::Error),
    /// age: no matching key, or bytes that do not decrypt.
    Open(OpenError),
}

impl From<OpenError> for SinkFailure {
    fn from(err: OpenError) -> Self {
        match err {
            OpenError::Sink(err) => Self::Decode(err),
            other => Self::Open(other),
        }
    }
}

/// Where the downloaded bytes go: hashed, then decoded while the decoder accepts them.
struct ReceiveSink {
    hasher: Sha256,
    decoding: Option<Decoding>,
    /// Why the decoder stopped; the rest of the object is still hashed, to tell a
    /// corrupt object from a failing `zfs receive`.
    failed: Option<SinkFailure>,
}

impl Write for ReceiveSink {
    fn write(&mut self, chunk: &[u8]) -> io::Result<usize> {
        self.hasher.update(chunk);
        let written = match &mut self.decoding {
            Some(Decoding::Plain(decoder)) => decoder.decode(chunk).map_err(SinkFailure::Decode),
            Some(Decoding::Sealed(writer)) => writer.write_all(chunk).map_err(SinkFailure::Decode),
            None => Ok(()),
        };
        // On a failure the decoder goes (closing the pipe); a decrypting thread that
        // stopped says why in its result.
        let failed = written.err().map(|failure| match self.decoding.take() {
            Some(Decoding::Sealed(writer)) => writer.finish().err().map_or(failure, SinkFailure::from),
            _ => failure,
        });
        if let Some(failure) = failed {
            let wrong_key = matches!(failure, SinkFailure::Open(OpenError::NoMatchingKey { .. }));
            self.failed = Some(failure);
            if wrong_key {
                return Err(io::Error::other("no identity matches the stream's recipients"));
            }
        }
        Ok(chunk.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl ReceiveSink {
    /// The end of the stream: the decoder's first error, or the rest of its output and
    /// the plaintext's SHA-256 (for an encrypted object).
    fn finish(self) -> Result<Option<String>, SinkFailure> {
        match (self.failed, self.decoding) {
            (Some(failure), _) => Err(failure),
            (None, Some(Decoding::Plain(decoder))) => decoder.finish().map(|()| None).map_err(SinkFailure::Decode),
            (None, Some(Decoding::Sealed(writer))) => {
                let (decoder, plaintext) = writer.finish()?;
                decoder.finish().map_err(SinkFailure::Decode)?;
                Ok(Some(plaintext))
            }
            (None, None) => Ok(None),
        }
    }

    /// A wrong key stops the download early; nothing else is known before its end.
    fn wrong_key(&self) -> Option<&OpenError> {
        match &self.failed {
            Some(SinkFailure::Open(err @ OpenError::NoMatchingKey { .. })) => Some(err),
            _ => None,
        }
    }
}

/// Receive one object into `staging` and check its sha256 against the manifest's;
/// an encrypted object is opened with `identities` (the caller checked it has them).
pub fn receive_object(
    zfs: &Zfs,
    store: &Store,
    staging: &str,
    object: &ChainObject,
    identities: Option<&Identities>,
    instance: &str,
    progress: &dyn Fn(u64),
) -> anyhow::Result<()> {
    let identities = match (&object.encryption, identities) {
        (None, _) => None,
        (Some(_), Some(identities)) => Some(identities),
        (Some(_), None) => anyhow::bail!("{} is encrypted and no identity was given", object.key),
    };
    let mut receive = zfs.receive(staging, true).with_context(|| format!("start `zfs receive -F {staging}`"))?;
    let stdin = receive.take_stdin().context("zfs receive has no stdin")?;
    let decoder = match PipeDecoder::new(stdin) {
        Ok(decoder) => decoder,
        Err(err) => {
            receive.kill();
            return Err(anyhow::Error::new(err).context("start the zstd decoder"));
        }
    };
    let decoding = match identities {
        Some(identities) => Decoding::Sealed(identities.open(decoder)),
        None => Decoding::Plain(decoder),
    };
    let mut sink = ReceiveSink { hasher: Sha256::new(), decoding: Some(decoding), failed: None };
    let downloaded = store.download_sized(&object.key, object.compressed_bytes, &mut sink, progress);
    if let Some(err) = sink.wrong_key() {
        receive.kill();
        return Err(RestoreError::Usage(format!("{}: {err}; nothing was received", object.key)).into());
    }
    let actual = hex::encode(std::mem::take(&mut sink.hasher).finalize());
    // A bad download or checksum: `zfs receive` is stopped before it sees the end of
    // its input, so nothing of the object is kept.
    if downloaded.is_ok() && actual != object.sha256 {
        receive.kill();
        return Err(RestoreError::Checksum {
            key: object.key.clone(),
            expected: object.sha256.clone(),
            actual,
            instance: instance.to_string(),
        }
        .into());
    }
    if let Err(err) = downloaded {
        receive.kill();
        return Err(anyhow::Error::new(err).context(format!("download {}", object.key)));
    }
    let decoded = sink.finish();
    let expected_plaintext = object.encryption.as_ref().map(|e| &e.plaintext_sha256);
    match &decoded {
        Err(SinkFailure::Open(err)) => {
            receive.kill();
            return Err(anyhow::anyhow!("{}: {err}", object.key));
        }
        Ok(Some(plaintext)) if Some(plaintext) != expected_plaintext => {
            receive.kill();
            return Err(RestoreError::Checksum {
                key: format!("{} (decrypted)", object.key),
                expected: expected_plaintext.cloned().unwrap_or_default(),
                actual: plaintext.clone(),
                instance: instance.to_string(),
            }
            .into());
        }
        _ => {}
    }
    let received = receive.finish();
    if let Err(SinkFailure::Decode(err)) = decoded {
        // A broken pipe means `zfs receive` gave up first: its own error says why.
        if err.kind() != io::ErrorKind::BrokenPipe || received.is_ok() {
            return Err(anyhow::Error::new(err).context(format!("decompress {} (zstd)", object.key)));
        }
    }
    received.with_context(|| format!("receive {} into {staging}", object.key))?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
