//! `terrarium-backup replicate`: syncoid of `<pool>/containers` to the configured target.

use terrarium_common::Exit;
use terrarium_common::output::print_json;
use terrarium_common::process::Cmd;

use terrarium_common::config::validate::replication_target_problem;

use super::{BadInput, lock};
use crate::context::Context;

/// The syncoid command line (pure, so it can be shown with --dry-run and tested). `--`
/// ends the options: a destination can never be read as one.
pub(crate) fn syncoid_cmd(source: &str, destination: &str, ssh_key: Option<&str>) -> Cmd {
    let mut cmd = Cmd::new("syncoid").install_hint("with `apt install sanoid`").args([
        "--recursive",
        "--no-privilege-elevation",
        "--quiet",
    ]);
    if let Some(key) = ssh_key {
        cmd = cmd.args(["--sshkey", key]);
    }
    cmd.args(["--", source, destination])
}

/// `--to` passes the grammar the config's target does (syncoid pastes it into shell
/// command lines); anything else is bad input, refused before anything runs.
fn check_to(to: &str) -> Result<(), BadInput> {
    match replication_target_problem(to) {
        None => Ok(()),
        Some(problem) => Err(BadInput(format!(
            "--to: {problem}; name a local dataset such as `backup/terrarium` or `user@host:pool/dataset`"
        ))),
    }
}

pub fn run(ctx: &Context, to: Option<&str>, dry_run: bool) -> anyhow::Result<Exit> {
    let source = format!("{}/containers", ctx.pool());
    let syncoid = &ctx.config.syncoid;
    let cmd = match to {
        Some(local) => {
            check_to(local)?;
            syncoid_cmd(&source, local, None)
        }
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
            // Validated with the config (strict grammar); checked again as one target.
            let destination = format!("{target}:{dataset}");
            check_to(&destination)?;
            syncoid_cmd(&source, &destination, key.as_deref())
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
    let _lock = lock(ctx, "replicate")?;
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
            "syncoid --recursive --no-privilege-elevation --quiet --sshkey /etc/terrarium/secrets/syncoid-ssh-key -- tank/containers backup@zfs:pool/t"
        );
    }

    #[test]
    fn a_to_that_looks_like_an_option_or_shell_is_refused() {
        for bad in ["--sshkey=/tmp/k", "-r", "a;id@zfs.example.com:backup/t", "tank/x;id"] {
            assert!(check_to(bad).is_err(), "{bad}");
        }
        check_to("tank2/replica").unwrap();
        check_to("backup@zfs.example.com:backup/t").unwrap();
    }
}
