//! A recording proxy for client tests: it sits between a client and the sandbox on loopback,
//! keeps every request the client sent (method, path, query, headers, body, arrival time) so a
//! test can check them against the API description, counts requests in flight, and answers
//! scripted faults (an exact number of 503s, a 429 with `Retry-After`, a connection cut after
//! the upstream ran) where a test needs them to be deterministic rather than a rate.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;

/// One request as the client sent it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    /// The URL path (no query).
    pub path: String,
    /// The raw query string, without `?`.
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
    /// What the client got back (0: the connection was cut).
    pub status: u16,
}

impl Recorded {
    /// The path with its query, as the spec checker takes it.
    pub fn path_and_query(&self) -> String {
        match &self.query {
            Some(q) => format!("{}?{q}", self.path),
            None => self.path.clone(),
        }
    }

    pub fn json(&self) -> Option<serde_json::Value> {
        if self.body.is_empty() {
            None
        } else {
            serde_json::from_slice(&self.body).ok()
        }
    }
}

/// What a scripted fault does.
#[derive(Clone, Debug)]
pub enum Action {
    /// Answer this without asking upstream.
    Reply {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: String,
    },
    /// Let upstream handle it (the write happens), then cut the connection mid-reply.
    ForwardThenDrop,
}

#[derive(Clone, Debug)]
struct Scripted {
    method: String,
    path_contains: String,
    times: usize,
    action: Action,
}

struct ProxyState {
    upstream: String,
    http: reqwest::Client,
    log: Mutex<Vec<Recorded>>,
    script: Mutex<Vec<Scripted>>,
    in_flight: AtomicUsize,
    peak_in_flight: AtomicUsize,
}

pub struct Proxy {
    /// `http://127.0.0.1:PORT` — the sandbox's paths work under it unchanged.
    pub url: String,
    state: Arc<ProxyState>,
}

impl Proxy {
    /// A proxy to `upstream` (`http://127.0.0.1:PORT`) on a free loopback port.
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let state = Arc::new(ProxyState {
            upstream: format!("http://{upstream}"),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("proxy client"),
            log: Mutex::new(Vec::new()),
            script: Mutex::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
            peak_in_flight: AtomicUsize::new(0),
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("proxy port");
        let addr = listener.local_addr().expect("proxy address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Proxy {
            url: format!("http://{addr}"),
            state,
        }
    }

    /// The next `times` requests with `method` whose path contains `path_contains` get
    /// `action` instead of the upstream's answer.
    pub fn script(&self, method: &str, path_contains: &str, times: usize, action: Action) {
        self.state.script.lock().unwrap().push(Scripted {
            method: method.to_string(),
            path_contains: path_contains.to_string(),
            times,
            action,
        });
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.log.lock().unwrap().clone()
    }

    /// Requests whose path contains `part`.
    pub fn requests_to(&self, method: &str, part: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == method && r.path.contains(part))
            .collect()
    }

    pub fn clear(&self) {
        self.state.log.lock().unwrap().clear();
    }

    /// Most requests the proxy held open at once.
    pub fn peak_in_flight(&self) -> usize {
        self.state.peak_in_flight.load(Ordering::SeqCst)
    }
}

fn take_scripted(state: &ProxyState, method: &str, path: &str) -> Option<Action> {
    let mut script = state.script.lock().unwrap();
    let entry = script
        .iter_mut()
        .find(|s| s.times > 0 && s.method == method && path.contains(&s.path_contains))?;
    entry.times -= 1;
    Some(entry.action.clone())
}

struct InFlight<'a>(&'a ProxyState);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn handle(State(state): State<Arc<ProxyState>>, request: Request) -> Response {
    let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    state.peak_in_flight.fetch_max(now, Ordering::SeqCst);
    let _guard = InFlight(&state);
    let at = Instant::now();
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let method = parts.method.to_string();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().map(str::to_string);
    let mut record = Recorded {
        method: method.clone(),
        path: path.clone(),
        query: query.clone(),
        headers: parts.headers.clone(),
        body: body.clone(),
        at,
        status: 0,
    };

    let action = take_scripted(&state, &method, &path);
    if let Some(Action::Reply {
        status,
        headers,
        body,
    }) = &action
    {
        record.status = *status;
        state.log.lock().unwrap().push(record);
        let mut response = Response::new(Body::from(body.clone()));
        *response.status_mut() = StatusCode::from_u16(*status).unwrap();
        for (name, value) in headers {
            response.headers_mut().insert(
                HeaderName::from_static(name),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        return response;
    }

    let url = match &query {
        Some(q) => format!("{}{path}?{q}", state.upstream),
        None => format!("{}{path}", state.upstream),
    };
    let mut forward = state.http.request(parts.method.clone(), url);
    // `Host` goes through unchanged: an OAuth 1.0a signature covers the URL the client called.
    for (name, value) in &parts.headers {
        if name != header::CONTENT_LENGTH {
            forward = forward.header(name, value);
        }
    }
    let upstream = forward.body(body).send().await;
    let (status, headers, bytes) = match upstream {
        Ok(r) => {
            let status = r.status();
            let headers = r.headers().clone();
            match r.bytes().await {
                Ok(b) => (status, headers, b),
                Err(_) => return cut(&state, record),
            }
        }
        Err(_) => return cut(&state, record),
    };
    if matches!(action, Some(Action::ForwardThenDrop)) {
        return cut(&state, record);
    }
    record.status = status.as_u16();
    state.log.lock().unwrap().push(record);
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    for (name, value) in &headers {
        if name == header::LOCATION {
            // As a reverse proxy's ProxyPassReverse does: a Location pointing upstream points
            // here, so the requests that follow it are recorded too.
            let upstream_host = state.upstream.trim_start_matches("http://");
            let rewritten = value
                .to_str()
                .map(|l| l.replace(upstream_host, &host_of(&parts.headers)))
                .ok()
                .and_then(|l| HeaderValue::from_str(&l).ok())
                .unwrap_or_else(|| value.clone());
            response.headers_mut().append(name, rewritten);
        } else if name != header::TRANSFER_ENCODING && name != header::CONTENT_LENGTH {
            response.headers_mut().append(name, value.clone());
        }
    }
    response
}

fn host_of(headers: &HeaderMap) -> String {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// Records the request as cut and answers with a body that ends before its promised length.
fn cut(state: &ProxyState, mut record: Recorded) -> Response {
    record.status = 0;
    state.log.lock().unwrap().push(record);
    let stream = futures_util::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "proxy cut the connection",
        ))
    });
    let mut response = Response::new(Body::from_stream(stream));
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(1024u64));
    response
}
