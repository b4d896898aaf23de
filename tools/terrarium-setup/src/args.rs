//! The install flags. The interactive flow fills the same struct by asking for what is
//! missing, then both paths resolve it with the same code, so a prompt can never
//! produce a config the equivalent flags would not.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::Args;
use terrarium_common::config::{IdentityMode, StorageMode};

/// Host names. Without `--domain`, each service is `<service>.<dashed-public-ip>.traefik.me`.
#[derive(Debug, Clone, Default, Args)]
pub struct DomainArgs {
    /// Root domain: services become manage.DOMAIN, proxy.DOMAIN, lxd.DOMAIN, auth.DOMAIN
    #[arg(long, value_name = "DOMAIN")]
    pub domain: Option<String>,
    /// Host name of Cockpit (the management UI)
    #[arg(long, value_name = "HOST")]
    pub manage_domain: Option<String>,
    /// Host name of the Traefik dashboard
    #[arg(long, value_name = "HOST")]
    pub proxy_domain: Option<String>,
    /// Host name of the LXD API and UI
    #[arg(long, value_name = "HOST")]
    pub lxd_domain: Option<String>,
    /// Host name of the identity provider (ZITADEL in local mode)
    #[arg(long, value_name = "HOST")]
    pub auth_domain: Option<String>,
    /// Public IP for the traefik.me default host names (detected when absent)
    #[arg(long, value_name = "IP")]
    pub public_ip: Option<IpAddr>,
}

#[derive(Debug, Clone, Default, Args)]
pub struct EmailArgs {
    /// Contact e-mail of the operator (also the ACME e-mail unless --acme-email)
    #[arg(long, value_name = "EMAIL")]
    pub email: Option<String>,
    /// E-mail for Let's Encrypt registration
    #[arg(long, value_name = "EMAIL")]
    pub acme_email: Option<String>,
    /// E-mail of the first ZITADEL administrator (local identity mode)
    #[arg(long, value_name = "EMAIL")]
    pub zitadel_admin_email: Option<String>,
}

#[derive(Debug, Clone, Default, Args)]
pub struct IdpArgs {
    /// External OIDC issuer URL (oidc mode)
    #[arg(long = "oidc", value_name = "ISSUER_URL")]
    pub oidc_issuer: Option<String>,
    /// OIDC client id (oidc mode)
    #[arg(long, value_name = "ID")]
    pub oidc_client: Option<String>,
    /// OIDC client secret. Visible in argv and shell history: prefer
    /// --oidc-secret-file or TERRARIUM_OIDC_CLIENT_SECRET
    #[arg(long, value_name = "SECRET")]
    pub oidc_secret: Option<String>,
    /// File holding the OIDC client secret
    #[arg(long, value_name = "FILE", conflicts_with = "oidc_secret")]
    pub oidc_secret_file: Option<PathBuf>,
    /// Group whose members may manage the host [default: terrarium-admins]
    #[arg(long, value_name = "GROUP")]
    pub admin_group: Option<String>,
}

#[derive(Debug, Clone, Default, Args)]
pub struct S3Args {
    /// S3 endpoint URL
    #[arg(long, value_name = "URL")]
    pub s3_endpoint: Option<String>,
    #[arg(long, value_name = "BUCKET")]
    pub s3_bucket: Option<String>,
    #[arg(long, value_name = "REGION")]
    pub s3_region: Option<String>,
    /// Key prefix for this host's objects
    #[arg(long, value_name = "PREFIX")]
    pub s3_prefix: Option<String>,
    #[arg(long, value_name = "KEY_ID")]
    pub s3_access_key: Option<String>,
    /// S3 secret key. Visible in argv: prefer --s3-secret-key-file or TERRARIUM_S3_SECRET_KEY
    #[arg(long, value_name = "SECRET")]
    pub s3_secret_key: Option<String>,
    /// File holding the S3 secret key
    #[arg(long, value_name = "FILE", conflicts_with = "s3_secret_key")]
    pub s3_secret_key_file: Option<PathBuf>,
    /// Encrypt exported streams to this public key: `age1...` (`age-keygen -y KEYFILE`)
    /// or an OpenSSH `ssh-ed25519`/`ssh-rsa` line (repeat for several; replaces
    /// s3.encryption.recipients; the next export starts a new full)
    #[arg(long, value_name = "PUBLIC_KEY")]
    pub s3_recipient: Vec<String>,
    /// Stop encrypting exported streams (clears s3.encryption.recipients)
    #[arg(long, conflicts_with = "s3_recipient")]
    pub s3_no_encryption: bool,
}

#[derive(Debug, Clone, Default, Args)]
pub struct SyncoidArgs {
    /// `user@host` of the receiving ZFS host
    #[arg(long, value_name = "USER@HOST")]
    pub syncoid_target: Option<String>,
    /// Dataset on the target that receives the containers
    #[arg(long, value_name = "DATASET")]
    pub syncoid_target_dataset: Option<String>,
    /// Private ssh key for the target (copied to /etc/terrarium/secrets, mode 0600)
    #[arg(long, value_name = "FILE")]
    pub syncoid_ssh_key: Option<PathBuf>,
    /// The target's ssh host key: a known_hosts line as `ssh-keyscan -t ed25519 HOST`
    /// prints it (repeat for several; replaces syncoid.known_hosts)
    #[arg(long, value_name = "LINE")]
    pub syncoid_known_host: Vec<String>,
}

#[derive(Debug, Clone, Default, Args)]
pub struct InstallArgs {
    /// Never prompt: every critical choice must be a flag (--idp, --storage-mode, --email)
    #[arg(long)]
    pub non_interactive: bool,
    /// Answer yes to confirmations (wiping a disk, changing an existing config)
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Write the config, the secrets and the Ansible variables, then stop
    #[arg(long)]
    pub render_only: bool,

    #[command(flatten)]
    pub domains: DomainArgs,
    #[command(flatten)]
    pub emails: EmailArgs,

    /// Identity provider: local (self-hosted ZITADEL) or oidc (an external issuer)
    #[arg(long, value_enum, value_name = "MODE")]
    pub idp: Option<IdentityMode>,
    #[command(flatten)]
    pub idp_args: IdpArgs,

    /// Root password for Cockpit login, when root has none. Visible in argv: prefer
    /// --root-pwd-file or TERRARIUM_ROOT_PASSWORD
    #[arg(long, value_name = "PASSWORD")]
    pub root_pwd: Option<String>,
    /// File holding the root password for Cockpit login
    #[arg(long, value_name = "FILE", conflicts_with = "root_pwd")]
    pub root_pwd_file: Option<PathBuf>,

    /// ZFS pool storage: disk (wipe a dedicated disk), partition (unused partition or
    /// free space), file (a file on the root filesystem)
    #[arg(long, value_enum, value_name = "MODE")]
    pub storage_mode: Option<StorageMode>,
    /// Device (disk, partition modes), `auto` for the largest valid one, or the pool
    /// file path (file mode)
    #[arg(long, value_name = "PATH|auto")]
    pub storage_source: Option<String>,
    /// Size of the pool file in file mode [default: 64G]
    #[arg(long, value_name = "SIZE")]
    pub storage_size: Option<String>,
    /// Name of the ZFS pool Terrarium creates [default: terrarium]
    #[arg(long, value_name = "NAME")]
    pub pool_name: Option<String>,

    /// Export container backups to S3-compatible storage
    #[arg(long)]
    pub enable_s3: bool,
    #[command(flatten)]
    pub s3: S3Args,

    /// Replicate the container datasets to another ZFS host with syncoid
    #[arg(long)]
    pub enable_syncoid: bool,
    #[command(flatten)]
    pub syncoid: SyncoidArgs,

    /// Install on an OS other than Ubuntu 24.04 (for tests and experiments)
    #[arg(long, hide = true)]
    pub allow_unsupported_os: bool,
    /// Read storage facts (lsblk.json, sfdisk-NAME.json, blkid-NAME) from DIR instead
    /// of the block devices (for tests)
    #[arg(long, hide = true, value_name = "DIR")]
    pub storage_facts: Option<PathBuf>,
}
