//! `connector resync`: queue a full or dated re-read of one entity.

use super::failed::entity_arg;
use crate::cli::ResyncArgs;
use crate::config::Config;
use crate::entities::{Direction, Entity};
use crate::error::Failure;
use crate::store::Store;

pub fn run(args: ResyncArgs, config: &Config) -> anyhow::Result<()> {
    entity_arg(Some(&args.entity))?;
    let entity = Entity::parse(&args.entity).expect("checked above");
    let since = match &args.since {
        Some(text) => Some(
            chrono::DateTime::parse_from_rfc3339(text)
                .map_err(|_| {
                    Failure::CannotStart(format!(
                        "--since {text}: not a date-time; write it like 2026-11-01T00:00:00Z"
                    ))
                })?
                .with_timezone(&chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        ),
        None => None,
    };
    let store = Store::open(&config.store.path)?;
    match entity.direction() {
        Direction::ToMagento => {
            store.request_catch_up(&[entity.name()], since.as_deref(), "connector resync")?
        }
        Direction::ToAcumatica => store.rewind_cursor(entity.name(), since.as_deref())?,
    }
    println!(
        "The next `connector sync` re-reads {} {}.",
        entity.name(),
        since
            .map(|s| format!("changed since {s}"))
            .unwrap_or_else(|| "in full".into())
    );
    Ok(())
}
