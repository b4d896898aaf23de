//! Validators for the values Terrarium accepts from operators: host names, e-mail
//! addresses, URLs, ZFS names, ports. They are shared by config loading and by the
//! tools that read labels and flags, so one rule is enforced everywhere.

/// A DNS host name: 1..=253 characters, labels of 1..=63 `[a-z0-9-]`, no leading or
/// trailing hyphen, at least two labels. Callers fold case before asking.
pub fn is_hostname(name: &str) -> bool {
    if name.is_empty() || name.len() > 253 || !name.contains('.') {
        return false;
    }
    name.split('.').all(is_dns_label)
}

fn is_dns_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// True when `host` is `domain` itself or one of its subdomains.
pub fn is_within_domain(host: &str, domain: &str) -> bool {
    host == domain || host.strip_suffix(domain).is_some_and(|rest| rest.ends_with('.'))
}

/// A plain e-mail address: `local@host.name`, no spaces, a valid host part.
pub fn is_email(address: &str) -> bool {
    match address.rsplit_once('@') {
        Some((local, host)) => {
            !local.is_empty()
                && local.len() <= 64
                && !local.contains(char::is_whitespace)
                && !local.contains('@')
                && is_hostname(&host.to_ascii_lowercase())
        }
        None => false,
    }
}

/// An absolute `https://` URL (or `http://` when `allow_http`), with a valid host or
/// an IP address, an optional port, and no user info or fragment.
pub fn is_url(url: &str, allow_http: bool) -> bool {
    let rest = if let Some(rest) = url.strip_prefix("https://") {
        rest
    } else if let Some(rest) = url.strip_prefix("http://").filter(|_| allow_http) {
        rest
    } else {
        return false;
    };
    if rest.contains('#') || rest.contains(char::is_whitespace) {
        return false;
    }
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    if authority.contains('@') || authority.is_empty() {
        return false;
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => (host, Some(port)),
        _ => (authority, None),
    };
    if let Some(port) = port
        && parse_port(port).is_none()
    {
        return false;
    }
    let host = host.to_ascii_lowercase();
    host == "localhost"
        || is_hostname(&host)
        || host.parse::<std::net::Ipv4Addr>().is_ok()
        || host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .is_some_and(|h| h.parse::<std::net::Ipv6Addr>().is_ok())
}

/// A TCP/UDP port, 1..=65535.
pub fn parse_port(text: &str) -> Option<u16> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) || text.len() > 5 {
        return None;
    }
    text.parse::<u16>().ok().filter(|port| *port != 0)
}

/// A ZFS pool name: starts with a letter, then `[A-Za-z0-9_.:-]`, not a reserved
/// name (`mirror`, `raidz`, `spare`, `log`, ...), at most 255 characters.
pub fn is_zfs_pool_name(name: &str) -> bool {
    const RESERVED_PREFIXES: [&str; 6] = ["mirror", "raidz", "draid", "spare", "log", "cache"];
    let Some(first) = name.chars().next() else {
        return false;
    };
    first.is_ascii_alphabetic()
        && name.len() <= 255
        && name.chars().all(is_zfs_name_char)
        && !RESERVED_PREFIXES.iter().any(|reserved| name.starts_with(reserved))
        && !looks_like_a_device(name)
}

/// ZFS refuses pool names like `c0t0d0`, which read as Solaris device names.
fn looks_like_a_device(name: &str) -> bool {
    name.starts_with('c') && name[1..].starts_with(|c: char| c.is_ascii_digit())
}

fn is_zfs_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':')
}

/// A ZFS dataset name: `pool/child/...`, each component non-empty of `[A-Za-z0-9_.:-]`.
pub fn is_zfs_dataset_name(name: &str) -> bool {
    let mut parts = name.split('/');
    parts.next().is_some_and(is_zfs_pool_name)
        && parts.all(|part| !part.is_empty() && part != "." && part != ".." && part.chars().all(is_zfs_name_char))
        && name.len() <= 255
}

/// An ssh destination as syncoid takes it: `user@host`. syncoid splits its target at
/// the first `@` and the first `:` after it and pastes both parts into shell command
/// lines (`ssh user@host zfs ...`), so only safe characters pass: the user is 1..=32 of
/// `[A-Za-z0-9._-]`, not starting with `-` (ssh would read an option); the host is a DNS
/// name (see [`is_hostname`]) or an IPv4 address. The user is required: without an `@`
/// syncoid may read the target as a local dataset. IPv6 addresses are refused: syncoid
/// cuts the host at its first `:`, so an address (bracketed or not) cannot reach ssh
/// intact; name such a host in DNS or `/etc/hosts` instead.
pub fn is_ssh_destination(text: &str) -> bool {
    let Some((user, host)) = text.split_once('@') else { return false };
    is_ssh_user(user) && (is_hostname(host) || host.parse::<std::net::Ipv4Addr>().is_ok())
}

fn is_ssh_user(user: &str) -> bool {
    (1..=32).contains(&user.len())
        && !user.starts_with('-')
        && user.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The host key types ssh takes in a known_hosts line (OpenSSH 9).
pub const SSH_HOST_KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

/// One known_hosts line as `ssh-keyscan` prints it: `HOSTS TYPE BASE64 [COMMENT]`, where
/// HOSTS is one or more comma-separated `host` or `[host]:port` (the host a DNS name or
/// an IPv4 address, as [`is_ssh_destination`] takes them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownHost<'a> {
    pub hosts: Vec<&'a str>,
    pub key_type: &'a str,
    pub key: &'a str,
}

impl KnownHost<'_> {
    /// Whether ssh connecting to `host` on port 22 (syncoid's target names no port)
    /// finds this line: a pattern `host` or `[host]:22`.
    pub fn names(&self, host: &str) -> bool {
        self.hosts.iter().any(|pattern| *pattern == host || *pattern == format!("[{host}]:22"))
    }
}

fn is_known_host_pattern(pattern: &str) -> bool {
    let host = match pattern.strip_prefix('[') {
        Some(rest) => match rest.split_once("]:") {
            Some((host, port)) if parse_port(port).is_some() => host,
            _ => return false,
        },
        None => pattern,
    };
    is_hostname(host) || host.parse::<std::net::Ipv4Addr>().is_ok()
}

/// Parse one known_hosts line, or say what is wrong with it. Stricter than ssh on
/// purpose: no hashed hosts (`|1|...`, from `ssh-keyscan -H`), no wildcards or negations,
/// no `@cert-authority`/`@revoked` markers, no control characters (a line break would
/// smuggle a second line into the file). The key must be base64 of an ssh public key
/// blob of the named type.
pub fn parse_known_host(line: &str) -> Result<KnownHost<'_>, String> {
    use base64::Engine as _;
    if let Some(bad) = line.chars().find(|c| c.is_control()) {
        return Err(format!("contains the control character {bad:?}"));
    }
    let mut fields = line.split_ascii_whitespace();
    let (Some(hosts), Some(key_type), Some(key)) = (fields.next(), fields.next(), fields.next()) else {
        return Err("is not `HOST KEYTYPE KEY`".to_string());
    };
    if hosts.starts_with('@') {
        return Err(format!("has the marker `{hosts}`, which is not taken here"));
    }
    if hosts.starts_with('|') {
        return Err("has a hashed host name (from `ssh-keyscan -H`)".to_string());
    }
    let patterns: Vec<&str> = hosts.split(',').collect();
    if let Some(bad) = patterns.iter().find(|p| !is_known_host_pattern(&p.to_ascii_lowercase())) {
        return Err(format!("`{bad}` is not `host` or `[host]:port` (the host a DNS name or an IPv4 address)"));
    }
    if let Some(upper) = patterns.iter().find(|p| p.bytes().any(|b| b.is_ascii_uppercase())) {
        return Err(format!("`{upper}` has upper-case letters; write it as `{}`", upper.to_ascii_lowercase()));
    }
    if !SSH_HOST_KEY_TYPES.contains(&key_type) {
        return Err(format!("`{key_type}` is not an ssh host key type ({})", SSH_HOST_KEY_TYPES.join(", ")));
    }
    let Ok(blob) = base64::engine::general_purpose::STANDARD.decode(key) else {
        return Err(format!("the {key_type} key is not base64"));
    };
    // The blob is a run of fields, each a u32 length and its bytes: first the key's own
    // type, then the key (for ed25519 one field of 32 bytes). A cut key leaves a field short.
    let fields = ssh_blob_fields(&blob);
    let whole = fields.as_ref().is_some_and(|f| f.first() == Some(&key_type.as_bytes()) && f.len() >= 2);
    let ed25519_ok = key_type != "ssh-ed25519" || fields.as_ref().is_some_and(|f| f.len() == 2 && f[1].len() == 32);
    if !whole || !ed25519_ok {
        return Err(format!("the key is not an {key_type} public key (cut, or pasted from another line?)"));
    }
    Ok(KnownHost { hosts: patterns, key_type, key })
}

/// The public-key types age encrypts to besides its own (`age1...`).
pub const AGE_SSH_KEY_TYPES: &[&str] = &["ssh-ed25519", "ssh-rsa"];

/// Why `text` is not a recipient for age (an `age1...` X25519 key in bech32, or an
/// OpenSSH `ssh-ed25519`/`ssh-rsa` public key line), or `None` when it is one. The
/// backup tool parses it for real before encrypting; this catches typos when the
/// config is written.
pub fn age_recipient_problem(text: &str) -> Option<String> {
    use base64::Engine as _;
    const BECH32: &str = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
    if let Some(bad) = text.chars().find(|c| c.is_control()) {
        return Some(format!("contains the control character {bad:?}"));
    }
    let text = text.trim();
    if let Some(data) = text.strip_prefix("age1") {
        if text.starts_with("AGE-SECRET-KEY") || data.len() != 58 || !data.chars().all(|c| BECH32.contains(c)) {
            return Some("starts like an age recipient but is not one (62 characters, `age1` and bech32)".into());
        }
        return None;
    }
    if text.starts_with("AGE-SECRET-KEY-") || text.starts_with("-----BEGIN") {
        return Some("is a private key; only public keys belong here (keep the private one off this host)".into());
    }
    let mut fields = text.split_ascii_whitespace();
    let (Some(key_type), Some(key)) = (fields.next(), fields.next()) else {
        return Some("is not `age1...` or `ssh-ed25519 AAAA...`".into());
    };
    if !AGE_SSH_KEY_TYPES.contains(&key_type) {
        return Some(format!(
            "`{key_type}` is not a key type age encrypts to (age1..., {})",
            AGE_SSH_KEY_TYPES.join(", ")
        ));
    }
    let Ok(blob) = base64::engine::general_purpose::STANDARD.decode(key) else {
        return Some(format!("the {key_type} key is not base64"));
    };
    let whole = ssh_blob_fields(&blob).is_some_and(|f| f.first() == Some(&key_type.as_bytes()) && f.len() >= 2);
    (!whole).then(|| format!("the key is not an {key_type} public key (cut, or pasted from another line?)"))
}

/// The length-prefixed fields of an ssh public key blob, if they use it up exactly.
fn ssh_blob_fields(mut blob: &[u8]) -> Option<Vec<&[u8]>> {
    let mut fields = Vec::new();
    while !blob.is_empty() {
        let (len, rest) = blob.split_first_chunk::<4>()?;
        let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
        if rest.len() < len {
            return None;
        }
        let (field, rest) = rest.split_at(len);
        fields.push(field);
        blob = rest;
    }
    Some(fields)
}

/// Why `text` is not a replication destination, or `None` when it is one: either a
/// remote `user@host:pool/dataset` ([`is_ssh_destination`] and [`is_zfs_dataset_name`])
/// or a local dataset name. A local name may not have a `:` in its pool part, which
/// syncoid would take for `host:` (it guesses from the pools it finds).
pub fn replication_target_problem(text: &str) -> Option<String> {
    if text.contains('@') {
        let Some((destination, dataset)) = text.split_once(':') else {
            return Some(format!("`{text}` has no `:pool/dataset` after the ssh destination"));
        };
        if !is_ssh_destination(destination) {
            return Some(format!(
                "`{destination}` is not `user@host` (user and host of letters, digits, `.`, `_` and `-`; the host a DNS name or an IPv4 address)"
            ));
        }
        if !is_zfs_dataset_name(dataset) {
            return Some(format!("`{dataset}` is not a valid ZFS dataset name"));
        }
        return None;
    }
    if !is_zfs_dataset_name(text) {
        return Some(format!("`{text}` is neither `user@host:pool/dataset` nor a valid ZFS dataset name"));
    }
    if text.split('/').next().is_some_and(|pool| pool.contains(':')) {
        return Some(format!("`{text}` has a `:` in its pool name, which syncoid may read as an ssh host"));
    }
    None
}

/// A group name as used in OIDC `groups` claims and `@auth:` labels.
pub fn is_group_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A size such as `64G`, `512M`, `1T` or a byte count.
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(index) => text.split_at(index),
        None => (text, ""),
    };
    let number: u64 = digits.parse().ok()?;
    let multiplier: u64 = match unit.to_ascii_uppercase().trim_end_matches("IB").trim_end_matches('B') {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return None,
    };
    number.checked_mul(multiplier).filter(|size| *size > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames() {
        assert!(is_hostname("app.example.com"));
        assert!(is_hostname("a-1.b.co"));
        assert!(!is_hostname("localhost"));
        assert!(!is_hostname("-a.example.com"));
        assert!(!is_hostname("a..example.com"));
        assert!(!is_hostname("App.example.com"));
        assert!(!is_hostname("a_b.example.com"));
    }

    #[test]
    fn domains_contain_their_subdomains_only() {
        assert!(is_within_domain("a.example.com", "example.com"));
        assert!(is_within_domain("example.com", "example.com"));
        assert!(!is_within_domain("badexample.com", "example.com"));
    }

    #[test]
    fn emails_and_urls() {
        assert!(is_email("ops@example.com"));
        assert!(!is_email("ops@localhost"));
        assert!(!is_email("ops example.com"));
        assert!(is_url("https://auth.example.com/", false));
        assert!(is_url("http://127.0.0.1:9000", true));
        assert!(!is_url("http://127.0.0.1:9000", false));
        assert!(!is_url("https://u:p@example.com", false));
        assert!(!is_url("https://example.com:99999", false));
        assert!(!is_url("ftp://example.com", true));
    }

    #[test]
    fn zfs_names() {
        assert!(is_zfs_pool_name("terrarium"));
        assert!(!is_zfs_pool_name("mirror1"));
        assert!(!is_zfs_pool_name("1pool"));
        assert!(!is_zfs_pool_name("c0d1"));
        assert!(is_zfs_dataset_name("terrarium/containers/web"));
        assert!(!is_zfs_dataset_name("terrarium//web"));
        assert!(!is_zfs_dataset_name("terrarium/a b"));
    }

    #[test]
    fn ssh_destinations_take_safe_users_and_hosts_only() {
        assert!(is_ssh_destination("backup@zfs.example.com"));
        assert!(is_ssh_destination("zfs_backup.1@192.0.2.7"));
        for bad in [
            "a;touch${IFS}x@zfs.example.com",
            "zfs.example.com",
            "@zfs.example.com",
            "-oProxyCommand=x@zfs.example.com",
            "backup@-zfs.example.com",
            "backup@zfs.example.com;id",
            "backup@[2001:db8::1]",
            "backup@2001:db8::1",
            "back up@zfs.example.com",
            "backup@zfs.example.com:pool/t",
            "a@b@zfs.example.com",
            "backup@$(id).example.com",
        ] {
            assert!(!is_ssh_destination(bad), "{bad} passed");
        }
    }

    const ED25519: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIFbJ2o3vsU7t4A/bDvvyVCEpe8Afvg0byn3rZm9xhRt3";

    #[test]
    fn known_hosts_lines_as_ssh_keyscan_prints_them() {
        let line = format!("zfs.example.com ssh-ed25519 {ED25519}");
        let known = parse_known_host(&line).unwrap();
        assert!(known.names("zfs.example.com"));
        assert!(!known.names("other.example.com"));
        let two = format!("[zfs.example.com]:22,192.0.2.7 ssh-ed25519 {ED25519} root@zfs");
        let known = parse_known_host(&two).unwrap();
        assert!(known.names("zfs.example.com") && known.names("192.0.2.7"));
        let port = format!("[zfs.example.com]:2222 ssh-ed25519 {ED25519}");
        let other_port = parse_known_host(&port).unwrap();
        assert!(!other_port.names("zfs.example.com"), "ssh looks up port 22 as the bare host");
        for (bad, why) in [
            (format!("zfs.example.com ssh-ed25519 {ED25519}\nevil.example.com ssh-ed25519 {ED25519}"), "control"),
            ("zfs.example.com ssh-ed25519".to_string(), "HOST KEYTYPE KEY"),
            (format!("|1|abc=|def= ssh-ed25519 {ED25519}"), "hashed"),
            (format!("@cert-authority *.example.com ssh-ed25519 {ED25519}"), "marker"),
            (format!("*.example.com ssh-ed25519 {ED25519}"), "is not `host`"),
            (format!("ZFS.example.com ssh-ed25519 {ED25519}"), "upper-case"),
            (format!("zfs.example.com ssh-dss {ED25519}"), "not an ssh host key type"),
            ("zfs.example.com ssh-ed25519 not*base64".to_string(), "not base64"),
            (format!("zfs.example.com ssh-rsa {ED25519}"), "not an ssh-rsa public key"),
            (format!("zfs.example.com ssh-ed25519 {}", &ED25519[..40]), "not an ssh-ed25519 public key"),
        ] {
            let err = parse_known_host(&bad).expect_err(&bad);
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn age_recipients_are_age_or_openssh_public_keys() {
        // From `age-keygen`: a real recipient.
        const AGE: &str = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";
        assert_eq!(age_recipient_problem(AGE), None);
        assert_eq!(age_recipient_problem(&format!("ssh-ed25519 {ED25519} ops@laptop")), None);
        for (bad, why) in [
            (format!("{AGE}\nage1evil"), "control"),
            (AGE[..40].to_string(), "not one"),
            (AGE.to_uppercase(), "not `age1"),
            ("AGE-SECRET-KEY-1QQQQ".to_string(), "private key"),
            ("-----BEGIN OPENSSH PRIVATE KEY-----".to_string(), "private key"),
            (format!("ssh-dss {ED25519}"), "not a key type age encrypts to"),
            ("ssh-ed25519 not*base64".to_string(), "not base64"),
            (format!("ssh-rsa {ED25519}"), "not an ssh-rsa public key"),
            ("ssh-ed25519".to_string(), "is not `age1"),
        ] {
            let problem = age_recipient_problem(&bad).unwrap_or_else(|| panic!("{bad} passed"));
            assert!(problem.contains(why), "{bad}: {problem}");
        }
    }

    #[test]
    fn replication_targets_are_remote_or_local_datasets() {
        assert_eq!(replication_target_problem("backup@zfs.example.com:backup/t"), None);
        assert_eq!(replication_target_problem("tank2/replica"), None);
        for bad in [
            "--sshkey=/tmp/k",
            "-r",
            "backup@zfs.example.com",
            "backup@zfs.example.com:",
            "a;b@zfs.example.com:backup/t",
            "backup@zfs.example.com:backup/t;id",
            "host:pool/t",
            "backup@zfs.example.com:-x/t",
        ] {
            assert!(replication_target_problem(bad).is_some(), "{bad} passed");
        }
    }

    #[test]
    fn ports_and_sizes() {
        assert_eq!(parse_port("443"), Some(443));
        assert_eq!(parse_port("0"), None);
        assert_eq!(parse_port("65536"), None);
        assert_eq!(parse_port("+1"), None);
        assert_eq!(parse_size("64G"), Some(64 << 30));
        assert_eq!(parse_size("512MiB"), Some(512 << 20));
        assert_eq!(parse_size("12X"), None);
    }
}
