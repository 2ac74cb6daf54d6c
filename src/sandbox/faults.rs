//! Faults and request counting shared by both simulated systems.
//!
//! Every request to a system's API routes (not its `/__sandbox/…` control routes) passes
//! through [`FaultInjector::middleware`], which counts it by route template and, as the knobs
//! say, delays it, answers it with a server error or a 429, or lets the handler run and then
//! cuts the connection before the reply is complete (the nastiest case for a client: the write
//! happened, the client cannot know).
//!
//! Besides those rates, `scripted` faults hit the next matching requests exactly: each names
//! a route (as counted, e.g. `"PUT /magento/rest/{store}/V1/products/{sku}"`, or the request's
//! own path, e.g. `"PUT /acumatica/entity/Default/24.200.001/SalesOrder"`; none: any API
//! route), a kind and how many requests it hits (`times`, default 1), and is used up as it
//! fires — so a test can inject one 503 into one product save, or one slow reply into one
//! OData read, and then watch the client recover.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

/// Which simulated system a fault answers for: each has its own error bodies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum System {
    Acumatica,
    Magento,
}

/// The fault knobs. All rates are fractions of requests between 0 and 1.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Added to every request before it is handled.
    pub latency_ms: u64,
    /// Fraction answered with a server error (500 with the system's body, or 502/503 from the
    /// "proxy" in front of it with an HTML body) without running the handler.
    pub error_rate: f64,
    /// Fraction answered 429 without running the handler.
    pub rate_limit_rate: f64,
    /// `Retry-After` seconds sent with an injected 429; none: no header.
    pub retry_after_secs: Option<u64>,
    /// Fraction whose handler runs and whose connection is then cut mid-reply.
    pub drop_rate: f64,
    /// Faults for the next matching requests, in order; each is used up as it fires.
    pub scripted: Vec<ScriptedFault>,
}

/// One scripted fault: what the next `times` requests on `route` get.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptedFault {
    /// The route as the request counts name it (method, space, route template), or the
    /// method and the request's own path; none: any.
    #[serde(default)]
    pub route: Option<String>,
    pub kind: FaultKind,
    /// `Retry-After` seconds on a 429 or 503; none: no header.
    #[serde(default)]
    pub retry_after_secs: Option<u64>,
    /// `slow`: how long the reply is held back after the handler ran.
    #[serde(default)]
    pub delay_ms: u64,
    /// How many matching requests it hits.
    #[serde(default = "one")]
    pub times: u32,
}

fn one() -> u32 {
    1
}

/// What a scripted fault answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// The application's own 500 (the system's error body); the handler does not run.
    #[serde(rename = "500")]
    Status500,
    /// A proxy's 502 HTML page; the handler does not run.
    #[serde(rename = "502")]
    Status502,
    /// A proxy's 503 HTML page (with `Retry-After` when set); the handler does not run.
    #[serde(rename = "503")]
    Status503,
    /// 429 with the system's body (with `Retry-After` when set); the handler does not run.
    #[serde(rename = "429")]
    Status429,
    /// The handler runs, then the connection is cut mid-reply.
    Drop,
    /// The handler runs, then the reply is held back `delay_ms` (longer than the client
    /// waits: the write happened, the client timed out).
    Slow,
    /// 401: Acumatica's session expired (the request's session is really ended, so it must
    /// sign in again); Magento's token refused. The handler does not run.
    #[serde(rename = "401")]
    Unauthorized,
    /// Acumatica's licence refusing a sign-in: 500 "API Login Limit" (use it on the login
    /// route). The handler does not run.
    LoginLimit,
    /// A database deadlock the application reports as 400 (Magento: "Database deadlock
    /// found when trying to get lock"; Acumatica: SQL Server's deadlock-victim message).
    /// The handler does not run: the transaction was rolled back.
    Deadlock,
    /// The handler runs; its reply is replaced by a 200 whose JSON body is cut short.
    MalformedJson,
    /// The handler runs; its reply is replaced by a 200 with well-formed JSON of the wrong
    /// shape (a list where an object is expected, an object where a list is).
    WrongShape,
}

impl FaultKind {
    /// The counter an injected fault of this kind is noted under.
    fn counter(self) -> &'static str {
        match self {
            FaultKind::Status500 | FaultKind::Status502 | FaultKind::Status503 => "server_error",
            FaultKind::Status429 => "rate_limited",
            FaultKind::Drop => "dropped",
            FaultKind::Slow => "slow",
            FaultKind::Unauthorized => "unauthorized",
            FaultKind::LoginLimit => "login_limit",
            FaultKind::Deadlock => "deadlock",
            FaultKind::MalformedJson => "malformed_json",
            FaultKind::WrongShape => "wrong_shape",
        }
    }
}

impl Faults {
    pub fn validate(&self) -> Result<(), String> {
        for (name, rate) in [
            ("error_rate", self.error_rate),
            ("rate_limit_rate", self.rate_limit_rate),
            ("drop_rate", self.drop_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{name} must be between 0 and 1, got {rate}"));
            }
        }
        for (i, f) in self.scripted.iter().enumerate() {
            if f.times == 0 {
                return Err(format!("scripted[{i}].times must be at least 1"));
            }
            if f.kind == FaultKind::Slow && f.delay_ms == 0 {
                return Err(format!("scripted[{i}]: a slow reply needs delay_ms"));
            }
        }
        Ok(())
    }
}

/// Counts requests per route and injects faults for one simulated system.
pub struct FaultInjector {
    system: System,
    faults: Mutex<Faults>,
    rng: Mutex<StdRng>,
    requests: Mutex<BTreeMap<String, u64>>,
    injected: Mutex<BTreeMap<&'static str, u64>>,
    total: AtomicU64,
    /// Ends the session a request signed in with (the system installs it): a scripted 401.
    session_expirer: OnceLock<SessionExpirer>,
    /// Requests in flight now (from arrival to the reply's head), their peak, the cap a bench
    /// set (0: none) and how many requests arrived while the cap was already reached.
    in_flight: AtomicU64,
    peak_in_flight: AtomicU64,
    concurrency_cap: AtomicU64,
    over_cap: AtomicU64,
    /// When the first counted request arrived and the last one was answered.
    active: Mutex<Option<(std::time::Instant, std::time::Instant)>>,
    /// The summed time of the counted requests, arrival to reply (nanoseconds): over the
    /// active window and the cap, how full a client kept its slots.
    busy_nanos: AtomicU64,
}

/// Decrements the in-flight count when a request's handling ends, however it ends.
struct InFlight<'a>(&'a FaultInjector, std::time::Instant);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0
            .busy_nanos
            .fetch_add(self.1.elapsed().as_nanos() as u64, Ordering::Relaxed);
        if let Some((_, last)) = self.0.active.lock().unwrap().as_mut() {
            *last = std::time::Instant::now();
        }
    }
}

type SessionExpirer = Box<dyn Fn(&axum::http::HeaderMap) + Send + Sync>;

enum Decision {
    Pass,
    ServerError(u16),
    RateLimited,
    Drop,
    Scripted(ScriptedFault),
}

impl FaultInjector {
    pub fn new(system: System, seed: u64, faults: Faults) -> Arc<FaultInjector> {
        Arc::new(FaultInjector {
            system,
            faults: Mutex::new(faults),
            // A different stream per system so the same seed does not fault both alike.
            rng: Mutex::new(StdRng::seed_from_u64(
                seed ^ ((system as u64 + 1) * 0x9E37_79B9),
            )),
            requests: Mutex::new(BTreeMap::new()),
            injected: Mutex::new(BTreeMap::new()),
            total: AtomicU64::new(0),
            session_expirer: OnceLock::new(),
            in_flight: AtomicU64::new(0),
            peak_in_flight: AtomicU64::new(0),
            concurrency_cap: AtomicU64::new(0),
            over_cap: AtomicU64::new(0),
            active: Mutex::new(None),
            busy_nanos: AtomicU64::new(0),
        })
    }

    /// How a scripted 401 ends the request's session (Acumatica's sessions live in its sim).
    pub fn on_session_expired(&self, expire: SessionExpirer) {
        let _ = self.session_expirer.set(expire);
    }

    /// Takes one use of the first scripted fault matching `route` (template) or `path`.
    fn take_scripted(&self, route: &str, path: &str) -> Option<ScriptedFault> {
        let mut faults = self.faults.lock().unwrap();
        let index = faults
            .scripted
            .iter()
            .position(|f| f.route.as_deref().is_none_or(|r| r == route || r == path))?;
        let fault = faults.scripted[index].clone();
        faults.scripted[index].times -= 1;
        if faults.scripted[index].times == 0 {
            faults.scripted.remove(index);
        }
        Some(fault)
    }

    pub fn faults(&self) -> Faults {
        self.faults.lock().unwrap().clone()
    }

    pub fn set_faults(&self, faults: Faults) {
        *self.faults.lock().unwrap() = faults;
    }

    /// Requests seen per route template, e.g. `"GET /rest/{store}/V1/products/{sku}"`.
    pub fn request_counts(&self) -> BTreeMap<String, u64> {
        self.requests.lock().unwrap().clone()
    }

    pub fn total_requests(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// Faults injected so far, by kind (`server_error`, `rate_limited`, `dropped`).
    pub fn injected_counts(&self) -> BTreeMap<&'static str, u64> {
        self.injected.lock().unwrap().clone()
    }

    /// The number of requests a client may have in flight at once (0: no cap). The simulation
    /// does not refuse the ones over it (a real Magento has no such limit; a proxy in front
    /// of it may); it counts them, so a bench can prove a client kept to its configured
    /// `max_concurrent_requests`.
    pub fn set_concurrency_cap(&self, cap: u64) {
        self.concurrency_cap.store(cap, Ordering::Relaxed);
    }

    /// The most requests seen in flight at once.
    pub fn peak_in_flight(&self) -> u64 {
        self.peak_in_flight.load(Ordering::Relaxed)
    }

    /// Requests that arrived while the cap of [`FaultInjector::set_concurrency_cap`] was
    /// already reached.
    pub fn over_cap(&self) -> u64 {
        self.over_cap.load(Ordering::Relaxed)
    }

    /// Forgets the request counts, the peak and the over-cap count (a bench measures one run).
    pub fn reset_counts(&self) {
        self.requests.lock().unwrap().clear();
        self.injected.lock().unwrap().clear();
        self.total.store(0, Ordering::Relaxed);
        self.peak_in_flight.store(0, Ordering::Relaxed);
        self.over_cap.store(0, Ordering::Relaxed);
        *self.active.lock().unwrap() = None;
        self.busy_nanos.store(0, Ordering::Relaxed);
    }

    /// The summed time of the requests counted since [`FaultInjector::reset_counts`], from
    /// arrival to reply: divided by the active window and the cap, how busy the slots were.
    pub fn busy(&self) -> Duration {
        Duration::from_nanos(self.busy_nanos.load(Ordering::Relaxed))
    }

    /// From the first request counted (since the last [`FaultInjector::reset_counts`]) to the
    /// end of the last one: how long the system was being used.
    pub fn active_window(&self) -> Option<Duration> {
        self.active
            .lock()
            .unwrap()
            .map(|(first, last)| last - first)
    }

    /// Counts a request under `key`; systems call it for requests no route matched.
    pub fn count(&self, key: String) {
        self.total.fetch_add(1, Ordering::Relaxed);
        *self.requests.lock().unwrap().entry(key).or_default() += 1;
    }

    fn decide(&self, route: &str, path: &str) -> (Duration, Decision) {
        let scripted = self.take_scripted(route, path);
        let faults = self.faults();
        if let Some(fault) = scripted {
            return (
                Duration::from_millis(faults.latency_ms),
                Decision::Scripted(fault),
            );
        }
        let mut rng = self.rng.lock().unwrap();
        let latency = Duration::from_millis(faults.latency_ms);
        let roll: f64 = rng.random();
        let decision = if roll < faults.error_rate {
            // Mostly the application's own 500; sometimes the proxy in front of it.
            match rng.random_range(0..4) {
                0 => Decision::ServerError(502),
                1 => Decision::ServerError(503),
                _ => Decision::ServerError(500),
            }
        } else if roll < faults.error_rate + faults.rate_limit_rate {
            Decision::RateLimited
        } else if roll < faults.error_rate + faults.rate_limit_rate + faults.drop_rate {
            Decision::Drop
        } else {
            Decision::Pass
        };
        (latency, decision)
    }

    fn note(&self, kind: &'static str) {
        *self.injected.lock().unwrap().entry(kind).or_default() += 1;
    }

    /// The axum middleware; install with `route_layer` so the route template is known.
    pub async fn middleware(
        State(injector): State<Arc<FaultInjector>>,
        request: Request,
        next: Next,
    ) -> Response {
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| request.uri().path().to_string());
        let key = format!("{} {}", request.method(), route);
        injector.count(key.clone());
        // The full path (the system's base path included), as the template has it.
        let path = match request.extensions().get::<axum::extract::OriginalUri>() {
            Some(uri) => format!("{} {}", request.method(), uri.path()),
            None => format!("{} {}", request.method(), request.uri().path()),
        };
        let arrived = std::time::Instant::now();
        let now = injector.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        let _in_flight = InFlight(&injector, arrived);
        injector
            .active
            .lock()
            .unwrap()
            .get_or_insert((arrived, arrived));
        injector.peak_in_flight.fetch_max(now, Ordering::Relaxed);
        let cap = injector.concurrency_cap.load(Ordering::Relaxed);
        if cap > 0 && now > cap {
            injector.over_cap.fetch_add(1, Ordering::Relaxed);
        }

        let (latency, decision) = injector.decide(&key, &path);
        // Every answer goes `latency` after the request arrived. A request that passes is
        // handled at once, as a real system does its work inside its response time: its effect
        // is there even if the client gives up first (the ambiguous timeout a client must
        // survive), and the simulation's own processing is not added on top of the latency a
        // bench sets (it was: 100-item MSI batches took 21.3 ms at L = 20 ms, charged to the
        // client). A fault is answered after the wait.
        let answer_at = arrived + latency;
        if !matches!(decision, Decision::Pass) {
            sleep_until_precisely(answer_at).await;
        }
        match decision {
            Decision::Pass => {
                let response = next.run(request).await;
                sleep_until_precisely(answer_at).await;
                response
            }
            Decision::ServerError(status) => {
                injector.note("server_error");
                injector.server_error(status)
            }
            Decision::RateLimited => {
                injector.note("rate_limited");
                let retry_after = injector.faults().retry_after_secs;
                let mut response =
                    (StatusCode::TOO_MANY_REQUESTS, injector.rate_limited_body()).into_response();
                if let Some(secs) = retry_after {
                    response
                        .headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
                }
                response
            }
            Decision::Drop => {
                let _ = next.run(request).await;
                injector.note("dropped");
                dropped_connection()
            }
            Decision::Scripted(fault) => {
                injector.note(fault.kind.counter());
                injector.scripted(fault, request, next).await
            }
        }
    }

    async fn scripted(&self, fault: ScriptedFault, request: Request, next: Next) -> Response {
        let with_retry_after = |mut response: Response| {
            if let Some(secs) = fault.retry_after_secs {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            response
        };
        match fault.kind {
            FaultKind::Status500 => self.server_error(500),
            FaultKind::Status502 => self.server_error(502),
            FaultKind::Status503 => with_retry_after(self.server_error(503)),
            FaultKind::Status429 => with_retry_after(
                (StatusCode::TOO_MANY_REQUESTS, self.rate_limited_body()).into_response(),
            ),
            FaultKind::Drop => {
                let _ = next.run(request).await;
                dropped_connection()
            }
            FaultKind::Slow => {
                let response = next.run(request).await;
                tokio::time::sleep(Duration::from_millis(fault.delay_ms)).await;
                response
            }
            FaultKind::Unauthorized => {
                if let Some(expire) = self.session_expirer.get() {
                    expire(request.headers());
                }
                self.unauthorized()
            }
            FaultKind::LoginLimit => (
                StatusCode::INTERNAL_SERVER_ERROR,
                axum::Json(serde_json::json!({
                    "message": "An error has occurred.",
                    "exceptionMessage": "API Login Limit",
                    "exceptionType": "PX.Data.PXException",
                    "stackTrace": null
                })),
            )
                .into_response(),
            FaultKind::Deadlock => self.deadlock(),
            FaultKind::MalformedJson => {
                let _ = next.run(request).await;
                (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "application/json")],
                    r#"{"items": [{"sku": "SB"#,
                )
                    .into_response()
            }
            FaultKind::WrongShape => {
                let reply = next.run(request).await;
                let bytes = axum::body::to_bytes(reply.into_body(), usize::MAX)
                    .await
                    .unwrap_or_default();
                let original: serde_json::Value =
                    serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
                // A list where an object was, an object where a list (or nothing) was.
                let wrong = if original.is_array() {
                    serde_json::json!({"unexpected": "an object instead of a list"})
                } else {
                    serde_json::json!([{"unexpected": "a list instead of an object"}])
                };
                (StatusCode::OK, axum::Json(wrong)).into_response()
            }
        }
    }

    fn unauthorized(&self) -> Response {
        let body = match self.system {
            System::Magento => serde_json::json!({
                "message": "The consumer isn't authorized to access %resources.",
                "parameters": {"resources": "Magento_Catalog::products"}
            }),
            System::Acumatica => serde_json::json!({"message": "You are not logged in."}),
        };
        (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response()
    }

    fn deadlock(&self) -> Response {
        let body = match self.system {
            // What ProductRepository::save makes of MySQL's 1213.
            System::Magento => serde_json::json!({
                "message": "Database deadlock found when trying to get lock"
            }),
            // SQL Server's deadlock victim, as Acumatica's API reports it.
            System::Acumatica => serde_json::json!({
                "message": "An error has occurred.",
                "exceptionMessage": "Transaction (Process ID 57) was deadlocked on lock resources with another process and has been chosen as the deadlock victim. Rerun the transaction.",
                "exceptionType": "System.Data.SqlClient.SqlException",
                "stackTrace": null
            }),
        };
        (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
    }

    fn server_error(&self, status: u16) -> Response {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status != StatusCode::INTERNAL_SERVER_ERROR {
            // What a reverse proxy (nginx, IIS ARR) in front of either system answers.
            let html = format!(
                "<html><head><title>{0}</title></head><body><center><h1>{0}</h1></center></body></html>",
                status
            );
            return (status, [(header::CONTENT_TYPE, "text/html")], html).into_response();
        }
        let body = match self.system {
            // Magento in production mode hides the exception behind a report id.
            System::Magento => serde_json::json!({
                "message": "Internal Error. Details are available in Magento log file. Report ID: webapi-sandbox"
            }),
            // Acumatica's ASP.NET Web API error body.
            System::Acumatica => serde_json::json!({
                "message": "An error has occurred.",
                "exceptionMessage": "The sandbox injected a server error.",
                "exceptionType": "System.Exception",
                "stackTrace": null
            }),
        };
        (status, axum::Json(body)).into_response()
    }

    fn rate_limited_body(&self) -> Response {
        match self.system {
            System::Magento => (
                [(header::CONTENT_TYPE, "text/html")],
                "<html><body><h1>429 Too Many Requests</h1></body></html>",
            )
                .into_response(),
            System::Acumatica => axum::Json(serde_json::json!({
                "message": "The request limit has been exceeded. Please try again later."
            }))
            .into_response(),
        }
    }
}

/// A reply whose head promises a body that never comes: the client sees the connection
/// close mid-reply.
fn dropped_connection() -> Response {
    let stream = futures_util::stream::once(async {
        Err::<axum::body::Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "sandbox dropped the connection",
        ))
    });
    let mut response = Response::new(Body::from_stream(stream));
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(1024u64));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Waits until `deadline`, to within a fraction of a millisecond. tokio's timer counts whole
/// milliseconds and fires on the tick after the deadline: measured in this middleware on a
/// 2-core VM, `tokio::time::sleep(20 ms)` took 21.3 ms at the median and 22.0 ms on average
/// under a sync bench's load — latency nobody asked for, which the benches' bounds (computed
/// from L) then charged to the client. A `nanosleep` on a blocking thread wakes within tens
/// of microseconds; the thread is not a runtime worker, so other requests go on meanwhile.
async fn sleep_until_precisely(deadline: std::time::Instant) {
    let wait = deadline.saturating_duration_since(std::time::Instant::now());
    if wait.is_zero() {
        return;
    }
    let _ = tokio::task::spawn_blocking(move || std::thread::sleep(wait)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scripted(route: Option<&str>, kind: FaultKind, times: u32) -> ScriptedFault {
        ScriptedFault {
            route: route.map(String::from),
            kind,
            retry_after_secs: None,
            delay_ms: 0,
            times,
        }
    }

    #[test]
    fn scripted_faults_hit_their_route_and_are_used_up() {
        let injector = FaultInjector::new(
            System::Magento,
            1,
            Faults {
                scripted: vec![
                    scripted(Some("PUT /p/{sku}"), FaultKind::Status503, 2),
                    scripted(None, FaultKind::Drop, 1),
                ],
                ..Faults::default()
            },
        );
        let kind = |d: Decision| match d {
            Decision::Scripted(f) => Some(f.kind),
            _ => None,
        };
        // The route's own fault first, twice; then the catch-all once; then nothing.
        let decide = |route: &str, path: &str| kind(injector.decide(route, path).1);
        assert_eq!(
            decide("PUT /p/{sku}", "PUT /p/A"),
            Some(FaultKind::Status503)
        );
        assert_eq!(decide("GET /other", "GET /other"), Some(FaultKind::Drop));
        assert_eq!(
            decide("PUT /p/{sku}", "PUT /p/B"),
            Some(FaultKind::Status503)
        );
        assert_eq!(decide("PUT /p/{sku}", "PUT /p/C"), None);
        assert_eq!(decide("GET /other", "GET /other"), None);
        assert!(injector.faults().scripted.is_empty());
        // A request's own path names one record's route.
        injector.set_faults(Faults {
            scripted: vec![scripted(Some("PUT /p/B"), FaultKind::Slow, 1)],
            ..Faults::default()
        });
        assert_eq!(decide("PUT /p/{sku}", "PUT /p/A"), None);
        assert_eq!(decide("PUT /p/{sku}", "PUT /p/B"), Some(FaultKind::Slow));
    }

    #[test]
    fn scripted_faults_read_from_the_control_body_and_are_validated() {
        let faults: Faults = serde_json::from_value(serde_json::json!({
            "scripted": [
                {"route": "GET /x", "kind": "429", "retry_after_secs": 1},
                {"kind": "slow", "delay_ms": 1500, "times": 3},
                {"kind": "wrong_shape"}
            ]
        }))
        .unwrap();
        assert_eq!(faults.scripted[0].kind, FaultKind::Status429);
        assert_eq!(faults.scripted[1].times, 3);
        assert_eq!(faults.scripted[2].times, 1);
        assert!(faults.validate().is_ok());
        let bad: Faults =
            serde_json::from_value(serde_json::json!({"scripted": [{"kind": "slow"}]})).unwrap();
        assert!(bad.validate().unwrap_err().contains("delay_ms"));
        assert!(
            serde_json::from_value::<Faults>(serde_json::json!({"scripted": [{"kind": "418"}]}))
                .is_err()
        );
    }
}
