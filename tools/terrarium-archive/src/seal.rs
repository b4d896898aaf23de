//! Client-side encryption of exported streams, in the age format (age-encryption.org/v1).
//!
//! An export needs only the recipients' public keys (`s3.encryption.recipients`: age
//! `age1...` or OpenSSH `ssh-ed25519`/`ssh-rsa` lines); the private identity is needed
//! only to read a stream back (restore, `verify --deep`), so it never has to live on the
//! host that exports. The stored object is `age -r ... < zstd-frame`: the `age` CLI
//! decrypts it (docs/backup.md, "Restoring by hand").
//!
//! Streams are encrypted on the way out by [`Sealer`] (a writer between zstd and the
//! upload) and decrypted on the way in by [`OpenWriter`], a writer too, because the
//! download pushes its bytes: age only offers a reader, so the decryption runs on a
//! thread that reads what the download pushed.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use base64::Engine as _;
use sha2::{Digest, Sha256};

/// The scheme a manifest names (`encryption.scheme`).
pub const SCHEME: &str = "age";
/// How much of a download may wait for the decrypting thread (chunks of the HTTP body).
const CHANNEL_CHUNKS: usize = 16;
/// The decrypting thread reads and decodes in blocks of this size.
const OPEN_BUFFER: usize = 1 << 20;

/// Why keys could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error(
        "s3.encryption.recipients: `{0}` is not an age recipient (age1...) or an OpenSSH public key (ssh-ed25519 or ssh-rsa): {1}; paste the output of `age-keygen -y KEYFILE` or the line of an id_ed25519.pub"
    )]
    Recipient(String, String),
    #[error("s3.encryption.recipients is empty: name at least one public key (exports are plain without any)")]
    NoRecipients,
    #[error("identity file {path}: {problem}")]
    Identity { path: PathBuf, problem: String },
    #[error("{0}")]
    Encrypt(String),
}

impl SealError {
    /// A key or a file the operator named is wrong (exit 2), not a failure on the way.
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, Self::Encrypt(_))
    }
}

/// The parsed recipients of the config, and their fingerprints (what manifests record).
pub struct Recipients {
    keys: Vec<Box<dyn age::Recipient + Send>>,
    fingerprints: Vec<String>,
}

impl std::fmt::Debug for Recipients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recipients").field("fingerprints", &self.fingerprints).finish()
    }
}

impl Recipients {
    /// Parse the config's recipient lines (each an age or OpenSSH public key).
    ///
    /// age 0.13 marks X25519 and SSH recipients deprecated in favour of its post-quantum
    /// hybrid ones, which the age CLI in Debian and Ubuntu (1.1) cannot decrypt; a backup
    /// must open with the tools an operator has on the day, so these stay.
    #[allow(deprecated)]
    pub fn parse(lines: &[String]) -> Result<Self, SealError> {
        if lines.is_empty() {
            return Err(SealError::NoRecipients);
        }
        let mut keys: Vec<Box<dyn age::Recipient + Send>> = Vec::new();
        let mut fingerprints = Vec::new();
        for line in lines {
            let line = line.trim();
            let shown = terrarium_common::terminal::escape(&line.chars().take(80).collect::<String>()).into_owned();
            if line.starts_with("age1") {
                let key = age::x25519::Recipient::from_str(line)
                    .map_err(|e| SealError::Recipient(shown.clone(), e.to_string()))?;
                keys.push(Box::new(key));
            } else {
                let key = age::ssh::Recipient::from_str(line)
                    .map_err(|e| SealError::Recipient(shown.clone(), describe_ssh_error(&e)))?;
                keys.push(Box::new(key));
            }
            fingerprints.push(fingerprint(line).ok_or_else(|| SealError::Recipient(shown, "no key".into()))?);
        }
        fingerprints.sort();
        fingerprints.dedup();
        Ok(Self { keys, fingerprints })
    }

    /// Sorted, one per distinct key.
    pub fn fingerprints(&self) -> &[String] {
        &self.fingerprints
    }

    /// A writer that encrypts to every recipient into `out`.
    pub fn seal<W: Write>(&self, out: W) -> Result<Sealer<W>, SealError> {
        let encryptor = age::Encryptor::with_recipients(self.keys.iter().map(|k| k.as_ref() as &dyn age::Recipient))
            .map_err(|e| SealError::Encrypt(format!("encrypting to s3.encryption.recipients: {e}")))?;
        let writer =
            encryptor.wrap_output(out).map_err(|e| SealError::Encrypt(format!("writing the age header: {e}")))?;
        Ok(Sealer { writer, plaintext: Sha256::new() })
    }
}

fn describe_ssh_error(err: &age::ssh::ParseRecipientKeyError) -> String {
    use age::ssh::ParseRecipientKeyError as E;
    match err {
        E::Ignore => "a key type age does not use".into(),
        E::Invalid(why) => (*why).to_string(),
        E::RsaModulusTooLarge => "the RSA key is larger than age supports".into(),
        E::RsaModulusTooSmall => "the RSA key is weaker than 2048 bits".into(),
        E::Unsupported(kind) => format!("{kind} keys are not supported"),
        _ => "not a public key age can use".into(),
    }
}

/// How a recipient is named in a manifest, without the key itself:
/// - an OpenSSH key: `SHA256:...`, what `ssh-keygen -l -f key.pub` prints;
/// - an age key: `age:` and the hex SHA-256 of the `age1...` string
///   (`printf %s age1... | sha256sum`).
pub fn fingerprint(recipient: &str) -> Option<String> {
    let recipient = recipient.trim();
    if recipient.starts_with("age1") {
        return Some(format!("age:{}", hex::encode(Sha256::digest(recipient.as_bytes()))));
    }
    let blob = recipient.split_whitespace().nth(1)?;
    let blob = base64::engine::general_purpose::STANDARD.decode(blob).ok()?;
    Some(format!("SHA256:{}", base64::engine::general_purpose::STANDARD_NO_PAD.encode(Sha256::digest(&blob))))
}

/// The writer between zstd and the upload: encrypts, and hashes the plaintext (the
/// zstd frame, what `age -d` prints) for the manifest.
pub struct Sealer<W: Write> {
    writer: age::stream::StreamWriter<W>,
    plaintext: Sha256,
}

impl<W: Write> std::fmt::Debug for Sealer<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer")
    }
}

impl<W: Write> Write for Sealer<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let written = self.writer.write(data)?;
        self.plaintext.update(&data[..written]);
        Ok(written)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }
}

impl<W: Write> Sealer<W> {
    /// Write the last chunk; the inner writer and the plaintext's hex SHA-256.
    pub fn finish(self) -> io::Result<(W, String)> {
        let inner = self.writer.finish()?;
        Ok((inner, hex::encode(self.plaintext.finalize())))
    }
}

/// The private keys that open encrypted streams (from `--identity FILE` or
/// `s3.encryption.identity_file`): an age identity file (`age-keygen` output) or an
/// unencrypted OpenSSH private key.
#[derive(Clone)]
pub struct Identities {
    keys: Arc<Vec<Box<dyn age::Identity + Send + Sync>>>,
    path: PathBuf,
}

impl std::fmt::Debug for Identities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identities").field("path", &self.path).finish_non_exhaustive()
    }
}

impl Identities {
    pub fn load(path: &Path) -> Result<Self, SealError> {
        let problem = |problem: String| SealError::Identity { path: path.to_path_buf(), problem };
        let text = std::fs::read(path).map_err(|e| problem(format!("cannot read it: {e}")))?;
        let keys: Vec<Box<dyn age::Identity + Send + Sync>> = if text.starts_with(b"-----BEGIN") {
            let name = Some(path.display().to_string());
            match age::ssh::Identity::from_buffer(&text[..], name).map_err(|e| problem(e.to_string()))? {
                key @ age::ssh::Identity::Unencrypted(_) => vec![Box::new(key)],
                age::ssh::Identity::Encrypted(_) => {
                    return Err(problem(
                        "the SSH key is passphrase-protected, and restores run unattended; decrypt a copy with `ssh-keygen -p -N '' -f COPY` and pass that"
                            .into(),
                    ));
                }
                age::ssh::Identity::Unsupported(_) => {
                    return Err(problem("an SSH key type age cannot decrypt with (use ed25519 or RSA)".into()));
                }
            }
        } else {
            age::IdentityFile::from_buffer(&text[..])
                .and_then(|file| file.into_identities().map_err(io::Error::other))
                .map_err(|e| {
                    problem(format!("{e} (an age identity file, from `age-keygen`, or an OpenSSH private key)"))
                })?
        };
        if keys.is_empty() {
            return Err(problem(
                "holds no key (an age identity file, from `age-keygen`, or an OpenSSH private key)".into(),
            ));
        }
        Ok(Self { keys: Arc::new(keys), path: path.to_path_buf() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A writer that decrypts what is written to it into `inner` (on a thread).
    pub fn open<W: Write + Send + 'static>(&self, inner: W) -> OpenWriter<W> {
        let (tx, rx) = sync_channel::<Vec<u8>>(CHANNEL_CHUNKS);
        let keys = Arc::clone(&self.keys);
        let path = self.path.clone();
        let handle = std::thread::spawn(move || decrypt_into(&keys, &path, ChannelReader::new(rx), inner));
        OpenWriter { tx: Some(tx), handle: Some(handle) }
    }
}

/// Why a stream could not be opened: the key did not match, or the bytes are not what
/// the age format says (a corrupt or truncated object).
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(
        "the identity in {path} matches none of the stream's recipients; pass the private key of one of the recipients the manifest names (encryption.recipients)"
    )]
    NoMatchingKey { path: PathBuf },
    #[error("decrypting: {0}")]
    Decrypt(String),
    /// Writing the plaintext failed (`zfs receive` or zstd stopped): not the stream's fault.
    #[error("{0}")]
    Sink(io::Error),
}

fn decrypt_into<W: Write>(
    keys: &[Box<dyn age::Identity + Send + Sync>],
    path: &Path,
    input: ChannelReader,
    mut inner: W,
) -> Result<(W, String), OpenError> {
    let decryptor =
        age::Decryptor::new_buffered(io::BufReader::new(input)).map_err(|e| OpenError::Decrypt(e.to_string()))?;
    let mut plain = decryptor.decrypt(keys.iter().map(|k| k.as_ref() as &dyn age::Identity)).map_err(|e| match e {
        age::DecryptError::NoMatchingKeys => OpenError::NoMatchingKey { path: path.to_path_buf() },
        other => OpenError::Decrypt(other.to_string()),
    })?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; OPEN_BUFFER];
    loop {
        let read = match plain.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(OpenError::Decrypt(err.to_string())),
        };
        hasher.update(&buffer[..read]);
        inner.write_all(&buffer[..read]).map_err(OpenError::Sink)?;
    }
    Ok((inner, hex::encode(hasher.finalize())))
}

/// The download side of the channel, as a reader for age.
struct ChannelReader {
    rx: Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    at: usize,
}

impl ChannelReader {
    fn new(rx: Receiver<Vec<u8>>) -> Self {
        Self { rx, chunk: Vec::new(), at: 0 }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.chunk.len() {
            match self.rx.recv() {
                Ok(chunk) => (self.chunk, self.at) = (chunk, 0),
                // The download ended (or gave up): end of input.
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// A writer that decrypts into an inner writer on a thread (see [`Identities::open`]).
pub struct OpenWriter<W> {
    tx: Option<SyncSender<Vec<u8>>>,
    handle: Option<JoinHandle<Result<(W, String), OpenError>>>,
}

impl<W> std::fmt::Debug for OpenWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OpenWriter")
    }
}

impl<W> Write for OpenWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let sent = self.tx.as_ref().map(|tx| tx.send(data.to_vec()));
        match sent {
            Some(Ok(())) => Ok(data.len()),
            // The thread stopped: `finish` says why.
            _ => Err(io::Error::new(io::ErrorKind::BrokenPipe, "the decryption stopped")),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<W> OpenWriter<W> {
    /// End of input: the inner writer and the plaintext's hex SHA-256, or why the
    /// decryption failed.
    pub fn finish(mut self) -> Result<(W, String), OpenError> {
        drop(self.tx.take());
        match self.handle.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            _ => Err(OpenError::Decrypt("the decrypting thread panicked".into())),
        }
    }
}

impl<W> Drop for OpenWriter<W> {
    /// Dropped unfinished (an error elsewhere): end the thread's input and wait for it.
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
