//! `--bwlimit`: hold an upload to an average rate, as `pv -L` does in a shell pipeline.
//!
//! The stream is paced where it enters the upload (compressed bytes, what the uplink
//! carries): after each write the writer sleeps until the bytes so far are no more than
//! the rate allows for the time elapsed. Parts still leave at line speed once full, so
//! the rate holds on average over a run (within a part's worth at its end), which is
//! what a metered or shared VPS uplink needs; the kernel's traffic shaping is the tool
//! for a smooth per-second cap.

use std::time::{Duration, Instant};

/// How long to wait before more than `bytes` have been sent, `elapsed` after the start,
/// at `rate` bytes per second (pure).
pub fn delay(bytes: u64, rate: u64, elapsed: Duration) -> Duration {
    if rate == 0 {
        return Duration::ZERO;
    }
    let due = Duration::from_secs_f64(bytes as f64 / rate as f64);
    due.saturating_sub(elapsed)
}

/// Paces one upload (see the module docs); `None` rate: no limit.
#[derive(Debug)]
pub struct Pacer {
    rate: Option<u64>,
    started: Instant,
}

impl Pacer {
    pub fn new(rate: Option<u64>) -> Self {
        Self { rate, started: Instant::now() }
    }

    /// Time since the upload started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Sleep until `bytes` (the total sent so far) is within the rate.
    pub fn wait(&self, bytes: u64) {
        if let Some(rate) = self.rate {
            let wait = delay(bytes, rate, self.started.elapsed());
            if !wait.is_zero() {
                std::thread::sleep(wait);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ahead_of_the_rate_waits_exactly_the_difference() {
        let mib = 1 << 20;
        // 10 MiB at 1 MiB/s is due at 10 s; after 4 s, wait 6 s.
        assert_eq!(delay(10 * mib, mib, Duration::from_secs(4)), Duration::from_secs(6));
        // Behind the rate (a slow source): never wait.
        assert_eq!(delay(mib, mib, Duration::from_secs(3)), Duration::ZERO);
        assert_eq!(delay(u64::MAX, 0, Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn a_paced_writer_takes_at_least_bytes_over_rate() {
        let pacer = Pacer::new(Some(1 << 20));
        let started = Instant::now();
        for sent in (1..=4).map(|n| n * (64 << 10)) {
            pacer.wait(sent);
        }
        // 256 KiB at 1 MiB/s: at least 250 ms (a lower bound, not a timing assertion).
        assert!(started.elapsed() >= Duration::from_millis(250));
    }
}
