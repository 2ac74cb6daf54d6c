//! The Magento client: bearer or OAuth 1.0a, the store code in the path, requests in flight
//! capped, retries on 429 / 5xx / deadlocks, and one clear error for 401.

use std::time::Duration;

use rand::RngExt;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::error::{MagentoError, error_message, is_route_miss, is_transient_400};
use super::oauth1;
use crate::config::{Config, MagentoAuth};
use crate::http::{Backoff, RequestLimiter, describe_transport, is_certificate_error, retry_after};
use crate::secret::Secret;

/// Which store view a call addresses: the configured one, or `all` (global values — product
/// data is written there so one store view's edits are not overwritten by accident).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Store,
    All,
}

#[derive(Clone)]
enum Auth {
    Bearer(Secret),
    OAuth1 {
        consumer_key: Secret,
        consumer_secret: Secret,
        token: Secret,
        token_secret: Secret,
    },
}

/// Clones share the HTTP connections and the limiter (its slots and pace).
#[derive(Clone)]
pub struct MagentoClient {
    base: String,
    store_code: String,
    auth: Auth,
    http: reqwest::Client,
    limiter: RequestLimiter,
    backoff: Backoff,
}

impl std::fmt::Debug for MagentoClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MagentoClient")
            .field("base", &self.base)
            .field("store_code", &self.store_code)
            .finish_non_exhaustive()
    }
}

/// Percent-encodes one path segment (a SKU may hold spaces, `/`, `#`, `?`).
pub fn segment(s: &str) -> String {
    oauth1::encode(s)
}

impl MagentoClient {
    pub fn new(config: &Config) -> anyhow::Result<MagentoClient> {
        let m = &config.magento;
        let auth = match m.auth {
            MagentoAuth::Bearer => Auth::Bearer(
                config
                    .require(&m.access_token, "magento.access_token")?
                    .clone(),
            ),
            MagentoAuth::Oauth1 => Auth::OAuth1 {
                consumer_key: config
                    .require(&m.consumer_key, "magento.consumer_key")?
                    .clone(),
                consumer_secret: config
                    .require(&m.consumer_secret, "magento.consumer_secret")?
                    .clone(),
                token: config
                    .require(&m.access_token, "magento.access_token")?
                    .clone(),
                token_secret: config
                    .require(&m.access_token_secret, "magento.access_token_secret")?
                    .clone(),
            },
        };
        let http = crate::http::with_roots(reqwest::Client::builder(), &m.extra_roots)
            .timeout(Duration::from_secs(m.timeout_secs.into()))
            .connect_timeout(Duration::from_secs(15))
            .user_agent(concat!("connector/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(MagentoClient {
            base: m.url.clone(),
            store_code: m.store_code.clone(),
            auth,
            http,
            limiter: RequestLimiter::new(m.max_concurrent_requests, None),
            backoff: Backoff::default(),
        })
    }

    /// Replaces the retry policy (tests use short waits).
    pub fn with_backoff(mut self, backoff: Backoff) -> MagentoClient {
        self.backoff = backoff;
        self
    }

    pub async fn get(
        &self,
        scope: Scope,
        path: &str,
        query: &[(String, String)],
    ) -> Result<Value, MagentoError> {
        self.send(Method::GET, scope, path, query, None, true).await
    }

    pub async fn put(&self, scope: Scope, path: &str, body: &Value) -> Result<Value, MagentoError> {
        self.send(Method::PUT, scope, path, &[], Some(body), true)
            .await
    }

    /// `POST`; `idempotent` says whether a cut-off or 5xx reply may be sent again (a batch of
    /// prices may; creating a shipment may not without a look first).
    pub async fn post(
        &self,
        scope: Scope,
        path: &str,
        body: &Value,
        idempotent: bool,
    ) -> Result<Value, MagentoError> {
        self.send(Method::POST, scope, path, &[], Some(body), idempotent)
            .await
    }

    /// [`MagentoClient::send`] on a task of its own, started at once: the call takes a freed
    /// slot, goes out and has its reply read while the caller's thread is busy. The sync
    /// engine records and prepares chunks on its one thread (about 20 ms per chunk of 1,600
    /// prices); batch calls polled only there waited for it, and Magento's slots stood idle
    /// meanwhile. Dropping the returned future aborts the call.
    pub fn send_detached(
        &self,
        method: Method,
        scope: Scope,
        path: &str,
        body: Value,
        idempotent: bool,
    ) -> Detached {
        let client = self.clone();
        let path = path.to_string();
        Detached(tokio::spawn(async move {
            client
                .send(method, scope, &path, &[], Some(&body), idempotent)
                .await
        }))
    }

    /// Sends one call to `/rest/{store}{path}` and returns its JSON reply.
    pub async fn send(
        &self,
        method: Method,
        scope: Scope,
        path: &str,
        query: &[(String, String)],
        body: Option<&Value>,
        idempotent: bool,
    ) -> Result<Value, MagentoError> {
        let store = match scope {
            Scope::Store => self.store_code.as_str(),
            Scope::All => "all",
        };
        let mut url =
            url::Url::parse(&format!("{}/rest/{store}{path}", self.base)).map_err(|e| {
                MagentoError::BadReply {
                    method: method.to_string(),
                    path: path.to_string(),
                    message: format!("cannot build the URL: {e}"),
                }
            })?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request = self
                .http
                .request(method.clone(), url.clone())
                .header(reqwest::header::ACCEPT, "application/json");
            request = match &self.auth {
                Auth::Bearer(token) => request.bearer_auth(token.expose()),
                Auth::OAuth1 {
                    consumer_key,
                    consumer_secret,
                    token,
                    token_secret,
                } => {
                    let nonce: String = {
                        let mut rng = rand::rng();
                        (0..32)
                            .map(|_| {
                                let n = rng.random_range(0..36u32);
                                char::from_digit(n, 36).unwrap_or('0')
                            })
                            .collect()
                    };
                    let timestamp = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_secs())
                        .unwrap_or_default();
                    let header = oauth1::authorization_header(
                        &oauth1::Credentials {
                            consumer_key: consumer_key.expose(),
                            consumer_secret: consumer_secret.expose(),
                            token: token.expose(),
                            token_secret: token_secret.expose(),
                        },
                        method.as_str(),
                        &url,
                        &nonce,
                        timestamp,
                    );
                    request.header(reqwest::header::AUTHORIZATION, header)
                }
            };
            if let Some(body) = body {
                request = request.json(body);
            }
            let outcome = crate::http::exchange(&self.limiter, request).await;

            let (status, headers, text) = match outcome {
                Ok(reply) => reply,
                Err(e) => {
                    let message = describe_transport(&e);
                    let retry = (e.is_connect() || idempotent) && !is_certificate_error(&e);
                    if retry && attempt < self.backoff.attempts {
                        tracing::debug!(
                            path,
                            attempt,
                            "Magento request failed: {message}; retrying"
                        );
                        tokio::time::sleep(self.backoff.delay(attempt, None)).await;
                        continue;
                    }
                    return Err(if attempt > 1 {
                        MagentoError::GaveUp {
                            method: method.to_string(),
                            path: path.to_string(),
                            attempts: attempt,
                            last: message,
                        }
                    } else {
                        MagentoError::Transport {
                            method: method.to_string(),
                            path: path.to_string(),
                            message,
                        }
                    });
                }
            };
            if status.is_success() {
                if text.trim().is_empty() {
                    return Ok(Value::Null);
                }
                return serde_json::from_str(&text).map_err(|e| MagentoError::BadReply {
                    method: method.to_string(),
                    path: path.to_string(),
                    message: format!("{} with a body that is not JSON ({e})", status.as_u16()),
                });
            }
            let message = error_message(&text);
            if status == StatusCode::UNAUTHORIZED {
                return Err(MagentoError::Unauthorized {
                    method: method.to_string(),
                    path: path.to_string(),
                    message,
                });
            }
            let retryable = status == StatusCode::TOO_MANY_REQUESTS
                || (status.is_server_error() && idempotent)
                || (status == StatusCode::BAD_REQUEST && is_transient_400(&message));
            if retryable && attempt < self.backoff.attempts {
                let wait = self.backoff.delay(attempt, retry_after(&headers));
                tracing::debug!(path, attempt, status = status.as_u16(), ?wait, "retrying");
                tokio::time::sleep(wait).await;
                continue;
            }
            if retryable {
                return Err(MagentoError::GaveUp {
                    method: method.to_string(),
                    path: path.to_string(),
                    attempts: attempt,
                    last: format!("{}: {message}", status.as_u16()),
                });
            }
            let message = if status == StatusCode::NOT_FOUND && is_route_miss(&message) {
                format!(
                    "{message} (no such route at {}: check magento.url and magento.store_code `{store}`)",
                    self.base
                )
            } else {
                message
            };
            return Err(MagentoError::Http {
                method: method.to_string(),
                path: path.to_string(),
                status: status.as_u16(),
                message,
                body: serde_json::from_str(&text).ok(),
            });
        }
    }
}

/// A call running on a task of its own ([`MagentoClient::send_detached`]); aborted on drop, so
/// an interrupted run sends nothing more.
pub struct Detached(tokio::task::JoinHandle<Result<Value, MagentoError>>);

impl std::future::Future for Detached {
    type Output = Result<Value, MagentoError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0)
            .poll(cx)
            .map(|joined| match joined {
                Ok(reply) => reply,
                // Only a panic in the call ends the task otherwise (it is aborted only on drop).
                Err(e) => std::panic::resume_unwind(e.into_panic()),
            })
    }
}

impl Drop for Detached {
    fn drop(&mut self) {
        self.0.abort();
    }
}
