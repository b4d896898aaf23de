//! The variables contract between the Rust tools and the Ansible playbook.
//!
//! `terrarium-install`, `terrarium-set` and `terrarium-reconfigure` hand the persisted
//! config to `ansible-playbook` as these `terrarium_*` variables (JSON, `-e @file`).
//! The playbook's `ansible/vars.schema.json` documents and checks the same names; a
//! test keeps the two in step. Secrets are passed as file paths, never values.

use serde_json::{Map, Value, json};

use super::Config;

/// The `terrarium_*` variables for `config`.
pub fn ansible_vars(config: &Config) -> Map<String, Value> {
    let path = |p: &Option<std::path::PathBuf>| p.as_ref().map(|p| p.display().to_string());
    let vars = json!({
        "terrarium_schema_version": config.schema_version,
        "terrarium_domain": config.domains.root,
        "terrarium_manage_domain": config.domains.manage,
        "terrarium_proxy_domain": config.domains.proxy,
        "terrarium_lxd_domain": config.domains.lxd,
        "terrarium_auth_domain": config.domains.auth,
        "terrarium_contact_email": config.emails.contact,
        "terrarium_acme_email": config.emails.acme,
        "terrarium_zitadel_admin_email": config.emails.zitadel_admin,
        "terrarium_idp_mode": config.identity.mode,
        "terrarium_oidc_issuer": config.issuer(),
        "terrarium_oidc_client_id": config.identity.client_id,
        "terrarium_oidc_client_secret_file": path(&config.identity.client_secret_file),
        "terrarium_admin_group": config.identity.admin_group,
        "terrarium_storage_mode": config.storage.mode,
        "terrarium_storage_source": config.storage.source,
        "terrarium_storage_size": config.storage.size,
        "terrarium_pool_name": config.storage.pool,
        "terrarium_s3_enabled": config.s3.enabled,
        "terrarium_s3_endpoint": config.s3.endpoint,
        "terrarium_s3_bucket": config.s3.bucket,
        "terrarium_s3_region": config.s3.region,
        "terrarium_s3_prefix": config.s3.prefix,
        "terrarium_s3_access_key": config.s3.access_key,
        "terrarium_s3_secret_key_file": path(&config.s3.secret_key_file),
        "terrarium_syncoid_enabled": config.syncoid.enabled,
        "terrarium_syncoid_target": config.syncoid.target,
        "terrarium_syncoid_target_dataset": config.syncoid.target_dataset,
        "terrarium_syncoid_ssh_key_file": path(&config.syncoid.ssh_key_file),
        "terrarium_ssh_port": config.firewall.ssh_port,
        "terrarium_firewall_extra_ports": config.firewall.extra_ports,
        "terrarium_proxy_reserved_ports": config.proxy.reserved_ports,
        "terrarium_zstd_level": config.backup.zstd_level,
        "terrarium_sanoid_retention": {
            "frequently": config.backup.local_retention.frequently,
            "hourly": config.backup.local_retention.hourly,
            "daily": config.backup.local_retention.daily,
            "monthly": config.backup.local_retention.monthly,
        },
    });
    match vars {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variable_is_namespaced_and_secrets_are_paths() {
        let config = Config::from_yaml(super::super::tests::VALID, "c").unwrap();
        let vars = ansible_vars(&config);
        assert!(vars.keys().all(|k| k.starts_with("terrarium_")));
        assert_eq!(vars["terrarium_s3_secret_key_file"], "/etc/terrarium/secrets/s3-secret-key");
        assert_eq!(vars["terrarium_idp_mode"], "oidc");
        assert!(!serde_json::to_string(&vars).unwrap().contains("secret_key\""));
    }
}
