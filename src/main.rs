//! The `connector` binary: parse the command line, set up logging, run, map the outcome to an
//! exit code (DESIGN.md section 9) — in this one place.

use std::process::ExitCode;

use clap::Parser;
use connector::cli::Cli;
use connector::error;

/// A sync allocates and frees per record (rows, keys, hashes) on several threads; glibc's
/// allocator spent 15–18 % of a 100,000-price run's CPU in malloc/free (perf), mimalloc a
/// fraction of that.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // `connector status | head` must end quietly when the reader goes away, as other Unix
    // tools do, instead of panicking on a broken pipe.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    init_tracing(cli.quiet, cli.verbose);
    match connector::commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the error and its causes, outermost first.
            eprintln!("error: {}", error::one_line(&e));
            error::exit_code(&e)
        }
    }
}

/// Tracing to stderr: `RUST_LOG` if set, else warn (`-q`: error; `-v`: debug; `-vv`: trace).
fn init_tracing(quiet: bool, verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "connector=debug,info",
        (false, _) => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour_on_stderr())
        .with_target(false)
        .init();
}

/// Colour only on a terminal, and never with `NO_COLOR` set (https://no-color.org). clap
/// decides the same way for its own help and errors; progress bars and prompts have none.
fn colour_on_stderr() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}
