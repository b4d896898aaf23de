//! Output conventions shared by every tool: exit codes, `--json`, logging, progress.
//!
//! On a terminal, logs are short human lines and long runs show progress bars. Under
//! systemd, in pipes and in scripts, logs are plain `key=value` (logfmt) lines with no
//! colour and no progress bars, so journald and log shippers can parse them.

use std::error::Error;
use std::io::{IsTerminal, Write};
use std::sync::OnceLock;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::config::ConfigError;
use crate::fs::LockError;

/// Exit codes of every Terrarium tool. Scripts and monitoring may rely on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Exit {
    /// 0: everything asked for was done, or there was nothing to do.
    Success = 0,
    /// 1: the run failed; the error says what was and was not applied.
    Failure = 1,
    /// 2: bad usage or bad input (a flag, a config value, an unknown tool); nothing changed.
    Usage = 2,
    /// 3: the run finished but some items were rejected (a bad label, one instance failed); the rest applied.
    Partial = 3,
    /// 4: another run holds the lock; try again later.
    Busy = 4,
    /// 5: a verification failed (preflight, checksum, broken chain); nothing was changed.
    Verification = 5,
    /// 6: a confirmation was needed, but there was no terminal and no `--yes`.
    NeedsConfirmation = 6,
}

impl Exit {
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The exit code for an error, from the typed errors found in its chain.
    pub fn classify<'a>(chain: impl IntoIterator<Item = &'a (dyn Error + 'static)>) -> Exit {
        for cause in chain {
            if let Some(LockError::Busy { .. }) = cause.downcast_ref::<LockError>() {
                return Exit::Busy;
            }
            if let Some(err) = cause.downcast_ref::<ConfigError>()
                && !matches!(err, ConfigError::Write { .. } | ConfigError::Read { .. })
            {
                return Exit::Usage;
            }
        }
        Exit::Failure
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> Self {
        std::process::ExitCode::from(exit.code())
    }
}

/// Print `value` as pretty JSON on stdout (the `--json` output of a tool).
pub fn print_json<T: Serialize>(value: &T) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Short lines for people at a terminal.
    Human,
    /// `key=value` lines for journald, pipes and scripts.
    Logfmt,
}

impl LogFormat {
    /// `TERRARIUM_LOG_FORMAT` when set, else human on a terminal and logfmt under
    /// systemd (`JOURNAL_STREAM`) or when stderr is not a terminal.
    pub fn detect() -> Self {
        match std::env::var(crate::paths::env::LOG_FORMAT).as_deref() {
            Ok("human") => return Self::Human,
            Ok("logfmt") => return Self::Logfmt,
            _ => {}
        }
        if std::env::var_os(crate::paths::env::JOURNAL_STREAM).is_some() || !std::io::stderr().is_terminal() {
            Self::Logfmt
        } else {
            Self::Human
        }
    }
}

struct Logger {
    tool: &'static str,
    format: LogFormat,
    /// Terrarium's own records (targets `terrarium_*`).
    level: log::LevelFilter,
    /// Every other crate's records (the AWS SDK through `tracing`'s `log` feature, ...):
    /// quieter than ours by default (their warnings only: their info lines are per
    /// request), as verbose as ours from `-v` on (their retries and timeouts).
    foreign_level: log::LevelFilter,
    /// Whether stderr is the journal: then every line starts with its syslog priority.
    journal: bool,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

/// Install the logger for `tool`. `verbosity` counts `-v` minus `-q`; the default level
/// is info, or `TERRARIUM_LOG` when set.
pub fn init_logging(tool: &'static str, verbosity: i8) {
    let base = match std::env::var(crate::paths::env::LOG_LEVEL).as_deref() {
        Ok("error") => 0,
        Ok("warn") => 1,
        Ok("debug") => 3,
        Ok("trace") => 4,
        _ => 2,
    };
    let level = match base + i32::from(verbosity) {
        i32::MIN..=-1 => log::LevelFilter::Off,
        0 => log::LevelFilter::Error,
        1 => log::LevelFilter::Warn,
        2 => log::LevelFilter::Info,
        3 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    };
    let foreign_level = if level == log::LevelFilter::Info { log::LevelFilter::Warn } else { level };
    let logger = LOGGER.get_or_init(|| Logger {
        tool,
        format: LogFormat::detect(),
        level,
        foreign_level,
        journal: crate::journal::stderr_is_journal(),
    });
    if log::set_logger(logger).is_ok() {
        log::set_max_level(logger.level.max(logger.foreign_level));
    }
}

/// The format logs are written in (human before logging is initialised).
pub fn log_format() -> LogFormat {
    LOGGER.get().map_or(LogFormat::Human, |l| l.format)
}

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        let ours = metadata.target().starts_with("terrarium");
        metadata.level() <= if ours { self.level } else { self.foreign_level }
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let mut fields = FieldCollector(Vec::new());
        let _ = record.key_values().visit(&mut fields);
        // Another crate's line says whose it is (`from=aws_smithy_runtime`), so `-v`
        // output can be filtered to the SDK's or to ours.
        if !record.target().starts_with("terrarium") {
            let krate = record.target().split("::").next().unwrap_or_default();
            fields.0.push(("from".to_string(), krate.to_string()));
        }
        let message = record.args().to_string();
        let line = match self.format {
            LogFormat::Human => human_line(record.level(), &message, &fields.0),
            LogFormat::Logfmt => logfmt_line(self.tool, record.level(), &message, &fields.0),
        };
        let line = if self.journal { crate::journal::with_priority(record.level(), &line) } else { line };
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{line}");
    }

    fn flush(&self) {}
}

struct FieldCollector(Vec<(String, String)>);

impl<'kvs> log::kv::VisitSource<'kvs> for FieldCollector {
    fn visit_pair(&mut self, key: log::kv::Key<'kvs>, value: log::kv::Value<'kvs>) -> Result<(), log::kv::Error> {
        self.0.push((key.to_string(), value.to_string()));
        Ok(())
    }
}

fn human_line(level: log::Level, message: &str, fields: &[(String, String)]) -> String {
    let prefix = match level {
        log::Level::Error => "error: ",
        log::Level::Warn => "warning: ",
        _ => "",
    };
    // Messages quote labels and other tools' text: escaped, so none of it reaches the
    // terminal as a control sequence.
    let mut line = format!("{prefix}{}", crate::terminal::escape(message));
    for (key, value) in fields {
        line.push_str(&format!(" {key}={}", logfmt_value(value)));
    }
    line
}

/// Bytes for people, in binary units as `zfs` and `df -h` count them: `512 B`,
/// `1.50 KiB`, `64.00 GiB` (indicatif's formatter, so every tool writes sizes alike).
pub fn human_bytes(bytes: u64) -> String {
    indicatif::HumanBytes(bytes).to_string()
}

/// One logfmt line: `level=info tool=terrarium-backup msg="..." key=value`.
pub fn logfmt_line(tool: &str, level: log::Level, message: &str, fields: &[(String, String)]) -> String {
    let mut line = format!("level={} tool={tool} msg={}", level.as_str().to_ascii_lowercase(), logfmt_value(message));
    for (key, value) in fields {
        line.push_str(&format!(" {key}={}", logfmt_value(value)));
    }
    line
}

fn logfmt_value(value: &str) -> String {
    let plain = !value.is_empty()
        && !value.chars().any(|c| c.is_whitespace() || c == '"' || c == '=' || crate::terminal::is_unsafe(c));
    // Debug quoting escapes the controls; `escape` the bidi characters it keeps.
    if plain { value.to_string() } else { crate::terminal::escape(&format!("{value:?}")).into_owned() }
}

/// An error and its causes on one line, `: `-joined, each cause once. Many error
/// types show their cause in their own message (`cannot read X: {source}`) and also
/// return it as `source()`, so a plain walk of the chain (`{err:#}`) would print it
/// twice; a cause whose text the line already holds is left out.
pub fn error_chain<'a>(chain: impl IntoIterator<Item = &'a (dyn Error + 'static)>) -> String {
    let mut line = String::new();
    for cause in chain {
        let text = cause.to_string();
        if text.is_empty() || line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// Print the error that ended a run, once, in the current log format, and return the
/// exit code. `message` is the whole chain ([`error_chain`] at the edge).
pub fn report_error(tool: &str, message: &str, exit: Exit) -> std::process::ExitCode {
    let line = match log_format() {
        LogFormat::Human => format!("{tool}: error: {}", crate::terminal::escape(message)),
        LogFormat::Logfmt => format!("{} exit={}", logfmt_line(tool, log::Level::Error, message, &[]), exit.code()),
    };
    let line = if LOGGER.get().is_some_and(|l| l.journal) {
        crate::journal::with_priority(log::Level::Error, &line)
    } else {
        line
    };
    let _ = writeln!(std::io::stderr().lock(), "{line}");
    exit.into()
}

/// Make a panic end the run like any other failure: one line naming the tool and the
/// place, exit code 1 (not Rust's 101), and a backtrace only when `RUST_BACKTRACE`
/// asks for one. Call it first in every tool's `main`. A panic is a bug in Terrarium
/// or a library it uses, so the line asks for a report.
pub fn install_panic_hook(tool: &'static str) {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let wants_backtrace = std::env::var_os("RUST_BACKTRACE").is_some_and(|v| !v.is_empty() && v != "0");
        if wants_backtrace {
            default_hook(info);
        }
        let line = panic_line(tool, info);
        let line = if crate::journal::stderr_is_journal() {
            crate::journal::with_priority(log::Level::Error, &line)
        } else {
            line
        };
        let _ = writeln!(std::io::stderr().lock(), "{line}");
        // Exit here rather than unwinding to a 101: other threads may still hold the
        // run lock or a pipe; the kernel releases both.
        std::process::exit(i32::from(Exit::Failure.code()));
    }));
}

fn panic_line(tool: &str, info: &std::panic::PanicHookInfo<'_>) -> String {
    let payload = info.payload();
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("panic");
    let first_line = message.lines().next().unwrap_or(message);
    let place = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
    format!(
        "{tool}: internal error: {}{place} (please report it at {}/issues)",
        first_line.escape_debug(),
        env!("CARGO_PKG_REPOSITORY")
    )
}

/// A progress bar on stderr when it is a terminal and logs are human; hidden otherwise.
/// `total` in bytes when known (an ETA is shown), else a spinner with bytes and rate.
pub fn byte_progress(total: Option<u64>, what: &str) -> ProgressBar {
    let visible = log_format() == LogFormat::Human && std::io::stderr().is_terminal();
    let bar = match total {
        Some(total) => ProgressBar::new(total).with_style(
            ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {msg} {bytes} {bytes_per_sec} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
    };
    bar.set_message(what.to_string());
    if !visible {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_like_people_write_them() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.50 KiB");
        assert_eq!(human_bytes(1 << 30), "1.00 GiB");
    }

    #[test]
    fn logfmt_quotes_what_needs_quoting() {
        let line = logfmt_line(
            "terrarium-x",
            log::Level::Info,
            "synced routes",
            &[("count".into(), "3".into()), ("name".into(), "a b".into())],
        );
        assert_eq!(line, r#"level=info tool=terrarium-x msg="synced routes" count=3 name="a b""#);
    }

    #[test]
    fn log_lines_escape_terminal_controls_and_bidi_characters() {
        let fields = [("rule".to_string(), "https://a\u{1b}]8;;x\u{7}\u{202e}".to_string())];
        let human = human_line(log::Level::Warn, "rejected `\u{1b}[2J\rok`", &fields);
        assert_eq!(human, r#"warning: rejected `\u{1b}[2J\rok` rule="https://a\u{1b}]8;;x\u{7}\u{202e}""#);
        let logfmt = logfmt_line("t", log::Level::Info, "m\u{2066}", &[("k".into(), "v\u{202e}".into())]);
        assert_eq!(logfmt, r#"level=info tool=t msg="m\u{2066}" k="v\u{202e}""#);
    }

    #[test]
    fn each_cause_is_shown_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("cannot read /etc/terrarium/config.yaml: {source}")]
        struct Shows {
            source: std::io::Error,
        }
        #[derive(Debug, thiserror::Error)]
        #[error("loading the config")]
        struct Hides(#[source] Shows);
        let inner = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "permission denied");
        let err = Hides(Shows { source: inner });
        let chain: Vec<&(dyn Error + 'static)> =
            std::iter::successors(Some(&err as &(dyn Error + 'static)), |e| (*e).source()).collect();
        assert_eq!(chain.len(), 3);
        assert_eq!(error_chain(chain), "loading the config: cannot read /etc/terrarium/config.yaml: permission denied");
    }

    #[test]
    fn lock_contention_maps_to_busy_and_config_errors_to_usage() {
        let busy = LockError::Busy {
            name: "x".into(),
            path: "/l".into(),
            holder: "pid 1".into(),
            waited: std::time::Duration::ZERO,
        };
        assert_eq!(Exit::classify([&busy as &(dyn Error + 'static)]), Exit::Busy);
        let invalid = ConfigError::invalid("domains.manage", "bad", "fix");
        assert_eq!(Exit::classify([&invalid as &(dyn Error + 'static)]), Exit::Usage);
        let io = std::io::Error::other("x");
        assert_eq!(Exit::classify([&io as &(dyn Error + 'static)]), Exit::Failure);
    }
}
