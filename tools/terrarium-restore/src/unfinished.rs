//! What a restore still owes when it dies between its steps: an instance it stopped and
//! did not start, a dataset it set aside and did not put back or destroy, a new dataset
//! it did not hand to `lxd recover`. Recorded before the step that creates the debt and
//! removed when the run is done (proxy-sync's pending restarts follow the same rule), so
//! the next run pays it (`remote::plan_remote`) instead of leaving an instance down.

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use terrarium_common::Paths;
use terrarium_common::fs::atomic_write;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unfinished {
    /// The run stopped the instance and has not started it again.
    #[serde(default)]
    pub start: bool,
    /// The dataset the run sets aside during its swap.
    #[serde(default)]
    pub aside: Option<String>,
    /// Whether `aside` is to be destroyed once the swap is done (not `--keep-old`).
    #[serde(default)]
    pub destroy_aside: bool,
    /// `--as-new`: the new dataset is being moved into place for `lxd recover`.
    #[serde(default)]
    pub hand_off: bool,
}

/// What the last run left owing for `instance` (the target), if anything.
pub fn read(paths: &Paths, instance: &str) -> anyhow::Result<Option<Unfinished>> {
    let path = paths.restore_unfinished(instance);
    let text = match terrarium_common::fs::read_regular_to_string(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
    };
    serde_json::from_str(&text).map(Some).map_err(|err| {
        anyhow::anyhow!(
            "{} is not what terrarium-restore writes ({err}); check {instance} (`zfs list -r` and `lxc info {instance}`), then delete the file and rerun",
            path.display()
        )
    })
}

/// Record what the run owes from now on.
pub fn record(paths: &Paths, instance: &str, owed: &Unfinished) -> anyhow::Result<()> {
    let path = paths.restore_unfinished(instance);
    let text = serde_json::to_string_pretty(owed)? + "\n";
    atomic_write(&path, text.as_bytes(), 0o644).with_context(|| format!("cannot write {}", path.display()))
}

/// Nothing is owed any more.
pub fn clear(paths: &Paths, instance: &str) -> anyhow::Result<()> {
    let path = paths.restore_unfinished(instance);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(err).with_context(|| format!("cannot remove {}", path.display())),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_and_a_bad_one_says_what_to_do() {
        let root = tempfile::tempdir().unwrap();
        let paths = Paths::new(root.path());
        assert_eq!(read(&paths, "web").unwrap(), None);
        let owed = Unfinished {
            start: true,
            aside: Some("t/terrarium-restore/web.replaced-1".into()),
            ..Unfinished::default()
        };
        record(&paths, "web", &owed).unwrap();
        assert_eq!(read(&paths, "web").unwrap(), Some(owed));
        std::fs::write(paths.restore_unfinished("web"), "{\"start\": 1}").unwrap();
        let err = read(&paths, "web").unwrap_err().to_string();
        assert!(err.contains("restore-unfinished/web.json") && err.contains("delete the file"), "{err}");
        clear(&paths, "web").unwrap();
        clear(&paths, "web").unwrap();
        assert_eq!(read(&paths, "web").unwrap(), None);
    }
}
