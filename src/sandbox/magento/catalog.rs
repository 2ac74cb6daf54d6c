//! Products (`/V1/products…`), base prices, legacy stock items and MSI source items.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use serde_json::{Map, Value, json};

use super::MagentoSim;
use super::auth::scope_of;
use super::errors::{ApiError, ApiResult};
use super::input::{self, float, int, string};
use super::model::{
    LegacyStock, Product, STORE_VIEW_ATTRIBUTES, Scope, SourceItem, bumped, format_time, slug,
};
use super::search;

type Params = Path<HashMap<String, String>>;

/// Parses `searchCriteria` (required, as the service methods declare it) and applies the
/// store's input limits.
pub fn criteria(sim: &MagentoSim, query: Option<&str>) -> ApiResult<search::SearchCriteria> {
    let mut criteria = search::parse(query)?.ok_or_else(|| ApiError::required("searchCriteria"))?;
    if sim.knobs().input_limit {
        search::apply_input_limits(&mut criteria)?;
    }
    Ok(criteria)
}

pub async fn search_products(
    State(sim): State<Arc<MagentoSim>>,
    Path(params): Params,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<Value>> {
    let scope = scope_of(&params["store"])?;
    let criteria = criteria(&sim, query.as_deref())?;
    let records: Vec<Value> = sim
        .data()
        .products
        .values()
        .map(|p| p.to_json(scope))
        .collect();
    Ok(Json(search::run(records, &criteria, "id")))
}

pub async fn get_product(
    State(sim): State<Arc<MagentoSim>>,
    Path(params): Params,
) -> ApiResult<Json<Value>> {
    let scope = scope_of(&params["store"])?;
    let data = sim.data();
    let product = data
        .products
        .get(&params["sku"])
        .ok_or_else(ApiError::product_not_found)?;
    Ok(Json(product.to_json(scope)))
}

pub async fn put_product(
    State(sim): State<Arc<MagentoSim>>,
    Path(params): Params,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let scope = scope_of(&params["store"])?;
    let body = input::decode(&body)?;
    let product = input::object(
        input::required_param(&body, "product")?,
        input::PRODUCT_FIELDS,
    )?;
    let sku = params["sku"].clone();
    save_guarded(&sim, scope, sku, product).await
}

pub async fn create_product(
    State(sim): State<Arc<MagentoSim>>,
    Path(params): Params,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let scope = scope_of(&params["store"])?;
    let body = input::decode(&body)?;
    let product = input::object(
        input::required_param(&body, "product")?,
        input::PRODUCT_FIELDS,
    )?;
    let sku = string(&product, "sku")?
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| attribute_empty("SKU"))?;
    save_guarded(&sim, scope, sku, product).await
}

/// `The "%1" attribute value is empty.` from the EAV validation of a required attribute.
fn attribute_empty(label: &str) -> ApiError {
    ApiError::bad_request("The \"%1\" attribute value is empty. Set the attribute and try again.")
        .with_positional(vec![json!(label)])
}

/// A product save with the deadlock fault: while one save of a SKU holds its rows, another
/// save of the same SKU loses, as MySQL picks a deadlock victim.
async fn save_guarded(
    sim: &Arc<MagentoSim>,
    scope: Scope,
    sku: String,
    product: Map<String, Value>,
) -> ApiResult<Json<Value>> {
    let knobs = sim.knobs();
    let hold_ms = if knobs.deadlock {
        knobs.product_save_ms.max(100)
    } else {
        knobs.product_save_ms
    };
    if knobs.deadlock && !sim.saving.lock().unwrap().insert(sku.clone()) {
        return Err(ApiError::deadlock());
    }
    if hold_ms > 0 {
        tokio::time::sleep(Duration::from_millis(hold_ms)).await;
    }
    let result = save_product(sim, scope, &sku, &product);
    if knobs.deadlock {
        sim.saving.lock().unwrap().remove(&sku);
    }
    result.map(Json)
}

/// `ProductRepository::save`: insert or update by SKU; through `default` the store-view
/// attributes land in store view 1, through `all` in the global values.
fn save_product(
    sim: &MagentoSim,
    scope: Scope,
    sku: &str,
    input: &Map<String, Value>,
) -> ApiResult<Value> {
    // Read and type-check everything before touching the store.
    let name = string(input, "name")?;
    let price = float(input, "price")?;
    let attribute_set_id = int(input, "attribute_set_id")?;
    let type_id = string(input, "type_id")?;
    let status = int(input, "status")?;
    let visibility = int(input, "visibility")?;
    let weight = float(input, "weight")?;
    let mut attributes: Vec<(String, Value)> = Vec::new();
    if let Some(list) = input.get("custom_attributes").filter(|v| !v.is_null()) {
        for attr in input::list(
            list,
            "custom_attributes",
            input::ATTRIBUTE_FIELDS,
            "\\Magento\\Framework\\Api\\AttributeInterface",
            sim.list_limit(),
        )? {
            let code = string(&attr, "attribute_code")?.unwrap_or_default();
            if code.is_empty() {
                return Err(ApiError::bad_request(
                    "A custom attribute is specified with a missing attribute code. Verify the code and try again.",
                ));
            }
            let value = attr.get("value").cloned().unwrap_or(Value::Null);
            attributes.push((code, value));
        }
    }
    let mut website_ids: Option<Vec<i64>> = None;
    let mut stock: Option<Map<String, Value>> = None;
    if let Some(ext) = input.get("extension_attributes").filter(|v| !v.is_null()) {
        let ext = input::object(ext, input::PRODUCT_EXTENSION_FIELDS)?;
        if let Some(ids) = ext.get("website_ids").and_then(Value::as_array) {
            website_ids = Some(ids.iter().filter_map(Value::as_i64).collect());
        }
        if let Some(item) = ext.get("stock_item").filter(|v| !v.is_null()) {
            stock = Some(input::object(item, input::STOCK_ITEM_FIELDS)?);
        }
    }
    let stock_qty = match &stock {
        Some(s) => float(s, "qty")?,
        None => None,
    };
    let stock_in = match &stock {
        Some(s) => s.get("is_in_stock").and_then(|v| match v {
            Value::Bool(b) => Some(*b),
            Value::Number(n) => Some(n.as_i64() != Some(0)),
            _ => None,
        }),
        None => None,
    };

    let mut data = sim.data();
    let existing = data.products.get(sku).cloned();
    let creating = existing.is_none();
    if creating {
        if attribute_set_id.is_none() {
            return Err(attribute_empty("Attribute Set"));
        }
        if type_id.as_deref().is_none_or(str::is_empty) {
            return Err(attribute_empty("Type"));
        }
        if name.as_deref().is_none_or(str::is_empty) {
            return Err(attribute_empty("Product Name"));
        }
        if price.is_none() {
            return Err(attribute_empty("Price"));
        }
    }
    let now = format_time(chrono::Utc::now());
    let mut product = existing.unwrap_or_else(|| {
        let id = data.next_product_id;
        Product {
            id,
            sku: sku.to_string(),
            type_id: "simple".into(),
            attribute_set_id: 4,
            price: 0.0,
            weight: None,
            created_at: now.clone(),
            updated_at: now.clone(),
            website_ids: vec![1],
            global: Default::default(),
            store_view: Default::default(),
            stock: LegacyStock {
                item_id: id,
                qty: 0.0,
                is_in_stock: false,
            },
            children: Vec::new(),
        }
    });
    let store_scoped = scope == Scope::StoreView && !creating;
    let set_attr = |product: &mut Product, code: &str, value: Value| {
        if store_scoped && STORE_VIEW_ATTRIBUTES.contains(&code) {
            product.store_view.insert(code.to_string(), value);
        } else {
            product.global.insert(code.to_string(), value);
        }
    };
    if let Some(v) = name {
        set_attr(&mut product, "name", json!(v));
    }
    if let Some(v) = status {
        set_attr(&mut product, "status", json!(v));
    }
    if let Some(v) = visibility {
        set_attr(&mut product, "visibility", json!(v));
    }
    for (code, value) in attributes {
        set_attr(&mut product, &code, value);
    }
    if let Some(v) = price {
        product.price = v;
    }
    if let Some(v) = attribute_set_id {
        product.attribute_set_id = v;
    }
    if let Some(v) = type_id {
        product.type_id = v;
    }
    if weight.is_some() {
        product.weight = weight;
    }
    if let Some(ids) = website_ids {
        product.website_ids = ids;
    }
    if creating && product.global.get("url_key").is_none_or(Value::is_null) {
        // Magento derives a missing url_key from the name.
        let generated = slug(&product.name(Scope::Global));
        product.global.insert("url_key".into(), json!(generated));
    }
    if creating && !product.global.contains_key("status") {
        product.global.insert("status".into(), json!(1));
    }
    if creating && !product.global.contains_key("visibility") {
        product.global.insert("visibility".into(), json!(4));
    }
    // `CatalogUrlRewrite`: a URL key is unique per store view.
    let effective = |p: &Product, s: Scope| {
        p.value(s, "url_key")
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    for check_scope in [Scope::StoreView, Scope::Global] {
        if let Some(key) = effective(&product, check_scope)
            && data
                .products
                .values()
                .any(|p| p.sku != product.sku && effective(p, check_scope).as_deref() == Some(&key))
        {
            return Err(ApiError::bad_request(
                "URL key for specified store already exists.",
            ));
        }
    }
    if let Some(qty) = stock_qty {
        product.stock.qty = qty;
        product.stock.is_in_stock = stock_in.unwrap_or(qty > 0.0);
    } else if let Some(flag) = stock_in {
        product.stock.is_in_stock = flag;
    }
    if stock.is_some() {
        data.set_source_item(SourceItem {
            sku: product.sku.clone(),
            source_code: "default".into(),
            quantity: product.stock.qty,
            status: product.stock.is_in_stock as i64,
        });
    }
    product.updated_at = if creating {
        now
    } else {
        bumped(&product.updated_at)
    };
    if creating {
        data.next_product_id += 1;
    }
    let reply = product.to_json(scope);
    data.products.insert(product.sku.clone(), product);
    Ok(reply)
}

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
    body: Bytes,
) -> ApiResult<Json<Value>> {
    scope_of(&params["store"])?;
    let body = input::decode(&body)?;
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
            product.updated_at = bumped(&product.updated_at);
        }
    }
    Ok(Json(Value::Array(failed)))
}

/// `PUT /V1/products/{productSku}/stockItems/{itemId}`: legacy CatalogInventory; returns the
/// stock item id. With MSI installed the legacy stock is the `default` source.
pub async fn update_stock_item(
    State(sim): State<Arc<MagentoSim>>,
    Path(params): Params,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    scope_of(&params["store"])?;
    let body = input::decode(&body)?;
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
    let criteria = criteria(&sim, query.as_deref())?;
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
    body: Bytes,
) -> ApiResult<Json<Value>> {
    scope_of(&params["store"])?;
    let body = input::decode(&body)?;
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
