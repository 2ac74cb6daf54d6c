//! The batch path: the connector's Generic Inquiries read over OData on their last-modified
//! column, paged, from the entity's watermark minus the overlap. It is the catch-all that finds
//! whatever a lost push notification missed, and the catch-up after a stop or an oversize
//! notification. Rows become the same messages as pushed rows, with comparable versions.

use anyhow::Context as _;
use serde_json::Value;

use super::engine::{Context, SyncOptions, collected_message};
use crate::entities::Entity;
use crate::push::key_and_version;
use crate::store::NewMessage;

/// Rows per OData page.
const PAGE: usize = 500;

/// What one collect found.
#[derive(Debug, Default)]
pub struct Collected {
    /// Rows that were new to the queue (with --dry-run: rows read).
    pub count: u64,
    /// `pending`, or `held` while paused.
    pub status: &'static str,
    /// With --dry-run only: the rows read, which a real run would have queued. The engine
    /// shows them as what would be sent; nothing is stored.
    pub dry_run_messages: Vec<NewMessage>,
}

/// The reason `connector resync` gives its catch-up request: an explicit re-read.
pub const RESYNC_REASON: &str = "connector resync";

/// Reads what changed and queues it (with --dry-run: returns it instead).
pub async fn collect_from_acumatica(
    ctx: &Context<'_>,
    entity: Entity,
    options: &SyncOptions,
) -> anyhow::Result<Collected> {
    let config = ctx.config;
    let Some(gi) = entity.generic_inquiry(&config.acumatica.prefix) else {
        return Ok(Collected {
            status: "pending",
            ..Collected::default()
        });
    };
    let requests: Vec<(Option<String>, String)> = ctx
        .store(|s| s.open_catch_ups())?
        .into_iter()
        .filter(|(e, _, _)| e == entity.name())
        .map(|(_, since, reason)| (since, reason))
        .collect();
    let resync_asked = requests.iter().any(|(_, reason)| reason == RESYNC_REASON);
    let catch_ups: Vec<Option<String>> = requests.into_iter().map(|(since, _)| since).collect();
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
    // An explicit re-read (--full, `connector resync`) queues rows again even at versions seen
    // before (a forgotten mapping must be re-sent): tagged with the time of this read. An
    // automatic catch-up does not: what changed meanwhile has new versions anyway, and a dead
    // record stays dead until someone retries it.
    let reread = (options.full || resync_asked)
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
    let mut dry_run_messages = Vec::new();
    // The watermark is the newest version of ALL pages, stored with the last page only. The
    // OData read has no order, so a page's newest row says nothing about the pages still to
    // come: advancing per page let a run killed between pages (or failing on one) leave a
    // watermark past rows it never queued — lost for good, and on a first run the cursor's
    // mere existence turned the next run from full into incremental. Earlier pages' rows are
    // queued as read; re-reading them after a crash is harmless (the dedupe key drops them).
    let mut newest: Option<String> = None;
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
        let last_page = rows.len() < PAGE;
        if ctx.dry_run {
            collected += messages.len() as u64;
            dry_run_messages.extend(messages);
        } else {
            let watermark = if last_page { newest.as_deref() } else { None };
            let (new, st) =
                ctx.store(|s| s.enqueue_collected(entity.name(), &messages, watermark))?;
            collected += new;
            status = st;
        }
        if last_page {
            break;
        }
        skip += rows.len();
    }
    if !ctx.dry_run && !catch_ups.is_empty() {
        ctx.store(|s| s.close_catch_ups(entity.name()))?;
    }
    Ok(Collected {
        count: collected,
        status,
        dry_run_messages,
    })
}
