//! `/__sandbox/…`: inspection and control of the simulated tenant, outside the API (no login,
//! no limits, no faults). Changes made here are an Acumatica user's own edits: each is one
//! transaction, seen by push notifications like any other.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::AcumaticaSim;
use super::actions;
use super::data::key_of;
use super::entities::{self, Entity, Expand, PutMode};
use super::session::AcumaticaOptions;
use crate::sandbox::Faults;

pub fn routes() -> Router<Arc<AcumaticaSim>> {
    Router::new()
        .route("/__sandbox/state", get(state))
        .route("/__sandbox/items/{inventory_id}", post(update_item))
        .route("/__sandbox/mass-price-update", post(mass_price_update))
        .route("/__sandbox/shipments", post(create_shipment))
        .route("/__sandbox/faults", get(get_faults).post(set_faults))
        .route("/__sandbox/limits", get(get_limits).post(set_limits))
        .route("/__sandbox/sessions/expire", post(expire_sessions))
}

fn bad_request(text: impl Into<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({ "error": text.into() })),
    )
        .into_response()
}

/// `{"value": x}` → `x`, `{}` → null, recursively: the state is read by tests, not clients.
fn unwrap_values(value: Value) -> Value {
    match value {
        Value::Object(o) => {
            if o.is_empty() {
                return Value::Null;
            }
            if o.len() == 1 && o.contains_key("value") {
                return o.into_iter().next().map(|(_, v)| v).unwrap_or(Value::Null);
            }
            Value::Object(
                o.into_iter()
                    .filter(|(k, _)| k != "rowNumber" && k != "custom")
                    .map(|(k, v)| (k, unwrap_values(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(unwrap_values).collect()),
        other => other,
    }
}

impl AcumaticaSim {
    /// The whole observable state as JSON; each section is one key, so other parts of the
    /// simulation add theirs in [`AcumaticaSim::state`] without touching the others.
    pub fn state(&self) -> Map<String, Value> {
        let mut state = Map::new();
        let store = self.store.lock().unwrap();
        let everything = Expand(
            [
                "WarehouseDetails",
                "MainContact",
                "BillingContact",
                "ShippingContact",
                "Details",
                "Totals",
                "TaxDetails",
                "DiscountDetails",
                "Packages",
                "Orders",
                "ShipToAddress",
                "ShipToContact",
                "BillToAddress",
                "BillToContact",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
        );
        let mut entities_json = Map::new();
        for (key, entity) in [
            ("stock_items", Entity::StockItem),
            ("customers", Entity::Customer),
            ("sales_orders", Entity::SalesOrder),
            ("shipments", Entity::Shipment),
        ] {
            let list: Vec<Value> = store
                .table(entity.table())
                .values()
                .map(|row| {
                    unwrap_values(Value::Object(entities::render(
                        &store,
                        entity,
                        row,
                        1,
                        &everything,
                    )))
                })
                .collect();
            entities_json.insert(key.into(), Value::Array(list));
        }
        state.insert("entities".into(), Value::Object(entities_json));
        let tables: Map<String, Value> = super::tables::TABLES
            .iter()
            .map(|(name, _)| {
                (
                    name.to_string(),
                    json!(store.all_rows(name).unwrap_or_default()),
                )
            })
            .collect();
        state.insert("tables".into(), Value::Object(tables));
        state.insert("last_transaction".into(), json!(store.last_transaction()));
        drop(store);

        let counters = self.sessions.counters();
        let open = self.sessions.open_sessions();
        let (running, waiting) = self.sessions.in_flight();
        let mut sessions = serde_json::to_value(&counters).unwrap_or_default();
        sessions["open_sessions"] = json!(open.len());
        sessions["open_cookie_sessions"] = json!(
            open.iter()
                .filter(|(k, _)| *k == super::session::SessionKind::Cookie)
                .count()
        );
        sessions["open_oauth_sessions"] = json!(
            open.iter()
                .filter(|(k, _)| *k == super::session::SessionKind::OAuth)
                .count()
        );
        sessions["limit_violations"] = json!(counters.limit_violations());
        sessions["running_requests"] = json!(running);
        sessions["queued_requests"] = json!(waiting);
        state.insert("sessions".into(), sessions);
        state.insert(
            "requests".into(),
            json!({
                "total": self.faults.total_requests(),
                "by_route": self.faults.request_counts(),
                "injected_faults": self.faults.injected_counts(),
            }),
        );
        state.insert("faults".into(), json!(self.faults.faults()));
        state.insert("limits".into(), json!(self.sessions.options()));
        // Part 2: generic_inquiries, push_notifications, failed_notifications, schedules,
        // endpoints.
        if let Value::Object(admin) = self.admin.state() {
            state.extend(admin);
        }
        state
    }
}

async fn state(State(sim): State<Arc<AcumaticaSim>>) -> Response {
    Json(Value::Object(sim.state())).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SiteChange {
    qty_on_hand: Option<f64>,
    qty_avail: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ItemChange {
    price: Option<f64>,
    weight: Option<f64>,
    description: Option<String>,
    /// Contract value ("Active", "Inactive", …) or code ("AC", …).
    status: Option<String>,
    #[serde(default)]
    warehouses: BTreeMap<String, SiteChange>,
}

/// Changes one stock item (price, description, status, weight, quantities per warehouse) as
/// a user editing it would, or adds it when the id is new: one transaction.
async fn update_item(
    State(sim): State<Arc<AcumaticaSim>>,
    Path(inventory_id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let change: ItemChange = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => return bad_request(e.to_string()),
    };
    let mut store = sim.store.lock().unwrap();
    // A new id is a new stock item, as a user adding one on the Stock Items form.
    let mut item = store
        .get("InventoryItem", &key_of(&[&inventory_id]))
        .cloned()
        .unwrap_or_else(|| {
            [
                ("InventoryCD", json!(inventory_id)),
                ("Descr", json!(inventory_id)),
                ("ItemStatus", json!("AC")),
                ("ItemClassID", json!("STOCKITEM")),
                ("BasePrice", json!(0.0)),
                ("BaseWeight", json!(0.0)),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect()
        });
    if let Some(weight) = change.weight {
        item.insert("BaseWeight".into(), json!(weight));
    }
    let mut changes = Vec::new();
    if let Some(price) = change.price {
        item.insert("BasePrice".into(), json!(price));
    }
    if let Some(description) = change.description {
        item.insert("Descr".into(), json!(description));
    }
    if let Some(status) = change.status {
        let Some((code, _)) = entities::ITEM_STATUS
            .iter()
            .find(|(code, display)| *code == status || display.eq_ignore_ascii_case(&status))
        else {
            return bad_request(format!("unknown item status {status}"));
        };
        item.insert("ItemStatus".into(), json!(code));
    }
    store.put_row("InventoryItem", item, &mut changes);
    for (site, qty) in change.warehouses {
        let key = key_of(&[&inventory_id, &site]);
        let mut row = store.get("INSiteStatus", &key).cloned().unwrap_or_else(|| {
            [
                ("InventoryCD".to_string(), json!(inventory_id)),
                ("SiteCD".to_string(), json!(site)),
                ("QtyOnHand".to_string(), json!(0.0)),
                ("QtyAvail".to_string(), json!(0.0)),
            ]
            .into_iter()
            .collect()
        });
        if let Some(q) = qty.qty_on_hand {
            row.insert("QtyOnHand".into(), json!(q));
        }
        if let Some(q) = qty.qty_avail {
            row.insert("QtyAvail".into(), json!(q));
        }
        store.put_row("INSiteStatus", row, &mut changes);
    }
    let transaction = store.commit(changes);
    Json(json!({ "transaction": transaction })).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MassPriceUpdate {
    /// New price per item.
    #[serde(default)]
    prices: BTreeMap<String, f64>,
    /// Or: every item's price (or those in `items`) multiplied by this factor.
    factor: Option<f64>,
    items: Option<Vec<String>>,
}

/// A price-worksheet release: many items' prices in ONE transaction (one large push).
async fn mass_price_update(
    State(sim): State<Arc<AcumaticaSim>>,
    body: axum::body::Bytes,
) -> Response {
    let update: MassPriceUpdate = match serde_json::from_slice(&body) {
        Ok(u) => u,
        Err(e) => return bad_request(e.to_string()),
    };
    let mut store = sim.store.lock().unwrap();
    let mut changes = Vec::new();
    for (item, price) in &update.prices {
        let Some(mut row) = store.get("InventoryItem", &key_of(&[item])).cloned() else {
            store.rollback(changes);
            return bad_request(format!("no stock item {item}"));
        };
        row.insert("BasePrice".into(), json!(price));
        store.put_row("InventoryItem", row, &mut changes);
    }
    if let Some(factor) = update.factor {
        let rows: Vec<_> = store
            .table("InventoryItem")
            .values()
            .filter(|r| {
                update
                    .items
                    .as_ref()
                    .map(|items| {
                        items
                            .iter()
                            .any(|i| Some(i.as_str()) == r["InventoryCD"].as_str())
                    })
                    .unwrap_or(true)
            })
            .cloned()
            .collect();
        for mut row in rows {
            let price = row.get("BasePrice").and_then(Value::as_f64).unwrap_or(0.0);
            row.insert(
                "BasePrice".into(),
                json!((price * factor * 100.0).round() / 100.0),
            );
            store.put_row("InventoryItem", row, &mut changes);
        }
    }
    let changed = changes.len();
    let transaction = store.commit(changes);
    Json(json!({ "transaction": transaction, "changed_rows": changed })).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShipmentRequest {
    #[serde(default = "default_order_type")]
    order_type: String,
    order_nbr: String,
    /// Per order line number, the quantity to ship (default: each line in full).
    #[serde(default)]
    quantities: BTreeMap<String, f64>,
    #[serde(default)]
    tracking_numbers: Vec<String>,
    ship_via: Option<String>,
    /// Confirm it at once (as a warehouse clerk would after packing).
    #[serde(default)]
    confirm: bool,
}

fn default_order_type() -> String {
    "SO".into()
}

/// Ships a sales order as a warehouse user would: a shipment with its lines and packages,
/// optionally confirmed (each step one transaction).
async fn create_shipment(
    State(sim): State<Arc<AcumaticaSim>>,
    body: axum::body::Bytes,
) -> Response {
    let request: ShipmentRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(e.to_string()),
    };
    let mut store = sim.store.lock().unwrap();
    let Some(order) = store
        .get(
            "SOOrder",
            &key_of(&[&request.order_type, &request.order_nbr]),
        )
        .cloned()
    else {
        return bad_request(format!(
            "no sales order {} {}",
            request.order_type, request.order_nbr
        ));
    };
    let lines: Vec<Value> = store
        .table("SOLine")
        .values()
        .filter(|l| l["OrderType"] == order["OrderType"] && l["OrderNbr"] == order["OrderNbr"])
        .filter_map(|l| {
            let nbr = l["LineNbr"].as_f64().unwrap_or(0.0) as i64;
            let qty = match request.quantities.get(&nbr.to_string()) {
                Some(q) => *q,
                None if request.quantities.is_empty() => l["OrderQty"].as_f64().unwrap_or(0.0),
                None => return None,
            };
            Some(json!({
                "OrderType": {"value": request.order_type},
                "OrderNbr": {"value": request.order_nbr},
                "OrderLineNbr": {"value": nbr},
                "ShippedQty": {"value": qty},
            }))
        })
        .collect();
    let packages: Vec<Value> = request
        .tracking_numbers
        .iter()
        .map(|t| json!({ "TrackingNbr": { "value": t } }))
        .collect();
    let mut shipment = json!({
        "CustomerID": order["CustomerID"].clone().as_str().map(|c| json!({"value": c})).unwrap_or(json!({})),
        "Details": lines,
        "Packages": packages,
    });
    if let Some(via) = &request.ship_via {
        shipment["ShipVia"] = json!({ "value": via });
    }
    let body = shipment.as_object().cloned().unwrap_or_default();
    let mut changes = Vec::new();
    let row = match entities::put(
        &mut store,
        Entity::Shipment,
        &body,
        PutMode::InsertOnly,
        &mut changes,
    ) {
        Ok(row) => row,
        Err(refusal) => {
            store.rollback(changes);
            let text = match refusal {
                entities::Refusal::Invalid(errors) => errors
                    .into_iter()
                    .map(|(_, e)| e)
                    .collect::<Vec<_>>()
                    .join("; "),
                entities::Refusal::Forbidden(t) | entities::Refusal::Precondition(t) => t,
            };
            return bad_request(text);
        }
    };
    store.commit(changes);
    let nbr = row["ShipmentNbr"].as_str().unwrap_or_default().to_string();
    if request.confirm {
        let mut changes = Vec::new();
        if let Err(e) = actions::run_action(
            &mut store,
            Entity::Shipment,
            "ConfirmShipment",
            &key_of(&[&nbr]),
            &mut changes,
        ) {
            store.rollback(changes);
            return bad_request(e);
        }
        store.commit(changes);
    }
    Json(json!({ "shipment_nbr": nbr })).into_response()
}

async fn get_faults(State(sim): State<Arc<AcumaticaSim>>) -> Response {
    Json(json!(sim.faults.faults())).into_response()
}

async fn set_faults(State(sim): State<Arc<AcumaticaSim>>, body: axum::body::Bytes) -> Response {
    let faults: Faults = match serde_json::from_slice(&body) {
        Ok(f) => f,
        Err(e) => return bad_request(e.to_string()),
    };
    if let Err(e) = faults.validate() {
        return bad_request(e);
    }
    sim.faults.set_faults(faults.clone());
    Json(json!(faults)).into_response()
}

async fn get_limits(State(sim): State<Arc<AcumaticaSim>>) -> Response {
    Json(json!(sim.sessions.options())).into_response()
}

/// Changes the named limits; the others keep their current values.
async fn set_limits(State(sim): State<Arc<AcumaticaSim>>, body: axum::body::Bytes) -> Response {
    let patch: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return bad_request(e.to_string()),
    };
    let Some(patch) = patch.as_object() else {
        return bad_request("an object of limits is expected");
    };
    let mut current = json!(sim.sessions.options());
    for (k, v) in patch {
        current[k] = v.clone();
    }
    let options: AcumaticaOptions = match serde_json::from_value(current) {
        Ok(o) => o,
        Err(e) => return bad_request(e.to_string()),
    };
    sim.sessions.set_options(options.clone());
    Json(json!(options)).into_response()
}

async fn expire_sessions(State(sim): State<Arc<AcumaticaSim>>) -> Response {
    let expired = sim.sessions.expire_all();
    Json(json!({ "expired": expired })).into_response()
}
