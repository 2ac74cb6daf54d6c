//! Customers: `GET /V1/customers/search` and `GET /V1/customers/{customerId}`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use serde_json::{Value, json};

use super::MagentoSim;
use super::auth::scope_of;
use super::errors::{ApiError, ApiResult};
use super::model::Customer;
use super::search;

pub async fn search_customers(
    State(sim): State<Arc<MagentoSim>>,
    Path(params): Path<HashMap<String, String>>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<Value>> {
    scope_of(&params["store"])?;
    let criteria = sim.criteria(query.as_deref())?;
    let records: Vec<Value> = sim
        .data()
        .customers
        .values()
        .map(Customer::to_json)
        .collect();
    Ok(Json(search::run(records, &criteria, "id")))
}

pub async fn get_customer(
    State(sim): State<Arc<MagentoSim>>,
    Path(params): Path<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    scope_of(&params["store"])?;
    let id = super::sales::path_id(&params["id"])?;
    let data = sim.data();
    let customer = data
        .customers
        .get(&id)
        .ok_or_else(|| ApiError::no_such_entity("customerId", json!(id)))?;
    Ok(Json(customer.to_json()))
}
