//! `connector.toml`: the schema, secrets from the environment, and validation.
//!
//! Every mistake becomes one [`ConfigError`]: the file, the line where TOML knows it, the key,
//! and what to do. Secrets are [`Secret`]s and never print.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::secret::Secret;

/// The config file used when neither `--config` nor `$CONNECTOR_CONFIG` names one.
pub const DEFAULT_CONFIG_FILE: &str = "connector.toml";

/// A configuration mistake: exit 2, one line.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        write!(f, ": ")?;
        if let Some(key) = &self.key {
            write!(f, "`{key}`: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

#[derive(Debug, Clone)]
pub struct Config {
    /// The file this configuration was read from.
    pub file: PathBuf,
    pub store: StoreConfig,
    pub acumatica: AcumaticaConfig,
    pub magento: MagentoConfig,
    pub receiver: ReceiverConfig,
    pub sync: SyncConfig,
    pub entities: EntitiesConfig,
    pub items: ItemsConfig,
    pub inventory: InventoryConfig,
    pub orders: OrdersConfig,
    pub customers: CustomersConfig,
    pub shipments: ShipmentsConfig,
}

/// How Magento's taxes reach the Acumatica order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaxMode {
    /// Acumatica's automatic calculation switched off; Magento's tax carried as one tax line.
    Carry,
    /// Acumatica calculates with a tax zone; the total may then differ from Magento's.
    TaxZone,
}

/// `[orders]`: how a Magento order becomes an Acumatica sales order.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OrdersConfig {
    /// Acumatica order type of imported orders.
    pub order_type: String,
    /// Magento order statuses imported (a cancellation of an imported order is always read).
    pub statuses: Vec<String>,
    /// Magento store ids whose orders are imported; empty: all.
    pub store_ids: Vec<u32>,
    /// Orders younger than this are left for a later run (unpaid orders not imported too early).
    pub order_import_delay_seconds: u64,
    /// Magento payment method code -> Acumatica PaymentMethod; unmapped methods send none.
    pub payment_methods: std::collections::BTreeMap<String, String>,
    /// "carry" (Magento's tax on the order, automatic calculation off) or "tax_zone".
    pub tax_mode: TaxMode,
    /// The Acumatica tax id the carried tax is booked on.
    pub tax_id: String,
    /// The tax zone, with tax_mode = "tax_zone".
    pub tax_zone: Option<String>,
    /// searchCriteria pageSize of the Magento reads (at most 300).
    pub page_size: u32,
}

impl Default for OrdersConfig {
    fn default() -> Self {
        OrdersConfig {
            order_type: "SO".into(),
            statuses: vec!["pending".into(), "processing".into()],
            store_ids: Vec::new(),
            order_import_delay_seconds: 0,
            payment_methods: Default::default(),
            tax_mode: TaxMode::Carry,
            tax_id: "MAGENTOTAX".into(),
            tax_zone: None,
            page_size: 300,
        }
    }
}

/// Guest orders: one configured customer, or one customer per email.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GuestMode {
    Customer,
    PerEmail,
}

/// `[customers]`: how a Magento customer becomes an Acumatica customer.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CustomersConfig {
    /// Customer class of new customers.
    pub customer_class: String,
    /// CustomerID of a new customer: this prefix + the Magento customer id.
    pub id_prefix: String,
    /// "per_email" (a customer per guest email, CustomerID guest_prefix + a hash) or
    /// "customer" (every guest order on `guest_customer_id`).
    pub guests: GuestMode,
    pub guest_prefix: String,
    pub guest_customer_id: Option<String>,
}

impl Default for CustomersConfig {
    fn default() -> Self {
        CustomersConfig {
            customer_class: "DEFAULT".into(),
            id_prefix: "MAG".into(),
            guests: GuestMode::PerEmail,
            guest_prefix: "MAGG".into(),
            guest_customer_id: None,
        }
    }
}

/// `[shipments]`: how an Acumatica shipment becomes a Magento shipment.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShipmentsConfig {
    /// Acumatica ShipVia -> Magento carrier code; unmapped: `default_carrier`.
    pub ship_via: std::collections::BTreeMap<String, String>,
    pub default_carrier: String,
}

impl Default for ShipmentsConfig {
    fn default() -> Self {
        ShipmentsConfig {
            ship_via: Default::default(),
            default_carrier: "custom".into(),
        }
    }
}

/// `[items]`: how a stock item becomes a Magento product.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ItemsConfig {
    /// Attribute set of new products (4 is Magento's "Default").
    pub attribute_set_id: u32,
    /// Websites new products are assigned to.
    pub website_ids: Vec<u32>,
    /// Visibility of new products: 1 not visible, 2 catalog, 3 search, 4 catalog and search.
    pub visibility: u32,
    /// Fields written on create only, so merchandisers' edits in Magento survive:
    /// any of "name", "description", "weight".
    pub create_only: Vec<String>,
}

impl Default for ItemsConfig {
    fn default() -> Self {
        ItemsConfig {
            attribute_set_id: 4,
            website_ids: vec![1],
            visibility: 4,
            create_only: vec!["name".into(), "description".into()],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuantityKind {
    OnHand,
    Available,
}

/// `[inventory]`: which warehouses count and which quantity is sent.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InventoryConfig {
    /// Acumatica warehouses whose quantities are summed; empty: all.
    pub warehouses: Vec<String>,
    /// "on_hand" or "available"; default: on_hand for MSI (Magento's reservations already
    /// subtract open orders), available for legacy stock.
    pub quantity: Option<QuantityKind>,
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Resolved against the config file's folder.
    pub path: PathBuf,
    pub retention_days: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AcumaticaAuth {
    Session,
    Oauth2,
}

#[derive(Debug, Clone)]
pub struct AcumaticaConfig {
    pub url: String,
    pub tenant: String,
    pub branch: Option<String>,
    pub auth: AcumaticaAuth,
    pub username: String,
    pub password: Option<Secret>,
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    pub endpoint: String,
    pub endpoint_version: String,
    pub timezone: chrono_tz::Tz,
    pub prefix: String,
    pub max_sessions: u32,
    pub max_concurrent_requests: u32,
    pub requests_per_minute: u32,
    /// How long one request may take, reply included, before it is abandoned (and retried
    /// when that is safe).
    pub timeout_secs: u32,
    /// Certificates trusted besides the built-in roots (`ca_file`, PEM), for a private CA.
    pub extra_roots: Vec<reqwest::Certificate>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MagentoAuth {
    Bearer,
    Oauth1,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InventoryApi {
    Msi,
    Legacy,
}

#[derive(Debug, Clone)]
pub struct MagentoConfig {
    pub url: String,
    pub store_code: String,
    pub auth: MagentoAuth,
    pub access_token: Option<Secret>,
    pub consumer_key: Option<Secret>,
    pub consumer_secret: Option<Secret>,
    pub access_token_secret: Option<Secret>,
    pub inventory_api: InventoryApi,
    pub inventory_source: String,
    pub max_concurrent_requests: u32,
    /// How long one request may take, reply included, before it is abandoned.
    pub timeout_secs: u32,
    /// Certificates trusted besides the built-in roots (`ca_file`, PEM), for a private CA.
    pub extra_roots: Vec<reqwest::Certificate>,
    /// Product saves per asynchronous bulk request (`sync --full --bulk`).
    pub bulk_size: u32,
    /// How long `sync --full --bulk` waits for Magento's consumers to process a bulk.
    pub bulk_wait_secs: u64,
}

#[derive(Debug, Clone)]
pub struct ReceiverConfig {
    pub listen: SocketAddr,
    pub public_url: String,
    pub header_name: String,
    pub secret: Option<Secret>,
    pub max_body_bytes: u64,
    /// Connections served at once; more wait in the kernel's accept queue.
    pub max_connections: u32,
}

#[derive(Debug, Clone)]
pub struct SyncConfig {
    pub batch_size: u32,
    pub max_attempts: u32,
    pub overlap_seconds: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EntitiesConfig {
    pub items: bool,
    pub inventory: bool,
    pub prices: bool,
    pub customers: bool,
    pub orders: bool,
    pub shipments: bool,
}

impl Default for EntitiesConfig {
    fn default() -> Self {
        EntitiesConfig {
            items: true,
            inventory: true,
            prices: true,
            customers: true,
            orders: true,
            shipments: true,
        }
    }
}

// ---- the file as written: serde shapes with their defaults ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    store: RawStore,
    acumatica: RawAcumatica,
    magento: RawMagento,
    receiver: RawReceiver,
    #[serde(default)]
    sync: RawSync,
    #[serde(default)]
    entities: EntitiesConfig,
    #[serde(default)]
    items: ItemsConfig,
    #[serde(default)]
    inventory: InventoryConfig,
    #[serde(default)]
    orders: OrdersConfig,
    #[serde(default)]
    customers: CustomersConfig,
    #[serde(default)]
    shipments: ShipmentsConfig,
}

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawStore {
    path: Spanned<String>,
    retention_days: u32,
}

impl Default for RawStore {
    fn default() -> Self {
        RawStore {
            path: Spanned::new(0..0, "connector.db".into()),
            retention_days: 30,
        }
    }
}

fn default_auth_session() -> AcumaticaAuth {
    AcumaticaAuth::Session
}
fn default_endpoint() -> String {
    "Default".into()
}
fn default_endpoint_version() -> String {
    "24.200.001".into()
}
fn default_timezone() -> Spanned<String> {
    Spanned::new(0..0, "UTC".into())
}
fn default_prefix() -> Spanned<String> {
    Spanned::new(0..0, "MC".into())
}
fn default_max_sessions() -> Spanned<u32> {
    Spanned::new(0..0, 2)
}
fn default_acumatica_concurrency() -> Spanned<u32> {
    Spanned::new(0..0, 4)
}
fn default_requests_per_minute() -> Spanned<u32> {
    Spanned::new(0..0, 300)
}
fn default_timeout_secs() -> Spanned<u32> {
    Spanned::new(0..0, 120)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAcumatica {
    url: Spanned<String>,
    tenant: String,
    branch: Option<String>,
    #[serde(default = "default_auth_session")]
    auth: AcumaticaAuth,
    username: String,
    password: Option<Secret>,
    client_id: Option<String>,
    client_secret: Option<Secret>,
    #[serde(default = "default_endpoint")]
    endpoint: String,
    #[serde(default = "default_endpoint_version")]
    endpoint_version: String,
    #[serde(default = "default_timezone")]
    timezone: Spanned<String>,
    #[serde(default = "default_prefix")]
    prefix: Spanned<String>,
    #[serde(default = "default_max_sessions")]
    max_sessions: Spanned<u32>,
    #[serde(default = "default_acumatica_concurrency")]
    max_concurrent_requests: Spanned<u32>,
    #[serde(default = "default_requests_per_minute")]
    requests_per_minute: Spanned<u32>,
    #[serde(default = "default_timeout_secs")]
    timeout_secs: Spanned<u32>,
    ca_file: Option<Spanned<String>>,
}

fn default_store_code() -> String {
    "default".into()
}
fn default_auth_bearer() -> MagentoAuth {
    MagentoAuth::Bearer
}
fn default_inventory_api() -> InventoryApi {
    InventoryApi::Msi
}
fn default_inventory_source() -> String {
    "default".into()
}
fn default_magento_concurrency() -> Spanned<u32> {
    Spanned::new(0..0, 8)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMagento {
    url: Spanned<String>,
    #[serde(default = "default_store_code")]
    store_code: String,
    #[serde(default = "default_auth_bearer")]
    auth: MagentoAuth,
    access_token: Option<Secret>,
    consumer_key: Option<Secret>,
    consumer_secret: Option<Secret>,
    access_token_secret: Option<Secret>,
    #[serde(default = "default_inventory_api")]
    inventory_api: InventoryApi,
    #[serde(default = "default_inventory_source")]
    inventory_source: String,
    #[serde(default = "default_magento_concurrency")]
    max_concurrent_requests: Spanned<u32>,
    #[serde(default = "default_timeout_secs")]
    timeout_secs: Spanned<u32>,
    ca_file: Option<Spanned<String>>,
    #[serde(default = "default_bulk_size")]
    bulk_size: Spanned<u32>,
    #[serde(default = "default_bulk_wait_secs")]
    bulk_wait_secs: Spanned<u32>,
}

fn default_bulk_size() -> Spanned<u32> {
    Spanned::new(0..0, 100)
}
fn default_bulk_wait_secs() -> Spanned<u32> {
    Spanned::new(0..0, 600)
}

fn default_receiver_listen() -> Spanned<String> {
    Spanned::new(0..0, "127.0.0.1:8700".into())
}
fn default_header_name() -> Spanned<String> {
    Spanned::new(0..0, "X-Connector-Secret".into())
}
fn default_max_body_bytes() -> Spanned<u64> {
    Spanned::new(0..0, 32 * 1024 * 1024)
}
fn default_max_connections() -> Spanned<u32> {
    Spanned::new(0..0, 64)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReceiver {
    #[serde(default = "default_receiver_listen")]
    listen: Spanned<String>,
    public_url: Spanned<String>,
    #[serde(default = "default_header_name")]
    header_name: Spanned<String>,
    secret: Option<Secret>,
    #[serde(default = "default_max_body_bytes")]
    max_body_bytes: Spanned<u64>,
    #[serde(default = "default_max_connections")]
    max_connections: Spanned<u32>,
}

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawSync {
    batch_size: Spanned<u32>,
    max_attempts: Spanned<u32>,
    overlap_seconds: u64,
}

impl Default for RawSync {
    fn default() -> Self {
        RawSync {
            batch_size: Spanned::new(0..0, 100),
            max_attempts: Spanned::new(0..0, 8),
            overlap_seconds: 300,
        }
    }
}

/// Environment variables that override secrets in the file, with the key each replaces.
pub const SECRET_ENV: &[(&str, &str)] = &[
    ("CONNECTOR_ACUMATICA_PASSWORD", "acumatica.password"),
    (
        "CONNECTOR_ACUMATICA_CLIENT_SECRET",
        "acumatica.client_secret",
    ),
    ("CONNECTOR_MAGENTO_ACCESS_TOKEN", "magento.access_token"),
    ("CONNECTOR_MAGENTO_CONSUMER_KEY", "magento.consumer_key"),
    (
        "CONNECTOR_MAGENTO_CONSUMER_SECRET",
        "magento.consumer_secret",
    ),
    (
        "CONNECTOR_MAGENTO_ACCESS_TOKEN_SECRET",
        "magento.access_token_secret",
    ),
    ("CONNECTOR_RECEIVER_SECRET", "receiver.secret"),
];

/// The file `--config` / `$CONNECTOR_CONFIG` names, or `./connector.toml`.
pub fn config_path(explicit: Option<&Path>) -> PathBuf {
    explicit
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_FILE))
}

impl Config {
    /// Reads, parses and validates the file; secrets set in the environment win.
    pub fn load(file: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|e| ConfigError {
            file: file.to_path_buf(),
            line: None,
            key: None,
            message: match e.kind() {
                std::io::ErrorKind::NotFound => "config file not found; copy connector.toml.example \
                    there and edit it, or pass --config PATH (`connector sandbox --write-config PATH` writes one for the sandbox)"
                    .to_string(),
                _ => format!("cannot read the config file: {e}"),
            },
        })?;
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let config = Config::parse(&text, file, &env)?;
        warn_if_readable_by_others(file, &config);
        Ok(config)
    }

    /// Parses `text` as if read from `file`; `env` looks up environment variables.
    pub fn parse(
        text: &str,
        file: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let at = |span: Option<std::ops::Range<usize>>, key: Option<String>, message: String| {
            ConfigError {
                file: file.to_path_buf(),
                line: span.filter(|s| s.end > 0).map(|s| line_of(text, s.start)),
                key,
                message,
            }
        };
        let deserializer = toml::de::Deserializer::parse(text).map_err(|e| {
            at(
                e.span(),
                None,
                format!("TOML syntax error: {}", e.message().trim()),
            )
        })?;
        let raw: RawConfig = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.inner();
            let (key, message) = explain_serde_error(&path, inner.message());
            at(inner.span(), key, message)
        })?;

        let base = file.parent().unwrap_or(Path::new("."));
        let spanned_err = |span: std::ops::Range<usize>, key: &str, message: String| {
            at(Some(span), Some(key.into()), message)
        };

        let http_url = |value: &Spanned<String>, key: &str| -> Result<String, ConfigError> {
            let v = value.get_ref().trim_end_matches('/').to_string();
            match url::Url::parse(&v) {
                Ok(u) if (u.scheme() == "http" || u.scheme() == "https") && u.host().is_some() => {
                    Ok(v)
                }
                _ => Err(spanned_err(
                    value.span(),
                    key,
                    format!(
                        "{:?} is not an http(s) URL; write it like \"https://host/path\"",
                        value.get_ref()
                    ),
                )),
            }
        };
        let at_least_one = |value: &Spanned<u32>, key: &str| -> Result<u32, ConfigError> {
            if *value.get_ref() == 0 {
                Err(spanned_err(value.span(), key, "must be at least 1".into()))
            } else {
                Ok(*value.get_ref())
            }
        };

        // A private CA: PEM certificates added to (never replacing) the built-in roots, read
        // here so a missing or wrong file is a config error before anything is sent.
        let ca_file = |value: &Option<Spanned<String>>,
                       key: &str|
         -> Result<Vec<reqwest::Certificate>, ConfigError> {
            let Some(value) = value else {
                return Ok(Vec::new());
            };
            let path = base.join(value.get_ref());
            let pem = std::fs::read(&path).map_err(|e| {
                spanned_err(
                    value.span(),
                    key,
                    format!(
                        "cannot read {}: {e}; give a PEM file of CA certificates",
                        path.display()
                    ),
                )
            })?;
            match reqwest::Certificate::from_pem_bundle(&pem) {
                Ok(certs) if !certs.is_empty() => Ok(certs),
                _ => Err(spanned_err(
                    value.span(),
                    key,
                    format!(
                        "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----); give the CA's certificate in PEM form",
                        path.display()
                    ),
                )),
            }
        };

        // Secrets: the environment wins over the file.
        let secret = |from_file: Option<Secret>, key: &str| -> Option<Secret> {
            let var = SECRET_ENV.iter().find(|(_, k)| *k == key).map(|(v, _)| *v);
            var.and_then(env)
                .map(Secret::new)
                .or(from_file)
                .filter(|s| !s.is_empty())
        };

        let a = raw.acumatica;
        let timezone: chrono_tz::Tz = a.timezone.get_ref().parse().map_err(|_| {
            spanned_err(
                a.timezone.span(),
                "acumatica.timezone",
                format!(
                    "unknown time zone {:?}; use an IANA name such as \"America/New_York\" or \"UTC\"",
                    a.timezone.get_ref()
                ),
            )
        })?;
        let prefix = a.prefix.get_ref().clone();
        if prefix.is_empty()
            || prefix.len() > 8
            || !prefix.chars().all(|c| c.is_ascii_alphanumeric())
        {
            return Err(spanned_err(
                a.prefix.span(),
                "acumatica.prefix",
                format!(
                    "{prefix:?} must be 1 to 8 letters or digits (it starts the name of every object init creates)"
                ),
            ));
        }
        let acumatica = AcumaticaConfig {
            url: http_url(&a.url, "acumatica.url")?,
            tenant: a.tenant,
            branch: a.branch.filter(|b| !b.is_empty()),
            auth: a.auth,
            username: a.username,
            password: secret(a.password, "acumatica.password"),
            client_id: a.client_id.filter(|c| !c.is_empty()),
            client_secret: secret(a.client_secret, "acumatica.client_secret"),
            endpoint: a.endpoint,
            endpoint_version: a.endpoint_version,
            timezone,
            prefix,
            max_sessions: at_least_one(&a.max_sessions, "acumatica.max_sessions")?,
            max_concurrent_requests: at_least_one(
                &a.max_concurrent_requests,
                "acumatica.max_concurrent_requests",
            )?,
            requests_per_minute: at_least_one(
                &a.requests_per_minute,
                "acumatica.requests_per_minute",
            )?,
            timeout_secs: at_least_one(&a.timeout_secs, "acumatica.timeout_secs")?,
            extra_roots: ca_file(&a.ca_file, "acumatica.ca_file")?,
        };
        if acumatica.auth == AcumaticaAuth::Oauth2 && acumatica.client_id.is_none() {
            return Err(at(
                None,
                Some("acumatica.client_id".into()),
                "missing required key: acumatica.auth = \"oauth2\" needs client_id (and client_secret)".into(),
            ));
        }

        let m = raw.magento;
        let magento = MagentoConfig {
            url: http_url(&m.url, "magento.url")?,
            store_code: m.store_code,
            auth: m.auth,
            access_token: secret(m.access_token, "magento.access_token"),
            consumer_key: secret(m.consumer_key, "magento.consumer_key"),
            consumer_secret: secret(m.consumer_secret, "magento.consumer_secret"),
            access_token_secret: secret(m.access_token_secret, "magento.access_token_secret"),
            inventory_api: m.inventory_api,
            inventory_source: m.inventory_source,
            max_concurrent_requests: at_least_one(
                &m.max_concurrent_requests,
                "magento.max_concurrent_requests",
            )?,
            timeout_secs: at_least_one(&m.timeout_secs, "magento.timeout_secs")?,
            extra_roots: ca_file(&m.ca_file, "magento.ca_file")?,
            bulk_size: at_least_one(&m.bulk_size, "magento.bulk_size")?,
            bulk_wait_secs: at_least_one(&m.bulk_wait_secs, "magento.bulk_wait_secs")?.into(),
        };

        let r = raw.receiver;
        let listen: SocketAddr = r.listen.get_ref().parse().map_err(|_| {
            spanned_err(
                r.listen.span(),
                "receiver.listen",
                format!(
                    "{:?} is not an address and port such as \"127.0.0.1:8700\"",
                    r.listen.get_ref()
                ),
            )
        })?;
        let header_name = r.header_name.get_ref().clone();
        if axum::http::HeaderName::from_bytes(header_name.as_bytes()).is_err() {
            return Err(spanned_err(
                r.header_name.span(),
                "receiver.header_name",
                format!("{header_name:?} is not a valid HTTP header name"),
            ));
        }
        if *r.max_body_bytes.get_ref() < 1024 {
            return Err(spanned_err(
                r.max_body_bytes.span(),
                "receiver.max_body_bytes",
                "must be at least 1024 (one mass price release is one large notification)".into(),
            ));
        }
        let receiver = ReceiverConfig {
            listen,
            public_url: http_url(&r.public_url, "receiver.public_url")?,
            header_name,
            secret: secret(r.secret, "receiver.secret"),
            max_body_bytes: *r.max_body_bytes.get_ref(),
            max_connections: at_least_one(&r.max_connections, "receiver.max_connections")?,
        };

        let s = raw.sync;
        let sync = SyncConfig {
            batch_size: at_least_one(&s.batch_size, "sync.batch_size")?,
            max_attempts: at_least_one(&s.max_attempts, "sync.max_attempts")?,
            overlap_seconds: s.overlap_seconds,
        };

        for field in &raw.items.create_only {
            if !["name", "description", "weight"].contains(&field.as_str()) {
                return Err(at(
                    None,
                    Some("items.create_only".into()),
                    format!(
                        "{field:?} is not a product field the connector writes; use any of \"name\", \"description\", \"weight\""
                    ),
                ));
            }
        }
        if !(1..=4).contains(&raw.items.visibility) {
            return Err(at(
                None,
                Some("items.visibility".into()),
                format!(
                    "{} is not a Magento visibility; use 1 (not visible) to 4 (catalog and search)",
                    raw.items.visibility
                ),
            ));
        }
        if raw.items.website_ids.is_empty() {
            return Err(at(
                None,
                Some("items.website_ids".into()),
                "must name at least one website (Magento's main website is 1)".into(),
            ));
        }

        let o = &raw.orders;
        if o.order_type.trim().is_empty() || o.order_type.len() > 2 {
            return Err(at(
                None,
                Some("orders.order_type".into()),
                format!(
                    "{:?} is not an Acumatica order type (two characters, e.g. \"SO\")",
                    o.order_type
                ),
            ));
        }
        if o.statuses.is_empty() {
            return Err(at(
                None,
                Some("orders.statuses".into()),
                "must name at least one Magento order status to import (e.g. \"pending\")".into(),
            ));
        }
        if !(1..=300).contains(&o.page_size) {
            return Err(at(
                None,
                Some("orders.page_size".into()),
                format!(
                    "{} is outside 1..=300 (Magento's largest searchCriteria pageSize)",
                    o.page_size
                ),
            ));
        }
        if o.tax_mode == TaxMode::TaxZone
            && o.tax_zone.as_deref().is_none_or(|z| z.trim().is_empty())
        {
            return Err(at(
                None,
                Some("orders.tax_zone".into()),
                "tax_mode = \"tax_zone\" needs a tax_zone".into(),
            ));
        }
        if o.tax_mode == TaxMode::Carry && o.tax_id.trim().is_empty() {
            return Err(at(
                None,
                Some("orders.tax_id".into()),
                "tax_mode = \"carry\" needs the Acumatica tax id the tax is booked on".into(),
            ));
        }
        let c = &raw.customers;
        if c.customer_class.trim().is_empty() {
            return Err(at(
                None,
                Some("customers.customer_class".into()),
                "must not be empty".into(),
            ));
        }
        if c.id_prefix.len() > 10 || c.guest_prefix.len() > 10 {
            return Err(at(
                None,
                Some("customers.id_prefix".into()),
                "prefixes are at most 10 characters (Acumatica's CustomerID is short)".into(),
            ));
        }
        if c.guests == GuestMode::Customer
            && c.guest_customer_id
                .as_deref()
                .is_none_or(|g| g.trim().is_empty())
        {
            return Err(at(
                None,
                Some("customers.guest_customer_id".into()),
                "guests = \"customer\" needs the CustomerID every guest order goes to".into(),
            ));
        }
        if raw.shipments.default_carrier.trim().is_empty() {
            return Err(at(
                None,
                Some("shipments.default_carrier".into()),
                "must not be empty (Magento's generic carrier is \"custom\")".into(),
            ));
        }

        let store = StoreConfig {
            path: base.join(raw.store.path.get_ref()),
            retention_days: raw.store.retention_days,
        };

        Ok(Config {
            file: file.to_path_buf(),
            store,
            acumatica,
            magento,
            receiver,
            sync,
            entities: raw.entities,
            items: raw.items,
            inventory: raw.inventory,
            orders: raw.orders,
            customers: raw.customers,
            shipments: raw.shipments,
        })
    }

    /// The quantity sent to Magento: configured, or the one that fits the inventory API.
    pub fn quantity_kind(&self) -> QuantityKind {
        self.inventory
            .quantity
            .unwrap_or(match self.magento.inventory_api {
                InventoryApi::Msi => QuantityKind::OnHand,
                InventoryApi::Legacy => QuantityKind::Available,
            })
    }

    /// A secret the running command needs, or the error that says where to set it.
    pub fn require<'a>(
        &self,
        value: &'a Option<Secret>,
        key: &str,
    ) -> Result<&'a Secret, ConfigError> {
        value.as_ref().ok_or_else(|| {
            let var = SECRET_ENV
                .iter()
                .find(|(_, k)| *k == key)
                .map(|(v, _)| format!(" or the environment variable {v}"))
                .unwrap_or_default();
            ConfigError {
                file: self.file.clone(),
                line: None,
                key: Some(key.to_string()),
                message: format!("missing required secret; set it in the file{var}"),
            }
        })
    }
}

/// A config file that holds a secret and that other users may read gets a warning (the secret
/// is as safe as the file's mode). Not an error: the file may be on a single-user machine.
fn warn_if_readable_by_others(file: &Path, config: &Config) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let holds_secret = [
            &config.acumatica.password,
            &config.acumatica.client_secret,
            &config.magento.access_token,
            &config.magento.consumer_secret,
            &config.magento.access_token_secret,
            &config.receiver.secret,
        ]
        .iter()
        .any(|s| s.is_some());
        let mode = std::fs::metadata(file).map(|m| m.permissions().mode());
        if let Ok(mode) = mode
            && holds_secret
            && mode & 0o044 != 0
        {
            tracing::warn!(
                "{}: readable by other users (mode {:o}) and may hold secrets; run `chmod 600 {}` or move the secrets to the environment (CONNECTOR_ACUMATICA_PASSWORD…)",
                file.display(),
                mode & 0o777,
                file.display()
            );
        }
    }
    #[cfg(not(unix))]
    let _ = (file, config);
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .bytes()
        .filter(|b| *b == b'\n')
        .count()
        + 1
}

/// Turns serde's wording into the connector's: the full key, and for an unknown key the
/// closest known one.
fn explain_serde_error(path: &str, message: &str) -> (Option<String>, String) {
    // `toml::Spanned` shows up in serde's path as a private field: not part of the key.
    let path = path.replace(".$__serde_spanned_private_value", "");
    let path = if path == "." { String::new() } else { path };
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (unknown, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let candidates: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
        // serde_path_to_error's path already ends with the unknown key.
        let key = if path.is_empty() {
            unknown.to_string()
        } else {
            path.clone()
        };
        let suggestion = candidates
            .iter()
            .map(|c| (strsim::jaro_winkler(unknown, c), *c))
            .filter(|(score, _)| *score > 0.75)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, c)| format!("; did you mean `{c}`?"))
            .unwrap_or_else(|| {
                if candidates.is_empty() {
                    String::new()
                } else {
                    format!("; known keys here: {}", candidates.join(", "))
                }
            });
        return (Some(key), format!("unknown key{suggestion}"));
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        let field = rest.split('`').next().unwrap_or(rest);
        let key = if path.is_empty() {
            field.to_string()
        } else {
            format!("{path}.{field}")
        };
        return (Some(key), "missing required key".to_string());
    }
    let key = if path.is_empty() { None } else { Some(path) };
    let message = message
        .trim()
        .replace(
            "expected u32",
            "expected a whole number from 0 to 4294967295",
        )
        .replace("expected u64", "expected a whole number of 0 or more");
    (key, message)
}
