//! Faults and request counting shared by both simulated systems.
//!
//! Every request to a system's API routes (not its `/__sandbox/…` control routes) passes
//! through [`FaultInjector::middleware`], which counts it by route template and, as the knobs
//! say, delays it, answers it with a server error or a 429, or lets the handler run and then
//! cuts the connection before the reply is complete (the nastiest case for a client: the write
//! happened, the client cannot know).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
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
    /// Requests in flight now (from arrival to the reply's head), their peak, the cap a bench
    /// set (0: none) and how many requests arrived while the cap was already reached.
    in_flight: AtomicU64,
    peak_in_flight: AtomicU64,
    concurrency_cap: AtomicU64,
    over_cap: AtomicU64,
    /// When the first counted request arrived and the last one was answered.
    active: Mutex<Option<(std::time::Instant, std::time::Instant)>>,
}

/// Decrements the in-flight count when a request's handling ends, however it ends.
struct InFlight<'a>(&'a FaultInjector);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        if let Some((_, last)) = self.0.active.lock().unwrap().as_mut() {
            *last = std::time::Instant::now();
        }
    }
}

enum Decision {
    Pass,
    ServerError(u16),
    RateLimited,
    Drop,
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
            in_flight: AtomicU64::new(0),
            peak_in_flight: AtomicU64::new(0),
            concurrency_cap: AtomicU64::new(0),
            over_cap: AtomicU64::new(0),
            active: Mutex::new(None),
        })
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

    fn decide(&self) -> (Duration, Decision) {
        let faults = self.faults();
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
        injector.count(format!("{} {}", request.method(), route));
        let now = injector.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        let _in_flight = InFlight(&injector);
        injector.active.lock().unwrap().get_or_insert_with(|| {
            let now = std::time::Instant::now();
            (now, now)
        });
        injector.peak_in_flight.fetch_max(now, Ordering::Relaxed);
        let cap = injector.concurrency_cap.load(Ordering::Relaxed);
        if cap > 0 && now > cap {
            injector.over_cap.fetch_add(1, Ordering::Relaxed);
        }

        let (latency, decision) = injector.decide();
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        match decision {
            Decision::Pass => next.run(request).await,
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
        }
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
