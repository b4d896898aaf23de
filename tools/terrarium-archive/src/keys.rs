//! The S3 key layout (documented for operators in docs/backup.md):
//!
//! ```text
//! <prefix>/<host>/<instance>/<snapshot>.zfs.zst        one zstd frame of `zfs send` output
//! <prefix>/<host>/<instance>/<snapshot>.zfs.zst.age    the same, encrypted with age (s3.encryption)
//! <prefix>/<host>/<instance>/<snapshot>.manifest.json  its manifest, written after the stream
//! ```
//!
//! `<prefix>` is `s3.prefix` from the config and is left out (with its `/`) when unset.
//! `<snapshot>` is the short ZFS snapshot name (after the `@`). A restore point is a
//! manifest key; listing `<prefix>/<host>/<instance>/` finds all of an instance's.

/// Suffix of a compressed stream object.
pub const STREAM_SUFFIX: &str = ".zfs.zst";
/// Suffix of an encrypted stream object: an age file holding the zstd frame.
pub const SEALED_STREAM_SUFFIX: &str = ".zfs.zst.age";
/// Suffix of a manifest object.
pub const MANIFEST_SUFFIX: &str = ".manifest.json";
/// Name part of the objects `probe` writes and deletes.
pub const PROBE_NAME: &str = ".terrarium-probe";

/// This host's name, the `<host>` of its keys: `/etc/hostname` under the root, else
/// the kernel's. Export, restore's default `--from-host` and install's S3 probe all ask
/// here, so the probe writes where exports will.
pub fn host_name(paths: &terrarium_common::Paths) -> Result<String, HostNameError> {
    [paths.host("/etc/hostname"), "/proc/sys/kernel/hostname".into()]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .map(|text| text.trim().to_string())
        .find(|name| !name.is_empty())
        .ok_or(HostNameError)
}

/// Neither `/etc/hostname` nor the kernel names this host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot tell this host's name: /etc/hostname is empty; set it with `hostnamectl set-hostname NAME`")]
pub struct HostNameError;

/// Where the objects of one host live in a bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyLayout {
    prefix: String,
    host: String,
}

impl KeyLayout {
    /// `prefix` is `s3.prefix` (leading/trailing `/` ignored), `host` the exporting host.
    pub fn new(prefix: Option<&str>, host: &str) -> Self {
        let prefix = prefix.map(|p| p.trim_matches('/')).unwrap_or("").to_string();
        Self { prefix, host: host.to_string() }
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// `<prefix>/` or empty.
    fn base(&self) -> String {
        if self.prefix.is_empty() { String::new() } else { format!("{}/", self.prefix) }
    }

    /// `<prefix>/<host>/`: everything this host exported.
    pub fn host_prefix(&self) -> String {
        format!("{}{}/", self.base(), self.host)
    }

    /// `<prefix>/<host>/<instance>/`: every object of one instance.
    pub fn instance_prefix(&self, instance: &str) -> String {
        format!("{}{instance}/", self.host_prefix())
    }

    /// `<prefix>/<host>/<instance>/<snapshot>.zfs.zst`.
    pub fn stream_key(&self, instance: &str, snapshot: &str) -> String {
        format!("{}{snapshot}{STREAM_SUFFIX}", self.instance_prefix(instance))
    }

    /// `<prefix>/<host>/<instance>/<snapshot>.zfs.zst.age` when `sealed`, else [`Self::stream_key`].
    pub fn stream_key_for(&self, instance: &str, snapshot: &str, sealed: bool) -> String {
        let stream = self.stream_key(instance, snapshot);
        if sealed { stream + ".age" } else { stream }
    }

    /// `<prefix>/<host>/<instance>/<snapshot>.manifest.json`.
    pub fn manifest_key(&self, instance: &str, snapshot: &str) -> String {
        format!("{}{snapshot}{MANIFEST_SUFFIX}", self.instance_prefix(instance))
    }

    /// The manifest key next to a stream key.
    pub fn manifest_key_for_stream(stream_key: &str) -> Option<String> {
        let stem = stream_key.strip_suffix(SEALED_STREAM_SUFFIX).or_else(|| stream_key.strip_suffix(STREAM_SUFFIX))?;
        Some(format!("{stem}{MANIFEST_SUFFIX}"))
    }

    /// Whether `key` names a stream object (plain or encrypted).
    pub fn is_stream_key(key: &str) -> bool {
        key.ends_with(STREAM_SUFFIX) || key.ends_with(SEALED_STREAM_SUFFIX)
    }

    /// `(instance, snapshot)` of a manifest key of this host, or `None` for other keys.
    pub fn parse_manifest_key(&self, key: &str) -> Option<(String, String)> {
        let rest = key.strip_prefix(&self.host_prefix())?;
        let (instance, file) = rest.split_once('/')?;
        let snapshot = file.strip_suffix(MANIFEST_SUFFIX)?;
        if instance.is_empty() || snapshot.is_empty() || snapshot.contains('/') {
            return None;
        }
        Some((instance.to_string(), snapshot.to_string()))
    }

    /// A unique key for the write-and-delete probe: `<prefix>/<host>/.terrarium-probe-<pid>-<nanos>`.
    pub fn probe_key(&self) -> String {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        format!("{}{PROBE_NAME}-{}-{nanos}", self.host_prefix(), std::process::id())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_host_name_is_the_roots_etc_hostname_else_the_kernels() {
        let root = tempfile::tempdir().unwrap();
        let paths = terrarium_common::Paths::new(root.path());
        std::fs::create_dir_all(root.path().join("etc")).unwrap();
        std::fs::write(root.path().join("etc/hostname"), "box-1\n").unwrap();
        assert_eq!(host_name(&paths).unwrap(), "box-1");
        std::fs::write(root.path().join("etc/hostname"), " \n").unwrap();
        let kernel = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        assert_eq!(host_name(&paths).unwrap(), kernel.trim());
    }

    #[test]
    fn keys_follow_the_documented_layout() {
        let keys = KeyLayout::new(Some("/backups/terrarium/"), "host1");
        assert_eq!(keys.stream_key("web", "autosnap_x_daily"), "backups/terrarium/host1/web/autosnap_x_daily.zfs.zst");
        assert_eq!(
            keys.manifest_key("web", "autosnap_x_daily"),
            "backups/terrarium/host1/web/autosnap_x_daily.manifest.json"
        );
        assert_eq!(keys.instance_prefix("web"), "backups/terrarium/host1/web/");
        let bare = KeyLayout::new(None, "host1");
        assert_eq!(bare.stream_key("web", "s1"), "host1/web/s1.zfs.zst");
        assert!(bare.probe_key().starts_with("host1/.terrarium-probe-"));
    }

    #[test]
    fn manifest_keys_parse_back() {
        let keys = KeyLayout::new(Some("p"), "h");
        let key = keys.manifest_key("web", "autosnap_2026-01-01_00:00:00_daily");
        assert_eq!(keys.parse_manifest_key(&key), Some(("web".into(), "autosnap_2026-01-01_00:00:00_daily".into())));
        assert_eq!(keys.parse_manifest_key(&keys.stream_key("web", "s")), None);
        assert_eq!(keys.parse_manifest_key("p/other/web/s.manifest.json"), None);
        assert_eq!(KeyLayout::manifest_key_for_stream("p/h/web/s.zfs.zst").as_deref(), Some("p/h/web/s.manifest.json"));
        let sealed = keys.stream_key_for("web", "s", true);
        assert_eq!(sealed, "p/h/web/s.zfs.zst.age");
        assert!(KeyLayout::is_stream_key(&sealed) && !KeyLayout::is_stream_key(&key));
        assert_eq!(KeyLayout::manifest_key_for_stream(&sealed).as_deref(), Some("p/h/web/s.manifest.json"));
        assert_eq!(keys.stream_key_for("web", "s", false), keys.stream_key("web", "s"));
    }
}
