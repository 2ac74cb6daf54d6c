//! Reading a submitted entity as Acumatica's model binder does: every field must be one the
//! endpoint defines, every value wrapped as `{"value": …}` and of the field's type.

use serde_json::{Map, Value};

use super::schema::SCHEMAS;

/// The value type of one contract field (the spec's `StringValue`, `DecimalValue`, …), or a
/// linked entity (`Object`) or detail collection (`Array`) of another schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    Str,
    Decimal,
    DateTime,
    Bool,
    Int,
    Guid,
    Object(&'static str),
    Array(&'static str),
}

/// Fields every entity has (the spec's `Entity` schema) and the detail-row `delete` flag.
const ENTITY_FIELDS: &[&str] = &[
    "id",
    "rowNumber",
    "note",
    "custom",
    "error",
    "files",
    "_links",
    "delete",
];

pub fn fields(schema: &str) -> &'static [(&'static str, FieldKind)] {
    SCHEMAS
        .iter()
        .find(|(name, _)| *name == schema)
        .map(|(_, fields)| *fields)
        .unwrap_or(&[])
}

pub fn field_kind(schema: &str, field: &str) -> Option<FieldKind> {
    fields(schema)
        .iter()
        .find(|(name, _)| *name == field)
        .map(|(_, kind)| *kind)
}

/// Why a body was refused: the JSON path (as ASP.NET names it) and the binder's message.
#[derive(Debug)]
pub struct BindError {
    pub path: String,
    pub text: String,
}

fn type_name(kind: FieldKind) -> &'static str {
    match kind {
        FieldKind::Str => "StringValue",
        FieldKind::Decimal => "DecimalValue",
        FieldKind::DateTime => "DateTimeValue",
        FieldKind::Bool => "BooleanValue",
        FieldKind::Int => "IntValue",
        FieldKind::Guid => "GuidValue",
        FieldKind::Object(_) | FieldKind::Array(_) => "Entity",
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::String(s) => format!("\"{s}\""),
        other => other.to_string(),
    }
}

/// Checks `body` against `schema`; `path` is the prefix used in error paths (`entity`).
pub fn check_entity(schema: &str, body: &Value, path: &str) -> Result<(), BindError> {
    let Some(object) = body.as_object() else {
        return Err(BindError {
            path: path.to_string(),
            text: format!(
                "Error converting value {} to type '{schema}'. Path '{path}'.",
                describe(body)
            ),
        });
    };
    check_fields(schema, object, path)
}

fn check_fields(schema: &str, object: &Map<String, Value>, path: &str) -> Result<(), BindError> {
    for (name, value) in object {
        let here = format!("{path}.{name}");
        if ENTITY_FIELDS.contains(&name.as_str()) {
            check_entity_field(name, value, &here)?;
            continue;
        }
        let Some(kind) = field_kind(schema, name) else {
            return Err(BindError {
                path: here,
                text: format!(
                    "The field '{name}' is not defined in the '{schema}' entity of the Default/24.200.001 endpoint."
                ),
            });
        };
        match kind {
            FieldKind::Object(inner) => check_entity(inner, value, &here)?,
            FieldKind::Array(inner) => {
                let Some(items) = value.as_array() else {
                    return Err(BindError {
                        path: here,
                        text: format!(
                            "Cannot deserialize the current JSON value into type 'List<{inner}>' because the type requires a JSON array."
                        ),
                    });
                };
                for (i, item) in items.iter().enumerate() {
                    check_entity(inner, item, &format!("{here}[{i}]"))?;
                }
            }
            scalar => check_wrapped(scalar, value, &here)?,
        }
    }
    Ok(())
}

fn check_entity_field(name: &str, value: &Value, path: &str) -> Result<(), BindError> {
    let ok = match name {
        "id" => value.is_null() || value.as_str().map(is_guid).unwrap_or(false),
        "rowNumber" => value.is_null() || value.is_i64(),
        "note" => check_wrapped(FieldKind::Str, value, path).is_ok() || value.is_null(),
        "delete" => value.is_boolean(),
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(BindError {
            path: path.to_string(),
            text: format!(
                "Error converting value {} for '{name}'. Path '{path}'.",
                describe(value)
            ),
        })
    }
}

pub fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && [8, 4, 4, 4, 12]
            .iter()
            .zip(&parts)
            .all(|(n, p)| p.len() == *n && p.chars().all(|c| c.is_ascii_hexdigit()))
}

fn check_wrapped(kind: FieldKind, value: &Value, path: &str) -> Result<(), BindError> {
    let unwrapped = || BindError {
        path: path.to_string(),
        text: format!(
            "Error converting value {} to type 'PX.Api.ContractBased.Models.{}'. Path '{}'.",
            describe(value),
            type_name(kind),
            path.trim_start_matches("entity.")
        ),
    };
    let Some(object) = value.as_object() else {
        return Err(unwrapped());
    };
    for key in object.keys() {
        if key != "value" && key != "error" {
            return Err(BindError {
                path: format!("{path}.{key}"),
                text: format!("The field '{key}' is not defined in '{}'.", type_name(kind)),
            });
        }
    }
    let Some(inner) = object.get("value") else {
        return Ok(());
    };
    let fits = match (kind, inner) {
        (_, Value::Null) => true,
        (FieldKind::Str, Value::String(_)) => true,
        (FieldKind::Str, Value::Number(_) | Value::Bool(_)) => true,
        (FieldKind::Decimal, Value::Number(_)) => true,
        (FieldKind::Decimal, Value::String(s)) => s.trim().parse::<f64>().is_ok(),
        (FieldKind::Int, Value::Number(n)) => n.is_i64(),
        (FieldKind::Int, Value::String(s)) => s.trim().parse::<i64>().is_ok(),
        (FieldKind::Bool, Value::Bool(_)) => true,
        (FieldKind::Bool, Value::String(s)) => {
            matches!(s.to_ascii_lowercase().as_str(), "true" | "false")
        }
        (FieldKind::DateTime, Value::String(s)) => parse_datetime(s).is_some(),
        (FieldKind::Guid, Value::String(s)) => is_guid(s),
        _ => false,
    };
    if fits {
        Ok(())
    } else {
        Err(BindError {
            path: format!("{path}.value"),
            text: format!(
                "Error converting value {} to the type of '{}'. Path '{}.value'.",
                describe(inner),
                type_name(kind),
                path.trim_start_matches("entity.")
            ),
        })
    }
}

/// A date-time as Acumatica accepts it: RFC 3339 (with offset), or without offset (tenant
/// time, taken as UTC here), or a date alone.
pub fn parse_datetime(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    use chrono::{NaiveDate, NaiveDateTime, TimeZone, Utc};
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(dt.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
    ] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(s, format) {
            return Some(Utc.from_utc_datetime(&naive));
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|naive| Utc.from_utc_datetime(&naive))
}

/// The value of a wrapped field: `None` when absent or sent as `{}` (no change), `Some(Null)`
/// when explicitly cleared.
pub fn wrapped<'a>(object: &'a Map<String, Value>, field: &str) -> Option<&'a Value> {
    object.get(field).and_then(|v| v.get("value"))
}

pub fn wrapped_str(object: &Map<String, Value>, field: &str) -> Option<String> {
    wrapped(object, field).and_then(|v| match v {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    })
}

pub fn wrapped_f64(object: &Map<String, Value>, field: &str) -> Option<f64> {
    wrapped(object, field).and_then(|v| match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

pub fn wrapped_bool(object: &Map<String, Value>, field: &str) -> Option<bool> {
    wrapped(object, field).and_then(|v| match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => s.parse().ok(),
        _ => None,
    })
}

pub fn wrapped_i64(object: &Map<String, Value>, field: &str) -> Option<i64> {
    wrapped(object, field).and_then(|v| match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}
