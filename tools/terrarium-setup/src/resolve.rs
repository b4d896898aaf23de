//! From install flags (or prompt answers in the same struct), the persisted config of
//! a previous install and the host facts, to the config to persist. Pure.
//!
//! Every missing critical flag is reported at once; every invalid value names its flag.

use std::net::IpAddr;
use std::path::PathBuf;

use terrarium_common::Config;
use terrarium_common::config::{
    Domains, Emails, Identity, IdentityMode, S3, S3Encryption, SCHEMA_VERSION, Storage, StorageMode, Syncoid,
    secret_names,
};
use terrarium_common::secret::Secret;

use crate::args::{DomainArgs, EmailArgs, IdpArgs, InstallArgs, S3Args, SyncoidArgs};
use crate::host_facts::dashed_ip;
use crate::secrets::{NewSecret, host_secret_path};
use crate::storage::Discovery;

/// The file-mode pool size when none is given.
pub const DEFAULT_STORAGE_SIZE: &str = "64G";
/// The zone whose wildcard DNS points `<anything>.<dashed-ip>.traefik.me` at that IP.
pub const TRAEFIK_ME: &str = "traefik.me";

/// Secrets given on the command line, in files, in the environment or at a prompt.
#[derive(Debug, Clone, Default)]
pub struct SecretInputs {
    pub oidc_client_secret: Option<Secret>,
    pub s3_secret_key: Option<Secret>,
    pub root_password: Option<Secret>,
    /// The syncoid private key's content, read from `--syncoid-ssh-key`.
    pub syncoid_ssh_key: Option<Secret>,
}

/// What install learned about the host before deciding.
#[derive(Debug, Clone, Default)]
pub struct HostFacts {
    pub root_has_password: bool,
    pub public_ip: Option<IpAddr>,
    /// Discovery for the chosen disk or partition mode (None in file mode).
    pub storage: Option<Discovery>,
    /// The name exports file under (`terrarium_archive::keys::host_name`), for the
    /// interactive S3 probe; None when the host has none.
    pub host_name: Option<String>,
}

/// The decision: the config to persist, the secrets to write next to it, and the
/// one-time secrets handed to Ansible only.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub config: Config,
    pub secrets: Vec<NewSecret>,
    pub root_password: Option<Secret>,
    /// Disk mode will wipe this device (needs a confirmation).
    pub wipes: Option<String>,
}

/// Why the flags do not make a config.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("missing {}: {}", if .0.len() == 1 { "flag" } else { "flags" }, .0.join(", "))]
    Missing(Vec<String>),
    #[error("{flag}: {message}")]
    Invalid { flag: String, message: String },
}

fn invalid(flag: &str, message: impl Into<String>) -> ResolveError {
    ResolveError::Invalid { flag: flag.to_string(), message: message.into() }
}

/// The flag that sets a config key, for error messages.
pub fn flag_for_key(key: &str) -> &'static str {
    match key {
        "domains.root" => "--domain",
        "domains.manage" => "--manage-domain",
        "domains.proxy" => "--proxy-domain",
        "domains.lxd" => "--lxd-domain",
        "domains.auth" => "--auth-domain",
        "emails.contact" => "--email",
        "emails.acme" => "--acme-email",
        "emails.zitadel_admin" => "--zitadel-admin-email",
        "identity.issuer" => "--oidc",
        "identity.client_id" => "--oidc-client",
        "identity.client_secret_file" => "--oidc-secret-file",
        "identity.admin_group" => "--admin-group",
        "storage.source" => "--storage-source",
        "storage.size" => "--storage-size",
        "s3.endpoint" => "--s3-endpoint",
        "s3.bucket" => "--s3-bucket",
        "s3.region" => "--s3-region",
        "s3.prefix" => "--s3-prefix",
        "s3.access_key" => "--s3-access-key",
        "s3.secret_key_file" => "--s3-secret-key-file",
        recipient if recipient.starts_with("s3.encryption.recipients") => "--s3-recipient",
        "syncoid.target" => "--syncoid-target",
        "syncoid.target_dataset" => "--syncoid-target-dataset",
        "syncoid.ssh_key_file" => "--syncoid-ssh-key",
        known if known.starts_with("syncoid.known_hosts") => "--syncoid-known-host",
        _ => "the config",
    }
}

/// Validate a built config, reporting a problem under the flag that set the value.
pub fn validate(config: &Config) -> Result<(), ResolveError> {
    config.validate().map_err(|err| match err {
        terrarium_common::config::ConfigError::Invalid { key, problem, fix, .. } => {
            invalid(flag_for_key(&key), format!("{problem}; {fix}"))
        }
        other => invalid("the config", other.to_string()),
    })
}

const OIDC_SECRET_FLAGS: &str = "--oidc-secret-file (or TERRARIUM_OIDC_CLIENT_SECRET, or --oidc-secret)";
const S3_SECRET_FLAGS: &str = "--s3-secret-key-file (or TERRARIUM_S3_SECRET_KEY, or --s3-secret-key)";
const ROOT_PWD_FLAGS: &str =
    "--root-pwd-file (or TERRARIUM_ROOT_PASSWORD, or --root-pwd; root has no usable password for Cockpit)";

/// Resolve install flags against the previous config (`base`, whose choices count as
/// given) and the host facts. `need_root_password`: false for `--render-only`, which
/// hands nothing to Ansible.
pub fn resolve(
    args: &InstallArgs,
    secrets: &SecretInputs,
    base: Option<&Config>,
    facts: &HostFacts,
    need_root_password: bool,
) -> Result<Resolved, ResolveError> {
    let mut missing = Vec::new();
    let mut new_secrets = Vec::new();

    let domains = resolve_domains(&args.domains, base.map(|c| &c.domains), facts.public_ip, &mut missing)?;
    let emails = resolve_emails(&args.emails, base.map(|c| &c.emails), &mut missing);

    let mode = args.idp.or(base.map(|c| c.identity.mode));
    let identity = match mode {
        None => {
            missing.push("--idp local|oidc".to_string());
            None
        }
        Some(mode) => Some(resolve_identity(
            mode,
            &args.idp_args,
            secrets.oidc_client_secret.as_ref(),
            base.map(|c| &c.identity),
            &mut missing,
            &mut new_secrets,
        )),
    };

    let storage = resolve_storage(args, base.map(|c| &c.storage), facts, &mut missing)?;

    let s3_base = base.map(|c| c.s3.clone()).unwrap_or_default();
    let s3 = resolve_s3(
        args.enable_s3 || s3_base.enabled,
        &args.s3,
        secrets.s3_secret_key.as_ref(),
        s3_base,
        &mut missing,
        &mut new_secrets,
    );
    let syncoid_base = base.map(|c| c.syncoid.clone()).unwrap_or_default();
    let syncoid = resolve_syncoid(
        args.enable_syncoid || syncoid_base.enabled,
        &args.syncoid,
        secrets.syncoid_ssh_key.as_ref(),
        syncoid_base,
        &mut missing,
        &mut new_secrets,
    );

    let root_password = secrets.root_password.clone();
    if need_root_password && root_password.is_none() && !facts.root_has_password {
        missing.push(ROOT_PWD_FLAGS.to_string());
    }

    let (Some(domains), Some(emails), Some(identity), Some((storage, wipes))) = (domains, emails, identity, storage)
    else {
        return Err(ResolveError::Missing(missing));
    };
    if !missing.is_empty() {
        return Err(ResolveError::Missing(missing));
    }
    let config = Config {
        schema_version: SCHEMA_VERSION,
        domains,
        emails,
        identity,
        storage,
        s3,
        syncoid,
        proxy: base.map(|c| c.proxy.clone()).unwrap_or_default(),
        firewall: base.map(|c| c.firewall.clone()).unwrap_or_default(),
        backup: base.map(|c| c.backup.clone()).unwrap_or_default(),
        metrics: base.map(|c| c.metrics.clone()).unwrap_or_default(),
    };
    validate(&config)?;
    Ok(Resolved { config, secrets: new_secrets, root_password, wipes })
}

/// Host names: explicit flags win; then names under `--domain`; then the previous
/// config; then `<service>.<dashed-ip>.traefik.me`.
pub fn resolve_domains(
    args: &DomainArgs,
    base: Option<&Domains>,
    public_ip: Option<IpAddr>,
    missing: &mut Vec<String>,
) -> Result<Option<Domains>, ResolveError> {
    if let Some(root) = &args.domain
        && (root.ends_with('.') || root.starts_with('.'))
    {
        return Err(invalid(
            "--domain",
            format!("`{root}` must not start or end with a dot; write it as `example.com`"),
        ));
    }
    let root = args.domain.clone().or_else(|| base.and_then(|b| b.root.clone()));
    let derived = |service: &str, explicit: &Option<String>, previous: Option<&String>| -> Option<String> {
        if let Some(name) = explicit {
            return Some(name.clone());
        }
        if let Some(root) = &args.domain {
            return Some(format!("{service}.{root}"));
        }
        if let Some(previous) = previous {
            return Some(previous.clone());
        }
        public_ip.map(|ip| format!("{service}.{}.{TRAEFIK_ME}", dashed_ip(ip)))
    };
    let manage = derived("manage", &args.manage_domain, base.map(|b| &b.manage));
    let proxy = derived("proxy", &args.proxy_domain, base.map(|b| &b.proxy));
    let lxd = derived("lxd", &args.lxd_domain, base.map(|b| &b.lxd));
    let auth = derived("auth", &args.auth_domain, base.map(|b| &b.auth));
    match (manage, proxy, lxd, auth) {
        (Some(manage), Some(proxy), Some(lxd), Some(auth)) => Ok(Some(Domains { root, manage, proxy, lxd, auth })),
        _ => {
            missing.push("--domain (or --public-ip: the public IP could not be detected)".to_string());
            Ok(None)
        }
    }
}

pub fn resolve_emails(args: &EmailArgs, base: Option<&Emails>, missing: &mut Vec<String>) -> Option<Emails> {
    let contact = args.email.clone().or_else(|| base.map(|b| b.contact.clone()));
    let Some(contact) = contact else {
        missing.push("--email".to_string());
        return None;
    };
    let acme = args
        .acme_email
        .clone()
        .or_else(|| if args.email.is_some() { None } else { base.map(|b| b.acme.clone()) })
        .unwrap_or_else(|| contact.clone());
    let zitadel_admin = args.zitadel_admin_email.clone().or_else(|| base.and_then(|b| b.zitadel_admin.clone()));
    Some(Emails { contact, acme, zitadel_admin })
}

/// Identity settings for `mode`. Switching to local drops the external client; a new
/// client secret is written to the standard secret file.
pub fn resolve_identity(
    mode: IdentityMode,
    args: &IdpArgs,
    secret: Option<&Secret>,
    base: Option<&Identity>,
    missing: &mut Vec<String>,
    new_secrets: &mut Vec<NewSecret>,
) -> Identity {
    let admin_group = args
        .admin_group
        .clone()
        .or_else(|| base.map(|b| b.admin_group.clone()))
        .unwrap_or_else(|| terrarium_common::config::DEFAULT_ADMIN_GROUP.to_string());
    match mode {
        IdentityMode::Local => {
            Identity { mode, issuer: None, client_id: None, client_secret_file: None, admin_group, client_secret: None }
        }
        IdentityMode::Oidc => {
            let previous = base.filter(|b| b.mode == IdentityMode::Oidc);
            let issuer = args.oidc_issuer.clone().or_else(|| previous.and_then(|b| b.issuer.clone()));
            let client_id = args.oidc_client.clone().or_else(|| previous.and_then(|b| b.client_id.clone()));
            if issuer.is_none() {
                missing.push("--oidc ISSUER_URL".to_string());
            }
            if client_id.is_none() {
                missing.push("--oidc-client".to_string());
            }
            let client_secret_file = match secret {
                Some(value) => {
                    new_secrets.push(NewSecret { name: secret_names::OIDC_CLIENT_SECRET, value: value.clone() });
                    Some(host_secret_path(secret_names::OIDC_CLIENT_SECRET))
                }
                None => {
                    let kept = previous.and_then(|b| b.client_secret_file.clone());
                    if kept.is_none() {
                        missing.push(OIDC_SECRET_FLAGS.to_string());
                    }
                    kept
                }
            };
            Identity { mode, issuer, client_id, client_secret_file, admin_group, client_secret: None }
        }
    }
}

fn resolve_storage(
    args: &InstallArgs,
    base: Option<&Storage>,
    facts: &HostFacts,
    missing: &mut Vec<String>,
) -> Result<Option<(Storage, Option<String>)>, ResolveError> {
    let Some(mode) = args.storage_mode.or(base.map(|b| b.mode)) else {
        missing.push("--storage-mode disk|partition|file".to_string());
        return Ok(None);
    };
    let previous = base.filter(|b| b.mode == mode);
    let pool =
        args.pool_name.clone().or_else(|| base.map(|b| b.pool.clone())).unwrap_or_else(|| "terrarium".to_string());
    match mode {
        StorageMode::File => {
            let source = args.storage_source.clone().or_else(|| previous.and_then(|b| b.source.clone()));
            if source.as_deref() == Some("auto") {
                return Err(invalid(
                    "--storage-source",
                    "`auto` picks a device and applies to disk and partition mode; give the pool file path, or leave it out",
                ));
            }
            let size = args
                .storage_size
                .clone()
                .or_else(|| previous.and_then(|b| b.size.clone()))
                .unwrap_or_else(|| DEFAULT_STORAGE_SIZE.to_string());
            Ok(Some((Storage { mode, source, size: Some(size), pool }, None)))
        }
        StorageMode::Disk | StorageMode::Partition => {
            if args.storage_size.is_some() {
                return Err(invalid(
                    "--storage-size",
                    "applies to file mode only; disk and partition mode use the whole device or free space",
                ));
            }
            let requested = args.storage_source.clone().or_else(|| previous.and_then(|b| b.source.clone()));
            let Some(requested) = requested else {
                missing.push("--storage-source PATH|auto".to_string());
                return Ok(None);
            };
            // The device of an existing install is in use by its own pool: keep it.
            if previous.and_then(|b| b.source.as_deref()) == Some(requested.as_str()) {
                return Ok(Some((Storage { mode, source: Some(requested), size: None, pool }, None)));
            }
            let discovery = facts.storage.clone().unwrap_or_default();
            let target = discovery.select(&requested, mode).map_err(|message| invalid("--storage-source", message))?;
            let wipes = (mode == StorageMode::Disk).then(|| target.path.clone());
            Ok(Some((Storage { mode, source: Some(target.path), size: None, pool }, wipes)))
        }
    }
}

/// S3 settings; `enabled` from `--enable-s3` or the previous config.
pub fn resolve_s3(
    enabled: bool,
    args: &S3Args,
    secret: Option<&Secret>,
    base: S3,
    missing: &mut Vec<String>,
    new_secrets: &mut Vec<NewSecret>,
) -> S3 {
    let pick = |new: &Option<String>, old: Option<String>| new.clone().or(old);
    let mut s3 = S3 {
        enabled,
        endpoint: pick(&args.s3_endpoint, base.endpoint),
        bucket: pick(&args.s3_bucket, base.bucket),
        region: pick(&args.s3_region, base.region),
        prefix: pick(&args.s3_prefix, base.prefix),
        access_key: pick(&args.s3_access_key, base.access_key),
        secret_key_file: base.secret_key_file,
        secret_key: None,
        encryption: match (args.s3_no_encryption, args.s3_recipient.is_empty()) {
            (true, _) => S3Encryption { recipients: Vec::new(), ..base.encryption },
            (false, false) => S3Encryption { recipients: args.s3_recipient.clone(), ..base.encryption },
            (false, true) => base.encryption,
        },
    };
    if let Some(value) = secret {
        new_secrets.push(NewSecret { name: secret_names::S3_SECRET_KEY, value: value.clone() });
        s3.secret_key_file = Some(host_secret_path(secret_names::S3_SECRET_KEY));
    }
    if enabled {
        for (flag, present) in [
            ("--s3-endpoint", s3.endpoint.is_some()),
            ("--s3-bucket", s3.bucket.is_some()),
            ("--s3-access-key", s3.access_key.is_some()),
            (S3_SECRET_FLAGS, s3.secret_key_file.is_some()),
        ] {
            if !present {
                missing.push(flag.to_string());
            }
        }
    }
    s3
}

/// syncoid settings; `enabled` from `--enable-syncoid` or the previous config.
pub fn resolve_syncoid(
    enabled: bool,
    args: &SyncoidArgs,
    key: Option<&Secret>,
    base: Syncoid,
    missing: &mut Vec<String>,
    new_secrets: &mut Vec<NewSecret>,
) -> Syncoid {
    let mut syncoid = Syncoid {
        enabled,
        target: args.syncoid_target.clone().or(base.target),
        target_dataset: args.syncoid_target_dataset.clone().or(base.target_dataset),
        ssh_key_file: base.ssh_key_file,
        known_hosts: if args.syncoid_known_host.is_empty() {
            base.known_hosts
        } else {
            args.syncoid_known_host.clone()
        },
        ssh_key: None,
    };
    if let Some(value) = key {
        new_secrets.push(NewSecret { name: secret_names::SYNCOID_SSH_KEY, value: value.clone() });
        syncoid.ssh_key_file = Some(host_secret_path(secret_names::SYNCOID_SSH_KEY));
    }
    if enabled {
        for (flag, present) in [
            ("--syncoid-target", syncoid.target.is_some()),
            ("--syncoid-target-dataset", syncoid.target_dataset.is_some()),
            ("--syncoid-ssh-key", syncoid.ssh_key_file.is_some()),
        ] {
            if !present {
                missing.push(flag.to_string());
            }
        }
    }
    syncoid
}

/// The host path of the OIDC client secret file in `config`, if any.
pub fn oidc_secret_file(config: &Config) -> Option<PathBuf> {
    config.identity.client_secret_file.clone()
}
