//! The simulated Acumatica contract-based REST API (see docs/sandbox.md).

use std::sync::Arc;

pub mod endpoint;
pub mod gi;
pub mod odata;
pub mod push;
pub mod tables;
pub mod xml;

use axum::Router;

use super::{FaultInjector, SandboxOptions, System};

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
}

impl AcumaticaSim {
    pub fn new(options: &SandboxOptions, base_url: &str) -> Arc<AcumaticaSim> {
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
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn credentials(&self) -> Credentials {
        self.credentials.clone()
    }

    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
    }
}
