//! `customers`: a Magento customer → an Acumatica `Customer`. Found by email before one is
//! created, so a customer is never created twice; a new one's CustomerID comes from the
//! configured rule (prefix + Magento id; guests: guest prefix + a hash of the email, or one
//! configured guest customer). The orders flow uses [`ensure_customer`] to import an order's
//! customer first.

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};
use sha2::Digest;

use super::engine::{Context, Outcome, Progress, Record, payload_hash};
use crate::config::GuestMode;
use crate::entities::Entity;

/// One customer as the connector sends it to Acumatica.
#[derive(Clone, Debug)]
pub struct CustomerInput {
    /// The mapping key: the Magento customer id, or `guest:{email}`.
    pub key: String,
    /// The CustomerID a new customer gets.
    pub new_id: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    /// Billing (main) and shipping addresses, as Magento addresses.
    pub billing: Option<Value>,
    pub shipping: Option<Value>,
}

/// A Magento address (customer or order address) as an Acumatica `Address`.
pub fn address(a: &Value) -> Value {
    let street: Vec<String> = match a.get("street") {
        Some(Value::Array(lines)) => lines
            .iter()
            .filter_map(|l| l.as_str().map(String::from))
            .collect(),
        Some(Value::String(s)) => s.lines().map(String::from).collect(),
        _ => Vec::new(),
    };
    let region = a
        .get("region_code")
        .and_then(Value::as_str)
        .or_else(|| a.pointer("/region/region_code").and_then(Value::as_str))
        .unwrap_or_default();
    let mut out = json!({
        "AddressLine1": w(street.first().cloned().unwrap_or_default()),
        "City": w(str_of(a, "city")),
        "State": w(region),
        "PostalCode": w(str_of(a, "postcode")),
        "Country": w(str_of(a, "country_id")),
    });
    if let Some(line2) = street.get(1) {
        out["AddressLine2"] = w(line2.clone());
    }
    out
}

/// The customer's default billing / shipping address among its `addresses`.
fn default_address(row: &Value, flag: &str) -> Option<Value> {
    row.get("addresses")
        .and_then(Value::as_array)?
        .iter()
        .find(|a| a.get(flag).and_then(Value::as_bool) == Some(true))
        .cloned()
}

/// Wraps a value the contract-based way.
pub fn w(v: impl Into<Value>) -> Value {
    json!({ "value": v.into() })
}

/// An OData string literal inside a URL query: quotes doubled, then percent-encoded.
pub fn odata_literal(s: &str) -> String {
    let quoted = format!("'{}'", s.replace('\'', "''"));
    utf8_percent_encode(&quoted, NON_ALPHANUMERIC).to_string()
}

/// A wrapped field's value as text.
pub fn text(v: &Value, field: &str) -> Option<String> {
    let f = v.get(field)?;
    let inner = f.get("value").unwrap_or(f);
    match inner {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn str_of(v: &Value, field: &str) -> String {
    v.get(field)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// A registered Magento customer (a `customers/search` row) as a customer to send.
pub fn from_magento_customer(ctx: &Context<'_>, row: &Value) -> Option<CustomerInput> {
    let id = row.get("id").and_then(Value::as_i64)?;
    Some(CustomerInput {
        key: id.to_string(),
        new_id: format!("{}{id}", ctx.config.customers.id_prefix),
        email: str_of(row, "email"),
        first_name: str_of(row, "firstname"),
        last_name: str_of(row, "lastname"),
        billing: default_address(row, "default_billing"),
        shipping: default_address(row, "default_shipping"),
    })
}

/// The customer of an order: its registered customer, or the guest rule.
pub fn from_order(ctx: &Context<'_>, order: &Value) -> CustomerInput {
    let email = str_of(order, "customer_email");
    let guest = order
        .get("customer_is_guest")
        .and_then(|v| v.as_i64().or(v.as_bool().map(i64::from)))
        .unwrap_or(0)
        != 0;
    let first_name = str_of(order, "customer_firstname");
    let last_name = str_of(order, "customer_lastname");
    let billing = order.get("billing_address").cloned();
    let shipping = order
        .pointer("/extension_attributes/shipping_assignments/0/shipping/address")
        .cloned();
    match order.get("customer_id").and_then(Value::as_i64) {
        Some(id) if !guest => CustomerInput {
            key: id.to_string(),
            new_id: format!("{}{id}", ctx.config.customers.id_prefix),
            email,
            first_name,
            last_name,
            billing,
            shipping,
        },
        _ => {
            let digest = sha2::Sha256::digest(email.trim().to_lowercase().as_bytes());
            let hash: String = digest.iter().take(5).map(|b| format!("{b:02X}")).collect();
            CustomerInput {
                key: format!("guest:{}", email.trim().to_lowercase()),
                new_id: format!("{}{hash}", ctx.config.customers.guest_prefix),
                email,
                first_name,
                last_name,
                billing,
                shipping,
            }
        }
    }
}

fn customer_body(ctx: &Context<'_>, id: &str, c: &CustomerInput, create: bool) -> Value {
    let name = format!("{} {}", c.first_name, c.last_name)
        .trim()
        .to_string();
    let mut body = json!({
        "CustomerID": w(id),
        "CustomerName": w(if name.is_empty() { c.email.clone() } else { name }),
        "MainContact": {
            "Email": w(c.email.clone()),
            "FirstName": w(c.first_name.clone()),
            "LastName": w(c.last_name.clone()),
        },
    });
    if let Some(billing) = &c.billing {
        body["MainContact"]["Address"] = address(billing);
        if let Some(phone) = billing.get("telephone").and_then(Value::as_str) {
            body["MainContact"]["Phone1"] = w(phone);
        }
    }
    // A shipping address of its own overrides the main contact's (Acumatica's default).
    if let Some(shipping) = &c.shipping
        && c.billing.as_ref().map(address) != Some(address(shipping))
    {
        body["ShippingAddressOverride"] = w(true);
        body["ShippingContact"] = json!({ "Address": address(shipping) });
    }
    if create {
        body["CustomerClass"] = w(ctx.config.customers.customer_class.clone());
    }
    body
}

/// The Acumatica customer with this email, if any.
async fn find_by_email(ctx: &Context<'_>, email: &str) -> Result<Option<String>, String> {
    if email.trim().is_empty() {
        return Ok(None);
    }
    let path = format!(
        "/Customer?$filter=Email%20eq%20{}&$select=CustomerID",
        odata_literal(email.trim())
    );
    let found = ctx
        .acumatica
        .get(&path)
        .await
        .map_err(|e| format!("looking up the customer by email: {e}"))?;
    Ok(found
        .as_array()
        .and_then(|rows| rows.first())
        .and_then(|r| text(r, "CustomerID")))
}

/// Finds or creates the customer; returns its CustomerID and the hash of what was sent.
/// `known`: the CustomerID the mapping already has.
async fn upsert(
    ctx: &Context<'_>,
    c: &CustomerInput,
    known: Option<String>,
) -> Result<(String, String), String> {
    let (id, create) = match known {
        Some(id) => (id, false),
        None => match find_by_email(ctx, &c.email).await? {
            Some(id) => (id, false),
            None => (c.new_id.clone(), true),
        },
    };
    let body = customer_body(ctx, &id, c, create);
    let hash = payload_hash(&body);
    if !ctx.dry_run {
        ctx.acumatica
            .put("/Customer", &body, None)
            .await
            .map_err(|e| format!("writing customer {id}: {e}"))?;
    }
    Ok((id, hash))
}

/// The CustomerID of an order's customer, importing the customer first when it is missing
/// (and recording its mapping, so the customers flow updates it rather than creating one).
pub async fn ensure_customer(ctx: &Context<'_>, order: &Value) -> Result<String, String> {
    if ctx.config.customers.guests == GuestMode::Customer
        && from_order(ctx, order).key.starts_with("guest:")
        && let Some(id) = &ctx.config.customers.guest_customer_id
    {
        return Ok(id.clone());
    }
    let c = from_order(ctx, order);
    let mapped = ctx
        .store(|s| s.mapping(Entity::Customers.name(), &c.key))
        .map_err(|e| e.to_string())?;
    if let Some(m) = mapped.filter(|m| !m.target_key.is_empty()) {
        return Ok(m.target_key);
    }
    let (id, _) = upsert(ctx, &c, None).await?;
    let taken = ctx
        .store(|s| s.mapping_by_target(Entity::Customers.name(), &id))
        .map_err(|e| e.to_string())?
        .is_some();
    // One Acumatica customer may serve several Magento keys (a guest and an account with one
    // email): only the first is mapped (the mapping is one-to-one).
    if !ctx.dry_run && !taken {
        ctx.store(|s| s.save_line_mappings(Entity::Customers.name(), &c.key, &id, "{}"))
            .map_err(|e| e.to_string())?;
    }
    Ok(id)
}

pub async fn deliver(
    ctx: &Context<'_>,
    records: Vec<Record>,
    progress: &dyn Progress,
) -> Vec<(Record, Outcome)> {
    let mut out = Vec::with_capacity(records.len());
    for record in records {
        let outcome = match from_magento_customer(ctx, &record.row) {
            None => Outcome::Failed("the Magento customer row has no id".into()),
            Some(c) => {
                let known = record
                    .mapping
                    .as_ref()
                    .map(|m| m.target_key.clone())
                    .filter(|k| !k.is_empty());
                let unchanged =
                    known
                        .as_ref()
                        .zip(record.mapping.as_ref())
                        .is_some_and(|(id, m)| {
                            m.payload_hash.as_deref()
                                == Some(payload_hash(&customer_body(ctx, id, &c, false)).as_str())
                        });
                if unchanged {
                    Outcome::Skipped("unchanged".into())
                } else {
                    match upsert(ctx, &c, known).await {
                        Ok((id, _))
                            if ctx
                                .store(|s| s.mapping_by_target(Entity::Customers.name(), &id))
                                .ok()
                                .flatten()
                                .is_some_and(|(other, _)| other != record.key) =>
                        {
                            Outcome::Skipped(format!(
                                "Acumatica customer {id} (same email) is already mapped to another Magento customer"
                            ))
                        }
                        Ok((id, _)) => Outcome::Delivered {
                            // The hash of the update body, so an unchanged customer is
                            // recognised next time whichever way it was created.
                            hash: payload_hash(&customer_body(ctx, &id, &c, false)),
                            target_key: id,
                            source_key: None,
                        },
                        Err(e) => Outcome::Failed(e),
                    }
                }
            }
        };
        progress.advance(Entity::Customers, 1);
        out.push((record, outcome));
    }
    out
}
