//! One file per subcommand: parse what clap left, confirm, call the library, print.

mod not_yet;
mod sandbox;

use crate::cli::{Cli, Command};

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Init(_) => not_yet::run("init"),
        Command::Deactivate(_) => not_yet::run("deactivate"),
        Command::Activate(_) => not_yet::run("activate"),
        Command::Uninstall(_) => not_yet::run("uninstall"),
        Command::Sync(_) => not_yet::run("sync"),
        Command::Status(_) => not_yet::run("status"),
        Command::Listen(_) => not_yet::run("listen"),
        Command::Sandbox(args) => sandbox::run(args, cli.quiet),
        Command::Demo => not_yet::run("demo"),
    }
}
