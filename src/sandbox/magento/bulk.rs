//! Asynchronous bulk product saves (`Magento_WebapiAsync`, `Magento_AsynchronousOperations`):
//!
//! - `POST /rest/{store}/async/bulk/V1/products`: a JSON list of the bodies
//!   `POST /V1/products` takes (`[{"product": {…}}, …]`). Each body is read as the synchronous
//!   route reads it (`ServiceInputProcessor`: unknown properties and a missing `product` are
//!   refused, and then the whole request is answered with that 400, nothing scheduled); the
//!   accepted request answers 202 `{bulk_uuid, request_items: [{id, data_hash, status:
//!   "accepted"}], errors: false}` at once. The operation `id` is the item's index in the list.
//! - The saves run later, as the `async.operations.all` consumer would run them: a background
//!   task waits `bulk_delay_ms`, then saves each operation in order with the synchronous
//!   route's `ProductRepository::save` (every validation of it: required attributes on
//!   create, types, URL key uniqueness), `product_save_ms` each. With the knob `consumers`
//!   off nothing is processed (a store whose cron does not start the consumers): operations
//!   stay open (4).
//! - `GET /V1/bulk/{uuid}/status`, `…/detailed-status`, `…/operation-status/{status}`:
//!   operation statuses 1 complete, 2 failed but retriable, 3 failed not retriable, 4 open,
//!   5 rejected. A failed operation carries the save's error message (placeholders filled in,
//!   as the consumer logs `$e->getMessage()`) and code. An unknown uuid is 404
//!   `Bulk uuid %bulkUuid not exist` (`BulkStatus::getBulkShortStatus`).
//!
//! Like `DataObjectProcessor`, replies leave out null values: an open operation has no
//! `result_message` or `error_code`, a complete one no `error_code`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use rand::RngExt;
use serde_json::{Map, Value, json};
use sha2::Digest;

use super::MagentoSim;
use super::auth::scope_of;
use super::errors::{ApiError, ApiResult};
use super::input;
use super::model::{Scope, format_time};

pub const COMPLETE: i64 = 1;
pub const RETRIABLY_FAILED: i64 = 2;
pub const NOT_RETRIABLY_FAILED: i64 = 3;
pub const OPEN: i64 = 4;

const TOPIC: &str = "async.magento.catalog.api.productrepositoryinterface.save.post";

/// One scheduled bulk.
#[derive(Clone, Debug)]
pub struct Bulk {
    pub uuid: String,
    pub scope: Scope,
    pub start_time: String,
    pub operations: Vec<Operation>,
}

#[derive(Clone, Debug)]
pub struct Operation {
    pub id: i64,
    /// The item's body as sent (`{"product": {…}}`).
    pub body: Value,
    pub status: i64,
    pub result_message: Option<String>,
    pub result: Option<Value>,
    pub error_code: Option<i64>,
}

type Params = Path<HashMap<String, String>>;

/// A version 4 UUID, as `Magento\Framework\DataObject\IdentityGeneratorInterface` makes.
fn new_uuid() -> String {
    let mut bytes: [u8; 16] = rand::rng().random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

pub async fn schedule_products(
    State(sim): State<Arc<MagentoSim>>,
    Path(params): Params,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let scope = scope_of(&params["store"])?;
    if body.is_empty() {
        return Err(ApiError::required("product"));
    }
    if headers.get(axum::http::header::CONTENT_TYPE).is_none() {
        return Err(ApiError::bad_request("Content-Type header is empty."));
    }
    // The content type is checked as for any route (an object decodes through the same path).
    input::decode(&headers, &Bytes::from_static(b"{}"))?;
    let entities: Vec<Value> = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Array(list)) => list,
        // `InputParamsResolver` iterates whatever the body decoded to.
        Ok(Value::Object(map)) => map.into_iter().map(|(_, v)| v).collect(),
        Ok(_) => Vec::new(),
        Err(_) => return Err(ApiError::decoding_error()),
    };
    if let Some(limit) = sim.list_limit()
        && entities.len() > limit
    {
        return Err(ApiError::input_limit(
            "\\Magento\\Catalog\\Api\\Data\\ProductInterface",
            limit,
        ));
    }
    // Every item is read as `POST /V1/products` reads its body; one refusal refuses the
    // request (nothing is scheduled).
    let mut operations = Vec::with_capacity(entities.len());
    let mut request_items = Vec::with_capacity(entities.len());
    for (i, entity) in entities.into_iter().enumerate() {
        let map = match &entity {
            Value::Object(m) => m.clone(),
            _ => Map::new(),
        };
        let product = input::object(
            input::required_param(&map, "product")?,
            input::PRODUCT_FIELDS,
        )?;
        let body = json!({ "product": Value::Object(product) });
        let hash: String = sha2::Sha256::digest(body.to_string().as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        request_items.push(json!({"id": i, "data_hash": hash, "status": "accepted"}));
        operations.push(Operation {
            id: i as i64,
            body,
            status: OPEN,
            result_message: None,
            result: None,
            error_code: None,
        });
    }
    let uuid = new_uuid();
    sim.bulks.lock().unwrap().insert(
        uuid.clone(),
        Bulk {
            uuid: uuid.clone(),
            scope,
            start_time: format_time(chrono::Utc::now()),
            operations,
        },
    );
    let consumer = sim.clone();
    let task_uuid = uuid.clone();
    tokio::spawn(async move { consume(consumer, task_uuid).await });
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"bulk_uuid": uuid, "request_items": request_items, "errors": false})),
    )
        .into_response())
}

/// The `async.operations.all` consumer for one bulk.
async fn consume(sim: Arc<MagentoSim>, uuid: String) {
    tokio::time::sleep(Duration::from_millis(sim.knobs().bulk_delay_ms)).await;
    // Wait (bounded) for the consumers to be started.
    let mut waited = 0u64;
    while !sim.knobs().consumers {
        if waited > 600_000 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 50;
    }
    let count = sim
        .bulks
        .lock()
        .unwrap()
        .get(&uuid)
        .map_or(0, |b| b.operations.len());
    for index in 0..count {
        let Some((scope, body)) = sim
            .bulks
            .lock()
            .unwrap()
            .get(&uuid)
            .map(|b| (b.scope, b.operations[index].body.clone()))
        else {
            return;
        };
        let save_ms = sim.knobs().product_save_ms;
        if save_ms > 0 {
            tokio::time::sleep(Duration::from_millis(save_ms)).await;
        }
        let outcome = process(&sim, scope, &body);
        let mut bulks = sim.bulks.lock().unwrap();
        let Some(op) = bulks
            .get_mut(&uuid)
            .and_then(|b| b.operations.get_mut(index))
        else {
            return;
        };
        match outcome {
            Ok(product) => {
                op.status = COMPLETE;
                op.result_message = Some(
                    "Service execution success Magento\\Catalog\\Model\\ProductRepository\\Interceptor::save"
                        .into(),
                );
                op.result = Some(product);
            }
            Err((status, message)) => {
                op.status = status;
                op.result_message = Some(message);
                op.error_code = Some(0);
            }
        }
    }
}

/// One operation: `ProductRepository::save` of its body, or why not (status, message).
fn process(sim: &Arc<MagentoSim>, scope: Scope, body: &Value) -> Result<Value, (i64, String)> {
    let product = match body.get("product") {
        Some(Value::Object(p)) => p.clone(),
        _ => Map::new(),
    };
    let sku = product
        .get("sku")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if sim.knobs().bulk_fail_skus.contains(&sku) {
        return Err((
            NOT_RETRIABLY_FAILED,
            "The product was unable to be saved. Please try again.".into(),
        ));
    }
    if sku.trim().is_empty() {
        return Err((
            NOT_RETRIABLY_FAILED,
            "The \"SKU\" attribute value is empty. Set the attribute and try again.".into(),
        ));
    }
    super::products::save_product(sim, scope, &sku, &product).map_err(|e| {
        // A deadlock is a `DeadlockException`: retriable; the rest are not.
        let status = if e.message.contains("deadlock") {
            RETRIABLY_FAILED
        } else {
            NOT_RETRIABLY_FAILED
        };
        (status, render(&e))
    })
}

/// An error's message with its placeholders filled in (`Phrase::render`).
fn render(e: &ApiError) -> String {
    let mut message = e.message.clone();
    match &e.parameters {
        Some(Value::Array(values)) => {
            for (i, v) in values.iter().enumerate() {
                let shown = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                message = message.replace(&format!("%{}", i + 1), &shown);
            }
        }
        Some(Value::Object(map)) => {
            for (k, v) in map {
                let shown = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                message = message.replace(&format!("%{k}"), &shown);
            }
        }
        _ => {}
    }
    message
}

fn bulk_not_found(uuid: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "Bulk uuid %bulkUuid not exist")
        .with_named(&[("bulkUuid", json!(uuid))])
}

fn summary(bulk: &Bulk, operations: Vec<Value>) -> Value {
    json!({
        "operations_list": operations,
        "user_type": 1,
        "bulk_id": bulk.uuid,
        "description": format!("Topic {TOPIC}"),
        "start_time": bulk.start_time,
        "user_id": 1,
        "operation_count": bulk.operations.len(),
    })
}

fn insert_some(map: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(v) = value {
        map.insert(key.into(), v);
    }
}

pub async fn status(
    State(sim): State<Arc<MagentoSim>>,
    Path(params): Params,
) -> ApiResult<Json<Value>> {
    operations_reply(&sim, &params, |_, _, _| {})
}

pub async fn detailed_status(
    State(sim): State<Arc<MagentoSim>>,
    Path(params): Params,
) -> ApiResult<Json<Value>> {
    operations_reply(&sim, &params, |bulk, op, m| {
        m.insert("bulk_uuid".into(), json!(bulk.uuid));
        m.insert("topic_name".into(), json!(TOPIC));
        m.insert(
            "serialized_data".into(),
            json!(json!({"entity_id": null, "entity_link": "", "meta_information": op.body.to_string()}).to_string()),
        );
        insert_some(
            m,
            "result_serialized_data",
            op.result.as_ref().map(|r| json!(r.to_string())),
        );
    })
}

/// The reply of both status routes: the bulk's summary with one entry per operation — its id,
/// what `detail` adds, then its status, result message and error code.
fn operations_reply(
    sim: &MagentoSim,
    params: &HashMap<String, String>,
    detail: impl Fn(&Bulk, &Operation, &mut Map<String, Value>),
) -> ApiResult<Json<Value>> {
    scope_of(&params["store"])?;
    let uuid = &params["uuid"];
    let bulks = sim.bulks.lock().unwrap();
    let bulk = bulks.get(uuid).ok_or_else(|| bulk_not_found(uuid))?;
    let operations = bulk
        .operations
        .iter()
        .map(|op| {
            let mut m = Map::new();
            m.insert("id".into(), json!(op.id));
            detail(bulk, op, &mut m);
            m.insert("status".into(), json!(op.status));
            insert_some(
                &mut m,
                "result_message",
                op.result_message.clone().map(Value::from),
            );
            insert_some(&mut m, "error_code", op.error_code.map(Value::from));
            Value::Object(m)
        })
        .collect();
    Ok(Json(summary(bulk, operations)))
}

pub async fn operation_status(
    State(sim): State<Arc<MagentoSim>>,
    Path(params): Params,
) -> ApiResult<Json<Value>> {
    scope_of(&params["store"])?;
    let uuid = &params["uuid"];
    let wanted: i64 = params["status"]
        .parse()
        .map_err(|_| ApiError::invalid_argument(&params["status"], "int"))?;
    let bulks = sim.bulks.lock().unwrap();
    // `getOperationsCountByBulkIdAndStatus` counts rows: an unknown bulk has none.
    let count = bulks.get(uuid).map_or(0, |b| {
        b.operations.iter().filter(|o| o.status == wanted).count()
    });
    Ok(Json(json!(count)))
}
