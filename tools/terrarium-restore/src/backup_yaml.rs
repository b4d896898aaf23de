//! Rewriting an instance volume's `backup.yaml` so that `lxd recover` accepts the volume
//! under a new name. Pure: text in, text out.
//!
//! `lxd recover` (LXD 5.0) refuses a volume whose `backup.yaml` names another instance,
//! or lists snapshots the volume does not have, and it imports the `volatile.*` keys as
//! they are, so a renamed copy would keep the old instance's MAC address and UUID
//! (../shared/recipes/lxd-recover.md). So, for the new name:
//! - the instance's and the volume's `name` become the new name;
//! - the instance and volume snapshot lists keep only the snapshots on the new volume;
//! - the `volatile.*` keys go, as `lxc copy` does it (canonical/lxd `lxc/copy.go` strips
//!   every `volatile.*` key but `volatile.base_image`). LXD makes them again for the new
//!   instance: `volatile.uuid` when the instance is created if it is empty
//!   (`instance.CreateInternal`), `volatile.idmap.base` and `volatile.idmap.next` in the
//!   container driver's create (`lxcCreate`, from a fresh `findIdmap`, so an isolated
//!   idmap does not collide with the old instance's), `volatile.eth0.hwaddr` and
//!   `volatile.eth0.host_name` when the NIC is added or started.
//!   Two are kept: `volatile.base_image` (which image it came from, not who it is) and
//!   `volatile.last_state.idmap`, which records the ownership of the files on the volume:
//!   LXD reads it at start (`DiskIdmap`) to shift the files to the new instance's map,
//!   and without it would take the shifted files for unshifted ones.
//!
//! LXD writes the file with go-yaml, and re-serialising it with another YAML library
//! changes scalars LXD then refuses (PyYAML rewrote `created_at`). So this edits lines:
//! go-yaml's block style puts each mapping key on its own line, indented two spaces per
//! level, with a value's continuation lines indented deeper than its key, and sequences
//! at the indentation of their parent key (`- ` at column 0 for a top-level list).

use std::collections::BTreeSet;

/// The `volatile.*` keys a renamed copy keeps (see the module comment for why).
pub const KEPT_VOLATILE_KEYS: [&str; 2] = ["volatile.base_image", "volatile.last_state.idmap"];

/// Why a `backup.yaml` cannot be rewritten.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackupYamlError {
    #[error("backup.yaml has no `{section}` section; is this an LXD instance volume?")]
    MissingSection { section: &'static str },
    #[error("backup.yaml describes the instance {found}, not {expected}; it is not the volume of {expected}")]
    OtherInstance { expected: String, found: String },
    #[error("the volume has the snapshot {snapshot}, which backup.yaml does not describe; LXD would refuse it")]
    UnknownSnapshot { snapshot: String },
}

/// What the new instance is: its name and the LXD snapshots its volume really has
/// (short names, `s0` for `<dataset>@snapshot-s0` or `containers-snapshots/NAME/s0`).
#[derive(Debug, Clone)]
pub struct Rename<'a> {
    pub old: &'a str,
    pub new: &'a str,
    pub snapshots: &'a BTreeSet<String>,
}

/// `backup.yaml` of `rename.old`'s volume, rewritten for `rename.new` (see the module comment).
pub fn rewrite(text: &str, rename: &Rename<'_>) -> Result<String, BackupYamlError> {
    let sections = split_sections(text);
    let instance_key = ["container", "instance"]
        .into_iter()
        .find(|key| sections.iter().any(|s| s.key == *key))
        .ok_or(BackupYamlError::MissingSection { section: "container" })?;
    if !sections.iter().any(|s| s.key == "volume") {
        return Err(BackupYamlError::MissingSection { section: "volume" });
    }
    let mut described = BTreeSet::new();
    let mut out = String::with_capacity(text.len());
    for section in &sections {
        let body = match section.key {
            key if key == instance_key => {
                let fields = rename_field(&section.lines[1..], rename)?;
                section.lines[..1].iter().map(|l| l.to_string()).chain(drop_volatile(&fields)).collect()
            }
            "volume" => {
                let mut lines = vec![section.lines[0].to_string()];
                lines.extend(rename_field(&section.lines[1..], rename)?);
                lines
            }
            "snapshots" | "volume_snapshots" => {
                let (lines, names) = keep_snapshots(section, rename);
                described.extend(names);
                lines
            }
            _ => section.lines.iter().map(|l| l.to_string()).collect(),
        };
        for line in body {
            out.push_str(&line);
            out.push('\n');
        }
    }
    if let Some(snapshot) = rename.snapshots.iter().find(|s| !described.contains(*s)) {
        return Err(BackupYamlError::UnknownSnapshot { snapshot: snapshot.clone() });
    }
    if !text.ends_with('\n') {
        out.pop();
    }
    Ok(out)
}

/// A top-level key and its lines (the key's own line first).
struct Section<'t> {
    key: &'t str,
    lines: Vec<&'t str>,
}

fn split_sections(text: &str) -> Vec<Section<'_>> {
    let mut sections: Vec<Section<'_>> = Vec::new();
    for line in text.lines() {
        let top_level = !line.is_empty() && !line.starts_with([' ', '-', '#']);
        match sections.last_mut() {
            Some(section) if !top_level => section.lines.push(line),
            _ => sections.push(Section { key: line.split(':').next().unwrap_or_default(), lines: vec![line] }),
        }
    }
    sections
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// The value of `key: value` at exactly `depth` spaces, unquoted.
fn field<'l>(line: &'l str, depth: usize, key: &str) -> Option<&'l str> {
    if indent(line) != depth {
        return None;
    }
    let value = line[depth..].strip_prefix(key)?.strip_prefix(':')?.trim();
    Some(value.trim_matches(|c| c == '"' || c == '\''))
}

/// Lines of a mapping at depth 2 with its `name` (which must be `rename.old`) replaced.
fn rename_field(lines: &[&str], rename: &Rename<'_>) -> Result<Vec<String>, BackupYamlError> {
    lines
        .iter()
        .map(|line| match field(line, 2, "name") {
            Some(found) if found == rename.old => Ok(format!("  name: {}", rename.new)),
            Some(found) => {
                Err(BackupYamlError::OtherInstance { expected: rename.old.to_string(), found: found.to_string() })
            }
            None => Ok(line.to_string()),
        })
        .collect()
}

/// Drop the `volatile.*` entries (but [`KEPT_VOLATILE_KEYS`]) of the `config` and
/// `expanded_config` mappings of an instance body (fields at depth 2, entries at 4),
/// with their continuation lines. An emptied mapping becomes `{}`.
fn drop_volatile(lines: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(lines.len());
    let mut in_config = false;
    let mut dropping = false;
    let mut kept_entries = 0;
    let mut config_line = 0;
    for line in lines {
        let depth = indent(line);
        if depth <= 2 {
            close_mapping(&mut out, in_config, kept_entries, config_line);
            in_config = matches!(line.trim_end(), "  config:" | "  expanded_config:") && depth == 2;
            dropping = false;
            kept_entries = 0;
            config_line = out.len();
            out.push(line.clone());
            continue;
        }
        if in_config && depth == 4 {
            let key = line.trim_start().split(':').next().unwrap_or_default();
            dropping = key.starts_with("volatile.") && !KEPT_VOLATILE_KEYS.contains(&key);
            if !dropping {
                kept_entries += 1;
            }
        }
        if !(in_config && dropping) {
            out.push(line.clone());
        }
    }
    close_mapping(&mut out, in_config, kept_entries, config_line);
    out
}

fn close_mapping(out: &mut [String], in_config: bool, kept_entries: usize, config_line: usize) {
    if in_config && kept_entries == 0 {
        out[config_line].push_str(" {}");
    }
}

/// A top-level snapshot list with only the items named in `rename.snapshots`, their
/// identity dropped like the instance's; also the names the list described.
fn keep_snapshots(section: &Section<'_>, rename: &Rename<'_>) -> (Vec<String>, Vec<String>) {
    let mut items: Vec<Vec<String>> = Vec::new();
    for line in &section.lines[1..] {
        match (line.starts_with("- "), items.last_mut()) {
            (false, Some(item)) => item.push(line.to_string()),
            // The first field of an item shares the `- ` line: give it depth 2 like the others.
            _ => items.push(vec![format!("  {}", &line[line.len().min(2)..])]),
        }
    }
    let mut names = Vec::new();
    let mut kept = Vec::new();
    for item in items {
        let Some(name) = item.iter().find_map(|l| field(l, 2, "name")) else { continue };
        // Instance snapshots may be named `<instance>/<snapshot>`.
        let short = name.rsplit('/').next().unwrap_or(name).to_string();
        names.push(short.clone());
        if !rename.snapshots.contains(&short) {
            continue;
        }
        let renamed: Vec<String> = item
            .iter()
            .map(|l| match field(l, 2, "name") {
                Some(n) if n.contains('/') => format!("  name: {}/{short}", rename.new),
                _ => l.clone(),
            })
            .collect();
        let mut body = drop_volatile(&renamed);
        if let Some(first) = body.first_mut() {
            *first = format!("- {}", &first[2..]);
        }
        kept.push(body);
    }
    let key = section.key;
    let lines = if kept.is_empty() {
        vec![format!("{key}: []")]
    } else {
        std::iter::once(format!("{key}:")).chain(kept.into_iter().flatten()).collect()
    };
    (lines, names)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// `backup.yaml` of a stopped container `web` with one snapshot `s0`, written by the
    /// real LXD 5.0.2 (Debian 12, dir storage, `security.idmap.isolated=true`, so the
    /// files on the volume are shifted and the idmap keys are set).
    const FIXTURE: &str = include_str!("../tests/fixtures/lxd-5.0.2-backup.yaml");

    fn rewrite_for(new: &str, snapshots: &[&str]) -> Result<String, BackupYamlError> {
        let snapshots: BTreeSet<String> = snapshots.iter().map(|s| s.to_string()).collect();
        rewrite(FIXTURE, &Rename { old: "web", new, snapshots: &snapshots })
    }

    fn parse(text: &str) -> serde_json::Value {
        serde_saphyr::from_str(text).unwrap()
    }

    fn volatile_keys(config: &serde_json::Value) -> Vec<&str> {
        config.as_object().unwrap().keys().map(String::as_str).filter(|k| k.starts_with("volatile.")).collect()
    }

    #[test]
    fn a_copy_is_described_by_its_new_name_no_snapshots_and_no_copied_identity() {
        let out = rewrite_for("web2", &[]).unwrap();
        insta::assert_snapshot!(out);
        let (before, after) = (parse(FIXTURE), parse(&out));
        assert_eq!(after["container"]["name"], "web2");
        assert_eq!(after["volume"]["name"], "web2");
        assert_eq!(after["snapshots"], serde_json::json!([]));
        assert_eq!(after["volume_snapshots"], serde_json::json!([]));
        for config in ["config", "expanded_config"] {
            assert_eq!(volatile_keys(&after["container"][config]), KEPT_VOLATILE_KEYS, "{config}");
            for key in KEPT_VOLATILE_KEYS {
                assert_eq!(
                    after["container"][config][key], before["container"][config][key],
                    "{config}.{key} is kept as it was"
                );
            }
        }
        // Everything else is as LXD wrote it, to the byte: the rewrite only drops lines,
        // except the two names and the two emptied lists.
        let changed: Vec<&str> = out.lines().filter(|l| !FIXTURE.lines().any(|f| f == *l)).collect();
        assert_eq!(changed, ["  name: web2", "snapshots: []", "  name: web2", "volume_snapshots: []"]);
        let mut expected = before.clone();
        for config in ["config", "expanded_config"] {
            let map = expected["container"][config].as_object_mut().unwrap();
            map.retain(|k, _| !k.starts_with("volatile.") || KEPT_VOLATILE_KEYS.contains(&k.as_str()));
        }
        expected["container"]["name"] = "web2".into();
        expected["volume"]["name"] = "web2".into();
        expected["snapshots"] = serde_json::json!([]);
        expected["volume_snapshots"] = serde_json::json!([]);
        assert_eq!(after, expected);
    }

    #[test]
    fn a_snapshot_the_new_volume_has_stays_described_without_identity() {
        let after = parse(&rewrite_for("web2", &["s0"]).unwrap());
        let before = parse(FIXTURE);
        assert_eq!(after["snapshots"].as_array().unwrap().len(), 1);
        assert_eq!(after["snapshots"][0]["name"], "s0");
        assert_eq!(after["snapshots"][0]["created_at"], before["snapshots"][0]["created_at"]);
        assert_eq!(volatile_keys(&after["snapshots"][0]["config"]), KEPT_VOLATILE_KEYS);
        assert_eq!(after["volume_snapshots"], before["volume_snapshots"]);
    }

    #[test]
    fn the_volume_of_another_instance_or_a_snapshot_it_does_not_describe_is_refused() {
        let snapshots = BTreeSet::new();
        let err = rewrite(FIXTURE, &Rename { old: "db", new: "db2", snapshots: &snapshots }).unwrap_err();
        assert_eq!(err, BackupYamlError::OtherInstance { expected: "db".into(), found: "web".into() });
        assert_eq!(
            rewrite_for("web2", &["s0", "s1"]).unwrap_err(),
            BackupYamlError::UnknownSnapshot { snapshot: "s1".into() }
        );
        let not_lxd = rewrite("pool:\n  name: default\n", &Rename { old: "web", new: "web2", snapshots: &snapshots })
            .unwrap_err();
        assert_eq!(not_lxd, BackupYamlError::MissingSection { section: "container" });
    }

    #[test]
    fn a_value_continued_on_more_lines_goes_with_its_key_and_an_emptied_config_is_empty() {
        let text = "container:\n  config:\n    volatile.idmap.next: '[{\"Isuid\":true,\n      \"Hostid\":165536}]'\n    volatile.uuid: x\n  name: web\nvolume:\n  name: web\n";
        let snapshots = BTreeSet::new();
        let out = rewrite(text, &Rename { old: "web", new: "web2", snapshots: &snapshots }).unwrap();
        assert_eq!(out, "container:\n  config: {}\n  name: web2\nvolume:\n  name: web2\n");
    }

    #[test]
    fn a_rewritten_file_can_be_rewritten_again() {
        let once = rewrite_for("web2", &[]).unwrap();
        let snapshots = BTreeSet::new();
        let twice = rewrite(&once, &Rename { old: "web2", new: "web3", snapshots: &snapshots }).unwrap();
        assert_eq!(twice, once.replace("name: web2", "name: web3"));
    }
}
