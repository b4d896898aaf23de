//! The one module through which Terrarium reads and writes YAML.
//!
//! `serde_yaml` is deprecated upstream; we use `serde-saphyr`, which is maintained,
//! panic-free on malformed input and reports line and column. Keeping every call
//! here means a future switch touches one file.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A YAML document that could not be read into the expected type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}{}: {}{message}", location_suffix(*.line, *.column), key_prefix(.key_path))]
pub struct YamlError {
    /// Where the text came from, such as a file path.
    pub origin: String,
    /// 1-based line and column, when the parser knows them.
    pub line: Option<u64>,
    pub column: Option<u64>,
    /// Dotted path of the offending key (`domains.manage`), when known.
    pub key_path: Option<String>,
    pub message: String,
}

fn location_suffix(line: Option<u64>, column: Option<u64>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(":{l}:{c}"),
        (Some(l), None) => format!(":{l}"),
        _ => String::new(),
    }
}

fn key_prefix(key_path: &Option<String>) -> String {
    match key_path {
        Some(path) if !path.is_empty() && path != "." => format!("{path}: "),
        _ => String::new(),
    }
}

/// Parse `text` into `T`, naming `origin` in errors.
///
/// On failure the error carries line and column from the YAML parser and, when the
/// document is well-formed YAML but does not fit `T`, the dotted path of the key.
pub fn from_str<T: DeserializeOwned>(text: &str, origin: &str) -> Result<T, YamlError> {
    match serde_saphyr::from_str::<T>(text) {
        Ok(value) => Ok(value),
        Err(err) => {
            let location = err.location();
            let (line, column) = match location {
                Some(loc) if loc.line() > 0 => (Some(loc.line()), Some(loc.column())),
                _ => (None, None),
            };
            let (key_path, message) = match key_path_of::<T>(text) {
                Some((path, message)) => (Some(path), message),
                None => (line.and_then(|l| key_path_at_line(text, l)), parser_message(&err.to_string())),
            };
            Err(YamlError { origin: origin.to_string(), line, column, key_path, message })
        }
    }
}

/// Re-read a well-formed document as a generic value to learn which key failed.
fn key_path_of<T: DeserializeOwned>(text: &str) -> Option<(String, String)> {
    let value: serde_json::Value = serde_saphyr::from_str(text).ok()?;
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(_) => None,
        Err(err) => {
            let path = err.path().to_string();
            let message = type_for_operators(&err.inner().to_string(), path == "." || path.is_empty());
            Some((path, message))
        }
    }
}

/// serde's type errors name Rust types (`expected u16`, `expected struct Domains`), which
/// an operator cannot know; say what the value must be instead. `top` is the document
/// itself, where an empty file is the usual cause.
fn type_for_operators(message: &str, top: bool) -> String {
    let Some((found, expected)) = message.rsplit_once(", expected ") else {
        return message.to_string();
    };
    let wanted = match expected {
        "u8" => "a whole number from 0 to 255",
        "u16" => "a whole number from 0 to 65535",
        "u32" => "a whole number from 0 to 4294967295",
        "u64" => "a whole number, 0 or more",
        "a boolean" => "true or false",
        "a string" => "a text value",
        "a sequence" => "a list",
        e if e.starts_with("struct ") || e == "a map" => "a mapping of settings (`key: value` lines indented under it)",
        _ => return message.to_string(),
    };
    let found = found.strip_prefix("invalid type: ").or_else(|| found.strip_prefix("invalid value: ")).unwrap_or(found);
    if top && found == "null" {
        return "the file is empty; it must hold the settings (`schema_version: 2`, `domains:`, ...): restore it from a copy, or run `terrarium-install` to write it".to_string();
    }
    let found = match found {
        "null" => "nothing",
        "sequence" => "a list",
        "map" => "a mapping",
        other => other,
    };
    if top {
        format!("the file holds {found}; it must be {wanted}")
    } else {
        format!("got {found}; it must be {wanted}")
    }
}

/// The parser's message without its own `error: line L column C:` prefix, which we
/// already show as `origin:L:C`, and in an operator's words.
fn parser_message(message: &str) -> String {
    let first = message.lines().next().unwrap_or(message).trim();
    let without_error = first.strip_prefix("error: ").unwrap_or(first);
    let message = match without_error.strip_prefix("line ").and_then(|rest| rest.split_once(": ")) {
        Some((position, rest)) if position.contains(" column ") => rest,
        _ => without_error,
    };
    for_operators(message)
}

/// Some parser messages speak to the programmer who calls the library
/// (`set DuplicateKeyPolicy in Options`, `use from_str_multiple`); say instead what
/// is wrong with the file and how to fix it.
fn for_operators(message: &str) -> String {
    const DUPLICATE: &str = "duplicate mapping key";
    if let Some(rest) = message.strip_prefix(DUPLICATE) {
        let key = rest.strip_prefix(": ").and_then(|k| k.split_once(", set DuplicateKeyPolicy")).map(|(key, _)| key);
        return match key {
            Some(key) => format!("the key `{key}` appears twice here; keep one of them"),
            None => "a key appears twice here; keep one of them".to_string(),
        };
    }
    if message.starts_with("multiple YAML documents detected")
        || message.starts_with("only single YAML document expected")
    {
        return "the file holds more than one YAML document (a `---` line after the first); keep one document"
            .to_string();
    }
    message.to_string()
}

/// For a syntax error, the dotted path of the block-mapping keys enclosing `line`
/// (1-based), read from indentation: enough to name the key a person must fix.
fn key_path_at_line(text: &str, line: u64) -> Option<String> {
    let mut stack: Vec<(usize, &str)> = Vec::new();
    for raw in text.lines().take(usize::try_from(line).ok()?) {
        let trimmed = raw.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = raw.len() - trimmed.len();
        let Some((key, _)) = trimmed.split_once(':') else {
            continue;
        };
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            continue;
        }
        while stack.last().is_some_and(|(depth, _)| *depth >= indent) {
            stack.pop();
        }
        stack.push((indent, key));
    }
    let path: Vec<&str> = stack.iter().map(|(_, key)| *key).collect();
    (!path.is_empty()).then(|| path.join("."))
}

/// Render `value` as YAML.
pub fn to_string<T: Serialize>(value: &T) -> Result<String, YamlError> {
    serde_saphyr::to_string(value).map_err(|err| YamlError {
        origin: "<serializer>".into(),
        line: None,
        column: None,
        key_path: None,
        message: err.to_string(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn type_errors_say_what_the_value_must_be_not_the_rust_type() {
        let cases = [
            ("invalid type: null, expected struct Config", true, "the file is empty; it must hold the settings"),
            ("invalid type: sequence, expected struct Config", true, "the file holds a list; it must be a mapping"),
            (
                "invalid type: string \"example.com\", expected struct Domains",
                false,
                "got string \"example.com\"; it must be a mapping of settings",
            ),
            (
                "invalid value: integer `70000`, expected u16",
                false,
                "got integer `70000`; it must be a whole number from 0 to 65535",
            ),
            (
                "invalid value: integer `-5`, expected u32",
                false,
                "got integer `-5`; it must be a whole number from 0 to 4294967295",
            ),
            ("invalid type: string \"yes please\", expected a boolean", false, "it must be true or false"),
            ("unknown variant `x`, expected one of `a`, `b`", false, "unknown variant `x`, expected one of `a`, `b`"),
        ];
        for (message, top, want) in cases {
            let said = super::type_for_operators(message, top);
            assert!(said.contains(want), "{message}: {said}");
            assert!(!said.contains("struct ") && !said.contains(" u16") && !said.contains(" u32"), "{said}");
        }
    }

    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, Serialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        name: String,
    }
    #[derive(Debug, Deserialize, Serialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        inner: Inner,
        count: u32,
    }

    #[test]
    fn round_trips() {
        let value = Outer { inner: Inner { name: "a".into() }, count: 3 };
        let text = to_string(&value).unwrap();
        assert_eq!(from_str::<Outer>(&text, "t").unwrap(), value);
    }

    #[test]
    fn unknown_key_names_its_path_and_line() {
        let err = from_str::<Outer>("count: 1\ninner:\n  name: a\n  nmae: b\n", "c.yaml").unwrap_err();
        let shown = err.to_string();
        assert!(shown.starts_with("c.yaml:4:"), "{shown}");
        assert!(shown.contains("inner.nmae: unknown field `nmae`"), "{shown}");
    }

    #[test]
    fn duplicate_keys_and_extra_documents_are_explained_in_the_operators_words() {
        let err = from_str::<Outer>("count: 1\ncount: 2\ninner:\n  name: a\n", "c.yaml").unwrap_err();
        let shown = err.to_string();
        assert!(shown.starts_with("c.yaml:2:"), "{shown}");
        assert!(shown.ends_with("the key `count` appears twice here; keep one of them"), "{shown}");
        let err = from_str::<Outer>("count: 1\ninner:\n  name: a\n---\ncount: 2\n", "c.yaml").unwrap_err();
        let shown = err.to_string();
        assert!(shown.starts_with("c.yaml"), "{shown}");
        assert!(
            shown.ends_with(
                "the file holds more than one YAML document (a `---` line after the first); keep one document"
            ),
            "{shown}"
        );
        for library_words in ["DuplicateKeyPolicy", "from_str_multiple", "Options"] {
            assert!(!shown.contains(library_words), "{shown}");
        }
    }

    #[test]
    fn syntax_error_has_a_location() {
        let err = from_str::<Outer>("count: [1\ninner: {", "c.yaml").unwrap_err();
        assert!(err.line.is_some(), "{err}");
    }
}
