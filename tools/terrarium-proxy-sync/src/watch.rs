//! Watch mode: follow LXD's lifecycle events and sync soon after a change.
//!
//! `lxc monitor --type=lifecycle --format=json` reports `instance-started`,
//! `instance-stopped`, `instance-updated` (a `lxc config set`), profile changes and
//! more. Events are debounced (a burst becomes one sync). A container that has just
//! started gets its DHCP address about a second later, so while a labelled running
//! instance has no address the list is read again every half second for a while.
//! The minute timer stays the fallback if events are lost.

use std::io::BufReader;
use std::process::Stdio;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use terrarium_common::process::Cmd;
use terrarium_common::{Exit, Paths};

use crate::sync::{self, Options};

const RECHECK_EVERY: Duration = Duration::from_millis(500);
const RECHECK_FOR: Duration = Duration::from_secs(30);
const MONITOR_RESTART_DELAY: Duration = Duration::from_secs(2);

#[derive(Debug)]
enum Event {
    /// A lifecycle event that may change what is published.
    Changed(String),
    /// The monitor exited (LXD restarted, socket gone).
    MonitorEnded(String),
}

pub fn run(paths: &Paths, options: &Options, debounce: Duration) -> anyhow::Result<Exit> {
    log::info!(debounce_ms = debounce.as_millis() as u64; "watching LXD lifecycle events");
    loop {
        let (sender, events) = mpsc::channel();
        let monitor = start_monitor(sender)?;
        // Sync once on (re)start: events may have been missed while no monitor ran.
        follow(paths, options, debounce, &events);
        monitor.kill();
        std::thread::sleep(MONITOR_RESTART_DELAY);
    }
}

/// Handle events until the monitor ends.
fn follow(paths: &Paths, options: &Options, debounce: Duration, events: &Receiver<Event>) {
    let mut pending = true;
    let mut recheck_until: Option<Instant> = None;
    loop {
        if pending {
            // Debounce: wait until no event arrived for `debounce`.
            loop {
                match events.recv_timeout(debounce) {
                    Ok(Event::Changed(_)) => continue,
                    Ok(Event::MonitorEnded(why)) => {
                        log::warn!("lxc monitor ended ({why}); restarting it");
                        return;
                    }
                    Err(RecvTimeoutError::Timeout) => break,
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            }
            let waiting_for_address = sync_once(paths, options);
            recheck_until = match (waiting_for_address, recheck_until) {
                (false, _) => None,
                (true, Some(until)) => Some(until),
                (true, None) => Some(Instant::now() + RECHECK_FOR),
            };
        }
        let wait = match recheck_until {
            Some(until) if Instant::now() < until => RECHECK_EVERY,
            _ => {
                recheck_until = None;
                Duration::from_secs(3600)
            }
        };
        match events.recv_timeout(wait) {
            Ok(Event::Changed(action)) => {
                log::debug!(action = action.as_str(); "lxd event");
                pending = true;
            }
            Ok(Event::MonitorEnded(why)) => {
                log::warn!("lxc monitor ended ({why}); restarting it");
                return;
            }
            Err(RecvTimeoutError::Timeout) => pending = recheck_until.is_some(),
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// One sync; errors are logged, not fatal. Returns whether a labelled running instance
/// is still waiting for its address.
fn sync_once(paths: &Paths, options: &Options) -> bool {
    match sync::sync(paths, options) {
        Ok(outcome) => {
            crate::log_outcome(&outcome);
            outcome.plan.unpublished.iter().any(|u| u.reason.starts_with("running"))
        }
        Err(err) => {
            log::error!("sync failed: {}", terrarium_common::output::error_chain(err.chain()));
            // Try again soon: a busy lock or a transient lxc error.
            true
        }
    }
}

fn start_monitor(sender: Sender<Event>) -> anyhow::Result<sync_monitor::Monitor> {
    let mut running = Cmd::new("lxc")
        .args(["monitor", "--type=lifecycle", "--format=json"])
        .install_hint("with `apt install lxd-client` (or the LXD snap)")
        .spawn(Stdio::null(), Stdio::piped())?;
    let stdout = running.take_stdout().ok_or_else(|| anyhow::anyhow!("lxc monitor has no stdout"))?;
    std::thread::spawn(move || {
        // One JSON object per event, possibly pretty-printed over several lines.
        let stream = serde_json::Deserializer::from_reader(BufReader::new(stdout)).into_iter::<serde_json::Value>();
        for event in stream {
            match event {
                Ok(event) => {
                    let action = event.pointer("/metadata/action").and_then(|a| a.as_str()).unwrap_or("").to_string();
                    if relevant(&action) && sender.send(Event::Changed(action)).is_err() {
                        return;
                    }
                }
                Err(err) => {
                    let _ = sender.send(Event::MonitorEnded(format!("unreadable output: {err}")));
                    return;
                }
            }
        }
        let _ = sender.send(Event::MonitorEnded("end of output".into()));
    });
    Ok(sync_monitor::Monitor(running))
}

/// Instance and profile lifecycle events can change labels, states or addresses.
fn relevant(action: &str) -> bool {
    (action.starts_with("instance-") || action.starts_with("profile-"))
        && !action.split('-').any(|word| ["log", "file", "console", "exec", "metadata"].contains(&word))
}

mod sync_monitor {
    /// The running `lxc monitor`, killed when watch restarts it.
    #[derive(Debug)]
    pub struct Monitor(pub terrarium_common::process::Running);

    impl Monitor {
        pub fn kill(self) {
            self.0.kill();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::relevant;

    #[test]
    fn relevant_events_are_state_and_config_changes() {
        for action in [
            "instance-started",
            "instance-stopped",
            "instance-updated",
            "instance-deleted",
            "profile-updated",
            "instance-renamed",
        ] {
            assert!(relevant(action), "{action}");
        }
        for action in ["instance-log-retrieved", "instance-file-pushed", "instance-exec", "image-created", ""] {
            assert!(!relevant(action), "{action}");
        }
    }
}
