//! `/__sandbox/…`: inspection and manipulation for tests and demos. No authentication, no
//! faults, not counted. Documented in docs/sandbox-magento.md.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use super::model::{Address, Order, Scope, bumped, format_time};
use super::seed::{add_line, apply_discount};
use super::{MagentoKnobs, MagentoSim};
use crate::sandbox::Faults;

pub fn router() -> Router<Arc<MagentoSim>> {
    Router::new()
        .route("/__sandbox/state", get(state))
        .route("/__sandbox/faults", post(set_faults))
        .route("/__sandbox/orders", post(place_order))
        .route("/__sandbox/orders/{id}/cancel", post(cancel_order))
        .route("/__sandbox/products/{sku}", post(edit_product))
}

fn refuse(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

/// The body as a JSON object; the error is the 400's text.
fn body_object(body: &Bytes) -> Result<Map<String, Value>, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err("body must be a JSON object".into()),
        Err(e) => Err(format!("bad JSON: {e}")),
    }
}

async fn state(State(sim): State<Arc<MagentoSim>>) -> Json<Value> {
    let data = sim.data();
    let products: Vec<Value> = data
        .products
        .values()
        .map(|p| {
            let per_source: BTreeMap<&str, f64> = data
                .source_items
                .iter()
                .filter(|s| s.sku == p.sku)
                .map(|s| (s.source_code.as_str(), s.quantity))
                .collect();
            json!({
                "id": p.id,
                "sku": p.sku,
                "type_id": p.type_id,
                "attribute_set_id": p.attribute_set_id,
                "name": p.name(Scope::Global),
                "price": p.price,
                "status": p.value(Scope::Global, "status"),
                "url_key": p.value(Scope::Global, "url_key"),
                "weight": p.weight,
                "qty": p.stock.qty,
                "is_in_stock": p.stock.is_in_stock,
                "qty_per_source": per_source,
                "global": p.global,
                "store_view": p.store_view,
                "created_at": p.created_at,
                "updated_at": p.updated_at,
            })
        })
        .collect();
    let orphans: Vec<&str> = data
        .source_items
        .iter()
        .filter(|s| !data.products.contains_key(&s.sku))
        .map(|s| s.sku.as_str())
        .collect();
    Json(json!({
        "products": products,
        "source_items": data.source_items.iter().map(|s| s.to_json()).collect::<Vec<_>>(),
        "orphan_source_item_skus": orphans,
        "orders": data.orders.values().map(Order::to_json).collect::<Vec<_>>(),
        "shipments": data.shipments.values().map(|s| s.to_json()).collect::<Vec<_>>(),
        "customers": data.customers.values().map(|c| c.to_json()).collect::<Vec<_>>(),
        "requests": sim.faults.request_counts(),
        "total_requests": sim.faults.total_requests(),
        "injected": sim.faults.injected_counts(),
        "faults": sim.faults.faults(),
        "magento": sim.knobs(),
    }))
}

const KNOB_KEYS: &[&str] = &[
    "deadlock",
    "product_save_ms",
    "input_limit",
    "input_list_limit",
    "bearer",
    "consumers",
    "bulk_delay_ms",
    "bulk_fail_skus",
];

/// Replaces the shared faults and the Magento knobs with the body's (a key left out takes
/// its default).
async fn set_faults(State(sim): State<Arc<MagentoSim>>, body: Bytes) -> Response {
    let body = match body_object(&body) {
        Ok(b) => b,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, e),
    };
    let (knob_part, fault_part): (Map<String, Value>, Map<String, Value>) = body
        .into_iter()
        .partition(|(k, _)| KNOB_KEYS.contains(&k.as_str()));
    let faults: Faults = match serde_json::from_value(Value::Object(fault_part)) {
        Ok(f) => f,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, e.to_string()),
    };
    if let Err(e) = faults.validate() {
        return refuse(StatusCode::BAD_REQUEST, e);
    }
    let knobs: MagentoKnobs = match serde_json::from_value(Value::Object(knob_part)) {
        Ok(k) => k,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, e.to_string()),
    };
    sim.faults.set_faults(faults);
    sim.set_knobs(knobs);
    Json(json!({"faults": sim.faults.faults(), "magento": sim.knobs()})).into_response()
}

/// Places an order as a shopper would: `{"customer_id": 1}` or `{"guest": {"email",
/// "firstname", "lastname"}}`, `"items": [{"sku", "qty"}]`, optional `"coupon_code"`
/// (10 % off), `"shipping_amount"`, `"payment_method"`. Returns the order as
/// `GET /V1/orders/{id}` does.
async fn place_order(State(sim): State<Arc<MagentoSim>>, body: Bytes) -> Response {
    let body = match body_object(&body) {
        Ok(b) => b,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, e),
    };
    let mut data = sim.data();
    let (customer_id, email, firstname, lastname, address) =
        match body.get("customer_id").and_then(Value::as_i64) {
            Some(id) => match data.customers.get(&id) {
                Some(c) => (
                    Some(id),
                    c.email.clone(),
                    c.firstname.clone(),
                    c.lastname.clone(),
                    c.address.clone(),
                ),
                None => return refuse(StatusCode::NOT_FOUND, format!("no customer {id}")),
            },
            None => {
                let guest = body.get("guest").cloned().unwrap_or(json!({}));
                let text = |k: &str, d: &str| {
                    guest
                        .get(k)
                        .and_then(Value::as_str)
                        .unwrap_or(d)
                        .to_string()
                };
                let firstname = text("firstname", "Guest");
                let lastname = text("lastname", "Shopper");
                (
                    None,
                    text("email", "guest@example.net"),
                    firstname.clone(),
                    lastname.clone(),
                    Address {
                        firstname,
                        lastname,
                        street: vec!["1 Sandbox Way".into()],
                        city: "Austin".into(),
                        region: "Texas".into(),
                        region_code: "TX".into(),
                        region_id: 57,
                        postcode: "78701".into(),
                        country_id: "US".into(),
                        telephone: "555-0100".into(),
                        company: None,
                    },
                )
            }
        };
    let lines: Vec<(String, f64)> = body
        .get("items")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .map(|i| {
                    (
                        i.get("sku")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string(),
                        i.get("qty").and_then(Value::as_f64).unwrap_or(1.0),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    if lines.is_empty() {
        return refuse(StatusCode::BAD_REQUEST, "items: at least one {sku, qty}");
    }
    if let Some((sku, _)) = lines.iter().find(|(s, _)| !data.products.contains_key(s)) {
        return refuse(StatusCode::BAD_REQUEST, format!("no product {sku}"));
    }
    let entity_id = data.next_order_id;
    data.next_order_id += 1;
    let now = format_time(chrono::Utc::now());
    let mut order = Order {
        entity_id,
        increment_id: format!("{:09}", entity_id),
        state: "new".into(),
        status: "pending".into(),
        created_at: now.clone(),
        updated_at: now,
        customer_id,
        customer_email: email,
        customer_firstname: firstname,
        customer_lastname: lastname,
        customer_group_id: if customer_id.is_some() { 1 } else { 0 },
        items: Vec::new(),
        billing: address.clone(),
        shipping: address,
        shipping_method: "flatrate_flatrate".into(),
        shipping_description: "Flat Rate - Fixed".into(),
        shipping_amount: 0.0,
        payment_method: body
            .get("payment_method")
            .and_then(Value::as_str)
            .unwrap_or("checkmo")
            .to_string(),
        coupon_code: body
            .get("coupon_code")
            .and_then(Value::as_str)
            .map(str::to_string),
        status_history: Vec::new(),
    };
    for (sku, qty) in lines {
        add_line(&mut data, &mut order, &sku, qty);
    }
    order.shipping_amount = body
        .get("shipping_amount")
        .and_then(Value::as_f64)
        .unwrap_or(5.0 * order.total_qty());
    apply_discount(&mut order);
    let reply = order.to_json();
    data.orders.insert(entity_id, order);
    Json(reply).into_response()
}

/// Cancels an order as the admin's Cancel button does: what is not shipped is canceled.
async fn cancel_order(State(sim): State<Arc<MagentoSim>>, Path(id): Path<i64>) -> Response {
    let mut data = sim.data();
    let Some(order) = data.orders.get_mut(&id) else {
        return refuse(StatusCode::NOT_FOUND, format!("no order {id}"));
    };
    if ["canceled", "complete", "closed"].contains(&order.state.as_str())
        || !order.items.iter().any(|i| i.qty_to_ship() > 0.0)
    {
        return refuse(StatusCode::BAD_REQUEST, "You cannot cancel this order.");
    }
    for item in order.items.iter_mut() {
        item.qty_canceled = item.qty_ordered - item.qty_shipped;
    }
    order.state = "canceled".into();
    order.status = "canceled".into();
    order
        .status_history
        .push(("Canceled in the sandbox.".into(), "canceled".into()));
    order.updated_at = bumped(&order.updated_at);
    Json(order.to_json()).into_response()
}

/// A merchandiser's edit in the admin: `{"name": …, "price": …, "status": …, "url_key": …,
/// "description": …}` and `"scope": "global" | "store_view"` (default global). Bumps
/// `updated_at`; returns the product as `GET /rest/all/V1/products/{sku}` would.
async fn edit_product(
    State(sim): State<Arc<MagentoSim>>,
    Path(sku): Path<String>,
    body: Bytes,
) -> Response {
    let body = match body_object(&body) {
        Ok(b) => b,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, e),
    };
    let mut data = sim.data();
    // The edit may change a URL key.
    data.url_key_index = None;
    let Some(product) = data.products.get_mut(&sku) else {
        return refuse(StatusCode::NOT_FOUND, format!("no product {sku}"));
    };
    let store_view = body.get("scope").and_then(Value::as_str) == Some("store_view");
    for (key, value) in &body {
        match key.as_str() {
            "scope" => {}
            "price" => match value.as_f64() {
                Some(p) => product.price = p,
                None => return refuse(StatusCode::BAD_REQUEST, "price: a number"),
            },
            "weight" => product.weight = value.as_f64(),
            _ if store_view => {
                product.store_view.insert(key.clone(), value.clone());
            }
            _ => {
                product.global.insert(key.clone(), value.clone());
            }
        }
    }
    product.updated_at = bumped(&product.updated_at);
    Json(product.to_json(Scope::Global)).into_response()
}
