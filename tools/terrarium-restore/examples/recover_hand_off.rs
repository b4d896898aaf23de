//! The `--as-new` hand-off of a volume already in place, for `tests/recover.rs`: the
//! same two functions the restore calls after mounting the dataset. A process of its
//! own because `lxd` and `lxc` find the test's daemon through its environment
//! (`LXD_DIR`, `LXD_CONF`), which a test cannot set for itself.
//!
//!     recover_hand_off VOLUME_DIR OLD NEW

use std::collections::BTreeSet;
use std::path::Path;

use terrarium_restore::backup_yaml::Rename;
use terrarium_restore::recover;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [volume, old, new] = args.as_slice() else {
        anyhow::bail!("usage: recover_hand_off VOLUME_DIR OLD NEW");
    };
    recover::rewrite_volume(Path::new(volume), &Rename { old, new, snapshots: &BTreeSet::new() })?;
    recover::import_without_prompts(new)
}
