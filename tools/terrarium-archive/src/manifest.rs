//! The JSON manifest written next to every exported stream (and into the local catalog).
//!
//! A manifest describes one restore point: which snapshot the stream brings a dataset
//! to, which snapshot it starts from (its base, for an incremental), where the
//! compressed stream lives and how to check it. It is written only after the stream was
//! uploaded completely, so a manifest's presence means "this restore point exists".
//!
//! ZFS GUIDs are 64-bit numbers; they are written as decimal *strings* so that `jq` and
//! other tools that read JSON numbers as doubles do not corrupt them.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The newest manifest schema this build reads (it accepts this version and older).
pub const SCHEMA_VERSION: u32 = 2;
/// The schema of a plain stream's manifest: 1, which every release reads.
pub const PLAIN_SCHEMA_VERSION: u32 = 1;
/// The schema of an encrypted stream's manifest: 2, so that a release that cannot
/// decrypt refuses it by its version instead of feeding age bytes to zstd.
pub const ENCRYPTED_SCHEMA_VERSION: u32 = 2;

/// Whether a stream needs a base snapshot on the receiving side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// `zfs send DS@snap`: restorable on its own.
    Full,
    /// `zfs send -I DS@base DS@snap`: needs `base` (by GUID) on the receiving dataset.
    Incremental,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Incremental => "incremental",
        }
    }
}

/// One ZFS snapshot as a manifest records it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SnapshotRef {
    /// The snapshot's short name (after the `@`), such as `autosnap_2026-01-02_03:00:00_daily`.
    pub name: String,
    /// The snapshot's ZFS GUID, the identity a receiving pool checks.
    #[serde(with = "guid_string")]
    pub guid: u64,
    /// The transaction group the snapshot was created in (orders snapshots of a dataset).
    pub createtxg: u64,
}

/// The manifest of one exported stream (one restore point).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub schema_version: u32,
    /// The host name the stream was exported from.
    pub host: String,
    /// The LXD instance (container) name.
    pub instance: String,
    /// The source dataset, `<pool>/containers/<instance>`.
    pub dataset: String,
    /// The snapshot this stream restores to.
    pub snapshot: SnapshotRef,
    /// The snapshot an incremental stream starts from; `null` for a full stream.
    pub base: Option<SnapshotRef>,
    pub kind: Kind,
    /// The S3 key of the compressed stream (see [`crate::keys`]).
    pub object_key: String,
    /// Bytes of the `zfs send` stream before compression.
    pub raw_bytes: u64,
    /// Bytes of the stored object (the zstd frame).
    pub compressed_bytes: u64,
    /// Lower-case hex SHA-256 of the stored object (encrypted, when `encryption` is set).
    pub sha256: String,
    /// How the stored object is encrypted; absent for a plain zstd frame.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<Encryption>,
    /// The flags `zfs send` ran with beyond the snapshots: `-L -e -c` on OpenZFS, so the
    /// stream holds blocks as the pool stored them (compressed, embedded, large) and only
    /// a pool with the same features (zstd, embedded_data, large_blocks) receives it.
    /// Empty (and absent) for a plain send.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub send_flags: Vec<String>,
    /// Always `zstd`; the stream is one zstd frame (`zstd -d` reads it).
    pub compression: String,
    pub zstd_level: i32,
    /// The terrarium-backup version that wrote the stream.
    pub tool_version: String,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub finished_at: OffsetDateTime,
}

/// The client-side encryption of a stream (see [`crate::seal`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Encryption {
    /// Always `age`: the object is an age file (age-encryption.org/v1) holding the zstd frame.
    pub scheme: String,
    /// The fingerprints of the public keys it was encrypted to (see [`crate::seal::fingerprint`]).
    pub recipients: Vec<String>,
    /// Lower-case hex SHA-256 of the plaintext: the zstd frame that `age -d` prints.
    pub plaintext_sha256: String,
}

/// Why a manifest was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// `source` names the field that failed (`snapshot.guid: ...`), when there is one.
    #[error("{origin}: not a Terrarium backup manifest: {source}")]
    Parse { origin: String, source: serde_path_to_error::Error<serde_json::Error> },
    #[error(
        "{origin}: manifest schema version {found} is newer than this tool understands ({SCHEMA_VERSION}); upgrade terrarium-backup"
    )]
    TooNew { origin: String, found: u32 },
    #[error("{origin}: invalid manifest: {field}: {problem}")]
    Invalid { origin: String, field: &'static str, problem: String },
}

impl Manifest {
    /// Parse and validate manifest JSON; `origin` (a key or a path) names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ManifestError> {
        let manifest: Manifest = serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_str(text))
            .map_err(|source| ManifestError::Parse { origin: origin.to_string(), source })?;
        manifest.validate(origin)?;
        Ok(manifest)
    }

    /// Pretty JSON with a trailing newline, as stored.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Check the invariants every reader relies on.
    pub fn validate(&self, origin: &str) -> Result<(), ManifestError> {
        let invalid = |field: &'static str, problem: String| {
            Err(ManifestError::Invalid { origin: origin.to_string(), field, problem })
        };
        if self.schema_version > SCHEMA_VERSION {
            return Err(ManifestError::TooNew { origin: origin.to_string(), found: self.schema_version });
        }
        if self.schema_version == 0 {
            return invalid("schema_version", "is 0".into());
        }
        for (field, value) in [
            ("host", &self.host),
            ("instance", &self.instance),
            ("dataset", &self.dataset),
            ("object_key", &self.object_key),
        ] {
            if value.is_empty() {
                return invalid(field, "is empty".into());
            }
        }
        check_snapshot_name("snapshot.name", &self.snapshot.name).or_else(|p| invalid("snapshot.name", p))?;
        match (self.kind, &self.base) {
            (Kind::Full, Some(_)) => return invalid("base", "a full stream has no base".into()),
            (Kind::Incremental, None) => {
                return invalid("base", "an incremental stream needs a base".into());
            }
            (Kind::Incremental, Some(base)) => {
                check_snapshot_name("base.name", &base.name).or_else(|p| invalid("base.name", p))?;
                if base.createtxg >= self.snapshot.createtxg {
                    return invalid(
                        "base.createtxg",
                        format!("{} is not older than the snapshot's {}", base.createtxg, self.snapshot.createtxg),
                    );
                }
                if base.guid == self.snapshot.guid {
                    return invalid("base.guid", "equals the snapshot's GUID".into());
                }
            }
            (Kind::Full, None) => {}
        }
        if !is_sha256_hex(&self.sha256) {
            return invalid("sha256", format!("`{}` is not 64 lower-case hex digits", self.sha256));
        }
        if let Some(encryption) = &self.encryption {
            if self.schema_version < ENCRYPTED_SCHEMA_VERSION {
                return invalid(
                    "schema_version",
                    format!("an encrypted stream's manifest has schema {ENCRYPTED_SCHEMA_VERSION}"),
                );
            }
            if encryption.scheme != crate::seal::SCHEME {
                return invalid("encryption.scheme", format!("`{}` is not supported (only age)", encryption.scheme));
            }
            if encryption.recipients.is_empty() {
                return invalid("encryption.recipients", "is empty".into());
            }
            if !is_sha256_hex(&encryption.plaintext_sha256) {
                return invalid("encryption.plaintext_sha256", "is not 64 lower-case hex digits".into());
            }
        }
        if self.compression != "zstd" {
            return invalid("compression", format!("`{}` is not supported (only zstd)", self.compression));
        }
        if self.compressed_bytes == 0 {
            return invalid("compressed_bytes", "is 0 (a zstd frame is never empty)".into());
        }
        if self.finished_at < self.started_at {
            return invalid("finished_at", "is before started_at".into());
        }
        Ok(())
    }

    /// The fingerprints of the stream's recipients; `None` for a plain stream.
    pub fn recipients(&self) -> Option<&[String]> {
        self.encryption.as_ref().map(|e| e.recipients.as_slice())
    }

    /// `<dataset>@<snapshot>`.
    pub fn snapshot_full_name(&self) -> String {
        format!("{}@{}", self.dataset, self.snapshot.name)
    }
}

fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn check_snapshot_name(_field: &str, name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("is empty".into());
    }
    // The characters ZFS allows in a snapshot name (but the space, which no tool of ours
    // makes): anything else did not come from `zfs snapshot`, and a name is printed to
    // the operator's terminal by list, verify and restore.
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')) {
        return Err(format!(
            "`{}` is not a short snapshot name (letters, digits, `-`, `_`, `.` and `:` only)",
            terrarium_common::terminal::escape(name)
        ));
    }
    Ok(())
}

/// Serialise a `u64` as a decimal string (accepting a JSON number too, when reading).
mod guid_string {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &u64, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&value.to_string())
    }

    /// A visitor rather than an untagged enum, whose error (`did not match any variant
    /// of untagged enum`) would tell an operator nothing.
    struct Guid;

    impl serde::de::Visitor<'_> for Guid {
        type Value = u64;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a GUID: a decimal number, 0 or more")
        }

        fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<u64, E> {
            Ok(value)
        }

        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<u64, E> {
            text.parse().map_err(|_| E::custom(format!("GUID `{text}` is not a decimal number, 0 or more")))
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
        deserializer.deserialize_any(Guid)
    }
}

/// A plausible manifest, for tests here and (through the `testing` feature) in the tools.
#[cfg(any(test, feature = "testing"))]
pub fn sample(kind: Kind) -> Manifest {
    let at = time::macros::datetime!(2026-01-02 03:00:00 UTC);
    Manifest {
        schema_version: SCHEMA_VERSION,
        host: "host1".into(),
        instance: "web".into(),
        dataset: "tank/containers/web".into(),
        snapshot: SnapshotRef {
            name: "autosnap_2026-01-02_03:00:00_daily".into(),
            guid: 18_000_000_000_000_000_001,
            createtxg: 200,
        },
        base: (kind == Kind::Incremental).then(|| SnapshotRef {
            name: "autosnap_2026-01-01_03:00:00_daily".into(),
            guid: 42,
            createtxg: 100,
        }),
        kind,
        object_key: "p/host1/web/autosnap_2026-01-02_03:00:00_daily.zfs.zst".into(),
        raw_bytes: 1000,
        compressed_bytes: 100,
        sha256: "a".repeat(64),
        encryption: None,
        send_flags: Vec::new(),
        compression: "zstd".into(),
        zstd_level: 3,
        tool_version: crate::VERSION.into(),
        started_at: at,
        finished_at: at + time::Duration::seconds(5),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_guids_as_strings() {
        let manifest = sample(Kind::Incremental);
        let text = manifest.to_json();
        assert!(text.contains(r#""guid": "18000000000000000001""#), "{text}");
        assert!(text.contains(r#""kind": "incremental""#), "{text}");
        assert!(text.contains(r#""started_at": "2026-01-02T03:00:00Z""#), "{text}");
        assert_eq!(Manifest::parse(&text, "m").unwrap(), manifest);
    }

    #[test]
    fn a_snapshot_name_zfs_could_not_have_made_is_refused_and_shown_escaped() {
        for bad in ["a\u{1b}]8;;x\u{7}b", "a b", "a@b", "a/b", "x\r", "caf\u{e9}"] {
            let mut m = sample(Kind::Full);
            m.snapshot.name = bad.into();
            let err = Manifest::parse(&m.to_json(), "m").unwrap_err().to_string();
            assert!(err.contains("snapshot.name") && err.contains("letters, digits"), "{bad:?}: {err}");
            assert!(!err.chars().any(terrarium_common::terminal::is_unsafe), "{bad:?}: {err:?}");
        }
        let mut m = sample(Kind::Full);
        m.snapshot.name = "autosnap_2026-01-02_03:00:00_hourly".into();
        Manifest::parse(&m.to_json(), "m").unwrap();
    }

    #[test]
    fn an_encrypted_stream_is_schema_2_and_names_its_scheme_recipients_and_plaintext() {
        let mut m = sample(Kind::Full);
        m.schema_version = ENCRYPTED_SCHEMA_VERSION;
        m.object_key.push_str(".age");
        m.encryption = Some(Encryption {
            scheme: "age".into(),
            recipients: vec!["SHA256:abc".into()],
            plaintext_sha256: "b".repeat(64),
        });
        let text = m.to_json();
        assert!(text.contains(r#""scheme": "age""#), "{text}");
        assert_eq!(Manifest::parse(&text, "m").unwrap(), m);
        assert!(!sample(Kind::Full).to_json().contains("encryption"), "a plain manifest is as before");
        let broken = |change: fn(&mut Manifest), field: &str| {
            let mut bad = m.clone();
            change(&mut bad);
            let err = Manifest::parse(&bad.to_json(), "m").unwrap_err().to_string();
            assert!(err.contains(field), "{field}: {err}");
        };
        broken(|b| b.schema_version = PLAIN_SCHEMA_VERSION, "schema_version");
        broken(|b| b.encryption.as_mut().unwrap().scheme = "gpg".into(), "encryption.scheme");
        broken(|b| b.encryption.as_mut().unwrap().recipients.clear(), "encryption.recipients");
        broken(|b| b.encryption.as_mut().unwrap().plaintext_sha256 = "x".into(), "encryption.plaintext_sha256");
        // A newer schema than this build reads: refused by its version.
        broken(|b| b.schema_version = SCHEMA_VERSION + 1, "upgrade terrarium-backup");
    }

    #[test]
    fn a_full_has_a_null_base() {
        let text = sample(Kind::Full).to_json();
        assert!(text.contains(r#""base": null"#), "{text}");
        Manifest::parse(&text, "m").unwrap();
    }

    #[test]
    fn inconsistent_manifests_are_rejected_naming_the_field() {
        let mut m = sample(Kind::Full);
        m.base = sample(Kind::Incremental).base;
        assert!(m.validate("k").unwrap_err().to_string().contains("base: a full stream has no base"));
        let mut m = sample(Kind::Incremental);
        m.base.as_mut().unwrap().createtxg = 300;
        assert!(m.validate("k").unwrap_err().to_string().contains("base.createtxg"));
        let mut m = sample(Kind::Full);
        m.sha256 = "XYZ".into();
        assert!(m.validate("k").unwrap_err().to_string().contains("sha256"));
        let mut m = sample(Kind::Full);
        m.schema_version = SCHEMA_VERSION + 1;
        assert!(m.validate("k").unwrap_err().to_string().contains("upgrade terrarium-backup"));
    }

    #[test]
    fn garbage_is_a_parse_error_naming_the_origin() {
        let err = Manifest::parse("{", "s3://b/k.manifest.json").unwrap_err();
        assert!(err.to_string().starts_with("s3://b/k.manifest.json: not a Terrarium backup manifest"), "{err}");
    }

    #[test]
    fn a_field_of_the_wrong_type_is_named() {
        let good: serde_json::Value = serde_json::from_str(&sample(Kind::Incremental).to_json()).unwrap();
        let cases: [(&str, &str, serde_json::Value); 4] = [
            ("/snapshot/guid", "snapshot.guid", serde_json::json!(-5)),
            ("/base/guid", "base.guid", serde_json::json!("12a")),
            ("/raw_bytes", "raw_bytes", serde_json::json!("ten")),
            ("/started_at", "started_at", serde_json::json!("yesterday")),
        ];
        for (pointer, field, value) in cases {
            let mut bad = good.clone();
            *bad.pointer_mut(pointer).unwrap() = value;
            let err = Manifest::parse(&bad.to_string(), "k.manifest.json").unwrap_err().to_string();
            assert!(err.contains(&format!(": {field}: ")), "{field} not named: {err}");
            assert!(!err.contains("untagged"), "{err}");
        }
    }
}
