//! `connector failed`: the records that failed, why, and retrying or skipping them.

use crate::cli::{FailedAction, FailedArgs};
use crate::config::Config;
use crate::entities::Entity;
use crate::error::Failure;
use crate::store::Store;

/// An `--entity` value, checked.
pub fn entity_arg(name: Option<&str>) -> anyhow::Result<Option<&str>> {
    match name {
        Some(n) if Entity::parse(n).is_none() => Err(Failure::CannotStart(format!(
            "--entity {n}: not an entity; use items, inventory, prices, shipments, customers or orders"
        ))
        .into()),
        other => Ok(other),
    }
}

pub fn run(args: FailedArgs, config: &Config) -> anyhow::Result<()> {
    let store = Store::open(&config.store.path)?;
    match args.action {
        None => {
            let failed = store.failed_messages(entity_arg(args.entity.as_deref())?)?;
            if args.json {
                println!("{}", serde_json::to_string(&failed)?);
                return Ok(());
            }
            if failed.is_empty() {
                println!("No failed records.");
                return Ok(());
            }
            for m in &failed {
                println!(
                    "{:>6}  {:<10} {:<24} {:<6} {} attempt(s), since {}\n        {}",
                    m.id,
                    m.entity,
                    m.key,
                    m.status,
                    m.attempts,
                    m.created_at,
                    m.last_error.as_deref().unwrap_or("(no error recorded)")
                );
            }
            println!(
                "{} record(s). `connector failed retry ID…|--all` queues them again; `connector failed skip ID… --reason TEXT` gives up on them.",
                failed.len()
            );
        }
        Some(FailedAction::Retry { ids, all, entity }) => {
            if ids.is_empty() && !all {
                return Err(Failure::CannotStart(
                    "name the records to retry (ids from `connector failed`) or pass --all".into(),
                )
                .into());
            }
            let n = store.retry_failed(&ids, entity_arg(entity.as_deref())?)?;
            println!("{n} record(s) queued again; the next `connector sync` delivers them.");
        }
        Some(FailedAction::Skip { ids, reason }) => {
            let n = store.skip_failed(&ids, &reason)?;
            println!("{n} record(s) skipped (kept for audit with the reason).");
        }
    }
    Ok(())
}
