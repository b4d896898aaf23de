//! Rendering sanoid's configuration: the local time machine of the container datasets.
//!
//! terrarium-backup is the single owner of `/etc/sanoid/sanoid.conf`: the Ansible role
//! calls `terrarium-backup sanoid-config` and never templates the file itself.

use terrarium_common::config::LocalRetention;

/// The template name in sanoid.conf.
pub const TEMPLATE: &str = "terrarium";

/// sanoid.conf for `<pool>/containers`: every child dataset (one per container) gets
/// snapshots with the retention below; the parent itself is not snapshotted.
pub fn render(pool: &str, retention: &LocalRetention) -> String {
    let LocalRetention { frequently, hourly, daily, monthly } = retention;
    format!(
        "# Managed by terrarium-backup (`terrarium-backup sanoid-config`); local edits are overwritten.
# Retention comes from backup.local_retention in /etc/terrarium/config.yaml.

[{pool}/containers]
\tuse_template = {TEMPLATE}
\trecursive = yes
\tprocess_children_only = yes

[template_{TEMPLATE}]
\tfrequently = {frequently}
\thourly = {hourly}
\tdaily = {daily}
\tweekly = 0
\tmonthly = {monthly}
\tyearly = 0
\tautosnap = yes
\tautoprune = yes
"
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_pool_and_the_retention() {
        let text = render("tank", &LocalRetention { frequently: 1, hourly: 2, daily: 3, monthly: 4 });
        assert!(text.contains("[tank/containers]\n\tuse_template = terrarium\n\trecursive = yes\n"), "{text}");
        assert!(text.contains("\tfrequently = 1\n\thourly = 2\n\tdaily = 3\n\tweekly = 0\n\tmonthly = 4\n"), "{text}");
        assert!(text.contains("\tautosnap = yes\n\tautoprune = yes\n"), "{text}");
    }
}
