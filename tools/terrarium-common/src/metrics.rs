//! Prometheus metrics as files for node-exporter's textfile collector.
//!
//! A tool that runs from a timer has no process to scrape: at the end of each run it
//! leaves one `<job>.prom` file in the collector's directory, and node-exporter serves
//! it with its own metrics. Every value describes the last run (or a state as of it),
//! so every family is a gauge: a counter would have to survive the process, which a
//! file rewritten per run cannot promise.
//!
//! Pure core ([`Metrics`], [`render`], [`parse`]) and a small shell ([`publish`]):
//! the directory is never created (it belongs to the node-exporter package, and its
//! absence means node-exporter is not installed), and a failed write is a warning,
//! never the run's failure.

mod parse;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use parse::{Sample, parse};

/// The metric families of one file, by name: rendered in name order, so the output is
/// the same whatever order a tool recorded them in.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metrics {
    families: BTreeMap<String, Family>,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Family {
    help: String,
    /// Label sets (in the order the tool gives the names) and their values.
    samples: BTreeMap<Vec<(String, String)>, f64>,
}

/// One gauge family being filled, from [`Metrics::gauge`].
#[derive(Debug)]
pub struct Gauge<'a> {
    family: &'a mut Family,
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// The gauge `name` (created with `help` on first use). Names are the tools' own
    /// constants: an invalid one is a bug, caught by the tools' tests.
    pub fn gauge(&mut self, name: &str, help: &str) -> Gauge<'_> {
        debug_assert!(is_metric_name(name), "invalid metric name {name:?}");
        let family = self.families.entry(name.to_string()).or_default();
        if family.help.is_empty() {
            family.help = help.to_string();
        }
        Gauge { family }
    }

    pub fn is_empty(&self) -> bool {
        self.families.is_empty()
    }
}

impl Gauge<'_> {
    /// The value of the sample without labels.
    pub fn set(&mut self, value: f64) -> &mut Self {
        self.with(&[], value)
    }

    /// The value of the sample with `labels` (a second value for the same labels
    /// replaces the first: a file never holds one series twice).
    pub fn with(&mut self, labels: &[(&str, &str)], value: f64) -> &mut Self {
        debug_assert!(labels.iter().all(|(name, _)| is_label_name(name)), "invalid label name in {labels:?}");
        let key = labels.iter().map(|(name, value)| (name.to_string(), value.to_string())).collect();
        self.family.samples.insert(key, value);
        self
    }
}

/// The text exposition format (version 0.0.4): per family `# HELP`, `# TYPE`, then its
/// samples sorted by their labels.
pub fn render(metrics: &Metrics) -> String {
    let mut text = String::new();
    for (name, family) in &metrics.families {
        text.push_str(&format!("# HELP {name} {}\n", escape_help(&family.help)));
        text.push_str(&format!("# TYPE {name} gauge\n"));
        for (labels, value) in &family.samples {
            text.push_str(name);
            if !labels.is_empty() {
                let pairs: Vec<String> =
                    labels.iter().map(|(label, value)| format!("{label}=\"{}\"", escape_label_value(value))).collect();
                text.push_str(&format!("{{{}}}", pairs.join(",")));
            }
            text.push_str(&format!(" {}\n", format_value(*value)));
        }
    }
    text
}

/// `\` and newline escaped, as the format asks of HELP text.
fn escape_help(text: &str) -> String {
    text.replace('\\', r"\\").replace('\n', r"\n")
}

/// `\`, `"` and newline escaped, as the format asks of label values (instance names
/// are validated, but a label value must never be able to break the file).
pub fn escape_label_value(text: &str) -> String {
    text.replace('\\', r"\\").replace('"', "\\\"").replace('\n', r"\n")
}

/// Go's spelling of the special values; Rust's `Display` of a finite `f64` never uses
/// an exponent and is exact enough for Prometheus' parser.
fn format_value(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_string()
    } else if value == f64::INFINITY {
        "+Inf".to_string()
    } else if value == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        format!("{value}")
    }
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`, and not starting with `__` (reserved for Prometheus).
pub fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    !name.starts_with("__")
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The value of the series `name{labels}` in a file we wrote before (none when the
/// file is gone, unreadable or not in the format: the caller then knows nothing of it).
pub fn previous_value(path: &Path, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let text = crate::fs::read_regular_to_string(path).ok()?;
    let samples = parse(&text).ok()?;
    find_value(&samples, name, labels)
}

/// The value of the sample `name` with exactly `labels` (in their rendered order).
pub fn find_value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && s.labels.len() == labels.len()
                && s.labels.iter().zip(labels).all(|((n, v), (want_n, want_v))| n == want_n && v == want_v)
        })
        .map(|s| s.value)
}

/// What [`write_textfile`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// The file was replaced.
    Wrote(PathBuf),
    /// The directory does not exist (node-exporter is not installed): nothing written.
    NoDirectory(PathBuf),
}

/// Replace `path` with `text`, atomically (a temp file in the same directory, then a
/// rename: node-exporter never reads half a file, and it reads only `*.prom` names, so
/// it never sees the temp file), unless its directory does not exist.
pub fn write_textfile(path: &Path, text: &str) -> std::io::Result<Written> {
    let dir = path.parent().unwrap_or(Path::new("."));
    if !dir.is_dir() {
        return Ok(Written::NoDirectory(dir.to_path_buf()));
    }
    crate::fs::atomic_write(path, text.as_bytes(), 0o644)?;
    Ok(Written::Wrote(path.to_path_buf()))
}

/// Leave `metrics` at `path` (see [`write_textfile`]); logged, never an error: metrics
/// must not change what a run did or its exit code.
pub fn publish(path: &Path, metrics: &Metrics) {
    match write_textfile(path, &render(metrics)) {
        Ok(Written::Wrote(path)) => log::debug!(path = path.display().to_string(); "metrics written"),
        Ok(Written::NoDirectory(dir)) => {
            log::debug!(dir = dir.display().to_string(); "no metrics written: the directory does not exist (node-exporter not installed?)")
        }
        Err(err) => log::warn!(path = path.display().to_string(); "could not write the metrics file: {err}"),
    }
}

/// How a run ended: what every tool's file says of its last run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Run {
    pub finished_at: time::OffsetDateTime,
    pub seconds: f64,
    pub exit: crate::Exit,
    /// Whether the run did its job (each tool says which exit codes count).
    pub success: bool,
}

/// The suffix of the family that must outlive failed runs (see [`record_run`]).
pub const LAST_SUCCESS: &str = "_last_success_timestamp_seconds";

/// The families about the run itself, each named `<prefix>_...` and carrying `labels`:
/// `_last_run_success` (0 or 1), `_last_run_timestamp_seconds`,
/// `_last_run_duration_seconds`, `_last_run_exit_code` and
/// `_last_success_timestamp_seconds`.
///
/// A failed run must not lose when the last success was: an alert on "no success for
/// a day" would otherwise fire at once, or never. The caller reads it back from the
/// previous file ([`previous_value`]) rather than from a state file of its own: the
/// metrics file is the only reader of that time, so keeping it there leaves no second
/// record to disagree with it, and a file that was removed means "unknown", which is
/// what an absent sample says (it is left out until the first success).
pub fn record_run(
    metrics: &mut Metrics,
    prefix: &str,
    labels: &[(&str, &str)],
    run: &Run,
    previous_success: Option<f64>,
) {
    let finished = unix_seconds(run.finished_at);
    metrics
        .gauge(&format!("{prefix}_last_run_success"), "Whether the last run succeeded (1) or failed (0).")
        .with(labels, if run.success { 1.0 } else { 0.0 });
    metrics
        .gauge(
            &format!("{prefix}_last_run_timestamp_seconds"),
            "When the last run finished, in seconds since the Unix epoch.",
        )
        .with(labels, finished);
    metrics
        .gauge(&format!("{prefix}_last_run_duration_seconds"), "How long the last run took, in seconds.")
        .with(labels, run.seconds);
    metrics
        .gauge(
            &format!("{prefix}_last_run_exit_code"),
            "The exit code of the last run (see README.md: 0 success, 3 partial, ...).",
        )
        .with(labels, f64::from(run.exit.code()));
    let success = if run.success { Some(finished) } else { previous_success };
    if let Some(at) = success {
        metrics
            .gauge(
                &format!("{prefix}{LAST_SUCCESS}"),
                "When the last successful run finished, in seconds since the Unix epoch (kept across failed runs).",
            )
            .with(labels, at);
    }
}

/// Seconds since the Unix epoch, as metrics give times.
pub fn unix_seconds(at: time::OffsetDateTime) -> f64 {
    at.unix_timestamp_nanos() as f64 / 1e9
}

#[cfg(test)]
mod tests;
