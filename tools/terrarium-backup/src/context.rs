//! What every command starts from: paths, config, host name, the S3 store.

use anyhow::Context as _;
use terrarium_common::{Config, Paths};

use terrarium_archive::keys::KeyLayout;
use terrarium_archive::s3::{S3Settings, Store};
use terrarium_archive::seal::{Identities, Recipients};

/// The loaded inputs of one run.
#[derive(Debug)]
pub struct Context {
    pub paths: Paths,
    pub config: Config,
    pub json: bool,
}

impl Context {
    pub fn load(global: &terrarium_common::cli::GlobalArgs) -> anyhow::Result<Self> {
        let paths = global.paths();
        let config = Config::load(&paths)?;
        Ok(Self { paths, config, json: global.json })
    }

    pub fn pool(&self) -> &str {
        &self.config.storage.pool
    }

    /// The host name in S3 keys and manifests.
    pub fn host(&self) -> anyhow::Result<String> {
        Ok(terrarium_archive::keys::host_name(&self.paths)?)
    }

    pub fn s3_enabled(&self) -> bool {
        self.config.s3.enabled
    }

    /// The S3 store and this host's key layout; S3 must be enabled.
    pub fn store(&self) -> anyhow::Result<(Store, KeyLayout)> {
        if !self.s3_enabled() {
            anyhow::bail!("S3 export is not enabled (s3.enabled is false); enable it with `terrarium-set s3`");
        }
        let settings = S3Settings::from_config(&self.config, &self.paths)?;
        let store = Store::new(&settings).context("S3")?;
        let keys = store.keys(&self.host()?);
        Ok((store, keys))
    }

    /// The recipients exports are encrypted to; `None` when encryption is off.
    pub fn recipients(&self) -> Result<Option<Recipients>, terrarium_archive::seal::SealError> {
        let encryption = &self.config.s3.encryption;
        if !encryption.enabled() {
            return Ok(None);
        }
        Recipients::parse(&encryption.recipients).map(Some)
    }

    /// The private key that opens encrypted streams: `--identity FILE` when given, else
    /// `s3.encryption.identity_file` (under the root prefix); `None` when neither is set.
    pub fn identities(
        &self,
        flag: Option<&std::path::Path>,
    ) -> Result<Option<Identities>, terrarium_archive::seal::SealError> {
        match (flag, &self.config.s3.encryption.identity_file) {
            (Some(path), _) => Identities::load(path).map(Some),
            (None, Some(configured)) => Identities::load(&self.paths.host(configured)).map(Some),
            (None, None) => Ok(None),
        }
    }
}
