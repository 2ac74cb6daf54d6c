//! `connector sandbox`: simulated Acumatica and Magento on loopback until Ctrl-C.

use anyhow::Context;

use crate::cli::SandboxArgs;
use crate::error::Failure;
use crate::sandbox::{self, Faults, Sandbox, SandboxOptions};

pub fn run(args: SandboxArgs, quiet: bool) -> anyhow::Result<()> {
    if !args.listen.ip().is_loopback() {
        return Err(Failure::CannotStart(format!(
            "--listen {}: the sandbox listens on loopback only; use 127.0.0.1:PORT",
            args.listen
        ))
        .into());
    }
    let faults = Faults {
        latency_ms: args.latency_ms,
        error_rate: args.error_rate,
        ..Faults::default()
    };
    faults
        .validate()
        .map_err(|e| Failure::CannotStart(format!("--error-rate: {e}")))?;
    let options = SandboxOptions {
        listen: args.listen,
        seed: args.seed,
        items: args.items,
        orders: args.orders,
        faults,
        ..SandboxOptions::default()
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let sandbox = Sandbox::start(options).await?;
        let credentials = sandbox.credentials();
        let mut line = serde_json::json!({
            "acumatica_url": sandbox.acumatica_url,
            "magento_url": sandbox.magento_url,
            "credentials": credentials,
        });
        if let Some(path) = &args.write_config {
            let receiver = sandbox::config_file::free_loopback_port()?;
            let text = sandbox::config_file::render(&sandbox, receiver);
            sandbox::config_file::write_new(path, &text)?;
            line["config"] = serde_json::Value::String(path.display().to_string());
        }
        // The one line scripts read: print it even with --quiet.
        println!("{line}");
        if !quiet {
            eprintln!(
                "sandbox running: Acumatica at {}, Magento at {}; Ctrl-C stops it",
                sandbox.acumatica_url, sandbox.magento_url
            );
        }
        crate::signals::interrupted().await;
        sandbox.shutdown().await;
        anyhow::Ok(())
    })
}
