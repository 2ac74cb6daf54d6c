//! The long-running actions the simulation runs: `Shipment/ConfirmShipment` and
//! `SalesOrder/CancelSalesOrder` — when each is allowed and what it commits.

use std::collections::BTreeSet;

use serde_json::json;

use super::data::{Store, key_of};
use super::entities::{Entity, children, note_id, number, order_lines, text};
use super::tables::{Change, Row};
use super::validate::wrapped_str;

/// Why an action cannot run on a record now.
pub fn action_refusal(store: &Store, entity: Entity, action: &str, row: &Row) -> Option<String> {
    match (entity, action) {
        (Entity::Shipment, "ConfirmShipment") => match text(row, "Status").as_str() {
            "C" => Some("The shipment is already confirmed.".into()),
            "H" => Some("The shipment is on hold and cannot be confirmed.".into()),
            _ if children(
                store,
                "SOShipLine",
                &[("ShipmentNbr", text(row, "ShipmentNbr"))],
            )
            .is_empty() =>
            {
                Some("The shipment has no lines and cannot be confirmed.".into())
            }
            _ => None,
        },
        (Entity::SalesOrder, "CancelSalesOrder") => {
            let (order_type, order_nbr) = (text(row, "OrderType"), text(row, "OrderNbr"));
            match text(row, "Status").as_str() {
                "L" => Some("The sales order is already canceled.".into()),
                "C" => Some("A completed sales order cannot be canceled.".into()),
                _ if store.table("SOShipLine").values().any(|l| {
                    text(l, "OrigOrderType") == order_type && text(l, "OrigOrderNbr") == order_nbr
                }) =>
                {
                    Some("The sales order has shipments and cannot be canceled.".into())
                }
                _ => None,
            }
        }
        _ => Some(format!("The {action} action is not available.")),
    }
}

/// Runs an action's effect as one transaction.
pub fn run_action(
    store: &mut Store,
    entity: Entity,
    action: &str,
    key: &str,
    changes: &mut Vec<Change>,
) -> Result<(), String> {
    let Some(row) = store.get(entity.table(), key).cloned() else {
        return Err("No entity satisfies the condition.".into());
    };
    if let Some(refusal) = action_refusal(store, entity, action, &row) {
        return Err(refusal);
    }
    match (entity, action) {
        (Entity::SalesOrder, "CancelSalesOrder") => {
            let mut order = row;
            order.insert("Status".into(), json!("L"));
            store.put_row("SOOrder", order, changes);
        }
        (Entity::Shipment, "ConfirmShipment") => confirm_shipment(store, row, changes),
        _ => return Err(format!("The {action} action is not available.")),
    }
    Ok(())
}

fn confirm_shipment(store: &mut Store, mut shipment: Row, changes: &mut Vec<Change>) {
    let nbr = text(&shipment, "ShipmentNbr");
    shipment.insert("Status".into(), json!("C"));
    shipment.insert("Confirmed".into(), json!(true));
    store.put_row("SOShipment", shipment.clone(), changes);
    let warehouse = store
        .extras(&note_id(&shipment))
        .and_then(|e| wrapped_str(e, "WarehouseID"));
    let lines = children(store, "SOShipLine", &[("ShipmentNbr", nbr)]);
    let mut orders = BTreeSet::new();
    for line in &lines {
        orders.insert((text(line, "OrigOrderType"), text(line, "OrigOrderNbr")));
        // The shipped goods leave the warehouse: the shipment's, else the first holding them.
        let item = text(line, "InventoryCD");
        let sites = children(store, "INSiteStatus", &[("InventoryCD", item)]);
        let site = sites
            .iter()
            .find(|s| Some(text(s, "SiteCD")) == warehouse)
            .or_else(|| sites.iter().find(|s| number(s, "QtyOnHand") > 0.0))
            .or(sites.first())
            .cloned();
        if let Some(mut site) = site {
            let qty = number(line, "ShippedQty");
            site.insert("QtyOnHand".into(), json!(number(&site, "QtyOnHand") - qty));
            site.insert("QtyAvail".into(), json!(number(&site, "QtyAvail") - qty));
            store.put_row("INSiteStatus", site, changes);
        }
    }
    for (order_type, order_nbr) in orders {
        let Some(mut order) = store
            .get("SOOrder", &key_of(&[&order_type, &order_nbr]))
            .cloned()
        else {
            continue;
        };
        let confirmed: BTreeSet<String> = store
            .table("SOShipment")
            .values()
            .filter(|s| text(s, "Status") == "C")
            .map(|s| text(s, "ShipmentNbr"))
            .collect();
        let complete = order_lines(store, &order).iter().all(|l| {
            let shipped: f64 = store
                .table("SOShipLine")
                .values()
                .filter(|s| {
                    confirmed.contains(&text(s, "ShipmentNbr"))
                        && text(s, "OrigOrderType") == order_type
                        && text(s, "OrigOrderNbr") == order_nbr
                        && number(s, "OrigLineNbr") == number(l, "LineNbr")
                })
                .map(|s| number(s, "ShippedQty"))
                .sum();
            shipped >= number(l, "OrderQty")
        });
        order.insert("Status".into(), json!(if complete { "C" } else { "B" }));
        store.put_row("SOOrder", order, changes);
    }
}
