//! Bench helper (tests/bench/restore.sh), not shipped: download an object through the
//! restore's ranged downloader into a sink that only counts the bytes, and print the
//! seconds it took. No hashing, no zstd, no `zfs receive`: the least any restore must
//! spend against a given server, so the bench can show how much of a restore's time the
//! server alone takes. With `--sha256` the sink also hashes the bytes, as a restore
//! must to check the object against its manifest.
//!
//! `download_floor KEY SIZE [--sha256]` with the Terrarium config found as the tools
//! find it (`TERRARIUM_ROOT`).

use std::io::{self, Write};
use std::time::Instant;

use anyhow::Context;
use sha2::{Digest, Sha256};
use terrarium_archive::s3::{S3Settings, Store};
use terrarium_common::{Config, Paths};

/// Counts what it is given (and hashes it, with `--sha256`), keeps nothing.
struct Count(u64, Option<Sha256>);

impl Write for Count {
    fn write(&mut self, chunk: &[u8]) -> io::Result<usize> {
        self.0 += chunk.len() as u64;
        if let Some(hasher) = &mut self.1 {
            hasher.update(chunk);
        }
        Ok(chunk.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(key), Some(size)) = (args.next(), args.next()) else {
        anyhow::bail!("usage: download_floor KEY SIZE [--sha256]")
    };
    let hash = match args.next().as_deref() {
        None => false,
        Some("--sha256") => true,
        Some(other) => {
            anyhow::bail!("unknown argument {other}; usage: download_floor KEY SIZE [--sha256]")
        }
    };
    let size: u64 = size.parse().context("SIZE: a number of bytes")?;
    let paths = Paths::resolve(None);
    let config = Config::load(&paths).context("load the Terrarium config")?;
    let store = Store::new(&S3Settings::from_config(&config, &paths)?)?;
    let started = Instant::now();
    let mut sink = Count(0, hash.then(Sha256::new));
    store.download_sized(&key, size, &mut sink, &|_| {})?;
    anyhow::ensure!(sink.0 == size, "downloaded {} bytes of {key}, expected {size}", sink.0);
    // The digest is used, so the hashing cannot be optimised away.
    std::hint::black_box(sink.1.map(Sha256::finalize));
    println!("{:.2}", started.elapsed().as_secs_f64());
    Ok(())
}
