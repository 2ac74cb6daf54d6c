//! How contract fields map onto table columns: one [`FieldMap`] per field, with the value
//! conversion between the two (a status code "AC" is "Active" on the contract side).

use serde_json::{Map, Value, json};

use super::data::stamp;
use super::tables::Row;
use super::validate::{FieldKind, field_kind, parse_datetime, wrapped};

#[derive(Clone, Copy)]
pub enum Conv {
    Text,
    Number,
    Bool,
    /// A date-time column (UTC RFC 3339) shown with an offset on the contract side.
    Stamp,
    /// A code column shown as its display value: (code, display).
    Code(&'static [(&'static str, &'static str)]),
}

#[derive(Clone, Copy)]
pub struct FieldMap {
    pub field: &'static str,
    pub column: &'static str,
    pub conv: Conv,
    pub writable: bool,
}

pub const fn rw(field: &'static str, column: &'static str, conv: Conv) -> FieldMap {
    FieldMap {
        field,
        column,
        conv,
        writable: true,
    }
}

pub const fn ro(field: &'static str, column: &'static str, conv: Conv) -> FieldMap {
    FieldMap {
        field,
        column,
        conv,
        writable: false,
    }
}

/// `{"value": v}`, or `{}` for a null (the spec's value types are not nullable).
pub fn wrap(value: Value) -> Value {
    if value.is_null() {
        json!({})
    } else {
        json!({ "value": value })
    }
}

/// A UTC stamp as the contract shows date-times.
pub fn contract_datetime(column: &str) -> Value {
    match parse_datetime(column) {
        Some(dt) => Value::String(dt.format("%Y-%m-%dT%H:%M:%S%.3f+00:00").to_string()),
        None => Value::Null,
    }
}

pub fn to_contract(conv: Conv, value: &Value) -> Value {
    match (conv, value) {
        (_, Value::Null) => Value::Null,
        (Conv::Stamp, Value::String(s)) => contract_datetime(s),
        (Conv::Code(codes), Value::String(code)) => Value::String(
            codes
                .iter()
                .find(|(c, _)| c == code)
                .map(|(_, display)| display.to_string())
                .unwrap_or_else(|| code.clone()),
        ),
        (_, other) => other.clone(),
    }
}

/// Converts a submitted value for a column; `Err` is the field's error text.
pub fn to_column(map: &FieldMap, value: &Value) -> Result<Value, String> {
    if value.is_null() {
        return Ok(Value::Null);
    }
    match map.conv {
        Conv::Text => Ok(Value::String(match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })),
        Conv::Number => match value {
            Value::Number(_) => Ok(value.clone()),
            Value::String(s) => s
                .trim()
                .parse::<f64>()
                .map(|n| json!(n))
                .map_err(|_| format!("'{s}' is not a number.")),
            _ => Err("A number is expected.".into()),
        },
        Conv::Bool => match value {
            Value::Bool(_) => Ok(value.clone()),
            Value::String(s) => s
                .parse::<bool>()
                .map(Value::Bool)
                .map_err(|e| e.to_string()),
            _ => Err("A boolean is expected.".into()),
        },
        Conv::Stamp => value
            .as_str()
            .and_then(parse_datetime)
            .map(|dt| Value::String(stamp(dt)))
            .ok_or_else(|| "A date is expected.".into()),
        Conv::Code(codes) => {
            let text = value.as_str().unwrap_or_default();
            codes
                .iter()
                .find(|(code, display)| display.eq_ignore_ascii_case(text) || *code == text)
                .map(|(code, _)| Value::String(code.to_string()))
                .ok_or_else(|| {
                    format!(
                        "'{text}' is not a valid value for the '{}' field.",
                        map.field
                    )
                })
        }
    }
}

/// Copies the writable mapped fields present in `body` into `row`; field errors go to `errors`
/// as (field, text).
pub fn apply_fields(
    maps: &[FieldMap],
    body: &Map<String, Value>,
    row: &mut Row,
    errors: &mut Vec<(String, String)>,
) {
    for map in maps.iter().filter(|m| m.writable) {
        if let Some(value) = wrapped(body, map.field) {
            match to_column(map, value) {
                Ok(v) => {
                    row.insert(map.column.to_string(), v);
                }
                Err(e) => errors.push((map.field.to_string(), e)),
            }
        }
    }
}

/// The mapped fields of `row`, wrapped.
pub fn render_fields(maps: &[FieldMap], row: &Row, out: &mut Map<String, Value>) {
    for map in maps {
        let value = row.get(map.column).cloned().unwrap_or(Value::Null);
        out.insert(map.field.to_string(), wrap(to_contract(map.conv, &value)));
    }
}

/// The fields of `body` no column holds, kept as submitted (wrapped values, linked entities,
/// detail collections), merged into what was kept before.
pub fn merge_extras(
    schema: &str,
    maps: &[FieldMap],
    skip: &[&str],
    body: &Map<String, Value>,
    extras: &mut Map<String, Value>,
) {
    for (name, value) in body {
        if maps.iter().any(|m| m.field == name) || skip.contains(&name.as_str()) {
            continue;
        }
        match field_kind(schema, name) {
            Some(FieldKind::Object(_)) => {
                let slot = extras.entry(name.clone()).or_insert_with(|| json!({}));
                deep_merge(slot, value);
            }
            Some(FieldKind::Array(_)) => {
                extras.insert(name.clone(), strip_errors(value));
            }
            Some(_) => match value.get("value") {
                Some(Value::Null) => {
                    extras.remove(name);
                }
                Some(v) => {
                    extras.insert(name.clone(), json!({ "value": v }));
                }
                None => {}
            },
            None if name == "note" => {
                extras.insert(name.clone(), strip_errors(value));
            }
            None => {}
        }
    }
}

fn strip_errors(value: &Value) -> Value {
    match value {
        Value::Object(o) => Value::Object(
            o.iter()
                .filter(|(k, _)| k.as_str() != "error" && k.as_str() != "delete")
                .map(|(k, v)| (k.clone(), strip_errors(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(strip_errors).collect()),
        other => other.clone(),
    }
}

fn deep_merge(target: &mut Value, patch: &Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(t), Some(p)) => {
            for (k, v) in p {
                if k == "error" {
                    continue;
                }
                let is_wrapped = v
                    .as_object()
                    .map(|o| o.contains_key("value"))
                    .unwrap_or(false);
                if is_wrapped || !v.is_object() {
                    t.insert(k.clone(), strip_errors(v));
                } else {
                    deep_merge(t.entry(k.clone()).or_insert_with(|| json!({})), v);
                }
            }
        }
        _ => *target = strip_errors(patch),
    }
}

/// Kept extras of a record: scalar fields always, linked entities and details only when
/// `expanded` says so.
pub fn render_extras(
    schema: &str,
    extras: Option<&Map<String, Value>>,
    expanded: &dyn Fn(&str) -> bool,
    out: &mut Map<String, Value>,
) {
    let Some(extras) = extras else { return };
    for (name, value) in extras {
        match field_kind(schema, name) {
            Some(FieldKind::Object(_)) | Some(FieldKind::Array(_)) => {
                if expanded(name) {
                    out.insert(name.clone(), value.clone());
                }
            }
            _ => {
                out.insert(name.clone(), value.clone());
            }
        }
    }
}
