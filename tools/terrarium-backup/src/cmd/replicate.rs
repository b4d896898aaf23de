//! `terrarium-backup replicate`: syncoid of `<pool>/containers` to the configured target.

use std::path::Path;

use anyhow::Context as _;
use terrarium_common::Exit;
use terrarium_common::config::validate::{parse_known_host, replication_target_problem};
use terrarium_common::output::print_json;
use terrarium_common::process::Cmd;

use super::{BadInput, lock};
use crate::context::Context;

/// How syncoid's ssh reaches a remote target: the client key, and the known_hosts file
/// Terrarium wrote from `syncoid.known_hosts`, checked strictly (an unknown or changed
/// host key fails the run; nothing ever prompts or learns a key by itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ssh {
    pub key: Option<String>,
    pub known_hosts: String,
}

/// The syncoid command line (pure, so it can be shown with --dry-run and tested). `--`
/// ends the options: a destination can never be read as one. syncoid pastes the ssh
/// options into shell command lines: [`shell_safe_path`] checked the paths in them.
pub(crate) fn syncoid_cmd(source: &str, destination: &str, ssh: Option<&Ssh>) -> Cmd {
    let mut cmd = Cmd::new("syncoid").install_hint("with `apt install sanoid`").args([
        "--recursive",
        "--no-privilege-elevation",
        "--quiet",
    ]);
    if let Some(ssh) = ssh {
        if let Some(key) = &ssh.key {
            cmd = cmd.args(["--sshkey", key]);
        }
        cmd = cmd.args([
            format!("--sshoption=UserKnownHostsFile={}", ssh.known_hosts),
            "--sshoption=GlobalKnownHostsFile=/dev/null".to_string(),
            "--sshoption=StrictHostKeyChecking=yes".to_string(),
            "--sshoption=BatchMode=yes".to_string(),
        ]);
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

/// syncoid pastes `--sshkey` and `--sshoption` values into shell command lines unquoted:
/// a path given to it may hold only characters no shell reads specially.
fn shell_safe_path(what: &str, path: &Path) -> Result<String, BadInput> {
    let text = path.display().to_string();
    if path.is_absolute()
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'_' | b'-' | b'+'))
    {
        Ok(text)
    } else {
        Err(BadInput(format!(
            "{what} `{}`: syncoid pastes this path into shell command lines unquoted; use an absolute path of letters, digits, `/`, `.`, `_`, `-` and `+` only",
            text.escape_default()
        )))
    }
}

/// The host of a remote destination `user@host:pool/dataset`, or `None` for a local one
/// (the destination passed [`check_to`]).
fn remote_host(destination: &str) -> Option<&str> {
    let (ssh, _) = destination.split_once(':')?;
    ssh.split_once('@').map(|(_, host)| host)
}

/// The `syncoid.known_hosts` lines for `host`, or the refusal naming the key and the fix.
fn known_hosts_for(lines: &[String], host: &str) -> Result<Vec<String>, BadInput> {
    let found: Vec<String> =
        lines.iter().filter(|line| parse_known_host(line).is_ok_and(|known| known.names(host))).cloned().collect();
    if found.is_empty() {
        return Err(BadInput(format!(
            "syncoid.known_hosts has no host key for {host}: ssh checks the target's key strictly and nobody answers a prompt on a timer; add the line `ssh-keyscan -t ed25519 {host}` prints to syncoid.known_hosts in the config, after checking its fingerprint (`ssh-keygen -lf`) against the target's own (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` there)"
        )));
    }
    Ok(found)
}

/// What to add to a failed syncoid's error when ssh refused the target's host key.
fn host_key_hint(stderr: &str, host: &str) -> Option<String> {
    let refused = ["Host key verification failed", "REMOTE HOST IDENTIFICATION HAS CHANGED", "host key is known for"]
        .iter()
        .any(|sign| stderr.contains(sign));
    refused.then(|| {
        format!(
            "the host key {host} presented is not the one syncoid.known_hosts names; if the target's key changed on purpose, replace its line with what `ssh-keyscan -t ed25519 {host}` prints (check the fingerprint out of band first), otherwise find out who answers as {host}"
        )
    })
}

pub fn run(ctx: &Context, to: Option<&str>, dry_run: bool) -> anyhow::Result<Exit> {
    let source = format!("{}/containers", ctx.pool());
    let syncoid = &ctx.config.syncoid;
    let destination = match to {
        Some(to) => {
            check_to(to)?;
            to.to_string()
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
            // Validated with the config (strict grammar); checked again as one target.
            let destination = format!("{target}:{dataset}");
            check_to(&destination)?;
            destination
        }
    };
    let host = remote_host(&destination);
    let known_hosts_file = ctx.paths.syncoid_known_hosts();
    let (ssh, known_lines) = match host {
        None => (None, Vec::new()),
        Some(host) => {
            let lines = known_hosts_for(&syncoid.known_hosts, host)?;
            let key = match &syncoid.ssh_key_file {
                Some(file) => Some(shell_safe_path("syncoid.ssh_key_file", &ctx.paths.host(file))?),
                None => None,
            };
            let known_hosts = shell_safe_path("the known_hosts file", &known_hosts_file)?;
            (Some(Ssh { key, known_hosts }), lines)
        }
    };
    let cmd = syncoid_cmd(&source, &destination, ssh.as_ref());
    if dry_run {
        if ctx.json {
            print_json(&serde_json::json!({ "dry_run": true, "command": cmd.display() }))?;
        } else {
            println!("{}", cmd.display());
        }
        return Ok(Exit::Success);
    }
    let _lock = lock(ctx, "replicate")?;
    if ssh.is_some() {
        let text = format!(
            "# Written by terrarium-backup replicate from syncoid.known_hosts in {}; edit that, not this.\n{}\n",
            terrarium_common::paths::host::CONFIG_FILE,
            known_lines.join("\n")
        );
        terrarium_common::fs::write_if_changed(&known_hosts_file, text.as_bytes(), 0o644)
            .with_context(|| format!("cannot write {}", known_hosts_file.display()))?;
    }
    log::info!(source = source.as_str(); "replicating: {}", cmd.display());
    let started = std::time::Instant::now();
    if let Err(err) = cmd.output() {
        let hint = host.and_then(|host| host_key_hint(err.stderr(), host));
        return Err(match hint {
            Some(hint) => anyhow::Error::new(err).context(hint),
            None => err.into(),
        });
    }
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

    const KEY: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIFbJ2o3vsU7t4A/bDvvyVCEpe8Afvg0byn3rZm9xhRt3";

    #[test]
    fn syncoid_is_recursive_with_the_key_and_the_strict_known_hosts() {
        let ssh = Ssh {
            key: Some("/etc/terrarium/secrets/syncoid-ssh-key".into()),
            known_hosts: "/var/lib/terrarium/ssh/known_hosts".into(),
        };
        assert_eq!(
            syncoid_cmd("tank/containers", "backup@zfs:pool/t", Some(&ssh)).display(),
            "syncoid --recursive --no-privilege-elevation --quiet --sshkey /etc/terrarium/secrets/syncoid-ssh-key \
             --sshoption=UserKnownHostsFile=/var/lib/terrarium/ssh/known_hosts --sshoption=GlobalKnownHostsFile=/dev/null \
             --sshoption=StrictHostKeyChecking=yes --sshoption=BatchMode=yes -- tank/containers backup@zfs:pool/t"
        );
        assert_eq!(
            syncoid_cmd("tank/containers", "tank2/replica", None).display(),
            "syncoid --recursive --no-privilege-elevation --quiet -- tank/containers tank2/replica"
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

    #[test]
    fn the_target_host_must_have_a_known_host_key() {
        assert_eq!(remote_host("backup@zfs.example.com:backup/t"), Some("zfs.example.com"));
        assert_eq!(remote_host("tank2/replica"), None);
        let lines = vec![
            format!("other.example.com ssh-ed25519 {KEY}"),
            format!("zfs.example.com ssh-ed25519 {KEY}"),
            format!("[zfs.example.com]:2222 ssh-ed25519 {KEY}"),
        ];
        assert_eq!(known_hosts_for(&lines, "zfs.example.com").unwrap(), vec![lines[1].clone()]);
        let err = known_hosts_for(&lines[..1], "zfs.example.com").unwrap_err().0;
        assert!(err.contains("syncoid.known_hosts") && err.contains("ssh-keyscan -t ed25519 zfs.example.com"), "{err}");
        assert!(known_hosts_for(&[], "192.0.2.7").is_err());
    }

    #[test]
    fn paths_syncoid_pastes_into_a_shell_must_be_plain() {
        assert!(shell_safe_path("k", Path::new("/tmp/.tmpAb_1/var/lib/terrarium/ssh/known_hosts")).is_ok());
        for bad in ["/tmp/a b/k", "/tmp/$(id)/k", "/tmp/a;b", "relative/k", "/tmp/`x`"] {
            let err = shell_safe_path("syncoid.ssh_key_file", Path::new(bad)).unwrap_err().0;
            assert!(err.starts_with("syncoid.ssh_key_file `") && err.contains("shell"), "{err}");
        }
    }

    #[test]
    fn a_refused_host_key_gets_a_hint_naming_the_setting() {
        let hint = host_key_hint(
            "Host key verification failed.\r\nCRITICAL ERROR: ssh connection echo test failed",
            "h.example.com",
        )
        .unwrap();
        assert!(hint.contains("syncoid.known_hosts") && hint.contains("ssh-keyscan -t ed25519 h.example.com"));
        assert!(
            host_key_hint(
                "No ECDSA host key is known for h.example.com and you have requested strict checking.",
                "h.example.com"
            )
            .is_some()
        );
        assert_eq!(host_key_hint("cannot receive: permission denied", "h.example.com"), None);
    }
}
