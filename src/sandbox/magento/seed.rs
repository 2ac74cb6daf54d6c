//! The store's starting data, the same for the same seed: a catalogue of `items` simple
//! products plus one configurable family (a T-shirt in S and M), a few customers, and
//! `orders` orders — guests among them, one with the configurable product, the first three
//! sharing one `updated_at` (what a client paging on `updated_at` must cope with).

use std::collections::BTreeMap;

use chrono::{Duration, TimeZone, Utc};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::json;

use super::model::{
    Address, Customer, Data, LegacyStock, Order, OrderItem, Product, SourceItem, format_time,
    round2, slug,
};

const ADJECTIVES: &[&str] = &[
    "Classic", "Rugged", "Compact", "Deluxe", "Eco", "Urban", "Alpine", "Coastal", "Vintage",
    "Smart",
];
const NOUNS: &[&str] = &[
    "Backpack",
    "Lantern",
    "Kettle",
    "Notebook",
    "Umbrella",
    "Blender",
    "Headlamp",
    "Thermos",
    "Toolkit",
    "Tent",
    "Wallet",
    "Desk Lamp",
];
const FIRST_NAMES: &[&str] = &["Ava", "Liam", "Mia", "Noah", "Zoe", "Omar", "Ines", "Kenji"];
const LAST_NAMES: &[&str] = &[
    "Garcia", "Smith", "Okafor", "Tanaka", "Novak", "Rossi", "Dubois",
];
const CITIES: &[(&str, &str, &str, i64, &str)] = &[
    ("Austin", "Texas", "TX", 57, "78701"),
    ("Sacramento", "California", "CA", 12, "95814"),
    ("Portland", "Oregon", "OR", 49, "97201"),
    ("Buffalo", "New York", "NY", 43, "14201"),
];

/// The first moment of seeded history: fixed, so that a seed gives the same timestamps.
fn epoch() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 8, 0, 0).unwrap()
}

fn simple_product(id: i64, sku: &str, name: &str, price: f64, weight: f64, qty: f64) -> Product {
    let created = format_time(epoch() - Duration::days(30) + Duration::minutes(id));
    let mut global = BTreeMap::new();
    global.insert("name".to_string(), json!(name));
    global.insert("status".to_string(), json!(1));
    global.insert("visibility".to_string(), json!(4));
    global.insert(
        "url_key".to_string(),
        json!(format!("{}-{}", slug(name), slug(sku))),
    );
    global.insert(
        "description".to_string(),
        json!(format!("<p>{name}, from the sandbox catalogue.</p>")),
    );
    global.insert("tax_class_id".to_string(), json!("2"));
    Product {
        id,
        sku: sku.to_string(),
        type_id: "simple".into(),
        attribute_set_id: 4,
        price,
        weight: Some(weight),
        created_at: created.clone(),
        updated_at: created,
        website_ids: vec![1],
        global,
        store_view: BTreeMap::new(),
        stock: LegacyStock {
            item_id: id,
            qty,
            is_in_stock: qty > 0.0,
        },
        children: Vec::new(),
    }
}

fn address(rng: &mut StdRng, firstname: &str, lastname: &str) -> Address {
    let (city, region, code, region_id, postcode) = CITIES[rng.random_range(0..CITIES.len())];
    Address {
        firstname: firstname.into(),
        lastname: lastname.into(),
        street: vec![format!("{} Main Street", rng.random_range(1..999))],
        city: city.into(),
        region: region.into(),
        region_code: code.into(),
        region_id,
        postcode: postcode.into(),
        country_id: "US".into(),
        telephone: format!("555-01{:02}", rng.random_range(0..100)),
        company: None,
    }
}

pub fn seed(seed: u64, items: usize, orders: usize) -> Data {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x4D41_4745_4E54_4F32);
    let mut data = Data {
        sources: vec!["default".into(), "east".into()],
        ..Data::default()
    };

    for i in 0..items {
        let id = i as i64 + 1;
        let name = format!(
            "{} {}",
            ADJECTIVES[rng.random_range(0..ADJECTIVES.len())],
            NOUNS[rng.random_range(0..NOUNS.len())]
        );
        let sku = format!("SB-{:04}", i + 1);
        let price = rng.random_range(5..200) as f64 - 0.01;
        let weight = round2(rng.random::<f64>() * 5.0 + 0.1);
        let qty = rng.random_range(0..100) as f64;
        let product = simple_product(id, &sku, &name, price, weight, qty);
        data.source_items.push(SourceItem {
            sku: sku.clone(),
            source_code: "default".into(),
            quantity: qty,
            status: if qty > 0.0 { 1 } else { 0 },
        });
        data.products.insert(sku, product);
    }

    // The configurable family: a parent without stock of its own and two sized children.
    let base_id = items as i64 + 1;
    let mut parent = simple_product(base_id, "SB-TEE", "Sandbox Tee", 25.0, 0.3, 0.0);
    parent.type_id = "configurable".into();
    parent.weight = None;
    parent.stock.is_in_stock = true;
    parent.children = vec![base_id + 1, base_id + 2];
    for (offset, size) in [(1, "S"), (2, "M")] {
        let sku = format!("SB-TEE-{size}");
        let mut child = simple_product(
            base_id + offset,
            &sku,
            &format!("Sandbox Tee {size}"),
            25.0,
            0.3,
            40.0,
        );
        child.global.insert("visibility".into(), json!(1));
        data.source_items.push(SourceItem {
            sku: sku.clone(),
            source_code: "default".into(),
            quantity: 40.0,
            status: 1,
        });
        data.products.insert(sku, child);
    }
    data.products.insert("SB-TEE".into(), parent);
    data.next_product_id = base_id + 3;

    let customer_count = 3.max(orders / 2).min(20);
    for i in 0..customer_count {
        let id = i as i64 + 1;
        let firstname = FIRST_NAMES[rng.random_range(0..FIRST_NAMES.len())];
        let lastname = LAST_NAMES[rng.random_range(0..LAST_NAMES.len())];
        let created = format_time(epoch() - Duration::days(20) + Duration::hours(id));
        let address = address(&mut rng, firstname, lastname);
        data.customers.insert(
            id,
            Customer {
                id,
                email: format!(
                    "{}.{}{}@example.com",
                    firstname.to_lowercase(),
                    lastname.to_lowercase(),
                    id
                ),
                firstname: firstname.into(),
                lastname: lastname.into(),
                group_id: 1,
                created_at: created.clone(),
                updated_at: created,
                address,
            },
        );
    }

    let simple_skus: Vec<String> = data
        .products
        .values()
        .filter(|p| p.type_id == "simple" && p.sku.starts_with("SB-0"))
        .map(|p| p.sku.clone())
        .collect();
    let shared_updated_at = format_time(epoch() + Duration::hours(3));
    for i in 0..orders {
        let entity_id = i as i64 + 1;
        let created = epoch() + Duration::minutes(37 * i as i64);
        let updated = if i < 3 {
            shared_updated_at.clone()
        } else {
            format_time(created + Duration::minutes(5))
        };
        let guest = i % 3 == 1;
        let (customer_id, email, firstname, lastname, addr) = if guest {
            let f = FIRST_NAMES[rng.random_range(0..FIRST_NAMES.len())];
            let l = LAST_NAMES[rng.random_range(0..LAST_NAMES.len())];
            let a = address(&mut rng, f, l);
            (
                None,
                format!("guest{}@example.net", entity_id),
                f.to_string(),
                l.to_string(),
                a,
            )
        } else {
            let c = &data.customers[&((i as i64 % customer_count as i64) + 1)];
            (
                Some(c.id),
                c.email.clone(),
                c.firstname.clone(),
                c.lastname.clone(),
                c.address.clone(),
            )
        };
        let mut order = Order {
            entity_id,
            increment_id: format!("{:09}", entity_id),
            state: "new".into(),
            status: "pending".into(),
            created_at: format_time(created),
            updated_at: updated,
            customer_id,
            customer_email: email,
            customer_firstname: firstname,
            customer_lastname: lastname,
            customer_group_id: if guest { 0 } else { 1 },
            items: Vec::new(),
            billing: addr.clone(),
            shipping: addr,
            shipping_method: "flatrate_flatrate".into(),
            shipping_description: "Flat Rate - Fixed".into(),
            shipping_amount: 0.0,
            payment_method: ["checkmo", "banktransfer", "cashondelivery"][rng.random_range(0..3)]
                .into(),
            coupon_code: if i % 4 == 3 {
                Some("SAVE10".into())
            } else {
                None
            },
            status_history: Vec::new(),
        };
        let mut lines: Vec<(String, f64)> = Vec::new();
        if i == 2 || simple_skus.is_empty() {
            lines.push(("SB-TEE-M".into(), 2.0));
        }
        if !simple_skus.is_empty() {
            for _ in 0..rng.random_range(1..4) {
                let sku = simple_skus[rng.random_range(0..simple_skus.len())].clone();
                if !lines.iter().any(|(s, _)| *s == sku) {
                    lines.push((sku, rng.random_range(1..4) as f64));
                }
            }
        }
        for (sku, qty) in lines {
            add_line(&mut data, &mut order, &sku, qty);
        }
        order.shipping_amount = round2(5.0 * order.total_qty());
        apply_discount(&mut order);
        data.orders.insert(entity_id, order);
    }
    data.next_order_id = orders as i64 + 1;
    data
}

/// Tax the sandbox charges: 8.25 % to Texas, nothing elsewhere (one rule is enough to make
/// `tax_amount` non-trivial).
fn tax_percent(order: &Order) -> f64 {
    if order.shipping.region_code == "TX" {
        8.25
    } else {
        0.0
    }
}

/// Adds `qty` of `sku` to `order`: a configurable child gets its parent line first, with
/// the price on the parent and the child at zero, as Magento stores them.
pub fn add_line(data: &mut Data, order: &mut Order, sku: &str, qty: f64) -> bool {
    let Some(product) = data.products.get(sku).cloned() else {
        return false;
    };
    let tax = tax_percent(order);
    let next_item_id = |data: &mut Data| {
        data.next_order_item_id += 1;
        data.next_order_item_id
    };
    let parent = data
        .products
        .values()
        .find(|p| p.type_id == "configurable" && p.children.contains(&product.id))
        .cloned();
    if let Some(parent) = parent {
        let parent_item_id = next_item_id(data);
        let price = product.price;
        order.items.push(OrderItem {
            item_id: parent_item_id,
            product_id: parent.id,
            // Magento stores the child's SKU on the parent line of a configurable.
            sku: product.sku.clone(),
            name: parent.name(super::model::Scope::Global),
            product_type: "configurable".into(),
            parent_item_id: None,
            qty_ordered: qty,
            qty_shipped: 0.0,
            qty_canceled: 0.0,
            price,
            tax_percent: tax,
            tax_amount: round2(price * qty * tax / 100.0),
            discount_amount: 0.0,
            weight: product.weight.unwrap_or(0.0),
        });
        let child_item_id = next_item_id(data);
        order.items.push(OrderItem {
            item_id: child_item_id,
            product_id: product.id,
            sku: product.sku.clone(),
            name: product.name(super::model::Scope::Global),
            product_type: "simple".into(),
            parent_item_id: Some(parent_item_id),
            qty_ordered: qty,
            qty_shipped: 0.0,
            qty_canceled: 0.0,
            price: 0.0,
            tax_percent: 0.0,
            tax_amount: 0.0,
            discount_amount: 0.0,
            weight: product.weight.unwrap_or(0.0),
        });
    } else {
        let item_id = next_item_id(data);
        order.items.push(OrderItem {
            item_id,
            product_id: product.id,
            sku: product.sku.clone(),
            name: product.name(super::model::Scope::Global),
            product_type: product.type_id.clone(),
            parent_item_id: None,
            qty_ordered: qty,
            qty_shipped: 0.0,
            qty_canceled: 0.0,
            price: product.price,
            tax_percent: tax,
            tax_amount: round2(product.price * qty * tax / 100.0),
            discount_amount: 0.0,
            weight: product.weight.unwrap_or(0.0),
        });
    }
    true
}

/// A coupon takes 10 % off every priced line.
pub fn apply_discount(order: &mut Order) {
    if order.coupon_code.is_none() {
        return;
    }
    for item in order.items.iter_mut() {
        if item.parent_item_id.is_none() {
            item.discount_amount = round2(item.row_total() * 0.10);
        }
    }
}
