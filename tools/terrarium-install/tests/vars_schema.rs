//! The Ansible variables contract: `ansible_vars` output for several configs (every
//! golden case's config) validates against ansible/vars.schema.json.

#![allow(clippy::unwrap_used)]

mod common;

use terrarium_common::Config;

fn configs() -> Vec<(String, Config)> {
    let golden = common::manifest_dir().join("tests/golden/install");
    let mut found = Vec::new();
    for case in std::fs::read_dir(&golden).unwrap().flatten() {
        let path = case.path().join("expected/etc/terrarium/config.yaml");
        if let Ok(text) = std::fs::read_to_string(&path) {
            found.push((path.display().to_string(), Config::from_yaml(&text, &path.display().to_string()).unwrap()));
        }
    }
    let oidc_s3 = "schema_version: 2\ndomains: {manage: m.example.com, proxy: p.example.com, lxd: l.example.com, auth: a.example.com}\n\
        emails: {contact: o@example.com, acme: o@example.com, zitadel_admin: z@example.com}\n\
        identity: {mode: oidc, issuer: 'https://id.example.com', client_id: c1, client_secret_file: /etc/terrarium/secrets/oidc-client-secret}\n\
        storage: {mode: disk, source: /dev/sdb}\n\
        s3: {enabled: true, endpoint: 'https://s3.example.com', bucket: backups, region: eu-central-1, prefix: host1, access_key: ak, secret_key_file: /etc/terrarium/secrets/s3-secret-key}\n\
        syncoid: {enabled: true, target: backup@zfs.example.com, target_dataset: backup/t, ssh_key_file: /etc/terrarium/secrets/syncoid-ssh-key}\n\
        firewall: {extra_ports: ['8443/tcp', '60000:61000/udp'], ssh_port: 2222}\nproxy: {reserved_ports: [9000]}\n";
    found.push(("oidc+s3+syncoid".into(), Config::from_yaml(oidc_s3, "inline").unwrap()));
    assert!(found.len() >= 5, "expected the golden configs, found {}", found.len());
    found
}

#[test]
fn ansible_vars_of_every_config_match_the_playbook_schema() {
    let schema_path = common::manifest_dir().join("../../ansible/vars.schema.json");
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&schema_path).unwrap_or_else(|e| panic!("{}: {e}", schema_path.display())),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    for (name, config) in configs() {
        let vars = serde_json::Value::Object(terrarium_common::config::ansible_vars(&config));
        let errors: Vec<String> = validator.iter_errors(&vars).map(|e| format!("{}: {e}", e.instance_path)).collect();
        assert!(errors.is_empty(), "{name}: {errors:#?}");
    }
}
