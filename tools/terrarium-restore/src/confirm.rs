//! Asking before a restore destroys anything.

use std::io::IsTerminal;

/// The answer to "go ahead?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Yes,
    No,
    /// Nobody to ask: no terminal and no `--yes`.
    NoTerminal,
}

/// Decide without asking when possible: `--yes` says yes; without a terminal on both
/// stdin and stderr there is nobody to ask. `None` means: ask.
pub fn decide_without_asking(yes: bool, stdin_is_terminal: bool, stderr_is_terminal: bool) -> Option<Answer> {
    if yes {
        Some(Answer::Yes)
    } else if !(stdin_is_terminal && stderr_is_terminal) {
        Some(Answer::NoTerminal)
    } else {
        None
    }
}

/// Ask `question` on the terminal (default no), unless `--yes` or no terminal decide it.
pub fn confirm(question: &str, yes: bool) -> std::io::Result<Answer> {
    if let Some(answer) = decide_without_asking(yes, std::io::stdin().is_terminal(), std::io::stderr().is_terminal()) {
        return Ok(answer);
    }
    let agreed =
        dialoguer::Confirm::new().with_prompt(question).default(false).interact().map_err(|err| match err {
            dialoguer::Error::IO(io) => io,
        })?;
    Ok(if agreed { Answer::Yes } else { Answer::No })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn only_a_terminal_or_yes_lets_a_restore_go_ahead() {
        assert_eq!(decide_without_asking(true, false, false), Some(Answer::Yes));
        assert_eq!(decide_without_asking(false, false, true), Some(Answer::NoTerminal));
        assert_eq!(decide_without_asking(false, true, false), Some(Answer::NoTerminal));
        assert_eq!(decide_without_asking(false, true, true), None);
    }
}
