//! The tenant's starting data, the same for the same seed: stock items with quantities in two
//! warehouses, and a few customers.

use rand::RngExt;
use serde_json::{Value, json};

use super::data::Store;
use super::tables::Row;

pub const WAREHOUSES: &[&str] = &["WHOLESALE", "RETAIL"];

const ADJECTIVES: &[&str] = &[
    "Classic",
    "Compact",
    "Deluxe",
    "Eco",
    "Heavy-Duty",
    "Mini",
    "Pro",
    "Smart",
    "Travel",
    "Ultra",
];
const NOUNS: &[&str] = &[
    "Backpack",
    "Bottle",
    "Desk Lamp",
    "Headphones",
    "Kettle",
    "Mug",
    "Notebook",
    "Speaker",
    "Tent",
    "Umbrella",
];
const CUSTOMERS: &[(&str, &str, &str)] = &[
    ("ABCSTUDIOS", "ABC Studios Inc", "orders@abcstudios.example"),
    (
        "COFFEESHOP",
        "Coffee Shop on Main",
        "owner@coffeeshop.example",
    ),
    (
        "GOODFOOD",
        "Good Food One Restaurant",
        "purchasing@goodfood.example",
    ),
    ("WEBGUEST", "Web Store Guest", "guest@webstore.example"),
];

fn row(fields: &[(&str, Value)]) -> Row {
    fields
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

/// Fills `store` with `items` stock items and the customers, as one transaction.
pub fn seed(store: &mut Store, items: usize) {
    let mut changes = Vec::new();
    for n in 1..=items {
        let rng = store.rng();
        let adjective = ADJECTIVES[rng.random_range(0..ADJECTIVES.len())];
        let noun = NOUNS[rng.random_range(0..NOUNS.len())];
        let price = (rng.random_range(500..50_000) as f64) / 100.0;
        let weight = (rng.random_range(1..5_000) as f64) / 100.0;
        let quantities: Vec<f64> = WAREHOUSES
            .iter()
            .map(|_| rng.random_range(0..200) as f64)
            .collect();
        let item = format!("SB{n:05}");
        store.put_row(
            "InventoryItem",
            row(&[
                ("InventoryCD", json!(item)),
                ("Descr", json!(format!("{adjective} {noun}"))),
                ("ItemStatus", json!("AC")),
                ("ItemClassID", json!("STOCKITEM")),
                ("BasePrice", json!(price)),
                ("BaseWeight", json!(weight)),
            ]),
            &mut changes,
        );
        for (site, qty) in WAREHOUSES.iter().zip(quantities) {
            store.put_row(
                "INSiteStatus",
                row(&[
                    ("InventoryCD", json!(item)),
                    ("SiteCD", json!(site)),
                    ("QtyOnHand", json!(qty)),
                    ("QtyAvail", json!(qty)),
                ]),
                &mut changes,
            );
        }
    }
    for (id, name, email) in CUSTOMERS {
        store.put_row(
            "Customer",
            row(&[
                ("AcctCD", json!(id)),
                ("AcctName", json!(name)),
                ("Email", json!(email)),
                ("CustomerClassID", json!("DEFAULT")),
                ("Status", json!("A")),
            ]),
            &mut changes,
        );
    }
    store.commit(changes);
}
