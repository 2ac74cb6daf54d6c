//! Prices and stock: `POST /V1/products/base-prices`, legacy
//! `PUT /V1/products/{sku}/stockItems/{itemId}`, MSI `GET/POST /V1/inventory/source-items`.

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
use super::model::{SourceItem, bumped_from, format_time};
use super::search;

type Params = Path<HashMap<String, String>>;

/// A float as PHP prints it into an error parameter (`-5`, `-5.5`).
fn php_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// `POST /V1/products/base-prices`: `BasePriceStorage::update`. Rows that fail validation
/// are listed in the 200 reply; the others are written.
pub async fn update_base_prices(
    State(sim): State<Arc<MagentoSim>>,
    Path(params): Params,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    scope_of(&params["store"])?;
    let body = input::decode(&headers, &body)?;
    let prices = input::list(
        input::required_param(&body, "prices")?,
        "prices",
        input::BASE_PRICE_FIELDS,
        "\\Magento\\Catalog\\Api\\Data\\BasePriceInterface",
        sim.list_limit(),
    )?;
    let mut rows = Vec::new();
    for row in &prices {
        rows.push((
            string(row, "sku")?,
            float(row, "price")?,
            int(row, "store_id")?.unwrap_or(0),
        ));
    }
    let mut failed = Vec::new();
    let now = format_time(chrono::Utc::now());
    let mut data = sim.data();
    for (sku, price, store_id) in rows {
        let mut ok = true;
        let sku_text = sku.clone().unwrap_or_default();
        if sku.as_ref().is_none_or(|s| !data.products.contains_key(s)) {
            ok = false;
            failed.push(json!({
                "message": "Invalid attribute %fieldName = %fieldValue.",
                "parameters": ["SKU", sku_text],
            }));
        }
        if price.is_none_or(|p| p < 0.0) {
            ok = false;
            failed.push(json!({
                "message": "Invalid attribute %fieldName = %fieldValue.",
                "parameters": ["Price", price.map(php_number).unwrap_or_default()],
            }));
        }
        if store_id != 0 && store_id != 1 {
            ok = false;
            failed.push(json!({
                "message": "Requested store is not found. Row ID: SKU = %SKU, Store ID: %storeId.",
                "parameters": [sku_text, store_id.to_string()],
            }));
        }
        if ok {
            let product = data.products.get_mut(&sku_text).expect("checked above");
            // The price attribute is global: any store id writes the one price.
            product.price = price.unwrap_or_default();
            product.updated_at = bumped_from(&product.updated_at, &now);
        }
    }
    Ok(Json(Value::Array(failed)))
}

/// `PUT /V1/products/{productSku}/stockItems/{itemId}`: legacy CatalogInventory; returns the
/// stock item id. With MSI installed the legacy stock is the `default` source.
pub async fn update_stock_item(
    State(sim): State<Arc<MagentoSim>>,
    Path(params): Params,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    scope_of(&params["store"])?;
    let body = input::decode(&headers, &body)?;
    let item = input::object(
        input::required_param(&body, "stockItem")?,
        input::STOCK_ITEM_FIELDS,
    )?;
    let qty = float(&item, "qty")?;
    let in_stock = item.get("is_in_stock").and_then(|v| match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => Some(n.as_i64() != Some(0)),
        _ => None,
    });
    let mut data = sim.data();
    let product = data
        .products
        .get_mut(&params["sku"])
        .ok_or_else(ApiError::product_not_found)?;
    if let Some(q) = qty {
        product.stock.qty = q;
        product.stock.is_in_stock = in_stock.unwrap_or(q > 0.0);
    } else if let Some(flag) = in_stock {
        product.stock.is_in_stock = flag;
    }
    let item_id = product.stock.item_id;
    let source = SourceItem {
        sku: product.sku.clone(),
        source_code: "default".into(),
        quantity: product.stock.qty,
        status: product.stock.is_in_stock as i64,
    };
    data.set_source_item(source);
    Ok(Json(json!(item_id)))
}

pub async fn search_source_items(
    State(sim): State<Arc<MagentoSim>>,
    Path(params): Params,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<Value>> {
    scope_of(&params["store"])?;
    let criteria = sim.criteria(query.as_deref())?;
    let records: Vec<Value> = sim
        .data()
        .source_items
        .iter()
        .map(SourceItem::to_json)
        .collect();
    Ok(Json(search::run(records, &criteria, "sku")))
}

/// One MSI validation message with its named parameters.
fn field_error(message: &str, field: &str) -> Value {
    json!({"message": message, "parameters": {"field": field}})
}

/// `POST /V1/inventory/source-items`: `SourceItemsSave::execute`. Every item is validated
/// first; any error fails the whole batch with "Validation Failed" and the list of errors.
/// A SKU with no product is stored all the same (MSI keeps orphan source items).
pub async fn save_source_items(
    State(sim): State<Arc<MagentoSim>>,
    Path(params): Params,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    scope_of(&params["store"])?;
    let body = input::decode(&headers, &body)?;
    let items = input::list(
        input::required_param(&body, "sourceItems")?,
        "sourceItems",
        input::SOURCE_ITEM_FIELDS,
        "\\Magento\\InventoryApi\\Api\\Data\\SourceItemInterface",
        sim.list_limit(),
    )?;
    if items.is_empty() {
        return Err(ApiError::bad_request("Input data is empty"));
    }
    let mut errors = Vec::new();
    let mut parsed = Vec::new();
    for item in &items {
        let sku = string(item, "sku")?.unwrap_or_default();
        let source_code = string(item, "source_code")?.unwrap_or_default();
        if sku.trim().is_empty() {
            errors.push(field_error("\"%field\" can not be empty.", "sku"));
        }
        // MSI's SourceCodeValidator runs both checks.
        if source_code.trim().is_empty() {
            errors.push(field_error("\"%field\" can not be empty.", "source_code"));
        }
        if source_code.chars().any(char::is_whitespace) {
            errors.push(field_error(
                "\"%field\" can not contain whitespaces.",
                "source_code",
            ));
        }
        let quantity = match float(item, "quantity") {
            Ok(Some(q)) => Some(q),
            _ => {
                errors.push(field_error("\"%field\" should be numeric.", "quantity"));
                None
            }
        };
        // MSI's StatusValidator: numeric, then one of the known statuses (the message's
        // grammar is Magento's own).
        let status = match int(item, "status") {
            Ok(Some(s)) if s == 0 || s == 1 => Some(s),
            Ok(Some(_)) => {
                errors.push(field_error("\"%field\" should a known status.", "status"));
                None
            }
            _ => {
                errors.push(field_error("\"%field\" should be numeric.", "status"));
                None
            }
        };
        if let (Some(q), Some(1)) = (quantity, status)
            && q <= 0.0
        {
            errors.push(json!({
                "message": "Product cannot have \"%status\" \"%in_stock\" while product \"%quantity\" equals or below zero",
                "parameters": {"status": "status", "in_stock": "In Stock", "quantity": "quantity"},
            }));
        }
        if let (Some(q), Some(s)) = (quantity, status) {
            parsed.push(SourceItem {
                sku,
                source_code,
                quantity: q,
                status: s,
            });
        }
    }
    if !errors.is_empty() {
        let mut e = ApiError::bad_request("Validation Failed");
        e.errors = Some(errors);
        return Err(e);
    }
    let mut data = sim.data();
    if parsed
        .iter()
        .any(|s| !data.sources.contains(&s.source_code))
    {
        // The foreign key to `inventory_source` fails inside the save.
        return Err(ApiError::bad_request("Could not save Source Item"));
    }
    for item in parsed {
        if item.source_code == "default"
            && let Some(product) = data.products.get_mut(&item.sku)
        {
            product.stock.qty = item.quantity;
            product.stock.is_in_stock = item.status == 1;
        }
        data.set_source_item(item);
    }
    // The service method returns void: Magento answers `[]`.
    Ok(Json(json!([])))
}
