//! The objects `connector init` keeps in Acumatica, as data: for each enabled Acumatica →
//! Magento entity a Generic Inquiry (its columns are what the flow needs, plus the key and the
//! last-modified column) and a Push Notification whose source is that GI; and the Automation
//! Schedule that resends failed notifications. Every name carries `acumatica.prefix`.

use serde_json::{Value, json};

use crate::config::Config;
use crate::entities::{Direction, Entity};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Endpoint,
    GenericInquiry,
    PushNotification,
    Schedule,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Endpoint => "endpoint",
            Kind::GenericInquiry => "generic_inquiry",
            Kind::PushNotification => "push_notification",
            Kind::Schedule => "schedule",
        }
    }

    /// The connector endpoint's entity that holds this kind of object.
    pub fn entity(self) -> &'static str {
        match self {
            Kind::Endpoint => "",
            Kind::GenericInquiry => "GenericInquiry",
            Kind::PushNotification => "PushNotification",
            Kind::Schedule => "AutomationSchedule",
        }
    }

    /// The record's key field in that entity.
    pub fn key_field(self) -> &'static str {
        match self {
            Kind::Endpoint => "",
            Kind::GenericInquiry => "InquiryTitle",
            Kind::PushNotification => "DestinationName",
            Kind::Schedule => "ScheduleID",
        }
    }

    /// Detail collections to `$expand` when reading one back.
    pub fn details(self) -> &'static [&'static str] {
        match self {
            Kind::GenericInquiry => &["Tables", "Relations", "Conditions", "Results", "Grouping"],
            Kind::PushNotification => &["Inquiries", "TrackedFields"],
            _ => &[],
        }
    }
}

/// One object as it should be.
#[derive(Clone, Debug)]
pub struct Desired {
    pub kind: Kind,
    pub name: String,
    /// The record to `PUT` (wrapped values, detail rows without ids).
    pub record: Value,
}

impl Desired {
    /// Its managed properties, in the canonical form [`managed`] reads back.
    pub fn managed(&self) -> Value {
        managed(self.kind, &self.record)
    }
}

/// The connector's own endpoint: name and version.
pub fn endpoint(config: &Config) -> (String, String) {
    (
        format!("{}Connector", config.acumatica.prefix),
        config.acumatica.endpoint_version.clone(),
    )
}

/// The endpoint definition posted to the maintenance API (extends Default).
pub fn endpoint_xml(config: &Config) -> String {
    let (name, version) = endpoint(config);
    include_str!("endpoint.xml")
        .replace("{name}", &name)
        .replace("{version}", &version)
}

fn v(value: impl Into<Value>) -> Value {
    json!({ "value": value.into() })
}

/// A GI result column: (table alias, DAC field, column caption).
type Column = (&'static str, &'static str, &'static str);

/// Tables and columns of each entity's GI, over Acumatica's DACs. The captions are the column
/// names in `entities.rs`, which the receiver and the flows read.
fn gi_source(entity: Entity) -> (&'static [(&'static str, &'static str)], &'static [Column]) {
    match entity {
        Entity::Items => (
            &[("InventoryItem", "I")],
            &[
                ("I", "InventoryCD", "InventoryID"),
                ("I", "Descr", "Description"),
                ("I", "ItemStatus", "ItemStatus"),
                ("I", "BaseWeight", "BaseWeight"),
                ("I", "BasePrice", "BasePrice"),
                ("I", "LastModifiedDateTime", "LastModifiedDateTime"),
            ],
        ),
        Entity::Prices => (
            &[("InventoryItem", "I")],
            &[
                ("I", "InventoryCD", "InventoryID"),
                ("I", "BasePrice", "BasePrice"),
                ("I", "LastModifiedDateTime", "LastModifiedDateTime"),
            ],
        ),
        Entity::Inventory => (
            &[("INSiteStatus", "S")],
            &[
                ("S", "InventoryCD", "InventoryID"),
                ("S", "SiteCD", "WarehouseID"),
                ("S", "QtyOnHand", "QtyOnHand"),
                ("S", "QtyAvail", "QtyAvailable"),
                ("S", "LastModifiedDateTime", "LastModifiedDateTime"),
            ],
        ),
        Entity::Shipments => (
            &[("SOShipment", "H")],
            &[
                ("H", "ShipmentNbr", "ShipmentNbr"),
                ("H", "Status", "Status"),
                ("H", "ShipVia", "ShipVia"),
                ("H", "LastModifiedDateTime", "LastModifiedDateTime"),
            ],
        ),
        Entity::Customers | Entity::Orders => (&[], &[]),
    }
}

fn generic_inquiry(entity: Entity, name: &str) -> Desired {
    let (tables, columns) = gi_source(entity);
    debug_assert_eq!(
        columns.iter().map(|c| c.2).collect::<Vec<_>>(),
        entity.columns(),
        "GI captions and entity columns disagree"
    );
    let record = json!({
        "InquiryTitle": v(name),
        "ExposeViaOData": v(true),
        "Tables": tables.iter().map(|(t, a)| json!({"Table": v(*t), "Alias": v(*a)})).collect::<Vec<_>>(),
        "Relations": [],
        "Conditions": [],
        "Grouping": [],
        "Results": columns.iter().map(|(o, f, c)| json!({
            "Object": v(*o), "Field": v(*f), "Caption": v(*c), "AggregateFunction": v(""), "Active": v(true)
        })).collect::<Vec<_>>(),
    });
    Desired {
        kind: Kind::GenericInquiry,
        name: name.to_string(),
        record,
    }
}

fn push_notification(config: &Config, entity: Entity, gi: &str, active: bool) -> Desired {
    let secret = config
        .receiver
        .secret
        .as_ref()
        .map(|s| s.expose().to_string())
        .unwrap_or_default();
    let record = json!({
        "DestinationName": v(gi),
        "Active": v(active),
        "DestinationType": v("Webhook"),
        "Address": v(config.receiver.public_url.clone()),
        "HeaderName": v(config.receiver.header_name.clone()),
        "HeaderValue": v(secret),
        // Tracked explicitly (not "all fields"): the GI's columns are exactly what the flow
        // reads, and an edit that drops one is drift init repairs.
        "Inquiries": [{"InquiryTitle": v(gi), "Active": v(true), "TrackAllFields": v(false)}],
        "TrackedFields": entity.columns().iter().map(|c| json!({"InquiryTitle": v(gi), "FieldName": v(*c)})).collect::<Vec<_>>(),
    });
    Desired {
        kind: Kind::PushNotification,
        name: gi.to_string(),
        record,
    }
}

/// Screen "Process Push Notifications" resends the notifications that failed.
pub const PROCESS_PUSH_NOTIFICATIONS: &str = "SM502000";

fn resend_schedule(config: &Config, active: bool) -> Desired {
    let name = format!("{}-resend-push", config.acumatica.prefix);
    let record = json!({
        "ScheduleID": v(name.clone()),
        "Description": v("connector: resend failed push notifications"),
        "ScreenID": v(PROCESS_PUSH_NOTIFICATIONS),
        "ActionName": v("Process All"),
        "Active": v(active),
        "Interval": v(10),
    });
    Desired {
        kind: Kind::Schedule,
        name,
        record,
    }
}

/// Everything `init` keeps, in the order it is created (a push needs its GI first).
/// `active` is false while the connector is stopped.
pub fn desired(config: &Config, active: bool) -> Vec<Desired> {
    let entities: Vec<Entity> = Entity::ALL
        .into_iter()
        .filter(|e| e.direction() == Direction::ToMagento && e.enabled(&config.entities))
        .collect();
    let prefix = &config.acumatica.prefix;
    let mut objects = Vec::new();
    for e in &entities {
        if let Some(gi) = e.generic_inquiry(prefix) {
            objects.push(generic_inquiry(*e, &gi));
        }
    }
    for e in &entities {
        if let Some(gi) = e.generic_inquiry(prefix) {
            objects.push(push_notification(config, *e, &gi, active));
        }
    }
    objects.push(resend_schedule(config, active));
    objects
}

fn unwrap(value: Option<&Value>) -> Value {
    match value {
        Some(Value::Object(map)) => map.get("value").cloned().unwrap_or(Value::Null),
        Some(other) => other.clone(),
        None => Value::Null,
    }
}

fn rows(record: &Value, detail: &str, fields: &[&str]) -> Value {
    let mut out: Vec<Value> = record
        .get(detail)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|row| {
            Value::Array(
                fields
                    .iter()
                    .map(|f| normalize(unwrap(row.get(*f))))
                    .collect(),
            )
        })
        .collect();
    out.sort_by_key(|r| r.to_string());
    Value::Array(out)
}

/// Empty text and null are the same to the screens.
fn normalize(value: Value) -> Value {
    match value {
        Value::String(s) if s.trim().is_empty() => Value::Null,
        Value::String(s) => Value::String(s.trim().to_string()),
        Value::Number(n) => json!(n.as_f64()),
        other => other,
    }
}

/// The managed properties of a record, read back or desired, in one canonical form: equal
/// means nothing to repair.
pub fn managed(kind: Kind, record: &Value) -> Value {
    let f = |name: &str| normalize(unwrap(record.get(name)));
    match kind {
        Kind::GenericInquiry => json!({
            "expose_via_odata": f("ExposeViaOData"),
            "tables": rows(record, "Tables", &["Table", "Alias"]),
            "relations": rows(record, "Relations", &["ParentTable", "ChildTable", "JoinType", "ParentField", "ChildField"]),
            "conditions": rows(record, "Conditions", &["DataField", "Condition", "Value", "Active"]),
            "results": rows(record, "Results", &["Object", "Field", "Caption", "AggregateFunction", "Active"]),
            "grouping": rows(record, "Grouping", &["DataField"]),
        }),
        Kind::PushNotification => json!({
            "active": f("Active"),
            "type": f("DestinationType"),
            "address": f("Address"),
            "header_name": f("HeaderName"),
            "header_value": f("HeaderValue"),
            "sources": rows(record, "Inquiries", &["InquiryTitle", "Active", "TrackAllFields"]),
            "tracked_fields": rows(record, "TrackedFields", &["InquiryTitle", "FieldName"]),
        }),
        Kind::Schedule => json!({
            "description": f("Description"),
            "screen": f("ScreenID"),
            "action": f("ActionName"),
            "active": f("Active"),
            "interval": f("Interval"),
        }),
        Kind::Endpoint => Value::Null,
    }
}

/// Which managed properties differ (names only: a header value is a secret).
pub fn drift(desired: &Value, actual: &Value) -> Vec<String> {
    let (Some(d), Some(a)) = (desired.as_object(), actual.as_object()) else {
        return vec!["everything".into()];
    };
    d.iter()
        .filter(|(k, v)| a.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .collect()
}
