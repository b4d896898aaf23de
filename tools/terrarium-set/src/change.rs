//! The subcommands and the change each makes: a pure function from the persisted
//! config and the flags to the new config, touching only the named section.

use std::net::IpAddr;

use clap::{Args as ClapArgs, Subcommand};
use terrarium_common::Config;
use terrarium_common::config::IdentityMode;
use terrarium_common::paths::env;
use terrarium_common::secret::Secret;
use terrarium_setup::args::{EmailArgs, IdpArgs, S3Args, SyncoidArgs};
use terrarium_setup::errors::UsageError;
use terrarium_setup::host_facts::dashed_ip;
use terrarium_setup::resolve::{self, ResolveError, TRAEFIK_ME};
use terrarium_setup::secrets::{NewSecret, read_key_file, secret_from};

#[derive(Debug, Subcommand)]
pub enum Section {
    /// Host names: a new root domain renames every service under it
    Domains(DomainsArgs),
    /// Contact, ACME and ZITADEL administrator e-mails
    Emails(EmailArgs),
    /// Identity provider: local (ZITADEL) or an external OIDC issuer
    Idp(IdpSetArgs),
    /// S3 export of container backups
    S3(S3SetArgs),
    /// syncoid replication to another ZFS host
    Syncoid(SyncoidSetArgs),
}

impl Section {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Domains(_) => "domains",
            Self::Emails(_) => "emails",
            Self::Idp(_) => "idp",
            Self::S3(_) => "s3",
            Self::Syncoid(_) => "syncoid",
        }
    }
}

#[derive(Debug, Clone, ClapArgs)]
pub struct DomainsArgs {
    /// New root domain: services become manage.ROOT, proxy.ROOT, lxd.ROOT, auth.ROOT
    /// unless named below
    #[arg(value_name = "ROOT")]
    pub domain: Option<String>,
    #[arg(long, value_name = "HOST")]
    pub manage_domain: Option<String>,
    #[arg(long, value_name = "HOST")]
    pub proxy_domain: Option<String>,
    #[arg(long, value_name = "HOST")]
    pub lxd_domain: Option<String>,
    #[arg(long, value_name = "HOST")]
    pub auth_domain: Option<String>,
    /// Drop the root domain and use <service>.<dashed IP>.traefik.me names for this IP
    #[arg(long, value_name = "IP", conflicts_with = "domain")]
    pub traefik_me: Option<IpAddr>,
}

#[derive(Debug, Clone, ClapArgs)]
pub struct IdpSetArgs {
    #[arg(value_enum)]
    pub mode: IdentityMode,
    #[command(flatten)]
    pub idp: IdpArgs,
}

#[derive(Debug, Clone, ClapArgs)]
pub struct S3SetArgs {
    /// Turn S3 export on (every required setting must then be known)
    #[arg(long, conflicts_with = "disable")]
    pub enable: bool,
    /// Turn S3 export off (the settings are kept)
    #[arg(long)]
    pub disable: bool,
    #[command(flatten)]
    pub s3: S3Args,
}

#[derive(Debug, Clone, ClapArgs)]
pub struct SyncoidSetArgs {
    /// Turn replication on (every required setting must then be known)
    #[arg(long, conflicts_with = "disable")]
    pub enable: bool,
    /// Turn replication off (the settings are kept)
    #[arg(long)]
    pub disable: bool,
    #[command(flatten)]
    pub syncoid: SyncoidArgs,
}

/// The new config, the secrets to write with it and what must be re-verified.
#[derive(Debug, Clone)]
pub struct Change {
    pub config: Config,
    pub secrets: Vec<NewSecret>,
    pub verify_identity: bool,
    pub verify_s3: bool,
}

impl Change {
    pub fn secret(&self, name: &str) -> Option<&Secret> {
        self.secrets.iter().find(|s| s.name == name).map(|s| &s.value)
    }
}

fn nothing_named(section: &str, flags: &str) -> anyhow::Error {
    UsageError(format!("`set {section}` needs something to change: {flags}")).into()
}

/// Compute the change. Reads secret files and the environment, nothing else.
pub fn compute(section: &Section, current: &Config) -> anyhow::Result<Change> {
    let mut config = current.clone();
    let mut secrets = Vec::new();
    let mut missing = Vec::new();
    let (mut verify_identity, mut verify_s3) = (false, false);
    // `set domains` and `set emails`/`syncoid` have nothing to check over the network.
    match section {
        Section::Domains(args) => {
            let named = args.domain.is_some()
                || args.traefik_me.is_some()
                || args.manage_domain.is_some()
                || args.proxy_domain.is_some()
                || args.lxd_domain.is_some()
                || args.auth_domain.is_some();
            if !named {
                return Err(nothing_named(
                    "domains",
                    "ROOT, --traefik-me IP or --manage-domain/--proxy-domain/--lxd-domain/--auth-domain",
                ));
            }
            let domains = &mut config.domains;
            if let Some(root) = &args.domain {
                domains.root = Some(root.clone());
                domains.manage = format!("manage.{root}");
                domains.proxy = format!("proxy.{root}");
                domains.lxd = format!("lxd.{root}");
                domains.auth = format!("auth.{root}");
            }
            if let Some(ip) = args.traefik_me {
                let dashed = dashed_ip(ip);
                domains.root = None;
                domains.manage = format!("manage.{dashed}.{TRAEFIK_ME}");
                domains.proxy = format!("proxy.{dashed}.{TRAEFIK_ME}");
                domains.lxd = format!("lxd.{dashed}.{TRAEFIK_ME}");
                domains.auth = format!("auth.{dashed}.{TRAEFIK_ME}");
            }
            for (name, target) in [
                (&args.manage_domain, &mut domains.manage),
                (&args.proxy_domain, &mut domains.proxy),
                (&args.lxd_domain, &mut domains.lxd),
                (&args.auth_domain, &mut domains.auth),
            ] {
                if let Some(name) = name {
                    *target = name.clone();
                }
            }
        }
        Section::Emails(args) => {
            if args.email.is_none() && args.acme_email.is_none() && args.zitadel_admin_email.is_none() {
                return Err(nothing_named("emails", "--email, --acme-email or --zitadel-admin-email"));
            }
            if let Some(email) = &args.email {
                config.emails.contact = email.clone();
            }
            if let Some(email) = &args.acme_email {
                config.emails.acme = email.clone();
            }
            if let Some(email) = &args.zitadel_admin_email {
                config.emails.zitadel_admin = Some(email.clone());
            }
        }
        Section::Idp(args) => {
            let secret = secret_from(
                "--oidc-secret-file",
                args.idp.oidc_secret.as_deref(),
                args.idp.oidc_secret_file.as_deref(),
                env::OIDC_CLIENT_SECRET,
            )?;
            if args.mode == IdentityMode::Local
                && (args.idp.oidc_issuer.is_some() || args.idp.oidc_client.is_some() || secret.is_some())
            {
                return Err(UsageError(
                    "--oidc, --oidc-client and the client secret apply to `set idp oidc` only".into(),
                )
                .into());
            }
            config.identity = resolve::resolve_identity(
                args.mode,
                &args.idp,
                secret.as_ref(),
                Some(&current.identity),
                &mut missing,
                &mut secrets,
            );
            verify_identity = true;
        }
        Section::S3(args) => {
            let secret = secret_from(
                "--s3-secret-key-file",
                args.s3.s3_secret_key.as_deref(),
                args.s3.s3_secret_key_file.as_deref(),
                env::S3_SECRET_KEY,
            )?;
            let enabled = if args.enable {
                true
            } else if args.disable {
                false
            } else {
                current.s3.enabled
            };
            config.s3 =
                resolve::resolve_s3(enabled, &args.s3, secret.as_ref(), current.s3.clone(), &mut missing, &mut secrets);
            if config.s3 == current.s3 && secrets.is_empty() && !args.enable && !args.disable {
                return Err(nothing_named("s3", "--enable, --disable or an --s3-* setting"));
            }
            verify_s3 = true;
        }
        Section::Syncoid(args) => {
            let key = match &args.syncoid.syncoid_ssh_key {
                Some(path) => Some(read_key_file("--syncoid-ssh-key", path)?),
                None => None,
            };
            let enabled = if args.enable {
                true
            } else if args.disable {
                false
            } else {
                current.syncoid.enabled
            };
            config.syncoid = resolve::resolve_syncoid(
                enabled,
                &args.syncoid,
                key.as_ref(),
                current.syncoid.clone(),
                &mut missing,
                &mut secrets,
            );
            if config.syncoid == current.syncoid && secrets.is_empty() && !args.enable && !args.disable {
                return Err(nothing_named("syncoid", "--enable, --disable or a --syncoid-* setting"));
            }
        }
    }
    if !missing.is_empty() {
        return Err(ResolveError::Missing(missing).into());
    }
    resolve::validate(&config)?;
    Ok(Change { config, secrets, verify_identity, verify_s3 })
}
