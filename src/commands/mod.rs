//! One file per subcommand: parse what clap left, confirm, call the library, print.

mod activate;
mod completions;
mod confirm;
mod deactivate;
mod demo;
mod doctor;
mod failed;
mod history;
mod init;
mod listen;
mod mappings;
mod report;
mod resync;
mod sandbox;
mod status;
mod sync;
mod uninstall;

use std::path::Path;

use crate::cli::{Cli, Command};
use crate::config::{self, Config};

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let config_file = cli.config.as_deref();
    match cli.command {
        Command::Init(args) => init::run(args, &load_config(config_file)?, cli.quiet),
        Command::Deactivate(args) => deactivate::run(args, &load_config(config_file)?, cli.quiet),
        Command::Activate(args) => activate::run(args, &load_config(config_file)?, cli.quiet),
        Command::Uninstall(args) => uninstall::run(args, &load_config(config_file)?, cli.quiet),
        Command::Sync(args) => sync::run(args, &load_config(config_file)?, cli.quiet),
        Command::Status(args) => status::run(args, &load_config(config_file)?),
        Command::Listen(args) => listen::run(args, &load_config(config_file)?, cli.quiet),
        Command::Sandbox(args) => sandbox::run(args, cli.quiet),
        Command::Demo => demo::run(),
        Command::Failed(args) => failed::run(args, &load_config(config_file)?),
        Command::History(args) => history::run(args, &load_config(config_file)?),
        Command::Mappings(args) => mappings::run(args, &load_config(config_file)?),
        Command::Resync(args) => resync::run(args, &load_config(config_file)?),
        Command::Completions(args) => completions::run(args),
        Command::Doctor(args) => doctor::run(args, config_file),
    }
}

/// The configuration named by `--config` / `$CONNECTOR_CONFIG`, or `./connector.toml`.
fn load_config(explicit: Option<&Path>) -> anyhow::Result<Config> {
    let file = config::config_path(explicit);
    let config = Config::load(&file)?;
    tracing::debug!(file = %file.display(), "configuration loaded");
    Ok(config)
}
