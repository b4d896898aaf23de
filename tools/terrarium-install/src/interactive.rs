//! The interactive install: ask for each choice a flag did not give (defaults from the
//! previous install or sensible ones), re-ask on invalid input and on a failed check,
//! then resolve the answers exactly as flags would be resolved.

use dialoguer::{Confirm, Input, Password, Select};
use terrarium_common::Config;
use terrarium_common::config::validate::{is_email, is_group_name, is_hostname, is_url, parse_size};
use terrarium_common::config::{IdentityMode, S3, StorageMode};
use terrarium_common::output::human_bytes;
use terrarium_common::secret::Secret;

use terrarium_setup::args::InstallArgs;
use terrarium_setup::host_facts::dashed_ip;
use terrarium_setup::preflight::Verifiers;
use terrarium_setup::resolve::{self, HostFacts, Resolved, SecretInputs, TRAEFIK_ME};
use terrarium_setup::storage::TargetKind;

type Ask<T> = Result<T, dialoguer::Error>;

pub fn confirm(prompt: &str, default: bool) -> Ask<bool> {
    Confirm::new().with_prompt(prompt).default(default).interact()
}

fn text(prompt: &str, default: Option<String>, check: impl Fn(&str) -> Result<(), String>) -> Ask<String> {
    let mut input = Input::<String>::new().with_prompt(prompt);
    if let Some(default) = default {
        input = input.default(default);
    }
    input.validate_with(|value: &String| check(value.trim())).interact_text().map(|v| v.trim().to_string())
}

fn optional(prompt: &str, default: Option<String>, check: impl Fn(&str) -> Result<(), String>) -> Ask<Option<String>> {
    let value = Input::<String>::new()
        .with_prompt(prompt)
        .default(default.unwrap_or_default())
        .allow_empty(true)
        .validate_with(|value: &String| if value.trim().is_empty() { Ok(()) } else { check(value.trim()) })
        .interact_text()?;
    let value = value.trim().to_string();
    Ok((!value.is_empty()).then_some(value))
}

fn secret(prompt: &str) -> Ask<Secret> {
    Password::new().with_prompt(prompt).interact().map(Secret::new)
}

fn explain(line: &str) {
    eprintln!("\n{line}");
}

fn hostname_check(value: &str) -> Result<(), String> {
    if is_hostname(value) {
        Ok(())
    } else {
        Err(format!("`{value}` is not a fully qualified host name such as example.com"))
    }
}

fn email_check(value: &str) -> Result<(), String> {
    if is_email(value) { Ok(()) } else { Err(format!("`{value}` is not an e-mail address")) }
}

/// Fill `args` and `secrets` by asking, then resolve. Flags already given are not asked.
pub fn ask(
    args: &mut InstallArgs,
    secrets: &mut SecretInputs,
    base: Option<&Config>,
    facts: &mut HostFacts,
    need_root_password: bool,
    verifiers: Verifiers<'_>,
) -> anyhow::Result<Resolved> {
    eprintln!("Terrarium install: answer each question or press Enter for the default in brackets.");
    ask_domains(args, base, facts)?;
    ask_emails(args, base)?;
    ask_identity(args, secrets, base, verifiers)?;
    ask_storage(args, base, facts)?;
    if need_root_password && secrets.root_password.is_none() && !facts.root_has_password {
        explain("Cockpit logs in with root's local password after the OIDC gate, and root has none.");
        let password = Password::new()
            .with_prompt("Root password for Cockpit")
            .with_confirmation("Repeat it", "the passwords differ; try again")
            .interact()?;
        secrets.root_password = Some(Secret::new(password));
    }
    ask_s3(args, secrets, base, facts.host_name.as_deref(), verifiers)?;
    ask_syncoid(args, secrets, base)?;
    // The wipe was confirmed when the disk was chosen.
    Ok(resolve::resolve(args, secrets, base, facts, need_root_password)?)
}

fn ask_domains(args: &mut InstallArgs, base: Option<&Config>, facts: &mut HostFacts) -> anyhow::Result<()> {
    let domains = &mut args.domains;
    if domains.domain.is_some() || base.is_some() && domains.manage_domain.is_none() && domains.public_ip.is_none() {
        return Ok(());
    }
    explain(
        "Services get host names under a root domain you own (its DNS points here), or free traefik.me names for this IP.",
    );
    domains.domain = optional("Root domain (empty for traefik.me names)", None, hostname_check)?;
    if domains.domain.is_none() {
        let detected = facts.public_ip.map(|ip| ip.to_string());
        let ip = text("Public IP of this host", detected, |v| {
            v.parse::<std::net::IpAddr>().map(|_| ()).map_err(|_| format!("`{v}` is not an IP address"))
        })?;
        let ip: std::net::IpAddr = ip.parse()?;
        eprintln!("Services will be manage.{0}.{TRAEFIK_ME}, proxy.…, lxd.…, auth.…", dashed_ip(ip));
        domains.public_ip = Some(ip);
        facts.public_ip = Some(ip);
    }
    Ok(())
}

fn ask_emails(args: &mut InstallArgs, base: Option<&Config>) -> anyhow::Result<()> {
    let emails = &mut args.emails;
    if emails.email.is_none() {
        explain("The contact e-mail is used for Let's Encrypt and as the first administrator's address.");
        let previous = base.map(|c| c.emails.contact.clone());
        emails.email = Some(text("Contact e-mail", previous, email_check)?);
    }
    Ok(())
}

fn ask_identity(
    args: &mut InstallArgs,
    secrets: &mut SecretInputs,
    base: Option<&Config>,
    verifiers: Verifiers<'_>,
) -> anyhow::Result<()> {
    if args.idp.is_none() {
        explain("Management logins go through OIDC: a ZITADEL Terrarium runs here, or your own provider.");
        let default = usize::from(base.is_some_and(|c| c.identity.mode == IdentityMode::Oidc));
        let choice = Select::new()
            .with_prompt("Identity provider")
            .items(&[
                "local - self-hosted ZITADEL on the auth host name",
                "oidc - an external OIDC issuer (Google, Entra, Keycloak, ...)",
            ])
            .default(default)
            .interact()?;
        args.idp = Some(if choice == 0 { IdentityMode::Local } else { IdentityMode::Oidc });
    }
    let idp = &mut args.idp_args;
    if args.idp == Some(IdentityMode::Oidc) {
        let previous = base.filter(|c| c.identity.mode == IdentityMode::Oidc);
        loop {
            let issuer = match idp.oidc_issuer.take() {
                Some(issuer) => issuer,
                None => text("Issuer URL", previous.and_then(|c| c.identity.issuer.clone()), |v| {
                    if is_url(v, false) { Ok(()) } else { Err("use the https issuer URL of your provider".into()) }
                })?,
            };
            let client = match idp.oidc_client.take() {
                Some(client) => client,
                None => text("Client id", previous.and_then(|c| c.identity.client_id.clone()), |v| {
                    if v.is_empty() { Err("required".into()) } else { Ok(()) }
                })?,
            };
            let client_secret = match secrets.oidc_client_secret.take() {
                Some(secret) => secret,
                None => secret("Client secret")?,
            };
            match verifiers.oidc.verify(&issuer, &client, &client_secret) {
                Ok(()) => {
                    eprintln!("The issuer answered and accepted the client.");
                    idp.oidc_issuer = Some(issuer);
                    idp.oidc_client = Some(client);
                    secrets.oidc_client_secret = Some(client_secret);
                    break;
                }
                Err(message) => {
                    eprintln!("OIDC check of {issuer} failed: {message}. Enter the settings again.")
                }
            }
        }
        if idp.admin_group.is_none() {
            let previous = base
                .map(|c| c.identity.admin_group.clone())
                .unwrap_or_else(|| terrarium_common::config::DEFAULT_ADMIN_GROUP.into());
            explain("Your provider must put this group in the `groups` claim of the people who may manage the host.");
            idp.admin_group = Some(text("Admin group", Some(previous), |v| {
                if is_group_name(v) { Ok(()) } else { Err("letters, digits, `.`, `_`, `-`".into()) }
            })?);
        }
    } else if args.emails.zitadel_admin_email.is_none() {
        let default = base.and_then(|c| c.emails.zitadel_admin.clone()).or_else(|| args.emails.email.clone());
        args.emails.zitadel_admin_email = Some(text("ZITADEL administrator e-mail", default, email_check)?);
    }
    Ok(())
}

fn ask_storage(args: &mut InstallArgs, base: Option<&Config>, facts: &mut HostFacts) -> anyhow::Result<()> {
    if args.storage_mode.is_some() && (args.storage_mode == Some(StorageMode::File) || args.storage_source.is_some()) {
        if let Some(mode) = args.storage_mode.filter(|m| *m != StorageMode::File) {
            facts.storage = Some(crate::install::discover_storage(args, mode)?);
        }
        return Ok(());
    }
    if base.is_some() && args.storage_mode.is_none() {
        return Ok(());
    }
    let disks = crate::install::discover_storage(args, StorageMode::Disk)?;
    let partitions = crate::install::discover_storage(args, StorageMode::Partition)?;
    loop {
        let mode = match args.storage_mode {
            Some(mode) => mode,
            None => {
                explain(
                    "Containers live on a ZFS pool: on a dedicated disk, a partition or free space, or a file on the root disk.",
                );
                let items = [
                    format!("disk - wipe a dedicated non-root disk ({} found)", disks.targets.len()),
                    format!("partition - an unused partition or free space ({} found)", partitions.targets.len()),
                    "file - a pool file on the root filesystem (works everywhere)".to_string(),
                ];
                let default = if !disks.targets.is_empty() {
                    0
                } else if !partitions.targets.is_empty() {
                    1
                } else {
                    2
                };
                match Select::new().with_prompt("Storage").items(&items).default(default).interact()? {
                    0 => StorageMode::Disk,
                    1 => StorageMode::Partition,
                    _ => StorageMode::File,
                }
            }
        };
        if mode == StorageMode::File {
            args.storage_mode = Some(mode);
            if args.storage_size.is_none() {
                let size = text("Pool file size", Some(resolve::DEFAULT_STORAGE_SIZE.to_string()), |v| {
                    if parse_size(v).is_some() { Ok(()) } else { Err("a size such as 64G".into()) }
                })?;
                args.storage_size = Some(size);
            }
            return Ok(());
        }
        let discovery = if mode == StorageMode::Disk { &disks } else { &partitions };
        for refusal in &discovery.refused {
            eprintln!("  not offered: {} {}", refusal.path, refusal.reason);
        }
        if discovery.targets.is_empty() {
            eprintln!("No usable target for this mode; choose another.");
            args.storage_mode = None;
            continue;
        }
        let items: Vec<String> = discovery.targets.iter().map(|t| t.describe()).collect();
        let index = Select::new().with_prompt("Device (largest first)").items(&items).default(0).interact()?;
        let target = &discovery.targets[index];
        if target.kind == TargetKind::Disk {
            let question = format!(
                "Wipe {} ({})? Every partition and all data on it are lost",
                target.path,
                human_bytes(target.size)
            );
            if !confirm(&question, false)? {
                args.storage_mode = None;
                continue;
            }
            args.yes = true;
        }
        args.storage_mode = Some(mode);
        args.storage_source = Some(target.path.clone());
        facts.storage = Some(discovery.clone());
        return Ok(());
    }
}

fn ask_s3(
    args: &mut InstallArgs,
    secrets: &mut SecretInputs,
    base: Option<&Config>,
    host_name: Option<&str>,
    verifiers: Verifiers<'_>,
) -> anyhow::Result<()> {
    let previous = base.map(|c| c.s3.clone()).unwrap_or_default();
    if !args.enable_s3 {
        explain("Backups can also be exported to S3-compatible storage for disaster recovery.");
        args.enable_s3 = confirm("Export backups to S3?", previous.enabled)?;
    }
    if !args.enable_s3 {
        return Ok(());
    }
    let s3 = &mut args.s3;
    // After a failed probe the answers just given become the defaults.
    let mut last = previous;
    loop {
        let endpoint = match s3.s3_endpoint.take() {
            Some(v) => v,
            None => text("S3 endpoint URL", last.endpoint.clone(), |v| {
                if is_url(v, true) { Ok(()) } else { Err("an http(s) URL".into()) }
            })?,
        };
        let bucket = match s3.s3_bucket.take() {
            Some(v) => v,
            None => text("Bucket", last.bucket.clone(), |v| {
                if v.len() >= 3 { Ok(()) } else { Err("3 to 63 characters".into()) }
            })?,
        };
        let region = match s3.s3_region.take() {
            Some(v) => Some(v),
            None => optional("Region (empty for the provider default)", last.region.clone(), |_| Ok(()))?,
        };
        let prefix = match s3.s3_prefix.take() {
            Some(v) => Some(v),
            None => optional("Key prefix (empty for none)", last.prefix.clone(), |_| Ok(()))?,
        };
        let access_key = match s3.s3_access_key.take() {
            Some(v) => v,
            None => text("Access key id", last.access_key.clone(), |v| {
                if v.is_empty() { Err("required".into()) } else { Ok(()) }
            })?,
        };
        let secret_key = match secrets.s3_secret_key.take() {
            Some(v) => v,
            None => secret("Secret key")?,
        };
        let settings = S3 {
            enabled: true,
            endpoint: Some(endpoint.clone()),
            bucket: Some(bucket.clone()),
            region: region.clone(),
            prefix: prefix.clone(),
            access_key: Some(access_key.clone()),
            secret_key_file: None,
            secret_key: None,
            encryption: Default::default(),
        };
        let probed = match host_name {
            Some(host) => verifiers.s3.probe(&settings, &secret_key, host),
            None => Err(terrarium_setup::host_facts::HostNameError.to_string()),
        };
        match probed {
            Ok(()) => {
                eprintln!("The probe object was written and deleted.");
                s3.s3_endpoint = Some(endpoint);
                s3.s3_bucket = Some(bucket);
                s3.s3_region = region;
                s3.s3_prefix = prefix;
                s3.s3_access_key = Some(access_key);
                secrets.s3_secret_key = Some(secret_key);
                return Ok(());
            }
            Err(message) => {
                eprintln!("S3 probe of bucket `{bucket}` failed: {message}. Enter the settings again.");
                last = settings;
            }
        }
    }
}

fn ask_syncoid(args: &mut InstallArgs, secrets: &mut SecretInputs, base: Option<&Config>) -> anyhow::Result<()> {
    let previous = base.map(|c| c.syncoid.clone()).unwrap_or_default();
    if !args.enable_syncoid {
        explain("syncoid can replicate the containers to another ZFS host over ssh.");
        args.enable_syncoid = confirm("Replicate with syncoid?", previous.enabled)?;
    }
    if !args.enable_syncoid {
        return Ok(());
    }
    let syncoid = &mut args.syncoid;
    if syncoid.syncoid_target.is_none() {
        syncoid.syncoid_target = Some(text("Target (user@host)", previous.target.clone(), |v| {
            if v.contains('@') { Ok(()) } else { Err("write user@host".into()) }
        })?);
    }
    if syncoid.syncoid_target_dataset.is_none() {
        syncoid.syncoid_target_dataset = Some(text("Target dataset", previous.target_dataset.clone(), |v| {
            if terrarium_common::config::validate::is_zfs_dataset_name(v) {
                Ok(())
            } else {
                Err("a dataset such as backup/terrarium".into())
            }
        })?);
    }
    if secrets.syncoid_ssh_key.is_none() && previous.ssh_key_file.is_none() {
        loop {
            let path = text("Private ssh key file", None, |v| {
                if std::path::Path::new(v).is_file() { Ok(()) } else { Err(format!("{v} is not a file")) }
            })?;
            match terrarium_setup::secrets::read_key_file("--syncoid-ssh-key", std::path::Path::new(&path)) {
                Ok(key) => {
                    secrets.syncoid_ssh_key = Some(key);
                    syncoid.syncoid_ssh_key = Some(path.into());
                    break;
                }
                Err(err) => eprintln!("{err}"),
            }
        }
    }
    Ok(())
}
