//! The managed part of Traefik's static file: the TCP/UDP entrypoints of published
//! ports, between two marker lines inside the top-level `entryPoints:` mapping.
//! Ansible renders the rest of the file and keeps this block verbatim.

use std::collections::BTreeSet;

use terrarium_common::ports::traefik::{MANAGED_BEGIN, MANAGED_END};

use crate::label::Protocol;
use crate::plan::entrypoint_name;

/// Why the managed block could not be found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {problem}; run `terrarium-reconfigure` to render Traefik's static config again")]
pub struct StaticFileError {
    pub file: String,
    pub problem: String,
}

/// The lines of the managed block for these ports, sorted by port then protocol.
pub fn block_lines(ports: &BTreeSet<(u16, Protocol)>) -> Vec<String> {
    let mut lines = Vec::with_capacity(ports.len() * 2);
    for (port, protocol) in ports {
        let suffix = match protocol {
            Protocol::Tcp => "",
            Protocol::Udp => "/udp",
        };
        lines.push(format!("  {}:", entrypoint_name(*protocol, *port)));
        lines.push(format!("    address: \":{port}{suffix}\""));
    }
    lines
}

/// The ports of the entrypoints in the managed block now (`tcp-10022:` lines): the
/// ports Traefik itself holds for published rules. Empty when the markers are missing
/// ([`splice`] reports that).
pub fn current_ports(text: &str) -> BTreeSet<(u16, Protocol)> {
    let lines = text
        .lines()
        .skip_while(|line| line.trim() != MANAGED_BEGIN)
        .skip(1)
        .take_while(|line| line.trim() != MANAGED_END);
    lines
        .filter_map(|line| {
            let name = line.trim().strip_suffix(':')?;
            let (protocol, port) = name.split_once('-')?;
            let protocol = match protocol {
                "tcp" => Protocol::Tcp,
                "udp" => Protocol::Udp,
                _ => return None,
            };
            Some((port.parse().ok()?, protocol))
        })
        .collect()
}

/// The static file with its managed block replaced by `lines`, and whether the block
/// changed. Everything outside the block is kept byte for byte.
pub fn splice(text: &str, lines: &[String], file: &str) -> Result<(String, bool), StaticFileError> {
    let error = |problem: &str| StaticFileError { file: file.to_string(), problem: problem.to_string() };
    let all: Vec<&str> = text.split_inclusive('\n').collect();
    let begin = all
        .iter()
        .position(|line| line.trim() == MANAGED_BEGIN)
        .ok_or_else(|| error(&format!("the marker line `{MANAGED_BEGIN}` is missing")))?;
    let end = all[begin..]
        .iter()
        .position(|line| line.trim() == MANAGED_END)
        .map(|offset| begin + offset)
        .ok_or_else(|| error(&format!("the marker line `{MANAGED_END}` is missing after `{MANAGED_BEGIN}`")))?;
    // The block must sit inside the top-level entryPoints mapping: the nearest top-level
    // key above the begin marker is `entryPoints:`, and no top-level key interrupts it.
    let top_level = |line: &str| !line.starts_with([' ', '\t', '#', '\n', '\r']) && !line.trim().is_empty();
    let owner = all[..begin].iter().rev().find(|line| top_level(line));
    if owner.map(|line| line.trim_end()) != Some("entryPoints:") {
        return Err(error("the managed markers are not inside the top-level `entryPoints:` mapping"));
    }
    if all[begin..end].iter().any(|line| top_level(line)) {
        return Err(error("a top-level key stands between the managed markers"));
    }
    let old: Vec<&str> = all[begin + 1..end].iter().map(|line| line.trim_end_matches(['\n', '\r'])).collect();
    let changed = old.len() != lines.len() || old.iter().zip(lines).any(|(a, b)| *a != b.as_str());
    let mut out = String::with_capacity(text.len() + lines.len() * 32);
    for line in &all[..=begin] {
        out.push_str(line);
    }
    if !out.ends_with('\n') {
        out.push('\n');
    }
    for line in lines {
        out.push_str(line);
        out.push('\n');
    }
    for line in &all[end..] {
        out.push_str(line);
    }
    Ok((out, changed))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn file(block: &str) -> String {
        format!(
            "global:\n  checkNewVersion: false\nentryPoints:\n  web:\n    address: \":80\"\n  {MANAGED_BEGIN}\n{block}  {MANAGED_END}\n  websecure:\n    address: \":443\"\nproviders:\n  file:\n    directory: /etc/traefik/dynamic\n"
        )
    }

    #[test]
    fn the_block_is_replaced_and_the_rest_kept() {
        let ports: BTreeSet<_> = [(10022, Protocol::Tcp), (1053, Protocol::Udp), (1053, Protocol::Tcp)].into();
        let lines = block_lines(&ports);
        let (out, changed) = splice(&file(""), &lines, "traefik.yml").unwrap();
        assert!(changed);
        assert_eq!(
            out,
            file(
                "  tcp-1053:\n    address: \":1053\"\n  udp-1053:\n    address: \":1053/udp\"\n  tcp-10022:\n    address: \":10022\"\n"
            )
        );
        let (again, changed) = splice(&out, &lines, "traefik.yml").unwrap();
        assert!(!changed);
        assert_eq!(again, out);
        assert_eq!(current_ports(&out), ports);
        assert!(current_ports(&file("")).is_empty());
        let (empty, changed) = splice(&out, &[], "traefik.yml").unwrap();
        assert!(changed);
        assert_eq!(empty, file(""));
    }

    #[test]
    fn missing_or_misplaced_markers_name_the_file_and_the_fix() {
        let err = splice("entryPoints:\n  web: {}\n", &[], "/etc/traefik/traefik.yml").unwrap_err();
        assert!(
            err.to_string().contains("/etc/traefik/traefik.yml") && err.to_string().contains("terrarium-reconfigure"),
            "{err}"
        );
        let misplaced = format!("providers:\n  {MANAGED_BEGIN}\n  {MANAGED_END}\n");
        assert!(splice(&misplaced, &[], "f").unwrap_err().problem.contains("entryPoints"));
        let no_end = format!("entryPoints:\n  {MANAGED_BEGIN}\n");
        assert!(splice(&no_end, &[], "f").unwrap_err().problem.contains("END"));
    }
}
