//! The simulated Magento 2.4 admin REST API (see docs/sandbox-magento.md).
//!
//! Routes live under `{magento_url}/rest/{store_code}/V1/…` with the store codes `default`
//! (store view 1) and `all` (global values). Requests pass, in order: the shared
//! [`FaultInjector`] (counting, latency, 5xx, 429, dropped connections), the store-code and
//! authentication checks, then the handler. Control routes under `/__sandbox/` have neither.

mod auth;
pub mod bulk;
mod control;
mod customers;
mod errors;
mod input;
mod inventory;
mod model;
pub mod oauth1;
mod products;
mod sales;
mod search;
mod seed;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::{Deserialize, Serialize};

use super::{FaultInjector, SandboxOptions, System};
use errors::ApiError;
use model::Data;

/// Credentials the simulated store accepts.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub store_code: String,
    pub access_token: String,
    pub consumer_key: String,
    pub consumer_secret: String,
    pub access_token_secret: String,
}

/// Magento-specific knobs, beside the shared [`super::Faults`]; set with
/// `POST /__sandbox/faults`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MagentoKnobs {
    /// Overlapping saves of one product: the later one fails with the deadlock 400.
    pub deadlock: bool,
    /// How long a product save holds its row, in ms (a real save takes about a second).
    /// With `deadlock` on and this at 0, a save holds for 100 ms so overlaps can happen.
    pub product_save_ms: u64,
    /// Web API input limits (Stores → Configuration → Services → Web API Input Limits):
    /// lists over `input_list_limit` items and `pageSize` over 300 are refused.
    pub input_limit: bool,
    pub input_list_limit: usize,
    /// `oauth/consumer/enable_integration_as_bearer`: integration tokens as bearer tokens.
    pub bearer: bool,
    /// Whether the `async.operations.all` consumer runs: off, bulk operations stay open.
    pub consumers: bool,
    /// How long after a bulk is accepted the consumer starts on it, in ms.
    pub bulk_delay_ms: u64,
    /// Bulk operations saving these SKUs fail (status 3, "The product was unable to be
    /// saved. Please try again.").
    pub bulk_fail_skus: Vec<String>,
}

impl Default for MagentoKnobs {
    fn default() -> Self {
        MagentoKnobs {
            deadlock: false,
            product_save_ms: 0,
            input_limit: false,
            input_list_limit: 20,
            bearer: true,
            consumers: true,
            bulk_delay_ms: 100,
            bulk_fail_skus: Vec::new(),
        }
    }
}

pub struct MagentoSim {
    base_url: String,
    credentials: Credentials,
    pub faults: Arc<FaultInjector>,
    data: Mutex<Data>,
    knobs: Mutex<MagentoKnobs>,
    /// SKUs whose save is in progress (for the deadlock fault).
    saving: Mutex<HashSet<String>>,
    /// OAuth nonces seen: a replay is refused.
    nonces: Mutex<HashSet<String>>,
    /// Asynchronous bulks by uuid.
    bulks: Mutex<std::collections::HashMap<String, bulk::Bulk>>,
}

impl MagentoSim {
    pub fn new(options: &SandboxOptions, base_url: &str) -> Arc<MagentoSim> {
        Arc::new(MagentoSim {
            base_url: base_url.to_string(),
            credentials: Credentials {
                store_code: "default".into(),
                access_token: format!("sandbox-magento-token-{}", options.seed),
                consumer_key: "sandbox-consumer-key".into(),
                consumer_secret: "sandbox-consumer-secret".into(),
                access_token_secret: "sandbox-access-token-secret".into(),
            },
            faults: FaultInjector::new(System::Magento, options.seed, options.faults.clone()),
            data: Mutex::new(seed::seed(options.seed, options.items, options.orders)),
            knobs: Mutex::new(MagentoKnobs::default()),
            saving: Mutex::new(HashSet::new()),
            nonces: Mutex::new(HashSet::new()),
            bulks: Mutex::new(std::collections::HashMap::new()),
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn credentials(&self) -> Credentials {
        self.credentials.clone()
    }

    pub fn knobs(&self) -> MagentoKnobs {
        self.knobs.lock().unwrap().clone()
    }

    pub fn set_knobs(&self, knobs: MagentoKnobs) {
        *self.knobs.lock().unwrap() = knobs;
    }

    fn data(&self) -> MutexGuard<'_, Data> {
        self.data.lock().unwrap()
    }

    /// The Web API input list limit, when on.
    fn list_limit(&self) -> Option<usize> {
        let knobs = self.knobs();
        knobs.input_limit.then_some(knobs.input_list_limit)
    }

    /// Parses `searchCriteria` (required, as the service methods declare it) and applies the
    /// store's input limits.
    fn criteria(&self, query: Option<&str>) -> errors::ApiResult<search::SearchCriteria> {
        let mut criteria =
            search::parse(query)?.ok_or_else(|| ApiError::required("searchCriteria"))?;
        if self.knobs().input_limit {
            search::apply_input_limits(&mut criteria)?;
        }
        Ok(criteria)
    }

    pub fn router(self: &Arc<Self>) -> Router {
        let api = Router::new()
            .route(
                "/rest/{store}/V1/products",
                get(products::search_products).post(products::create_product),
            )
            .route(
                "/rest/{store}/V1/products/{sku}",
                get(products::get_product).put(products::put_product),
            )
            .route(
                "/rest/{store}/V1/products/base-prices",
                post(inventory::update_base_prices),
            )
            .route(
                "/rest/{store}/V1/products/{sku}/stockItems/{item_id}",
                put(inventory::update_stock_item),
            )
            .route(
                "/rest/{store}/V1/inventory/source-items",
                get(inventory::search_source_items).post(inventory::save_source_items),
            )
            .route(
                "/rest/{store}/async/bulk/V1/products",
                post(bulk::schedule_products),
            )
            .route("/rest/{store}/V1/bulk/{uuid}/status", get(bulk::status))
            .route(
                "/rest/{store}/V1/bulk/{uuid}/detailed-status",
                get(bulk::detailed_status),
            )
            .route(
                "/rest/{store}/V1/bulk/{uuid}/operation-status/{status}",
                get(bulk::operation_status),
            )
            .route("/rest/{store}/V1/orders", get(sales::search_orders))
            .route("/rest/{store}/V1/orders/{id}", get(sales::get_order))
            .route("/rest/{store}/V1/order/{id}/ship", post(sales::ship_order))
            .route("/rest/{store}/V1/shipments", get(sales::search_shipments))
            .route("/rest/{store}/V1/shipment/{id}", get(sales::get_shipment))
            .route(
                "/rest/{store}/V1/customers/search",
                get(customers::search_customers),
            )
            .route(
                "/rest/{store}/V1/customers/{id}",
                get(customers::get_customer),
            )
            // Magento answers a known path with another method as it answers an unknown one.
            .method_not_allowed_fallback(no_route)
            .route_layer(axum::middleware::from_fn_with_state(
                self.clone(),
                auth::middleware,
            ))
            .route_layer(axum::middleware::from_fn_with_state(
                self.faults.clone(),
                FaultInjector::middleware,
            ));
        Router::new()
            .merge(api)
            .merge(control::router())
            .fallback(unmatched)
            .with_state(self.clone())
    }
}

async fn no_route() -> Response {
    ApiError::no_route().into_response()
}

/// Any request no route matched: counted (so a client's stray calls show in the state),
/// then Magento's 404.
async fn unmatched(
    axum::extract::State(sim): axum::extract::State<Arc<MagentoSim>>,
    request: Request,
) -> Response {
    sim.faults.count(format!(
        "{} {} (unmatched)",
        request.method(),
        request.uri().path()
    ));
    ApiError::no_route().into_response()
}
