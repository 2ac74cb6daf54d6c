//! The Acumatica client (contract-based REST API): sessions within the licence, retries,
//! typed errors. DESIGN.md section 6 lists the facts it is built on.

pub mod admin;
mod client;
mod error;

pub use client::{AcumaticaClient, Precondition, Reply};
pub use error::{AcumaticaError, error_message};

use std::future::Future;

/// Runs `work` with the client, then logs out every session — whether the work succeeded,
/// failed, or was interrupted by Ctrl-C or SIGTERM (an abandoned session would hold a licence
/// slot for about ten minutes).
pub async fn with_sessions<T>(
    client: &AcumaticaClient,
    work: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    let outcome = tokio::select! {
        result = work => result,
        signal = crate::signals::interrupted() => Err(anyhow::anyhow!("interrupted by {signal}; nothing more was sent")),
    };
    client.close().await;
    outcome
}
