//! `items`: Acumatica stock items → Magento simple products (DESIGN.md section 2).
//!
//! Product data is written through `/rest/all/V1` (global values). On create the product also
//! gets its price, attribute set, websites, visibility and a unique `url_key`; afterwards the
//! create-only fields (config `items.create_only`) are never written again, and the price
//! belongs to the `prices` flow alone. A product that already exists in Magento is linked by
//! SKU on the first run, not duplicated.

use std::collections::HashSet;

use futures_util::StreamExt;
use serde_json::{Map, Value, json};

use super::engine::{Context, Outcome, Progress, Record, payload_hash};
use crate::entities::Entity;
use crate::magento::{Scope, segment};

pub async fn deliver(
    ctx: &Context<'_>,
    records: Vec<Record>,
    progress: &dyn Progress,
) -> Vec<(Record, Outcome)> {
    let concurrency = ctx.config.magento.max_concurrent_requests.max(1) as usize;
    // Which unmapped SKUs Magento already has, found with one search per 100 instead of one
    // GET per product: a first run (or a catch-up of new items) cost two calls per item. A
    // SKU with a comma cannot go into the `in` filter and keeps its own GET; so does every
    // SKU when the search fails (the GET then reports the error per record).
    let searchable: Vec<String> = records
        .iter()
        .filter(|r| r.mapping.is_none() && r.operation != "delete" && !r.key.contains(','))
        .map(|r| r.key.clone())
        .collect();
    let searched: HashSet<String> = searchable.iter().cloned().collect();
    let found: Option<HashSet<String>> = if ctx.dry_run || searchable.is_empty() {
        None
    } else {
        super::inventory::existing_skus(ctx, &searchable).await.ok()
    };
    let lookup = found.as_ref().map(|found| Lookup {
        searched: &searched,
        found,
    });
    if ctx.bulk && !ctx.dry_run {
        return deliver_bulk(ctx, records, lookup, progress).await;
    }
    futures_util::stream::iter(records)
        .map(|record| async move {
            let outcome = deliver_one(ctx, &record, lookup).await;
            progress.advance(Entity::Items, 1);
            (record, outcome)
        })
        // Twice the slots: the extra calls wait in the client's limiter (which keeps the cap),
        // ready to take a freed slot while the engine is busy recording another chunk.
        .buffer_unordered(2 * concurrency)
        .collect()
        .await
}

/// Magento's product status: 1 enabled, 2 disabled. Enabled: the statuses Acumatica still
/// sells — Active, No Purchases, and No Request (only replenishment requests are blocked; it
/// was disabled here before, taking sellable products off the store). Disabled: Inactive, No
/// Sales, Marked for Deletion, and anything unknown.
fn status_of(item_status: &str) -> u8 {
    match item_status.trim() {
        "AC" | "Active" | "NP" | "No Purchases" | "NR" | "No Request" => 1,
        _ => 2,
    }
}

/// The fields written on every change (what is hashed): nulls in the row are untracked
/// fields and are left out, never sent as "cleared".
fn update_fields(ctx: &Context<'_>, row: &Value) -> Map<String, Value> {
    let create_only = &ctx.config.items.create_only;
    let mut product = Map::new();
    if let Some(name) = row.get("Description").and_then(Value::as_str)
        && !create_only.iter().any(|f| f == "name")
    {
        product.insert("name".into(), json!(name.trim()));
    }
    if let Some(status) = row.get("ItemStatus").and_then(Value::as_str) {
        product.insert("status".into(), json!(status_of(status)));
    }
    if let Some(weight) = row.get("BaseWeight").and_then(Value::as_f64)
        && !create_only.iter().any(|f| f == "weight")
    {
        product.insert("weight".into(), json!(weight));
    }
    product
}

/// A `url_key` no other product has: the name's slug and the SKU's.
fn url_key(name: &str, sku: &str) -> String {
    let slug = |s: &str| {
        s.to_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect::<String>()
            .split('-')
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join("-")
    };
    let (name, sku) = (slug(name), slug(sku));
    if name.is_empty() {
        sku
    } else {
        format!("{name}-{sku}")
    }
}

fn create_payload(ctx: &Context<'_>, sku: &str, row: &Value, update: &Map<String, Value>) -> Value {
    let items = &ctx.config.items;
    let name = row
        .get("Description")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or(sku);
    let mut product = update.clone();
    product.insert("sku".into(), json!(sku));
    product.insert("name".into(), json!(name));
    product.insert("type_id".into(), json!("simple"));
    product.insert("attribute_set_id".into(), json!(items.attribute_set_id));
    product.insert("visibility".into(), json!(items.visibility));
    product.insert(
        "price".into(),
        json!(row.get("BasePrice").and_then(Value::as_f64).unwrap_or(0.0)),
    );
    product.entry("status").or_insert(json!(1));
    if let Some(weight) = row.get("BaseWeight").and_then(Value::as_f64) {
        product.insert("weight".into(), json!(weight));
    }
    product.insert(
        "extension_attributes".into(),
        json!({ "website_ids": items.website_ids }),
    );
    product.insert(
        "custom_attributes".into(),
        json!([{ "attribute_code": "url_key", "value": url_key(name, sku) }]),
    );
    json!({ "product": product })
}

/// The result of the batched search for unmapped SKUs.
#[derive(Clone, Copy)]
struct Lookup<'a> {
    searched: &'a HashSet<String>,
    found: &'a HashSet<String>,
}

/// What a record needs: nothing more (an outcome already), or one product save.
enum Plan {
    Done(Outcome),
    Save {
        /// `/V1/products/{sku}`.
        path: String,
        /// `{"product": {…}}`: the update fields, or every create field for a new product.
        body: Value,
        /// Whether `body` creates the product (it carries a `url_key`).
        create: bool,
        /// The outcome once the save succeeded.
        delivered: Outcome,
    },
}

/// Everything before the save, shared by the synchronous path and `--bulk`: deletes,
/// unchanged payloads, dry runs, and whether the product exists (which picks the payload).
async fn plan(ctx: &Context<'_>, record: &Record, lookup: Option<Lookup<'_>>) -> Plan {
    let sku = record.key.as_str();
    if let Some(why) = ctx.halted() {
        return Plan::Done(Outcome::Failed(why));
    }
    if record.operation == "delete" {
        return Plan::Done(delete_candidate(ctx, sku, record.mapping.is_some()).await);
    }
    let update = update_fields(ctx, &record.row);
    let hash = payload_hash(&Value::Object(update.clone()));
    if record
        .mapping
        .as_ref()
        .and_then(|m| m.payload_hash.as_deref())
        == Some(hash.as_str())
    {
        return Plan::Done(Outcome::Skipped("unchanged".into()));
    }
    let delivered = Outcome::Delivered {
        target_key: sku.to_string(),
        source_key: None,
        hash,
    };
    if ctx.dry_run {
        return Plan::Done(delivered);
    }
    let path = format!("/V1/products/{}", segment(sku));
    // Known from an earlier delivery, or found by SKU (linked, not duplicated).
    let exists = match (&record.mapping, lookup) {
        (Some(_), _) => true,
        (None, Some(l)) if l.searched.contains(sku) => l.found.contains(sku),
        (None, _) => match ctx.magento.get(Scope::All, &path, &[]).await {
            Ok(_) => true,
            Err(e) if e.is_not_found() => false,
            Err(e) => return Plan::Done(Outcome::Failed(ctx.magento_error(e))),
        },
    };
    let body = if exists {
        let mut product = update;
        product.insert("sku".into(), json!(sku));
        json!({ "product": product })
    } else {
        create_payload(ctx, sku, &record.row, &update)
    };
    Plan::Save {
        path,
        body,
        create: !exists,
        delivered,
    }
}

/// Magento's refusal of a URL key another product holds.
fn is_url_key_taken(message: &str) -> bool {
    message.contains("URL key for specified store already exists")
}

/// The name-and-SKU slug is not always unique: another product (a merchandiser's, or a SKU
/// that differs only in punctuation, `MUG 1` / `MUG-1`) may hold it, and the create then
/// failed on every run until the record was dead. Magento refused the whole save, so trying
/// once more with a suffix made from the exact SKU is safe.
fn with_unique_url_key(body: &mut Value, sku: &str) {
    if let Some(attrs) = body["product"]["custom_attributes"].as_array_mut() {
        for attr in attrs {
            if attr["attribute_code"] == "url_key" {
                let base = attr["value"].as_str().unwrap_or_default().to_string();
                attr["value"] = json!(format!("{base}-{}", &payload_hash(&json!(sku))[..8]));
            }
        }
    }
}

async fn deliver_one(ctx: &Context<'_>, record: &Record, lookup: Option<Lookup<'_>>) -> Outcome {
    let (path, mut body, create, delivered) = match plan(ctx, record, lookup).await {
        Plan::Done(outcome) => return outcome,
        Plan::Save {
            path,
            body,
            create,
            delivered,
        } => (path, body, create, delivered),
    };
    // PUT creates a missing SKU too and, unlike POST, is safe to repeat after a cut reply.
    let result = match ctx.magento.put(Scope::All, &path, &body).await {
        Err(e) if create && is_url_key_taken(&e.to_string()) => {
            with_unique_url_key(&mut body, &record.key);
            ctx.magento.put(Scope::All, &path, &body).await
        }
        other => other,
    };
    match result {
        Ok(_) => delivered,
        Err(e) => Outcome::Failed(ctx.magento_error(e)),
    }
}

/// `sync --full --bulk`: the same plans, their saves sent through Magento's asynchronous bulk
/// API instead of one `PUT` each (deletes, skips and lookups as on the synchronous path).
///
/// Exactly once in effect: nothing is written to the state store between submitting a bulk
/// and reading its status. A record is marked delivered (with its mapping and payload hash)
/// only once Magento reports its operation complete, and failed (with Magento's message, and
/// retried by a later run like any failure) once it reports it failed or the wait ran out.
/// If the connector dies in between, the record's message is still pending and the next run
/// sends it again; the operation Magento may meanwhile have completed is harmless, since a
/// product save is idempotent by SKU (the re-send finds the product and sends the update
/// fields, which it already has). A lost operation is therefore impossible, a duplicate one
/// is a no-op.
async fn deliver_bulk(
    ctx: &Context<'_>,
    records: Vec<Record>,
    lookup: Option<Lookup<'_>>,
    progress: &dyn Progress,
) -> Vec<(Record, Outcome)> {
    let concurrency = ctx.config.magento.max_concurrent_requests.max(1) as usize;
    let plans: Vec<(Record, Plan)> = futures_util::stream::iter(records)
        .map(|record| async move {
            let plan = plan(ctx, &record, lookup).await;
            (record, plan)
        })
        .buffered(concurrency)
        .collect()
        .await;
    let mut done = Vec::new();
    let mut saves = Vec::new();
    for (record, plan) in plans {
        match plan {
            Plan::Done(outcome) => {
                progress.advance(Entity::Items, 1);
                done.push((record, outcome));
            }
            Plan::Save {
                body,
                create,
                delivered,
                ..
            } => saves.push((record, body, create, delivered)),
        }
    }
    let bodies: Vec<Value> = saves.iter().map(|(_, body, _, _)| body.clone()).collect();
    let mut results = super::bulk::save_products(ctx, bodies).await;
    // A create refused for its URL key goes once more with the SKU suffix, as on the
    // synchronous path.
    let retry: Vec<usize> = (0..saves.len())
        .filter(|&i| saves[i].2 && matches!(&results[i], Err(e) if is_url_key_taken(e)))
        .collect();
    if !retry.is_empty() {
        let bodies = retry
            .iter()
            .map(|&i| {
                let mut body = saves[i].1.clone();
                with_unique_url_key(&mut body, &saves[i].0.key);
                body
            })
            .collect();
        for (i, result) in retry
            .into_iter()
            .zip(super::bulk::save_products(ctx, bodies).await)
        {
            results[i] = result;
        }
    }
    for ((record, _, _, delivered), result) in saves.into_iter().zip(results) {
        progress.advance(Entity::Items, 1);
        let outcome = match result {
            Ok(()) => delivered,
            Err(e) => Outcome::Failed(e),
        };
        done.push((record, outcome));
    }
    done
}

/// A row only in `Deleted`: disable the product only if Acumatica confirms the item is gone.
///
/// The read is a `$filter` on the key, not `GET /StockItem/{id}`: Acumatica answers a missing
/// record by key with 500 `NoEntitySatisfiesTheConditionException`, not 404, so the read by
/// key was retried as a server error and the delete then failed on every run — a deleted
/// item's product was never disabled. An empty list is an unambiguous "gone".
///
/// A product the connector never delivered (`mapped` false) is looked up first: a `PUT` of a
/// missing SKU would try to create it (and fail on the missing create fields).
async fn delete_candidate(ctx: &Context<'_>, sku: &str, mapped: bool) -> Outcome {
    let filter = format!("InventoryID eq '{}'", sku.replace('\'', "''"));
    let found = match ctx
        .acumatica
        .get(&format!(
            "/StockItem?$filter={}&$select=InventoryID",
            segment(&filter)
        ))
        .await
    {
        Ok(reply) => reply.as_array().is_some_and(|rows| !rows.is_empty()),
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    if found {
        return Outcome::Skipped("still in Acumatica (the first half of an update)".into());
    }
    let hash = payload_hash(&json!({ "deleted": true }));
    let path = format!("/V1/products/{}", segment(sku));
    if !mapped {
        match ctx.magento.get(Scope::All, &path, &[]).await {
            Ok(_) => {}
            Err(e) if e.is_not_found() => {
                return Outcome::Skipped("not in Magento either".into());
            }
            Err(e) => return Outcome::Failed(ctx.magento_error(e)),
        }
    }
    if ctx.dry_run {
        return Outcome::Delivered {
            target_key: sku.into(),
            source_key: None,
            hash,
        };
    }
    let product = json!({ "product": { "sku": sku, "status": 2 } });
    match ctx.magento.put(Scope::All, &path, &product).await {
        Ok(_) => Outcome::Delivered {
            target_key: sku.into(),
            source_key: None,
            hash,
        },
        Err(e) if e.is_not_found() => Outcome::Skipped("not in Magento either".into()),
        Err(e) => Outcome::Failed(ctx.magento_error(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_keys_are_slugs_of_name_and_sku() {
        assert_eq!(
            url_key("Blue Mug, 300 ml", "MUG/300-B"),
            "blue-mug-300-ml-mug-300-b"
        );
        assert_eq!(url_key("", "AB 1"), "ab-1");
    }

    #[test]
    fn active_statuses_enable_and_the_rest_disable() {
        assert_eq!(status_of("AC"), 1);
        assert_eq!(status_of("Active"), 1);
        assert_eq!(status_of("NR"), 1);
        assert_eq!(status_of("No Request"), 1);
        assert_eq!(status_of("NS"), 2);
        assert_eq!(status_of("IN"), 2);
        assert_eq!(status_of("DE"), 2);
    }
}
