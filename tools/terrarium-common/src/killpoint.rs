//! Kill points: named places between a tool's recorded effects where a test can make the
//! process die, to prove a rerun converges. For tests only; a real host never sets these.
//!
//! - [`env::KILL_AFTER`](crate::paths::env::KILL_AFTER) names one point: the process
//!   sends itself SIGKILL there, so no destructor, handler or flush runs (what an OOM kill
//!   or a power cut does).
//! - [`env::KILLPOINTS`](crate::paths::env::KILLPOINTS) names a file: every point passed
//!   is appended to it, one name a line, so a harness discovers the points of a normal run
//!   in order instead of keeping a list that drifts from the code.
//!
//! Both are read once; with neither set, [`reached`] is a load and a branch.

use std::io::Write;
use std::sync::OnceLock;

use crate::paths::env;

struct Settings {
    kill_after: Option<String>,
    record_to: Option<std::path::PathBuf>,
}

fn settings() -> &'static Settings {
    static SETTINGS: OnceLock<Settings> = OnceLock::new();
    SETTINGS.get_or_init(|| Settings {
        kill_after: std::env::var(env::KILL_AFTER).ok().filter(|name| !name.is_empty()),
        record_to: std::env::var_os(env::KILLPOINTS).filter(|path| !path.is_empty()).map(Into::into),
    })
}

/// Mark that the step `name` (`<tool>.<step>`, e.g. `export.manifest-written`) is done.
pub fn reached(name: &str) {
    let settings = settings();
    if let Some(path) = &settings.record_to {
        // A test-only side channel: a failure to record must fail the harness loudly
        // (it finds fewer points than it asserts), not the tool.
        if let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
            let _ = writeln!(file, "{name}");
        }
    }
    if settings.kill_after.as_deref() == Some(name) {
        let _ = rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
        // SIGKILL cannot be caught; should it somehow return, still never go past the point.
        std::process::abort();
    }
}
