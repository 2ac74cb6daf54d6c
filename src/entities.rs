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
