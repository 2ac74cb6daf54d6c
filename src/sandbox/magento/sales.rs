//! Orders, `POST /V1/order/{orderId}/ship` and shipments.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use serde_json::{Value, json};

use super::MagentoSim;
use super::auth::scope_of;
use super::errors::{ApiError, ApiResult};
use super::input::{self, float, int, string};
use super::model::{Comment, Order, Shipment, ShipmentItem, Track, bumped};
use super::search;

type Params = Path<HashMap<String, String>>;

/// A path id: the service method declares an int, so a non-number is refused.
pub fn path_id(raw: &str) -> ApiResult<i64> {
    raw.parse::<i64>()
        .map_err(|_| ApiError::invalid_argument(raw, "int"))
}

pub async fn search_orders(
    State(sim): State<Arc<MagentoSim>>,
    Path(params): Params,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<Value>> {
    scope_of(&params["store"])?;
    let criteria = sim.criteria(query.as_deref())?;
    let records: Vec<Value> = sim.data().orders.values().map(Order::to_json).collect();
    Ok(Json(search::run(records, &criteria, "entity_id")))
}

pub async fn get_order(
    State(sim): State<Arc<MagentoSim>>,
    Path(params): Params,
) -> ApiResult<Json<Value>> {
    scope_of(&params["store"])?;
    let id = path_id(&params["id"])?;
    let data = sim.data();
    let order = data
        .orders
        .get(&id)
        .ok_or_else(ApiError::entity_not_found)?;
    Ok(Json(order.to_json()))
}

pub async fn search_shipments(
    State(sim): State<Arc<MagentoSim>>,
    Path(params): Params,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<Value>> {
    scope_of(&params["store"])?;
    let criteria = sim.criteria(query.as_deref())?;
    let records: Vec<Value> = sim
        .data()
        .shipments
        .values()
        .map(Shipment::to_json)
        .collect();
    Ok(Json(search::run(records, &criteria, "entity_id")))
}

pub async fn get_shipment(
    State(sim): State<Arc<MagentoSim>>,
    Path(params): Params,
) -> ApiResult<Json<Value>> {
    scope_of(&params["store"])?;
    let id = path_id(&params["id"])?;
    let data = sim.data();
    let shipment = data
        .shipments
        .get(&id)
        .ok_or_else(ApiError::entity_not_found)?;
    Ok(Json(shipment.to_json()))
}

/// `ShipOrder::execute`: validates with `CanShip` and the shipment `QuantityValidator`,
/// then registers the shipment, moves the order to `processing` and bumps `updated_at`.
/// Returns the new shipment's id.
pub async fn ship_order(
    State(sim): State<Arc<MagentoSim>>,
    Path(params): Params,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    scope_of(&params["store"])?;
    let order_id = path_id(&params["id"])?;
    let body = input::decode(&headers, &body)?;
    let limit = sim.list_limit();
    let mut requested: Vec<(i64, f64)> = Vec::new();
    if let Some(items) = input::param(&body, "items") {
        for item in input::list(
            items,
            "items",
            input::SHIPMENT_ITEM_FIELDS,
            "\\Magento\\Sales\\Api\\Data\\ShipmentItemCreationInterface",
            limit,
        )? {
            let id =
                int(&item, "order_item_id")?.ok_or_else(|| ApiError::required("order_item_id"))?;
            let qty = float(&item, "qty")?.ok_or_else(|| ApiError::required("qty"))?;
            requested.push((id, qty));
        }
    }
    let mut tracks_in = Vec::new();
    if let Some(tracks) = input::param(&body, "tracks") {
        for track in input::list(
            tracks,
            "tracks",
            input::TRACK_FIELDS,
            "\\Magento\\Sales\\Api\\Data\\ShipmentTrackCreationInterface",
            limit,
        )? {
            tracks_in.push((
                string(&track, "track_number")?.unwrap_or_default(),
                string(&track, "title")?.unwrap_or_default(),
                string(&track, "carrier_code")?.unwrap_or_default(),
            ));
        }
    }
    let comment = match input::param(&body, "comment") {
        Some(c) => {
            let c = input::object(c, input::COMMENT_FIELDS)?;
            Some((
                string(&c, "comment")?.unwrap_or_default(),
                int(&c, "is_visible_on_front")?.unwrap_or(0),
            ))
        }
        None => None,
    };

    let mut data = sim.data();
    let mut order = data
        .orders
        .get(&order_id)
        .cloned()
        .ok_or_else(ApiError::entity_not_found)?;

    // No items: ship everything left, as `ShipmentDocumentFactory` does.
    if requested.is_empty() {
        requested = order
            .items
            .iter()
            .filter(|i| i.parent_item_id.is_none() && i.qty_to_ship() > 0.0)
            .map(|i| (i.item_id, i.qty_to_ship()))
            .collect();
    }

    let mut messages: Vec<String> = Vec::new();
    if ["payment_review", "holded", "canceled"].contains(&order.state.as_str()) {
        messages.push(format!(
            "A shipment cannot be created when an order has a status of {}",
            order.status
        ));
    } else if !order.items.iter().any(|i| i.qty_to_ship() > 0.0) {
        messages.push("The order does not allow a shipment to be created.".into());
    }
    let mut total = 0.0;
    for (item_id, qty) in &requested {
        match order.items.iter().find(|i| i.item_id == *item_id) {
            None => messages.push(format!("We can not found item \"{item_id}\" in order.")),
            Some(item) if *qty > item.qty_to_ship() + 1e-9 || *qty < 0.0 => messages.push(format!(
                "We found an invalid quantity to ship for item \"{}\".",
                item.name
            )),
            Some(_) => total += qty,
        }
    }
    if total <= 0.0 {
        messages.push("You can't create a shipment without products.".into());
    }
    if !messages.is_empty() {
        return Err(ApiError::bad_request(format!(
            "Shipment Document Validation Error(s):\n{}",
            messages.join("\n")
        )));
    }

    data.next_shipment_id += 1;
    let shipment_id = data.next_shipment_id;
    let mut items = Vec::new();
    for (item_id, qty) in requested {
        if qty <= 0.0 {
            continue;
        }
        let (parent, child) = {
            let item = order.items.iter().find(|i| i.item_id == item_id).unwrap();
            let parent = item.parent_item_id.unwrap_or(item.item_id);
            let child = order
                .items
                .iter()
                .find(|i| i.parent_item_id == Some(parent))
                .map(|i| i.item_id);
            (parent, child)
        };
        // A configurable ships as one: the parent line and its child move together.
        for line in order.items.iter_mut() {
            if line.item_id == parent || Some(line.item_id) == child {
                line.qty_shipped += qty;
            }
        }
        let item = order.items.iter().find(|i| i.item_id == item_id).unwrap();
        let entity_id = data.next_child();
        items.push(ShipmentItem {
            entity_id,
            order_item_id: item_id,
            qty,
            sku: item.sku.clone(),
            name: item.name.clone(),
            price: item.price,
            product_id: item.product_id,
            weight: item.weight,
        });
    }
    let mut tracks = Vec::new();
    for (track_number, title, carrier_code) in tracks_in {
        tracks.push(Track {
            entity_id: data.next_child(),
            track_number,
            title,
            carrier_code,
        });
    }
    let comments = match comment {
        Some((text, visible)) => vec![Comment {
            entity_id: data.next_child(),
            comment: text,
            is_visible_on_front: visible,
        }],
        None => Vec::new(),
    };
    if order.state == "new" {
        order.state = "processing".into();
        order.status = "processing".into();
    }
    order.updated_at = bumped(&order.updated_at);
    let shipment = Shipment {
        entity_id: shipment_id,
        increment_id: format!("{:09}", shipment_id),
        order_id,
        customer_id: order.customer_id,
        created_at: order.updated_at.clone(),
        updated_at: order.updated_at.clone(),
        items,
        tracks,
        comments,
    };
    data.shipments.insert(shipment_id, shipment);
    data.orders.insert(order_id, order);
    Ok(Json(json!(shipment_id)))
}
