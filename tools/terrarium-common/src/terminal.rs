//! Making untrusted text safe to print on a person's terminal.
//!
//! Labels, instance names and report fields come from containers and other tools; a
//! string with ESC (colours, OSC 8 links, window titles, cursor moves), `\r` (which
//! overwrites the start of a line) or a bidirectional override (which reorders what
//! is shown, "Trojan Source") must not reach root's terminal as it is. Everything
//! printed for people goes through [`escape`]; JSON output stays JSON (serde escapes
//! control characters itself).

use std::borrow::Cow;
use std::fmt::Write;

/// True for the characters [`escape`] replaces: C0 controls (tab and newline
/// included), DEL, C1 controls, the bidirectional embeddings, overrides and isolates
/// (U+202A-U+202E, U+2066-U+2069), the bidi marks (U+200E, U+200F, U+061C) and the
/// Unicode line and paragraph separators (U+2028, U+2029).
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{2028}' | '\u{2029}')
}

/// `text` with every [`is_unsafe`] character written as a visible escape: `\n`, `\r`,
/// `\t`, and `\u{1b}` for the rest (Rust's notation). Text without such characters is
/// returned as it is, without a copy. A backslash already in `text` is kept, so the
/// result is for reading, not for parsing back.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_unsafe(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// [`escape`] for each line of `text`, keeping its line breaks (`\n`): for multi-line
/// output such as diffs. A `\r` before the `\n` is escaped like any other.
pub fn escape_lines(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c != '\n' && is_unsafe(c)) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(text.split('\n').map(escape).collect::<Vec<_>>().join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        for text in ["", "app.example.com", "ü ß 日本 🙂", r"C:\path"] {
            assert!(matches!(escape(text), Cow::Borrowed(t) if t == text));
        }
    }

    #[test]
    fn controls_and_bidi_characters_become_visible() {
        assert_eq!(escape("a\u{1b}]0;owned\u{7}b"), r"a\u{1b}]0;owned\u{7}b");
        assert_eq!(escape("ok\rFAKE\n\t"), r"ok\rFAKE\n\t");
        assert_eq!(escape("\u{7f}\u{85}\u{9b}"), r"\u{7f}\u{85}\u{9b}");
        assert_eq!(escape("x\u{202e}gpj.exe\u{202c}"), r"x\u{202e}gpj.exe\u{202c}");
        for c in [
            '\u{202a}', '\u{202b}', '\u{202d}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}', '\u{200e}', '\u{200f}',
            '\u{61c}', '\u{2028}',
        ] {
            let escaped = escape(&c.to_string()).into_owned();
            assert!(escaped.starts_with("\\u{") && !escaped.chars().any(is_unsafe), "{c:?} -> {escaped}");
        }
    }

    #[test]
    fn escaping_is_idempotent_and_leaves_nothing_unsafe() {
        let nasty: String = (0u32..0x300).chain(0x2000..0x2070).filter_map(char::from_u32).collect();
        let once = escape(&nasty).into_owned();
        assert!(!once.chars().any(is_unsafe));
        assert_eq!(escape(&once), once);
    }

    #[test]
    fn lines_keep_their_breaks() {
        assert_eq!(escape_lines("+a\u{1b}[2J\n-b\r\n"), "+a\\u{1b}[2J\n-b\\r\n");
        assert!(matches!(escape_lines("a\nb\n"), Cow::Borrowed(_)));
    }
}
