//! A strict reader of the text exposition format, for the files [`super::render`]
//! writes: reading a value back from the previous run's file, and the tests' proof
//! that every file parses (promtool is not on the test machines). Stricter than
//! Prometheus where we never write something (no trailing comma in a label set, no
//! timestamps, no empty lines), never looser.

use std::collections::{BTreeSet, HashSet};

use super::{is_label_name, is_metric_name};

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Labels,
    pub value: f64,
}

/// Every sample of `text`, or the first line that breaks the grammar: `# HELP` and
/// `# TYPE` at most once per family and before its samples, a family's samples
/// together, no series twice, names and escapes as the format defines them.
pub fn parse(text: &str) -> Result<Vec<Sample>, String> {
    if !text.is_empty() && !text.ends_with('\n') {
        return Err("the last line does not end with a newline".into());
    }
    let mut samples = Vec::new();
    let mut help = HashSet::new();
    let mut typed = HashSet::new();
    // Families whose block has ended: a sample of one of them later is out of place.
    let mut closed = HashSet::new();
    let mut current: Option<String> = None;
    let mut series = BTreeSet::new();
    for (index, line) in text.lines().enumerate() {
        let at = |problem: String| format!("line {}: {problem}: {line:?}", index + 1);
        let family = if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, doc) = rest.split_once(' ').ok_or_else(|| at("HELP without text".into()))?;
            check_help_escapes(doc).map_err(at)?;
            if !help.insert(name.to_string()) {
                return Err(at(format!("a second HELP for {name}")));
            }
            name.to_string()
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').ok_or_else(|| at("TYPE without a type".into()))?;
            if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                return Err(at(format!("unknown type {kind}")));
            }
            if !typed.insert(name.to_string()) {
                return Err(at(format!("a second TYPE for {name}")));
            }
            if series.iter().any(|(n, _): &(String, Labels)| n == name) {
                return Err(at(format!("TYPE of {name} after its samples")));
            }
            name.to_string()
        } else if line.starts_with('#') {
            continue;
        } else {
            let sample = parse_sample(line).map_err(at)?;
            let key = (sample.name.clone(), sample.labels.clone());
            if !series.insert(key) {
                return Err(at("the same series twice".into()));
            }
            let name = sample.name.clone();
            samples.push(sample);
            name
        };
        if !is_metric_name(&family) {
            return Err(at(format!("invalid metric name {family:?}")));
        }
        if current.as_deref() != Some(family.as_str()) {
            if closed.contains(&family) {
                return Err(at(format!("the lines of {family} are not together")));
            }
            if let Some(previous) = current.replace(family.clone()) {
                closed.insert(previous);
            }
        }
    }
    Ok(samples)
}

/// `name{label="value",...} value`.
fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line.find(['{', ' ']).ok_or("a sample without a value")?;
    let name = &line[..name_end];
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let (parsed, after) = parse_labels(inner)?;
        labels = parsed;
        rest = after;
    }
    let value = rest.strip_prefix(' ').ok_or("no space before the value")?;
    if value.contains(' ') {
        return Err("more than a value after the name (a timestamp, or a second space)".into());
    }
    let value = match value {
        "NaN" => f64::NAN,
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        number if !number.is_empty() && number.chars().all(|c| c.is_ascii_digit() || "+-.eE".contains(c)) => {
            number.parse::<f64>().map_err(|_| format!("{number:?} is not a number"))?
        }
        other => return Err(format!("{other:?} is not a number")),
    };
    Ok(Sample { name: name.to_string(), labels, value })
}

/// A sample's labels, names and values, in their order.
type Labels = Vec<(String, String)>;

/// The labels after `{`, and what follows the closing `}`.
fn parse_labels(mut text: &str) -> Result<(Labels, &str), String> {
    let mut labels: Labels = Vec::new();
    if let Some(after) = text.strip_prefix('}') {
        return Ok((labels, after));
    }
    loop {
        let (name, rest) = text.split_once("=\"").ok_or("a label without =\"")?;
        if !is_label_name(name) {
            return Err(format!("invalid label name {name:?}"));
        }
        if labels.iter().any(|(n, _)| n == name) {
            return Err(format!("label {name} twice"));
        }
        let (value, rest) = quoted(rest)?;
        labels.push((name.to_string(), value));
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((labels, after));
        }
        text = rest.strip_prefix(',').ok_or("labels not separated by a comma")?;
        if text.starts_with('}') {
            return Err("a trailing comma in the labels".into());
        }
    }
}

/// A label value up to its closing quote, unescaped, and the text after the quote.
fn quoted(text: &str) -> Result<(String, &str), String> {
    let mut value = String::new();
    let mut chars = text.char_indices();
    while let Some((index, c)) = chars.next() {
        match c {
            '"' => return Ok((value, &text[index + 1..])),
            '\\' => match chars.next() {
                Some((_, '\\')) => value.push('\\'),
                Some((_, '"')) => value.push('"'),
                Some((_, 'n')) => value.push('\n'),
                other => return Err(format!("an invalid escape \\{}", other.map_or(' ', |(_, c)| c))),
            },
            '\n' => return Err("a raw newline in a label value".into()),
            c => value.push(c),
        }
    }
    Err("a label value without its closing quote".into())
}

/// HELP text may escape only `\` and newline.
fn check_help_escapes(text: &str) -> Result<(), String> {
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('\\' | 'n') => {}
                other => return Err(format!("an invalid escape \\{}", other.unwrap_or(' '))),
            }
        }
    }
    Ok(())
}
