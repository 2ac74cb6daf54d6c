//! The contract-based entities served (`StockItem`, `Customer`, `SalesOrder`, `Shipment`) as
//! views over the tables: how each is rendered from rows and how a submitted one is written
//! back, in one transaction.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::data::{Store, key_of, row_key};
use super::mapping::{
    Conv, FieldMap, apply_fields, merge_extras, render_extras, render_fields, ro, rw, to_column,
    wrap,
};
use super::tables::{Change, Row};
use super::validate::{wrapped, wrapped_bool, wrapped_f64, wrapped_i64, wrapped_str};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entity {
    StockItem,
    Customer,
    SalesOrder,
    Shipment,
}

pub const ITEM_STATUS: &[(&str, &str)] = &[
    ("AC", "Active"),
    ("IN", "Inactive"),
    ("DE", "Marked for Deletion"),
    ("NS", "No Sales"),
    ("NP", "No Purchases"),
    ("NR", "No Request"),
];
pub const CUSTOMER_STATUS: &[(&str, &str)] = &[
    ("A", "Active"),
    ("H", "On Hold"),
    ("C", "Credit Hold"),
    ("I", "Inactive"),
    ("T", "One-Time"),
];
pub const ORDER_STATUS: &[(&str, &str)] = &[
    ("N", "Open"),
    ("H", "On Hold"),
    ("S", "Shipping"),
    ("B", "Back Order"),
    ("C", "Completed"),
    ("L", "Canceled"),
];
pub const SHIPMENT_STATUS: &[(&str, &str)] = &[("N", "Open"), ("H", "On Hold"), ("C", "Confirmed")];

const STOCK_ITEM: &[FieldMap] = &[
    rw("InventoryID", "InventoryCD", Conv::Text),
    rw("Description", "Descr", Conv::Text),
    rw("ItemStatus", "ItemStatus", Conv::Code(ITEM_STATUS)),
    rw("ItemClass", "ItemClassID", Conv::Text),
    rw("DefaultPrice", "BasePrice", Conv::Number),
    rw("DimensionWeight", "BaseWeight", Conv::Number),
    ro("LastModified", "LastModifiedDateTime", Conv::Stamp),
    ro("LastModifiedDateTime", "LastModifiedDateTime", Conv::Stamp),
    ro("NoteID", "NoteID", Conv::Text),
];
const WAREHOUSE_DETAIL: &[FieldMap] = &[
    rw("WarehouseID", "SiteCD", Conv::Text),
    // Quantities change through inventory documents, not through the item.
    ro("QtyOnHand", "QtyOnHand", Conv::Number),
];
const CUSTOMER: &[FieldMap] = &[
    rw("CustomerID", "AcctCD", Conv::Text),
    rw("CustomerName", "AcctName", Conv::Text),
    rw("Email", "Email", Conv::Text),
    rw("CustomerClass", "CustomerClassID", Conv::Text),
    rw("Status", "Status", Conv::Code(CUSTOMER_STATUS)),
    ro("LastModifiedDateTime", "LastModifiedDateTime", Conv::Stamp),
    ro("NoteID", "NoteID", Conv::Text),
];
const SALES_ORDER: &[FieldMap] = &[
    rw("OrderType", "OrderType", Conv::Text),
    ro("OrderNbr", "OrderNbr", Conv::Text),
    rw("CustomerID", "CustomerID", Conv::Text),
    rw("CustomerOrder", "CustomerOrderNbr", Conv::Text),
    rw("ExternalRef", "CustomerRefNbr", Conv::Text),
    ro("Status", "Status", Conv::Code(ORDER_STATUS)),
    rw("CurrencyID", "CuryID", Conv::Text),
    ro("OrderTotal", "CuryOrderTotal", Conv::Number),
    ro("TaxTotal", "CuryTaxTotal", Conv::Number),
    ro("LastModified", "LastModifiedDateTime", Conv::Stamp),
    ro("NoteID", "NoteID", Conv::Text),
];
const ORDER_TOTALS: &[FieldMap] = &[
    rw("Freight", "CuryFreightTot", Conv::Number),
    ro("DiscountTotal", "CuryDiscTot", Conv::Number),
    ro("TaxTotal", "CuryTaxTotal", Conv::Number),
];
const ORDER_LINE: &[FieldMap] = &[
    ro("LineNbr", "LineNbr", Conv::Number),
    rw("InventoryID", "InventoryCD", Conv::Text),
    rw("OrderQty", "OrderQty", Conv::Number),
    rw("UnitPrice", "CuryUnitPrice", Conv::Number),
    rw("DiscountAmount", "CuryDiscAmt", Conv::Number),
    ro("Amount", "CuryLineAmt", Conv::Number),
    ro("NoteID", "NoteID", Conv::Text),
];
const SHIPMENT: &[FieldMap] = &[
    ro("ShipmentNbr", "ShipmentNbr", Conv::Text),
    ro("Status", "Status", Conv::Code(SHIPMENT_STATUS)),
    rw("CustomerID", "CustomerID", Conv::Text),
    rw("ShipVia", "ShipVia", Conv::Text),
    rw("ShipmentDate", "ShipDate", Conv::Stamp),
    ro("LastModifiedDateTime", "LastModifiedDateTime", Conv::Stamp),
    ro("NoteID", "NoteID", Conv::Text),
];
const SHIPMENT_LINE: &[FieldMap] = &[
    ro("LineNbr", "LineNbr", Conv::Number),
    rw("OrderType", "OrigOrderType", Conv::Text),
    rw("OrderNbr", "OrigOrderNbr", Conv::Text),
    rw("OrderLineNbr", "OrigLineNbr", Conv::Number),
    rw("InventoryID", "InventoryCD", Conv::Text),
    rw("ShippedQty", "ShippedQty", Conv::Number),
];
const PACKAGE: &[FieldMap] = &[
    ro("LineNbr", "LineNbr", Conv::Number),
    rw("TrackingNbr", "TrackNumber", Conv::Text),
    ro("NoteID", "NoteID", Conv::Text),
];

impl Entity {
    pub const ALL: [Entity; 4] = [
        Entity::StockItem,
        Entity::Customer,
        Entity::SalesOrder,
        Entity::Shipment,
    ];

    pub fn from_name(name: &str) -> Option<Entity> {
        Entity::ALL.into_iter().find(|e| e.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Entity::StockItem => "StockItem",
            Entity::Customer => "Customer",
            Entity::SalesOrder => "SalesOrder",
            Entity::Shipment => "Shipment",
        }
    }

    /// The table holding the entity's header rows.
    pub fn table(self) -> &'static str {
        match self {
            Entity::StockItem => "InventoryItem",
            Entity::Customer => "Customer",
            Entity::SalesOrder => "SOOrder",
            Entity::Shipment => "SOShipment",
        }
    }

    /// Human name used in Acumatica's messages.
    fn display(self) -> &'static str {
        match self {
            Entity::StockItem => "Stock Item",
            Entity::Customer => "Customer",
            Entity::SalesOrder => "Sales Order",
            Entity::Shipment => "Shipment",
        }
    }

    fn maps(self) -> &'static [FieldMap] {
        match self {
            Entity::StockItem => STOCK_ITEM,
            Entity::Customer => CUSTOMER,
            Entity::SalesOrder => SALES_ORDER,
            Entity::Shipment => SHIPMENT,
        }
    }

    /// The column a top-level text field shows unchanged (`CustomerOrder` → `CustomerOrderNbr`),
    /// so a `$filter` on the field can use an index on the column.
    pub fn text_column(self, field: &str) -> Option<&'static str> {
        self.maps()
            .iter()
            .find(|m| m.field == field && matches!(m.conv, Conv::Text))
            .map(|m| m.column)
    }

    /// Contract fields handled by code rather than by a plain column map.
    fn special_fields(self) -> &'static [&'static str] {
        match self {
            Entity::StockItem => &["WarehouseDetails"],
            Entity::Customer => &[],
            Entity::SalesOrder => &["Details", "Totals"],
            Entity::Shipment => &["Details", "Packages", "Orders", "Hold"],
        }
    }
}

/// Which linked entities and details a reply includes.
pub struct Expand(pub BTreeSet<String>);

impl Expand {
    pub fn parse(text: Option<&str>) -> Expand {
        Expand(
            text.unwrap_or_default()
                .split(',')
                .map(|s| s.trim().split('/').next().unwrap_or_default().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
        )
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.contains(name)
    }
}

fn base(row: &Row, row_number: usize) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert(
        "id".into(),
        row.get("NoteID").cloned().unwrap_or(Value::Null),
    );
    out.insert("rowNumber".into(), json!(row_number));
    out.insert("custom".into(), json!({}));
    out
}

pub(super) fn note_id(row: &Row) -> String {
    row.get("NoteID")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

pub(super) fn text(row: &Row, column: &str) -> String {
    match row.get(column) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

pub(super) fn number(row: &Row, column: &str) -> f64 {
    row.get(column).and_then(Value::as_f64).unwrap_or(0.0)
}

fn money(n: f64) -> Value {
    json!((n * 100.0).round() / 100.0)
}

/// Child rows of a parent (the parent columns are the child table's leading key fields).
pub(super) fn children(store: &Store, table: &str, parent: &[(&str, String)]) -> Vec<Row> {
    let values: Vec<&str> = parent.iter().map(|(_, v)| v.as_str()).collect();
    store.children(table, &values)
}

fn render_child(schema: &str, maps: &[FieldMap], store: &Store, row: &Row, n: usize) -> Value {
    let mut out = base(row, n);
    render_extras(schema, store.extras(&note_id(row)), &|_| true, &mut out);
    render_fields(maps, row, &mut out);
    Value::Object(out)
}

/// The entity `row` is the header of, as the API returns it.
pub fn render(
    store: &Store,
    entity: Entity,
    row: &Row,
    row_number: usize,
    expand: &Expand,
) -> Map<String, Value> {
    let schema = entity.name();
    let mut out = base(row, row_number);
    render_extras(
        schema,
        store.extras(&note_id(row)),
        &|name| expand.has(name),
        &mut out,
    );
    render_fields(entity.maps(), row, &mut out);
    match entity {
        Entity::StockItem => {
            if expand.has("WarehouseDetails") {
                let sites = children(
                    store,
                    "INSiteStatus",
                    &[("InventoryCD", text(row, "InventoryCD"))],
                );
                let details: Vec<Value> = sites
                    .iter()
                    .enumerate()
                    .map(|(i, r)| {
                        render_child(
                            "StockItemWarehouseDetail",
                            WAREHOUSE_DETAIL,
                            store,
                            r,
                            i + 1,
                        )
                    })
                    .collect();
                out.insert("WarehouseDetails".into(), Value::Array(details));
            }
        }
        Entity::Customer => {
            if expand.has("MainContact") {
                let mut contact = out
                    .get("MainContact")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                contact.insert(
                    "Email".into(),
                    wrap(row.get("Email").cloned().unwrap_or(Value::Null)),
                );
                out.insert("MainContact".into(), Value::Object(contact));
            }
        }
        Entity::SalesOrder => {
            let lines = order_lines(store, row);
            if expand.has("Details") {
                let details: Vec<Value> = lines
                    .iter()
                    .enumerate()
                    .map(|(i, r)| {
                        let mut line =
                            render_child("SalesOrderDetail", ORDER_LINE, store, r, i + 1);
                        line["ExtendedPrice"] =
                            wrap(money(number(r, "OrderQty") * number(r, "CuryUnitPrice")));
                        line
                    })
                    .collect();
                out.insert("Details".into(), Value::Array(details));
            }
            let ordered: f64 = lines.iter().map(|l| number(l, "OrderQty")).sum();
            out.insert("OrderedQty".into(), wrap(json!(ordered)));
            if expand.has("Totals") {
                let mut totals = out
                    .get("Totals")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                render_fields(ORDER_TOTALS, row, &mut totals);
                let line_total: f64 = lines.iter().map(|l| number(l, "CuryLineAmt")).sum();
                totals.insert("LineTotalAmount".into(), wrap(money(line_total)));
                out.insert("Totals".into(), Value::Object(totals));
            }
        }
        Entity::Shipment => {
            let nbr = text(row, "ShipmentNbr");
            let lines = children(store, "SOShipLine", &[("ShipmentNbr", nbr.clone())]);
            let shipped: f64 = lines.iter().map(|l| number(l, "ShippedQty")).sum();
            out.insert("ShippedQty".into(), wrap(json!(shipped)));
            out.insert("Hold".into(), wrap(json!(text(row, "Status") == "H")));
            if expand.has("Details") {
                let details: Vec<Value> = lines
                    .iter()
                    .enumerate()
                    .map(|(i, r)| render_child("ShipmentDetail", SHIPMENT_LINE, store, r, i + 1))
                    .collect();
                out.insert("Details".into(), Value::Array(details));
            }
            if expand.has("Packages") {
                let packages = children(store, "SOPackageDetail", &[("ShipmentNbr", nbr.clone())]);
                let packages: Vec<Value> = packages
                    .iter()
                    .enumerate()
                    .map(|(i, r)| render_child("ShipmentPackage", PACKAGE, store, r, i + 1))
                    .collect();
                out.insert("Packages".into(), Value::Array(packages));
            }
            if expand.has("Orders") {
                let mut orders: Vec<(String, String, f64)> = Vec::new();
                for line in &lines {
                    let key = (text(line, "OrigOrderType"), text(line, "OrigOrderNbr"));
                    match orders
                        .iter_mut()
                        .find(|(t, n, _)| (t, n) == (&key.0, &key.1))
                    {
                        Some(entry) => entry.2 += number(line, "ShippedQty"),
                        None => orders.push((key.0, key.1, number(line, "ShippedQty"))),
                    }
                }
                let orders: Vec<Value> = orders
                    .into_iter()
                    .enumerate()
                    .map(|(i, (order_type, order_nbr, qty))| {
                        json!({
                            "rowNumber": i + 1,
                            "custom": {},
                            "OrderType": wrap(json!(order_type)),
                            "OrderNbr": wrap(json!(order_nbr)),
                            "ShipmentNbr": wrap(json!(nbr)),
                            "ShippedQty": wrap(json!(qty)),
                        })
                    })
                    .collect();
                out.insert("Orders".into(), Value::Array(orders));
            }
        }
    }
    out
}

pub(super) fn order_lines(store: &Store, order: &Row) -> Vec<Row> {
    children(
        store,
        "SOLine",
        &[
            ("OrderType", text(order, "OrderType")),
            ("OrderNbr", text(order, "OrderNbr")),
        ],
    )
}

/// How a `PUT` treats an existing record (`If-None-Match: *` / `If-Match: *`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PutMode {
    Upsert,
    InsertOnly,
    UpdateOnly,
}

/// Why a write was refused.
pub enum Refusal {
    /// 412: the record exists (insert-only) or does not (update-only).
    Precondition(String),
    /// 422: the submitted entity with errors at these paths (field names and detail indexes).
    Invalid(Vec<(Vec<PathSeg>, String)>),
    /// 400 with an exception message (a state that forbids the change).
    Forbidden(String),
}

#[derive(Clone, Debug)]
pub enum PathSeg {
    Field(String),
    Index(usize),
}

fn field(name: &str) -> Vec<PathSeg> {
    vec![PathSeg::Field(name.to_string())]
}

/// Finds the record a submitted entity (or action target) means: by `id`, else by key fields.
pub fn find(store: &Store, entity: Entity, body: &Map<String, Value>) -> Option<Row> {
    if let Some(id) = body.get("id").and_then(Value::as_str) {
        return store.find_by_note_id(entity.table(), id).cloned();
    }
    let key = match entity {
        Entity::StockItem => key_of(&[&wrapped_str(body, "InventoryID")?]),
        Entity::Customer => key_of(&[&wrapped_str(body, "CustomerID")?]),
        Entity::SalesOrder => key_of(&[
            &wrapped_str(body, "OrderType").unwrap_or_else(|| "SO".into()),
            &wrapped_str(body, "OrderNbr")?,
        ]),
        Entity::Shipment => key_of(&[&wrapped_str(body, "ShipmentNbr")?]),
    };
    store.get(entity.table(), &key).cloned()
}

/// The number after the greatest in use (six digits at least), from the store's index.
fn next_number(
    store: &Store,
    table: &str,
    group: Option<&'static str>,
    number: &'static str,
    group_value: &str,
) -> String {
    format!(
        "{:06}",
        store.max_number(table, group, number, group_value) + 1
    )
}

/// Writes a submitted entity; returns the header row as stored.
pub fn put(
    store: &mut Store,
    entity: Entity,
    body: &Map<String, Value>,
    mode: PutMode,
    changes: &mut Vec<Change>,
) -> Result<Row, Refusal> {
    let existing = find(store, entity, body);
    match (mode, &existing) {
        (PutMode::InsertOnly, Some(_)) => {
            return Err(Refusal::Precondition(format!(
                "The {} with the specified keys already exists and cannot be inserted.",
                entity.display()
            )));
        }
        (PutMode::UpdateOnly, None) => {
            return Err(Refusal::Precondition(format!(
                "No {} with the specified keys exists to be updated.",
                entity.display()
            )));
        }
        _ => {}
    }
    let mut errors: Vec<(Vec<PathSeg>, String)> = Vec::new();
    let mut field_errors = Vec::new();
    let mut row = existing.clone().unwrap_or_default();
    apply_fields(entity.maps(), body, &mut row, &mut field_errors);
    errors.extend(field_errors.into_iter().map(|(f, e)| (field(&f), e)));
    let inserting = existing.is_none();

    match entity {
        Entity::StockItem => {
            if inserting {
                if text(&row, "InventoryCD").trim().is_empty() {
                    errors.push((
                        field("InventoryID"),
                        "'Inventory ID' cannot be empty.".into(),
                    ));
                }
                row.entry("ItemStatus".to_string()).or_insert(json!("AC"));
                row.entry("ItemClassID".to_string())
                    .or_insert(json!("DEFAULT"));
                row.entry("BasePrice".to_string()).or_insert(json!(0.0));
                row.entry("BaseWeight".to_string()).or_insert(json!(0.0));
                row.entry("Descr".to_string()).or_insert(Value::Null);
            } else if let Some(existing) = &existing {
                row.insert("InventoryCD".into(), existing["InventoryCD"].clone());
            }
        }
        Entity::Customer => {
            if let Some(email) = body
                .get("MainContact")
                .and_then(Value::as_object)
                .and_then(|c| wrapped(c, "Email"))
                && let Ok(v) = to_column(&rw("Email", "Email", Conv::Text), email)
            {
                row.insert("Email".into(), v);
            }
            if inserting {
                if text(&row, "AcctCD").trim().is_empty() {
                    errors.push((field("CustomerID"), "'Customer ID' cannot be empty.".into()));
                }
                if text(&row, "AcctName").trim().is_empty() {
                    errors.push((
                        field("CustomerName"),
                        "'Account Name' cannot be empty.".into(),
                    ));
                }
                row.entry("CustomerClassID".to_string())
                    .or_insert(json!("DEFAULT"));
                row.entry("Status".to_string()).or_insert(json!("A"));
                row.entry("Email".to_string()).or_insert(Value::Null);
            } else if let Some(existing) = &existing {
                row.insert("AcctCD".into(), existing["AcctCD"].clone());
            }
        }
        Entity::SalesOrder => {
            if let Some(existing) = &existing {
                let status = text(existing, "Status");
                if status == "C" || status == "L" {
                    return Err(Refusal::Forbidden(format!(
                        "The sales order {} {} is {} and cannot be edited.",
                        text(existing, "OrderType"),
                        text(existing, "OrderNbr"),
                        if status == "C" {
                            "completed"
                        } else {
                            "canceled"
                        }
                    )));
                }
                row.insert("OrderType".into(), existing["OrderType"].clone());
                row.insert("OrderNbr".into(), existing["OrderNbr"].clone());
            } else {
                let order_type = wrapped_str(body, "OrderType").unwrap_or_else(|| "SO".into());
                row.insert("OrderType".into(), json!(order_type));
                let nbr = next_number(store, "SOOrder", Some("OrderType"), "OrderNbr", &order_type);
                row.insert("OrderNbr".into(), json!(nbr));
                row.entry("CuryID".to_string()).or_insert(json!("USD"));
                row.entry("CustomerOrderNbr".to_string())
                    .or_insert(Value::Null);
                row.entry("CustomerRefNbr".to_string())
                    .or_insert(Value::Null);
                row.entry("CuryFreightTot".to_string())
                    .or_insert(json!(0.0));
            }
            let customer = text(&row, "CustomerID");
            if customer.trim().is_empty() {
                errors.push((field("CustomerID"), "'Customer' cannot be empty.".into()));
            } else if store.get("Customer", &key_of(&[&customer])).is_none() {
                errors.push((
                    field("CustomerID"),
                    format!("'Customer' cannot be found in the system. ({customer})"),
                ));
            }
            if let Some(hold) = wrapped_bool(body, "Hold") {
                row.insert("Status".into(), json!(if hold { "H" } else { "N" }));
            }
            row.entry("Status".to_string()).or_insert(json!("N"));
            if let Some(totals) = body.get("Totals").and_then(Value::as_object) {
                let mut totals_errors = Vec::new();
                apply_fields(ORDER_TOTALS, totals, &mut row, &mut totals_errors);
                for (f, e) in totals_errors {
                    errors.push((vec![PathSeg::Field("Totals".into()), PathSeg::Field(f)], e));
                }
            }
        }
        Entity::Shipment => {
            if let Some(existing) = &existing {
                if text(existing, "Status") == "C" {
                    return Err(Refusal::Forbidden(format!(
                        "The shipment {} is confirmed and cannot be edited.",
                        text(existing, "ShipmentNbr")
                    )));
                }
                row.insert("ShipmentNbr".into(), existing["ShipmentNbr"].clone());
            } else {
                let nbr = next_number(store, "SOShipment", None, "ShipmentNbr", "");
                row.insert("ShipmentNbr".into(), json!(nbr));
                row.insert("Confirmed".into(), json!(false));
                row.entry("ShipVia".to_string()).or_insert(Value::Null);
                if !row.contains_key("ShipDate") {
                    let today = store.now().format("%Y-%m-%dT00:00:00.000Z").to_string();
                    row.insert("ShipDate".into(), json!(today));
                }
            }
            let customer = text(&row, "CustomerID");
            if customer.trim().is_empty() {
                errors.push((field("CustomerID"), "'Customer' cannot be empty.".into()));
            }
            if let Some(hold) = wrapped_bool(body, "Hold") {
                row.insert("Status".into(), json!(if hold { "H" } else { "N" }));
            }
            row.entry("Status".to_string()).or_insert(json!("N"));
        }
    }
    if !errors.is_empty() {
        return Err(Refusal::Invalid(errors));
    }

    let changes_before = changes.len();
    let row = store.put_row(entity.table(), row, changes);
    let note = note_id(&row);
    {
        let kept = store.extras(&note).cloned().unwrap_or_default();
        let mut extras = kept.clone();
        merge_extras(
            entity.name(),
            entity.maps(),
            entity.special_fields(),
            body,
            &mut extras,
        );
        if entity == Entity::SalesOrder
            && let Some(totals) = body.get("Totals")
        {
            // Totals fields without a column (e.g. OverrideFreightAmount) are kept as sent.
            let mut kept = extras.get("Totals").cloned().unwrap_or_else(|| json!({}));
            if let (Some(kept), Some(sent)) = (kept.as_object_mut(), totals.as_object()) {
                for (k, v) in sent {
                    if ORDER_TOTALS.iter().all(|m| m.field != k) && v.get("value").is_some() {
                        kept.insert(k.clone(), json!({ "value": v["value"] }));
                    }
                }
            }
            extras.insert("Totals".into(), kept);
        }
        let extras_changed = extras != kept;
        *store.extras_mut(&note) = extras;
        if extras_changed && !inserting && changes.len() == changes_before {
            store.touch_row(entity.table(), &row_key(entity.table(), &row), changes);
        }
    }

    let mut errors = Vec::new();
    match entity {
        Entity::StockItem => {
            let item = text(&row, "InventoryCD");
            if let Some(items) = body.get("WarehouseDetails").and_then(Value::as_array) {
                write_details(
                    store,
                    Details {
                        name: "WarehouseDetails",
                        schema: "StockItemWarehouseDetail",
                        table: "INSiteStatus",
                        maps: WAREHOUSE_DETAIL,
                        parent: vec![("InventoryCD", item)],
                        line_key: LineKey::Field("WarehouseID", "SiteCD"),
                    },
                    items,
                    changes,
                    &mut errors,
                    &mut |_, row| {
                        row.entry("QtyOnHand".to_string()).or_insert(json!(0.0));
                        row.entry("QtyAvail".to_string()).or_insert(json!(0.0));
                        Ok(())
                    },
                );
            }
        }
        Entity::Customer => {}
        Entity::SalesOrder => {
            let parent = vec![
                ("OrderType", text(&row, "OrderType")),
                ("OrderNbr", text(&row, "OrderNbr")),
            ];
            if let Some(items) = body.get("Details").and_then(Value::as_array) {
                write_details(
                    store,
                    Details {
                        name: "Details",
                        schema: "SalesOrderDetail",
                        table: "SOLine",
                        maps: ORDER_LINE,
                        parent: parent.clone(),
                        line_key: LineKey::Auto,
                    },
                    items,
                    changes,
                    &mut errors,
                    &mut |store, line| {
                        let item = text(line, "InventoryCD");
                        if item.trim().is_empty() {
                            return Err(("InventoryID", "'Inventory ID' cannot be empty.".into()));
                        }
                        if store.get("InventoryItem", &key_of(&[&item])).is_none() {
                            return Err((
                                "InventoryID",
                                format!("'Inventory ID' cannot be found in the system. ({item})"),
                            ));
                        }
                        let qty = number(line, "OrderQty");
                        if qty < 0.0 {
                            return Err(("OrderQty", "'Quantity' must not be negative.".into()));
                        }
                        if !line.contains_key("CuryUnitPrice") {
                            let price = store
                                .get("InventoryItem", &key_of(&[&item]))
                                .map(|r| number(r, "BasePrice"))
                                .unwrap_or(0.0);
                            line.insert("CuryUnitPrice".into(), json!(price));
                        }
                        line.entry("OrderQty".to_string()).or_insert(json!(0.0));
                        line.entry("CuryDiscAmt".to_string()).or_insert(json!(0.0));
                        let amount = number(line, "OrderQty") * number(line, "CuryUnitPrice")
                            - number(line, "CuryDiscAmt");
                        line.insert("CuryLineAmt".into(), money(amount));
                        Ok(())
                    },
                );
            }
            if errors.is_empty() {
                recompute_order(store, &row, changes);
            }
        }
        Entity::Shipment => {
            let nbr = text(&row, "ShipmentNbr");
            let customer = text(&row, "CustomerID");
            if let Some(items) = body.get("Details").and_then(Value::as_array) {
                write_details(
                    store,
                    Details {
                        name: "Details",
                        schema: "ShipmentDetail",
                        table: "SOShipLine",
                        maps: SHIPMENT_LINE,
                        parent: vec![("ShipmentNbr", nbr.clone())],
                        line_key: LineKey::Auto,
                    },
                    items,
                    changes,
                    &mut errors,
                    &mut |store, line| {
                        let order_type = {
                            let t = text(line, "OrigOrderType");
                            if t.is_empty() { "SO".to_string() } else { t }
                        };
                        line.insert("OrigOrderType".into(), json!(order_type));
                        let order_nbr = text(line, "OrigOrderNbr");
                        let Some(order) = store.get("SOOrder", &key_of(&[&order_type, &order_nbr]))
                        else {
                            return Err((
                                "OrderNbr",
                                format!(
                                    "The sales order {order_type} {order_nbr} cannot be found in the system."
                                ),
                            ));
                        };
                        if text(order, "CustomerID") != customer {
                            return Err((
                                "OrderNbr",
                                "The order belongs to another customer.".into(),
                            ));
                        }
                        if matches!(text(order, "Status").as_str(), "L" | "C" | "H") {
                            return Err((
                                "OrderNbr",
                                format!(
                                    "The sales order {order_type} {order_nbr} cannot be shipped in its current status."
                                ),
                            ));
                        }
                        let line_nbr = number(line, "OrigLineNbr");
                        let order_line = store
                            .table("SOLine")
                            .values()
                            .find(|l| {
                                text(l, "OrderType") == order_type
                                    && text(l, "OrderNbr") == order_nbr
                                    && number(l, "LineNbr") == line_nbr
                            })
                            .cloned();
                        let Some(order_line) = order_line else {
                            return Err((
                                "OrderLineNbr",
                                format!(
                                    "The line {line_nbr} of the sales order {order_type} {order_nbr} cannot be found."
                                ),
                            ));
                        };
                        line.insert("OrigLineNbr".into(), json!(line_nbr as i64));
                        line.insert("InventoryCD".into(), order_line["InventoryCD"].clone());
                        // What other shipments already take of this order line.
                        let this_shipment = text(line, "ShipmentNbr");
                        let on_other_shipments: f64 = store
                            .table("SOShipLine")
                            .values()
                            .filter(|s| {
                                text(s, "ShipmentNbr") != this_shipment
                                    && text(s, "OrigOrderType") == order_type
                                    && text(s, "OrigOrderNbr") == order_nbr
                                    && number(s, "OrigLineNbr") == line_nbr
                            })
                            .map(|s| number(s, "ShippedQty"))
                            .sum();
                        let open_qty = number(&order_line, "OrderQty") - on_other_shipments;
                        if !line.contains_key("ShippedQty") || line["ShippedQty"].is_null() {
                            line.insert("ShippedQty".into(), json!(open_qty.max(0.0)));
                        }
                        if number(line, "ShippedQty") > open_qty {
                            return Err((
                                "ShippedQty",
                                "The shipped quantity cannot be greater than the quantity still open on the order line."
                                    .into(),
                            ));
                        }
                        Ok(())
                    },
                );
            }
            if let Some(items) = body.get("Packages").and_then(Value::as_array) {
                write_details(
                    store,
                    Details {
                        name: "Packages",
                        schema: "ShipmentPackage",
                        table: "SOPackageDetail",
                        maps: PACKAGE,
                        parent: vec![("ShipmentNbr", nbr)],
                        line_key: LineKey::Auto,
                    },
                    items,
                    changes,
                    &mut errors,
                    &mut |_, row| {
                        row.entry("TrackNumber".to_string()).or_insert(Value::Null);
                        Ok(())
                    },
                );
            }
        }
    }
    if !errors.is_empty() {
        return Err(Refusal::Invalid(errors));
    }
    Ok(store
        .get(entity.table(), &row_key(entity.table(), &row))
        .cloned()
        .unwrap_or(row))
}

/// Order totals from its lines: line total − document discounts + freight + taxes (taxes and
/// discounts as given in `TaxDetails` / `DiscountDetails`, as a client that calculates them
/// itself sends them).
pub fn recompute_order(store: &mut Store, order: &Row, changes: &mut Vec<Change>) {
    let key = row_key("SOOrder", order);
    let Some(mut order) = store.get("SOOrder", &key).cloned() else {
        return;
    };
    let lines = order_lines(store, &order);
    let line_total: f64 = lines.iter().map(|l| number(l, "CuryLineAmt")).sum();
    let extras = store.extras(&note_id(&order)).cloned().unwrap_or_default();
    let sum_of = |detail: &str, field: &str| -> f64 {
        extras
            .get(detail)
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| i.as_object())
                    .filter_map(|i| wrapped_f64(i, field))
                    .sum()
            })
            .unwrap_or(0.0)
    };
    let tax = sum_of("TaxDetails", "TaxAmount");
    let discount = sum_of("DiscountDetails", "DiscountAmount");
    let freight = number(&order, "CuryFreightTot");
    order.insert("CuryTaxTotal".into(), money(tax));
    order.insert("CuryDiscTot".into(), money(discount));
    order.insert(
        "CuryOrderTotal".into(),
        money(line_total - discount + freight + tax),
    );
    store.put_row("SOOrder", order, changes);
}

enum LineKey {
    /// Lines numbered 1, 2, … by the system (`LineNbr`).
    Auto,
    /// Lines identified by a field (a warehouse detail by its warehouse): (field, column).
    Field(&'static str, &'static str),
}

struct Details {
    name: &'static str,
    schema: &'static str,
    table: &'static str,
    maps: &'static [FieldMap],
    parent: Vec<(&'static str, String)>,
    line_key: LineKey,
}

type LineCheck<'a> = dyn FnMut(&Store, &mut Row) -> Result<(), (&'static str, String)> + 'a;

/// Applies submitted detail lines: a line with `id` (or the identifying field) updates that
/// line, `"delete": true` removes it, any other is inserted.
fn write_details(
    store: &mut Store,
    details: Details,
    items: &[Value],
    changes: &mut Vec<Change>,
    errors: &mut Vec<(Vec<PathSeg>, String)>,
    check: &mut LineCheck<'_>,
) {
    for (index, item) in items.iter().enumerate() {
        let Some(item) = item.as_object() else {
            continue;
        };
        let here = |f: &str| {
            vec![
                PathSeg::Field(details.name.to_string()),
                PathSeg::Index(index),
                PathSeg::Field(f.to_string()),
            ]
        };
        let existing_lines = children(store, details.table, &details.parent);
        let existing = if let Some(id) = item.get("id").and_then(Value::as_str) {
            existing_lines.iter().find(|r| note_id(r) == id).cloned()
        } else {
            match details.line_key {
                LineKey::Auto => wrapped_i64(item, "LineNbr").and_then(|n| {
                    existing_lines
                        .iter()
                        .find(|r| number(r, "LineNbr") as i64 == n)
                        .cloned()
                }),
                LineKey::Field(f, column) => wrapped_str(item, f).and_then(|v| {
                    existing_lines
                        .iter()
                        .find(|r| text(r, column) == v)
                        .cloned()
                }),
            }
        };
        if item.get("delete").and_then(Value::as_bool) == Some(true) {
            if let Some(line) = existing {
                let key = row_key(details.table, &line);
                store.delete_row(details.table, &key, changes);
            }
            continue;
        }
        let mut line = existing.clone().unwrap_or_default();
        for (column, value) in &details.parent {
            line.insert(column.to_string(), json!(value));
        }
        let mut field_errors = Vec::new();
        apply_fields(details.maps, item, &mut line, &mut field_errors);
        for (f, e) in field_errors {
            errors.push((here(&f), e));
        }
        if existing.is_none() {
            match details.line_key {
                LineKey::Auto => {
                    let next = existing_lines
                        .iter()
                        .map(|r| number(r, "LineNbr") as i64)
                        .max()
                        .unwrap_or(0)
                        + 1;
                    line.insert("LineNbr".into(), json!(next));
                }
                LineKey::Field(f, column) => {
                    if text(&line, column).trim().is_empty() {
                        errors.push((here(f), format!("'{f}' cannot be empty.")));
                        continue;
                    }
                }
            }
        }
        if let Err((f, e)) = check(store, &mut line) {
            errors.push((here(f), e));
            continue;
        }
        let line = store.put_row(details.table, line, changes);
        let note = note_id(&line);
        let mut extras = store.extras(&note).cloned().unwrap_or_default();
        merge_extras(details.schema, details.maps, &[], item, &mut extras);
        *store.extras_mut(&note) = extras;
    }
}

/// Deletes a record and its detail rows.
pub fn delete(
    store: &mut Store,
    entity: Entity,
    row: &Row,
    changes: &mut Vec<Change>,
) -> Result<(), Refusal> {
    let key = row_key(entity.table(), row);
    match entity {
        Entity::StockItem => {
            let item = text(row, "InventoryCD");
            if store
                .table("SOLine")
                .values()
                .any(|l| text(l, "InventoryCD") == item)
            {
                return Err(Refusal::Forbidden(format!(
                    "The stock item {item} cannot be deleted because it is used in sales orders."
                )));
            }
            for site in children(store, "INSiteStatus", &[("InventoryCD", item)]) {
                store.delete_row("INSiteStatus", &row_key("INSiteStatus", &site), changes);
            }
        }
        Entity::Customer => {
            let customer = text(row, "AcctCD");
            if store
                .table("SOOrder")
                .values()
                .any(|o| text(o, "CustomerID") == customer)
            {
                return Err(Refusal::Forbidden(format!(
                    "The customer {customer} cannot be deleted because it has documents."
                )));
            }
        }
        Entity::SalesOrder => {
            let (order_type, order_nbr) = (text(row, "OrderType"), text(row, "OrderNbr"));
            if store.table("SOShipLine").values().any(|l| {
                text(l, "OrigOrderType") == order_type && text(l, "OrigOrderNbr") == order_nbr
            }) {
                return Err(Refusal::Forbidden(format!(
                    "The sales order {order_type} {order_nbr} cannot be deleted because it has shipments."
                )));
            }
            for line in order_lines(store, row) {
                store.delete_row("SOLine", &row_key("SOLine", &line), changes);
            }
        }
        Entity::Shipment => {
            if text(row, "Status") == "C" {
                return Err(Refusal::Forbidden(
                    "A confirmed shipment cannot be deleted.".into(),
                ));
            }
            let nbr = text(row, "ShipmentNbr");
            for table in ["SOShipLine", "SOPackageDetail"] {
                for line in children(store, table, &[("ShipmentNbr", nbr.clone())]) {
                    store.delete_row(table, &row_key(table, &line), changes);
                }
            }
        }
    }
    store.delete_row(entity.table(), &key, changes);
    Ok(())
}

/// A submitted entity with each refused field carrying its `error`, and the record's summary
/// `error`, as a 422 reply carries it.
pub fn annotate(
    entity: Entity,
    body: &Map<String, Value>,
    errors: &[(Vec<PathSeg>, String)],
    inserting: bool,
) -> Value {
    let mut out = Value::Object(body.clone());
    for (path, message) in errors {
        let mut node = &mut out;
        for (i, seg) in path.iter().enumerate() {
            let last = i + 1 == path.len();
            node = match seg {
                PathSeg::Field(name) => {
                    let Some(object) = node.as_object_mut() else {
                        break;
                    };
                    let slot = object.entry(name.clone()).or_insert_with(|| json!({}));
                    if last {
                        if let Some(o) = slot.as_object_mut() {
                            o.insert("error".into(), json!(message));
                        }
                        break;
                    }
                    slot
                }
                PathSeg::Index(n) => match node.get_mut(*n) {
                    Some(child) => child,
                    None => break,
                },
            };
        }
    }
    if let Some(o) = out.as_object_mut() {
        o.insert(
            "error".into(),
            json!(format!(
                "{} '{}' record raised at least one error. Please review the errors.",
                if inserting { "Inserting" } else { "Updating" },
                entity.display()
            )),
        );
    }
    out
}
