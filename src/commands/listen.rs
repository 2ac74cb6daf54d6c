//! `connector listen`: serve the push-notification receiver until Ctrl-C or SIGTERM.

use anyhow::Context;

use crate::cli::ListenArgs;
use crate::config::Config;
use crate::receiver::{self, ReceiverSettings};

pub fn run(args: ListenArgs, config: &Config, quiet: bool) -> anyhow::Result<()> {
    let settings = ReceiverSettings::from_config(config, args.bind)?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let path = settings.path.clone();
        let running = receiver::start(settings).await?;
        if !quiet {
            eprintln!(
                "listening on http://{}{} for Acumatica push notifications; Ctrl-C stops",
                running.addr, path
            );
        }
        let signal = crate::signals::interrupted().await;
        tracing::info!("{signal}: finishing the requests in flight");
        running.stop().await
    })
}
