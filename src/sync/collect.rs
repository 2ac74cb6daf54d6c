//! The batch path: the connector's Generic Inquiries read over OData on their last-modified
//! column, paged, from the entity's watermark minus the overlap. It is the catch-all that finds
//! whatever a lost push notification missed, and the catch-up after a stop or an oversize
//! notification. Rows become the same messages as pushed rows, with comparable versions.

use anyhow::Context as _;
use serde_json::Value;

use super::engine::{Context, SyncOptions, collected_message};
use crate::entities::Entity;
use crate::push::key_and_version;

/// Rows per OData page.
const PAGE: usize = 500;

/// Reads what changed and queues it; returns how many rows were new and their status.
pub async fn collect_from_acumatica(
    ctx: &Context<'_>,
    entity: Entity,
    options: &SyncOptions,
) -> anyhow::Result<(u64, &'static str)> {
    let config = ctx.config;
    let Some(gi) = entity.generic_inquiry(&config.acumatica.prefix) else {
        return Ok((0, "pending"));
    };
    let catch_ups: Vec<Option<String>> = ctx
        .store(|s| s.open_catch_ups())?
        .into_iter()
        .filter(|(e, _, _)| e == entity.name())
        .map(|(_, since, _)| since)
        .collect();
    let cursor = ctx.store(|s| s.cursor(entity.name()))?;
    // An entity's first run, --full, and a catch-up "from the start" read everything.
    let from = if options.full || cursor.is_none() || catch_ups.iter().any(Option::is_none) {
        None
    } else {
        catch_ups
            .iter()
            .flatten()
            .chain(cursor.iter())
            .min()
            .cloned()
    };
    // A re-read queues rows again even at versions seen before (a forgotten mapping, a
    // catch-up): tagged with the time of this read.
    let reread = (options.full || !catch_ups.is_empty())
        .then(|| format!("reread-{}", chrono::Utc::now().timestamp_millis()));
    let filter = match &from {
        Some(watermark) => {
            let at = chrono::DateTime::parse_from_rfc3339(watermark)
                .with_context(|| {
                    format!(
                        "the {} watermark {watermark:?} is not a time",
                        entity.name()
                    )
                })?
                .with_timezone(&chrono::Utc)
                - chrono::Duration::seconds(config.sync.overlap_seconds as i64);
            Some(format!(
                "{} gt datetimeoffset'{}'",
                entity.version_column(),
                at.format("%Y-%m-%dT%H:%M:%SZ")
            ))
        }
        None => None,
    };

    let mut collected = 0;
    let mut status = "pending";
    let mut skip = 0usize;
    loop {
        let mut query = vec![("$top", PAGE.to_string()), ("$skip", skip.to_string())];
        if let Some(filter) = &filter {
            query.push(("$filter", filter.clone()));
        }
        let json = ctx.acumatica.odata(&gi, &query).await?;
        let rows = json
            .get("value")
            .and_then(Value::as_array)
            .with_context(|| format!("the OData reply for {gi} has no `value` array"))?;
        let mut messages = Vec::with_capacity(rows.len());
        let mut newest: Option<String> = None;
        for row in rows {
            match key_and_version(entity, row, config.acumatica.timezone, None) {
                Ok((key, version)) => {
                    let version = version.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                    if newest.as_ref().is_none_or(|n| &version > n) {
                        newest = Some(version.clone());
                    }
                    messages.push(collected_message(
                        entity,
                        key,
                        version,
                        row,
                        reread.as_deref(),
                    ));
                }
                Err(e) => tracing::warn!(gi, "a row of the Generic Inquiry was skipped: {e}"),
            }
        }
        if ctx.dry_run {
            collected += messages.len() as u64;
        } else {
            let (new, st) =
                ctx.store(|s| s.enqueue_collected(entity.name(), &messages, newest.as_deref()))?;
            collected += new;
            status = st;
        }
        if rows.len() < PAGE {
            break;
        }
        skip += rows.len();
    }
    if !ctx.dry_run && !catch_ups.is_empty() {
        ctx.store(|s| s.close_catch_ups(entity.name()))?;
    }
    Ok((collected, status))
}
