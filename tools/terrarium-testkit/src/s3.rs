//! An S3-compatible server (s3s-fs) on loopback with one bucket.

use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::programs::require;
use crate::support::{
    free_loopback_port, kill_child, log_tail, port_answers, spawn_tied, temp_dir, tied_command, wait_until,
};

const BUCKET: &str = "terrarium-test";
const ACCESS_KEY: &str = "terrarium-test-key";
// Test-only credentials of a loopback server; not a secret.
const SECRET_KEY: &str = "terrarium-test-secret";
const REGION: &str = "us-east-1";

/// s3s-fs on 127.0.0.1 with a random port, SigV4 credentials and one bucket, storing
/// objects as files under [`S3Server::data_dir`]. Killed and removed on drop.
#[derive(Debug)]
pub struct S3Server {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl S3Server {
    /// Start the server and wait until it accepts connections.
    pub fn start() -> Self {
        let program = require("s3s-fs");
        let dir = temp_dir("s3");
        let data = dir.path().join("data");
        std::fs::create_dir_all(data.join(BUCKET))
            .unwrap_or_else(|e| panic!("testkit: create the bucket directory: {e}"));
        let log = dir.path().join("s3s-fs.log");
        // The port is free when picked but another process may take it before s3s-fs
        // binds it: try a few ports.
        for _ in 0..5 {
            let port = free_loopback_port();
            let log_file =
                std::fs::File::create(&log).unwrap_or_else(|e| panic!("testkit: create {}: {e}", log.display()));
            let mut command = tied_command(&program);
            command
                .args([
                    "--host",
                    "127.0.0.1",
                    "--port",
                    &port.to_string(),
                    "--access-key",
                    ACCESS_KEY,
                    "--secret-key",
                    SECRET_KEY,
                ])
                .arg(&data)
                .stdin(Stdio::null())
                .stdout(log_file.try_clone().unwrap_or_else(|e| panic!("testkit: {e}")))
                .stderr(log_file);
            let mut child = spawn_tied(command).unwrap_or_else(|e| panic!("testkit: start {}: {e}", program.display()));
            let up = wait_until(Duration::from_secs(10), Duration::from_millis(20), || {
                port_answers(port) || child.try_wait().ok().flatten().is_some()
            });
            if up && child.try_wait().ok().flatten().is_none() {
                return Self { child, port, dir };
            }
            kill_child(&mut child);
        }
        panic!("testkit: s3s-fs did not start; its log:\n{}", log_tail(&log));
    }

    /// `http://127.0.0.1:PORT` (use path-style addressing).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
    pub fn port(&self) -> u16 {
        self.port
    }
    /// The bucket that exists from the start.
    pub fn bucket(&self) -> &str {
        BUCKET
    }
    pub fn access_key(&self) -> &str {
        ACCESS_KEY
    }
    pub fn secret_key(&self) -> &str {
        SECRET_KEY
    }
    /// Any region works with s3s-fs; this is the one to configure clients with.
    pub fn region(&self) -> &str {
        REGION
    }
    /// The directory holding the buckets: object `k` of the bucket is
    /// `data_dir()/bucket()/k`.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }
    /// Create another bucket.
    pub fn create_bucket(&self, name: &str) {
        let path = self.data_dir().join(name);
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("testkit: create bucket {}: {e}", path.display()));
    }
    /// Environment for the aws CLI or the SDK (credentials, region, no instance metadata
    /// lookups). Use with `Command::envs` and `--endpoint-url` = [`S3Server::endpoint`].
    pub fn aws_env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
            ("AWS_DEFAULT_REGION", REGION),
            ("AWS_REGION", REGION),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }
    /// The server's log (for a failing test's message).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("s3s-fs.log")
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        kill_child(&mut self.child);
    }
}
