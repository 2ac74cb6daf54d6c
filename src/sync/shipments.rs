//! `shipments`: a confirmed Acumatica `Shipment` → one Magento shipment per Magento order it
//! covers (`POST /V1/order/{entity_id}/ship`), with the `order_item_id`s from the orders'
//! line mappings, the shipped quantities (partial shipments), the packages' tracking numbers
//! and a carrier from `[shipments] ship_via`. The ShipmentNbr is written into the Magento
//! shipment (track title and comment) and looked up before posting, so a retry — or a run
//! killed after the POST — never ships twice.
//!
//! The GI row says which shipment changed; the shipment's lines and packages are read by key
//! (`$expand=Details,Packages`): a push GI cannot join several detail tables.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::customers::text;
use super::engine::{Context, Outcome, Progress, Record, payload_hash};
use crate::entities::Entity;
use crate::magento::search::{Condition, Filter};
use crate::magento::{Scope, SearchCriteria};

/// The text that marks a Magento shipment as made from Acumatica shipment `nbr`.
pub fn marker(nbr: &str) -> String {
    format!("Acumatica shipment {nbr}")
}

fn qty(v: &Value, field: &str) -> f64 {
    v.get(field)
        .and_then(|f| f.get("value"))
        .and_then(Value::as_f64)
        .unwrap_or(0.0)
}

/// The `items` of a Magento search in the store view.
async fn search(
    ctx: &Context<'_>,
    path: &str,
    criteria: &SearchCriteria,
) -> Result<Vec<Value>, crate::magento::MagentoError> {
    let mut reply = ctx
        .magento
        .get(Scope::Store, path, &criteria.to_query())
        .await?;
    Ok(match reply.get_mut("items").map(Value::take) {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    })
}

/// Whether Magento already has a shipment of `order_id` marked with `mark`.
async fn already_shipped(
    ctx: &Context<'_>,
    order_id: &str,
    mark: &str,
) -> Result<Option<i64>, String> {
    let criteria = SearchCriteria::new()
        .and(Filter::new("order_id", Condition::Eq, order_id))
        .page(300, 1);
    let items = search(ctx, "/V1/shipments", &criteria)
        .await
        .map_err(|e| format!("looking up the shipments of Magento order {order_id}: {e}"))?;
    for s in items {
        let marked = s.get("tracks").and_then(Value::as_array).is_some_and(|t| {
            t.iter()
                .any(|t| t.get("title").and_then(Value::as_str) == Some(mark))
        }) || s
            .get("comments")
            .and_then(Value::as_array)
            .is_some_and(|c| {
                c.iter()
                    .any(|c| c.get("comment").and_then(Value::as_str) == Some(mark))
            });
        if marked {
            return Ok(Some(
                s.get("entity_id").and_then(Value::as_i64).unwrap_or(0),
            ));
        }
    }
    Ok(None)
}

/// For an Acumatica order with no mapping: the Magento increment id it was imported from,
/// when Magento has that order — the orders flow put the increment id in `CustomerOrder`, and
/// a run killed after the PUT recorded no mapping. `None`: an order entered in Acumatica.
async fn imported_but_not_recorded(
    ctx: &Context<'_>,
    target: &str,
) -> Result<Option<String>, String> {
    let Some((order_type, order_nbr)) = target.split_once('/') else {
        return Ok(None);
    };
    if order_type != ctx.config.orders.order_type {
        return Ok(None);
    }
    let order = ctx
        .acumatica
        .get(&format!(
            "/SalesOrder/{order_type}/{order_nbr}?$select=CustomerOrder"
        ))
        .await
        .map_err(|e| format!("reading sales order {target}: {e}"))?;
    let Some(increment) = text(&order, "CustomerOrder").filter(|i| !i.is_empty()) else {
        return Ok(None);
    };
    let criteria = SearchCriteria::new()
        .and(Filter::new(
            "increment_id",
            Condition::Eq,
            increment.as_str(),
        ))
        .page(1, 1);
    let found = search(ctx, "/V1/orders", &criteria)
        .await
        .map_err(|e| format!("looking up Magento order {increment}: {e}"))?;
    Ok((!found.is_empty()).then_some(increment))
}

async fn ship(ctx: &Context<'_>, record: &Record) -> Outcome {
    let nbr = record.key.clone();
    let shipment = match ctx
        .acumatica
        .get(&format!("/Shipment/{nbr}?$expand=Details,Packages"))
        .await
    {
        Ok(s) => s,
        Err(e) => return Outcome::Failed(format!("reading shipment {nbr}: {e}")),
    };
    let status = text(&shipment, "Status").unwrap_or_default();
    if status != "Confirmed" && status != "Completed" {
        return Outcome::Skipped(format!("shipment {nbr} is {status:?}, not confirmed yet"));
    }
    let ship_via = text(&shipment, "ShipVia").unwrap_or_default();
    let carrier = ctx
        .config
        .shipments
        .ship_via
        .get(&ship_via)
        .cloned()
        .unwrap_or_else(|| ctx.config.shipments.default_carrier.clone());
    let tracking: Vec<String> = shipment
        .get("Packages")
        .and_then(Value::as_array)
        .map(|p| {
            p.iter()
                .filter_map(|p| text(p, "TrackingNbr"))
                .filter(|t| !t.is_empty())
                .collect()
        })
        .unwrap_or_default();
    // Shipped quantities per Acumatica order (type/number) and line.
    let mut per_order: BTreeMap<String, BTreeMap<i64, f64>> = BTreeMap::new();
    for line in shipment
        .get("Details")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let (Some(ty), Some(order_nbr)) = (text(line, "OrderType"), text(line, "OrderNbr")) else {
            continue;
        };
        let line_nbr = text(line, "OrderLineNbr")
            .and_then(|n| n.parse::<f64>().ok())
            .unwrap_or(0.0) as i64;
        let shipped = qty(line, "ShippedQty");
        if shipped > 0.0 {
            *per_order
                .entry(format!("{ty}/{order_nbr}"))
                .or_default()
                .entry(line_nbr)
                .or_default() += shipped;
        }
    }
    if per_order.is_empty() {
        return Outcome::Skipped(format!("shipment {nbr} ships nothing"));
    }
    let mark = marker(&nbr);
    let mut made = Vec::new();
    for (target, lines) in &per_order {
        let mapped = match ctx.store(|s| s.mapping_by_target(Entity::Orders.name(), target)) {
            Ok(m) => m,
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        let Some((magento_id, mapping)) = mapped else {
            match imported_but_not_recorded(ctx, target).await {
                Ok(None) => {
                    // An order entered in Acumatica, not from Magento: nothing to tell Magento.
                    tracing::info!(shipment = %nbr, order = %target, "not a Magento order: not sent");
                    continue;
                }
                // A run killed between the order's PUT and its mapping: the orders flow
                // adopts the order on its next attempt; until then this shipment waits.
                Ok(Some(increment)) => {
                    return Outcome::Failed(format!(
                        "shipment {nbr}: order {target} is Magento order {increment}, whose import \
                         is not recorded yet; sent once the orders flow records it"
                    ));
                }
                Err(e) => return Outcome::Failed(e),
            }
        };
        let line_map: Value = mapping
            .line_mappings
            .as_deref()
            .and_then(|l| serde_json::from_str(l).ok())
            .unwrap_or(Value::Null);
        let mut items = Vec::new();
        for (line_nbr, shipped) in lines {
            let item = line_map
                .get("lines")
                .and_then(Value::as_array)
                .and_then(|ls| {
                    ls.iter()
                        .find(|l| l.get("line_nbr").and_then(Value::as_i64) == Some(*line_nbr))
                })
                .and_then(|l| l.get("item_id").and_then(Value::as_i64));
            match item {
                Some(item_id) => items.push(json!({"order_item_id": item_id, "qty": shipped})),
                None => {
                    return Outcome::Failed(format!(
                        "shipment {nbr}: line {line_nbr} of {target} has no Magento item in the mapping"
                    ));
                }
            }
        }
        if ctx.dry_run {
            made.push(format!("{magento_id}:dry-run"));
            continue;
        }
        match already_shipped(ctx, &magento_id, &mark).await {
            Ok(Some(id)) => {
                made.push(format!("{magento_id}:{id}"));
                continue;
            }
            Ok(None) => {}
            Err(e) => return Outcome::Failed(e),
        }
        let tracks: Vec<Value> = tracking
            .iter()
            .map(|t| json!({"track_number": t, "title": mark, "carrier_code": carrier}))
            .collect();
        let body = json!({
            "items": items,
            "tracks": tracks,
            "comment": {"comment": mark, "is_visible_on_front": 0},
        });
        // Not idempotent: a cut-off reply is not resent blindly; the next attempt looks first.
        match ctx
            .magento
            .post(
                Scope::Store,
                &format!("/V1/order/{magento_id}/ship"),
                &body,
                false,
            )
            .await
        {
            Ok(reply) => made.push(format!(
                "{magento_id}:{}",
                reply
                    .as_i64()
                    .map(|i| i.to_string())
                    .unwrap_or_else(|| reply.to_string())
            )),
            Err(e) => {
                return Outcome::Failed(format!(
                    "shipment {nbr} to Magento order {magento_id}: {e}"
                ));
            }
        }
    }
    if made.is_empty() {
        return Outcome::Skipped(format!(
            "shipment {nbr} covers no order imported from Magento"
        ));
    }
    Outcome::Delivered {
        target_key: made.join(","),
        source_key: None,
        hash: payload_hash(
            &json!({"shipment": nbr, "orders": per_order.keys().collect::<Vec<_>>() }),
        ),
    }
}

pub async fn deliver(
    ctx: &Context<'_>,
    records: Vec<Record>,
    progress: &dyn Progress,
) -> Vec<(Record, Outcome)> {
    let mut out = Vec::with_capacity(records.len());
    for record in records {
        let outcome = if record
            .mapping
            .as_ref()
            .is_some_and(|m| m.payload_hash.is_some())
        {
            // Delivered before: a confirmed shipment cannot change; later rows are echoes.
            Outcome::Skipped("already sent to Magento".into())
        } else if record.operation == "delete" {
            Outcome::Skipped("a deleted shipment is not sent".into())
        } else {
            ship(ctx, &record).await
        };
        progress.advance(Entity::Shipments, 1);
        out.push((record, outcome));
    }
    out
}
