//! Dataset names a restore reads and writes. Pure.
//!
//! LXD keeps a container on `<pool>/containers/<instance>`. A restore from S3 receives
//! into a staging dataset outside `containers/` (so sanoid, which snapshots
//! `<pool>/containers` recursively, and `lxd recover` never see half-received data), and
//! sets the replaced dataset aside under a name that says what it is and when.

/// The parent of staging and set-aside datasets.
pub const WORK_PARENT: &str = "terrarium-restore";

pub fn container_dataset(pool: &str, instance: &str) -> String {
    format!("{pool}/containers/{instance}")
}

/// `<pool>/terrarium-restore`.
pub fn work_parent(pool: &str) -> String {
    format!("{pool}/{WORK_PARENT}")
}

/// Where an S3 chain is received before it replaces (or becomes) `target_instance`.
/// Fixed per instance, so a rerun after a killed run finds and removes the stale one.
pub fn staging_dataset(pool: &str, target_instance: &str) -> String {
    format!("{}/{target_instance}.staging", work_parent(pool))
}

/// Where the replaced dataset goes during the swap: `<pool>/terrarium-restore/<instance>.replaced-<stamp>`.
pub fn aside_dataset(pool: &str, instance: &str, stamp: &str) -> String {
    format!("{}/{instance}.replaced-{stamp}", work_parent(pool))
}

/// Datasets left aside for `instance` by earlier runs, from a list of dataset names.
pub fn asides_of<'a>(pool: &str, instance: &str, datasets: &'a [String]) -> Vec<&'a str> {
    let prefix = format!("{}/{instance}.replaced-", work_parent(pool));
    datasets.iter().map(String::as_str).filter(|d| d.starts_with(&prefix) && !d.contains('@')).collect()
}

pub use terrarium_common::instance::check_name as check_instance_name;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_outside_containers_until_the_swap() {
        assert_eq!(container_dataset("tank", "web"), "tank/containers/web");
        assert_eq!(staging_dataset("tank", "web"), "tank/terrarium-restore/web.staging");
        assert_eq!(
            aside_dataset("tank", "web", "20261128T120000Z"),
            "tank/terrarium-restore/web.replaced-20261128T120000Z"
        );
        let all = vec![
            "tank/terrarium-restore/web.replaced-1".to_string(),
            "tank/terrarium-restore/web.replaced-1@s".to_string(),
            "tank/terrarium-restore/webby.replaced-1".to_string(),
            "tank/terrarium-restore/web.staging".to_string(),
        ];
        assert_eq!(asides_of("tank", "web", &all), ["tank/terrarium-restore/web.replaced-1"]);
    }
}
