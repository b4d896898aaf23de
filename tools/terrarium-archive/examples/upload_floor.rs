//! Bench helper (tests/bench/backup-export.sh), not shipped: upload a file that is
//! already compressed, from memory, through the export's multipart uploader, and print
//! the seconds the upload took. No `zfs send`, no zstd, no hashing of the stream: the
//! least any exporter must spend against a given server, so the bench can show how
//! close to the server's own limit an export runs.
//!
//! `upload_floor FILE KEY` with the Terrarium config found as the tools find it
//! (`TERRARIUM_ROOT`).

use std::io::Write;
use std::time::Instant;

use anyhow::Context;
use terrarium_archive::s3::{S3Settings, Store};
use terrarium_common::{Config, Paths};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(file), Some(key)) = (args.next(), args.next()) else { anyhow::bail!("usage: upload_floor FILE KEY") };
    let paths = Paths::resolve(None);
    let config = Config::load(&paths).context("load the Terrarium config")?;
    let store = Store::new(&S3Settings::from_config(&config, &paths)?)?;
    let data = std::fs::read(&file).with_context(|| format!("read {file}"))?;
    let started = Instant::now();
    let mut upload = store.upload(&key, Some(data.len() as u64))?;
    upload.write_all(&data)?;
    upload.finish()?;
    println!("{:.2}", started.elapsed().as_secs_f64());
    Ok(())
}
