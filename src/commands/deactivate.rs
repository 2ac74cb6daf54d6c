//! `connector deactivate --pause|--stop`.

use anyhow::Context;

use super::{confirm, report};
use crate::acumatica::AcumaticaClient;
use crate::cli::DeactivateArgs;
use crate::config::Config;
use crate::lifecycle::{self, Transition};
use crate::store::Store;

pub fn run(args: DeactivateArgs, config: &Config, quiet: bool) -> anyhow::Result<()> {
    let transition = if args.mode.pause {
        Transition::Pause
    } else {
        Transition::Stop
    };
    // Say why not before asking, when the state forbids it.
    lifecycle::check(&Store::open(&config.store.path)?, transition)?;
    if !confirm::confirm(
        "Are you sure you want to deactivate sync?",
        args.confirm.yes,
    )? {
        if !quiet {
            println!("Nothing was changed.");
        }
        return Ok(());
    }
    let result = if args.mode.pause {
        lifecycle::pause(config)?
    } else {
        let acumatica = AcumaticaClient::new(config)?;
        let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
        runtime.block_on(lifecycle::stop(config, &acumatica))?
    };
    report::print(&result, false, quiet)
}
