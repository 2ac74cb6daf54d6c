//! Products: `GET /V1/products` (search), `GET/PUT /V1/products/{sku}`, `POST /V1/products`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
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

pub async fn search_products(
    State(sim): State<Arc<MagentoSim>>,
    Path(params): Params,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<Value>> {
    let scope = scope_of(&params["store"])?;
    let criteria = sim.criteria(query.as_deref())?;
    // A filter group that is only `sku eq/in …` narrows the products before they are turned
    // into JSON (the full filters still run on what is left): rendering the whole catalogue
    // for every search by SKU made each search cost O(catalogue). SKUs compare as MySQL's
    // collation does, without case.
    let skus: Option<std::collections::HashSet<String>> = criteria
        .filter_groups
        .iter()
        .find(|group| {
            group.len() == 1
                && group[0].field == "sku"
                && matches!(group[0].condition_type.as_deref(), None | Some("eq" | "in"))
        })
        .map(|group| {
            let value = group[0].value.clone().unwrap_or_default();
            let list: Vec<&str> = if group[0].condition_type.as_deref() == Some("in") {
                value.split(',').map(str::trim).collect()
            } else {
                vec![value.trim()]
            };
            list.into_iter().map(str::to_lowercase).collect()
        })
        // Numbers compare as numbers ("1" = "1.0"): those keep the full scan.
        .filter(|skus: &std::collections::HashSet<String>| {
            !skus.iter().any(|s| s.parse::<f64>().is_ok())
        });
    let mut lower = String::new();
    let records: Vec<Value> = sim
        .data()
        .products
        .values()
        .filter(|p| {
            skus.as_ref().is_none_or(|skus| {
                lower.clear();
                lower.extend(p.sku.chars().flat_map(char::to_lowercase));
                skus.contains(lower.as_str())
            })
        })
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
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let scope = scope_of(&params["store"])?;
    let body = input::decode(&headers, &body)?;
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
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let scope = scope_of(&params["store"])?;
    let body = input::decode(&headers, &body)?;
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
    let _holding = if knobs.deadlock {
        if !sim.saving.lock().unwrap().insert(sku.clone()) {
            return Err(ApiError::deadlock());
        }
        Some(SaveInProgress {
            sim: sim.clone(),
            sku: sku.clone(),
        })
    } else {
        None
    };
    if hold_ms > 0 {
        tokio::time::sleep(Duration::from_millis(hold_ms)).await;
    }
    let result = save_product(sim, scope, &sku, &product);
    result.map(Json)
}

/// Marks a SKU's save in progress; released when the save ends, also when the request is
/// abandoned mid-save (the client went away), so a SKU never stays locked.
struct SaveInProgress {
    sim: Arc<MagentoSim>,
    sku: String,
}

impl Drop for SaveInProgress {
    fn drop(&mut self) {
        self.sim.saving.lock().unwrap().remove(&self.sku);
    }
}

/// `ProductRepository::save`: insert or update by SKU; through `default` the store-view
/// attributes land in store view 1, through `all` in the global values.
pub(super) fn save_product(
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
    let url_keys_before: Vec<Option<String>> = [Scope::StoreView, Scope::Global]
        .iter()
        .map(|s| {
            existing
                .as_ref()
                .and_then(|p| p.value(*s, "url_key"))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect();
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
    if store_scoped {
        // The product was loaded in store view 1 and every store-view attribute it holds is
        // saved there: values the request did not send become store-view copies too (the
        // admin's "Use Default Value" boxes come back unticked). Why global data is written
        // through `/rest/all/V1`.
        for code in STORE_VIEW_ATTRIBUTES {
            if !product.store_view.contains_key(*code)
                && let Some(v) = product.global.get(*code).cloned()
            {
                product.store_view.insert((*code).to_string(), v);
            }
        }
    }
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
    fn effective(p: &Product, s: Scope) -> Option<&str> {
        p.value(s, "url_key").and_then(Value::as_str)
    }
    // Only a URL key this save sets or changes can clash: one the product already held was
    // unique when it was saved. The keys are looked up in an index, as a real store does: a
    // scan of every product per save made the simulation, not the client, the bottleneck of
    // a large catalogue.
    let stale = data
        .url_key_index
        .as_ref()
        .is_none_or(|(n, _)| *n != data.products.len());
    if stale {
        let mut index: std::collections::HashMap<(u8, String), Vec<String>> = Default::default();
        for p in data.products.values() {
            for (i, s) in [Scope::StoreView, Scope::Global].into_iter().enumerate() {
                if let Some(key) = effective(p, s) {
                    index
                        .entry((i as u8, key.to_string()))
                        .or_default()
                        .push(p.sku.clone());
                }
            }
        }
        data.url_key_index = Some((data.products.len(), index));
    }
    let mut new_keys = Vec::new();
    for (i, check_scope) in [Scope::StoreView, Scope::Global].into_iter().enumerate() {
        if let Some(key) = effective(&product, check_scope)
            && (creating || url_keys_before[i].as_deref() != Some(key))
        {
            let holders = data
                .url_key_index
                .as_ref()
                .and_then(|(_, index)| index.get(&(i as u8, key.to_string())));
            let taken = holders.into_iter().flatten().any(|sku| {
                *sku != product.sku
                    && data
                        .products
                        .get(sku)
                        .is_some_and(|p| effective(p, check_scope) == Some(key))
            });
            if taken {
                return Err(ApiError::bad_request(
                    "URL key for specified store already exists.",
                ));
            }
            new_keys.push((i as u8, key.to_string()));
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
    let sku = product.sku.clone();
    data.products.insert(sku.clone(), product);
    let count = data.products.len();
    if let Some((n, index)) = data.url_key_index.as_mut() {
        *n = count;
        for key in new_keys {
            index.entry(key).or_default().push(sku.clone());
        }
    }
    Ok(reply)
}
