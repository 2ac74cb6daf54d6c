//! HTTP plumbing both API clients share: how long to wait before a retry, and how many
//! requests may be in flight or sent per minute. Nothing here knows either API.

use std::sync::Arc;
use std::time::Duration;

use rand::RngExt;
use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// Exponential backoff with full jitter, bounded in attempts; a server's `Retry-After` wins
/// when it asks for longer.
#[derive(Clone, Debug)]
pub struct Backoff {
    /// Delay scale of the first retry.
    pub base: Duration,
    /// No single wait is longer than this.
    pub max: Duration,
    /// Tries in all, the first included.
    pub attempts: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(200),
            max: Duration::from_secs(30),
            attempts: 6,
        }
    }
}

impl Backoff {
    /// The wait before try number `attempt + 1` (`attempt` counts from 1).
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self
            .base
            .saturating_mul(
                1u32.checked_shl(attempt.saturating_sub(1))
                    .unwrap_or(u32::MAX),
            )
            .min(self.max);
        let jittered = exp.mul_f64(rand::rng().random_range(0.5..=1.0));
        match retry_after {
            Some(asked) => asked.min(self.max).max(jittered),
            None => jittered,
        }
    }
}

/// Reads a `Retry-After` header: delay-seconds or an HTTP-date.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

/// Caps requests in flight and paces them to a per-minute rate. Pacing is even (one request
/// every 60/rate seconds) rather than bursty, because Acumatica delays every request once a
/// client has used half of its per-minute allowance — and because the allowance is shared with
/// the runs before and after this one (cron), which a burst at each start would overrun: a
/// limiter that let half a minute's allowance go at once measured 627 requests in a minute
/// against a licence of 600 (benches/import_orders.rs, the sandbox counting). Clones share the
/// slots and the pace.
#[derive(Clone)]
pub struct RequestLimiter {
    in_flight: Arc<Semaphore>,
    interval: Option<Duration>,
    next_slot: Arc<Mutex<Option<Instant>>>,
}

/// Held while a request is in flight.
pub struct RequestPermit {
    _permit: OwnedSemaphorePermit,
}

impl RequestLimiter {
    pub fn new(max_in_flight: u32, requests_per_minute: Option<u32>) -> RequestLimiter {
        RequestLimiter {
            in_flight: Arc::new(Semaphore::new(max_in_flight.max(1) as usize)),
            interval: requests_per_minute
                .filter(|rpm| *rpm > 0)
                .map(|rpm| Duration::from_secs_f64(60.0 / rpm as f64)),
            next_slot: Arc::new(Mutex::new(None)),
        }
    }

    /// Waits for a free slot and for the request's turn in the per-minute pace.
    pub async fn acquire(&self) -> RequestPermit {
        let permit = self
            .in_flight
            .clone()
            .acquire_owned()
            .await
            .expect("the limiter's semaphore is never closed");
        if let Some(interval) = self.interval {
            let start = {
                let mut next = self.next_slot.lock().await;
                let now = Instant::now();
                let start = next.map_or(now, |slot| slot.max(now));
                *next = Some(start + interval);
                start
            };
            tokio::time::sleep_until(start).await;
        }
        RequestPermit { _permit: permit }
    }
}

/// A whole reply: status, headers and body.
pub type Reply = (reqwest::StatusCode, reqwest::header::HeaderMap, String);

/// Sends `request` once `limiter` gives it a slot and reads the whole reply, in a task of its
/// own: the exchange goes on whether or not the caller is polled meanwhile. A sync busy with
/// local work between its calls (reading and recording a chunk in SQLite) used to hold replies
/// unread and leave freed slots idle until it next awaited; now a request already queued takes
/// a freed slot at once. Dropping the returned future aborts the exchange.
pub async fn exchange(
    limiter: &RequestLimiter,
    request: reqwest::RequestBuilder,
) -> Result<Reply, reqwest::Error> {
    /// Aborts the task when the caller gives up on it (a timeout, a cancelled run).
    struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);
    impl<T> Drop for AbortOnDrop<T> {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let limiter = limiter.clone();
    let mut task = AbortOnDrop(tokio::spawn(async move {
        let _permit = limiter.acquire().await;
        send_whole(request).await
    }));
    match (&mut task.0).await {
        Ok(reply) => reply,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Only this function aborts the task, and not while awaiting it.
        Err(e) => unreachable!("the exchange task was cancelled: {e}"),
    }
}

/// Sends `request` and reads the whole reply, on the caller's task, with no slot taken: for a
/// caller that holds a [`RequestPermit`] of its own.
pub async fn send_whole(request: reqwest::RequestBuilder) -> Result<Reply, reqwest::Error> {
    let response = request.send().await?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.text().await?;
    Ok((status, headers, body))
}

/// An error text from a reply, on one line and at most `max` characters (a remote system's
/// message is shown and stored; a hostile or broken one must not fill a terminal or the store).
pub fn clip_message(text: String, max: usize) -> String {
    // Line breaks become one space; other control characters (a binary reply, an escape
    // sequence meant for a terminal) become U+FFFD.
    let one_line = if text.chars().any(char::is_control) {
        text.split(['\n', '\r'])
            .filter(|l| !l.trim().is_empty())
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .map(|c| match c {
                '\t' => ' ',
                c if c.is_control() => '\u{fffd}',
                c => c,
            })
            .collect()
    } else {
        text
    };
    if one_line.chars().count() <= max {
        one_line
    } else {
        let mut cut: String = one_line.chars().take(max).collect();
        cut.push_str("… (cut)");
        cut
    }
}

/// A reply body that is not JSON, in a few words: empty, a proxy's HTML page, or its start.
pub fn describe_plain_body(body: &str, system: &str) -> String {
    let text = body.trim();
    if text.is_empty() {
        "(empty reply)".to_string()
    } else if text.starts_with('<') {
        format!("(an HTML page, probably from a proxy or web server in front of {system})")
    } else {
        clip_message(text.to_string(), 300)
    }
}

/// A transport failure in one line: what kind, and every cause. reqwest's text can name the
/// URL, never credentials (they travel in headers and bodies).
pub fn describe_transport(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "the reply was cut off"
    } else {
        "request failed"
    };
    let mut message = format!("{kind}: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    if is_certificate_error(e) {
        message.push_str(
            " — the server's TLS certificate is not trusted; if a private CA issued it, \
             set ca_file to that CA's PEM certificate",
        );
    }
    message
}

/// The server's certificate was refused (unknown issuer, expired, wrong name): asking again
/// cannot succeed, so the clients fail at once instead of retrying. rustls reports these as
/// "invalid peer certificate: …" in the error's causes; reqwest has no kind for them.
pub fn is_certificate_error(e: &reqwest::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        if cause.to_string().contains("invalid peer certificate") {
            return true;
        }
        source = cause.source();
    }
    false
}

/// Adds a private CA's certificates (`ca_file`) to a client's trusted roots. They are added
/// beside the built-in roots, never instead of them, and certificate verification itself is
/// never switched off anywhere in the connector.
pub fn with_roots(
    builder: reqwest::ClientBuilder,
    roots: &[reqwest::Certificate],
) -> reqwest::ClientBuilder {
    roots
        .iter()
        .cloned()
        .fold(builder, |builder, cert| builder.add_root_certificate(cert))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_honours_retry_after() {
        let b = Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
            attempts: 10,
        };
        assert!(b.delay(1, None) <= Duration::from_millis(100));
        assert!(b.delay(1, None) >= Duration::from_millis(50));
        assert!(b.delay(4, None) >= Duration::from_millis(400));
        assert!(b.delay(30, None) <= Duration::from_secs(1));
        assert!(b.delay(1, Some(Duration::from_millis(700))) >= Duration::from_millis(700));
        assert_eq!(
            b.delay(1, Some(Duration::from_secs(60))),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", "3".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert(
            "retry-after",
            "Sun, 06 Nov 1994 08:49:37 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        h.insert("retry-after", "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }

    #[tokio::test(start_paused = true)]
    async fn the_limiter_paces_requests_evenly() {
        let limiter = RequestLimiter::new(100, Some(600)); // one every 100 ms
        let start = Instant::now();
        for _ in 0..11 {
            drop(limiter.acquire().await);
        }
        assert_eq!(start.elapsed(), Duration::from_millis(1000));
    }

    #[tokio::test(start_paused = true)]
    async fn the_limiter_caps_requests_in_flight() {
        let limiter = RequestLimiter::new(2, None);
        let a = limiter.acquire().await;
        let _b = limiter.acquire().await;
        let waiting = {
            let limiter = limiter.clone();
            tokio::spawn(async move { drop(limiter.acquire().await) })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(
            !waiting.is_finished(),
            "a third request went out with two in flight"
        );
        drop(a);
        waiting.await.unwrap();
    }
}
