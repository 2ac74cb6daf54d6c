//! The contract-based REST routes under `/entity/Default/24.200.001/`: list, get by keys or
//! id, `PUT`, `DELETE`, and the long-running actions polled through `Location`.

// Helpers return the finished error reply as their `Err`, so a handler can answer it at once.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::AcumaticaSim;
use super::actions;
use super::data::Store;
use super::data::key_of;
use super::entities::{self, Entity, Expand, PutMode, Refusal};
use super::errors;
use super::odata;
use super::tables::Row;
use super::validate::{self, FieldKind, check_entity, is_guid};

pub const ENDPOINT: &str = "/entity/Default/24.200.001";

/// The OData-style options of a request (`$select`, `$filter`, `$expand`, `$custom`, `$top`,
/// `$skip`).
struct Options {
    select: Option<String>,
    filter: Option<String>,
    expand: Expand,
    custom: Option<String>,
    top: Option<usize>,
    skip: usize,
}

fn options(query: Option<&str>) -> Result<Options, Response> {
    let pairs: HashMap<String, String> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let number = |name: &str| -> Result<Option<usize>, Response> {
        match pairs.get(name) {
            None => Ok(None),
            Some(v) => v.trim().parse::<usize>().map(Some).map_err(|_| {
                errors::message(
                    StatusCode::BAD_REQUEST,
                    &format!("The value '{v}' of the {name} parameter is not a valid number."),
                )
            }),
        }
    };
    Ok(Options {
        select: pairs.get("$select").cloned(),
        filter: pairs.get("$filter").cloned(),
        expand: Expand::parse(pairs.get("$expand").map(String::as_str)),
        custom: pairs.get("$custom").cloned(),
        top: number("$top")?,
        skip: number("$skip")?.unwrap_or(0),
    })
}

fn entity_or_404(name: &str, uri: &OriginalUri) -> Result<Entity, Response> {
    Entity::from_name(name).ok_or_else(|| errors::not_found(&uri.0.to_string()))
}

/// `$select`: keeps the named fields (and the entity's own `id`, `rowNumber`, `custom`);
/// `Details/InventoryID` selects inside a detail.
fn select(entity: &mut Map<String, Value>, select: &str) {
    let mut top: Vec<&str> = Vec::new();
    let mut nested: HashMap<&str, Vec<&str>> = HashMap::new();
    for item in select.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match item.split_once('/') {
            Some((parent, child)) => {
                top.push(parent);
                nested.entry(parent).or_default().push(child);
            }
            None => top.push(item),
        }
    }
    let keep = |name: &str, list: &[&str]| {
        matches!(name, "id" | "rowNumber" | "custom" | "note") || list.contains(&name)
    };
    entity.retain(|k, _| keep(k, &top));
    for (parent, fields) in nested {
        match entity.get_mut(parent) {
            Some(Value::Array(items)) => {
                for item in items.iter_mut().filter_map(Value::as_object_mut) {
                    item.retain(|k, _| keep(k, &fields));
                }
            }
            Some(Value::Object(object)) => object.retain(|k, _| keep(k, &fields)),
            _ => {}
        }
    }
}

/// `$custom=View.Field`: the value of a DAC field the endpoint does not map, read from the
/// record's table row.
fn custom(entity: &mut Map<String, Value>, row: &Row, custom: &str) {
    let mut out = Map::new();
    for item in custom.split(',').map(str::trim) {
        let Some((view, field)) = item.split_once('.') else {
            continue;
        };
        let value = row.get(field).cloned().unwrap_or(Value::Null);
        let kind = match &value {
            Value::Number(_) => "CustomDecimalField",
            Value::Bool(_) => "CustomBooleanField",
            _ => "CustomStringField",
        };
        let mut field_value = json!({ "type": kind });
        if !value.is_null() {
            field_value["value"] = value;
        }
        out.entry(view.to_string())
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("object")
            .insert(field.to_string(), field_value);
    }
    entity.insert("custom".into(), Value::Object(out));
}

fn shape(
    sim: &AcumaticaSim,
    entity: Entity,
    row: &Row,
    row_number: usize,
    options: &Options,
) -> Value {
    let store = sim.store.lock().unwrap();
    let mut out = entities::render(&store, entity, row, row_number, &options.expand);
    if let Some(s) = &options.custom {
        custom(&mut out, row, s);
    }
    if let Some(s) = &options.select {
        select(&mut out, s);
    }
    Value::Object(out)
}

/// A parsed and checked `$filter` for one entity (part 2's OData parser, `odata.rs`).
struct EntityFilter {
    filter: odata::Filter,
    entity: Entity,
}

/// The filter type of a contract field (`MainContact/Email` looks inside the linked entity).
fn field_type(schema: &str, field: &str) -> Option<odata::FieldType> {
    let (head, rest) = match field.split_once('/') {
        Some((head, rest)) => (head, Some(rest)),
        None => (field, None),
    };
    match (validate::field_kind(schema, head)?, rest) {
        (FieldKind::Object(inner), Some(rest)) => field_type(inner, rest),
        (FieldKind::Str, None) => Some(odata::FieldType::String),
        (FieldKind::Decimal | FieldKind::Int, None) => Some(odata::FieldType::Number),
        (FieldKind::Bool, None) => Some(odata::FieldType::Boolean),
        (FieldKind::DateTime, None) => Some(odata::FieldType::DateTime),
        (FieldKind::Guid, None) => Some(odata::FieldType::Guid),
        _ => None,
    }
}

fn filter_error(e: odata::FilterError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(e.body())).into_response()
}

impl EntityFilter {
    fn parse(entity: Entity, text: &str) -> Result<EntityFilter, Response> {
        let filter = odata::parse(text).map_err(filter_error)?;
        filter
            .check(&|f| field_type(entity.name(), f))
            .map_err(filter_error)?;
        Ok(EntityFilter { filter, entity })
    }

    /// The rows to test, in table order: those an index finds for the filter's equalities on
    /// text fields (`CustomerOrder eq '…'`), else all. Rendering and testing every order per
    /// lookup made each call cost grow with the table.
    fn rows<'s>(&self, store: &'s Store) -> Vec<&'s Row> {
        let table = self.entity.table();
        let lookup = |field: &str, text: &str| {
            if field_type(self.entity.name(), field) != Some(odata::FieldType::String) {
                return None;
            }
            let column = self.entity.text_column(field)?;
            let keys = store.lookup(table, column, &Value::String(text.to_string()))?;
            Some(keys.cloned().collect())
        };
        match self.filter.candidates(&lookup) {
            Some(keys) => keys.iter().filter_map(|k| store.get(table, k)).collect(),
            None => store.table(table).values().collect(),
        }
    }

    /// Whether the record of `row` passes, judged on its top-level values and those of its
    /// linked entities (`MainContact/Email`), unwrapped.
    fn matches(&self, store: &Store, row: &Row) -> Result<bool, Response> {
        let linked: Vec<String> = validate::fields(self.entity.name())
            .iter()
            .filter(|(_, kind)| matches!(kind, FieldKind::Object(_)))
            .map(|(name, _)| name.to_string())
            .collect();
        let record = entities::render(
            store,
            self.entity,
            row,
            1,
            &Expand(linked.into_iter().collect()),
        );
        let mut flat = Row::new();
        flatten("", &record, &mut flat);
        self.filter
            .matches(&flat, &|f| field_type(self.entity.name(), f))
            .map_err(filter_error)
    }
}

fn flatten(prefix: &str, record: &Map<String, Value>, out: &mut Row) {
    for (name, value) in record {
        let Value::Object(object) = value else {
            continue;
        };
        let key = format!("{prefix}{name}");
        if object.is_empty() {
            out.insert(key, Value::Null);
        } else if let Some(inner) = object.get("value") {
            out.insert(key, inner.clone());
        } else if name != "custom" {
            flatten(&format!("{key}/"), object, out);
        }
    }
}

pub async fn list(
    State(sim): State<Arc<AcumaticaSim>>,
    Path(name): Path<String>,
    uri: OriginalUri,
    RawQuery(query): RawQuery,
) -> Response {
    let entity = match entity_or_404(&name, &uri) {
        Ok(e) => e,
        Err(r) => return r,
    };
    let options = match options(query.as_deref()) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let filter = match options
        .filter
        .as_deref()
        .map(|f| EntityFilter::parse(entity, f))
        .transpose()
    {
        Ok(f) => f,
        Err(r) => return r,
    };
    let rows: Vec<Row> = {
        let store = sim.store.lock().unwrap();
        let all = match &filter {
            Some(filter) => filter.rows(&store),
            None => store.table(entity.table()).values().collect(),
        };
        let mut kept = Vec::new();
        for row in all {
            if let Some(filter) = &filter {
                match filter.matches(&store, row) {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(r) => return r,
                }
            }
            kept.push(row.clone());
        }
        kept
    };
    let mut page = Vec::new();
    let mut matched = 0;
    for row in &rows {
        if page.len() >= options.top.unwrap_or(usize::MAX) {
            break;
        }
        matched += 1;
        if matched > options.skip {
            page.push(shape(&sim, entity, row, page.len() + 1, &options));
        }
    }
    Json(Value::Array(page)).into_response()
}

/// What the path after the entity name names.
enum Target {
    Id(String),
    Keys(Vec<String>),
    ActionStatus { action: String, job: String },
}

fn target(rest: &str) -> Target {
    let segments: Vec<String> = rest
        .split('/')
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    if segments.len() == 1 && is_guid(&segments[0]) {
        return Target::Id(segments[0].clone());
    }
    if segments.len() == 3 && segments[1] == "status" && is_guid(&segments[2]) {
        return Target::ActionStatus {
            action: segments[0].clone(),
            job: segments[2].clone(),
        };
    }
    Target::Keys(segments)
}

fn lookup(sim: &AcumaticaSim, entity: Entity, target: &Target) -> Option<Row> {
    let store = sim.store.lock().unwrap();
    match target {
        Target::Id(id) => store.find_by_note_id(entity.table(), id).cloned(),
        Target::Keys(keys) => {
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            store.get(entity.table(), &key_of(&keys)).cloned()
        }
        Target::ActionStatus { .. } => None,
    }
}

pub async fn get_one(
    State(sim): State<Arc<AcumaticaSim>>,
    Path((name, rest)): Path<(String, String)>,
    uri: OriginalUri,
    RawQuery(query): RawQuery,
) -> Response {
    let entity = match entity_or_404(&name, &uri) {
        Ok(e) => e,
        Err(r) => return r,
    };
    let target = target(&rest);
    if let Target::ActionStatus { action, job } = &target {
        let here = format!(
            "{}{ENDPOINT}/{}/{action}/status/{job}",
            sim.base_url(),
            entity.name()
        );
        return action_status(&sim, job, &here);
    }
    let options = match options(query.as_deref()) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let Some(row) = lookup(&sim, entity, &target) else {
        return errors::no_entity();
    };
    if let Some(text) = &options.filter {
        let filter = match EntityFilter::parse(entity, text) {
            Ok(f) => f,
            Err(r) => return r,
        };
        let store = sim.store.lock().unwrap();
        match filter.matches(&store, &row) {
            Ok(true) => {}
            Ok(false) => return errors::no_entity(),
            Err(response) => return response,
        }
    }
    Json(shape(&sim, entity, &row, 1, &options)).into_response()
}

pub async fn delete_one(
    State(sim): State<Arc<AcumaticaSim>>,
    Path((name, rest)): Path<(String, String)>,
    uri: OriginalUri,
) -> Response {
    let entity = match entity_or_404(&name, &uri) {
        Ok(e) => e,
        Err(r) => return r,
    };
    let Some(row) = lookup(&sim, entity, &target(&rest)) else {
        return errors::no_entity();
    };
    let mut store = sim.store.lock().unwrap();
    let mut changes = Vec::new();
    match entities::delete(&mut store, entity, &row, &mut changes) {
        Ok(()) => {
            store.commit(changes);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(refusal) => {
            store.rollback(changes);
            // The description declares no 400 for DELETE: a refused delete is the
            // application's exception, 500.
            match refusal {
                Refusal::Forbidden(text) => errors::exception(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("Error: {text}"),
                    "PX.Data.PXException",
                ),
                other => refusal_response(entity, &Map::new(), other, false),
            }
        }
    }
}

fn refusal_response(
    entity: Entity,
    body: &Map<String, Value>,
    refusal: Refusal,
    inserting: bool,
) -> Response {
    match refusal {
        Refusal::Precondition(text) => errors::precondition_failed(&text),
        Refusal::Invalid(list) => {
            errors::unprocessable(entities::annotate(entity, body, &list, inserting))
        }
        Refusal::Forbidden(text) => errors::exception(
            StatusCode::BAD_REQUEST,
            &format!("Error: {text}"),
            "PX.Data.PXException",
        ),
    }
}

fn parse_body(body: &Bytes, schema: &str) -> Result<Map<String, Value>, Response> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| errors::model_state("entity", &e.to_string()))?;
    check_entity(schema, &value, "entity").map_err(|e| errors::model_state(&e.path, &e.text))?;
    Ok(value.as_object().cloned().unwrap_or_default())
}

fn put_mode(headers: &HeaderMap) -> PutMode {
    let star = |name: header::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            == Some("*")
    };
    if star(header::IF_NONE_MATCH) {
        PutMode::InsertOnly
    } else if star(header::IF_MATCH) {
        PutMode::UpdateOnly
    } else {
        PutMode::Upsert
    }
}

pub async fn put(
    State(sim): State<Arc<AcumaticaSim>>,
    Path(name): Path<String>,
    uri: OriginalUri,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let entity = match entity_or_404(&name, &uri) {
        Ok(e) => e,
        Err(r) => return r,
    };
    let options = match options(query.as_deref()) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let mut body = match parse_body(&body, entity.name()) {
        Ok(b) => b,
        Err(r) => return r,
    };
    if let Some(text) = &options.filter {
        // `$filter` names the record to update; none matching: the body is inserted.
        let filter = match EntityFilter::parse(entity, text) {
            Ok(f) => f,
            Err(r) => return r,
        };
        let store = sim.store.lock().unwrap();
        let mut found = Vec::new();
        for row in filter.rows(&store) {
            match filter.matches(&store, row) {
                Ok(true) => found.push(row.get("NoteID").cloned().unwrap_or(Value::Null)),
                Ok(false) => {}
                Err(r) => return r,
            }
        }
        if found.len() > 1 {
            return errors::exception(
                StatusCode::INTERNAL_SERVER_ERROR,
                "More than one entity satisfies the condition.",
                "PX.Api.ContractBased.MoreThanOneEntitySatisfiesTheConditionException",
            );
        }
        if let Some(id) = found.pop() {
            body.insert("id".into(), id);
        }
    }
    // Contract version 4: the reply carries only the linked entities and details `$expand`
    // lists, even those the request sent.
    let row = {
        let mut store = sim.store.lock().unwrap();
        let inserting = entities::find(&store, entity, &body).is_none();
        let mut changes = Vec::new();
        match entities::put(&mut store, entity, &body, put_mode(&headers), &mut changes) {
            Ok(row) => {
                store.commit(changes);
                row
            }
            Err(refusal) => {
                store.rollback(changes);
                return refusal_response(entity, &body, refusal, inserting);
            }
        }
    };
    Json(shape(&sim, entity, &row, 1, &options)).into_response()
}

/// A long-running action: answered 202 with a `Location` to poll; the effect is committed when
/// it ends, and the status URL then answers 204.
pub struct Job {
    pub done: bool,
    pub error: Option<String>,
    /// Where the processed record can be read (the `Location` of the final 204).
    pub record_url: String,
}

pub async fn action(
    State(sim): State<Arc<AcumaticaSim>>,
    Path((name, action)): Path<(String, String)>,
    uri: OriginalUri,
    body: Bytes,
) -> Response {
    if action.contains('/') {
        return errors::not_found(&uri.0.to_string());
    }
    let entity = match entity_or_404(&name, &uri) {
        Ok(e) => e,
        Err(r) => return r,
    };
    if !matches!(
        (entity, action.as_str()),
        (Entity::Shipment, "ConfirmShipment") | (Entity::SalesOrder, "CancelSalesOrder")
    ) {
        return errors::not_found(&uri.0.to_string());
    }
    let value: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return errors::model_state("invocation", &e.to_string()),
    };
    let Some(invocation) = value.as_object() else {
        return errors::model_state("invocation", "An object with 'entity' is expected.");
    };
    for key in invocation.keys() {
        if key != "entity" && key != "parameters" {
            return errors::model_state(
                &format!("invocation.{key}"),
                &format!("The field '{key}' is not defined in the '{action}' action."),
            );
        }
    }
    let Some(target) = invocation.get("entity") else {
        return errors::model_state("invocation.entity", "The 'entity' field is required.");
    };
    if let Err(e) = check_entity(entity.name(), target, "invocation.entity") {
        return errors::model_state(&e.path, &e.text);
    }
    let target = target.as_object().cloned().unwrap_or_default();
    let (key, note_id, refusal) = {
        let store = sim.store.lock().unwrap();
        let Some(row) = entities::find(&store, entity, &target) else {
            return errors::no_entity();
        };
        let key = super::data::row_key(entity.table(), &row);
        let note_id = row
            .get("NoteID")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        (
            key,
            note_id,
            actions::action_refusal(&store, entity, &action, &row),
        )
    };
    if let Some(text) = refusal {
        return errors::exception(
            StatusCode::BAD_REQUEST,
            &format!("Error: {text}"),
            "PX.Data.PXException",
        );
    }
    let job = {
        let mut store = sim.store.lock().unwrap();
        store.new_guid()
    };
    sim.jobs.lock().unwrap().insert(
        job.clone(),
        Job {
            done: false,
            error: None,
            record_url: format!("{}{ENDPOINT}/{}/{note_id}", sim.base_url(), entity.name()),
        },
    );
    let duration = Duration::from_millis(sim.sessions.options().action_duration_ms);
    let runner = sim.clone();
    let job_id = job.clone();
    let location = format!(
        "{}{ENDPOINT}/{}/{}/status/{job}",
        sim.base_url(),
        entity.name(),
        action
    );
    tokio::spawn(async move {
        tokio::time::sleep(duration).await;
        let result = {
            let mut store = runner.store.lock().unwrap();
            let mut changes = Vec::new();
            match actions::run_action(&mut store, entity, &action, &key, &mut changes) {
                Ok(()) => {
                    store.commit(changes);
                    Ok(())
                }
                Err(e) => {
                    store.rollback(changes);
                    Err(e)
                }
            }
        };
        if let Some(job) = runner.jobs.lock().unwrap().get_mut(&job_id) {
            job.done = true;
            job.error = result.err();
        }
    });
    with_location(StatusCode::ACCEPTED, &location)
}

fn with_location(status: StatusCode, location: &str) -> Response {
    let mut response = status.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

fn action_status(sim: &AcumaticaSim, job: &str, here: &str) -> Response {
    let jobs = sim.jobs.lock().unwrap();
    match jobs.get(job) {
        None => errors::no_entity(),
        Some(Job { done: false, .. }) => with_location(StatusCode::ACCEPTED, here),
        Some(Job {
            error: Some(text), ..
        }) => errors::exception(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("Error: {text}"),
            "PX.Data.PXException",
        ),
        Some(job) => with_location(StatusCode::NO_CONTENT, &job.record_url),
    }
}

/// Any path no route matched: counted like the API's own requests, answered 404.
pub async fn unknown(
    State(sim): State<Arc<AcumaticaSim>>,
    method: axum::http::Method,
    uri: OriginalUri,
) -> Response {
    sim.faults.count(format!("{method} {}", uri.0.path()));
    errors::not_found(&uri.0.to_string())
}
