//! Magento's asynchronous bulk API for product saves (`sync --full --bulk`, DESIGN.md section
//! 7): `POST /rest/all/async/bulk/V1/products` with a list of `{"product": {…}}` bodies answers
//! 202 `{bulk_uuid, request_items: [{id, data_hash, status}], errors}` at once; the store's
//! `async.operations.all` consumer saves them later, and `GET /V1/bulk/{uuid}/status` tells
//! each operation's fate: 1 complete, 2 failed but retriable, 3 failed not retriable, 4 open,
//! 5 rejected. The operation `id` is the item's index in the request.
//!
//! This module only moves saves and reports each one's result; the items flow decides what to
//! save and records the outcomes (see `items::deliver_bulk` for why that is exactly once in
//! effect).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::engine::Context;
use super::flows::send_in_batches_capped;
use crate::magento::{Scope, segment};

/// Operation statuses of `Magento\AsynchronousOperations\Api\Data\OperationInterface`.
pub const COMPLETE: i64 = 1;
pub const OPEN: i64 = 4;

/// Where a save went: its bulk and its operation id there.
#[derive(Clone, Debug)]
struct Scheduled {
    index: usize,
    uuid: String,
    id: i64,
}

/// Sends `bodies` (each `{"product": {…}}`) in bulks of `[magento] bulk_size`, waits for
/// Magento to process them (at most `[magento] bulk_wait_secs`) and returns each one's result
/// in order: `Ok` once its operation is complete, `Err` with Magento's message once it
/// failed, was rejected or is still open when the wait ends.
pub async fn save_products(ctx: &Context<'_>, bodies: Vec<Value>) -> Vec<Result<(), String>> {
    let mut results: Vec<Option<Result<(), String>>> = vec![None; bodies.len()];
    let scheduled: Mutex<Vec<Scheduled>> = Mutex::new(Vec::new());
    let items: Vec<(usize, Value)> = bodies.into_iter().enumerate().collect();
    let submitted = send_in_batches_capped(
        items,
        ctx.config.magento.bulk_size as usize,
        ctx.config.magento.max_concurrent_requests as usize,
        &ctx.bulk_cap,
        |chunk: Vec<(usize, Value)>| {
            let scheduled = &scheduled;
            async move { submit(ctx, chunk, scheduled).await }
        },
    )
    .await;
    for (slot, result) in results.iter_mut().zip(submitted) {
        if result.is_err() {
            *slot = Some(result);
        }
    }
    let scheduled = scheduled.into_inner().expect("bulk list lock poisoned");
    for (index, result) in poll(ctx, scheduled).await {
        results[index] = Some(result);
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err("not sent".into())))
        .collect()
}

/// One bulk request. A refusal of the whole request (`Err`) is split by the caller to isolate
/// a bad body, as for the synchronous batch endpoints; only a 400 is a body's fault.
async fn submit(
    ctx: &Context<'_>,
    chunk: Vec<(usize, Value)>,
    scheduled: &Mutex<Vec<Scheduled>>,
) -> Result<Vec<Result<(), String>>, String> {
    if let Some(why) = ctx.halted() {
        return Ok(vec![Err(why); chunk.len()]);
    }
    let list = Value::Array(chunk.iter().map(|(_, body)| body.clone()).collect());
    // Idempotent: a cut reply is sent again. Magento may then have scheduled the bulk twice;
    // two saves of the same product data by SKU leave it as one would.
    let reply = match ctx
        .magento
        .post(Scope::All, "/async/bulk/V1/products", &list, true)
        .await
    {
        Ok(reply) => reply,
        Err(e) => {
            let status = e.status();
            let message = ctx.magento_error(e);
            if ctx.halted().is_some() || status != Some(400) {
                return Ok(vec![Err(message); chunk.len()]);
            }
            return Err(message);
        }
    };
    let Some(uuid) = reply.get("bulk_uuid").and_then(Value::as_str) else {
        let why = format!("Magento's bulk reply has no bulk_uuid: {reply}");
        return Ok(vec![Err(why); chunk.len()]);
    };
    let items = reply
        .get("request_items")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut results = Vec::with_capacity(chunk.len());
    let mut accepted = Vec::new();
    for (position, (index, _)) in chunk.iter().enumerate() {
        let item = items
            .iter()
            .find(|i| i.get("id").and_then(Value::as_i64) == Some(position as i64));
        match item {
            Some(item) if item.get("status").and_then(Value::as_str) == Some("accepted") => {
                accepted.push(Scheduled {
                    index: *index,
                    uuid: uuid.to_string(),
                    id: position as i64,
                });
                results.push(Ok(()));
            }
            Some(item) => results.push(Err(format!(
                "Magento rejected the bulk item: {}",
                item.get("error_message")
                    .and_then(Value::as_str)
                    .unwrap_or("no message")
            ))),
            None => results.push(Err(format!(
                "Magento's bulk {uuid} reply does not list item {position}"
            ))),
        }
    }
    scheduled
        .lock()
        .expect("bulk list lock poisoned")
        .extend(accepted);
    Ok(results)
}

/// Polls each bulk's status with backoff (a quarter second, doubling to five) until every
/// operation is complete or failed, or `[magento] bulk_wait_secs` have passed.
async fn poll(ctx: &Context<'_>, scheduled: Vec<Scheduled>) -> Vec<(usize, Result<(), String>)> {
    let mut open: BTreeMap<String, Vec<Scheduled>> = BTreeMap::new();
    for s in scheduled {
        open.entry(s.uuid.clone()).or_default().push(s);
    }
    let mut done = Vec::new();
    let wait = Duration::from_secs(ctx.config.magento.bulk_wait_secs);
    let deadline = Instant::now() + wait;
    let mut delay = Duration::from_millis(250);
    let mut last_error: BTreeMap<String, String> = BTreeMap::new();
    while !open.is_empty() {
        tokio::time::sleep(delay.min(deadline.saturating_duration_since(Instant::now()))).await;
        delay = (delay * 2).min(Duration::from_secs(5));
        let uuids: Vec<String> = open.keys().cloned().collect();
        let replies = futures_util::future::join_all(uuids.iter().map(|uuid| async move {
            let path = format!("/V1/bulk/{}/status", segment(uuid));
            (uuid, ctx.magento.get(Scope::All, &path, &[]).await)
        }))
        .await;
        for (uuid, reply) in replies {
            let reply = match reply {
                Ok(reply) => {
                    last_error.remove(uuid);
                    reply
                }
                Err(e) => {
                    let not_found = e.is_not_found();
                    let message = ctx.magento_error(e);
                    if not_found || ctx.halted().is_some() {
                        for s in open.remove(uuid).unwrap_or_default() {
                            done.push((s.index, Err(message.clone())));
                        }
                    } else {
                        // Read again on the next round, until the wait ends.
                        tracing::debug!("reading bulk {uuid}: {message}");
                        last_error.insert(uuid.clone(), message);
                    }
                    continue;
                }
            };
            let operations = reply
                .get("operations_list")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let Some(pending) = open.get_mut(uuid) else {
                continue;
            };
            pending.retain(|s| {
                let op = operations
                    .iter()
                    .find(|o| o.get("id").and_then(Value::as_i64) == Some(s.id));
                let status = op
                    .and_then(|o| o.get("status"))
                    .and_then(Value::as_i64)
                    .unwrap_or(OPEN);
                if status == OPEN {
                    return true;
                }
                if status == COMPLETE {
                    done.push((s.index, Ok(())));
                } else {
                    let message = op
                        .and_then(|o| o.get("result_message"))
                        .and_then(Value::as_str)
                        .unwrap_or("no message");
                    done.push((
                        s.index,
                        Err(format!(
                            "{message} (Magento bulk {uuid}, operation {}, status {status})",
                            s.id
                        )),
                    ));
                }
                false
            });
            if pending.is_empty() {
                open.remove(uuid);
            }
        }
        if ctx.halted().is_some() || Instant::now() >= deadline {
            break;
        }
    }
    for (uuid, pending) in open {
        let why = match last_error.get(&uuid) {
            Some(e) => format!("the status of Magento bulk {uuid} could not be read: {e}"),
            None => format!(
                "Magento bulk {uuid} still open after {} s: are the store's consumers running \
                 (`bin/magento queue:consumers:start async.operations.all`)? Sent again by the next run",
                wait.as_secs()
            ),
        };
        for s in pending {
            done.push((s.index, Err(why.clone())));
        }
    }
    done
}
