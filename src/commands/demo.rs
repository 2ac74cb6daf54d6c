//! `connector demo`: the whole product against the sandbox, in one command.

use anyhow::Context;

pub fn run() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(crate::demo::run(&crate::demo::Stdout))
}
