//! Log priorities for journald. systemd reads a `<N>` prefix on each line a service
//! writes to the journal as that line's syslog priority (`SyslogLevelPrefix=`, on by
//! default), so `journalctl -p err` shows a tool's errors and `-p warning` its warnings.

use std::os::unix::fs::MetadataExt;

/// The syslog priority of a log level: err 3, warning 4, info 6, debug 7.
pub fn priority(level: log::Level) -> u8 {
    match level {
        log::Level::Error => 3,
        log::Level::Warn => 4,
        log::Level::Info => 6,
        log::Level::Debug | log::Level::Trace => 7,
    }
}

/// `line` with the priority prefix journald reads.
pub fn with_priority(level: log::Level, line: &str) -> String {
    format!("<{}>{line}", priority(level))
}

/// Whether stderr is the journal stream systemd gave this service. `JOURNAL_STREAM`
/// alone is not enough: a program the service starts with stderr captured (Ansible
/// running a tool) inherits the variable, and there a `<3>` would be noise. systemd
/// documents the check: the variable's `DEVICE:INODE` is stderr's.
pub fn stderr_is_journal() -> bool {
    let Some(stream) = std::env::var_os(crate::paths::env::JOURNAL_STREAM) else {
        return false;
    };
    let Ok(stderr) = std::fs::metadata("/proc/self/fd/2") else {
        return false;
    };
    is_stream(&stream.to_string_lossy(), stderr.dev(), stderr.ino())
}

fn is_stream(journal_stream: &str, dev: u64, ino: u64) -> bool {
    journal_stream.split_once(':').is_some_and(|(d, i)| d.parse() == Ok(dev) && i.parse() == Ok(ino))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_and_warnings_get_their_syslog_priorities() {
        assert_eq!(with_priority(log::Level::Error, "level=error msg=x"), "<3>level=error msg=x");
        assert_eq!(with_priority(log::Level::Warn, "w"), "<4>w");
        assert_eq!(with_priority(log::Level::Info, "i"), "<6>i");
        assert_eq!(with_priority(log::Level::Debug, "d"), "<7>d");
    }

    #[test]
    fn only_the_stream_named_by_journal_stream_is_the_journal() {
        assert!(is_stream("8:12345", 8, 12345));
        assert!(!is_stream("8:12345", 8, 12346));
        assert!(!is_stream("8:12345", 9, 12345));
        assert!(!is_stream("", 8, 12345));
        assert!(!is_stream("garbage", 8, 12345));
    }
}
