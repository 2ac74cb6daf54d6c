//! The yes/no question before a command changes a remote system.

use std::io::IsTerminal;

use crate::error::Failure;

/// Asks `question` (default no). `--yes` answers for scripts; without a terminal and without
/// `--yes` the command refuses (exit 2) — it never hangs waiting for an answer.
pub fn confirm(question: &str, yes: bool) -> anyhow::Result<bool> {
    if yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        return Err(Failure::CannotStart(format!(
            "{question} — there is no terminal to answer on: pass --yes to confirm (nothing was changed)"
        ))
        .into());
    }
    Ok(dialoguer::Confirm::new()
        .with_prompt(question)
        .default(false)
        .interact()?)
}
