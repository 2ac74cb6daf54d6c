//! The simulated store's records and how Magento renders them.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use serde_json::{Map, Value, json};

/// Magento's `Y-m-d H:i:s` in UTC.
pub const TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

pub fn format_time(t: DateTime<Utc>) -> String {
    t.format(TIME_FORMAT).to_string()
}

pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(s, TIME_FORMAT)
        .ok()
        .map(|n| n.and_utc())
}

/// A timestamp for a change to a record last changed at `previous`: now, but always later
/// than `previous` so that a change is visible to a client reading on `updated_at` even
/// within one second (Magento's column has second resolution).
pub fn bumped(previous: &str) -> String {
    bumped_from(previous, &format_time(Utc::now()))
}

/// [`bumped`] with `now` already formatted: a request changing many records formats the
/// time once.
pub fn bumped_from(previous: &str, now: &str) -> String {
    if now > previous {
        return now.to_string();
    }
    match parse_time(previous) {
        Some(prev) => format_time(prev + Duration::seconds(1)),
        None => now.to_string(),
    }
}

/// Which scope a request went through: `/rest/default/V1` (store view 1) or `/rest/all/V1`
/// (the admin store, id 0: global values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    StoreView,
    Global,
}

/// Product attributes whose value can differ per store view (`is_global` = store view in
/// the default attribute set); everything else is global or website-wide and a save through
/// a store view writes it globally.
pub const STORE_VIEW_ATTRIBUTES: &[&str] = &[
    "name",
    "status",
    "visibility",
    "url_key",
    "description",
    "short_description",
    "meta_title",
    "meta_keyword",
    "meta_description",
];

#[derive(Clone, Debug)]
pub struct LegacyStock {
    pub item_id: i64,
    pub qty: f64,
    pub is_in_stock: bool,
}

#[derive(Clone, Debug)]
pub struct Product {
    pub id: i64,
    pub sku: String,
    pub type_id: String,
    pub attribute_set_id: i64,
    pub price: f64,
    pub weight: Option<f64>,
    pub created_at: String,
    pub updated_at: String,
    pub website_ids: Vec<i64>,
    /// Attribute values at store 0 (name, status, visibility, url_key, description, …).
    pub global: BTreeMap<String, Value>,
    /// Values set for store view 1 (`default`) that override the global ones there.
    pub store_view: BTreeMap<String, Value>,
    pub stock: LegacyStock,
    /// For a configurable product: its children's product ids.
    pub children: Vec<i64>,
}

impl Product {
    pub fn value(&self, scope: Scope, code: &str) -> Option<&Value> {
        if scope == Scope::StoreView
            && let Some(v) = self.store_view.get(code)
        {
            return Some(v);
        }
        self.global.get(code)
    }

    pub fn name(&self, scope: Scope) -> String {
        self.value(scope, "name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    }

    pub fn stock_item_json(&self) -> Value {
        json!({
            "item_id": self.stock.item_id,
            "product_id": self.id,
            "stock_id": 1,
            "qty": self.stock.qty,
            "is_in_stock": self.stock.is_in_stock,
            "is_qty_decimal": false,
            "show_default_notification_message": false,
            "use_config_min_qty": true,
            "min_qty": 0,
            "use_config_min_sale_qty": 1,
            "min_sale_qty": 1,
            "use_config_max_sale_qty": true,
            "max_sale_qty": 10000,
            "use_config_backorders": true,
            "backorders": 0,
            "use_config_notify_stock_qty": true,
            "notify_stock_qty": 1,
            "use_config_qty_increments": true,
            "qty_increments": 0,
            "use_config_enable_qty_inc": true,
            "enable_qty_increments": false,
            "use_config_manage_stock": true,
            "manage_stock": true,
            "low_stock_date": null,
            "is_decimal_divided": false,
            "stock_status_changed_auto": 0
        })
    }

    /// `catalog-data-product-interface` as seen through `scope`.
    pub fn to_json(&self, scope: Scope) -> Value {
        let mut merged: BTreeMap<String, Value> = self.global.clone();
        if scope == Scope::StoreView {
            for (k, v) in &self.store_view {
                merged.insert(k.clone(), v.clone());
            }
        }
        let mut out = Map::new();
        out.insert("id".into(), json!(self.id));
        out.insert("sku".into(), json!(self.sku));
        out.insert(
            "name".into(),
            merged
                .remove("name")
                .unwrap_or(Value::String(String::new())),
        );
        out.insert("attribute_set_id".into(), json!(self.attribute_set_id));
        out.insert("price".into(), json!(self.price));
        out.insert("status".into(), merged.remove("status").unwrap_or(json!(1)));
        out.insert(
            "visibility".into(),
            merged.remove("visibility").unwrap_or(json!(4)),
        );
        out.insert("type_id".into(), json!(self.type_id));
        out.insert("created_at".into(), json!(self.created_at));
        out.insert("updated_at".into(), json!(self.updated_at));
        if let Some(w) = self.weight {
            out.insert("weight".into(), json!(w));
        }
        let mut ext = Map::new();
        ext.insert("website_ids".into(), json!(self.website_ids));
        ext.insert("category_links".into(), json!([]));
        ext.insert("stock_item".into(), self.stock_item_json());
        if self.type_id == "configurable" {
            ext.insert("configurable_product_links".into(), json!(self.children));
        }
        out.insert("extension_attributes".into(), Value::Object(ext));
        out.insert("product_links".into(), json!([]));
        out.insert("options".into(), json!([]));
        out.insert("media_gallery_entries".into(), json!([]));
        out.insert("tier_prices".into(), json!([]));
        let custom: Vec<Value> = merged
            .into_iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(code, v)| {
                let value = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                json!({"attribute_code": code, "value": value})
            })
            .collect();
        out.insert("custom_attributes".into(), Value::Array(custom));
        Value::Object(out)
    }
}

#[derive(Clone, Debug)]
pub struct SourceItem {
    pub sku: String,
    pub source_code: String,
    pub quantity: f64,
    pub status: i64,
}

impl SourceItem {
    pub fn to_json(&self) -> Value {
        json!({
            "sku": self.sku,
            "source_code": self.source_code,
            "quantity": self.quantity,
            "status": self.status,
        })
    }
}

#[derive(Clone, Debug)]
pub struct Address {
    pub firstname: String,
    pub lastname: String,
    pub street: Vec<String>,
    pub city: String,
    pub region: String,
    pub region_code: String,
    pub region_id: i64,
    pub postcode: String,
    pub country_id: String,
    pub telephone: String,
    pub company: Option<String>,
}

impl Address {
    /// `sales-data-order-address-interface`.
    pub fn order_json(
        &self,
        entity_id: i64,
        parent_id: i64,
        address_type: &str,
        email: &str,
        customer_id: Option<i64>,
    ) -> Value {
        let mut v = json!({
            "address_type": address_type,
            "city": self.city,
            "country_id": self.country_id,
            "email": email,
            "entity_id": entity_id,
            "firstname": self.firstname,
            "lastname": self.lastname,
            "parent_id": parent_id,
            "postcode": self.postcode,
            "region": self.region,
            "region_code": self.region_code,
            "region_id": self.region_id,
            "street": self.street,
            "telephone": self.telephone,
        });
        if let Some(company) = &self.company {
            v["company"] = json!(company);
        }
        if let Some(id) = customer_id {
            v["customer_id"] = json!(id);
        }
        v
    }
}

#[derive(Clone, Debug)]
pub struct Customer {
    pub id: i64,
    pub email: String,
    pub firstname: String,
    pub lastname: String,
    pub group_id: i64,
    pub created_at: String,
    pub updated_at: String,
    pub address: Address,
}

impl Customer {
    /// `customer-data-customer-interface`.
    pub fn to_json(&self) -> Value {
        let address_id = self.id * 10;
        json!({
            "id": self.id,
            "group_id": self.group_id,
            "default_billing": address_id.to_string(),
            "default_shipping": address_id.to_string(),
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "created_in": "Default Store View",
            "email": self.email,
            "firstname": self.firstname,
            "lastname": self.lastname,
            "store_id": 1,
            "website_id": 1,
            "addresses": [{
                "id": address_id,
                "customer_id": self.id,
                "region": {
                    "region_code": self.address.region_code,
                    "region": self.address.region,
                    "region_id": self.address.region_id,
                },
                "region_id": self.address.region_id,
                "country_id": self.address.country_id,
                "street": self.address.street,
                "telephone": self.address.telephone,
                "postcode": self.address.postcode,
                "city": self.address.city,
                "firstname": self.address.firstname,
                "lastname": self.address.lastname,
                "default_shipping": true,
                "default_billing": true,
            }],
            "disable_auto_group_change": 0,
            "extension_attributes": {"is_subscribed": false},
        })
    }
}

#[derive(Clone, Debug)]
pub struct OrderItem {
    pub item_id: i64,
    pub product_id: i64,
    pub sku: String,
    pub name: String,
    pub product_type: String,
    pub parent_item_id: Option<i64>,
    pub qty_ordered: f64,
    pub qty_shipped: f64,
    pub qty_canceled: f64,
    pub price: f64,
    pub tax_percent: f64,
    pub tax_amount: f64,
    pub discount_amount: f64,
    pub weight: f64,
}

impl OrderItem {
    pub fn row_total(&self) -> f64 {
        round2(self.price * self.qty_ordered)
    }

    /// What is still to ship: a child of a configurable ships through its parent.
    pub fn qty_to_ship(&self) -> f64 {
        (self.qty_ordered - self.qty_shipped - self.qty_canceled).max(0.0)
    }

    pub fn to_json(&self, order: &Order) -> Value {
        let mut v = json!({
            "amount_refunded": 0,
            "base_amount_refunded": 0,
            "base_discount_amount": self.discount_amount,
            "base_original_price": self.price,
            "base_price": self.price,
            "base_price_incl_tax": round2(self.price * (1.0 + self.tax_percent / 100.0)),
            "base_row_total": self.row_total(),
            "base_row_total_incl_tax": round2(self.row_total() + self.tax_amount),
            "base_tax_amount": self.tax_amount,
            "created_at": order.created_at,
            "discount_amount": self.discount_amount,
            "discount_percent": 0,
            "free_shipping": 0,
            "is_qty_decimal": 0,
            "is_virtual": 0,
            "item_id": self.item_id,
            "name": self.name,
            "no_discount": 0,
            "order_id": order.entity_id,
            "original_price": self.price,
            "price": self.price,
            "price_incl_tax": round2(self.price * (1.0 + self.tax_percent / 100.0)),
            "product_id": self.product_id,
            "product_type": self.product_type,
            "qty_canceled": self.qty_canceled,
            "qty_invoiced": 0,
            "qty_ordered": self.qty_ordered,
            "qty_refunded": 0,
            "qty_shipped": self.qty_shipped,
            "row_total": self.row_total(),
            "row_total_incl_tax": round2(self.row_total() + self.tax_amount),
            "row_weight": round2(self.weight * self.qty_ordered),
            "sku": self.sku,
            "store_id": 1,
            "tax_amount": self.tax_amount,
            "tax_percent": self.tax_percent,
            "updated_at": order.updated_at,
            "weight": self.weight,
        });
        if let Some(parent) = self.parent_item_id {
            v["parent_item_id"] = json!(parent);
            if let Some(p) = order.items.iter().find(|i| i.item_id == parent) {
                // Magento nests the parent item inside the child it returns.
                let mut parent_json = p.to_json(order);
                if let Some(obj) = parent_json.as_object_mut() {
                    obj.remove("parent_item");
                }
                v["parent_item"] = parent_json;
            }
        }
        v
    }
}

#[derive(Clone, Debug)]
pub struct Order {
    pub entity_id: i64,
    pub increment_id: String,
    pub state: String,
    pub status: String,
    pub created_at: String,
    pub updated_at: String,
    pub customer_id: Option<i64>,
    pub customer_email: String,
    pub customer_firstname: String,
    pub customer_lastname: String,
    pub customer_group_id: i64,
    pub items: Vec<OrderItem>,
    pub billing: Address,
    pub shipping: Address,
    pub shipping_method: String,
    pub shipping_description: String,
    pub shipping_amount: f64,
    pub payment_method: String,
    pub coupon_code: Option<String>,
    pub status_history: Vec<(String, String)>,
}

/// A URL key from a name, as Magento's `Product\Url::formatUrlKey` makes one (ASCII only).
pub fn slug(s: &str) -> String {
    s.to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .split('-')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

impl Order {
    pub fn subtotal(&self) -> f64 {
        round2(
            self.items
                .iter()
                .filter(|i| i.parent_item_id.is_none())
                .map(OrderItem::row_total)
                .sum(),
        )
    }

    pub fn tax_amount(&self) -> f64 {
        round2(self.items.iter().map(|i| i.tax_amount).sum())
    }

    /// Discounts are negative in Magento's order totals.
    pub fn discount_amount(&self) -> f64 {
        -round2(self.items.iter().map(|i| i.discount_amount).sum())
    }

    pub fn grand_total(&self) -> f64 {
        round2(self.subtotal() + self.tax_amount() + self.discount_amount() + self.shipping_amount)
    }

    pub fn total_qty(&self) -> f64 {
        self.items
            .iter()
            .filter(|i| i.parent_item_id.is_none())
            .map(|i| i.qty_ordered)
            .sum()
    }

    pub fn is_guest(&self) -> bool {
        self.customer_id.is_none()
    }

    /// `sales-data-order-interface`.
    pub fn to_json(&self) -> Value {
        let items: Vec<Value> = self.items.iter().map(|i| i.to_json(self)).collect();
        let billing_id = self.entity_id * 2 - 1;
        let shipping_id = self.entity_id * 2;
        let grand_total = self.grand_total();
        let mut v = json!({
            "applied_rule_ids": if self.coupon_code.is_some() { "1" } else { "" },
            "base_currency_code": "USD",
            "base_discount_amount": self.discount_amount(),
            "base_grand_total": grand_total,
            "base_shipping_amount": self.shipping_amount,
            "base_shipping_incl_tax": self.shipping_amount,
            "base_shipping_tax_amount": 0,
            "base_subtotal": self.subtotal(),
            "base_subtotal_incl_tax": round2(self.subtotal() + self.tax_amount()),
            "base_tax_amount": self.tax_amount(),
            "base_total_due": grand_total,
            "base_to_global_rate": 1,
            "base_to_order_rate": 1,
            "billing_address_id": billing_id,
            "created_at": self.created_at,
            "customer_email": self.customer_email,
            "customer_firstname": self.customer_firstname,
            "customer_group_id": self.customer_group_id,
            "customer_is_guest": if self.is_guest() { 1 } else { 0 },
            "customer_lastname": self.customer_lastname,
            "customer_note_notify": 1,
        });
        let middle = json!({
            "discount_amount": self.discount_amount(),
            "email_sent": 1,
            "entity_id": self.entity_id,
            "global_currency_code": "USD",
            "grand_total": grand_total,
            "increment_id": self.increment_id,
            "is_virtual": 0,
            "order_currency_code": "USD",
            "protect_code": format!("{:06x}", self.entity_id * 7919),
            "quote_id": self.entity_id + 1000,
            "remote_ip": "127.0.0.1",
            "shipping_amount": self.shipping_amount,
            "shipping_description": self.shipping_description,
            "shipping_discount_amount": 0,
            "shipping_incl_tax": self.shipping_amount,
            "shipping_tax_amount": 0,
            "state": self.state,
            "status": self.status,
            "store_currency_code": "USD",
            "store_id": 1,
            "store_name": "Main Website\nMain Website Store\nDefault Store View",
            "store_to_base_rate": 0,
            "store_to_order_rate": 0,
            "subtotal": self.subtotal(),
            "subtotal_incl_tax": round2(self.subtotal() + self.tax_amount()),
            "tax_amount": self.tax_amount(),
            "total_due": grand_total,
            "total_item_count": self.items.len(),
            "total_qty_ordered": self.total_qty(),
            "updated_at": self.updated_at,
            "weight": round2(self.items.iter().filter(|i| i.parent_item_id.is_none()).map(|i| i.weight * i.qty_ordered).sum()),
        });
        let rest = json!({
            "items": items,
            "billing_address": self.billing.order_json(billing_id, self.entity_id, "billing", &self.customer_email, self.customer_id),
            "payment": {
                "account_status": null,
                "additional_information": [self.payment_title()],
                "amount_ordered": grand_total,
                "base_amount_ordered": grand_total,
                "base_shipping_amount": self.shipping_amount,
                "cc_last4": null,
                "entity_id": self.entity_id,
                "method": self.payment_method,
                "parent_id": self.entity_id,
                "shipping_amount": self.shipping_amount,
            },
            "status_histories": self.status_history.iter().enumerate().map(|(i, (comment, status))| json!({
                "comment": comment,
                "created_at": self.updated_at,
                "entity_id": self.entity_id * 100 + i as i64,
                "entity_name": "order",
                "is_customer_notified": 0,
                "is_visible_on_front": 0,
                "parent_id": self.entity_id,
                "status": status,
            })).collect::<Vec<_>>(),
            "extension_attributes": {
                "shipping_assignments": [{
                    "shipping": {
                        "address": self.shipping.order_json(shipping_id, self.entity_id, "shipping", &self.customer_email, self.customer_id),
                        "method": self.shipping_method,
                        "total": {
                            "base_shipping_amount": self.shipping_amount,
                            "base_shipping_discount_amount": 0,
                            "base_shipping_incl_tax": self.shipping_amount,
                            "base_shipping_tax_amount": 0,
                            "shipping_amount": self.shipping_amount,
                            "shipping_discount_amount": 0,
                            "shipping_discount_tax_compensation_amount": 0,
                            "shipping_incl_tax": self.shipping_amount,
                            "shipping_tax_amount": 0,
                        }
                    },
                    "items": self.items.iter().map(|i| i.to_json(self)).collect::<Vec<_>>(),
                }],
                "applied_taxes": [],
                "item_applied_taxes": [],
                "converting_from_quote": false,
            },
        });
        for more in [middle, rest] {
            if let (Some(obj), Value::Object(more)) = (v.as_object_mut(), more) {
                obj.extend(more);
            }
        }
        if let Some(id) = self.customer_id {
            v["customer_id"] = json!(id);
        }
        if let Some(code) = &self.coupon_code {
            v["coupon_code"] = json!(code);
            v["discount_description"] = json!(code);
        }
        v
    }

    fn payment_title(&self) -> &'static str {
        match self.payment_method.as_str() {
            "checkmo" => "Check / Money order",
            "banktransfer" => "Bank Transfer Payment",
            "cashondelivery" => "Cash On Delivery",
            _ => "Credit Card",
        }
    }
}

#[derive(Clone, Debug)]
pub struct ShipmentItem {
    pub entity_id: i64,
    pub order_item_id: i64,
    pub qty: f64,
    pub sku: String,
    pub name: String,
    pub price: f64,
    pub product_id: i64,
    pub weight: f64,
}

#[derive(Clone, Debug)]
pub struct Track {
    pub entity_id: i64,
    pub track_number: String,
    pub title: String,
    pub carrier_code: String,
}

#[derive(Clone, Debug)]
pub struct Comment {
    pub entity_id: i64,
    pub comment: String,
    pub is_visible_on_front: i64,
}

#[derive(Clone, Debug)]
pub struct Shipment {
    pub entity_id: i64,
    pub increment_id: String,
    pub order_id: i64,
    pub customer_id: Option<i64>,
    pub created_at: String,
    pub updated_at: String,
    pub items: Vec<ShipmentItem>,
    pub tracks: Vec<Track>,
    pub comments: Vec<Comment>,
}

impl Shipment {
    /// `sales-data-shipment-interface`.
    pub fn to_json(&self) -> Value {
        let total_qty: f64 = self.items.iter().map(|i| i.qty).sum();
        let mut v = json!({
            "billing_address_id": self.order_id * 2 - 1,
            "created_at": self.created_at,
            "email_sent": 0,
            "entity_id": self.entity_id,
            "increment_id": self.increment_id,
            "order_id": self.order_id,
            "packages": [],
            "shipping_address_id": self.order_id * 2,
            "store_id": 1,
            "total_qty": total_qty,
            "updated_at": self.updated_at,
            "items": self.items.iter().map(|i| json!({
                "entity_id": i.entity_id,
                "name": i.name,
                "parent_id": self.entity_id,
                "price": i.price,
                "product_id": i.product_id,
                "sku": i.sku,
                "weight": i.weight,
                "order_item_id": i.order_item_id,
                "qty": i.qty,
            })).collect::<Vec<_>>(),
            "tracks": self.tracks.iter().map(|t| json!({
                "order_id": self.order_id,
                "created_at": self.created_at,
                "entity_id": t.entity_id,
                "parent_id": self.entity_id,
                "updated_at": self.updated_at,
                "weight": 0,
                "qty": 0,
                "description": "",
                "track_number": t.track_number,
                "title": t.title,
                "carrier_code": t.carrier_code,
            })).collect::<Vec<_>>(),
            "comments": self.comments.iter().map(|c| json!({
                "is_customer_notified": 0,
                "parent_id": self.entity_id,
                "comment": c.comment,
                "is_visible_on_front": c.is_visible_on_front,
                "created_at": self.created_at,
                "entity_id": c.entity_id,
            })).collect::<Vec<_>>(),
        });
        if let Some(id) = self.customer_id {
            v["customer_id"] = json!(id);
        }
        v
    }
}

/// URL key (scope 0 store view, 1 global) → the SKUs holding it.
pub type UrlKeyIndex = std::collections::HashMap<(u8, String), Vec<String>>;

/// Everything the simulated store holds.
#[derive(Clone, Debug, Default)]
pub struct Data {
    pub products: BTreeMap<String, Product>,
    pub source_items: Vec<SourceItem>,
    /// Where each (sku, source code) is in `source_items`; rebuilt when rows were pushed
    /// without it (the seed). A linear search per saved item made a batch of MSI source
    /// items cost O(catalogue) per item.
    pub source_index: std::collections::HashMap<(String, String), usize>,
    /// URL key → SKUs holding it, per scope (0 store view, 1 global), and the product count
    /// it was built at: rebuilt when products were added some other way, or dropped (`None`)
    /// by an admin edit. A save checked uniqueness by scanning every product before.
    pub url_key_index: Option<(usize, UrlKeyIndex)>,
    pub sources: Vec<String>,
    pub customers: BTreeMap<i64, Customer>,
    pub orders: BTreeMap<i64, Order>,
    pub shipments: BTreeMap<i64, Shipment>,
    pub next_product_id: i64,
    pub next_order_id: i64,
    pub next_order_item_id: i64,
    pub next_shipment_id: i64,
    pub next_child_id: i64,
}

impl Data {
    /// Sets the quantity of `sku` at `source_code`, adding the row if needed.
    pub fn set_source_item(&mut self, item: SourceItem) {
        if self.source_index.len() != self.source_items.len() {
            self.source_index.clear();
            for (i, s) in self.source_items.iter().enumerate() {
                self.source_index
                    .entry((s.sku.clone(), s.source_code.clone()))
                    .or_insert(i);
            }
        }
        let key = (item.sku.clone(), item.source_code.clone());
        match self.source_index.get(&key) {
            Some(&i) => self.source_items[i] = item,
            None => {
                self.source_index.insert(key, self.source_items.len());
                self.source_items.push(item);
            }
        }
    }

    pub fn next_child(&mut self) -> i64 {
        self.next_child_id += 1;
        self.next_child_id
    }
}
