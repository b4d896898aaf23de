//! The `user.proxy` label: splitting a value into rules and parsing one rule.
//!
//! Pure code: no I/O, no panics on any input (a property test feeds it arbitrary
//! strings). Checks that need the host's settings (root domain, reserved ports,
//! claims by other instances) live in [`crate::plan`].

use std::fmt;

use serde::Serialize;
use terrarium_common::config::validate::{is_hostname, parse_port};

/// The container port an http(s) rule targets when it names none.
pub const DEFAULT_CONTAINER_PORT: u16 = 80;

/// The longest path prefix a rule may give. It bounds the length of the Traefik rule
/// and so its default priority (see `terrarium_common::ports::traefik`): Terrarium's
/// own routers must outrank every container router.
pub const MAX_PATH_LEN: usize = 1024;

const SCHEMES: [&str; 4] = ["https://", "http://", "tcp://", "udp://"];

/// Who may pass an `@auth` route.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Auth {
    /// `@auth`: any signed-in user.
    AnyUser,
    /// `@auth:g1,g2`: members of at least one group (sorted, without duplicates).
    Groups(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One parsed rule of a label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Rule {
    Http {
        scheme: Scheme,
        /// Lower-case host name.
        host: String,
        container_port: u16,
        /// A path prefix starting with `/`; `None` for the whole host (`/` is folded to `None`).
        path: Option<String>,
        auth: Option<Auth>,
    },
    Port {
        protocol: Protocol,
        host_port: u16,
        container_port: u16,
    },
}

/// Why a rule was not accepted: the problem and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleError {
    pub problem: String,
    pub fix: String,
}

impl RuleError {
    pub fn new(problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Self { problem: problem.into(), fix: fix.into() }
    }
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}; {}", self.problem, self.fix)
    }
}

/// Split a label value into rule strings: at newlines, and at commas that are followed
/// (after optional spaces) by a scheme, so `@auth:g1,g2` keeps its commas. Empty
/// pieces are dropped; pieces are trimmed.
pub fn split_rules(value: &str) -> Vec<&str> {
    let mut rules = Vec::new();
    for line in value.split('\n') {
        let mut start = 0;
        for (index, _) in line.match_indices(',') {
            let rest = line[index + 1..].trim_start();
            if SCHEMES.iter().any(|scheme| starts_with_ignore_case(rest, scheme)) {
                rules.push(&line[start..index]);
                start = index + 1;
            }
        }
        rules.push(&line[start..]);
    }
    rules.into_iter().map(str::trim).filter(|rule| !rule.is_empty()).collect()
}

fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.len() >= prefix.len() && text.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// Parse one rule string (already split and trimmed).
pub fn parse_rule(rule: &str) -> Result<Rule, RuleError> {
    if rule.chars().any(|c| c.is_control()) {
        return Err(RuleError::new(
            "the rule contains a control character",
            "write the rule on one line of plain text",
        ));
    }
    let Some((scheme, rest)) = rule.split_once("://") else {
        return Err(RuleError::new(
            "the rule has no scheme",
            "start it with https://, http://, tcp:// or udp:// (for example https://app.example.com)",
        ));
    };
    match scheme.to_ascii_lowercase().as_str() {
        "https" => parse_http(Scheme::Https, rest),
        "http" => parse_http(Scheme::Http, rest),
        "tcp" => parse_port_rule(Protocol::Tcp, rest),
        "udp" => parse_port_rule(Protocol::Udp, rest),
        other => Err(RuleError::new(format!("unknown scheme `{other}`"), "use https://, http://, tcp:// or udp://")),
    }
}

fn parse_http(scheme: Scheme, rest: &str) -> Result<Rule, RuleError> {
    let (target, auth) = match rest.find('@') {
        Some(at) => (&rest[..at], Some(parse_auth(&rest[at + 1..])?)),
        None => (rest, None),
    };
    let (authority, path) = match target.find('/') {
        Some(slash) => (&target[..slash], Some(&target[slash..])),
        None => (target, None),
    };
    let (host, port) = match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    let host = parse_host(host)?;
    let container_port = match port {
        None => DEFAULT_CONTAINER_PORT,
        Some(port) => parse_port(port).ok_or_else(|| {
            RuleError::new(
                format!("container port `{port}` is not a number from 1 to 65535"),
                "write the port the service listens on inside the container, e.g. :8080",
            )
        })?,
    };
    let path = match path {
        None => None,
        Some(path) => parse_path(path)?,
    };
    Ok(Rule::Http { scheme, host, container_port, path, auth })
}

fn parse_host(host: &str) -> Result<String, RuleError> {
    if host.is_empty() {
        return Err(RuleError::new(
            "the rule has no host name",
            "write a host name after the scheme, e.g. https://app.example.com",
        ));
    }
    let folded = host.to_ascii_lowercase();
    if folded.starts_with("*.") {
        return Err(RuleError::new(
            format!("wildcard host `{host}` is not supported"),
            "publish each host name with its own rule",
        ));
    }
    if !is_hostname(&folded) {
        return Err(RuleError::new(
            format!("`{host}` is not a valid host name"),
            "use a DNS name of letters, digits, hyphens and dots, such as app.example.com",
        ));
    }
    Ok(folded)
}

fn parse_path(path: &str) -> Result<Option<String>, RuleError> {
    if path.len() > MAX_PATH_LEN {
        return Err(RuleError::new(
            format!("the path is {} characters long, more than {MAX_PATH_LEN}", path.len()),
            "publish a shorter path prefix (routes match every path below it)",
        ));
    }
    if path.contains(char::is_whitespace) {
        return Err(RuleError::new(
            format!("path `{path}` contains a space"),
            "percent-encode it (%20) or choose a path without spaces",
        ));
    }
    if path.contains('?') || path.contains('#') {
        return Err(RuleError::new(
            format!("path `{path}` has a query or fragment"),
            "give a plain path prefix such as /api; routes match paths only",
        ));
    }
    // RFC 3986 path characters only: nothing that could end the backtick-quoted value
    // inside the Traefik rule expression.
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-._~%!$&'()*+,;=:/".contains(c);
    if let Some(bad) = path.chars().find(|c| !allowed(*c)) {
        return Err(RuleError::new(
            format!("path `{path}` contains `{bad}`"),
            "use letters, digits and - . _ ~ / (percent-encode anything else)",
        ));
    }
    Ok(if path == "/" { None } else { Some(path.to_string()) })
}

fn parse_auth(suffix: &str) -> Result<Auth, RuleError> {
    let Some(rest) = suffix.strip_prefix("auth") else {
        return Err(RuleError::new(
            format!("unknown suffix `@{suffix}`"),
            "use @auth (any signed-in user) or @auth:group1,group2",
        ));
    };
    if rest.is_empty() {
        return Ok(Auth::AnyUser);
    }
    let Some(list) = rest.strip_prefix(':') else {
        return Err(RuleError::new(
            format!("unknown suffix `@{suffix}`"),
            "use @auth (any signed-in user) or @auth:group1,group2",
        ));
    };
    let mut groups = Vec::new();
    for group in list.split(',') {
        let group = group.trim();
        if group.is_empty() || !group.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) {
            return Err(RuleError::new(
                format!("group name `{group}` is not valid"),
                "group names use letters, digits, dot, underscore and hyphen, separated by commas: @auth:devs,ops",
            ));
        }
        groups.push(group.to_string());
    }
    groups.sort();
    groups.dedup();
    Ok(Auth::Groups(groups))
}

fn parse_port_rule(protocol: Protocol, rest: &str) -> Result<Rule, RuleError> {
    let example = format!("write {protocol}://HOSTPORT:CONTAINERPORT, e.g. {protocol}://10022:22");
    if rest.contains('@') {
        return Err(RuleError::new(
            format!("@auth is not possible on {protocol}:// rules"),
            "route auth works on http:// and https:// rules only; remove the @ suffix",
        ));
    }
    let Some((host_port, container_port)) = rest.split_once(':') else {
        return Err(RuleError::new(format!("`{protocol}://{rest}` needs a host port and a container port"), example));
    };
    let host_port = parse_port(host_port.trim_end_matches('/')).ok_or_else(|| {
        RuleError::new(format!("host port `{host_port}` is not a number from 1 to 65535"), example.clone())
    })?;
    let container_port = parse_port(container_port.trim_end_matches('/')).ok_or_else(|| {
        RuleError::new(format!("container port `{container_port}` is not a number from 1 to 65535"), example.clone())
    })?;
    Ok(Rule::Port { protocol, host_port, container_port })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn http(rule: &str) -> (Scheme, String, u16, Option<String>, Option<Auth>) {
        match parse_rule(rule).unwrap() {
            Rule::Http { scheme, host, container_port, path, auth } => (scheme, host, container_port, path, auth),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn commas_split_only_before_a_scheme() {
        assert_eq!(
            split_rules("https://a.example.com@auth:g1,g2, http://b.example.com\ntcp://10022:22,,UDP://1053:53\n\n"),
            vec!["https://a.example.com@auth:g1,g2", "http://b.example.com", "tcp://10022:22,", "UDP://1053:53"]
        );
        assert_eq!(split_rules("  "), Vec::<&str>::new());
    }

    #[test]
    fn http_rules_parse_with_defaults() {
        assert_eq!(http("https://App.Example.com"), (Scheme::Https, "app.example.com".into(), 80, None, None));
        assert_eq!(
            http("http://a.example.com:8080/api/v1"),
            (Scheme::Http, "a.example.com".into(), 8080, Some("/api/v1".into()), None)
        );
        assert_eq!(http("https://a.example.com/"), (Scheme::Https, "a.example.com".into(), 80, None, None));
        assert_eq!(http("https://a.example.com/x@auth").4, Some(Auth::AnyUser));
        assert_eq!(
            http("https://a.example.com@auth:ops, devs,ops").4,
            Some(Auth::Groups(vec!["devs".into(), "ops".into()]))
        );
    }

    #[test]
    fn port_rules_parse() {
        assert_eq!(
            parse_rule("tcp://10022:22").unwrap(),
            Rule::Port { protocol: Protocol::Tcp, host_port: 10022, container_port: 22 }
        );
        assert_eq!(
            parse_rule("udp://1053:53").unwrap(),
            Rule::Port { protocol: Protocol::Udp, host_port: 1053, container_port: 53 }
        );
    }

    #[test]
    fn bad_rules_say_what_is_wrong() {
        for (rule, problem) in [
            ("app.example.com", "no scheme"),
            ("ftp://a.example.com", "unknown scheme"),
            ("https://", "no host name"),
            ("https://bad_host.example.com", "not a valid host name"),
            ("https://localhost", "not a valid host name"),
            ("https://*.example.com", "wildcard"),
            ("https://a.example.com:0", "container port"),
            ("https://a.example.com:99999", "container port"),
            ("https://a.example.com/a b", "space"),
            ("https://a.example.com/a?b=1", "query"),
            ("https://a.example.com/a`)||Host(`x", "contains"),
            ("https://a.example.com@admin", "unknown suffix"),
            ("https://a.example.com@auth:", "group name"),
            ("https://a.example.com@auth:a b", "group name"),
            ("tcp://10022", "needs a host port"),
            ("tcp://x:22", "host port"),
            ("udp://1053:70000", "container port"),
            ("tcp://10022:22@auth", "@auth is not possible"),
            (format!("https://a.example.com/{}", "a".repeat(MAX_PATH_LEN)).as_str(), "more than 1024"),
        ] {
            let err = parse_rule(rule).unwrap_err();
            assert!(err.problem.contains(problem), "{rule}: {err}");
            assert!(!err.fix.is_empty());
        }
    }
}
