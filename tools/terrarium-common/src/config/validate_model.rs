//! Whole-config validation: every value checked, the first problem reported with its
//! dotted key and how to fix it.

use super::validate::*;
use super::{Config, ConfigError, IdentityMode, SCHEMA_VERSION, StorageMode};

type Check = Result<(), ConfigError>;

fn fail(key: &str, problem: impl Into<String>, fix: impl Into<String>) -> Check {
    Err(ConfigError::invalid(key, problem, fix))
}

pub(super) fn check(config: &Config) -> Check {
    if config.schema_version != SCHEMA_VERSION {
        return fail(
            "schema_version",
            format!("is {}", config.schema_version),
            format!("set `schema_version: {SCHEMA_VERSION}`"),
        );
    }
    check_domains(config)?;
    check_emails(config)?;
    check_identity(config)?;
    check_storage(config)?;
    check_s3(config)?;
    check_syncoid(config)?;
    check_ports(config)?;
    check_backup(config)?;
    check_metrics(config)
}

fn hostname(key: &str, value: &str) -> Check {
    if is_hostname(value) {
        Ok(())
    } else if is_hostname(&value.to_ascii_lowercase()) {
        fail(key, format!("`{value}` has upper-case letters"), format!("write it as `{}`", value.to_ascii_lowercase()))
    } else {
        fail(
            key,
            format!("`{value}` is not a valid host name"),
            "use a fully qualified name such as `manage.example.com`",
        )
    }
}

fn check_domains(config: &Config) -> Check {
    let domains = &config.domains;
    if let Some(root) = &domains.root {
        hostname("domains.root", root)?;
    }
    hostname("domains.manage", &domains.manage)?;
    hostname("domains.proxy", &domains.proxy)?;
    hostname("domains.lxd", &domains.lxd)?;
    hostname("domains.auth", &domains.auth)
}

fn email(key: &str, value: &str) -> Check {
    if is_email(value) {
        Ok(())
    } else {
        fail(key, format!("`{value}` is not a valid e-mail address"), "use an address such as `ops@example.com`")
    }
}

fn check_emails(config: &Config) -> Check {
    email("emails.contact", &config.emails.contact)?;
    email("emails.acme", &config.emails.acme)?;
    if let Some(admin) = &config.emails.zitadel_admin {
        email("emails.zitadel_admin", admin)?;
    }
    Ok(())
}

fn absolute_file(key: &str, path: &std::path::Path) -> Check {
    if path.is_absolute() {
        Ok(())
    } else {
        fail(
            key,
            format!("`{}` is not an absolute path", path.display()),
            format!("name a file under {}", crate::paths::host::SECRETS_DIR),
        )
    }
}

fn inline_secret(key: &str, file_key: &str, value: &Option<String>) -> Check {
    match value {
        Some(_) => fail(
            key,
            "a secret may not be written in the config",
            format!(
                "put it in a file under {} (mode 0600) and set `{file_key}` to its path",
                crate::paths::host::SECRETS_DIR
            ),
        ),
        None => Ok(()),
    }
}

fn check_identity(config: &Config) -> Check {
    let identity = &config.identity;
    inline_secret("identity.client_secret", "identity.client_secret_file", &identity.client_secret)?;
    if !is_group_name(&identity.admin_group) {
        return fail(
            "identity.admin_group",
            format!("`{}` is not a valid group name", identity.admin_group),
            "use letters, digits, `.`, `_` and `-` only",
        );
    }
    if let Some(issuer) = &identity.issuer
        && !is_url(issuer, false)
    {
        return fail(
            "identity.issuer",
            format!("`{issuer}` is not an https URL"),
            "use the issuer URL from the provider's discovery document, such as `https://id.example.com`",
        );
    }
    if let Some(file) = &identity.client_secret_file {
        absolute_file("identity.client_secret_file", file)?;
    }
    if identity.mode == IdentityMode::Oidc {
        if identity.issuer.is_none() {
            return fail("identity.issuer", "is required in oidc mode", "set it to your provider's issuer URL");
        }
        if identity.client_id.as_deref().is_none_or(str::is_empty) {
            return fail(
                "identity.client_id",
                "is required in oidc mode",
                "set it to the client id registered with your provider",
            );
        }
        if identity.client_secret_file.is_none() {
            return fail(
                "identity.client_secret_file",
                "is required in oidc mode",
                "name the file that holds the client secret",
            );
        }
    }
    Ok(())
}

fn check_storage(config: &Config) -> Check {
    let storage = &config.storage;
    if !is_zfs_pool_name(&storage.pool) {
        return fail(
            "storage.pool",
            format!("`{}` is not a valid ZFS pool name", storage.pool),
            "start with a letter, use letters, digits, `_`, `-`, `.` and `:` only, and avoid reserved words such as `mirror`, `raidz`, `log`",
        );
    }
    match storage.mode {
        StorageMode::Disk | StorageMode::Partition => match storage.source.as_deref() {
            Some(device) if device.starts_with("/dev/") => Ok(()),
            Some(other) => fail(
                "storage.source",
                format!("`{other}` is not a device path"),
                "name a block device such as `/dev/sdb` or `/dev/sdb2`",
            ),
            None => fail("storage.source", "is required in disk and partition mode", "name the block device to use"),
        },
        StorageMode::File => {
            if let Some(source) = &storage.source
                && !source.starts_with('/')
            {
                return fail(
                    "storage.source",
                    format!("`{source}` is not an absolute path"),
                    "name the pool file, such as `/var/lib/terrarium/pool.img`",
                );
            }
            match storage.size.as_deref().map(parse_size) {
                Some(None) => fail(
                    "storage.size",
                    format!("`{}` is not a size", storage.size.as_deref().unwrap_or_default()),
                    "write it as a number with a unit, such as `64G`",
                ),
                _ => Ok(()),
            }
        }
    }
}

/// S3 settings end up in HTTP headers and the request signature; a control character
/// or a non-ASCII letter there makes the AWS SDK's signer panic, so refuse it here,
/// where the message can name the setting.
fn visible_ascii(key: &str, value: &str) -> Check {
    if value.is_empty() {
        return fail(key, "is empty", "set it to the value from your S3 provider, or remove the line");
    }
    match value.chars().find(|c| !c.is_ascii_graphic()) {
        None => Ok(()),
        Some(bad) => fail(
            key,
            format!("`{}` contains {}", value.escape_default(), describe_char(bad)),
            "use printable ASCII only (no spaces or control characters): copy the value again from your S3 provider",
        ),
    }
}

fn describe_char(c: char) -> String {
    if c == ' ' {
        "a space".to_string()
    } else if c.is_control() {
        format!("the control character {c:?}")
    } else {
        format!("the non-ASCII character {c:?}")
    }
}

fn check_s3(config: &Config) -> Check {
    let s3 = &config.s3;
    inline_secret("s3.secret_key", "s3.secret_key_file", &s3.secret_key)?;
    for (key, value) in [
        ("s3.access_key", &s3.access_key),
        ("s3.region", &s3.region),
        ("s3.bucket", &s3.bucket),
        ("s3.endpoint", &s3.endpoint),
        ("s3.prefix", &s3.prefix),
    ] {
        if let Some(value) = value {
            visible_ascii(key, value)?;
        }
    }
    if let Some(endpoint) = &s3.endpoint
        && !is_url(endpoint, true)
    {
        return fail(
            "s3.endpoint",
            format!("`{endpoint}` is not a URL"),
            "use the endpoint URL, such as `https://s3.eu-central-1.amazonaws.com`",
        );
    }
    if let Some(bucket) = &s3.bucket {
        let valid = (3..=63).contains(&bucket.len())
            && bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && !bucket.starts_with(['-', '.'])
            && !bucket.ends_with(['-', '.']);
        if !valid {
            return fail(
                "s3.bucket",
                format!("`{bucket}` is not a valid bucket name"),
                "use 3 to 63 lower-case letters, digits, `-` and `.`",
            );
        }
    }
    if let Some(prefix) = &s3.prefix
        && (prefix.starts_with('/') || prefix.contains("//") || prefix.contains(char::is_whitespace))
    {
        return fail(
            "s3.prefix",
            format!("`{prefix}` is not a valid key prefix"),
            "use a relative prefix such as `terrarium/host1`",
        );
    }
    if let Some(file) = &s3.secret_key_file {
        absolute_file("s3.secret_key_file", file)?;
    }
    for (index, line) in s3.encryption.recipients.iter().enumerate() {
        if let Some(problem) = age_recipient_problem(line) {
            return fail(
                &format!("s3.encryption.recipients[{index}]"),
                format!("`{}` {problem}", line.chars().take(80).collect::<String>().escape_default()),
                "use the output of `age-keygen -y KEYFILE` (age1...) or one line of an id_ed25519.pub",
            );
        }
    }
    if let Some(file) = &s3.encryption.identity_file {
        absolute_file("s3.encryption.identity_file", file)?;
    }
    if s3.enabled {
        for (key, present) in [
            ("s3.endpoint", s3.endpoint.is_some()),
            ("s3.bucket", s3.bucket.is_some()),
            ("s3.access_key", s3.access_key.is_some()),
            ("s3.secret_key_file", s3.secret_key_file.is_some()),
        ] {
            if !present {
                return fail(
                    key,
                    "is required when s3.enabled is true",
                    "set it, or disable S3 export with `terrarium-set s3 --disable`",
                );
            }
        }
    }
    Ok(())
}

fn check_syncoid(config: &Config) -> Check {
    let syncoid = &config.syncoid;
    inline_secret("syncoid.ssh_key", "syncoid.ssh_key_file", &syncoid.ssh_key)?;
    if let Some(dataset) = &syncoid.target_dataset
        && !is_zfs_dataset_name(dataset)
    {
        return fail(
            "syncoid.target_dataset",
            format!("`{dataset}` is not a valid ZFS dataset name"),
            "use a name such as `backup/terrarium`",
        );
    }
    if let Some(target) = &syncoid.target
        && !is_ssh_destination(target)
    {
        return fail(
            "syncoid.target",
            format!("`{target}` is not `user@host`"),
            "use the ssh destination, such as `backup@zfs.example.com`: the user of letters, digits, `.`, `_` and `-`, the host a DNS name or an IPv4 address",
        );
    }
    if let Some(file) = &syncoid.ssh_key_file {
        absolute_file("syncoid.ssh_key_file", file)?;
    }
    for (index, line) in syncoid.known_hosts.iter().enumerate() {
        if let Err(problem) = parse_known_host(line) {
            let host = syncoid.target.as_deref().and_then(|t| t.split_once('@')).map_or("HOST", |(_, host)| host);
            return fail(
                &format!("syncoid.known_hosts[{index}]"),
                format!("`{}` {problem}", line.escape_default()),
                format!(
                    "use the line `ssh-keyscan -t ed25519 {host}` prints, such as `{host} ssh-ed25519 AAAA...` (check its fingerprint against the target's own)"
                ),
            );
        }
    }
    if syncoid.enabled {
        for (key, present) in [
            ("syncoid.target", syncoid.target.is_some()),
            ("syncoid.target_dataset", syncoid.target_dataset.is_some()),
            ("syncoid.ssh_key_file", syncoid.ssh_key_file.is_some()),
        ] {
            if !present {
                return fail(
                    key,
                    "is required when syncoid.enabled is true",
                    "set it, or disable replication with `terrarium-set syncoid --disable`",
                );
            }
        }
    }
    Ok(())
}

fn check_ports(config: &Config) -> Check {
    if config.firewall.ssh_port == 0 {
        return fail("firewall.ssh_port", "0 is not a port", "use the port sshd listens on, usually 22");
    }
    for (index, port) in config.proxy.reserved_ports.iter().enumerate() {
        if *port == 0 {
            return fail(&format!("proxy.reserved_ports[{index}]"), "0 is not a port", "use ports from 1 to 65535");
        }
    }
    for (key, limit) in [
        ("proxy.max_rules_per_label", config.proxy.max_rules_per_label),
        ("proxy.max_ports_per_host", config.proxy.max_ports_per_host),
    ] {
        if limit == Some(0) {
            return fail(key, "0 would refuse every rule", "use a positive number, or remove the key for the default");
        }
    }
    for (index, entry) in config.firewall.extra_ports.iter().enumerate() {
        let key = format!("firewall.extra_ports[{index}]");
        // A bare port opens both protocols; ufw needs the protocol of a range.
        let (port, proto) = match entry.split_once('/') {
            Some((port, proto)) => (port, Some(proto)),
            None => (entry.as_str(), None),
        };
        let valid = match port.split_once(':') {
            Some((low, high)) => {
                proto.is_some() && matches!((parse_port(low), parse_port(high)), (Some(l), Some(h)) if l < h)
            }
            None => parse_port(port).is_some(),
        };
        if !valid || !matches!(proto, None | Some("tcp" | "udp")) {
            return fail(
                &key,
                format!("`{entry}` is not a port or range"),
                "write `PORT`, `PORT/tcp`, `PORT/udp` or `LOW:HIGH/udp` with ports from 1 to 65535",
            );
        }
    }
    Ok(())
}

fn check_backup(config: &Config) -> Check {
    if !(1..=19).contains(&config.backup.zstd_level) {
        return fail(
            "backup.zstd_level",
            format!("{} is out of range", config.backup.zstd_level),
            "use a level from 1 to 19 (3 is a good default)",
        );
    }
    let retention = &config.backup.s3_retention;
    if retention.keep_last == 0 {
        return fail("backup.s3_retention.keep_last", "0 would delete every restore point", "keep at least 1");
    }
    if retention.full_every_days == 0 {
        return fail(
            "backup.s3_retention.full_every_days",
            "must be at least 1",
            "a new full stream every 30 days is a good default",
        );
    }
    let alerts = &config.backup.alerts;
    for (key, threshold) in [
        ("local_snapshot", alerts.local_snapshot),
        ("s3_restore_point", alerts.s3_restore_point),
        ("drill", alerts.drill),
    ] {
        if threshold.warning_hours == 0 {
            return fail(&format!("backup.alerts.{key}.warning_hours"), "must be at least 1", "give an age in hours");
        }
        if threshold.critical_hours < threshold.warning_hours {
            return fail(
                &format!("backup.alerts.{key}.critical_hours"),
                format!("{} is below warning_hours ({})", threshold.critical_hours, threshold.warning_hours),
                "make critical_hours at least warning_hours",
            );
        }
    }
    check_export_limits(&config.backup.export)
}

fn check_export_limits(limits: &super::ExportLimits) -> Check {
    if let Some(mib) = limits.memory_budget_mib
        && mib < super::ExportLimits::MIN_MEMORY_BUDGET_MIB
    {
        return fail(
            "backup.export.memory_budget_mib",
            format!("{mib} is below {}", super::ExportLimits::MIN_MEMORY_BUDGET_MIB),
            format!(
                "give at least {} (the default, {}, suits a small VPS)",
                super::ExportLimits::MIN_MEMORY_BUDGET_MIB,
                super::ExportLimits::DEFAULT_MEMORY_BUDGET_MIB
            ),
        );
    }
    if let Err(problem) = limits.bwlimit_bytes() {
        return fail("backup.export.bwlimit", problem, "or remove the key for no limit");
    }
    Ok(())
}

fn check_metrics(config: &Config) -> Check {
    match &config.metrics.textfile_dir {
        Some(dir) if !dir.is_absolute() => fail(
            "metrics.textfile_dir",
            format!("`{}` is not an absolute path", dir.display()),
            format!(
                "name the directory node-exporter's textfile collector reads (its --collector.textfile.directory), such as `{}`; set `metrics.enabled: false` to write no metrics",
                crate::paths::host::NODE_EXPORTER_TEXTFILE_DIR
            ),
        ),
        _ => Ok(()),
    }
}
