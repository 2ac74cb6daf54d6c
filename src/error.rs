//! Errors a caller must branch on, and the one place that maps any error to an exit code
//! (DESIGN.md section 9).

use std::process::ExitCode;

/// Exit codes, DESIGN.md section 9.
pub mod exit {
    pub const DONE: u8 = 0;
    pub const FAILED: u8 = 1;
    pub const CANNOT_START: u8 = 2;
    pub const PARTIAL: u8 = 3;
    pub const LOCKED: u8 = 4;
}

/// A failure that decides the exit code. Anything else that reaches `main` is exit 1.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Bad usage, or the connector's state forbids the command (exit 2).
    #[error("{0}")]
    CannotStart(String),
    /// The run finished but some records failed (exit 3).
    #[error("{0}")]
    Partial(String),
    /// Another sync holds the lock (exit 4).
    #[error("{0}")]
    Locked(String),
    /// `status --check` found something that needs attention (exit 1).
    #[error("CHECK FAILED: {0}")]
    CheckFailed(String),
}

/// An error and its causes on one line, each cause once (never a secret: errors do not carry
/// them). What `main` prints and what `connector doctor` reports.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut line = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !line.contains(&cause) {
            line.push_str(": ");
            line.push_str(&cause);
        }
    }
    line.replace('\n', " ")
}

/// Maps an error to its exit code: configuration and store refusals and [`Failure::CannotStart`]
/// are 2; the rest follows [`Failure`]; anything else (a remote system failed) is 1.
pub fn exit_code(error: &anyhow::Error) -> ExitCode {
    let code = if error.downcast_ref::<crate::config::ConfigError>().is_some()
        || error.downcast_ref::<crate::store::StoreError>().is_some()
    {
        exit::CANNOT_START
    } else if let Some(failure) = error.downcast_ref::<Failure>() {
        match failure {
            Failure::CannotStart(_) => exit::CANNOT_START,
            Failure::Partial(_) => exit::PARTIAL,
            Failure::Locked(_) => exit::LOCKED,
            Failure::CheckFailed(_) => exit::FAILED,
        }
    } else {
        exit::FAILED
    };
    ExitCode::from(code)
}
