//! Request bodies read the way Magento's `ServiceInputProcessor` reads them: JSON that does
//! not decode is "Decoding error."; a property a data interface has no getter for is
//! refused; snake_case and camelCase spellings are both accepted; scalars are converted to
//! the declared type or refused. Unknown top-level keys are ignored, as Magento only looks
//! up the method's own parameters.

use axum::body::Bytes;
use axum::http::{HeaderMap, header};
use serde_json::{Map, Value};

use super::errors::{ApiError, ApiResult, upper_camel};

/// Properties of the data interfaces this simulation accepts (from the 2.4.8 schema).
pub const PRODUCT_FIELDS: &[&str] = &[
    "id",
    "sku",
    "name",
    "attribute_set_id",
    "price",
    "status",
    "visibility",
    "type_id",
    "created_at",
    "updated_at",
    "weight",
    "extension_attributes",
    "product_links",
    "options",
    "media_gallery_entries",
    "tier_prices",
    "custom_attributes",
];
pub const PRODUCT_EXTENSION_FIELDS: &[&str] = &[
    "website_ids",
    "category_links",
    "discounts",
    "bundle_product_options",
    "stock_item",
    "downloadable_product_links",
    "downloadable_product_samples",
    "giftcard_amounts",
    "configurable_product_options",
    "configurable_product_links",
];
pub const STOCK_ITEM_FIELDS: &[&str] = &[
    "item_id",
    "product_id",
    "stock_id",
    "qty",
    "is_in_stock",
    "is_qty_decimal",
    "show_default_notification_message",
    "use_config_min_qty",
    "min_qty",
    "use_config_min_sale_qty",
    "min_sale_qty",
    "use_config_max_sale_qty",
    "max_sale_qty",
    "use_config_backorders",
    "backorders",
    "use_config_notify_stock_qty",
    "notify_stock_qty",
    "use_config_qty_increments",
    "qty_increments",
    "use_config_enable_qty_inc",
    "enable_qty_increments",
    "use_config_manage_stock",
    "manage_stock",
    "low_stock_date",
    "is_decimal_divided",
    "stock_status_changed_auto",
    "extension_attributes",
];
pub const ATTRIBUTE_FIELDS: &[&str] = &["attribute_code", "value"];
pub const BASE_PRICE_FIELDS: &[&str] = &["price", "store_id", "sku", "extension_attributes"];
pub const SOURCE_ITEM_FIELDS: &[&str] = &[
    "sku",
    "source_code",
    "quantity",
    "status",
    "extension_attributes",
];
pub const SHIPMENT_ITEM_FIELDS: &[&str] = &["extension_attributes", "order_item_id", "qty"];
pub const TRACK_FIELDS: &[&str] = &[
    "extension_attributes",
    "track_number",
    "title",
    "carrier_code",
];
pub const COMMENT_FIELDS: &[&str] = &["extension_attributes", "comment", "is_visible_on_front"];

/// Decodes a request body as `Webapi\Rest\Request::getBodyParams` does: an empty body is
/// no parameters (never decoded); otherwise the `Content-Type` picks the deserializer.
pub fn decode(headers: &HeaderMap, body: &Bytes) -> ApiResult<Map<String, Value>> {
    if body.is_empty() {
        return Ok(Map::new());
    }
    check_content_type(headers)?;
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        // A JSON scalar or list decodes, but names none of the method's parameters.
        Ok(_) => Ok(Map::new()),
        Err(_) => Err(ApiError::decoding_error()),
    }
}

/// `Webapi\Rest\Request::getContentType` and the deserializer factory: the sandbox speaks
/// JSON only (Magento would also read XML).
fn check_content_type(headers: &HeaderMap) -> ApiResult<()> {
    let value = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim();
    if value.is_empty() {
        return Err(ApiError::bad_request("Content-Type header is empty."));
    }
    let (media_type, params) = value.split_once(';').unwrap_or((value, ""));
    let media_type = media_type.trim();
    let valid_media = !media_type.is_empty()
        && media_type
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/-+.".contains(c));
    let charset = params.trim().strip_prefix("charset=");
    if !valid_media || (!params.trim().is_empty() && charset.is_none_or(str::is_empty)) {
        return Err(ApiError::bad_request("Content-Type header is invalid."));
    }
    if charset.is_some_and(|c| !c.trim_matches('"').eq_ignore_ascii_case("utf-8")) {
        return Err(ApiError::bad_request(
            "UTF-8 is the only supported charset.",
        ));
    }
    if !media_type.eq_ignore_ascii_case("application/json") {
        return Err(ApiError::bad_request(
            "Server cannot understand Content-Type HTTP header media type %1",
        )
        .with_positional(vec![Value::String(media_type.to_string())]));
    }
    Ok(())
}

/// A method parameter by its name in either spelling (`sourceItems` / `source_items`).
pub fn param<'a>(body: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    body.iter()
        .find(|(k, v)| upper_camel(k) == upper_camel(name) && !v.is_null())
        .map(|(_, v)| v)
}

/// A required method parameter.
pub fn required_param<'a>(body: &'a Map<String, Value>, name: &str) -> ApiResult<&'a Value> {
    param(body, name).ok_or_else(|| ApiError::required(name))
}

/// Re-keys a data object by its canonical snake_case property names, refusing a property
/// the interface does not have.
pub fn object(value: &Value, allowed: &[&str]) -> ApiResult<Map<String, Value>> {
    object_of(value, &Properties::of(allowed))
}

/// An interface's property names, with the UpperCamel form Magento matches them by, worked
/// out once per request instead of once per property of every item of a list (a list of 100
/// prices spent a fifth of its handling building these strings).
struct Properties<'a>(Vec<(String, &'a str)>);

impl<'a> Properties<'a> {
    fn of(allowed: &[&'a str]) -> Properties<'a> {
        Properties(allowed.iter().map(|a| (upper_camel(a), *a)).collect())
    }

    fn canonical(&self, key: &str) -> Option<&'a str> {
        let camel = upper_camel(key);
        self.0.iter().find(|(c, _)| *c == camel).map(|(_, a)| *a)
    }
}

fn object_of(value: &Value, allowed: &Properties<'_>) -> ApiResult<Map<String, Value>> {
    let Value::Object(map) = value else {
        // Magento treats a non-array as an empty data object.
        return Ok(Map::new());
    };
    let mut out = Map::new();
    for (key, v) in map {
        match allowed.canonical(key) {
            Some(name) => {
                out.insert(name.to_string(), v.clone());
            }
            None => return Err(ApiError::not_supported(key)),
        }
    }
    Ok(out)
}

/// A list of data objects: each one checked; `class_name` is what an input-limit error
/// names; `limit` is the Web API input list limit when the store has it on.
pub fn list(
    value: &Value,
    field: &str,
    allowed: &[&str],
    class_name: &str,
    limit: Option<usize>,
) -> ApiResult<Vec<Map<String, Value>>> {
    let items: Vec<&Value> = match value {
        Value::Array(items) => items.iter().collect(),
        Value::Object(map) => map.values().collect(),
        other => {
            return Err(ApiError::bad_request(format!(
                "Error occurred during \"{field}\" processing. The \"{}\" value's type is invalid. The \"{class_name}[]\" type was expected. Verify and try again.",
                scalar_text(other)
            )));
        }
    };
    if let Some(max) = limit
        && items.len() > max
    {
        return Err(ApiError::input_limit(class_name, max));
    }
    let allowed = Properties::of(allowed);
    items
        .into_iter()
        .map(|item| object_of(item, &allowed))
        .collect()
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "1".into(),
        Value::Bool(false) => String::new(),
        other => other.to_string(),
    }
}

/// A `float` property: a number or a numeric string.
pub fn float(map: &Map<String, Value>, field: &str) -> ApiResult<Option<f64>> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(v @ Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .map(Some)
            .map_err(|_| ApiError::invalid_type(field, v, "float")),
        Some(v) => Err(ApiError::invalid_type(field, v, "float")),
    }
}

/// An `int` property: an integral number or an integer string.
pub fn int(map: &Map<String, Value>, field: &str) -> ApiResult<Option<i64>> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v @ Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
            .map(Some)
            .ok_or_else(|| ApiError::invalid_type(field, v, "int")),
        Some(v @ Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| ApiError::invalid_type(field, v, "int")),
        Some(Value::Bool(b)) => Ok(Some(*b as i64)),
        Some(v) => Err(ApiError::invalid_type(field, v, "int")),
    }
}

/// A `string` property: strings, and numbers as their text.
pub fn string(map: &Map<String, Value>, field: &str) -> ApiResult<Option<String>> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(v) => Err(ApiError::invalid_type(field, v, "string")),
    }
}
