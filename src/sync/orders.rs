//! `orders`: a Magento order → an Acumatica `SalesOrder`.
//!
//! - The increment id goes into `CustomerOrder` and `ExternalRef`, and the order is looked up
//!   by it (with its order type) BEFORE it is created: a run killed after the PUT and before
//!   the mapping was written adopts the order it created instead of creating a second one.
//! - The customer is imported first when missing (customers::ensure_customer).
//! - Lines by SKU (a configurable product's parent line carries the price, its child line the
//!   SKU of what ships); an unknown SKU is Acumatica's refusal of that order only.
//! - Freight, per-line discounts, and Magento's tax carried with Acumatica's automatic tax
//!   calculation off (or a tax zone), so the order total equals `grand_total` to the cent.
//! - The mapping: Magento entity id → `{OrderType}/{OrderNbr}`; its line mappings hold the
//!   increment id and each Magento `item_id` ↔ Acumatica `LineNbr`.
//! - Later: a cancellation cancels the Acumatica order when nothing shipped (otherwise it is
//!   reported); other edits are reported, not applied; an update that changes nothing the
//!   connector imported (a status change, the connector's own shipment) is recognised by the
//!   hash of the imported content and skipped.

use serde_json::{Value, json};

use super::customers::{address, ensure_customer, odata_literal, text, w};
use super::engine::{Context, Outcome, Progress, Record, payload_hash};
use crate::config::TaxMode;
use crate::entities::Entity;

fn num(v: &Value, field: &str) -> f64 {
    match v.get(field) {
        Some(Value::Number(n)) => n.as_f64().unwrap_or(0.0),
        Some(Value::String(s)) => s.parse().unwrap_or(0.0),
        _ => 0.0,
    }
}

fn cents(x: f64) -> i64 {
    (x * 100.0).round() as i64
}

/// One Magento line as it becomes an Acumatica line.
#[derive(Clone, Debug)]
struct Line {
    item_id: i64,
    sku: String,
    qty: f64,
    price: f64,
    discount: f64,
}

/// The lines to import: top-level items; a configurable parent takes its child's SKU.
fn lines_of(order: &Value) -> Vec<Line> {
    let items = order
        .get("items")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut lines = Vec::new();
    for item in &items {
        if item.get("parent_item_id").is_some_and(|p| !p.is_null()) {
            continue;
        }
        let item_id = item.get("item_id").and_then(Value::as_i64).unwrap_or(0);
        let mut sku = item
            .get("sku")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if item.get("product_type").and_then(Value::as_str) == Some("configurable")
            && let Some(child) = items
                .iter()
                .find(|c| c.get("parent_item_id").and_then(Value::as_i64) == Some(item_id))
            && let Some(child_sku) = child.get("sku").and_then(Value::as_str)
        {
            sku = child_sku.to_string();
        }
        lines.push(Line {
            item_id,
            sku,
            qty: num(item, "qty_ordered"),
            price: num(item, "price"),
            discount: num(item, "discount_amount").abs(),
        });
    }
    lines
}

/// What was imported from an order: equal hashes mean no edit worth reporting (status
/// changes and shipments — the connector's own — change none of it).
fn content_hash(order: &Value) -> String {
    let lines: Vec<Value> = lines_of(order)
        .iter()
        .map(|l| json!([l.item_id, l.sku, l.qty, l.price, l.discount]))
        .collect();
    payload_hash(&json!({
        "lines": lines,
        "grand_total": cents(num(order, "grand_total")),
        "shipping": cents(num(order, "shipping_amount")),
        "tax": cents(num(order, "tax_amount")),
        "email": order.get("customer_email"),
    }))
}

fn increment_id(order: &Value) -> String {
    match order.get("increment_id") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

fn order_body(ctx: &Context<'_>, order: &Value, customer: &str) -> Value {
    let cfg = &ctx.config.orders;
    let inc = increment_id(order);
    let lines = lines_of(order);
    let details: Vec<Value> = lines
        .iter()
        .map(|l| {
            json!({
                "InventoryID": w(l.sku.clone()),
                "OrderQty": w(l.qty),
                "UnitPrice": w(l.price),
                "DiscountAmount": w(l.discount),
            })
        })
        .collect();
    let mut body = json!({
        "OrderType": w(cfg.order_type.clone()),
        "CustomerID": w(customer),
        "CustomerOrder": w(inc.clone()),
        "ExternalRef": w(inc),
        "Details": details,
        "Totals": { "Freight": w(num(order, "shipping_amount")) },
    });
    // The order's own addresses, as placed (they override the customer's defaults).
    let name = |a: &Value| {
        format!(
            "{} {}",
            a.get("firstname")
                .and_then(Value::as_str)
                .unwrap_or_default(),
            a.get("lastname")
                .and_then(Value::as_str)
                .unwrap_or_default()
        )
        .trim()
        .to_string()
    };
    let contact = |a: &Value| {
        json!({
            "Attention": w(name(a)),
            "Email": w(order.get("customer_email").and_then(Value::as_str).unwrap_or_default()),
            "Phone1": w(a.get("telephone").and_then(Value::as_str).unwrap_or_default()),
        })
    };
    if let Some(billing) = order.get("billing_address").filter(|a| a.is_object()) {
        body["BillToAddressOverride"] = w(true);
        body["BillToAddress"] = address(billing);
        body["BillToContactOverride"] = w(true);
        body["BillToContact"] = contact(billing);
    }
    if let Some(shipping) = order
        .pointer("/extension_attributes/shipping_assignments/0/shipping/address")
        .filter(|a| a.is_object())
    {
        body["ShipToAddressOverride"] = w(true);
        body["ShipToAddress"] = address(shipping);
        body["ShipToContactOverride"] = w(true);
        body["ShipToContact"] = contact(shipping);
    }
    if let Some(cur) = order.get("order_currency_code").and_then(Value::as_str) {
        body["CurrencyID"] = w(cur);
    }
    if let Some(method) = order
        .pointer("/payment/method")
        .and_then(Value::as_str)
        .and_then(|m| cfg.payment_methods.get(m))
    {
        body["PaymentMethod"] = w(method.clone());
    }
    match cfg.tax_mode {
        TaxMode::Carry => {
            body["DisableAutomaticTaxCalculation"] = w(true);
            let tax = num(order, "tax_amount");
            if cents(tax) != 0 {
                let taxable: f64 = lines.iter().map(|l| l.qty * l.price - l.discount).sum();
                body["TaxDetails"] = json!([{
                    "TaxID": w(cfg.tax_id.clone()),
                    "TaxAmount": w(tax),
                    "TaxableAmount": w((taxable * 100.0).round() / 100.0),
                }]);
            }
        }
        TaxMode::TaxZone => {
            if let Some(zone) = &cfg.tax_zone {
                body["TaxZone"] = w(zone.clone());
            }
        }
    }
    body
}

/// The line mappings kept with an order's mapping.
fn line_mappings(order: &Value, acumatica: &Value) -> String {
    let lines = lines_of(order);
    let nbrs: Vec<Option<i64>> = acumatica
        .get("Details")
        .and_then(Value::as_array)
        .map(|d| {
            d.iter()
                .map(|l| {
                    text(l, "LineNbr")
                        .and_then(|n| n.parse::<f64>().ok())
                        .map(|n| n as i64)
                })
                .collect()
        })
        .unwrap_or_default();
    let mapped: Vec<Value> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            json!({"item_id": l.item_id, "line_nbr": nbrs.get(i).copied().flatten(), "sku": l.sku})
        })
        .collect();
    json!({
        "increment_id": increment_id(order),
        "entity_id": order.get("entity_id"),
        "lines": mapped,
    })
    .to_string()
}

fn target_of(ctx: &Context<'_>, acumatica: &Value) -> Option<String> {
    let nbr = text(acumatica, "OrderNbr")?;
    let ty = text(acumatica, "OrderType").unwrap_or_else(|| ctx.config.orders.order_type.clone());
    Some(format!("{ty}/{nbr}"))
}

/// The Acumatica order already carrying this increment id (a run killed after the PUT).
async fn find_existing(ctx: &Context<'_>, inc: &str) -> Result<Option<Value>, String> {
    let path = format!(
        "/SalesOrder?$filter=OrderType%20eq%20{}%20and%20CustomerOrder%20eq%20{}&$expand=Details",
        odata_literal(&ctx.config.orders.order_type),
        odata_literal(inc)
    );
    let found = ctx
        .acumatica
        .get(&path)
        .await
        .map_err(|e| format!("looking up order {inc} in Acumatica: {e}"))?;
    Ok(found.as_array().and_then(|rows| rows.first()).cloned())
}

/// Orders looked up with one read: the `$filter` of [`find_many`] stays a few kB long.
const LOOKUP_BATCH: usize = 50;

/// [`find_existing`] for many increment ids with one read
/// (`CustomerOrder eq 'a' or CustomerOrder eq 'b' …`): the Acumatica orders found, by
/// increment id. Looking each order up on its own was one of the two calls every new order
/// cost; under a per-minute licence that halved the orders a run could import.
async fn find_many(
    ctx: &Context<'_>,
    incs: &[String],
) -> Result<std::collections::HashMap<String, Value>, String> {
    let any = incs
        .iter()
        .map(|inc| format!("CustomerOrder%20eq%20{}", odata_literal(inc)))
        .collect::<Vec<_>>()
        .join("%20or%20");
    let path = format!(
        "/SalesOrder?$filter=OrderType%20eq%20{}%20and%20({any})&$expand=Details",
        odata_literal(&ctx.config.orders.order_type),
    );
    let found = ctx
        .acumatica
        .get(&path)
        .await
        .map_err(|e| format!("looking up {} orders in Acumatica: {e}", incs.len()))?;
    Ok(found
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| text(o, "CustomerOrder").map(|inc| (inc, o.clone())))
        .collect())
}

/// The PUT that creates a sales order, sent once: the order has no key yet (Acumatica numbers
/// it), so a resend after a cut-off reply would create a second order. A failed attempt is
/// retried by a later run, which looks the order up by its increment id first.
async fn create_order(
    ctx: &Context<'_>,
    body: &Value,
) -> Result<Value, crate::acumatica::AcumaticaError> {
    let a = &ctx.config.acumatica;
    let path = "/SalesOrder?$expand=Details";
    let url = format!(
        "{}/entity/{}/{}{path}",
        a.url, a.endpoint, a.endpoint_version
    );
    let reply = ctx
        .acumatica
        .send(reqwest::Method::PUT, &url, Some(body), None, false)
        .await?;
    reply.json("PUT", path)
}

/// Imports one new order. `looked_up`: the result of the batched lookup for its increment id
/// (`Some(None)`: not in Acumatica); `None`: look it up now.
async fn import(
    ctx: &Context<'_>,
    record: &Record,
    customer_gate: &tokio::sync::Mutex<()>,
    looked_up: Option<Option<Value>>,
) -> Outcome {
    let order = &record.row;
    let inc = increment_id(order);
    if inc.is_empty() {
        return Outcome::Failed("the Magento order has no increment_id".into());
    }
    let status = order
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !ctx.config.orders.statuses.iter().any(|s| s == status) {
        return Outcome::Skipped(format!(
            "status {status:?} is not imported (orders.statuses)"
        ));
    }
    let hash = content_hash(order);
    let existing = match looked_up {
        Some(found) => found,
        None => match find_existing(ctx, &inc).await {
            Ok(e) => e,
            Err(e) => return Outcome::Failed(e),
        },
    };
    let created = match existing {
        Some(found) => {
            tracing::info!(order = %inc, "already in Acumatica (an earlier run was cut off): mapped, not created again");
            found
        }
        None => {
            if ctx.dry_run {
                return Outcome::Delivered {
                    target_key: String::new(),
                    source_key: None,
                    hash,
                };
            }
            let customer = {
                let _one_at_a_time = customer_gate.lock().await;
                ensure_customer(ctx, order).await
            };
            let customer = match customer {
                Ok(c) => c,
                Err(e) => return Outcome::Failed(format!("order {inc}: {e}")),
            };
            let body = order_body(ctx, order, &customer);
            match create_order(ctx, &body).await {
                Ok(reply) => reply,
                Err(e) => return Outcome::Failed(format!("order {inc}: {e}")),
            }
        }
    };
    let Some(target) = target_of(ctx, &created) else {
        return Outcome::Failed(format!("order {inc}: Acumatica's reply has no OrderNbr"));
    };
    let grand = cents(num(order, "grand_total"));
    let total = created
        .get("OrderTotal")
        .and_then(|v| v.get("value"))
        .and_then(Value::as_f64)
        .map(cents);
    if total.is_some_and(|t| t != grand) {
        tracing::warn!(
            order = %inc,
            "the Acumatica total {:.2} differs from Magento's grand_total {:.2}",
            total.unwrap_or(0) as f64 / 100.0,
            grand as f64 / 100.0
        );
    }
    let lines = line_mappings(order, &created);
    if let Err(e) =
        ctx.store(|s| s.save_line_mappings(Entity::Orders.name(), &record.key, &target, &lines))
    {
        return Outcome::Failed(e.to_string());
    }
    Outcome::Delivered {
        target_key: target,
        source_key: None,
        hash,
    }
}

/// A later version of an imported order: cancel, report, or skip.
async fn later(
    ctx: &Context<'_>,
    record: &Record,
    target: &str,
    delivered_hash: Option<&str>,
) -> Outcome {
    let order = &record.row;
    let inc = increment_id(order);
    let status = order
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let (ty, nbr) = target
        .split_once('/')
        .unwrap_or((ctx.config.orders.order_type.as_str(), target));
    if status == "canceled" {
        let current = match ctx
            .acumatica
            .get(&format!("/SalesOrder/{ty}/{nbr}?$select=Status"))
            .await
        {
            Ok(v) => text(&v, "Status").unwrap_or_default(),
            Err(e) => return Outcome::Failed(format!("reading order {target}: {e}")),
        };
        if current == "Canceled" || current == "Cancelled" {
            return Outcome::Skipped("already canceled in Acumatica".into());
        }
        if ![
            "Open",
            "On Hold",
            "Pending Approval",
            "Credit Hold",
            "Pending Processing",
        ]
        .contains(&current.as_str())
        {
            tracing::warn!(order = %inc, acumatica = %target, "canceled in Magento, but the Acumatica order is {current}: not canceled (reported)");
            return Outcome::Skipped(format!(
                "reported: canceled in Magento, but Acumatica order {target} is {current} (something shipped): not canceled"
            ));
        }
        if ctx.dry_run {
            return Outcome::Delivered {
                target_key: target.into(),
                source_key: None,
                hash: "canceled".into(),
            };
        }
        let body = json!({"entity": {"OrderType": w(ty), "OrderNbr": w(nbr)}});
        return match ctx
            .acumatica
            .invoke("SalesOrder", "CancelSalesOrder", &body)
            .await
        {
            Ok(()) => {
                tracing::info!(order = %inc, acumatica = %target, "canceled in Magento: Acumatica order canceled");
                Outcome::Delivered {
                    target_key: target.into(),
                    source_key: None,
                    hash: format!("canceled:{}", content_hash(order)),
                }
            }
            Err(e) => Outcome::Failed(format!("canceling {target}: {e}")),
        };
    }
    let hash = content_hash(order);
    let Some(delivered_hash) = delivered_hash else {
        // Mapped by the flow but the delivery never recorded (a run cut off in between).
        return Outcome::Delivered {
            target_key: target.into(),
            source_key: None,
            hash,
        };
    };
    if Some(delivered_hash).is_some_and(|h| h == hash || h.ends_with(&hash)) {
        return Outcome::Skipped(
            "no change to what was imported (a status change or the connector's own shipment)"
                .into(),
        );
    }
    tracing::warn!(order = %inc, acumatica = %target, "edited in Magento after import: reported, not applied");
    Outcome::Skipped(format!(
        "reported: order {inc} was edited in Magento after import; not applied to {target}"
    ))
}

/// Orders are imported up to `acumatica.max_concurrent_requests` at once (each is its own
/// record; the client keeps the sessions, concurrency and per-minute pace). They went one at a
/// time before: each order's calls waited for the previous order's round trips, so a run
/// stayed far below the rate the licence allows. Customers an order brings along are created
/// one at a time (`customer_gate`), so two orders of one new customer never write it at once.
pub async fn deliver(
    ctx: &Context<'_>,
    records: Vec<Record>,
    progress: &dyn Progress,
) -> Vec<(Record, Outcome)> {
    use futures_util::StreamExt;

    let concurrency = ctx.config.acumatica.max_concurrent_requests.max(1) as usize;
    let customer_gate = tokio::sync::Mutex::new(());
    let gate = &customer_gate;
    // New orders are looked up LOOKUP_BATCH at a time, right before they are created (as
    // before, only earlier); a batch whose read fails leaves its orders to look themselves up.
    let new_orders: Vec<String> = records
        .iter()
        .filter(|r| r.mapping.as_ref().is_none_or(|m| m.target_key.is_empty()))
        .filter(|r| {
            let status = r
                .row
                .get("status")
                .and_then(Value::as_str)
                .unwrap_or_default();
            ctx.config.orders.statuses.iter().any(|s| s == status)
        })
        .map(|r| increment_id(&r.row))
        .filter(|inc| !inc.is_empty())
        .collect();
    let lookups: Vec<_> = new_orders
        .chunks(LOOKUP_BATCH)
        .map(|incs| async move { (incs, find_many(ctx, incs).await) })
        .collect();
    let mut looked_up: std::collections::HashMap<String, Option<Value>> =
        std::collections::HashMap::new();
    for (incs, found) in futures_util::stream::iter(lookups)
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await
    {
        match found {
            Ok(mut found) => {
                for inc in incs {
                    looked_up.insert(inc.clone(), found.remove(inc));
                }
            }
            Err(e) => tracing::warn!("{e}; each order is looked up on its own"),
        }
    }
    let looked_up = &looked_up;
    futures_util::stream::iter(records)
        .map(|record| async move {
            let mapped = record
                .mapping
                .as_ref()
                .filter(|m| !m.target_key.is_empty())
                .map(|m| (m.target_key.clone(), m.payload_hash.clone()));
            let outcome = match mapped {
                Some((target, hash)) => later(ctx, &record, &target, hash.as_deref()).await,
                None => {
                    let found = looked_up.get(&increment_id(&record.row)).cloned();
                    import(ctx, &record, gate, found).await
                }
            };
            progress.advance(Entity::Orders, 1);
            (record, outcome)
        })
        .buffer_unordered(concurrency)
        .collect()
        .await
}
