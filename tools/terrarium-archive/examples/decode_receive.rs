//! Bench helper (tests/bench/restore.sh), not shipped: decode a zstd file into
//! `zfs receive -F TARGET`, through the same 1 MiB pipe and 1 MiB writes as the
//! restore. It is the decoding half of a restore run on its own, so the bench can
//! compare the restore with the same work done by two uncoupled processes (this one,
//! and `download_floor --sha256`), where `zstd -d | zfs receive` would feed ZFS
//! through the kernel's default 64 KiB pipe, which costs zfs-fuse more CPU.
//!
//! `decode_receive FILE TARGET`

use std::fs::File;
use std::io::{Read, Write};

use anyhow::Context;
use terrarium_archive::zfs::Zfs;

const BLOCK: usize = 1 << 20;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(file), Some(target)) = (args.next(), args.next()) else {
        anyhow::bail!("usage: decode_receive FILE TARGET")
    };
    let mut decoder = zstd::stream::read::Decoder::new(File::open(&file).with_context(|| format!("open {file}"))?)?;
    let mut receive = Zfs::new().receive(&target, true)?;
    let mut pipe = receive.take_stdin().context("zfs receive has no stdin")?;
    let mut block = vec![0; BLOCK];
    loop {
        // Fill the block before writing, as the restore does.
        let mut filled = 0;
        while filled < BLOCK {
            match decoder.read(&mut block[filled..])? {
                0 => break,
                n => filled += n,
            }
        }
        pipe.write_all(&block[..filled])?;
        if filled < BLOCK {
            break;
        }
    }
    drop(pipe);
    receive.finish()?;
    Ok(())
}
