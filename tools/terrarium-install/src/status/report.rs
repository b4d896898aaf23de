//! The JSON reports other tools leave of their last run (`/var/lib/terrarium/reports/`).
//! Their fields belong to those tools, so they are read leniently: any JSON is kept
//! as it is for `--json`, and the human view summarises what it finds.

use std::path::Path;

use serde::Serialize;
use serde_json::Value;
use terrarium_common::terminal::escape;

#[derive(Debug, Clone, Serialize)]
pub struct LastRun {
    pub path: String,
    /// The report, when present and valid JSON.
    pub value: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

pub fn read(path: &Path) -> LastRun {
    let shown = path.display().to_string();
    match terrarium_common::fs::read_regular_to_string(path) {
        Ok(text) => match serde_json::from_str(&text) {
            Ok(value) => LastRun { path: shown, value: Some(value), error: None },
            Err(err) => LastRun { path: shown, value: None, error: Some(format!("not valid JSON: {err}")) },
        },
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => LastRun { path: shown, value: None, error: None },
        Err(err) => LastRun { path: shown, value: None, error: Some(err.to_string()) },
    }
}

/// One line: scalars as `key=value`, lists and maps as counts; then, for a list or map
/// of per-item objects (routes, instances), one `name: fields` entry each. Every key
/// and value is escaped for the terminal: reports quote container labels verbatim.
pub fn summary(run: &LastRun) -> String {
    let Some(value) = &run.value else {
        return match &run.error {
            Some(err) => format!("unreadable report {} ({})", escape(&run.path), escape(err)),
            None => "no report yet".to_string(),
        };
    };
    let Some(map) = value.as_object() else {
        return escape(&value.to_string()).into_owned();
    };
    let mut parts = Vec::new();
    let mut details = Vec::new();
    for (key, item) in map {
        match item {
            Value::Array(items) => {
                parts.push(format!("{}: {}", escape(key), items.len()));
                for entry in items.iter().filter(|e| e.is_object()) {
                    details.push(format!("    {}: {}", escape(key), scalars(entry)));
                }
            }
            Value::Object(entries) => {
                parts.push(format!("{}: {}", escape(key), entries.len()));
                for (name, entry) in entries {
                    let shown =
                        if entry.is_object() { scalars(entry) } else { escape(&entry.to_string()).into_owned() };
                    details.push(format!("    {} {}: {shown}", escape(key), escape(name)));
                }
            }
            other => parts.push(format!("{}={}", escape(key), plain(other))),
        }
    }
    let mut text = parts.join(", ");
    for detail in details {
        text.push('\n');
        text.push_str(&detail);
    }
    text
}

fn scalars(value: &Value) -> String {
    value
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(_, v)| !v.is_object() && !v.is_array())
                .map(|(k, v)| format!("{}={}", escape(k), plain(v)))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

fn plain(value: &Value) -> String {
    match value {
        Value::String(text) => escape(text).into_owned(),
        other => escape(&other.to_string()).into_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn any_json_is_summarised_without_assuming_fields() {
        let run = LastRun {
            path: "r".into(),
            value: Some(
                serde_json::json!({"finished_at": "2026-11-28T18:00:00Z", "routes": [{"host": "a.example.com"}], "rejected": [], "instances": {"web": {"snapshot": "s1", "bytes": 10}}}),
            ),
            error: None,
        };
        let text = summary(&run);
        assert!(text.starts_with("finished_at=2026-11-28T18:00:00Z, instances: 1, rejected: 0, routes: 1"), "{text}");
        assert!(text.contains("instances web: bytes=10 snapshot=s1"), "{text}");
        assert!(text.contains("routes: host=a.example.com"), "{text}");
    }

    #[test]
    fn label_text_in_a_report_cannot_reach_the_terminal_raw() {
        let rule = "https://x\u{1b}]0;pwned\u{7}\r\u{1b}[2K\u{202e}moc.elpmaxe";
        let run = LastRun {
            path: "r".into(),
            value: Some(
                serde_json::json!({"ok": true, "rejected": [{"instance": "evil", "rule": rule}], "k\u{1b}": {"n\u{9b}": 1}}),
            ),
            error: None,
        };
        let text = summary(&run);
        assert!(!text.chars().any(|c| c != '\n' && terrarium_common::terminal::is_unsafe(c)), "{text:?}");
        assert!(text.contains(r"rule=https://x\u{1b}]0;pwned\u{7}\r\u{1b}[2K\u{202e}moc.elpmaxe"), "{text}");
        assert!(text.contains(r"k\u{1b} n\u{9b}: 1"), "{text}");
    }

    #[test]
    fn absent_and_broken_reports_say_so() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(summary(&read(&dir.path().join("none.json"))), "no report yet");
        std::fs::write(dir.path().join("bad.json"), "{").unwrap();
        assert!(summary(&read(&dir.path().join("bad.json"))).starts_with("unreadable report"));
    }
}
