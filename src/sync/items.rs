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
        super::inventory::existing_skus(ctx, &searchable)
            .await
            .ok()
            .map(|skus| skus.into_iter().collect())
    };
    let lookup = found.as_ref().map(|found| Lookup {
        searched: &searched,
        found,
    });
    futures_util::stream::iter(records)
        .map(|record| async move {
            let outcome = deliver_one(ctx, &record, lookup).await;
            progress.advance(Entity::Items, 1);
            (record, outcome)
        })
        .buffer_unordered(concurrency)
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

async fn deliver_one(ctx: &Context<'_>, record: &Record, lookup: Option<Lookup<'_>>) -> Outcome {
    let sku = record.key.as_str();
    if let Some(why) = ctx.halted() {
        return Outcome::Failed(why);
    }
    if record.operation == "delete" {
        return delete_candidate(ctx, sku, record.mapping.is_some()).await;
    }
    let update = update_fields(ctx, &record.row);
    let hash = payload_hash(&Value::Object(update.clone()));
    if record
        .mapping
        .as_ref()
        .and_then(|m| m.payload_hash.as_deref())
        == Some(hash.as_str())
    {
        return Outcome::Skipped("unchanged".into());
    }
    let delivered = Outcome::Delivered {
        target_key: sku.to_string(),
        source_key: None,
        hash,
    };
    if ctx.dry_run {
        return delivered;
    }
    let path = format!("/V1/products/{}", segment(sku));
    // Known from an earlier delivery, or found by SKU (linked, not duplicated).
    let exists = match (&record.mapping, lookup) {
        (Some(_), _) => true,
        (None, Some(l)) if l.searched.contains(sku) => l.found.contains(sku),
        (None, _) => match ctx.magento.get(Scope::All, &path, &[]).await {
            Ok(_) => true,
            Err(e) if e.is_not_found() => false,
            Err(e) => return Outcome::Failed(ctx.magento_error(e)),
        },
    };
    let result = if exists {
        let mut product = update;
        product.insert("sku".into(), json!(sku));
        ctx.magento
            .put(Scope::All, &path, &json!({ "product": product }))
            .await
    } else {
        let mut body = create_payload(ctx, sku, &record.row, &update);
        // PUT creates a missing SKU too and, unlike POST, is safe to repeat after a cut reply.
        match ctx.magento.put(Scope::All, &path, &body).await {
            // The name-and-SKU slug is not always unique: another product (a merchandiser's,
            // or a SKU that differs only in punctuation, `MUG 1` / `MUG-1`) may hold it, and
            // the create then failed on every run until the record was dead. Magento refused
            // the whole save, so trying once more with a suffix made from the exact SKU is safe.
            Err(e)
                if e.to_string()
                    .contains("URL key for specified store already exists") =>
            {
                if let Some(attrs) = body["product"]["custom_attributes"].as_array_mut() {
                    for attr in attrs {
                        if attr["attribute_code"] == "url_key" {
                            let base = attr["value"].as_str().unwrap_or_default().to_string();
                            attr["value"] =
                                json!(format!("{base}-{}", &payload_hash(&json!(sku))[..8]));
                        }
                    }
                }
                ctx.magento.put(Scope::All, &path, &body).await
            }
            other => other,
        }
    };
    match result {
        Ok(_) => delivered,
        Err(e) => Outcome::Failed(ctx.magento_error(e)),
    }
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
