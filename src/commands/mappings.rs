//! `connector mappings`: which Acumatica record is which Magento record.

use super::failed::entity_arg;
use crate::cli::{MappingsAction, MappingsArgs};
use crate::config::Config;
use crate::error::Failure;
use crate::store::Store;

pub fn run(args: MappingsArgs, config: &Config) -> anyhow::Result<()> {
    let store = Store::open(&config.store.path)?;
    match args.action {
        None => {
            let rows = store.mappings(entity_arg(args.entity.as_deref())?, args.find.as_deref())?;
            if args.json {
                println!("{}", serde_json::to_string(&rows)?);
                return Ok(());
            }
            for m in &rows {
                println!(
                    "{:<10} {:<24} -> {:<24} {}",
                    m.entity, m.acumatica_key, m.magento_key, m.synced_at
                );
            }
            if rows.is_empty() {
                println!("No mappings.");
            }
        }
        Some(MappingsAction::Forget { entity, key }) => {
            entity_arg(Some(&entity))?;
            if !store.forget_mapping(&entity, &key)? {
                return Err(Failure::CannotStart(format!(
                    "no {entity} mapping with the key {key:?}: `connector mappings --entity {entity}` lists them"
                ))
                .into());
            }
            println!("Forgot {entity} {key}: the next sync that sees it sends it in full.");
        }
    }
    Ok(())
}
