//! `connector listen`: receives Acumatica's push notifications into the durable queue.
//!
//! A notification is answered 200 only after its messages are committed with
//! `synchronous=FULL` — Acumatica forgets what we acknowledge. Requests that arrive together
//! are committed in one transaction by a single writer thread (group commit), so the fsync
//! cost is shared instead of paid per request. Anything refused is refused with a status that
//! makes Acumatica keep the notification for a resend.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use tokio::sync::{mpsc, oneshot};

use crate::config::Config;
use crate::entities::{Direction, Entity};
use crate::push;
use crate::secret::Secret;
use crate::store::{NewMessage, PushCommit, Store};

/// Everything the receiver needs, taken from the config (or set by a test).
#[derive(Clone, Debug)]
pub struct ReceiverSettings {
    pub bind: SocketAddr,
    /// The path Acumatica posts to (from `receiver.public_url`).
    pub path: String,
    pub header_name: HeaderName,
    pub secret: Secret,
    pub max_body_bytes: u64,
    /// Connections served at once (`receiver.max_connections`).
    pub max_connections: usize,
    pub prefix: String,
    pub timezone: chrono_tz::Tz,
    pub store_path: PathBuf,
    /// Entities a catch-up is queued for when a notification is too large to accept.
    pub catch_up_entities: Vec<Entity>,
    /// Commit the requests waiting together (the default). Off: one transaction, one fsync,
    /// per request — only the benchmark's baseline uses it.
    pub group_commit: bool,
}

impl ReceiverSettings {
    pub fn from_config(
        config: &Config,
        bind: Option<SocketAddr>,
    ) -> anyhow::Result<ReceiverSettings> {
        let secret = config
            .require(&config.receiver.secret, "receiver.secret")?
            .clone();
        let url = url::Url::parse(&config.receiver.public_url)
            .context("receiver.public_url is not a URL")?;
        let header_name = HeaderName::from_bytes(config.receiver.header_name.as_bytes())
            .context("receiver.header_name is not a header name")?;
        Ok(ReceiverSettings {
            bind: bind.unwrap_or(config.receiver.listen),
            path: if url.path().is_empty() {
                "/".into()
            } else {
                url.path().to_string()
            },
            header_name,
            secret,
            max_body_bytes: config.receiver.max_body_bytes,
            max_connections: config.receiver.max_connections as usize,
            prefix: config.acumatica.prefix.clone(),
            timezone: config.acumatica.timezone,
            store_path: config.store.path.clone(),
            catch_up_entities: Entity::ALL
                .into_iter()
                .filter(|e| e.direction() == Direction::ToMagento && e.enabled(&config.entities))
                .collect(),
            group_commit: true,
        })
    }
}

enum Job {
    Push {
        messages: Vec<NewMessage>,
        reply: oneshot::Sender<Result<Committed, String>>,
    },
    CatchUp {
        entities: Vec<&'static str>,
        reason: String,
    },
    Counts(Vec<(String, u64)>),
}

enum Committed {
    Stored { accepted: u64, duplicates: u64 },
    Refused(&'static str),
}

struct App {
    settings: ReceiverSettings,
    jobs: mpsc::Sender<Job>,
    rejections: Mutex<BTreeMap<String, u64>>,
}

impl App {
    fn reject(&self, reason: &str, status: StatusCode, message: String) -> Response {
        tracing::info!(
            reason,
            status = status.as_u16(),
            "push notification refused: {message}"
        );
        *self
            .rejections
            .lock()
            .unwrap()
            .entry(format!("rejected_{reason}"))
            .or_default() += 1;
        (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
    }
}

/// A running receiver; [`RunningReceiver::stop`] finishes what is in flight and returns.
pub struct RunningReceiver {
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl RunningReceiver {
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.server.await.context("the receiver task failed")?
    }
}

/// Binds and starts serving; returns once requests are accepted.
pub async fn start(settings: ReceiverSettings) -> anyhow::Result<RunningReceiver> {
    let store = Store::open(&settings.store_path)?;
    store.set_durable().context("setting synchronous=FULL")?;
    let listener = tokio::net::TcpListener::bind(settings.bind)
        .await
        .with_context(|| format!("cannot listen on {}", settings.bind))?;
    let addr = listener.local_addr()?;
    let listener = CappedListener {
        inner: listener,
        slots: Arc::new(tokio::sync::Semaphore::new(settings.max_connections.max(1))),
    };

    let (jobs, rx) = mpsc::channel::<Job>(4096);
    let group = if settings.group_commit { 1024 } else { 1 };
    let writer = std::thread::Builder::new()
        .name("receiver-writer".into())
        .spawn(move || write_jobs(store, rx, group))
        .context("cannot start the writer thread")?;

    let app = Arc::new(App {
        settings: settings.clone(),
        jobs,
        rejections: Mutex::new(BTreeMap::new()),
    });
    let router = axum::Router::new()
        .route(&settings.path, post(receive))
        .with_state(app.clone());

    let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let flusher = {
            let app = app.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    flush_rejections(&app).await;
                }
            })
        };
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = shutdown_rx.await;
            })
            .await;
        flusher.abort();
        flush_rejections(&app).await;
        // Dropping the last sender ends the writer once it has committed every job.
        drop(app);
        tokio::task::spawn_blocking(move || writer.join())
            .await
            .ok()
            .and_then(Result::ok);
        served.context("the receiver stopped with an error")
    });
    Ok(RunningReceiver {
        addr,
        shutdown: Some(shutdown_tx),
        server,
    })
}

async fn flush_rejections(app: &App) {
    let counts: Vec<(String, u64)> = std::mem::take(&mut *app.rejections.lock().unwrap())
        .into_iter()
        .collect();
    if !counts.is_empty() {
        let _ = app.jobs.send(Job::Counts(counts)).await;
    }
}

/// The single writer: drains up to `group` jobs waiting and commits the pushes among them
/// together.
fn write_jobs(mut store: Store, mut rx: mpsc::Receiver<Job>, group: usize) {
    while let Some(first) = rx.blocking_recv() {
        let mut jobs = vec![first];
        while jobs.len() < group {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let mut batches = Vec::new();
        let mut replies = Vec::new();
        for job in jobs {
            match job {
                Job::Push { messages, reply } => {
                    batches.push(messages);
                    replies.push(reply);
                }
                Job::CatchUp { entities, reason } => {
                    if let Err(e) = store.request_catch_up(&entities, None, &reason) {
                        tracing::error!("could not queue a catch-up: {e}");
                    }
                }
                Job::Counts(counts) => {
                    if let Err(e) = store.add_receiver_counts(&counts) {
                        tracing::warn!("could not record receiver counters: {e}");
                    }
                }
            }
        }
        if batches.is_empty() {
            continue;
        }
        match store.commit_pushed(&batches) {
            Ok(PushCommit::Stored(outcomes)) => {
                for (reply, o) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(Committed::Stored {
                        accepted: o.accepted,
                        duplicates: o.duplicates,
                    }));
                }
            }
            Ok(PushCommit::Refused(state)) => {
                for reply in replies {
                    let _ = reply.send(Ok(Committed::Refused(state.as_str())));
                }
            }
            Err(e) => {
                tracing::error!("could not commit push notifications: {e}");
                for reply in replies {
                    let _ = reply.send(Err(e.to_string()));
                }
            }
        }
    }
}

/// Compares without an early exit, so the time taken says nothing about the secret.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

async fn receive(State(app): State<Arc<App>>, request: Request) -> Response {
    // The request taken whole: a `HeaderMap` extractor would copy every header.
    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
    let settings = &app.settings;
    let authorized = headers
        .get(&settings.header_name)
        .is_some_and(|v| constant_time_eq(v.as_bytes(), settings.secret.expose().as_bytes()));
    if !authorized {
        return app.reject(
            "unauthorized",
            StatusCode::UNAUTHORIZED,
            format!("missing or wrong {} header", settings.header_name),
        );
    }

    let too_large = |app: &App| {
        let entities = settings
            .catch_up_entities
            .iter()
            .map(|e| e.name())
            .collect();
        let _ = app.jobs.try_send(Job::CatchUp {
            entities,
            reason: "a push notification was larger than receiver.max_body_bytes".into(),
        });
        app.reject(
            "too_large",
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "body larger than receiver.max_body_bytes ({}); a catch-up of every entity was queued",
                settings.max_body_bytes
            ),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > settings.max_body_bytes) {
        return too_large(&app);
    }
    let limit = usize::try_from(settings.max_body_bytes).unwrap_or(usize::MAX);
    let bytes: Bytes = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => bytes,
        Err(e) => {
            let over_limit =
                std::iter::successors(Some(&e as &(dyn std::error::Error + 'static)), |err| {
                    err.source()
                })
                .any(|err| err.is::<http_body_util::LengthLimitError>());
            if over_limit {
                return too_large(&app);
            }
            return app.reject(
                "unreadable",
                StatusCode::BAD_REQUEST,
                "body could not be read".into(),
            );
        }
    };

    let messages = match push::parse(&bytes, &settings.prefix, settings.timezone) {
        Ok(messages) => messages,
        Err(e) => {
            let reason = match e {
                push::PushError::UnknownQuery(_) => "unknown_query",
                push::PushError::NotJson(_) => "malformed",
                _ => "bad_shape",
            };
            return app.reject(reason, StatusCode::BAD_REQUEST, e.to_string());
        }
    };
    let messages: Vec<NewMessage> = messages
        .into_iter()
        .map(|m| NewMessage {
            direction: Direction::ToMagento.as_str(),
            entity: m.entity.name(),
            natural_key: m.natural_key,
            version: m
                .version
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            dedupe_key: m.dedupe_key,
            operation: m.operation.as_str(),
            // `to_string` on a `Value` goes through `Display`'s formatter, a write per token;
            // this writes into the string directly (the same text).
            payload: serde_json::to_string(&m.payload).unwrap_or_else(|_| m.payload.to_string()),
        })
        .collect();

    let (reply, answer) = oneshot::channel();
    if app.jobs.send(Job::Push { messages, reply }).await.is_err() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "the receiver is shutting down",
        )
            .into_response();
    }
    match answer.await {
        // The same body `Json(json!({...}))` gave, written without building a JSON value.
        Ok(Ok(Committed::Stored { accepted, duplicates })) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            format!(r#"{{"accepted":{accepted},"duplicates":{duplicates}}}"#),
        )
            .into_response(),
        Ok(Ok(Committed::Refused(state))) => app.reject(
            "not_active",
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the connector is {state}; notifications are not accepted until `connector activate`"),
        ),
        Ok(Err(_)) | Err(_) => app.reject(
            "store_error",
            StatusCode::INTERNAL_SERVER_ERROR,
            "the notification could not be stored; send it again".into(),
        ),
    }
}

/// A TCP listener that serves at most `slots` connections at once. It takes a slot before it
/// accepts, so connections beyond the cap wait in the kernel's accept queue (and time out
/// there) instead of each costing a task, buffers and a file descriptor: a flood of idle or
/// slow clients cannot exhaust the process, and Acumatica retries what it could not deliver.
struct CappedListener {
    inner: tokio::net::TcpListener,
    slots: Arc<tokio::sync::Semaphore>,
}

impl axum::serve::Listener for CappedListener {
    type Io = CappedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .expect("the connection semaphore is never closed");
        let (stream, addr) = axum::serve::Listener::accept(&mut self.inner).await;
        (
            CappedStream {
                stream,
                _slot: slot,
            },
            addr,
        )
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A connection holding its slot until it closes.
struct CappedStream {
    stream: tokio::net::TcpStream,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

impl tokio::io::AsyncRead for CappedStream {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for CappedStream {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn constant_time_eq_compares_content_and_length() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
        assert!(constant_time_eq(b"", b""));
    }
}
