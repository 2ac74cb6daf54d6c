//! `connector completions <shell>`: a completion script from the same clap definitions.

use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs};

pub fn run(args: CompletionsArgs) -> anyhow::Result<()> {
    let mut command = Cli::command();
    clap_complete::generate(
        args.shell,
        &mut command,
        "connector",
        &mut std::io::stdout(),
    );
    Ok(())
}
