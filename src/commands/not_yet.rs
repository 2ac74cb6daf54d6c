//! Commands whose capability is not built yet: they say so and exit 1, never pretend.

use crate::error::Failure;

pub fn run(command: &'static str) -> anyhow::Result<()> {
    Err(Failure::NotImplemented(command).into())
}
