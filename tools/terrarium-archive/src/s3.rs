//! S3-compatible object storage: a blocking [`Store`] over the AWS SDK.
//!
//! - Built from the Terrarium config (`s3.endpoint`, `bucket`, `region`, `prefix`,
//!   `access_key`, secret from `s3.secret_key_file`), path-style addressing, no lookups
//!   of `~/.aws` or instance metadata.
//! - Streams upload through [`MultipartUpload`], a `std::io::Write`: parts are cut from
//!   the stream and uploaded up to `concurrency` at a time. The part size grows with the
//!   part number ([`part_size`]) so a 5 TiB stream fits in S3's 10,000 parts, and the
//!   parts held at once stay within the memory budget whatever their size
//!   ([`crate::part_buffer`]: fewer at once as they grow, large ones in a file). Any
//!   failure (or a drop without `finish`) aborts the upload: no incomplete multipart
//!   upload is left behind.
//! - Downloads stream into a `std::io::Write` and resume with a ranged GET after a broken
//!   or truncated response.
//! - Requests are retried with exponential backoff on 5xx, throttling and network errors
//!   (the SDK's standard retry strategy); wrong credentials, bucket or endpoint give a
//!   one-line error naming the config key to fix.
//!
//! The blocking API owns a small tokio runtime; do not call it from inside another runtime.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::PathBuf;
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use bytes::Bytes;
use terrarium_common::secret::Secret;
use terrarium_common::{Config, Paths};
use tokio::sync::mpsc;

use crate::keys::KeyLayout;
use crate::resume::{ListedPart, StoredPart};

mod upload;
pub use upload::MultipartUpload;

const MIB: u64 = 1024 * 1024;
/// S3's limits: at most 10,000 parts of at most 5 GiB, every part but the last ≥ 5 MiB.
pub const MAX_PARTS: u32 = 10_000;
pub const MAX_PART_SIZE: u64 = 5 * 1024 * MIB;
/// The largest stream [`part_size`] is built to fit: 5 TiB.
pub const MAX_STREAM: u64 = 5 * 1024 * 1024 * MIB;
/// The smallest part we cut (S3 needs ≥ 5 MiB).
pub const MIN_PART_SIZE: u64 = 8 * MIB;

/// The size of part `part_number` (1-based).
///
/// The first `K` parts have the base size `max(MIN_PART_SIZE, hint / 4,500)`, where `K`
/// covers the hinted stream size (at least 100 parts); after that, parts grow linearly
/// by just enough that the 10,000 parts hold 5 TiB. So a stream whose size is roughly
/// known is cut into equal parts (constant memory), and a stream far larger than its
/// hint (or with no hint) still fits; the largest part stays around 1 to 1.6 GiB.
pub fn part_size(part_number: u32, size_hint: Option<u64>) -> u64 {
    let (base, constant_parts, step) = part_schedule(size_hint);
    let n = u128::from(part_number.max(1));
    let size = if n <= constant_parts { u128::from(base) } else { u128::from(base) + (n - constant_parts) * step };
    u64::try_from(size).unwrap_or(u64::MAX).min(MAX_PART_SIZE)
}

/// `(base size, parts at base size, growth per part after them)` for a hint.
fn part_schedule(size_hint: Option<u64>) -> (u64, u128, u128) {
    let hint = size_hint.unwrap_or(0);
    let base = MIN_PART_SIZE.max(hint.div_ceil(4_500)).min(MAX_PART_SIZE);
    // At most half the parts at the base size, so the rest can grow to 5 TiB with parts
    // well under S3's 5 GiB limit.
    let constant = u128::from(hint.div_ceil(base)).clamp(100, 5_000);
    let remaining_parts = u128::from(MAX_PARTS) - constant;
    let remaining_bytes = u128::from(MAX_STREAM).saturating_sub(constant * u128::from(base));
    let shortfall = remaining_bytes.saturating_sub(remaining_parts * u128::from(base));
    // Sum of (1..=M) * step >= shortfall.
    let triangle = remaining_parts * (remaining_parts + 1) / 2;
    (base, constant, shortfall.div_ceil(triangle.max(1)))
}

/// Tuning knobs; the defaults suit a small VPS.
#[derive(Debug, Clone)]
pub struct Tuning {
    /// Parts uploaded at once, at most (fewer when large parts fill the memory budget).
    pub concurrency: usize,
    /// Peak memory of an upload, in bytes (`backup.export.memory_budget_mib`).
    pub memory_budget: u64,
    /// Where parts too large for the memory budget wait to be uploaded.
    pub spool_dir: PathBuf,
    /// Average upload rate in bytes per second (`--bwlimit`); `None`: no limit.
    pub bwlimit: Option<u64>,
    /// Bytes per ranged GET in [`Store::download_sized`].
    pub download_range: u64,
    /// Ranges in flight or waiting in memory in [`Store::download_sized`]; half of
    /// them are requested together when half were written out.
    pub download_window: usize,
    /// Attempts per request (first try included).
    pub max_attempts: u32,
    /// First retry delay; doubles (with jitter) up to 20 s.
    pub initial_backoff: Duration,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            concurrency: 4,
            memory_budget: u64::from(terrarium_common::config::ExportLimits::DEFAULT_MEMORY_BUDGET_MIB) * MIB,
            spool_dir: PathBuf::from(terrarium_common::paths::host::SPOOL_DIR),
            bwlimit: None,
            download_range: 4 * MIB,
            download_window: 12,
            max_attempts: 6,
            initial_backoff: Duration::from_millis(500),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(120),
        }
    }
}

/// Everything needed to reach the bucket.
#[derive(Debug, Clone)]
pub struct S3Settings {
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub prefix: Option<String>,
    pub access_key: String,
    pub secret_key: Secret,
    pub tuning: Tuning,
}

impl S3Settings {
    /// From the config's `s3` section; the secret is read from `s3.secret_key_file`
    /// (resolved under the root of `paths`). S3 need not be enabled (preflight checks a
    /// config before enabling it); every field it needs must be set.
    pub fn from_config(config: &Config, paths: &Paths) -> Result<Self, S3Error> {
        let s3 = &config.s3;
        let need = |key: &'static str, value: &Option<String>| value.clone().ok_or(S3Error::NotConfigured { key });
        let file = s3.secret_key_file.as_ref().ok_or(S3Error::NotConfigured { key: "s3.secret_key_file" })?;
        let secret_key =
            config.read_secret(paths, "s3.secret_key_file", file).map_err(|e| S3Error::Secret(e.to_string()))?;
        Ok(Self {
            endpoint: need("s3.endpoint", &s3.endpoint)?,
            bucket: need("s3.bucket", &s3.bucket)?,
            region: s3.region.clone().unwrap_or_else(|| "us-east-1".to_string()),
            prefix: s3.prefix.clone(),
            access_key: need("s3.access_key", &s3.access_key)?,
            secret_key,
            tuning: Tuning {
                memory_budget: config.backup.export.memory_budget_bytes(),
                spool_dir: paths.spool_dir(),
                // Validated with the config; a value that fails here was never loaded.
                bwlimit: config.backup.export.bwlimit_bytes().unwrap_or(None),
                ..Tuning::default()
            },
        })
    }
}

/// Why an S3 operation failed.
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    #[error("{key} is not set; configure S3 with `terrarium-set s3`")]
    NotConfigured { key: &'static str },
    #[error("{0}")]
    Secret(String),
    #[error("cannot reach the S3 endpoint {endpoint}: {detail}; check s3.endpoint and the network")]
    Endpoint { endpoint: String, detail: String },
    #[error(
        "S3 at {endpoint} rejected the credentials ({code}); check s3.access_key and the secret in s3.secret_key_file"
    )]
    Credentials { endpoint: String, code: String },
    #[error(
        "S3 at {endpoint} denied access to bucket {bucket} ({op}); grant the access key read, write, list and delete on it"
    )]
    AccessDenied { endpoint: String, bucket: String, op: &'static str },
    #[error("bucket {bucket} does not exist at {endpoint}; create it or fix s3.bucket")]
    NoBucket { endpoint: String, bucket: String },
    #[error("object s3://{bucket}/{key} does not exist")]
    NotFound { bucket: String, key: String },
    #[error("S3 {op} of s3://{bucket}/{key} failed: {detail}")]
    Request { op: &'static str, bucket: String, key: String, detail: String },
    #[error("S3 upload of s3://{bucket}/{key} failed: {detail}; the upload was aborted")]
    Upload { bucket: String, key: String, detail: String },
    #[error("S3 download of s3://{bucket}/{key} failed after {attempts} attempts at byte {offset}: {detail}")]
    Download { bucket: String, key: String, offset: u64, attempts: u32, detail: String },
    #[error("cannot start the S3 client runtime: {0}")]
    Runtime(io::Error),
    #[error("writing s3://{bucket}/{key} to its destination failed: {source}")]
    Sink { bucket: String, key: String, source: io::Error },
}

/// An object's key and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
}

/// A multipart upload nobody completed or aborted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncompleteUpload {
    pub key: String,
    pub upload_id: String,
}

/// What a finished upload wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadSummary {
    pub key: String,
    pub bytes: u64,
    pub parts: u32,
    /// Lower-case hex SHA-256 of the stored object.
    pub sha256: String,
    /// Parts an interrupted run had stored, kept instead of sent again, and their bytes.
    pub resumed_parts: u32,
    pub resumed_bytes: u64,
    /// From the upload's start to its last part stored: the time the uplink carried it
    /// (what `--bwlimit` paces). CompleteMultipartUpload, the server's work, comes after.
    pub transfer: std::time::Duration,
}

/// An interrupted upload to go on with: its id and the parts it may keep (see
/// [`crate::resume`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resume {
    pub upload_id: String,
    /// The size hint the interrupted run cut its parts by (the same parts need it).
    pub size_hint: Option<u64>,
    pub parts: BTreeMap<u32, StoredPart>,
}

/// Told of every part the server stored: the resume journal.
pub type PartJournal = Box<dyn FnMut(&StoredPart)>;

/// A bucket on an S3-compatible endpoint.
#[derive(Debug)]
pub struct Store {
    client: Client,
    bucket: String,
    endpoint: String,
    prefix: Option<String>,
    tuning: Tuning,
    runtime: tokio::runtime::Runtime,
}

impl Store {
    /// Build the client. Nothing is contacted yet; [`Store::probe`] checks the settings.
    pub fn new(settings: &S3Settings) -> Result<Self, S3Error> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("terrarium-s3")
            .enable_all()
            .build()
            .map_err(S3Error::Runtime)?;
        let tuning = settings.tuning.clone();
        let credentials =
            Credentials::new(&settings.access_key, settings.secret_key.expose(), None, None, "terrarium-config");
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(settings.region.clone()))
            .endpoint_url(settings.endpoint.trim_end_matches('/'))
            .credentials_provider(credentials)
            .force_path_style(true)
            // Plain Content-Length bodies: many S3-compatible stores reject the SDK's
            // default aws-chunked checksum trailers. Integrity comes from our sha256.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(tuning.max_attempts)
                    .with_initial_backoff(tuning.initial_backoff)
                    .with_max_backoff(Duration::from_secs(20)),
            )
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(tuning.connect_timeout)
                    .read_timeout(tuning.read_timeout)
                    .build(),
            )
            .build();
        Ok(Self {
            client: Client::from_conf(config),
            bucket: settings.bucket.clone(),
            endpoint: settings.endpoint.clone(),
            prefix: settings.prefix.clone(),
            tuning,
            runtime,
        })
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Set the average upload rate of the uploads started from now on (`--bwlimit`).
    pub fn set_bwlimit(&mut self, rate: Option<u64>) {
        self.tuning.bwlimit = rate;
    }
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
    /// `s3.prefix` as configured.
    pub fn prefix(&self) -> Option<&str> {
        self.prefix.as_deref()
    }
    /// The key layout of `host` in this store.
    pub fn keys(&self, host: &str) -> KeyLayout {
        KeyLayout::new(self.prefix.as_deref(), host)
    }

    fn error<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static>(
        &self,
        op: &'static str,
        key: &str,
        err: SdkError<E>,
    ) -> S3Error {
        classify(&self.endpoint, &self.bucket, op, key, err)
    }

    /// Write, read back and delete a small object under the host's prefix: proves the
    /// endpoint answers, the credentials work and the bucket exists and is writable.
    pub fn probe(&self, keys: &KeyLayout) -> Result<(), S3Error> {
        let key = keys.probe_key();
        let body = format!("terrarium-backup probe from {}\n", keys.host()).into_bytes();
        self.put_bytes(&key, body.clone())?;
        let read = self.get_bytes(&key);
        let deleted = self.delete(&key);
        if read? != body {
            return Err(S3Error::Request {
                op: "probe",
                bucket: self.bucket.clone(),
                key,
                detail: "the object read back differs from what was written".into(),
            });
        }
        deleted
    }

    /// PutObject of a small object.
    pub fn put_bytes(&self, key: &str, bytes: Vec<u8>) -> Result<(), S3Error> {
        self.runtime
            .block_on(self.client.put_object().bucket(&self.bucket).key(key).body(ByteStream::from(bytes)).send())
            .map_err(|e| self.error("PutObject", key, e))?;
        Ok(())
    }

    /// GetObject of a small object into memory.
    pub fn get_bytes(&self, key: &str) -> Result<Vec<u8>, S3Error> {
        self.runtime.block_on(self.fetcher(key).bytes())
    }

    /// GetObject of several small objects (manifests), up to [`SMALL_GETS_AT_ONCE`] at
    /// a time, each result in the place of its key. One after the other, a chain of N
    /// manifests costs N round trips before a restore or an export can start.
    pub fn get_many(&self, keys: &[String]) -> Vec<Result<Vec<u8>, S3Error>> {
        self.runtime.block_on(async {
            let mut pending = std::collections::VecDeque::new();
            let mut results = Vec::with_capacity(keys.len());
            let mut next = keys.iter();
            loop {
                while pending.len() < SMALL_GETS_AT_ONCE {
                    let Some(key) = next.next() else { break };
                    pending.push_back((key, tokio::spawn(self.fetcher(key).bytes())));
                }
                let Some((key, task)) = pending.pop_front() else {
                    break;
                };
                results.push(task.await.unwrap_or_else(|join| {
                    Err(S3Error::Download {
                        bucket: self.bucket.clone(),
                        key: key.clone(),
                        offset: 0,
                        attempts: 1,
                        detail: format!("task failed: {join}"),
                    })
                }));
            }
            results
        })
    }

    /// HeadObject: the size, or `None` when the object does not exist.
    pub fn head(&self, key: &str) -> Result<Option<ObjectInfo>, S3Error> {
        match self.runtime.block_on(self.client.head_object().bucket(&self.bucket).key(key).send()) {
            Ok(out) => Ok(Some(ObjectInfo {
                key: key.to_string(),
                size: out.content_length().map_or(0, |n| u64::try_from(n).unwrap_or(0)),
            })),
            Err(err) => match self.error("HeadObject", key, err) {
                S3Error::NotFound { .. } => Ok(None),
                other => Err(other),
            },
        }
    }

    /// Every object under `prefix` (ListObjectsV2, all pages), sorted by key.
    pub fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, S3Error> {
        let mut objects = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let request =
                self.client.list_objects_v2().bucket(&self.bucket).prefix(prefix).set_continuation_token(token.clone());
            let page = self.runtime.block_on(request.send()).map_err(|e| self.error("ListObjectsV2", prefix, e))?;
            for object in page.contents() {
                if let Some(key) = object.key() {
                    objects.push(ObjectInfo {
                        key: key.to_string(),
                        size: object.size().map_or(0, |n| u64::try_from(n).unwrap_or(0)),
                    });
                }
            }
            token = page.next_continuation_token().map(str::to_string);
            if token.is_none() || page.is_truncated() != Some(true) {
                break;
            }
        }
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(objects)
    }

    /// DeleteObject (deleting a missing object succeeds, as in S3).
    pub fn delete(&self, key: &str) -> Result<(), S3Error> {
        match self.runtime.block_on(self.client.delete_object().bucket(&self.bucket).key(key).send()) {
            Ok(_) => Ok(()),
            Err(err) => match self.error("DeleteObject", key, err) {
                S3Error::NotFound { .. } => Ok(()),
                other => Err(other),
            },
        }
    }

    /// Multipart uploads under `prefix` that were never completed or aborted.
    pub fn incomplete_uploads(&self, prefix: &str) -> Result<Vec<IncompleteUpload>, S3Error> {
        let out = self
            .runtime
            .block_on(self.client.list_multipart_uploads().bucket(&self.bucket).prefix(prefix).send())
            .map_err(|e| self.error("ListMultipartUploads", prefix, e))?;
        Ok(out
            .uploads()
            .iter()
            .filter_map(|u| Some(IncompleteUpload { key: u.key()?.to_string(), upload_id: u.upload_id()?.to_string() }))
            .collect())
    }

    /// The parts the server holds for an upload (ListParts, every page); an upload the
    /// server no longer knows is an error.
    pub fn list_parts(&self, key: &str, upload_id: &str) -> Result<BTreeMap<u32, ListedPart>, S3Error> {
        let mut listed = BTreeMap::new();
        let mut marker: Option<String> = None;
        loop {
            let request = self
                .client
                .list_parts()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(upload_id)
                .set_part_number_marker(marker.clone());
            let out = self.runtime.block_on(request.send()).map_err(|e| self.error("ListParts", key, e))?;
            for part in out.parts() {
                if let (Some(number), Some(size)) = (part.part_number(), part.size()) {
                    let (Ok(number), Ok(size)) = (u32::try_from(number), u64::try_from(size)) else { continue };
                    listed.insert(number, ListedPart { size, etag: part.e_tag().map(str::to_string) });
                }
            }
            match (out.is_truncated(), out.next_part_number_marker()) {
                (Some(true), Some(next)) if Some(next) != marker.as_deref() => marker = Some(next.to_string()),
                _ => return Ok(listed),
            }
        }
    }

    /// AbortMultipartUpload.
    pub fn abort_upload(&self, key: &str, upload_id: &str) -> Result<(), S3Error> {
        self.runtime
            .block_on(self.client.abort_multipart_upload().bucket(&self.bucket).key(key).upload_id(upload_id).send())
            .map_err(|e| self.error("AbortMultipartUpload", key, e))?;
        Ok(())
    }

    /// Stream object `key` into `out`, calling `progress` with each chunk's size. A
    /// broken or truncated response is resumed with a ranged GET (up to `max_attempts`
    /// tries in a row without progress). Returns the bytes written.
    pub fn download(&self, key: &str, out: &mut dyn Write, progress: &dyn Fn(u64)) -> Result<u64, S3Error> {
        let fetch = self.fetcher(key);
        self.runtime.block_on(fetch.run(0, None, |chunk| {
            out.write_all(&chunk).map_err(|source| S3Error::Sink {
                bucket: self.bucket.clone(),
                key: key.to_string(),
                source,
            })?;
            progress(chunk.len() as u64);
            Ok(())
        }))
    }

    /// Stream object `key`, expected to be `size` bytes, into `out` in order, with ranged
    /// GETs of `tuning.download_range` bytes, at most `tuning.download_window` of them
    /// ahead of the writer; memory stays at about range × window. The oldest range is
    /// written out as its bytes arrive, the others wait in memory. New ranges are
    /// requested half a window at a time, when half the window was written out: a
    /// server serves several requests at once for less than the same requests one after
    /// the other (s3s-fs here spends twice the CPU per byte on a lone request), and a
    /// slow writer would otherwise leave one request in flight at a time. Each range
    /// resumes after a broken or truncated response like [`Store::download`].
    pub fn download_sized(
        &self,
        key: &str,
        size: u64,
        out: &mut dyn Write,
        progress: &dyn Fn(u64),
    ) -> Result<u64, S3Error> {
        let range = self.tuning.download_range.max(1);
        if size <= range {
            return self.download(key, out, progress);
        }
        let window = self.tuning.download_window.max(1);
        let sink_error = |source| S3Error::Sink { bucket: self.bucket.clone(), key: key.to_string(), source };
        self.runtime.block_on(async {
            let mut pending = Ranges::default();
            let mut next_start = 0u64;
            let mut written = 0u64;
            loop {
                if pending.0.len() <= window / 2 {
                    while next_start < size && pending.0.len() < window {
                        let end = (next_start + range).min(size);
                        let (sender, receiver) = mpsc::unbounded_channel();
                        pending.0.push_back(RangeTask {
                            task: tokio::spawn(self.fetcher(key).range(next_start, end, size, sender)),
                            chunks: receiver,
                        });
                        next_start = end;
                    }
                }
                let Some(RangeTask { task, mut chunks }) = pending.0.pop_front() else {
                    break;
                };
                while let Some(chunk) = chunks.recv().await {
                    if let Err(source) = out.write_all(&chunk) {
                        task.abort();
                        return Err(sink_error(source));
                    }
                    written += chunk.len() as u64;
                    progress(chunk.len() as u64);
                }
                // The channel closes when the task ends: its result says whether the range
                // was whole (a range that failed sent only part of its bytes).
                match task.await {
                    Ok(result) => result?,
                    Err(join) => {
                        let detail = format!("range task failed: {join}");
                        return Err(S3Error::Download {
                            bucket: self.bucket.clone(),
                            key: key.to_string(),
                            offset: written,
                            attempts: 1,
                            detail,
                        });
                    }
                };
            }
            Ok(written)
        })
    }

    fn fetcher(&self, key: &str) -> Fetch {
        Fetch {
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            endpoint: self.endpoint.clone(),
            key: key.to_string(),
            tuning: self.tuning.clone(),
        }
    }
}

fn backoff(initial: Duration, attempt: u32) -> Duration {
    initial.saturating_mul(1 << attempt.min(6)).min(Duration::from_secs(20))
}

/// Small GETs in flight at once in [`Store::get_many`].
pub const SMALL_GETS_AT_ONCE: usize = 8;

/// Range downloads in flight, oldest first; those still running when a download gives
/// up are cancelled (a dropped tokio task handle alone would let them run on).
#[derive(Debug, Default)]
struct Ranges(std::collections::VecDeque<RangeTask>);

/// One range download and the channel its bytes arrive on.
#[derive(Debug)]
struct RangeTask {
    task: tokio::task::JoinHandle<Result<u64, S3Error>>,
    chunks: mpsc::UnboundedReceiver<Bytes>,
}

impl Drop for Ranges {
    fn drop(&mut self) {
        for range in &self.0 {
            range.task.abort();
        }
    }
}

/// One object's GETs: what a spawned range task owns.
#[derive(Debug, Clone)]
struct Fetch {
    client: Client,
    bucket: String,
    endpoint: String,
    key: String,
    tuning: Tuning,
}

impl Fetch {
    /// The whole object in memory (for small ones: manifests).
    async fn bytes(self) -> Result<Vec<u8>, S3Error> {
        let mut out = Vec::new();
        self.run(0, None, |chunk| {
            out.extend_from_slice(&chunk);
            Ok(())
        })
        .await?;
        Ok(out)
    }

    /// Bytes `start..end` of an object of `size` bytes, sent on `chunks` as the HTTP
    /// client hands them over (no range-sized allocation: those fragment the heap). A
    /// resumed response goes on from the last byte sent, so what was sent stays valid.
    async fn range(
        self,
        start: u64,
        end: u64,
        size: u64,
        chunks: mpsc::UnboundedSender<Bytes>,
    ) -> Result<u64, S3Error> {
        self.run(start, Some((end, size)), |chunk| {
            // The receiver is gone only when the download gave up: stop quietly.
            let _ = chunks.send(chunk);
            Ok(())
        })
        .await
    }

    /// GET from `start` (to `end` of an object of `size` bytes, when given), handing
    /// each chunk to `sink`; a broken or short response is resumed from where it stopped
    /// (up to `max_attempts` tries in a row without progress). Returns the bytes fetched.
    async fn run(
        &self,
        start: u64,
        bounds: Option<(u64, u64)>,
        mut sink: impl FnMut(Bytes) -> Result<(), S3Error>,
    ) -> Result<u64, S3Error> {
        let mut offset = start;
        let mut end = bounds.map(|(end, _)| end);
        let mut failures: u32 = 0;
        loop {
            let mut request = self.client.get_object().bucket(&self.bucket).key(&self.key);
            request = match end {
                Some(end) => request.range(format!("bytes={offset}-{}", end - 1)),
                None if offset > 0 => request.range(format!("bytes={offset}-")),
                None => request,
            };
            let response =
                request.send().await.map_err(|e| classify(&self.endpoint, &self.bucket, "GetObject", &self.key, e))?;
            if let Some((_, size)) = bounds {
                // `bytes 0-8388607/TOTAL`: an object of another size is not the one expected.
                let total =
                    response.content_range().and_then(|r| r.rsplit('/').next()).and_then(|t| t.parse::<u64>().ok());
                if total != Some(size) {
                    let found = match response.content_range() {
                        Some(range) => format!("the server says {range}"),
                        None => "the server ignored the Range header".to_string(),
                    };
                    return Err(S3Error::Request {
                        op: "GetObject",
                        bucket: self.bucket.clone(),
                        key: self.key.clone(),
                        detail: format!("expected a {size}-byte object, {found}"),
                    });
                }
            }
            if end.is_none() {
                end = response.content_length().and_then(|n| u64::try_from(n).ok()).map(|n| offset + n);
            }
            let mut body = response.body;
            let mut broken = None;
            loop {
                match body.next().await {
                    Some(Ok(mut chunk)) => {
                        let room = end.map_or(chunk.len(), |end| {
                            usize::try_from(end - offset).unwrap_or(usize::MAX).min(chunk.len())
                        });
                        chunk.truncate(room);
                        sink(chunk)?;
                        offset += room as u64;
                        failures = 0;
                    }
                    Some(Err(err)) => {
                        broken = Some(DisplayErrorContext(err).to_string());
                        break;
                    }
                    None => break,
                }
            }
            let short = end.is_some_and(|end| offset < end);
            if broken.is_none() && !short {
                return Ok(offset - start);
            }
            failures += 1;
            let detail = broken.unwrap_or_else(|| format!("response ended at byte {offset} of {}", end.unwrap_or(0)));
            if failures >= self.tuning.max_attempts {
                return Err(S3Error::Download {
                    bucket: self.bucket.clone(),
                    key: self.key.clone(),
                    offset,
                    attempts: failures,
                    detail,
                });
            }
            log::warn!(key = self.key.as_str(), offset = offset, attempt = failures; "S3 download interrupted, resuming: {detail}");
            tokio::time::sleep(backoff(self.tuning.initial_backoff, failures)).await;
        }
    }
}

/// The last two messages of an error's source chain (`tcp connect error: Connection
/// refused (os error 111)`): the SDK's own outer layers say nothing an operator needs.
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut messages = vec![err.to_string()];
    let mut current = err.source();
    while let Some(source) = current {
        let text = source.to_string();
        if !messages.contains(&text) {
            messages.push(text);
        }
        current = source.source();
    }
    let start = messages.len().saturating_sub(2);
    messages[start..].join(": ")
}

/// Turn an SDK error into one line that names the thing to fix.
fn classify<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static>(
    endpoint: &str,
    bucket: &str,
    op: &'static str,
    key: &str,
    err: SdkError<E>,
) -> S3Error {
    let status = err.raw_response().map(|r| r.status().as_u16());
    let code = err.code().map(str::to_string);
    match (&err, code.as_deref(), status) {
        (SdkError::DispatchFailure(_) | SdkError::TimeoutError(_), _, _) => {
            S3Error::Endpoint { endpoint: endpoint.to_string(), detail: root_cause(&err) }
        }
        (_, Some(code @ ("InvalidAccessKeyId" | "SignatureDoesNotMatch" | "InvalidToken" | "ExpiredToken")), _) => {
            S3Error::Credentials { endpoint: endpoint.to_string(), code: code.to_string() }
        }
        (_, Some("NoSuchBucket"), _) => {
            S3Error::NoBucket { endpoint: endpoint.to_string(), bucket: bucket.to_string() }
        }
        (_, Some("AccessDenied"), _) | (_, None, Some(403)) => {
            S3Error::AccessDenied { endpoint: endpoint.to_string(), bucket: bucket.to_string(), op }
        }
        (_, Some("NoSuchKey" | "NotFound"), _) | (_, None, Some(404)) => {
            S3Error::NotFound { bucket: bucket.to_string(), key: key.to_string() }
        }
        _ => S3Error::Request {
            op,
            bucket: bucket.to_string(),
            key: key.to_string(),
            detail: DisplayErrorContext(&err).to_string(),
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ten_thousand_parts_hold_five_tib_within_s3_limits_for_any_hint() {
        const GIB: u64 = 1024 * MIB;
        for hint in [
            None,
            Some(0),
            Some(GIB),
            Some(10 * GIB),
            Some(1024 * GIB),
            Some(4096 * GIB),
            Some(5120 * GIB),
            Some(50_000 * GIB),
        ] {
            let mut total: u64 = 0;
            for n in 1..=MAX_PARTS {
                let size = part_size(n, hint);
                assert!((5 * MIB..=MAX_PART_SIZE).contains(&size), "hint {hint:?} part {n}: {size}");
                assert!(n == 1 || size >= part_size(n - 1, hint), "parts never shrink");
                total += size;
            }
            assert!(total >= MAX_STREAM.min(hint.unwrap_or(0).max(MAX_STREAM)), "hint {hint:?}: {total} < 5 TiB");
            assert!(
                part_size(MAX_PARTS, hint) <= 2 * GIB || hint.unwrap_or(0) > 5120 * GIB,
                "hint {hint:?}: largest part {}",
                part_size(MAX_PARTS, hint)
            );
        }
    }

    #[test]
    fn parts_are_constant_while_the_hinted_size_lasts() {
        assert_eq!(part_size(1, None), MIN_PART_SIZE);
        assert_eq!(part_size(100, None), MIN_PART_SIZE);
        assert!(part_size(101, None) > MIN_PART_SIZE);
        // A 10 GiB stream: 1,280 parts of 8 MiB, so memory does not grow with the stream.
        assert_eq!(part_size(1280, Some(10 * 1024 * MIB)), MIN_PART_SIZE);
    }

    #[test]
    fn a_size_hint_sets_a_part_size_that_fits_in_half_the_parts() {
        let hint = 200 * 1024 * MIB; // 200 GiB
        let size = part_size(1, Some(hint));
        assert!(size * 4_500 >= hint && size < hint / 4_500 + MIB, "{size}");
        assert_eq!(part_size(4_500, Some(hint)), size);
    }
}
