//! The hand-off to `lxd recover`: the dataset exists, LXD must import it, and that
//! import is interactive upstream. On a terminal this process becomes `lxd recover`
//! (exec, the terminal passed through); without one it says what to run.

use std::io::IsTerminal;
use std::os::unix::process::CommandExt;

/// What the operator reads before `lxd recover` starts.
pub fn explanation(instance: &str, dataset: &str, pool: &str) -> String {
    format!(
        "The dataset {dataset} now holds the files of the new instance {instance}, but LXD does not know it yet.\n\
         `lxd recover` imports it: it asks which storage pools to scan (the one on ZFS pool {pool}), lists the\n\
         unknown volumes it found (the instance {instance} among them) and asks whether to recover them: answer yes.\n\
         Then `lxc start {instance}`.\n"
    )
}

/// Print the explanation, then exec `lxd recover` when stdin is a terminal and the output
/// is for people; otherwise print the command to run. Returns only when not exec'ing
/// (or when exec failed, with the error).
pub fn hand_off(instance: &str, dataset: &str, pool: &str, json: bool) -> anyhow::Result<bool> {
    eprint!("{}", explanation(instance, dataset, pool));
    if json || !std::io::stdin().is_terminal() {
        eprintln!("No terminal to hand over: run `lxd recover` yourself to finish.");
        return Ok(false);
    }
    eprintln!("Starting `lxd recover` now.");
    // exec only returns on failure.
    let err = std::process::Command::new("lxd").arg("recover").exec();
    Err(anyhow::Error::new(err).context("could not start `lxd recover`; run it yourself to import the dataset"))
}
