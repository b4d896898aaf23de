//! `terrarium-backup replicate`: syncoid of `<pool>/containers` to the configured target.

use terrarium_common::Exit;
use terrarium_common::output::print_json;
use terrarium_common::process::Cmd;

use super::lock;
use crate::context::Context;

/// The syncoid command line (pure, so it can be shown with --dry-run and tested).
pub(crate) fn syncoid_cmd(source: &str, destination: &str, ssh_key: Option<&str>) -> Cmd {
    let mut cmd = Cmd::new("syncoid").install_hint("with `apt install sanoid`").args([
        "--recursive",
        "--no-privilege-elevation",
        "--quiet",
    ]);
    if let Some(key) = ssh_key {
        cmd = cmd.args(["--sshkey", key]);
    }
    cmd.args([source, destination])
}

pub fn run(ctx: &Context, to: Option<&str>, dry_run: bool) -> anyhow::Result<Exit> {
    let source = format!("{}/containers", ctx.pool());
    let syncoid = &ctx.config.syncoid;
    let cmd = match to {
        Some(local) => syncoid_cmd(&source, local, None),
        None => {
            if !syncoid.enabled {
                anyhow::bail!(
                    "replication is not enabled (syncoid.enabled is false); enable it with `terrarium-set syncoid`"
                );
            }
            let (Some(target), Some(dataset)) = (&syncoid.target, &syncoid.target_dataset) else {
                anyhow::bail!(
                    "syncoid.target and syncoid.target_dataset must be set; set them with `terrarium-set syncoid`"
                );
            };
            let key = syncoid.ssh_key_file.as_ref().map(|f| ctx.paths.host(f).display().to_string());
            syncoid_cmd(&source, &format!("{target}:{dataset}"), key.as_deref())
        }
    };
    if dry_run {
        if ctx.json {
            print_json(&serde_json::json!({ "dry_run": true, "command": cmd.display() }))?;
        } else {
            println!("{}", cmd.display());
        }
        return Ok(Exit::Success);
    }
    let _lock = lock(ctx)?;
    log::info!(source = source.as_str(); "replicating: {}", cmd.display());
    let started = std::time::Instant::now();
    cmd.output()?;
    let seconds = started.elapsed().as_secs_f64();
    log::info!(source = source.as_str(), seconds = seconds; "replicated");
    if ctx.json {
        print_json(&serde_json::json!({ "dry_run": false, "command": cmd.display(), "seconds": seconds }))?;
    }
    Ok(Exit::Success)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn syncoid_is_recursive_with_the_key() {
        assert_eq!(
            syncoid_cmd("tank/containers", "backup@zfs:pool/t", Some("/etc/terrarium/secrets/syncoid-ssh-key"))
                .display(),
            "syncoid --recursive --no-privilege-elevation --quiet --sshkey /etc/terrarium/secrets/syncoid-ssh-key tank/containers backup@zfs:pool/t"
        );
    }
}
