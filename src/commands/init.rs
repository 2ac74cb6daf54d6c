//! `connector init`: check both connections, confirm, then create and repair the Generic
//! Inquiries, Push Notifications and Automation Schedules in Acumatica.

use std::io::IsTerminal;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget};

use super::{confirm, report};
use crate::acumatica::{AcumaticaClient, with_sessions};
use crate::cli::InitArgs;
use crate::config::Config;
use crate::lifecycle;
use crate::magento::MagentoClient;

pub const QUESTION: &str =
    "Are you sure you wish to initialize all features for Magento Connector?";

pub fn run(args: InitArgs, config: &Config, quiet: bool) -> anyhow::Result<()> {
    let acumatica = AcumaticaClient::new(config)?;
    let magento = MagentoClient::new(config)?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    // Both systems first: nothing changes if either refuses.
    runtime.block_on(with_sessions(
        &acumatica,
        lifecycle::check_connections(&acumatica, &magento),
    ))?;
    if !args.dry_run && !confirm::confirm(QUESTION, args.confirm.yes)? {
        if !quiet {
            println!("Nothing was changed.");
        }
        return Ok(());
    }
    let bar = ProgressBar::new(lifecycle::object_count(config) as u64);
    if quiet || args.json || !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    let progress = |o: &crate::acumatica::admin::ObjectReport| {
        bar.set_message(o.name.clone());
        bar.inc(1);
    };
    let result = runtime.block_on(lifecycle::init(config, &acumatica, args.dry_run, &progress));
    bar.finish_and_clear();
    report::print(&result?, args.json, quiet)
}
