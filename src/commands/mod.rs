//! One file per subcommand: parse what clap left, confirm, call the library, print.

mod listen;
mod not_yet;
mod sandbox;
mod status;
mod sync;

use std::path::Path;

use crate::cli::{Cli, Command};
use crate::config::{self, Config};

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let config_file = cli.config.as_deref();
    match cli.command {
        Command::Init(_) => not_yet::run("init", config_file),
        Command::Deactivate(_) => not_yet::run("deactivate", config_file),
        Command::Activate(_) => not_yet::run("activate", config_file),
        Command::Uninstall(_) => not_yet::run("uninstall", config_file),
        Command::Sync(args) => sync::run(args, &load_config(config_file)?, cli.quiet),
        Command::Status(args) => status::run(args, &load_config(config_file)?),
        Command::Listen(args) => listen::run(args, &load_config(config_file)?, cli.quiet),
        Command::Sandbox(args) => sandbox::run(args, cli.quiet),
        Command::Demo => Err(crate::error::Failure::NotImplemented("demo").into()),
    }
}

/// The configuration named by `--config` / `$CONNECTOR_CONFIG`, or `./connector.toml`.
fn load_config(explicit: Option<&Path>) -> anyhow::Result<Config> {
    let file = config::config_path(explicit);
    let config = Config::load(&file)?;
    tracing::debug!(file = %file.display(), "configuration loaded");
    Ok(config)
}
