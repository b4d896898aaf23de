//! Streaming multipart uploads: [`Store::upload`] and [`Store::resume_upload`] give a
//! [`MultipartUpload`], a `std::io::Write` that cuts the stream into parts
//! ([`super::part_size`]), holds them within the memory budget ([`crate::part_buffer`])
//! and uploads them `concurrency` at a time on the store's runtime. It hashes what it
//! stores, tells a journal of every part the server stored, and keeps the parts of an
//! interrupted upload that the re-sent stream has again ([`crate::resume`]).

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::{MAX_PARTS, PartJournal, Resume, S3Error, Store, UploadSummary, part_size};
use crate::pace::Pacer;
use crate::part_buffer::{Budget, Filling};
use crate::resume::{self, StoredPart};

/// How long an abort waits for the parts already in flight (a hung server must not
/// hold an abort for minutes of retries).
const ABORT_GRACE: Duration = Duration::from_secs(30);

impl Store {
    /// Start a streaming multipart upload of `key`. Write the stream, then call
    /// [`MultipartUpload::finish`]; dropping it unfinished aborts the upload.
    /// `size_hint` (the expected size, when known) keeps the part size constant.
    pub fn upload(&self, key: &str, size_hint: Option<u64>) -> Result<MultipartUpload<'_>, S3Error> {
        let created = self
            .runtime
            .block_on(self.client.create_multipart_upload().bucket(&self.bucket).key(key).send())
            .map_err(|e| self.error("CreateMultipartUpload", key, e))?;
        let upload_id = created.upload_id().unwrap_or_default().to_string();
        Ok(self.upload_to(key, upload_id, size_hint, BTreeMap::new()))
    }

    /// Go on with an interrupted upload of the same stream: the parts of `resume` are
    /// checked against the stream as it is written again and kept instead of sent (a
    /// part that differs fails the upload with a [`resume::ResumeMismatch`]).
    pub fn resume_upload(&self, key: &str, resume: Resume) -> MultipartUpload<'_> {
        self.upload_to(key, resume.upload_id, resume.size_hint, resume.parts)
    }

    fn upload_to(
        &self,
        key: &str,
        upload_id: String,
        size_hint: Option<u64>,
        keep: BTreeMap<u32, StoredPart>,
    ) -> MultipartUpload<'_> {
        let answered = Arc::new(Mutex::new(Vec::new()));
        let (sender, receiver) = mpsc::channel::<(i32, Filling)>(1);
        let stopping = Arc::new(AtomicBool::new(false));
        let worker = self.runtime.spawn(upload_parts(
            self.client.clone(),
            self.bucket.clone(),
            key.to_string(),
            upload_id.clone(),
            self.tuning.concurrency.max(1),
            !self.endpoint.starts_with("https://"),
            receiver,
            Arc::clone(&stopping),
            Arc::clone(&answered),
        ));
        MultipartUpload {
            store: self,
            key: key.to_string(),
            upload_id,
            size_hint,
            budget: Budget::new(self.tuning.memory_budget, &self.tuning.spool_dir),
            filling: None,
            pacer: Pacer::new(self.tuning.bwlimit),
            next_part: 1,
            written: 0,
            paced: 0,
            hasher: Sha256::new(),
            kept: Kept { expected: keep, ..Kept::default() },
            shipped: BTreeMap::new(),
            answered,
            journal: None,
            sender: Some(sender),
            worker: Some(worker),
            stopping,
            done: false,
        }
    }
}

/// Upload parts as they arrive, `concurrency` at a time, until the sender is dropped.
/// The first failure, or `stopping`, ends the task without starting more parts (the
/// receiver is dropped, so the writer sees the failure at its next part).
///
/// Either way, every part already sent has its answer before this returns: a part
/// still in flight while the upload is aborted may be stored after the abort (S3
/// documents this), and would be left behind on the server.
#[allow(clippy::too_many_arguments)] // one call site, each argument named there
async fn upload_parts(
    client: Client,
    bucket: String,
    key: String,
    upload_id: String,
    concurrency: usize,
    sign_payload: bool,
    mut receiver: mpsc::Receiver<(i32, Filling)>,
    stopping: Arc<AtomicBool>,
    answered: Answered,
) -> Result<Vec<CompletedPart>, String> {
    let mut running = tokio::task::JoinSet::new();
    let mut parts = Parts::default();
    while let Some((number, mut part)) = receiver.recv().await {
        while running.len() >= concurrency {
            if let Some(result) = running.join_next().await {
                parts.collect(result);
            }
        }
        if parts.failure.is_some() || stopping.load(Ordering::Acquire) {
            break;
        }
        let (client, bucket, key, upload_id) = (client.clone(), bucket.clone(), key.clone(), upload_id.clone());
        let answered = Arc::clone(&answered);
        running.spawn(async move {
            let body = part.byte_stream().await.map_err(|e| format!("part {number}: {e}"))?;
            let request =
                client.upload_part().bucket(bucket).key(key).upload_id(upload_id).part_number(number).body(body);
            // As the AWS SDKs and CLI do: over TLS the payload is not hashed again for
            // SigV4 (TLS guards it in transit, the manifest's SHA-256 end to end), which
            // spares a SHA-256 pass on each side; over plain HTTP the signature is what
            // lets the server refuse a part damaged in transit.
            let sent = if sign_payload {
                request.send().await
            } else {
                request.customize().disable_payload_signing().send().await
            };
            // The part (its memory or file, and its permit) is released only now: a
            // retry inside `send` may read it again.
            drop(part);
            let out = sent.map_err(|e| format!("part {number}: {}", DisplayErrorContext(e)))?;
            // For the resume journal, which the writer keeps (see `journal_answers`).
            if let Ok(number) = u32::try_from(number) {
                lock(&answered).push((number, out.e_tag().map(str::to_string)));
            }
            Ok(CompletedPart::builder().part_number(number).set_e_tag(out.e_tag().map(str::to_string)).build())
        });
    }
    while let Some(result) = running.join_next().await {
        parts.collect(result);
    }
    if let Some(err) = parts.failure {
        return Err(err);
    }
    if stopping.load(Ordering::Acquire) {
        return Err("the upload was stopped".to_string());
    }
    let mut completed = parts.completed;
    completed.sort_by_key(|p| p.part_number());
    Ok(completed)
}

/// The answers of the part uploads so far: the parts stored, and the first failure.
#[derive(Default)]
struct Parts {
    completed: Vec<CompletedPart>,
    failure: Option<String>,
}

impl Parts {
    fn collect(&mut self, result: Result<Result<CompletedPart, String>, tokio::task::JoinError>) {
        match result {
            Ok(Ok(part)) => self.completed.push(part),
            Ok(Err(err)) => {
                self.failure.get_or_insert(err);
            }
            Err(join) => {
                self.failure.get_or_insert(format!("part upload task failed: {join}"));
            }
        }
    }
}

/// The parts the uploader has stored, (number, ETag), shared with the writer, which
/// tells the resume journal of them.
type Answered = Arc<Mutex<Vec<(u32, Option<String>)>>>;

/// A poisoned lock still holds good data here (a list of answers).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The parts of an interrupted upload this one keeps (see [`crate::resume`]).
#[derive(Debug, Default)]
struct Kept {
    /// Parts stored by the interrupted run, not yet met in this stream.
    expected: BTreeMap<u32, StoredPart>,
    /// Bytes of the current part, which is one of `expected`: hashed, not held.
    current: u64,
    /// Parts met and found equal, with their ETags, for CompleteMultipartUpload.
    parts: Vec<CompletedPart>,
    bytes: u64,
}

/// The resume journal's callback (a box of a closure, which has no `Debug`).
struct Journal(PartJournal);

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Journal")
    }
}

/// A streaming multipart upload in progress (see [`Store::upload`]).
#[derive(Debug)]
pub struct MultipartUpload<'a> {
    store: &'a Store,
    key: String,
    upload_id: String,
    size_hint: Option<u64>,
    budget: Budget,
    /// The part being written, once the first byte of it arrived.
    filling: Option<Filling>,
    pacer: Pacer,
    next_part: u32,
    written: u64,
    /// Bytes sent (or to be sent): the written ones but the kept parts'.
    paced: u64,
    /// The stream's SHA-256 so far; at a part's end, that part's prefix hash.
    hasher: Sha256,
    kept: Kept,
    /// Parts handed to the uploader: (size, prefix hash), until stored.
    shipped: BTreeMap<u32, (u64, String)>,
    /// Parts the uploader has stored, with their ETags.
    answered: Answered,
    journal: Option<Journal>,
    sender: Option<mpsc::Sender<(i32, Filling)>>,
    worker: Option<tokio::task::JoinHandle<Result<Vec<CompletedPart>, String>>>,
    /// Tells the uploader to start no more parts (see [`MultipartUpload::stop_worker`]).
    stopping: Arc<AtomicBool>,
    done: bool,
}

impl MultipartUpload<'_> {
    pub fn key(&self) -> &str {
        &self.key
    }
    /// The server's id of this upload (record it to abort the upload after a crash).
    pub fn upload_id(&self) -> &str {
        &self.upload_id
    }
    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    fn current_part_size(&self) -> u64 {
        part_size(self.next_part, self.size_hint)
    }

    /// Have `journal` told of every part the server stores from now on.
    pub fn set_journal(&mut self, journal: PartJournal) {
        self.journal = Some(Journal(journal));
    }

    /// The current part's prefix hash: the stream's SHA-256 up to here.
    fn prefix_sha256(&self) -> String {
        hex::encode(self.hasher.clone().finalize())
    }

    /// Tell the journal of the parts stored since the last call.
    fn journal_answers(&mut self) {
        let Some(journal) = self.journal.as_mut() else {
            return;
        };
        let answered = std::mem::take(&mut *lock(&self.answered));
        for (number, etag) in answered {
            if let Some((size, prefix_sha256)) = self.shipped.remove(&number) {
                (journal.0)(&StoredPart { number, size, prefix_sha256, etag });
            }
        }
    }

    /// The current part is a kept one and has all its bytes: check it, and keep it.
    fn keep_part(&mut self) -> io::Result<()> {
        let number = self.next_part;
        let Some(stored) = self.kept.expected.remove(&number) else {
            return Err(io::Error::other(format!("part {number} is not a kept part")));
        };
        let size = std::mem::take(&mut self.kept.current);
        resume::check_part(&stored, size, &self.prefix_sha256())
            .map_err(|mismatch| io::Error::new(io::ErrorKind::InvalidData, mismatch))?;
        let number_i32 = i32::try_from(number).unwrap_or(i32::MAX);
        self.kept.parts.push(CompletedPart::builder().part_number(number_i32).set_e_tag(stored.etag).build());
        self.kept.bytes += size;
        self.next_part += 1;
        Ok(())
    }

    /// Hand the part written so far to the uploader; fails when the uploader has stopped.
    fn ship(&mut self) -> io::Result<()> {
        if self.next_part > MAX_PARTS {
            return Err(io::Error::other(format!("the stream needs more than {MAX_PARTS} parts")));
        }
        let part = match self.filling.take() {
            Some(part) => part,
            // S3 needs at least one part, even for an empty stream.
            None => self.budget.start(0, &self.store.runtime)?,
        };
        self.shipped.insert(self.next_part, (part.len(), self.prefix_sha256()));
        let number = i32::try_from(self.next_part).unwrap_or(i32::MAX);
        self.next_part += 1;
        self.journal_answers();
        let sender = self.sender.as_ref().ok_or_else(|| io::Error::other("upload already finished"))?;
        sender.blocking_send((number, part)).map_err(|_| io::Error::other(self.worker_failure()))
    }

    /// The uploader's error, once it stopped early.
    fn worker_failure(&mut self) -> String {
        self.sender = None;
        match self.worker.take().map(|w| self.store.runtime.block_on(w)) {
            Some(Ok(Err(err))) => err,
            Some(Err(join)) => format!("part uploader failed: {join}"),
            _ => "the part uploader stopped".to_string(),
        }
    }

    fn upload_error(&self, detail: impl Into<String>) -> S3Error {
        S3Error::Upload { bucket: self.store.bucket.clone(), key: self.key.clone(), detail: detail.into() }
    }

    /// Upload the last part and complete the upload; on any failure the upload is
    /// aborted and the error returned.
    pub fn finish(mut self) -> Result<UploadSummary, S3Error> {
        let result = self.complete();
        if result.is_err() {
            self.abort_quietly();
        }
        self.done = true;
        result
    }

    fn complete(&mut self) -> Result<UploadSummary, S3Error> {
        if self.kept.current > 0 {
            self.keep_part().map_err(|e| self.upload_error(e.to_string()))?;
        }
        if let Some(&part) = self.kept.expected.keys().next() {
            let mismatch = resume::ResumeMismatch {
                part,
                problem: format!("the re-sent stream ended after {} parts", self.next_part - 1),
            };
            return Err(self.upload_error(mismatch.to_string()));
        }
        // S3 needs at least one part, even for an empty stream.
        if self.filling.as_ref().is_some_and(|p| !p.is_empty()) || self.next_part == 1 {
            self.ship().map_err(|e| self.upload_error(e.to_string()))?;
        }
        self.sender = None;
        let worker = self.worker.take().ok_or_else(|| self.upload_error("the part uploader is gone"))?;
        let mut parts = match self.store.runtime.block_on(worker) {
            Ok(Ok(parts)) => parts,
            Ok(Err(err)) => return Err(self.upload_error(err)),
            Err(join) => return Err(self.upload_error(format!("part uploader failed: {join}"))),
        };
        let transfer = self.pacer.elapsed();
        // Every part is stored: the journal hears of all of them before the upload is
        // completed, so a run killed now resumes with nothing left to send.
        self.journal_answers();
        let resumed_parts = u32::try_from(self.kept.parts.len()).unwrap_or(u32::MAX);
        parts.append(&mut self.kept.parts);
        parts.sort_by_key(|p| p.part_number());
        let count = u32::try_from(parts.len()).unwrap_or(u32::MAX);
        let store = self.store;
        store
            .runtime
            .block_on(
                store
                    .client
                    .complete_multipart_upload()
                    .bucket(&store.bucket)
                    .key(&self.key)
                    .upload_id(&self.upload_id)
                    .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
                    .send(),
            )
            .map_err(|e| store.error("CompleteMultipartUpload", &self.key, e))?;
        Ok(UploadSummary {
            key: self.key.clone(),
            bytes: self.written,
            parts: count,
            sha256: hex::encode(std::mem::take(&mut self.hasher).finalize()),
            resumed_parts,
            resumed_bytes: self.kept.bytes,
            transfer,
        })
    }

    /// Abort the upload: the parts sent so far are discarded by the server.
    pub fn abort(mut self) -> Result<(), S3Error> {
        self.done = true;
        self.stop_worker();
        self.store.abort_upload(&self.key, &self.upload_id)
    }

    /// Stop the uploader before an abort: no new parts, and the parts in flight are
    /// waited for (up to [`ABORT_GRACE`]), so that none is stored after the abort.
    fn stop_worker(&mut self) {
        self.stopping.store(true, Ordering::Release);
        self.sender = None;
        if let Some(mut worker) = self.worker.take() {
            let store = self.store;
            let ended = store.runtime.block_on(async { tokio::time::timeout(ABORT_GRACE, &mut worker).await.is_ok() });
            if !ended {
                log::warn!(key = self.key.as_str(); "parts still uploading after {} s; aborting the upload anyway", ABORT_GRACE.as_secs());
                worker.abort();
                let _ = store.runtime.block_on(worker);
            }
        }
    }

    fn abort_quietly(&mut self) {
        self.stop_worker();
        if let Err(err) = self.store.abort_upload(&self.key, &self.upload_id) {
            log::error!(key = self.key.as_str(), upload_id = self.upload_id.as_str(); "could not abort the multipart upload: {err}");
        }
    }
}

impl Write for MultipartUpload<'_> {
    fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        let total = data.len();
        while !data.is_empty() {
            let size = self.current_part_size();
            if self.kept.expected.contains_key(&self.next_part) {
                // A part the interrupted run stored: hashed to check it, never held or sent.
                let take = usize::try_from(size - self.kept.current).unwrap_or(usize::MAX).min(data.len());
                self.hasher.update(&data[..take]);
                self.kept.current += take as u64;
                data = &data[take..];
                if self.kept.current >= size {
                    self.keep_part()?;
                }
                continue;
            }
            let part = match self.filling.as_mut() {
                Some(part) => part,
                // Waits here while the parts in flight fill the memory budget.
                None => self.filling.insert(self.budget.start(size, &self.store.runtime)?),
            };
            let take = usize::try_from(size - part.len()).unwrap_or(usize::MAX).min(data.len());
            part.append(&data[..take])?;
            self.hasher.update(&data[..take]);
            self.paced += take as u64;
            data = &data[take..];
            if part.len() >= size {
                self.ship()?;
            }
        }
        self.written += total as u64;
        self.pacer.wait(self.paced);
        Ok(total)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for MultipartUpload<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.abort_quietly();
        }
    }
}
