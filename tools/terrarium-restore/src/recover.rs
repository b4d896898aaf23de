//! The hand-off to `lxd recover`: the dataset exists, LXD must import it.
//!
//! First the volume's `backup.yaml` is rewritten for the new name ([`crate::backup_yaml`]):
//! without that, LXD 5.0 refuses a renamed volume. Then, with `--yes`, no prompt at all:
//! `lxd recover` gets its answers on stdin (`no` to adding a storage pool, `yes` to
//! scanning, `yes` to recovering), the way LXD's own test suite drives it
//! (canonical/lxd `test/suites/backup.sh`, `cat <<EOF | lxd recover`). That last answer
//! recovers every unknown volume LXD found, so a first run answers `no` there and only
//! lists them: when anything but the new instance is unknown, the import is left to the
//! operator. Afterwards LXD must know the instance (checked), and it is started.
//! Without `--yes`, on a terminal this process becomes the interactive `lxd recover`
//! (exec, the terminal passed through); without one it says what to run.

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use terrarium_archive::zfs::Zfs;
use terrarium_common::process::Cmd;

use crate::backup_yaml::{self, Rename};
use crate::instance::{self, InstanceState};

/// The file LXD keeps in every instance volume, describing the instance.
pub const BACKUP_YAML: &str = "backup.yaml";

/// LXD's ZFS driver names an instance snapshot `s0` `<dataset>@snapshot-s0`; other
/// snapshots (sanoid's) are not LXD's and LXD ignores them.
const LXD_SNAPSHOT_PREFIX: &str = "snapshot-";

/// Answers for `lxd recover`: no other pool, scan, and then `recover` (yes or no).
fn answers(recover: bool) -> String {
    format!("no\nyes\n{}\n", if recover { "yes" } else { "no" })
}

/// What the operator reads before `lxd recover` starts.
pub fn explanation(instance: &str, dataset: &str, pool: &str) -> String {
    format!(
        "The dataset {dataset} now holds the files of the new instance {instance}, and its backup.yaml describes {instance}, but LXD does not know it yet.\n\
         `lxd recover` imports it: it asks which storage pools to scan (the one on ZFS pool {pool}), lists the\n\
         unknown volumes it found (the instance {instance} among them) and asks whether to recover them: answer yes.\n\
         Then `lxc start {instance}`.\n"
    )
}

/// The LXD snapshots of a dataset, by their LXD names.
pub fn lxd_snapshots_of(zfs: &Zfs, dataset: &str) -> anyhow::Result<BTreeSet<String>> {
    Ok(zfs
        .snapshots(dataset)?
        .into_iter()
        .filter_map(|s| s.name.strip_prefix(LXD_SNAPSHOT_PREFIX).map(str::to_string))
        .collect())
}

/// Rewrite `<volume_dir>/backup.yaml` (the volume of `rename.old`) for `rename.new`,
/// atomically and with the file's mode kept.
pub fn rewrite_volume(volume_dir: &Path, rename: &Rename<'_>) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let path = volume_dir.join(BACKUP_YAML);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!("read {}; LXD keeps it in every instance volume, and `lxd recover` needs it", path.display())
    })?;
    let mode =
        std::fs::metadata(&path).with_context(|| format!("stat {}", path.display()))?.permissions().mode() & 0o7777;
    let rewritten = backup_yaml::rewrite(&text, rename)
        .with_context(|| format!("rewrite {} for {}", path.display(), rename.new))?;
    terrarium_common::fs::atomic_write(&path, rewritten.as_bytes(), mode)
        .with_context(|| format!("write {}", path.display()))?;
    Ok(())
}

/// A dataset's files, mounted for the rewrite: where it is already mounted, else in a
/// private temporary directory (unmounted on drop).
struct MountedVolume {
    dir: PathBuf,
    temporary: Option<tempfile::TempDir>,
}

impl MountedVolume {
    fn open(zfs: &Zfs, dataset: &str) -> anyhow::Result<Self> {
        let mountpoint = zfs.get(dataset, "mountpoint")?;
        if zfs.get(dataset, "mounted")? == "yes" && mountpoint.starts_with('/') {
            return Ok(Self { dir: PathBuf::from(mountpoint), temporary: None });
        }
        // LXD mounts its volumes itself, with these properties (its ZFS driver sets them on
        // every mount): a legacy mount, never automatic.
        zfs.cmd()
            .args(["set", "mountpoint=legacy", "canmount=noauto", dataset])
            .run()
            .with_context(|| format!("prepare {dataset} for a legacy mount"))?;
        let temporary =
            tempfile::Builder::new().prefix("terrarium-restore-").tempdir().context("a temporary mount directory")?;
        Cmd::new("mount")
            .args(["-t", "zfs", dataset])
            .arg(temporary.path())
            .timeout(Duration::from_secs(60))
            .run()
            .with_context(|| format!("mount {dataset} to edit its backup.yaml"))?;
        Ok(Self { dir: temporary.path().to_path_buf(), temporary: Some(temporary) })
    }
}

impl Drop for MountedVolume {
    fn drop(&mut self) {
        if let Some(temporary) = &self.temporary
            && let Err(err) = Cmd::new("umount").arg(temporary.path()).timeout(Duration::from_secs(60)).run()
        {
            eprintln!(
                "warning: could not unmount {} ({err}); unmount it before `lxc start`",
                temporary.path().display()
            );
        }
    }
}

/// Rewrite the `backup.yaml` of the restored dataset of `old`, now the volume of `new`.
pub fn prepare_dataset(zfs: &Zfs, dataset: &str, old: &str, new: &str) -> anyhow::Result<()> {
    let snapshots = lxd_snapshots_of(zfs, dataset)?;
    let volume = MountedVolume::open(zfs, dataset)?;
    rewrite_volume(&volume.dir, &Rename { old, new, snapshots: &snapshots })
}

/// The volumes `lxd recover` lists as unknown ("Container "web2" on pool "default" in
/// project "default" (includes 0 snapshots)"), as `(kind, name)`.
pub fn unknown_volumes(listing: &str) -> Vec<(String, String)> {
    let Some((_, after)) = listing.split_once("The following unknown volumes have been found:") else {
        return Vec::new();
    };
    after
        .lines()
        .skip_while(|l| l.trim().is_empty())
        .map_while(|l| l.trim().strip_prefix("- ").filter(|l| l.contains(" on pool ")))
        .filter_map(|l| {
            let (kind, rest) = l.split_once(" \"")?;
            let (name, _) = rest.split_once('"')?;
            Some((kind.to_string(), name.to_string()))
        })
        .collect()
}

fn lxd_recover(recover: bool) -> anyhow::Result<String> {
    let out = Cmd::new("lxd")
        .arg("recover")
        .stdin_bytes(answers(recover))
        .timeout(Duration::from_secs(600))
        .install_hint("with `apt install lxd` (or the LXD snap)")
        .output()
        .context("`lxd recover` failed")?;
    Ok(format!("{}{}", out.stdout, out.stderr))
}

/// Import `instance` with `lxd recover`, answering its prompts, when it is the only
/// unknown volume; then start it.
pub fn import_without_prompts(instance: &str) -> anyhow::Result<()> {
    let listing = lxd_recover(false)?;
    let unknown = unknown_volumes(&listing);
    let ours = |(kind, name): &(String, String)| kind == "Container" && name == instance;
    if !unknown.iter().any(ours) {
        anyhow::bail!(
            "`lxd recover` does not list {instance} among the unknown volumes; its output:\n{}",
            listing.trim_end()
        );
    }
    let others: Vec<String> =
        unknown.iter().filter(|v| !ours(v)).map(|(kind, name)| format!("{kind} {name}")).collect();
    if !others.is_empty() {
        anyhow::bail!(
            "`lxd recover` would also import {} (unknown to LXD too); run `lxd recover` yourself to decide, then `lxc start {instance}`",
            others.join(", ")
        );
    }
    let done = lxd_recover(true)?;
    if instance::state(instance)? == InstanceState::Unknown {
        anyhow::bail!("`lxd recover` ran, but LXD does not know {instance}; its output:\n{}", done.trim_end());
    }
    instance::start(instance)?;
    Ok(())
}

/// Rewrite the restored dataset's `backup.yaml`, then import: without prompts with
/// `--yes` (and start the instance), else exec `lxd recover` when stdin is a terminal
/// and the output is for people, else print the command to run. Returns `true` when
/// the instance was imported and started; returns only when not exec'ing (or when exec
/// failed, with the error).
pub fn hand_off(
    zfs: &Zfs,
    old: &str,
    instance: &str,
    dataset: &str,
    pool: &str,
    yes: bool,
    json: bool,
) -> anyhow::Result<bool> {
    prepare_dataset(zfs, dataset, old, instance)?;
    if yes {
        import_without_prompts(instance).with_context(|| {
            format!("import {dataset} as {instance}: the dataset and its rewritten backup.yaml are in place")
        })?;
        eprintln!("Imported {dataset} into LXD as {instance} and started it.");
        return Ok(true);
    }
    eprint!("{}", explanation(instance, dataset, pool));
    if json || !std::io::stdin().is_terminal() {
        eprintln!("No terminal to hand over: run `lxd recover` yourself to finish (or pass --yes next time).");
        return Ok(false);
    }
    eprintln!("Starting `lxd recover` now.");
    let mut recover = std::process::Command::new("lxd");
    recover.arg("recover");
    // This process becomes `lxd recover`: no parent to die with, but the secret
    // variables must not pass on.
    terrarium_common::process::remove_secret_env(&mut recover);
    // exec only returns on failure.
    let err = recover.exec();
    Err(anyhow::Error::new(err).context("could not start `lxd recover`; run it yourself to import the dataset"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_unknown_volumes_come_from_the_listing() {
        // As LXD 5.0.2 prints it when answered on stdin (the prompts end without a newline).
        let listing = "This LXD server currently has the following storage pools:\n - default (backend=\"dir\", source=\"/x\")\n\
            Would you like to recover another storage pool? (yes/no) [default=no]: The recovery process will be scanning the following storage pools:\n\
            \x20- EXISTING: \"default\" (backend=\"dir\", source=\"/x\")\n\
            Would you like to continue with scanning for lost volumes? (yes/no) [default=yes]: Scanning for unknown volumes...\n\
            The following unknown volumes have been found:\n\
            \x20- Container \"web2\" on pool \"default\" in project \"default\" (includes 0 snapshots)\n\
            \x20- Volume \"data\" on pool \"default\" in project \"default\" (includes 1 snapshots)\n\
            Would you like those to be recovered? (yes/no) [default=no]: ";
        assert_eq!(
            unknown_volumes(listing),
            [("Container".to_string(), "web2".to_string()), ("Volume".into(), "data".into())]
        );
        assert!(unknown_volumes("No unknown volumes found. Nothing to do.\n").is_empty());
    }
}
