//! The Magento side of collection (orders, customers): a search on `updated_at` from the
//! entity's watermark minus the overlap, sorted `updated_at` then id ascending, paged until
//! `total_count` (a page past the end returns the last page again, so it is never asked for).
//! Rows become queue messages keyed by Magento id with `updated_at` as version; a row already
//! queued at the same (id, updated_at) is not queued again (the dedupe key); the watermark
//! advances in the transaction that queues each page.

use anyhow::Context as _;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::Value;

use super::engine::{Context, SyncOptions, collected_message};
use crate::entities::Entity;
use crate::magento::search::{Condition, Filter};
use crate::magento::{Scope, SearchCriteria};

/// Magento's date format (UTC).
pub const MAGENTO_TIME: &str = "%Y-%m-%d %H:%M:%S";

/// A Magento `updated_at` (UTC, `Y-m-d H:i:s`) as the queue's comparable version.
pub fn version_of(updated_at: &str) -> Option<String> {
    let t = NaiveDateTime::parse_from_str(updated_at.trim(), MAGENTO_TIME).ok()?;
    Some(
        t.and_utc()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    )
}

/// Reads what changed in Magento and queues it; returns how many rows were new.
pub async fn collect_from_magento(
    ctx: &Context<'_>,
    entity: Entity,
    options: &SyncOptions,
) -> anyhow::Result<u64> {
    let config = ctx.config;
    let (path, id_field) = match entity {
        Entity::Orders => ("/V1/orders", "entity_id"),
        Entity::Customers => ("/V1/customers/search", "id"),
        _ => return Ok(0),
    };
    let cursor = ctx.store(|s| s.cursor(entity.name()))?;
    let from = match (&cursor, options.full) {
        (Some(w), false) => Some(
            DateTime::parse_from_rfc3339(w)
                .with_context(|| format!("the {} watermark {w:?} is not a time", entity.name()))?
                .with_timezone(&Utc)
                - chrono::Duration::seconds(config.sync.overlap_seconds as i64),
        ),
        _ => None,
    };
    let page_size = config.orders.page_size.clamp(1, 300);
    let mut collected = 0;
    let mut page = 1u32;
    let mut seen = 0u64;
    loop {
        let mut criteria = SearchCriteria::new();
        if let Some(from) = from {
            criteria = criteria.and(Filter::new(
                "updated_at",
                Condition::Gteq,
                from.format(MAGENTO_TIME).to_string(),
            ));
        }
        if entity == Entity::Orders {
            if config.orders.order_import_delay_seconds > 0 {
                // Too young to import yet: left for a later run. The bound is on updated_at,
                // the watermark's own column, so the watermark never passes what was left.
                let until = Utc::now()
                    - chrono::Duration::seconds(config.orders.order_import_delay_seconds as i64);
                criteria = criteria.and(Filter::new(
                    "updated_at",
                    Condition::Lteq,
                    until.format(MAGENTO_TIME).to_string(),
                ));
            }
            if !config.orders.store_ids.is_empty() {
                let ids: Vec<String> = config.orders.store_ids.iter().map(u32::to_string).collect();
                criteria = criteria.and(Filter::new("store_id", Condition::In, ids.join(",")));
            }
        }
        let criteria = criteria
            .sort_ascending("updated_at")
            .sort_ascending(id_field)
            .page(page_size, page);
        let reply = ctx
            .magento
            .get(Scope::Store, path, &criteria.to_query())
            .await
            .with_context(|| format!("reading {} from Magento", entity.name()))?;
        let total = reply
            .get("total_count")
            .and_then(Value::as_u64)
            .with_context(|| format!("Magento's {path} reply has no total_count"))?;
        let items = reply
            .get("items")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut messages = Vec::with_capacity(items.len());
        let mut newest: Option<String> = None;
        for row in &items {
            let id = row.get(id_field).and_then(Value::as_i64);
            let version = row
                .get("updated_at")
                .and_then(Value::as_str)
                .and_then(version_of);
            match (id, version) {
                (Some(id), Some(version)) => {
                    if newest.as_ref().is_none_or(|n| &version > n) {
                        newest = Some(version.clone());
                    }
                    messages.push(collected_message(
                        entity,
                        id.to_string(),
                        version,
                        row,
                        None,
                    ));
                }
                _ => tracing::warn!(
                    entity = entity.name(),
                    "a Magento row without {id_field} or a readable updated_at was skipped"
                ),
            }
        }
        if ctx.dry_run {
            collected += messages.len() as u64;
        } else {
            let (new, _) =
                ctx.store(|s| s.enqueue_collected(entity.name(), &messages, newest.as_deref()))?;
            collected += new;
        }
        seen += items.len() as u64;
        // Stop on total_count: never ask for a page past the end (Magento repeats the last).
        if items.is_empty() || seen >= total {
            break;
        }
        page += 1;
    }
    Ok(collected)
}
