//! Simulated Acumatica and Magento on loopback, for `connector sandbox`, `connector demo`,
//! tests and benches.
//!
//! Both systems are served by one HTTP listener under two base paths, `/acumatica` and
//! `/magento`, as if each were installed in a sub-folder of its own site. The simulation is
//! written from the official API descriptions (`../shared/specs/`) and DESIGN.md sections 6–8;
//! it shares no types or code with the clients in `src/acumatica/` and `src/magento/`, so the
//! two readings of the documents check each other.

pub mod acumatica;
pub mod config_file;
pub mod faults;
pub mod magento;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use serde::Serialize;
use tokio::sync::oneshot;

pub use faults::{FaultInjector, Faults, System};

/// What `connector sandbox` (and a test) can choose about the simulated systems.
#[derive(Clone, Debug)]
pub struct SandboxOptions {
    /// Where to listen; port 0 picks a free port. Loopback only.
    pub listen: SocketAddr,
    /// Seed for generated data and for fault injection: the same seed gives the same run.
    pub seed: u64,
    /// Number of stock items / products generated at start.
    pub items: usize,
    /// The simulated Acumatica tenant's time zone: push rows carry date-times in it, without
    /// offset, and OData GI reads with its offset.
    pub timezone: chrono_tz::Tz,
    /// Number of Magento orders generated at start.
    pub orders: usize,
    /// Faults applied to both systems from the start (each can be changed later over HTTP).
    pub faults: Faults,
    /// The simulated Acumatica licence limits and timings (sessions, concurrency, requests
    /// per minute, idle timeout, action duration).
    pub acumatica: acumatica::AcumaticaOptions,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        SandboxOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            seed: 1,
            items: 20,
            timezone: chrono_tz::America::New_York,
            orders: 5,
            faults: Faults::default(),
            acumatica: acumatica::AcumaticaOptions::default(),
        }
    }
}

/// Credentials of the simulated systems, printed by `connector sandbox` and written into the
/// generated `connector.toml`. They open nothing but the sandbox itself.
#[derive(Clone, Debug, Serialize)]
pub struct SandboxCredentials {
    pub acumatica_username: String,
    pub acumatica_password: String,
    pub acumatica_tenant: String,
    pub acumatica_branch: String,
    pub acumatica_client_id: String,
    pub acumatica_client_secret: String,
    pub magento_store_code: String,
    pub magento_access_token: String,
    pub magento_consumer_key: String,
    pub magento_consumer_secret: String,
    pub magento_access_token_secret: String,
}

/// A running sandbox. Dropping it (or calling [`Sandbox::shutdown`]) stops the server.
pub struct Sandbox {
    pub addr: SocketAddr,
    pub acumatica_url: String,
    pub magento_url: String,
    pub acumatica: Arc<acumatica::AcumaticaSim>,
    pub magento: Arc<magento::MagentoSim>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl Sandbox {
    /// Starts both simulated systems on `options.listen` and returns once they accept requests.
    pub async fn start(options: SandboxOptions) -> anyhow::Result<Sandbox> {
        if !options.listen.ip().is_loopback() {
            anyhow::bail!(
                "sandbox listen address {} is not a loopback address; use 127.0.0.1",
                options.listen
            );
        }
        let listener = tokio::net::TcpListener::bind(options.listen)
            .await
            .with_context(|| format!("could not listen on {}", options.listen))?;
        let addr = listener.local_addr()?;
        let base = format!("http://{addr}");
        let acumatica_url = format!("{base}/acumatica");
        let magento_url = format!("{base}/magento");

        let acumatica = acumatica::AcumaticaSim::new(&options, &acumatica_url);
        let magento = magento::MagentoSim::new(&options, &magento_url);
        let app = axum::Router::new()
            .nest("/acumatica", acumatica.router())
            .nest("/magento", magento.router());

        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = rx.await;
            });
            if let Err(e) = serve.await {
                tracing::error!("sandbox server stopped: {e}");
            }
        });
        Ok(Sandbox {
            addr,
            acumatica_url,
            magento_url,
            acumatica,
            magento,
            shutdown: Some(tx),
            server: Some(server),
        })
    }

    pub fn credentials(&self) -> SandboxCredentials {
        let a = self.acumatica.credentials();
        let m = self.magento.credentials();
        SandboxCredentials {
            acumatica_username: a.username,
            acumatica_password: a.password,
            acumatica_tenant: a.tenant,
            acumatica_branch: a.branch,
            acumatica_client_id: a.client_id,
            acumatica_client_secret: a.client_secret,
            magento_store_code: m.store_code,
            magento_access_token: m.access_token,
            magento_consumer_key: m.consumer_key,
            magento_consumer_secret: m.consumer_secret,
            magento_access_token_secret: m.access_token_secret,
        }
    }

    /// Stops accepting, lets requests in flight finish, and waits for the server to end.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
