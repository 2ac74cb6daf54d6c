//! The simulated Magento 2.4 admin REST API (see docs/sandbox.md).

use std::sync::Arc;

use axum::Router;

use super::{FaultInjector, SandboxOptions, System};

/// Credentials the simulated store accepts.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub store_code: String,
    pub access_token: String,
    pub consumer_key: String,
    pub consumer_secret: String,
    pub access_token_secret: String,
}

pub struct MagentoSim {
    base_url: String,
    credentials: Credentials,
    pub faults: Arc<FaultInjector>,
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
