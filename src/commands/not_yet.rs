//! Commands whose capability is not built yet: they check the configuration (so a mistake in it
//! is found today), then say so and exit 1 — never pretend to succeed.

use std::path::Path;

use crate::error::Failure;

pub fn run(command: &'static str, config_file: Option<&Path>) -> anyhow::Result<()> {
    super::load_config(config_file)?;
    Err(Failure::NotImplemented(command).into())
}
