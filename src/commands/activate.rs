//! `connector activate`.

use anyhow::Context;

use super::{confirm, report};
use crate::acumatica::AcumaticaClient;
use crate::cli::ActivateArgs;
use crate::config::Config;
use crate::lifecycle::{self, Transition};
use crate::store::Store;

pub fn run(args: ActivateArgs, config: &Config, quiet: bool) -> anyhow::Result<()> {
    lifecycle::check(&Store::open(&config.store.path)?, Transition::Activate)?;
    if !confirm::confirm("Are you sure you want to activate sync?", args.confirm.yes)? {
        if !quiet {
            println!("Nothing was changed.");
        }
        return Ok(());
    }
    let acumatica = AcumaticaClient::new(config)?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let result = runtime.block_on(lifecycle::activate(config, &acumatica, !args.no_catch_up))?;
    report::print(&result, false, quiet)
}
