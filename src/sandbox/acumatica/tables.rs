//! The simulated tenant's data as Acumatica keeps it: DAC-like tables of flat rows.
//!
//! Contract-based entities (`StockItem`, `SalesOrder`, …) are views over these tables, and
//! Generic Inquiries query them by table and field name, as Acumatica's GIs query DACs. This
//! file is the contract between the two halves of the simulation (entities and sessions on one
//! side; Generic Inquiries, OData and push notifications on the other).
//!
//! Conventions:
//! - A [`Row`] is flat: field name → plain JSON value (string, number, bool, null).
//! - Date-times are stored as UTC RFC 3339 strings with milliseconds
//!   (`"2026-11-26T10:00:00.123Z"`); conversion to the tenant's time zone happens at the edge
//!   that needs it (push rows are tenant-local without offset).
//! - Every table has `LastModifiedDateTime` (DAC field name), maintained on every write, and
//!   `NoteID` (a GUID string, unique per row).

use std::collections::BTreeMap;

use serde_json::Value;

/// One record of one table.
pub type Row = BTreeMap<String, Value>;

/// Table names and their key fields, as in Acumatica's DACs.
pub const TABLES: &[(&str, &[&str])] = &[
    // Stock items: InventoryCD (the item id users see), Descr, ItemStatus ("AC" active,
    // "IN" inactive, "DE" marked for deletion), ItemClassID, BasePrice, BaseWeight,
    // LastModifiedDateTime, NoteID.
    ("InventoryItem", &["InventoryCD"]),
    // Quantities per item and warehouse: InventoryCD, SiteCD, QtyOnHand, QtyAvail,
    // LastModifiedDateTime, NoteID.
    ("INSiteStatus", &["InventoryCD", "SiteCD"]),
    // Customers: AcctCD, AcctName, Email, CustomerClassID, Status, LastModifiedDateTime, NoteID.
    ("Customer", &["AcctCD"]),
    // Sales orders: OrderType, OrderNbr, CustomerID (AcctCD), CustomerOrderNbr, CustomerRefNbr,
    // Status, CuryID, CuryOrderTotal, CuryFreightTot, CuryTaxTotal, CuryDiscTot,
    // LastModifiedDateTime, NoteID.
    ("SOOrder", &["OrderType", "OrderNbr"]),
    // Order lines: OrderType, OrderNbr, LineNbr, InventoryCD, OrderQty, CuryUnitPrice,
    // CuryDiscAmt, CuryLineAmt, LastModifiedDateTime, NoteID.
    ("SOLine", &["OrderType", "OrderNbr", "LineNbr"]),
    // Shipments: ShipmentNbr, Status ("N" open, "C" confirmed, …), Confirmed (bool), ShipVia,
    // CustomerID, ShipDate, LastModifiedDateTime, NoteID.
    ("SOShipment", &["ShipmentNbr"]),
    // Shipment lines: ShipmentNbr, LineNbr, OrigOrderType, OrigOrderNbr, OrigLineNbr,
    // InventoryCD, ShippedQty, LastModifiedDateTime, NoteID.
    ("SOShipLine", &["ShipmentNbr", "LineNbr"]),
    // Packages: ShipmentNbr, LineNbr, TrackNumber, LastModifiedDateTime, NoteID.
    ("SOPackageDetail", &["ShipmentNbr", "LineNbr"]),
];

/// One row's change inside one transaction. An insert has no `before`, a delete no `after`.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub table: String,
    pub before: Option<Row>,
    pub after: Option<Row>,
}

/// All changes one transaction made (a mass price update is one transaction of many changes).
#[derive(Clone, Debug, PartialEq)]
pub struct Transaction {
    /// Increases by one per committed transaction.
    pub id: u64,
    pub changes: Vec<Change>,
}

/// Read access to the tables, for Generic Inquiries and push notifications.
pub trait TableSource: Send + Sync {
    /// Every row of `table`, or `None` when the tenant has no such table.
    fn rows(&self, table: &str) -> Option<Vec<Row>>;

    /// The rows of `table` that `keep` accepts: a source holding the rows copies only those.
    fn rows_where(&self, table: &str, keep: &dyn Fn(&Row) -> bool) -> Option<Vec<Row>> {
        self.rows(table)
            .map(|rows| rows.into_iter().filter(|row| keep(row)).collect())
    }
}
