//! The Acumatica client every flow uses: a small pool of sessions (each one API user), the
//! licence limits kept on the client side, re-login on 401, retries with backoff, and logout
//! of every session when the work is done.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::header::{self, HeaderMap};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::sync::Mutex;

use super::error::{AcumaticaError, error_message, is_no_entity};
use crate::config::{AcumaticaAuth, Config};
use crate::http::{Backoff, RequestLimiter, describe_transport, is_certificate_error, retry_after};
use crate::secret::Secret;

/// How a write may treat an existing record (`PUT` is insert-or-update by key otherwise).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precondition {
    /// `If-None-Match: *` — insert only; 412 if the record exists.
    InsertOnly,
    /// `If-Match: *` — update only; 412 if it does not.
    UpdateOnly,
}

/// A request body.
#[derive(Clone, Copy)]
enum Body<'a> {
    Json(&'a Value),
    Xml(&'a str),
}

/// What kind of request `send_as` sends, where it changes authentication or retries.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Plain,
    /// OData in session mode: Basic credentials.
    Basic,
    /// The status of a running action: a 500 with an Acumatica (`PX.…`) exception is the
    /// action's outcome (it failed), not a server failure worth asking again.
    ActionStatus,
}

/// A reply, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn json(&self, method: &str, path: &str) -> Result<Value, AcumaticaError> {
        if self.body.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&self.body).map_err(|e| AcumaticaError::BadReply {
            method: method.to_string(),
            path: path.to_string(),
            message: format!("not JSON ({e})"),
        })
    }
}

struct Login {
    auth: AcumaticaAuth,
    username: String,
    password: Secret,
    tenant: String,
    branch: Option<String>,
    client_id: Option<String>,
    client_secret: Option<Secret>,
}

#[derive(Default)]
struct SessionState {
    logged_in: bool,
    /// Bumped at each login, so concurrent 401s on one session log in once.
    generation: u64,
    bearer: Option<Secret>,
    refresh_token: Option<Secret>,
}

struct Session {
    http: reqwest::Client,
    state: Mutex<SessionState>,
    /// Mirrors `state.logged_in`, readable without waiting for a login in progress.
    open: AtomicBool,
    /// Until when (ms since the client started) the licence refused this session a login:
    /// requests go to the open sessions meanwhile.
    refused_until_ms: AtomicU64,
}

/// How long a session the licence refused is left alone while others carry the work.
const REFUSED_SESSION_PAUSE: Duration = Duration::from_secs(30);

pub struct AcumaticaClient {
    site: String,
    entity_base: String,
    login: Login,
    sessions: Vec<Session>,
    next_session: AtomicUsize,
    started: std::time::Instant,
    limiter: RequestLimiter,
    backoff: Backoff,
    /// The login tasks not finished (see [`AcumaticaClient::login_exchange`]); `close` waits
    /// for them, so a login whose caller gave up is logged out before the process ends.
    logins: Arc<PendingLogins>,
}

/// How many login tasks run, and a wake-up when one ends.
#[derive(Default)]
struct PendingLogins {
    running: AtomicUsize,
    ended: tokio::sync::Notify,
}

/// Counts a login task for as long as it lives, however it ends.
struct PendingLogin(Arc<PendingLogins>);

impl PendingLogin {
    fn start(pending: &Arc<PendingLogins>) -> PendingLogin {
        pending.running.fetch_add(1, Ordering::SeqCst);
        PendingLogin(pending.clone())
    }
}

impl Drop for PendingLogin {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::SeqCst);
        self.0.ended.notify_waiters();
    }
}

/// A login's reply as its task hands it over. `kept` is sent once the caller has the session
/// (cookie or token): a reply dropped before that leaves the task to log the session out.
struct LoginReply {
    outcome: Result<crate::http::Reply, reqwest::Error>,
    kept: tokio::sync::oneshot::Sender<()>,
}

/// Ends a session: `http` carries its cookie (a session login), `bearer` its token (OAuth 2.0).
/// Errors are logged, not returned: on the way out there is nothing left to do about them.
async fn log_out(
    limiter: &RequestLimiter,
    http: &reqwest::Client,
    site: &str,
    bearer: Option<&str>,
) {
    let mut request = http.post(format!("{site}/entity/auth/logout"));
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    match crate::http::exchange(limiter, request).await {
        Ok((status, _, _)) if status.is_success() || status == StatusCode::UNAUTHORIZED => {}
        Ok((status, _, _)) => tracing::warn!("Acumatica logout answered {status}"),
        Err(e) => tracing::warn!("Acumatica logout failed: {}", describe_transport(&e)),
    }
}

/// How long `close` waits for logins abandoned by their caller to be logged out.
const ABANDONED_LOGIN_WAIT: Duration = Duration::from_secs(15);

impl std::fmt::Debug for AcumaticaClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcumaticaClient")
            .field("site", &self.site)
            .field("user", &self.login.username)
            .field("tenant", &self.login.tenant)
            .field("sessions", &self.sessions.len())
            .finish()
    }
}

impl AcumaticaClient {
    /// A client for the configured tenant. Nothing is sent until the first request.
    pub fn new(config: &Config) -> anyhow::Result<AcumaticaClient> {
        let a = &config.acumatica;
        let password = config.require(&a.password, "acumatica.password")?.clone();
        let client_secret = match a.auth {
            AcumaticaAuth::Oauth2 => Some(
                config
                    .require(&a.client_secret, "acumatica.client_secret")?
                    .clone(),
            ),
            AcumaticaAuth::Session => None,
        };
        let sessions = (0..a.max_sessions)
            .map(|_| {
                let http = crate::http::with_roots(reqwest::Client::builder(), &a.extra_roots)
                    .cookie_store(true)
                    .timeout(Duration::from_secs(a.timeout_secs.into()))
                    .connect_timeout(Duration::from_secs(15))
                    .user_agent(concat!("connector/", env!("CARGO_PKG_VERSION")))
                    .build()?;
                Ok(Session {
                    http,
                    state: Mutex::new(SessionState::default()),
                    open: AtomicBool::new(false),
                    refused_until_ms: AtomicU64::new(0),
                })
            })
            .collect::<Result<Vec<_>, reqwest::Error>>()?;
        Ok(AcumaticaClient {
            site: a.url.clone(),
            entity_base: format!("{}/entity/{}/{}", a.url, a.endpoint, a.endpoint_version),
            login: Login {
                auth: a.auth,
                username: a.username.clone(),
                password,
                tenant: a.tenant.clone(),
                branch: a.branch.clone(),
                client_id: a.client_id.clone(),
                client_secret,
            },
            sessions,
            next_session: AtomicUsize::new(0),
            started: std::time::Instant::now(),
            limiter: RequestLimiter::new(a.max_concurrent_requests, Some(a.requests_per_minute)),
            backoff: Backoff::default(),
            logins: Arc::new(PendingLogins::default()),
        })
    }

    /// Replaces the retry policy (tests use short waits).
    pub fn with_backoff(mut self, backoff: Backoff) -> AcumaticaClient {
        self.backoff = backoff;
        self
    }

    /// The site URL (`acumatica.url`).
    pub fn site(&self) -> &str {
        &self.site
    }

    /// `GET` on the contract-based endpoint: `path` is relative to it, query included
    /// (`/StockItem?$filter=…`).
    pub async fn get(&self, path: &str) -> Result<Value, AcumaticaError> {
        let url = format!("{}{}", self.entity_base, path);
        let reply = self.send(Method::GET, &url, None, None, true).await?;
        reply.json("GET", path)
    }

    /// `PUT` (insert-or-update by key) on the contract-based endpoint; returns the record.
    pub async fn put(
        &self,
        path: &str,
        body: &Value,
        precondition: Option<Precondition>,
    ) -> Result<Value, AcumaticaError> {
        let url = format!("{}{}", self.entity_base, path);
        let reply = self
            .send(Method::PUT, &url, Some(body), precondition, true)
            .await?;
        reply.json("PUT", path)
    }

    /// `DELETE` on the contract-based endpoint.
    pub async fn delete(&self, path: &str) -> Result<(), AcumaticaError> {
        let url = format!("{}{}", self.entity_base, path);
        self.send(Method::DELETE, &url, None, None, true).await?;
        Ok(())
    }

    /// Invokes an action (`POST /{Entity}/{Action}`) and waits for it: 202 + `Location` is
    /// polled until it answers 204.
    pub async fn invoke(
        &self,
        entity: &str,
        action: &str,
        body: &Value,
    ) -> Result<(), AcumaticaError> {
        let path = format!("/{entity}/{action}");
        let url = format!("{}{}", self.entity_base, path);
        // Not retried on 5xx: the action may have run.
        let reply = self
            .send(Method::POST, &url, Some(body), None, false)
            .await?;
        if reply.status == 204 || reply.status == 200 {
            return Ok(());
        }
        let location = reply
            .headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| AcumaticaError::BadReply {
                method: "POST".into(),
                path: path.clone(),
                message: format!("{} without a Location to poll", reply.status),
            })?;
        let poll_url = url::Url::parse(&self.site)
            .and_then(|site| site.join(location))
            .map_err(|e| AcumaticaError::BadReply {
                method: "POST".into(),
                path: path.clone(),
                message: format!("Location {location:?} is not a URL ({e})"),
            })?
            .to_string();
        let mut wait = Duration::from_millis(100);
        for _ in 0..600 {
            tokio::time::sleep(wait).await;
            let poll = self
                .send_as(Method::GET, &poll_url, None, None, true, Mode::ActionStatus)
                .await?;
            match poll.status {
                204 | 200 => return Ok(()),
                202 => wait = (wait * 2).min(Duration::from_secs(2)),
                other => {
                    return Err(AcumaticaError::Http {
                        method: "GET".into(),
                        path: location.to_string(),
                        status: other,
                        message: error_message(&poll.body),
                        body: serde_json::from_str(&poll.body).ok(),
                    });
                }
            }
        }
        Err(AcumaticaError::GaveUp {
            method: "POST".into(),
            path,
            attempts: 600,
            last: "the action was still running".into(),
        })
    }

    /// Sends a request to any URL of the site with a session, honouring limits, re-logging in
    /// once on 401 and retrying what can be retried. Non-2xx replies become errors.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
        precondition: Option<Precondition>,
        idempotent: bool,
    ) -> Result<Reply, AcumaticaError> {
        self.send_as(
            method,
            url,
            body.map(Body::Json),
            precondition,
            idempotent,
            Mode::Plain,
        )
        .await
    }

    /// Reads a Generic Inquiry over OData (`/t/{tenant}/api/odata/gi/{gi}`), whose feed
    /// authenticates with Basic credentials (session mode) or the OAuth bearer token.
    pub async fn odata(&self, gi: &str, query: &[(&str, String)]) -> Result<Value, AcumaticaError> {
        let mut url = url::Url::parse(&format!(
            "{}/t/{}/api/odata/gi/{}",
            self.site, self.login.tenant, gi
        ))
        .map_err(|e| AcumaticaError::BadReply {
            method: "GET".into(),
            path: format!("/t/{}/api/odata/gi/{gi}", self.login.tenant),
            message: format!("cannot build the URL: {e}"),
        })?;
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        let mode = match self.login.auth {
            AcumaticaAuth::Session => Mode::Basic,
            AcumaticaAuth::Oauth2 => Mode::Plain,
        };
        let reply = self
            .send_as(Method::GET, url.as_str(), None, None, true, mode)
            .await?;
        reply.json("GET", url.path())
    }

    /// Posts an XML document (the endpoint maintenance API takes the endpoint as XML).
    pub async fn post_xml(&self, url: &str, xml: &str) -> Result<Reply, AcumaticaError> {
        self.send_as(
            Method::POST,
            url,
            Some(Body::Xml(xml)),
            None,
            true,
            Mode::Plain,
        )
        .await
    }

    async fn send_as(
        &self,
        method: Method,
        url: &str,
        body: Option<Body<'_>>,
        precondition: Option<Precondition>,
        idempotent: bool,
        mode: Mode,
    ) -> Result<Reply, AcumaticaError> {
        let path = url.strip_prefix(&self.site).unwrap_or(url).to_string();
        let (mut index, mut generation) = self.session_for_request().await?;
        let mut session = &self.sessions[index];
        let mut relogged = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request = session.http.request(method.clone(), url);
            if let Some(bearer) = &session.state.lock().await.bearer {
                request = request.bearer_auth(bearer.expose());
            } else if mode == Mode::Basic {
                request =
                    request.basic_auth(&self.login.username, Some(self.login.password.expose()));
            }
            request = request.header(header::ACCEPT, "application/json");
            match precondition {
                Some(Precondition::InsertOnly) => {
                    request = request.header(header::IF_NONE_MATCH, "*")
                }
                Some(Precondition::UpdateOnly) => request = request.header(header::IF_MATCH, "*"),
                None => {}
            }
            match body {
                Some(Body::Json(json)) => request = request.json(json),
                Some(Body::Xml(xml)) => {
                    request = request
                        .header(header::CONTENT_TYPE, "application/xml")
                        .body(xml.to_string())
                }
                None => {}
            }
            let outcome = crate::http::exchange(&self.limiter, request).await;

            let (status, headers, text) = match outcome {
                Ok(reply) => reply,
                Err(e) => {
                    // Not sent at all: always safe to retry. Sent but cut: only if idempotent.
                    // A refused certificate: asking again cannot help.
                    let retry = (e.is_connect() || idempotent) && !is_certificate_error(&e);
                    if retry && attempt < self.backoff.attempts {
                        tracing::debug!(%path, attempt, "Acumatica request failed: {e}; retrying");
                        tokio::time::sleep(self.backoff.delay(attempt, None)).await;
                        continue;
                    }
                    let message = describe_transport(&e);
                    return Err(if attempt > 1 {
                        AcumaticaError::GaveUp {
                            method: method.to_string(),
                            path,
                            attempts: attempt,
                            last: message,
                        }
                    } else {
                        AcumaticaError::Transport {
                            method: method.to_string(),
                            path,
                            message,
                        }
                    });
                }
            };

            if status.is_success() || status.is_redirection() {
                return Ok(Reply {
                    status: status.as_u16(),
                    headers,
                    body: text,
                });
            }
            if status == StatusCode::UNAUTHORIZED && !relogged {
                // The session expired (or the server restarted): log in again, once.
                tracing::debug!(%path, "Acumatica answered 401; logging in again");
                match self.relogin(index, generation).await {
                    Ok(g) => generation = g,
                    Err(e) if e.is_login_limit() && self.any_other_open(index) => {
                        // The licence gave this session's slot away: carry on with another.
                        self.refuse(index);
                        (index, generation) = self.session_for_request().await?;
                        session = &self.sessions[index];
                    }
                    Err(e) => return Err(e),
                }
                relogged = true;
                attempt -= 1;
                continue;
            }
            let login_limit = text.contains("API Login Limit");
            let body: Option<Value> = serde_json::from_str(&text).ok();
            // A missing record is a 500 too (NoEntitySatisfiesTheConditionException): asking
            // again will not make it exist.
            let missing = status == StatusCode::INTERNAL_SERVER_ERROR
                && is_no_entity(&error_message(&text), body.as_ref());
            let action_failed = mode == Mode::ActionStatus
                && status == StatusCode::INTERNAL_SERVER_ERROR
                && body
                    .as_ref()
                    .and_then(|b| b.get("exceptionType"))
                    .and_then(Value::as_str)
                    // Acumatica's own (PX.Data.PXException…): the action's verdict. A
                    // System.* exception or a proxy page is still a failure to ask again.
                    .is_some_and(|t| t.starts_with("PX."));
            // A deadlock victim's transaction was rolled back: nothing happened, so asking
            // again is safe for any request (SQL Server's "deadlocked on lock resources …
            // Rerun the transaction", whatever status Acumatica wraps it in).
            let deadlock = (status == StatusCode::BAD_REQUEST || status.is_server_error())
                && error_message(&text)
                    .to_ascii_lowercase()
                    .contains("deadlock");
            let retryable = status == StatusCode::TOO_MANY_REQUESTS
                || login_limit
                || deadlock
                || (status.is_server_error() && idempotent && !missing && !action_failed);
            if retryable && attempt < self.backoff.attempts {
                let wait = self.backoff.delay(attempt, retry_after(&headers));
                tracing::debug!(%path, attempt, status = status.as_u16(), ?wait, "retrying");
                tokio::time::sleep(wait).await;
                continue;
            }
            let message = error_message(&text);
            if retryable {
                return Err(AcumaticaError::GaveUp {
                    method: method.to_string(),
                    path,
                    attempts: attempt,
                    last: format!("{}: {message}", status.as_u16()),
                });
            }
            return Err(AcumaticaError::Http {
                method: method.to_string(),
                path,
                status: status.as_u16(),
                message,
                body,
            });
        }
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn is_refused(&self, index: usize) -> bool {
        self.sessions[index]
            .refused_until_ms
            .load(Ordering::Relaxed)
            > self.now_ms()
    }

    fn refuse(&self, index: usize) {
        let until = self.now_ms() + REFUSED_SESSION_PAUSE.as_millis() as u64;
        self.sessions[index]
            .refused_until_ms
            .store(until, Ordering::Relaxed);
    }

    /// Whether a session other than `index` is logged in.
    fn any_other_open(&self, index: usize) -> bool {
        self.sessions
            .iter()
            .enumerate()
            .any(|(i, s)| i != index && s.open.load(Ordering::Relaxed))
    }

    /// The session for the next request, logged in: the pool's sessions in turn, except one
    /// the licence refused a login a moment ago while others are open — a pool that cannot
    /// grow to `max_sessions` works with the sessions it has instead of failing.
    async fn session_for_request(&self) -> Result<(usize, u64), AcumaticaError> {
        let n = self.sessions.len();
        let start = self.next_session.fetch_add(1, Ordering::Relaxed) % n;
        let mut order: Vec<usize> = (0..n)
            .map(|k| (start + k) % n)
            .filter(|&i| !self.is_refused(i) || !self.any_other_open(i))
            .collect();
        if order.is_empty() {
            order.push(start);
        }
        let mut last = None;
        for index in order {
            match self.ensure_logged_in(index).await {
                Ok(generation) => return Ok((index, generation)),
                Err(e) if e.is_login_limit() && self.any_other_open(index) => {
                    self.refuse(index);
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.expect("at least one session was tried"))
    }

    /// Logs the session in if it is not; returns its login generation.
    async fn ensure_logged_in(&self, index: usize) -> Result<u64, AcumaticaError> {
        let session = &self.sessions[index];
        let mut state = session.state.lock().await;
        if !state.logged_in {
            if self.is_refused(index) && self.any_other_open(index) {
                // Refused while this request waited for the session: do not ask again now.
                return Err(AcumaticaError::LoginLimit {
                    url: self.site.clone(),
                    user: self.login.username.clone(),
                    attempts: 0,
                    message: "refused a moment ago".into(),
                });
            }
            self.login(index, &mut state).await?;
        }
        Ok(state.generation)
    }

    /// Logs in again unless another request already did since `seen_generation`.
    async fn relogin(&self, index: usize, seen_generation: u64) -> Result<u64, AcumaticaError> {
        let session = &self.sessions[index];
        let mut state = session.state.lock().await;
        if state.generation == seen_generation {
            state.logged_in = false;
            session.open.store(false, Ordering::Relaxed);
            self.login(index, &mut state).await?;
        }
        Ok(state.generation)
    }

    async fn login(&self, index: usize, state: &mut SessionState) -> Result<(), AcumaticaError> {
        let session = &self.sessions[index];
        let path = match self.login.auth {
            AcumaticaAuth::Session => "/entity/auth/login",
            AcumaticaAuth::Oauth2 => "/identity/connect/token",
        };
        // OAuth 2.0: a refresh token first when there is one; the password grant if it is refused.
        let mut refresh = state.refresh_token.take();
        let url = format!("{}{}", self.site, path);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let request = match self.login.auth {
                AcumaticaAuth::Session => {
                    let mut body = serde_json::json!({
                        "name": self.login.username,
                        "password": self.login.password.expose(),
                        "tenant": self.login.tenant,
                    });
                    if let Some(branch) = &self.login.branch {
                        body["branch"] = Value::String(branch.clone());
                    }
                    session.http.post(&url).json(&body)
                }
                AcumaticaAuth::Oauth2 => {
                    let client_secret = self.login.client_secret.as_ref().map(Secret::expose);
                    let mut form = vec![
                        (
                            "client_id",
                            self.login.client_id.as_deref().unwrap_or_default(),
                        ),
                        ("client_secret", client_secret.unwrap_or_default()),
                        ("scope", "api offline_access"),
                    ];
                    match &refresh {
                        Some(token) => {
                            form.push(("grant_type", "refresh_token"));
                            form.push(("refresh_token", token.expose()));
                        }
                        None => {
                            form.push(("grant_type", "password"));
                            form.push(("username", &self.login.username));
                            form.push(("password", self.login.password.expose()));
                        }
                    }
                    session.http.post(&url).form(&form)
                }
            };
            let LoginReply { outcome, kept } = self.login_exchange(index, request).await;
            let (status, headers, text) = match outcome {
                Ok(x) => x,
                Err(e) if attempt < self.backoff.attempts => {
                    tracing::debug!("Acumatica login failed: {e}; retrying");
                    tokio::time::sleep(self.backoff.delay(attempt, None)).await;
                    continue;
                }
                Err(e) => {
                    return Err(AcumaticaError::Transport {
                        method: "POST".into(),
                        path: path.into(),
                        message: describe_transport(&e),
                    });
                }
            };
            if status.is_success() {
                if self.login.auth == AcumaticaAuth::Oauth2 {
                    let token: Value =
                        serde_json::from_str(&text).map_err(|e| AcumaticaError::BadReply {
                            method: "POST".into(),
                            path: path.into(),
                            message: format!("token reply is not JSON ({e})"),
                        })?;
                    let access =
                        token["access_token"]
                            .as_str()
                            .ok_or_else(|| AcumaticaError::BadReply {
                                method: "POST".into(),
                                path: path.into(),
                                message: "token reply has no access_token".into(),
                            })?;
                    state.bearer = Some(Secret::new(access));
                    state.refresh_token = token["refresh_token"].as_str().map(Secret::new);
                }
                state.logged_in = true;
                state.generation += 1;
                session.open.store(true, Ordering::Relaxed);
                session.refused_until_ms.store(0, Ordering::Relaxed);
                // The session is this client's now: `close` logs it out.
                let _ = kept.send(());
                return Ok(());
            }
            // Over the licence's API-user limit: 429, or 500 with "API Login Limit".
            let over_limit =
                status == StatusCode::TOO_MANY_REQUESTS || text.contains("API Login Limit");
            let refused = matches!(status.as_u16(), 400 | 401 | 403)
                || (!over_limit && text.to_ascii_lowercase().contains("credentials"));
            if refused {
                if refresh.take().is_some() {
                    // The refresh token expired or was revoked: the password grant instead.
                    continue;
                }
                return Err(AcumaticaError::LoginRejected {
                    url: self.site.clone(),
                    user: self.login.username.clone(),
                    tenant: self.login.tenant.clone(),
                    message: error_message(&text),
                    check: match self.login.auth {
                        AcumaticaAuth::Session => {
                            "acumatica.username, acumatica.password (or CONNECTOR_ACUMATICA_PASSWORD) and acumatica.tenant"
                        }
                        AcumaticaAuth::Oauth2 => {
                            "acumatica.client_id, acumatica.client_secret (or CONNECTOR_ACUMATICA_CLIENT_SECRET), acumatica.username, acumatica.password (or CONNECTOR_ACUMATICA_PASSWORD), and that the connected application (SM303010) allows the resource owner password flow"
                        }
                    },
                });
            }
            // Over the limit while another session of the pool is open: that one carries the
            // work (the caller falls back to it); no point waiting for a slot here.
            let impatient = over_limit && self.any_other_open(index);
            if (over_limit || status.is_server_error())
                && attempt < self.backoff.attempts
                && !impatient
            {
                let wait = self.backoff.delay(attempt, retry_after(&headers));
                tracing::info!(
                    status = status.as_u16(),
                    ?wait,
                    "Acumatica login refused for now (licence limit?); retrying"
                );
                tokio::time::sleep(wait).await;
                continue;
            }
            let message = error_message(&text);
            return Err(if over_limit {
                AcumaticaError::LoginLimit {
                    url: self.site.clone(),
                    user: self.login.username.clone(),
                    attempts: attempt,
                    message,
                }
            } else {
                AcumaticaError::Http {
                    method: "POST".into(),
                    path: path.into(),
                    status: status.as_u16(),
                    message,
                    body: None,
                }
            });
        }
    }

    /// Sends a login on a task that outlives its caller. Acumatica opens the session when it
    /// handles the login, before its reply arrives: a caller that gave up meanwhile (Ctrl-C,
    /// SIGTERM) never saw the cookie or token, and the session held a licence slot until it
    /// expired. The task logs out such a session itself — also when the reply reached the
    /// caller but the caller was dropped before keeping the session — and sends nothing at
    /// all if the caller is gone while the login still waits for a slot.
    /// [`AcumaticaClient::close`] waits for these tasks.
    fn login_exchange(
        &self,
        index: usize,
        request: reqwest::RequestBuilder,
    ) -> impl std::future::Future<Output = LoginReply> + use<> {
        let (mut reply_to, reply) = tokio::sync::oneshot::channel::<LoginReply>();
        let limiter = self.limiter.clone();
        let http = self.sessions[index].http.clone();
        let site = self.site.clone();
        let pending = PendingLogin::start(&self.logins);
        tokio::spawn(async move {
            let _pending = pending;
            let permit = tokio::select! {
                permit = limiter.acquire() => permit,
                () = reply_to.closed() => return,
            };
            let outcome = crate::http::send_whole(request).await;
            drop(permit);
            let opened = matches!(&outcome, Ok((status, _, _)) if status.is_success());
            // An OAuth 2.0 login's session is its token; a session login's is the cookie,
            // in this session's jar.
            let token = match &outcome {
                Ok((_, _, text)) if opened => serde_json::from_str::<Value>(text)
                    .ok()
                    .and_then(|v| v["access_token"].as_str().map(String::from)),
                _ => None,
            };
            let (kept, was_kept) = tokio::sync::oneshot::channel();
            let abandoned = match reply_to.send(LoginReply { outcome, kept }) {
                Err(_) => true,
                Ok(()) => was_kept.await.is_err(),
            };
            if !(opened && abandoned) {
                return;
            }
            log_out(&limiter, &http, &site, token.as_deref()).await;
            tracing::debug!("logged out a session whose login was abandoned");
        });
        async move {
            reply
                .await
                .expect("the login task sends its reply unless it panicked")
        }
    }

    /// Logs out every open session. Call it on every path out — an abandoned session holds a
    /// licence slot for about ten minutes. Errors are logged, not returned: there is nothing
    /// left to do about them.
    pub async fn close(&self) {
        for session in &self.sessions {
            let mut state = session.state.lock().await;
            if !state.logged_in {
                continue;
            }
            log_out(
                &self.limiter,
                &session.http,
                &self.site,
                state.bearer.as_ref().map(Secret::expose),
            )
            .await;
            *state = SessionState::default();
            session.open.store(false, Ordering::Relaxed);
        }
        // Logins whose caller gave up log their session out on their own task: wait for them,
        // within a bound (a logout stuck on an unreachable site must not hold the exit).
        let pending = &self.logins;
        let all_ended = async {
            loop {
                let ended = pending.ended.notified();
                tokio::pin!(ended);
                ended.as_mut().enable();
                if pending.running.load(Ordering::SeqCst) == 0 {
                    break;
                }
                ended.await;
            }
        };
        if tokio::time::timeout(ABANDONED_LOGIN_WAIT, all_ended)
            .await
            .is_err()
        {
            tracing::warn!(
                "an Acumatica login abandoned by Ctrl-C was not logged out within {} s; its session ends when Acumatica expires it",
                ABANDONED_LOGIN_WAIT.as_secs()
            );
        }
    }

    /// Sessions this client holds open right now.
    pub async fn open_sessions(&self) -> usize {
        let mut open = 0;
        for session in &self.sessions {
            if session.state.lock().await.logged_in {
                open += 1;
            }
        }
        open
    }
}
