//! `inventory`: per-warehouse quantities (one GI row per item × warehouse) → one quantity per
//! product in Magento. The last quantity per item and warehouse is kept locally and the
//! configured warehouses are summed here (a push GI cannot aggregate): no extra read. Only SKUs
//! known to exist in Magento are sent — MSI silently accepts unknown SKUs as orphan rows.

use std::collections::{BTreeMap, HashSet};

use serde_json::{Value, json};

use super::engine::{Context, Outcome, Progress, Record, payload_hash};
use super::flows::send_in_batches_capped;
use crate::config::{InventoryApi, QuantityKind};
use crate::entities::Entity;
use crate::magento::{Condition, Filter, Scope, SearchCriteria, segment};
use crate::store::StockUpdate;

pub async fn deliver(
    ctx: &Context<'_>,
    records: Vec<Record>,
    progress: &dyn Progress,
) -> Vec<(Record, Outcome)> {
    let on_hand = ctx.config.quantity_kind() == QuantityKind::OnHand;
    let warehouses = &ctx.config.inventory.warehouses;
    let mut done = Vec::new();
    // Records grouped by SKU; each SKU's quantity is computed once.
    let mut by_sku: BTreeMap<String, Vec<Record>> = BTreeMap::new();
    // What this run read, laid over what the store kept (so a dry run changes nothing).
    let mut overlay: BTreeMap<(String, String), f64> = BTreeMap::new();
    // The rows' quantities, kept in one transaction (one commit per row was most of this
    // flow's local time on a large run).
    // (record, item, warehouse, on hand, available)
    type Parsed = (Record, String, String, Option<f64>, Option<f64>);
    let mut parsed: Vec<Parsed> = Vec::new();
    for record in records {
        let item = record
            .row
            .get("InventoryID")
            .and_then(Value::as_str)
            .map(str::trim);
        let warehouse = record
            .row
            .get("WarehouseID")
            .and_then(Value::as_str)
            .map(str::trim);
        let (Some(item), Some(warehouse)) = (item.map(String::from), warehouse.map(String::from))
        else {
            done.push((
                record,
                Outcome::Failed("the row lacks InventoryID or WarehouseID".into()),
            ));
            continue;
        };
        if record.operation == "delete" {
            done.push((
                record,
                Outcome::Skipped("a warehouse row left the inquiry: nothing to send".into()),
            ));
            continue;
        }
        let qty_on_hand = record.row.get("QtyOnHand").and_then(Value::as_f64);
        let qty_available = record.row.get("QtyAvailable").and_then(Value::as_f64);
        if ctx.dry_run
            && let Some(q) = if on_hand { qty_on_hand } else { qty_available }
        {
            overlay.insert((item.clone(), warehouse.clone()), q);
        }
        parsed.push((record, item, warehouse, qty_on_hand, qty_available));
    }
    let kept = if ctx.dry_run {
        Ok(())
    } else {
        let updates: Vec<StockUpdate<'_>> = parsed
            .iter()
            .map(
                |(record, item, warehouse, on_hand, available)| StockUpdate {
                    item,
                    warehouse,
                    on_hand: *on_hand,
                    available: *available,
                    version: &record.version,
                },
            )
            .collect();
        ctx.store(|s| s.upsert_stocks(&updates)).map(|_| ())
    };
    for (record, item, _, _, _) in parsed {
        match &kept {
            Ok(()) => by_sku.entry(item).or_default().push(record),
            Err(e) => done.push((record, Outcome::Failed(format!("{e:#}")))),
        }
    }

    // The quantity and payload of each SKU; unchanged ones skipped.
    let source = ctx.config.magento.inventory_source.clone();
    let legacy = ctx.config.magento.inventory_api == InventoryApi::Legacy;
    let mut pending: Vec<(String, Value, String)> = Vec::new();
    // What is kept and what was sent last, for every SKU of the chunk in two queries.
    let skus: Vec<&str> = by_sku.keys().map(String::as_str).collect();
    let kept = ctx.store(|s| {
        Ok((
            s.stock_rows_of(&skus)?,
            s.mappings_of(Entity::Inventory.name(), &skus)?,
        ))
    });
    let (mut stored, sent) = match kept {
        Ok(kept) => kept,
        Err(e) => {
            let failed = by_sku
                .keys()
                .map(|sku| (sku.clone(), Err(format!("{e:#}"))))
                .collect();
            return finish(done, by_sku, failed);
        }
    };
    for sku in by_sku.keys() {
        let mut per_warehouse: BTreeMap<String, f64> = stored
            .remove(sku)
            .unwrap_or_default()
            .into_iter()
            .map(|(w, oh, av)| (w, if on_hand { oh } else { av }.unwrap_or(0.0)))
            .collect();
        for ((item, warehouse), q) in &overlay {
            if item == sku {
                per_warehouse.insert(warehouse.clone(), *q);
            }
        }
        let quantity: f64 = per_warehouse
            .iter()
            .filter(|(w, _)| warehouses.is_empty() || warehouses.contains(w))
            .map(|(_, q)| q)
            .sum();
        let payload = if legacy {
            json!({ "qty": quantity, "is_in_stock": quantity > 0.0 })
        } else {
            json!({ "sku": sku, "source_code": source, "quantity": quantity, "status": u8::from(quantity > 0.0) })
        };
        let hash = payload_hash(&payload);
        let last = sent.get(sku).and_then(|m| m.payload_hash.as_deref());
        if last == Some(hash.as_str()) {
            pending.push((sku.clone(), Value::Null, "unchanged".into()));
        } else {
            pending.push((sku.clone(), payload, hash));
        }
    }

    // Only SKUs that exist in Magento.
    let candidates: Vec<String> = pending
        .iter()
        .filter(|(_, p, _)| !p.is_null())
        .map(|(sku, _, _)| sku.clone())
        .collect();
    let existing = match existing_skus(ctx, &candidates).await {
        Ok(found) => found,
        Err(e) => {
            return finish(
                done,
                by_sku,
                pending
                    .into_iter()
                    .map(|(s, _, _)| (s, Err(e.clone())))
                    .collect(),
            );
        }
    };

    let mut results: BTreeMap<String, Result<String, String>> = BTreeMap::new();
    let mut to_send: Vec<(String, Value, String)> = Vec::new();
    for (sku, payload, hash) in pending {
        if payload.is_null() {
            results.insert(sku, Err(format!("skip:{hash}")));
        } else if ctx.dry_run {
            // A real run's items flow creates the missing products before this flow runs; a
            // dry run creates none, so not finding them here is expected. Counting them as
            // failed made `--dry-run` before a first run exit 3 with every quantity "failed".
            results.insert(sku, Ok(hash));
        } else if !existing.contains(&sku) {
            results.insert(
                sku,
                Err(
                    "the product is not in Magento yet; retried after the items flow creates it"
                        .into(),
                ),
            );
        } else {
            to_send.push((sku, payload, hash));
        }
    }
    if legacy {
        for (sku, payload, hash) in to_send {
            if let Some(why) = ctx.halted() {
                results.insert(sku, Err(why));
                continue;
            }
            let path = format!("/V1/products/{}/stockItems/1", segment(&sku));
            let r = ctx
                .magento
                .put(Scope::All, &path, &json!({ "stockItem": payload }))
                .await
                .map(|_| hash)
                .map_err(|e| ctx.magento_error(e));
            progress.advance(Entity::Inventory, 1);
            results.insert(sku, r);
        }
    } else {
        let (keys, items): (Vec<(String, String)>, Vec<Value>) = to_send
            .into_iter()
            .map(|(sku, payload, hash)| ((sku, hash), payload))
            .unzip();
        let sent = send_in_batches_capped(
            items,
            ctx.config.sync.batch_size as usize,
            ctx.config.magento.max_concurrent_requests as usize,
            &ctx.batch_cap,
            |chunk| async move {
                if let Some(why) = ctx.halted() {
                    return Ok(vec![Err(why); chunk.len()]);
                }
                if let Err(e) = ctx
                    .magento
                    .send_detached(
                        reqwest::Method::POST,
                        Scope::All,
                        "/V1/inventory/source-items",
                        json!({ "sourceItems": chunk }),
                        true,
                    )
                    .await
                {
                    let message = ctx.magento_error(e);
                    // Magento refused the credentials: not this batch's fault, so no split.
                    if ctx.halted().is_some() {
                        return Ok(vec![Err(message); chunk.len()]);
                    }
                    return Err(message);
                }
                progress.advance(Entity::Inventory, chunk.len() as u64);
                Ok(chunk.iter().map(|_| Ok(())).collect())
            },
        )
        .await;
        for ((sku, hash), r) in keys.into_iter().zip(sent) {
            results.insert(sku, r.map(|()| hash));
        }
    }
    finish(done, by_sku, results)
}

/// Turns per-SKU results into per-record outcomes.
fn finish(
    mut done: Vec<(Record, Outcome)>,
    by_sku: BTreeMap<String, Vec<Record>>,
    results: BTreeMap<String, Result<String, String>>,
) -> Vec<(Record, Outcome)> {
    for (sku, recs) in by_sku {
        let result = results
            .get(&sku)
            .cloned()
            .unwrap_or_else(|| Err("not sent".into()));
        for record in recs {
            let outcome = match &result {
                Ok(hash) => Outcome::Delivered {
                    target_key: sku.clone(),
                    source_key: Some(sku.clone()),
                    hash: hash.clone(),
                },
                Err(reason) => match reason.strip_prefix("skip:") {
                    Some(why) => Outcome::Skipped(why.to_string()),
                    None => Outcome::Failed(reason.clone()),
                },
            };
            done.push((record, outcome));
        }
    }
    done
}

/// Which of `skus` exist in Magento: known from the items flow's mappings, the rest looked up
/// in batches of 100 with one search each.
///
/// A set: the inventory flow asks it once per SKU of a chunk, and a list searched each time
/// made that quadratic (memcmp was 6 % of a 100,000-quantity run's CPU, perf).
pub(super) async fn existing_skus(
    ctx: &Context<'_>,
    skus: &[String],
) -> Result<HashSet<String>, String> {
    let keys: Vec<&str> = skus.iter().map(String::as_str).collect();
    let mapped = ctx
        .store(|s| s.mappings_of(Entity::Items.name(), &keys))
        .unwrap_or_default();
    let mut found: HashSet<String> = skus
        .iter()
        .filter(|sku| mapped.contains_key(*sku))
        .cloned()
        .collect();
    let unknown: Vec<&str> = keys
        .iter()
        .copied()
        .filter(|sku| !mapped.contains_key(*sku))
        .collect();
    for chunk in unknown.chunks(100) {
        let query = SearchCriteria::new()
            .and(Filter::new("sku", Condition::In, chunk.join(",")))
            .page(100, 1)
            .to_query();
        let reply = ctx
            .magento
            .get(Scope::All, "/V1/products", &query)
            .await
            .map_err(|e| ctx.magento_error(e))?;
        for product in reply
            .get("items")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(sku) = product.get("sku").and_then(Value::as_str) {
                found.insert(sku.to_string());
            }
        }
    }
    Ok(found)
}
