//! The simulated Acumatica contract-based REST API (see docs/sandbox-acumatica.md).
//!
//! - `auth`, `session`: sign-in (cookies, OAuth 2.0) and the licence limits;
//! - `data`, `tables`: the tenant's tables and the transactions every write commits;
//! - `entities`, `mapping`, `validate`, `schema`: contract entities as views over the tables;
//! - `actions`: ConfirmShipment and CancelSalesOrder; `odata`: `$filter` (part 2);
//! - `api`: the entity routes; `control`: `/__sandbox/…`; `seed`: starting data.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub mod actions;
pub mod api;
pub mod auth;
pub mod control;
pub mod data;
pub mod endpoint;
pub mod entities;
pub mod errors;
pub mod gi;
pub mod mapping;
pub mod odata;
pub mod push;
pub mod schema;
pub mod seed;
pub mod session;
pub mod tables;
pub mod validate;
pub mod xml;

use axum::Router;
use axum::routing::{get, post};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::sync::mpsc::UnboundedReceiver;

use super::{FaultInjector, SandboxOptions, System};
pub use session::{AcumaticaOptions, Counters, LoginLimitAnswer};
use tables::{Row, TableSource, Transaction};

/// Credentials the simulated tenant accepts.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    pub tenant: String,
    pub branch: String,
    pub client_id: String,
    pub client_secret: String,
}

pub struct AcumaticaSim {
    base_url: String,
    credentials: Credentials,
    pub faults: Arc<FaultInjector>,
    pub sessions: session::Sessions,
    store: Arc<Mutex<data::Store>>,
    jobs: Mutex<HashMap<String, api::Job>>,
    token_rng: Mutex<StdRng>,
    /// Part 2: Generic Inquiries, push notifications, schedules, the endpoint maintenance API
    /// and OData GI reads, over the same tables.
    pub admin: Arc<endpoint::AdminApi>,
}

impl AcumaticaSim {
    pub fn new(options: &SandboxOptions, base_url: &str) -> Arc<AcumaticaSim> {
        let mut store = data::Store::new(options.seed);
        seed::seed(&mut store, options.items);
        let transactions = store.subscribe();
        let store = Arc::new(Mutex::new(store));
        let admin = endpoint::AdminApi::new(
            Arc::new(data::StoreReader(store.clone())),
            push::PushOptions {
                tenant: "Company".into(),
                timezone: options.timezone,
                ..push::PushOptions::default()
            },
            base_url,
        );
        // Push notifications follow every committed write; schedules run on their timer.
        // Both need the runtime the sandbox is started in.
        if tokio::runtime::Handle::try_current().is_ok() {
            admin.push().spawn(transactions);
            admin.spawn_schedules(std::time::Duration::from_secs(60));
        }
        Arc::new(AcumaticaSim {
            base_url: base_url.to_string(),
            credentials: Credentials {
                username: "admin".into(),
                password: format!("sandbox-password-{}", options.seed),
                tenant: "Company".into(),
                branch: "HQ".into(),
                client_id: "sandbox-client@Company".into(),
                client_secret: "sandbox-client-secret".into(),
            },
            faults: FaultInjector::new(System::Acumatica, options.seed, options.faults.clone()),
            sessions: session::Sessions::new(options.acumatica.clone()),
            store,
            admin,
            jobs: Mutex::new(HashMap::new()),
            token_rng: Mutex::new(StdRng::seed_from_u64(options.seed ^ 0x70CE_0000)),
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn credentials(&self) -> Credentials {
        self.credentials.clone()
    }

    /// Every committed transaction from now on, with before/after rows (for push
    /// notifications). Several subscribers each get every transaction.
    pub fn subscribe(&self) -> UnboundedReceiver<Transaction> {
        self.store.lock().unwrap().subscribe()
    }

    /// Read access to the tables that does not keep the simulation alive (for Generic
    /// Inquiries and push notifications, which the simulation itself owns).
    pub fn table_source(&self) -> Arc<dyn TableSource> {
        Arc::new(data::StoreReader(self.store.clone()))
    }

    /// Counters of sessions, requests and limit violations.
    pub fn counters(&self) -> Counters {
        self.sessions.counters()
    }

    pub fn router(self: &Arc<Self>) -> Router {
        // A scripted 401 really ends the request's session: signing in again is the only way on.
        let sim = Arc::downgrade(self);
        self.faults.on_session_expired(Box::new(move |headers| {
            if let (Some(sim), Some(token)) = (sim.upgrade(), auth::request_token(headers)) {
                sim.sessions.expire(&token);
            }
        }));
        let endpoint = api::ENDPOINT;
        let entities = Router::new()
            .route(
                &format!("{endpoint}/{{entity}}"),
                get(api::list).put(api::put),
            )
            .route(
                &format!("{endpoint}/{{entity}}/{{*rest}}"),
                get(api::get_one).delete(api::delete_one).post(api::action),
            )
            .route_layer(axum::middleware::from_fn_with_state(
                self.clone(),
                auth::require_session,
            ));
        let api = Router::new()
            .route("/entity/auth/login", post(auth::login))
            .route("/entity/auth/logout", post(auth::logout))
            .route("/identity/connect/token", post(auth::token))
            .merge(entities)
            .route_layer(axum::middleware::from_fn_with_state(
                self.clone(),
                auth::limits,
            ))
            .route_layer(axum::middleware::from_fn_with_state(
                self.faults.clone(),
                FaultInjector::middleware,
            ));
        // Part 2's routes (endpoint maintenance, custom-endpoint entities, OData GI reads)
        // pass the same faults, limits and sign-in as the Default endpoint; OData also takes
        // Basic credentials, as Acumatica's OData service does.
        let admin = self
            .admin
            .router()
            .route_layer(axum::middleware::from_fn_with_state(
                self.clone(),
                auth::require_session_or_basic,
            ))
            .route_layer(axum::middleware::from_fn_with_state(
                self.clone(),
                auth::limits,
            ))
            .route_layer(axum::middleware::from_fn_with_state(
                self.faults.clone(),
                FaultInjector::middleware,
            ));
        Router::new()
            .merge(api)
            .merge(control::routes())
            .fallback(api::unknown)
            .with_state(self.clone())
            .merge(admin)
    }
}

impl TableSource for AcumaticaSim {
    fn rows(&self, table: &str) -> Option<Vec<Row>> {
        self.store.lock().unwrap().all_rows(table)
    }
}
