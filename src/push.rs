//! Acumatica push notifications (DESIGN.md section 6): the body as Acumatica sends it, turned
//! into queue messages. Pure functions: the receiver calls them, tests and fuzzers feed them.
//!
//! Facts this follows: rows are flat and keyed by the GI's column names; date-times come
//! without an offset, in the tenant's time zone; untracked fields are null (and null never
//! means "cleared"); an update arrives as the old row in `Deleted` and the new row in
//! `Inserted` (sometimes as two requests); delivery is at least once, so every message has a
//! dedupe key made of `Query`, `Id` and the row's key.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde_json::{Map, Value};

use crate::entities::Entity;

/// What a row asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// The row is in `Inserted`: create or update the record.
    Upsert,
    /// The row is only in `Deleted`: the record may be gone, or this is the first half of an
    /// update split over two requests. The sync confirms with a read by key before deleting.
    DeleteCandidate,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Upsert => "upsert",
            Operation::DeleteCandidate => "delete",
        }
    }
}

/// One row of a notification, ready for the queue.
#[derive(Clone, Debug, PartialEq)]
pub struct PushMessage {
    pub entity: Entity,
    pub natural_key: String,
    /// The record's last-modified time in UTC; compares with the batch path's versions.
    pub version: DateTime<Utc>,
    pub operation: Operation,
    pub dedupe_key: String,
    /// The row as received (flat; nulls kept: they mean "not tracked", never "cleared").
    pub payload: Value,
}

/// Why a body was refused (the receiver answers 400 with this; Acumatica keeps it for resend).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    #[error("body is not JSON: {0}")]
    NotJson(String),
    #[error("body is not a push notification: {0}")]
    Shape(String),
    #[error("unknown Query {0:?}: not a Generic Inquiry of this connector (run `connector init`?)")]
    UnknownQuery(String),
    #[error("{list}[{index}]: {message}")]
    Row {
        list: &'static str,
        index: usize,
        message: String,
    },
}

/// .NET ticks (100 ns since 0001-01-01) at the Unix epoch.
const TICKS_AT_UNIX_EPOCH: i64 = 621_355_968_000_000_000;

/// A .NET ticks count as UTC.
pub fn ticks_to_utc(ticks: i64) -> Option<DateTime<Utc>> {
    let since_epoch = ticks.checked_sub(TICKS_AT_UNIX_EPOCH)?;
    let secs = since_epoch.div_euclid(10_000_000);
    let nanos = (since_epoch.rem_euclid(10_000_000) * 100) as u32;
    DateTime::from_timestamp(secs, nanos)
}

/// The form Acumatica writes a date-time in, `YYYY-MM-DDTHH:MM:SS` with an optional fraction of
/// 1 to 9 digits and no offset, read without chrono's format-string machinery (which a profile
/// of the receiver found costlier than the rest of a row's parsing). Anything else, and any
/// value out of range, is `None`: [`parse_datetime`] then reads it as before. What this accepts,
/// `%Y-%m-%dT%H:%M:%S%.f` reads the same, and RFC 3339 (which needs an offset) never does.
fn plain_local_datetime(text: &str) -> Option<NaiveDateTime> {
    let b = text.as_bytes();
    if b.len() < 19 || b.len() == 20 || b.len() > 29 {
        return None;
    }
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        b[range].iter().try_fold(0u32, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    if b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let nanos = if b.len() > 19 {
        if b[19] != b'.' {
            return None;
        }
        let fraction = &b[20..];
        digits(20..b.len())? * 10u32.pow(9 - fraction.len() as u32)
    } else {
        0
    };
    let date =
        chrono::NaiveDate::from_ymd_opt(digits(0..4)? as i32, digits(5..7)?, digits(8..10)?)?;
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    if second > 59 {
        // A leap second: left to chrono.
        return None;
    }
    let time = chrono::NaiveTime::from_hms_nano_opt(hour, minute, second, nanos)?;
    Some(NaiveDateTime::new(date, time))
}

/// A push-row date-time: without an offset it is tenant-local (`tz`); with one, it says so.
pub fn parse_datetime(text: &str, tz: chrono_tz::Tz) -> Option<DateTime<Utc>> {
    let text = text.trim();
    let naive = match plain_local_datetime(text) {
        Some(naive) => naive,
        None => {
            if let Ok(with_offset) = DateTime::parse_from_rfc3339(text) {
                return Some(with_offset.with_timezone(&Utc));
            }
            [
                "%Y-%m-%dT%H:%M:%S%.f",
                "%Y-%m-%d %H:%M:%S%.f",
                "%Y-%m-%dT%H:%M",
            ]
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())?
        }
    };
    // In a DST fold the earlier instant is taken; in a gap the time does not exist, so the
    // hour after it is taken (what the clock showed once it jumped).
    match tz.from_local_datetime(&naive) {
        chrono::LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        chrono::LocalResult::Ambiguous(early, _) => Some(early.with_timezone(&Utc)),
        chrono::LocalResult::None => tz
            .from_local_datetime(&(naive + chrono::Duration::hours(1)))
            .earliest()
            .map(|t| t.with_timezone(&Utc)),
    }
}

/// The natural key of a row: the key columns' values, trimmed; one value as is, several as a
/// JSON array (so no separator can be confused with a value).
fn natural_key(entity: Entity, row: &Map<String, Value>) -> Result<String, String> {
    let mut parts = Vec::new();
    for column in entity.key_columns() {
        match row.get(*column) {
            Some(Value::String(s)) if !s.trim().is_empty() => parts.push(s.trim().to_string()),
            Some(Value::Number(n)) => parts.push(n.to_string()),
            Some(Value::Null) | None => return Err(format!("key column {column} is missing")),
            Some(_) => return Err(format!("key column {column} is not a string")),
        }
    }
    Ok(if parts.len() == 1 {
        parts.pop().unwrap_or_default()
    } else {
        Value::from(parts).to_string()
    })
}

/// A GI row's natural key and version (UTC). Both paths use it: push rows and the rows the
/// batch path reads over OData. `fallback` stands in for an empty version column.
pub fn key_and_version(
    entity: Entity,
    row: &Value,
    tz: chrono_tz::Tz,
    fallback: Option<DateTime<Utc>>,
) -> Result<(String, DateTime<Utc>), String> {
    let map = row
        .as_object()
        .ok_or_else(|| "row is not an object".to_string())?;
    let key = natural_key(entity, map)?;
    let column = entity.version_column();
    let version = match map.get(column) {
        Some(Value::String(s)) => Some(
            parse_datetime(s, tz).ok_or_else(|| format!("{column} {s:?} is not a date-time"))?,
        ),
        Some(Value::Null) | None => None,
        Some(_) => return Err(format!("{column} is not a string")),
    }
    .or(fallback)
    .ok_or_else(|| format!("neither {column} nor TimeStamp gives a version"))?;
    Ok((key, version))
}

/// Parses one notification body into queue messages.
pub fn parse(body: &[u8], prefix: &str, tz: chrono_tz::Tz) -> Result<Vec<PushMessage>, PushError> {
    let json: Value =
        serde_json::from_slice(body).map_err(|e| PushError::NotJson(e.to_string()))?;
    let Value::Object(mut obj) = json else {
        return Err(PushError::Shape("expected a JSON object".into()));
    };
    // The rows are taken out of the body, so that each message owns its row without a copy.
    let inserted = obj.remove("Inserted");
    let deleted = obj.remove("Deleted");
    let query = match obj.get("Query") {
        Some(Value::String(q)) if !q.is_empty() => q.as_str(),
        _ => return Err(PushError::Shape("Query is missing".into())),
    };
    let id = match obj.get("Id") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err(PushError::Shape("Id is missing".into())),
    };
    let rows = |name: &'static str, list: Option<Value>| -> Result<Vec<Value>, PushError> {
        match list {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => Ok(items),
            Some(_) => Err(PushError::Shape(format!("{name} is not an array"))),
        }
    };
    let inserted = rows("Inserted", inserted)?;
    let deleted = rows("Deleted", deleted)?;
    let fallback_version = match obj.get("TimeStamp") {
        Some(Value::Number(n)) => n.as_i64().and_then(ticks_to_utc),
        Some(Value::Null) | None => None,
        Some(_) => return Err(PushError::Shape("TimeStamp is not a number".into())),
    };
    let entity = Entity::from_generic_inquiry(query, prefix)
        // Named, but never more than 64 characters of it: a refusal does not echo the body.
        .ok_or_else(|| PushError::UnknownQuery(query.chars().take(64).collect()))?;

    let mut messages = Vec::with_capacity(inserted.len() + deleted.len());
    let mut upserted_keys = std::collections::HashSet::new();
    for (list, items, operation) in [
        ("Inserted", inserted, Operation::Upsert),
        ("Deleted", deleted, Operation::DeleteCandidate),
    ] {
        for (index, row) in items.into_iter().enumerate() {
            let row_err = |message: String| PushError::Row {
                list,
                index,
                message,
            };
            let (key, version) =
                key_and_version(entity, &row, tz, fallback_version).map_err(row_err)?;
            if operation == Operation::DeleteCandidate && upserted_keys.contains(&key) {
                // The old half of an update whose new half is in this same request.
                continue;
            }
            if operation == Operation::Upsert {
                upserted_keys.insert(key.clone());
            }
            messages.push(PushMessage {
                entity,
                dedupe_key: format!("push|{query}|{id}|{}|{key}", &list[..1]),
                natural_key: key,
                version,
                operation,
                payload: row,
            });
        }
    }
    Ok(messages)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NY: chrono_tz::Tz = chrono_tz::America::New_York;

    #[test]
    fn an_update_in_one_request_is_one_upsert_with_the_local_time_as_utc() {
        let body = serde_json::json!({
            "Query": "MC-items", "CompanyId": "Company", "Id": "6a4c-1", "TimeStamp": 638680000000000000i64,
            "Inserted": [{"InventoryID": "AB-1 ", "Description": "New", "Weight": null, "LastModifiedDateTime": "2026-11-26T10:00:00.123"}],
            "Deleted": [{"InventoryID": "AB-1", "Description": "Old", "Weight": null, "LastModifiedDateTime": "2026-11-25T09:00:00"}],
            "AdditionalInfo": {}
        });
        let messages = parse(body.to_string().as_bytes(), "MC", NY).unwrap();
        assert_eq!(messages.len(), 1);
        let m = &messages[0];
        assert_eq!(
            (m.entity, m.natural_key.as_str(), m.operation),
            (Entity::Items, "AB-1", Operation::Upsert)
        );
        assert_eq!(m.version.to_rfc3339(), "2026-11-26T15:00:00.123+00:00");
        assert_eq!(
            m.payload["Weight"],
            Value::Null,
            "null kept: untracked, not cleared"
        );
        assert_eq!(m.dedupe_key, "push|MC-items|6a4c-1|I|AB-1");
    }

    #[test]
    fn a_row_only_in_deleted_is_a_delete_candidate_and_composite_keys_are_json() {
        let body = serde_json::json!({
            "Query": "MC-inventory", "Id": "n2", "TimeStamp": 638680000000000000i64,
            "Inserted": [],
            "Deleted": [{"InventoryID": "AB-1", "WarehouseID": "WH|1", "LastModifiedDateTime": null}]
        });
        let messages = parse(body.to_string().as_bytes(), "MC", NY).unwrap();
        assert_eq!(messages[0].operation, Operation::DeleteCandidate);
        assert_eq!(messages[0].natural_key, r#"["AB-1","WH|1"]"#);
        // No version column value: the notification's TimeStamp stands in.
        assert_eq!(
            messages[0].version,
            ticks_to_utc(638680000000000000).unwrap()
        );
    }

    #[test]
    fn bad_bodies_are_refused_with_a_reason() {
        let cases: &[(&str, &str)] = &[
            ("not json", "not JSON"),
            ("[]", "expected a JSON object"),
            (r#"{"Id":"1"}"#, "Query is missing"),
            (r#"{"Query":"MC-items"}"#, "Id is missing"),
            (r#"{"Query":"XX-items","Id":"1"}"#, "unknown Query"),
            (
                r#"{"Query":"MC-items","Id":"1","Inserted":{}}"#,
                "Inserted is not an array",
            ),
            (
                r#"{"Query":"MC-items","Id":"1","Inserted":[{"Description":"x"}]}"#,
                "Inserted[0]: key column InventoryID is missing",
            ),
            (
                r#"{"Query":"MC-items","Id":"1","Inserted":[{"InventoryID":"A","LastModifiedDateTime":"yesterday"}]}"#,
                "is not a date-time",
            ),
            (
                r#"{"Query":"MC-items","Id":"1","Inserted":[{"InventoryID":"A"}]}"#,
                "gives a version",
            ),
        ];
        for (body, expected) in cases {
            let err = parse(body.as_bytes(), "MC", NY).unwrap_err().to_string();
            assert!(err.contains(expected), "{body}: {err}");
        }
    }

    #[test]
    fn the_plain_form_reads_as_chrono_reads_it() {
        let format = "%Y-%m-%dT%H:%M:%S%.f";
        for text in [
            "2026-11-26T10:00:00",
            "2026-11-26T10:00:00.1",
            "2026-11-26T10:00:00.123",
            "2026-11-26T23:59:59.123456789",
            "0000-01-01T00:00:00.000001",
            "2024-02-29T12:30:45.5",
        ] {
            assert_eq!(
                plain_local_datetime(text),
                Some(NaiveDateTime::parse_from_str(text, format).unwrap()),
                "{text}"
            );
        }
        // Mutations of the form: whatever the fast path accepts, chrono reads the same.
        let template = b"2026-11-26T10:00:00.123456789";
        let alphabet = b"0123456789-:.T 9";
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..20_000 {
            let len = 19 + (next() % 11) as usize;
            let mut text = template[..len].to_vec();
            for _ in 0..(next() % 3) {
                let at = (next() % len as u64) as usize;
                text[at] = alphabet[(next() % alphabet.len() as u64) as usize];
            }
            let text = String::from_utf8(text).unwrap();
            if let Some(fast) = plain_local_datetime(&text) {
                assert_eq!(
                    Some(fast),
                    NaiveDateTime::parse_from_str(&text, format).ok(),
                    "{text}"
                );
            }
        }
        // Not the plain form, or out of range: left to chrono.
        for text in [
            "2026-11-26T10:00",
            "2026-11-26 10:00:00",
            "2026-11-26T10:00:00.",
            "2026-11-26T10:00:00Z",
            "2026-11-26T10:00:00.1234567891",
            "2026-11-26T10:00:60",
            "2026-02-30T10:00:00",
            "2026-11-26T24:00:00",
            "2026-11-26T10:0a:00",
            "+2026-11-26T10:00:00",
        ] {
            assert_eq!(plain_local_datetime(text), None, "{text}");
        }
    }

    #[test]
    fn ticks_and_local_times_convert() {
        assert_eq!(ticks_to_utc(TICKS_AT_UNIX_EPOCH).unwrap().timestamp(), 0);
        // 2026-11-01 01:30 happens twice in New York: the earlier (EDT) is taken.
        assert_eq!(
            parse_datetime("2026-11-01T01:30:00", NY)
                .unwrap()
                .to_rfc3339(),
            "2026-11-01T05:30:00+00:00"
        );
        assert_eq!(
            parse_datetime("2026-11-26T10:00:00Z", NY)
                .unwrap()
                .to_rfc3339(),
            "2026-11-26T10:00:00+00:00"
        );
    }
}
