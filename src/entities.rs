//! The entities the connector moves, in one table: direction, and for those that come from
//! Acumatica the Generic Inquiry that carries them — its name, key and version columns. The
//! receiver, `init` and the sync flows all read them from here.

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Entity {
    Items,
    Inventory,
    Prices,
    Shipments,
    Customers,
    Orders,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    ToMagento,
    ToAcumatica,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::ToMagento => "to_magento",
            Direction::ToAcumatica => "to_acumatica",
        }
    }
}

impl Entity {
    pub const ALL: [Entity; 6] = [
        Entity::Items,
        Entity::Inventory,
        Entity::Prices,
        Entity::Shipments,
        Entity::Customers,
        Entity::Orders,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Entity::Items => "items",
            Entity::Inventory => "inventory",
            Entity::Prices => "prices",
            Entity::Shipments => "shipments",
            Entity::Customers => "customers",
            Entity::Orders => "orders",
        }
    }

    pub fn parse(name: &str) -> Option<Entity> {
        Entity::ALL.into_iter().find(|e| e.name() == name)
    }

    pub fn direction(self) -> Direction {
        match self {
            Entity::Items | Entity::Inventory | Entity::Prices | Entity::Shipments => {
                Direction::ToMagento
            }
            Entity::Customers | Entity::Orders => Direction::ToAcumatica,
        }
    }

    /// Whether the entity is enabled in `[entities]`.
    pub fn enabled(self, config: &crate::config::EntitiesConfig) -> bool {
        match self {
            Entity::Items => config.items,
            Entity::Inventory => config.inventory,
            Entity::Prices => config.prices,
            Entity::Shipments => config.shipments,
            Entity::Customers => config.customers,
            Entity::Orders => config.orders,
        }
    }

    /// The Generic Inquiry that carries an Acumatica → Magento entity, named with the prefix
    /// so `init` finds its own objects (and only those) again.
    pub fn generic_inquiry(self, prefix: &str) -> Option<String> {
        (self.direction() == Direction::ToMagento).then(|| format!("{prefix}-{}", self.name()))
    }

    /// What makes two records one for Magento: the record's key, except for inventory, whose
    /// rows (item × warehouse, keyed `["ITEM","WAREHOUSE"]`) add up to one quantity per item —
    /// two warehouses of one item in flight at once could land the older sum last.
    pub fn conflict_key(self, natural_key: &str) -> std::borrow::Cow<'_, str> {
        if self != Entity::Inventory {
            return natural_key.into();
        }
        // The item, without parsing in the common case (no escapes in it).
        if let Some(rest) = natural_key.strip_prefix("[\"")
            && let Some(end) = rest.find('"')
            && !rest[..end].contains('\\')
        {
            return rest[..end].into();
        }
        match serde_json::from_str::<Vec<String>>(natural_key) {
            Ok(parts) if !parts.is_empty() => parts[0].clone().into(),
            _ => natural_key.into(),
        }
    }

    /// The GI columns that identify one record (one row per item × warehouse for inventory).
    pub fn key_columns(self) -> &'static [&'static str] {
        match self {
            Entity::Items | Entity::Prices => &["InventoryID"],
            Entity::Inventory => &["InventoryID", "WarehouseID"],
            Entity::Shipments => &["ShipmentNbr"],
            Entity::Customers => &["CustomerID"],
            Entity::Orders => &["OrderNbr"],
        }
    }

    /// Every column of the entity's Generic Inquiry: what its flow needs, so a delivery needs
    /// no extra read, plus the key and version columns.
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            Entity::Items => &[
                "InventoryID",
                "Description",
                "ItemStatus",
                "BaseWeight",
                "BasePrice",
                "LastModifiedDateTime",
            ],
            Entity::Prices => &["InventoryID", "BasePrice", "LastModifiedDateTime"],
            Entity::Inventory => &[
                "InventoryID",
                "WarehouseID",
                "QtyOnHand",
                "QtyAvailable",
                "LastModifiedDateTime",
            ],
            Entity::Shipments => &["ShipmentNbr", "Status", "ShipVia", "LastModifiedDateTime"],
            Entity::Customers | Entity::Orders => &[],
        }
    }

    /// The GI column holding the record's last-modified time: the version that orders the
    /// push path and the batch path against each other.
    pub fn version_column(self) -> &'static str {
        "LastModifiedDateTime"
    }

    /// The entity whose GI is named `query`, among the enabled Acumatica → Magento ones.
    pub fn from_generic_inquiry(query: &str, prefix: &str) -> Option<Entity> {
        Entity::ALL
            .into_iter()
            .find(|e| e.generic_inquiry(prefix).as_deref() == Some(query))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inventory_rows_of_one_item_conflict_whatever_the_warehouse() {
        let key = |parts: &[&str]| serde_json::to_string(parts).unwrap();
        for item in ["AB-1", "A\"B", "A\\B", "WH|1"] {
            let one = key(&[item, "MAIN"]);
            let two = key(&[item, "WEST"]);
            assert_eq!(Entity::Inventory.conflict_key(&one), item);
            assert_eq!(
                Entity::Inventory.conflict_key(&one),
                Entity::Inventory.conflict_key(&two)
            );
        }
        assert_ne!(
            Entity::Inventory.conflict_key(&key(&["A", "MAIN"])),
            Entity::Inventory.conflict_key(&key(&["B", "MAIN"]))
        );
        // Other entities: the record's key as it is.
        assert_eq!(Entity::Prices.conflict_key("[\"AB\"]"), "[\"AB\"]");
    }
}
