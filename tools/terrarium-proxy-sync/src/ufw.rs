//! ufw allow rules for published TCP/UDP ports, reconciled against what ufw itself
//! reports (not a state file). Only rules carrying [`MARKER`] as their comment are
//! ever deleted; every other rule (SSH, the operator's) is left alone.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::Serialize;
use terrarium_common::process::{Cmd, ProcessError};

use crate::label::Protocol;

/// The comment on every rule proxy sync adds.
pub const MARKER: &str = "terrarium-proxy-sync";

/// A rule ufw reports, reduced to what reconciliation needs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct UfwRule {
    /// The `To` column without ` (v6)`, e.g. `10022/tcp`, `22`, `Anywhere on eth0`.
    pub to: String,
    pub action: String,
    pub from: String,
    pub comment: Option<String>,
}

impl UfwRule {
    fn marked(&self) -> bool {
        self.comment.as_deref() == Some(MARKER)
    }

    /// The port and protocol of a plain `PORT/PROTO` allow-from-anywhere rule.
    fn simple_port(&self) -> Option<(u16, Protocol)> {
        if !self.action.starts_with("ALLOW") || self.from != "Anywhere" {
            return None;
        }
        let (port, proto) = self.to.split_once('/')?;
        let protocol = match proto {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            _ => return None,
        };
        Some((port.parse().ok()?, protocol))
    }

    /// A plain `PORT` (both protocols) allow-from-anywhere rule.
    fn opens(&self, port: u16, protocol: Protocol) -> bool {
        self.simple_port() == Some((port, protocol))
            || (self.action.starts_with("ALLOW") && self.from == "Anywhere" && self.to == port.to_string())
    }
}

/// What to change in ufw.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UfwChanges {
    /// `PORT/PROTO` rules to add with the marker.
    pub add: Vec<String>,
    /// Marked `PORT/PROTO` rules no longer published.
    pub delete: Vec<String>,
    /// Marked rules of a shape proxy sync never writes; left alone, reported.
    pub ignored: Vec<String>,
}

impl UfwChanges {
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.delete.is_empty()
    }
}

/// Parse `ufw status` (active: the rule table) or `ufw show added` (inactive).
pub fn parse_status(text: &str) -> Vec<UfwRule> {
    let mut rules = BTreeSet::new();
    for line in text.lines() {
        let line = line.trim_end();
        if let Some(rest) = line.strip_prefix("ufw ") {
            if let Some(rule) = parse_added(rest) {
                rules.insert(rule);
            }
            continue;
        }
        if let Some(rule) = parse_table_line(line) {
            rules.insert(rule);
        }
    }
    rules.into_iter().collect()
}

const ACTIONS: [&str; 4] = ["ALLOW", "DENY", "REJECT", "LIMIT"];

/// `10022/tcp (v6)   ALLOW IN    Anywhere (v6)   # terrarium-proxy-sync`
fn parse_table_line(line: &str) -> Option<UfwRule> {
    let (body, comment) = match line.find(" # ") {
        Some(at) => (&line[..at], Some(line[at + 3..].trim().to_string())),
        None => (line, None),
    };
    let words: Vec<&str> = body.split_whitespace().collect();
    let action_at = words.iter().position(|w| ACTIONS.contains(w))?;
    if action_at == 0 {
        return None;
    }
    let mut from_at = action_at + 1;
    if words.get(from_at).is_some_and(|w| *w == "IN" || *w == "OUT" || *w == "FWD") {
        from_at += 1;
    }
    let strip_v6 = |s: String| s.strip_suffix(" (v6)").map(str::to_string).unwrap_or(s);
    Some(UfwRule {
        to: strip_v6(words[..action_at].join(" ")),
        action: words[action_at..from_at].join(" "),
        from: strip_v6(words[from_at..].join(" ")),
        comment,
    })
}

/// `allow 10022/tcp comment 'terrarium-proxy-sync'` from `ufw show added`.
fn parse_added(rest: &str) -> Option<UfwRule> {
    let (body, comment) = match rest.find(" comment ") {
        Some(at) => (&rest[..at], Some(rest[at + 9..].trim().trim_matches('\'').to_string())),
        None => (rest, None),
    };
    let words: Vec<&str> = body.split_whitespace().collect();
    let action = words.first()?.to_ascii_uppercase();
    if !ACTIONS.contains(&action.as_str()) {
        return None;
    }
    // Only the simple `allow PORT[/PROTO]` form maps onto a table row we understand.
    let to = if words.len() == 2 { words[1].to_string() } else { words[1..].join(" ") };
    let from = if words.len() == 2 { "Anywhere".to_string() } else { String::new() };
    Some(UfwRule { to, action, from, comment })
}

/// What to add and delete so that exactly `wanted` is open through marked rules.
pub fn reconcile(current: &[UfwRule], wanted: &BTreeSet<(u16, Protocol)>) -> UfwChanges {
    let mut changes = UfwChanges::default();
    for (port, protocol) in wanted {
        // Already open, by our rule or by one the operator added: nothing to add.
        if !current.iter().any(|rule| rule.opens(*port, *protocol)) {
            changes.add.push(format!("{port}/{protocol}"));
        }
    }
    let mut seen = BTreeSet::new();
    for rule in current.iter().filter(|rule| rule.marked()) {
        match rule.simple_port() {
            Some(key) if wanted.contains(&key) => {}
            Some((port, protocol)) => {
                if seen.insert((port, protocol)) {
                    changes.delete.push(format!("{port}/{protocol}"));
                }
            }
            None => changes.ignored.push(format!("{} {} {}", rule.to, rule.action, rule.from)),
        }
    }
    changes.ignored.dedup();
    changes
}

const UFW_TIMEOUT: Duration = Duration::from_secs(60);

fn ufw() -> Cmd {
    Cmd::new("ufw").timeout(UFW_TIMEOUT).install_hint("with `apt install ufw`")
}

/// The rules ufw reports now: `ufw status` when active, `ufw show added` when not.
pub fn current_rules() -> Result<Vec<UfwRule>, ProcessError> {
    let status = ufw().arg("status").run()?;
    if status.lines().any(|line| line.trim() == "Status: inactive") {
        return Ok(parse_status(&ufw().args(["show", "added"]).run()?));
    }
    Ok(parse_status(&status))
}

/// Apply the changes: adds first, then deletes (each delete removes IPv4 and IPv6).
pub fn apply(changes: &UfwChanges) -> Result<(), ProcessError> {
    for spec in &changes.add {
        ufw().args(["allow", spec, "comment", MARKER]).run()?;
    }
    for spec in &changes.delete {
        ufw().args(["delete", "allow", spec]).run()?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const STATUS: &str = "Status: active

To                         Action      From
--                         ------      ----
22/tcp                     ALLOW       Anywhere
10022/tcp                  ALLOW       Anywhere                   # terrarium-proxy-sync
2000/udp                   ALLOW       Anywhere                   # terrarium-proxy-sync
8443                       ALLOW       Anywhere                   # operator
3000/tcp on eth0           ALLOW IN    10.0.0.0/8                 # terrarium-proxy-sync
22/tcp (v6)                ALLOW       Anywhere (v6)
10022/tcp (v6)             ALLOW       Anywhere (v6)              # terrarium-proxy-sync
2000/udp (v6)              ALLOW       Anywhere (v6)              # terrarium-proxy-sync
";

    #[test]
    fn status_tables_parse_with_comments_and_v6_folded() {
        let rules = parse_status(STATUS);
        assert_eq!(rules.len(), 5, "{rules:?}");
        assert!(
            rules
                .iter()
                .any(|r| r.to == "3000/tcp on eth0" && r.action == "ALLOW IN" && r.from == "10.0.0.0/8" && r.marked())
        );
    }

    #[test]
    fn reconcile_adds_missing_deletes_stale_and_never_touches_others() {
        let wanted: BTreeSet<_> =
            [(10022, Protocol::Tcp), (5000, Protocol::Tcp), (8443, Protocol::Udp), (22, Protocol::Tcp)].into();
        let changes = reconcile(&parse_status(STATUS), &wanted);
        assert_eq!(changes.add, ["5000/tcp"]);
        assert_eq!(changes.delete, ["2000/udp"]);
        assert_eq!(changes.ignored, ["3000/tcp on eth0 ALLOW IN 10.0.0.0/8"]);
    }

    #[test]
    fn show_added_is_understood_when_ufw_is_inactive() {
        let rules = parse_status(
            "Added user rules (see 'ufw status' for running firewall):\nufw allow 22/tcp\nufw allow 10022/tcp comment 'terrarium-proxy-sync'\n",
        );
        let changes = reconcile(&rules, &BTreeSet::new());
        assert_eq!(changes.delete, ["10022/tcp"]);
        assert!(changes.add.is_empty());
    }
}
