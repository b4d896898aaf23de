use super::*;

pub(crate) const VALID: &str = "\
schema_version: 2
domains:
  root: example.com
  manage: manage.example.com
  proxy: proxy.example.com
  lxd: lxd.example.com
  auth: auth.example.com
emails:
  contact: ops@example.com
  acme: acme@example.com
identity:
  mode: oidc
  issuer: https://id.example.com
  client_id: terrarium
  client_secret_file: /etc/terrarium/secrets/oidc-client-secret
  admin_group: terrarium-admins
storage:
  mode: file
  size: 64G
  pool: terrarium
s3:
  enabled: true
  endpoint: https://s3.example.com
  bucket: terrarium-backups
  region: eu-central-1
  prefix: host1
  access_key: AKIAEXAMPLE
  secret_key_file: /etc/terrarium/secrets/s3-secret-key
";

#[test]
fn a_valid_config_loads_and_round_trips() {
    let config = Config::from_yaml(VALID, "config.yaml").unwrap();
    assert_eq!(config.identity.mode, IdentityMode::Oidc);
    assert_eq!(config.backup.local_retention, LocalRetention::default());
    let again = Config::from_yaml(&config.to_yaml().unwrap(), "again").unwrap();
    assert_eq!(again, config);
}

#[test]
fn metrics_default_to_node_exporters_directory_and_stay_out_of_the_file() {
    let config = Config::from_yaml(VALID, "config.yaml").unwrap();
    assert_eq!(config.metrics.textfile_dir(), Some(std::path::Path::new("/var/lib/prometheus/node-exporter")));
    assert!(!config.to_yaml().unwrap().contains("metrics"), "a config written before metrics existed must not change");
    let moved = Config::from_yaml(&format!("{VALID}metrics:\n  textfile_dir: /srv/textfiles\n"), "c").unwrap();
    assert_eq!(moved.metrics.textfile_dir(), Some(std::path::Path::new("/srv/textfiles")));
    assert_eq!(Config::from_yaml(&moved.to_yaml().unwrap(), "again").unwrap(), moved);
    let off = Config::from_yaml(&format!("{VALID}metrics:\n  enabled: false\n"), "c").unwrap();
    assert_eq!(off.metrics.textfile_dir(), None);
    assert!(off.to_yaml().unwrap().contains("metrics:\n  enabled: false\n"));
}

/// Replace the first occurrence of `from` in the valid config.
fn broken(from: &str, to: &str) -> String {
    assert!(VALID.contains(from), "fixture lacks {from:?}");
    VALID.replacen(from, to, 1)
}

#[test]
fn twenty_malformed_configs_each_name_their_key_in_one_line() {
    let cases: Vec<(String, &str)> = vec![
        (broken("domains:\n", "domains: [\n"), "domains"),
        (broken("  manage: manage.example.com\n", "  mange: manage.example.com\n"), "mange"),
        (broken("manage.example.com", "manage..example.com"), "domains.manage"),
        (broken("proxy.example.com", "Proxy.Example.com"), "domains.proxy"),
        (broken("lxd.example.com", "lxd_host"), "domains.lxd"),
        (broken("root: example.com", "root: -example.com"), "domains.root"),
        (broken("contact: ops@example.com", "contact: ops.example.com"), "emails.contact"),
        (broken("acme: acme@example.com", "acme: acme@localhost"), "emails.acme"),
        (broken("mode: oidc", "mode: ldap"), "identity.mode"),
        (broken("issuer: https://id.example.com", "issuer: id.example.com"), "identity.issuer"),
        (broken("admin_group: terrarium-admins", "admin_group: terrarium admins"), "identity.admin_group"),
        (
            broken(
                "  client_secret_file: /etc/terrarium/secrets/oidc-client-secret\n",
                "  client_secret: hunter2\n  client_secret_file: /x\n",
            ),
            "identity.client_secret",
        ),
        (broken("  client_id: terrarium\n", ""), "identity.client_id"),
        (broken("pool: terrarium", "pool: mirror"), "storage.pool"),
        (broken("mode: file", "mode: disk"), "storage.source"),
        (broken("size: 64G", "size: lots"), "storage.size"),
        (broken("endpoint: https://s3.example.com", "endpoint: s3.example.com"), "s3.endpoint"),
        (broken("bucket: terrarium-backups", "bucket: Terrarium_Backups"), "s3.bucket"),
        (broken("  secret_key_file: /etc/terrarium/secrets/s3-secret-key\n", "  secret_key: abc\n"), "s3.secret_key"),
        (format!("{VALID}firewall:\n  extra_ports: [\"70000/tcp\"]\n"), "firewall.extra_ports[0]"),
        (format!("{VALID}backup:\n  zstd_level: 40\n"), "backup.zstd_level"),
        (format!("{VALID}proxy:\n  reserved_ports: [99999]\n"), "proxy.reserved_ports"),
        (format!("{VALID}proxy:\n  max_rules_per_label: 0\n"), "proxy.max_rules_per_label"),
        (format!("{VALID}proxy:\n  max_ports_per_host: 0\n"), "proxy.max_ports_per_host"),
        (format!("{VALID}metrics:\n  textfile_dir: var/lib/prometheus\n"), "metrics.textfile_dir"),
        (format!("{VALID}metrics:\n  textfile_dir: ''\n"), "metrics.textfile_dir"),
        (format!("{VALID}metrics:\n  textfle_dir: /x\n"), "textfle_dir"),
        (broken("schema_version: 2", "schema_version: 9"), "schema_version"),
    ];
    assert!(cases.len() >= 20);
    for (text, key) in cases {
        let err = Config::from_yaml(&text, "config.yaml").expect_err(key);
        let shown = err.to_string();
        eprintln!("{shown}");
        assert!(shown.contains(key), "error for {key} does not name it: {shown}");
        assert!(!shown.contains('\n'), "error for {key} is not one line: {shown}");
        assert!(!shown.contains("hunter2") && !shown.contains(": abc"), "error leaks a secret: {shown}");
    }
}

#[test]
fn yaml_errors_carry_line_and_column() {
    let err =
        Config::from_yaml(&broken("  manage: manage.example.com\n", "  mange: manage.example.com\n"), "config.yaml")
            .unwrap_err();
    assert!(err.to_string().starts_with("config.yaml:4:"), "{err}");
    assert_eq!(err.key(), Some("domains.mange"));
}

#[test]
fn version_1_flat_configs_are_migrated() {
    let v1 = "\
manage_domain: manage.example.com
proxy_domain: proxy.example.com
lxd_domain: lxd.example.com
auth_domain: auth.example.com
acme_email: ops@example.com
idp_mode: local
storage_mode: file
storage_size: 32G
s3_enabled: false
";
    let config = Config::from_yaml(v1, "old.yaml").unwrap();
    assert_eq!(config.schema_version, SCHEMA_VERSION);
    assert_eq!(config.emails.contact, "ops@example.com");
    assert_eq!(config.identity.admin_group, DEFAULT_ADMIN_GROUP);
    assert_eq!(config.issuer(), "https://auth.example.com");
    assert_eq!(config.storage.size.as_deref(), Some("32G"));
}

#[test]
fn an_unknown_version_1_key_is_named() {
    let err = Config::from_yaml("manage_domain: a.example.com\nfrobnicate: 1\n", "old.yaml").unwrap_err();
    assert!(err.to_string().contains("frobnicate"), "{err}");
}

#[test]
fn save_is_atomic_0600_and_reports_changes() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let paths = Paths::new(dir.path());
    let config = Config::from_yaml(VALID, "c").unwrap();
    assert!(config.save(&paths).unwrap());
    assert!(!config.save(&paths).unwrap());
    let mode = std::fs::metadata(paths.config_file()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(Config::load(&paths).unwrap(), config);
}

#[test]
fn a_missing_config_says_how_to_create_one() {
    let dir = tempfile::tempdir().unwrap();
    let err = Config::load(&Paths::new(dir.path())).unwrap_err();
    assert!(err.to_string().contains("terrarium-install"), "{err}");
}

#[test]
fn a_syncoid_target_with_shell_or_ssh_syntax_is_refused_naming_the_setting() {
    let syncoid = |target: &str| {
        format!(
            "{VALID}syncoid:\n  enabled: true\n  target: '{target}'\n  target_dataset: backup/t\n  ssh_key_file: /etc/terrarium/secrets/syncoid-ssh-key\n"
        )
    };
    Config::from_yaml(&syncoid("backup@zfs.example.com"), "config.yaml").unwrap();
    for target in [
        "a;touch${IFS}x@zfs.example.com",
        "-oProxyCommand=id@zfs.example.com",
        "backup@zfs.example.com;id",
        "zfs.example.com",
        "backup@::1",
    ] {
        let err = Config::from_yaml(&syncoid(target), "config.yaml").expect_err(target).to_string();
        assert!(err.contains("syncoid.target") && err.contains("backup@zfs.example.com"), "{target}: {err}");
    }
    let bad_dataset =
        syncoid("backup@zfs.example.com").replace("target_dataset: backup/t", "target_dataset: 'backup/t;id'");
    assert!(Config::from_yaml(&bad_dataset, "config.yaml").unwrap_err().to_string().contains("syncoid.target_dataset"));
}

#[test]
fn s3_settings_with_control_or_non_ascii_characters_are_refused_naming_the_setting() {
    // Each of these reached the AWS SDK's signer and panicked it.
    let cases = [
        (broken("access_key: AKIAEXAMPLE", "access_key: \"AKIA\\x01EXAMPLE\""), "s3.access_key", "control character"),
        (broken("access_key: AKIAEXAMPLE", "access_key: \"AKIA EXAMPLE\""), "s3.access_key", "a space"),
        (broken("access_key: AKIAEXAMPLE", "access_key: \"\""), "s3.access_key", "is empty"),
        (broken("region: eu-central-1", "region: \"eu-central-1\\r\""), "s3.region", "control character"),
        (broken("region: eu-central-1", "region: \"eu-zentral-\u{fc}\""), "s3.region", "non-ASCII"),
        (
            broken("endpoint: https://s3.example.com", "endpoint: \"https://s3.example.com/\\x7f\""),
            "s3.endpoint",
            "control character",
        ),
        (broken("bucket: terrarium-backups", "bucket: \"terrarium\\tbackups\""), "s3.bucket", "control character"),
        (broken("prefix: host1", "prefix: \"host\\x1b[31m1\""), "s3.prefix", "control character"),
    ];
    for (text, key, problem) in cases {
        let err = Config::from_yaml(&text, "config.yaml").expect_err(key);
        let shown = err.to_string();
        assert!(shown.starts_with(&format!("config.yaml: {key}: ")), "{shown}");
        assert!(shown.contains(problem), "{key}: {shown}");
        assert!(
            !shown.contains('\n') && !shown.contains('\r') && !shown.contains('\u{1b}'),
            "the message itself must be printable: {shown:?}"
        );
        assert!(shown.contains("from your S3 provider"), "{shown}");
    }
}

#[test]
fn migration_errors_name_the_file() {
    let err =
        Config::from_yaml("manage_domain: a.example.com\nfrobnicate: 1\n", "/etc/terrarium/config.yaml").unwrap_err();
    assert!(err.to_string().starts_with("/etc/terrarium/config.yaml: frobnicate: "), "{err}");
    let err =
        Config::from_yaml(&broken("schema_version: 2", "schema_version: 9"), "/etc/terrarium/config.yaml").unwrap_err();
    assert!(err.to_string().starts_with("/etc/terrarium/config.yaml: schema_version: "), "{err}");
}

#[test]
fn a_config_that_is_a_list_says_it_must_be_a_mapping() {
    // serde would read the list into the struct by position and name `[0]` and `u32`.
    let err = Config::from_yaml("- domains\n- emails\n", "/etc/terrarium/config.yaml").unwrap_err().to_string();
    assert!(err.starts_with("/etc/terrarium/config.yaml: "), "{err}");
    assert!(
        err.contains("is a list") && err.contains("mapping of settings") && err.contains("schema_version"),
        "{err}"
    );
    assert!(!err.contains("u32") && !err.contains("[0]"), "{err}");
}

#[test]
fn syncoid_known_hosts_are_checked_line_by_line_naming_the_line_and_ssh_keyscan() {
    const KEY: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIFbJ2o3vsU7t4A/bDvvyVCEpe8Afvg0byn3rZm9xhRt3";
    let syncoid = |lines: &str| {
        format!(
            "{VALID}syncoid:\n  enabled: true\n  target: backup@zfs.example.com\n  target_dataset: backup/t\n  ssh_key_file: /etc/terrarium/secrets/syncoid-ssh-key\n  known_hosts: {lines}\n"
        )
    };
    let config = Config::from_yaml(&syncoid(&format!("['zfs.example.com ssh-ed25519 {KEY}']")), "c").unwrap();
    assert_eq!(config.syncoid.known_hosts.len(), 1);
    let again = Config::from_yaml(&config.to_yaml().unwrap(), "again").unwrap();
    assert_eq!(again, config);
    for (lines, key, problem) in [
        (
            format!("['zfs.example.com ssh-ed25519 {KEY}', 'zfs.example.com ssh-ed25519 AAAA']"),
            "[1]",
            "not an ssh-ed25519",
        ),
        (format!("['zfs.example.com ssh-dsa {KEY}']"), "[0]", "not an ssh host key type"),
        (
            format!("[\"zfs.example.com ssh-ed25519 {KEY}\\nx.example.com ssh-ed25519 {KEY}\"]"),
            "[0]",
            "control character",
        ),
        ("['zfs.example.com']".to_string(), "[0]", "HOST KEYTYPE KEY"),
    ] {
        let err = Config::from_yaml(&syncoid(&lines), "config.yaml").expect_err(&lines).to_string();
        assert!(err.starts_with(&format!("config.yaml: syncoid.known_hosts{key}: ")), "{err}");
        assert!(err.contains(problem) && err.contains("ssh-keyscan -t ed25519 zfs.example.com"), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }
    // Without known hosts nothing is written: configs saved before the key existed stay as they were.
    let plain = Config::from_yaml(VALID, "c").unwrap();
    assert!(!plain.to_yaml().unwrap().contains("known_hosts"));
}
