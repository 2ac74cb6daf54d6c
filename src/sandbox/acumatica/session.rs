//! Sessions (cookie login and OAuth 2.0 tokens) and the licence-like limits Acumatica puts on
//! API users: how many may be signed in, how many requests run at once (the rest queue, and
//! past 20 waiting are declined), and how many per minute (past half of it, each is delayed).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

/// What a login over the API-user limit is answered with (Acumatica versions differ).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginLimitAnswer {
    /// 429 Too Many Requests.
    #[default]
    TooManyRequests,
    /// 500 with "API Login Limit" in the body, as older versions answer.
    ServerError,
}

/// The simulated licence and behaviour of the Acumatica side; changeable at run time through
/// `POST /__sandbox/limits`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AcumaticaOptions {
    /// Maximum number of signed-in API users (cookie sessions plus OAuth tokens).
    pub max_sessions: usize,
    pub login_limit_answer: LoginLimitAnswer,
    /// Requests handled at once; more wait in a queue.
    pub max_concurrent_requests: usize,
    /// Requests allowed to wait; one more is declined with 429.
    pub max_queued_requests: usize,
    /// A request waiting longer than this is declined with 429.
    pub queue_timeout_ms: u64,
    /// Requests per minute (0: no limit). Past half of it, each request is delayed by
    /// 60 s / limit.
    pub requests_per_minute: u64,
    /// Delay given to each request past half the per-minute limit; none: 60 s / limit (the
    /// pace that keeps the client within the limit). Tests shorten it.
    pub throttle_delay_ms: Option<u64>,
    /// Time every request spends inside the simulated server, holding its concurrency slot
    /// (0: none); lets tests and benches see queueing.
    pub processing_ms: u64,
    /// A session or token unused for this long is gone (401), and frees its licence slot.
    pub session_idle_timeout_ms: u64,
    /// Lifetime of an OAuth 2.0 access token.
    pub access_token_lifetime_secs: u64,
    /// How long a long-running action (ConfirmShipment, CancelSalesOrder) runs before its
    /// status turns from 202 to 204.
    pub action_duration_ms: u64,
}

impl Default for AcumaticaOptions {
    fn default() -> Self {
        AcumaticaOptions {
            max_sessions: 5,
            login_limit_answer: LoginLimitAnswer::TooManyRequests,
            max_concurrent_requests: 6,
            max_queued_requests: 20,
            queue_timeout_ms: 600_000,
            requests_per_minute: 1200,
            throttle_delay_ms: None,
            processing_ms: 0,
            session_idle_timeout_ms: 600_000,
            access_token_lifetime_secs: 3600,
            action_duration_ms: 200,
        }
    }
}

/// How a session was opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionKind {
    Cookie,
    OAuth,
}

#[derive(Clone, Debug)]
pub struct Session {
    pub kind: SessionKind,
    pub user: String,
    pub last_used: Instant,
    /// For OAuth: when the access token stops working.
    pub expires: Option<Instant>,
    pub refresh_token: Option<String>,
}

/// Counters a bench or test reads from `/__sandbox/state` to prove the client kept within the
/// limits.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Counters {
    pub requests_total: u64,
    pub logins: u64,
    pub logouts: u64,
    pub peak_sessions: usize,
    pub peak_concurrent_requests: usize,
    pub peak_queued_requests: usize,
    pub peak_requests_per_minute: usize,
    pub sessions_expired: u64,
    pub failed_logins: u64,
    pub unauthorized_requests: u64,
    /// Logins refused because every API-user slot was taken.
    pub logins_over_limit: u64,
    /// Requests declined because the queue was full or they waited too long.
    pub requests_declined: u64,
    /// Requests delayed because more than half the per-minute limit was used.
    pub requests_delayed: u64,
}

impl Counters {
    /// Licence violations: refused logins and declined requests (delays are reported apart:
    /// they are Acumatica slowing a busy client down, not refusing it).
    pub fn limit_violations(&self) -> u64 {
        self.logins_over_limit + self.requests_declined
    }
}

struct Gate {
    running: usize,
    waiting: usize,
}

pub struct Sessions {
    options: Mutex<AcumaticaOptions>,
    /// Keyed by the `.ASPXAUTH` cookie value or the OAuth access token.
    sessions: Mutex<HashMap<String, Session>>,
    /// OAuth refresh token → access token.
    refresh_tokens: Mutex<HashMap<String, String>>,
    counters: Mutex<Counters>,
    gate: Mutex<Gate>,
    gate_opened: Notify,
    recent: Mutex<VecDeque<Instant>>,
}

/// Why a request was not let in.
pub enum Declined {
    QueueFull,
    QueueTimeout,
}

/// Holds a concurrency slot for as long as the request runs.
pub struct Slot<'a> {
    sessions: &'a Sessions,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.sessions.gate.lock().unwrap().running -= 1;
        self.sessions.gate_opened.notify_waiters();
    }
}

pub enum LoginOutcome {
    Opened,
    OverLimit,
}

impl Sessions {
    pub fn new(options: AcumaticaOptions) -> Sessions {
        Sessions {
            options: Mutex::new(options),
            sessions: Mutex::new(HashMap::new()),
            refresh_tokens: Mutex::new(HashMap::new()),
            counters: Mutex::new(Counters::default()),
            gate: Mutex::new(Gate {
                running: 0,
                waiting: 0,
            }),
            gate_opened: Notify::new(),
            recent: Mutex::new(VecDeque::new()),
        }
    }

    pub fn options(&self) -> AcumaticaOptions {
        self.options.lock().unwrap().clone()
    }

    pub fn set_options(&self, options: AcumaticaOptions) {
        *self.options.lock().unwrap() = options;
        // A larger concurrency limit lets waiting requests in now.
        self.gate_opened.notify_waiters();
    }

    pub fn counters(&self) -> Counters {
        self.counters.lock().unwrap().clone()
    }

    pub fn count(&self, update: impl FnOnce(&mut Counters)) {
        update(&mut self.counters.lock().unwrap());
    }

    /// Sessions alive now (expired ones are dropped first and counted).
    pub fn open_sessions(&self) -> Vec<(SessionKind, String)> {
        let mut sessions = self.sessions.lock().unwrap();
        self.drop_expired(&mut sessions);
        sessions
            .values()
            .map(|s| (s.kind, s.user.clone()))
            .collect()
    }

    fn drop_expired(&self, sessions: &mut HashMap<String, Session>) {
        let idle = Duration::from_millis(self.options().session_idle_timeout_ms);
        let now = Instant::now();
        let before = sessions.len();
        sessions.retain(|_, s| {
            now.duration_since(s.last_used) < idle && s.expires.map(|e| now < e).unwrap_or(true)
        });
        let expired = (before - sessions.len()) as u64;
        if expired > 0 {
            self.count(|c| c.sessions_expired += expired);
        }
    }

    /// Opens a session under `token` unless every API-user slot is taken.
    pub fn open(&self, token: String, session: Session) -> LoginOutcome {
        let max = self.options().max_sessions;
        let mut sessions = self.sessions.lock().unwrap();
        self.drop_expired(&mut sessions);
        if sessions.len() >= max {
            self.count(|c| c.logins_over_limit += 1);
            return LoginOutcome::OverLimit;
        }
        sessions.insert(token, session);
        let open = sessions.len();
        self.count(|c| {
            c.logins += 1;
            c.peak_sessions = c.peak_sessions.max(open);
        });
        LoginOutcome::Opened
    }

    /// Moves a session to a new token (an OAuth refresh), keeping its licence slot.
    pub fn rotate(&self, old: &str, new: String, update: impl FnOnce(&mut Session)) -> bool {
        let mut sessions = self.sessions.lock().unwrap();
        match sessions.remove(old) {
            Some(mut session) => {
                update(&mut session);
                sessions.insert(new, session);
                true
            }
            None => false,
        }
    }

    pub fn close(&self, token: &str) -> bool {
        let closed = self.sessions.lock().unwrap().remove(token).is_some();
        if closed {
            self.count(|c| c.logouts += 1);
        }
        closed
    }

    /// Marks a session used now; false when it does not exist or has expired.
    pub fn touch(&self, token: &str) -> bool {
        let mut sessions = self.sessions.lock().unwrap();
        self.drop_expired(&mut sessions);
        match sessions.get_mut(token) {
            Some(session) => {
                session.last_used = Instant::now();
                true
            }
            None => false,
        }
    }

    /// Ends every session at once, as an application-pool restart or a timeout would.
    /// Ends one session as if it had idled out (a scripted 401); false when it was not open.
    pub fn expire(&self, token: &str) -> bool {
        let expired = self.sessions.lock().unwrap().remove(token).is_some();
        if expired {
            self.count(|c| c.sessions_expired += 1);
        }
        expired
    }

    pub fn expire_all(&self) -> usize {
        let mut sessions = self.sessions.lock().unwrap();
        let n = sessions.len();
        sessions.clear();
        self.refresh_tokens.lock().unwrap().clear();
        self.count(|c| c.sessions_expired += n as u64);
        n
    }

    pub fn remember_refresh(&self, refresh: String, access: String) {
        self.refresh_tokens.lock().unwrap().insert(refresh, access);
    }

    pub fn take_refresh(&self, refresh: &str) -> Option<String> {
        self.refresh_tokens.lock().unwrap().remove(refresh)
    }

    pub fn session_user(&self, token: &str) -> Option<String> {
        self.sessions
            .lock()
            .unwrap()
            .get(token)
            .map(|s| s.user.clone())
    }

    /// Counts a request in the per-minute window; returns how long to delay it.
    pub fn per_minute_delay(&self) -> Duration {
        let options = self.options();
        let limit = options.requests_per_minute;
        let now = Instant::now();
        let mut recent = self.recent.lock().unwrap();
        while recent
            .front()
            .map(|t| now.duration_since(*t) >= Duration::from_secs(60))
            .unwrap_or(false)
        {
            recent.pop_front();
        }
        recent.push_back(now);
        let in_window = recent.len();
        drop(recent);
        let delayed = limit > 0 && (in_window as u64) * 2 > limit;
        self.count(|c| {
            c.requests_total += 1;
            c.peak_requests_per_minute = c.peak_requests_per_minute.max(in_window);
            if delayed {
                c.requests_delayed += 1;
            }
        });
        if delayed {
            Duration::from_millis(options.throttle_delay_ms.unwrap_or(60_000 / limit))
        } else {
            Duration::ZERO
        }
    }

    /// Waits for a concurrency slot, queueing behind the running requests.
    pub async fn enter(&self) -> Result<Slot<'_>, Declined> {
        let options = self.options();
        let deadline = Instant::now() + Duration::from_millis(options.queue_timeout_ms);
        let mut queued = false;
        loop {
            let notified = self.gate_opened.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let max = self.options().max_concurrent_requests.max(1);
                let mut gate = self.gate.lock().unwrap();
                if gate.running < max {
                    gate.running += 1;
                    if queued {
                        gate.waiting -= 1;
                    }
                    let running = gate.running;
                    drop(gate);
                    self.count(|c| {
                        c.peak_concurrent_requests = c.peak_concurrent_requests.max(running)
                    });
                    return Ok(Slot { sessions: self });
                }
                if !queued {
                    if gate.waiting >= options.max_queued_requests {
                        drop(gate);
                        self.count(|c| c.requests_declined += 1);
                        return Err(Declined::QueueFull);
                    }
                    gate.waiting += 1;
                    queued = true;
                    let waiting = gate.waiting;
                    drop(gate);
                    self.count(|c| c.peak_queued_requests = c.peak_queued_requests.max(waiting));
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || tokio::time::timeout(left, notified).await.is_err() {
                self.gate.lock().unwrap().waiting -= 1;
                self.count(|c| c.requests_declined += 1);
                return Err(Declined::QueueTimeout);
            }
        }
    }

    /// Requests running and waiting right now.
    pub fn in_flight(&self) -> (usize, usize) {
        let gate = self.gate.lock().unwrap();
        (gate.running, gate.waiting)
    }
}
