//! `connector uninstall`: delete what `init` created (only from the stopped state).

use anyhow::Context;

use super::{confirm, report};
use crate::acumatica::AcumaticaClient;
use crate::cli::ConfirmArgs;
use crate::config::Config;
use crate::lifecycle::{self, Transition};
use crate::store::Store;

pub fn run(args: ConfirmArgs, config: &Config, quiet: bool) -> anyhow::Result<()> {
    lifecycle::check(&Store::open(&config.store.path)?, Transition::Uninstall)?;
    if !confirm::confirm(
        "Are you sure you want to delete every object the connector created in Acumatica?",
        args.yes,
    )? {
        if !quiet {
            println!("Nothing was changed.");
        }
        return Ok(());
    }
    let acumatica = AcumaticaClient::new(config)?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let result = runtime.block_on(lifecycle::uninstall(config, &acumatica, false))?;
    report::print(&result, false, quiet)
}
