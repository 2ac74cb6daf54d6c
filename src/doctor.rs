//! `connector doctor`: every precondition of a working connector, checked one by one, each
//! with a verdict (OK / WARN / FAIL) and, where something needs doing, what to do. The
//! command file only prints; the checks live here.
//!
//! What is checked: the configuration and its secrets; the state store (opens, schema, integrity);
//! both logins (an Acumatica session is logged out again); the licence headroom as far as it
//! can be seen; the connector's endpoint and every object `init` keeps in Acumatica against
//! what the store recorded (drift); the sync lock; the clocks of both servers (their `Date`
//! header); and, on request, a push notification end to end.

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::Serialize;
use serde_json::json;

use crate::acumatica::admin::{self, Action, EndpointProvisioner, Kind, Provisioner};
use crate::acumatica::{AcumaticaClient, AcumaticaError};
use crate::config::{AcumaticaAuth, Config, MagentoAuth};
use crate::entities::Entity;
use crate::http::Backoff;
use crate::magento::{MagentoClient, Scope, SearchCriteria};
use crate::store::{LifecycleState, Store};

/// A check's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "OK",
            Level::Warn => "WARN",
            Level::Fail => "FAIL",
        }
    }
}

/// One check: what was looked at, the verdict, what was seen, and what to do about it.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    pub check: String,
    pub level: Level,
    pub detail: String,
    /// What to do (absent when there is nothing to do).
    pub hint: Option<String>,
}

/// Every check, in the order run.
#[derive(Clone, Debug, Serialize)]
pub struct DoctorReport {
    pub checks: Vec<Check>,
    pub ok: usize,
    pub warn: usize,
    pub fail: usize,
}

impl DoctorReport {
    fn new(checks: Vec<Check>) -> DoctorReport {
        let count = |l: Level| checks.iter().filter(|c| c.level == l).count();
        DoctorReport {
            ok: count(Level::Ok),
            warn: count(Level::Warn),
            fail: count(Level::Fail),
            checks,
        }
    }

    /// The names of the failed checks.
    pub fn failed(&self) -> Vec<&str> {
        self.checks
            .iter()
            .filter(|c| c.level == Level::Fail)
            .map(|c| c.check.as_str())
            .collect()
    }
}

/// What `doctor` is asked to do.
#[derive(Clone, Debug)]
pub struct DoctorOptions {
    /// Change the connector's test record in Acumatica and wait for its push notification.
    pub push_test: bool,
    /// How long to wait for it.
    pub timeout: Duration,
}

/// The stock item `doctor --push-test` changes: owned by the connector (it carries the
/// prefix), never synced to Magento (the sync engine skips it).
pub fn probe_key(prefix: &str) -> String {
    format!("{prefix}-DOCTOR")
}

/// Why the sync engine skipped the probe's messages.
pub const PROBE_SKIP_REASON: &str = "the test record of `connector doctor --push-test`: never sent";

/// Clock skew above this is a warning, above [`SKEW_FAIL`] a failure (sessions, OAuth
/// timestamps and the batch path's watermarks all depend on the clocks agreeing).
pub const SKEW_WARN: Duration = Duration::from_secs(60);
pub const SKEW_FAIL: Duration = Duration::from_secs(300);

fn check(name: impl Into<String>, level: Level, detail: impl Into<String>) -> Check {
    Check {
        check: name.into(),
        level,
        detail: detail.into(),
        hint: None,
    }
}

impl Check {
    fn hint(mut self, hint: impl Into<String>) -> Check {
        self.hint = Some(hint.into());
        self
    }
}

/// Runs every check against the configuration in `config_file`.
pub fn run(config_file: &Path, options: &DoctorOptions) -> DoctorReport {
    let mut checks = Vec::new();
    let config = match Config::load(config_file) {
        Ok(config) => config,
        Err(e) => {
            checks.push(
                check("config", Level::Fail, e.to_string())
                    .hint("fix the file (connector.toml.example and docs/configuration.md describe every key)"),
            );
            return DoctorReport::new(checks);
        }
    };
    let missing = missing_secrets(&config);
    if missing.is_empty() {
        checks.push(check(
            "config",
            Level::Ok,
            format!("{} loaded; every secret is set", config_file.display()),
        ));
    } else {
        checks.push(
            check(
                "config",
                Level::Fail,
                format!(
                    "{} loaded; missing: {}",
                    config_file.display(),
                    missing.join(", ")
                ),
            )
            .hint("set them in the file or in their CONNECTOR_… environment variables (docs/configuration.md)"),
        );
        return DoctorReport::new(checks);
    }

    let (store_checks, store) = check_store(&config);
    checks.extend(store_checks);
    let state = store
        .as_ref()
        .and_then(|s| s.lifecycle().ok())
        .map(|l| l.state)
        .unwrap_or(LifecycleState::Uninitialized);
    let unreadable = store.is_none() && config.store.path.exists();
    checks.push(match state {
        _ if unreadable => check("state", Level::Warn, "unknown: the store could not be read"),
        LifecycleState::Active => check("state", Level::Ok, "active"),
        LifecycleState::Paused => {
            check("state", Level::Warn, "paused: changes for Magento are held")
                .hint("`connector activate` delivers what was held")
        }
        LifecycleState::Stopped => check(
            "state",
            Level::Warn,
            "stopped: push notifications and schedules are off",
        )
        .hint("`connector activate` turns them back on and catches up"),
        LifecycleState::Uninitialized => {
            check("state", Level::Warn, "not initialized").hint("run `connector init`")
        }
    });
    checks.push(check_lock(&config, store.as_ref()));

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            checks.push(check("runtime", Level::Fail, format!("cannot start: {e}")));
            return DoctorReport::new(checks);
        }
    };
    runtime.block_on(remote_checks(
        &config,
        store.as_ref(),
        state,
        options,
        &mut checks,
    ));
    DoctorReport::new(checks)
}

fn missing_secrets(config: &Config) -> Vec<&'static str> {
    let mut missing = Vec::new();
    let a = &config.acumatica;
    if a.password.is_none() {
        missing.push("acumatica.password");
    }
    if a.auth == AcumaticaAuth::Oauth2 && a.client_secret.is_none() {
        missing.push("acumatica.client_secret");
    }
    let m = &config.magento;
    match m.auth {
        MagentoAuth::Bearer => {
            if m.access_token.is_none() {
                missing.push("magento.access_token");
            }
        }
        MagentoAuth::Oauth1 => {
            for (value, key) in [
                (&m.consumer_key, "magento.consumer_key"),
                (&m.consumer_secret, "magento.consumer_secret"),
                (&m.access_token, "magento.access_token"),
                (&m.access_token_secret, "magento.access_token_secret"),
            ] {
                if value.is_none() {
                    missing.push(key);
                }
            }
        }
    }
    if config.receiver.secret.is_none() {
        missing.push("receiver.secret");
    }
    missing
}

fn check_store(config: &Config) -> (Vec<Check>, Option<Store>) {
    let path = &config.store.path;
    if !path.exists() {
        return (
            vec![
                check(
                    "store",
                    Level::Warn,
                    format!("{} does not exist yet", path.display()),
                )
                .hint("`connector init` creates it"),
            ],
            None,
        );
    }
    let store = match Store::open(path) {
        Ok(store) => store,
        Err(e) => {
            return (
                vec![
                    check("store", Level::Fail, e.to_string())
                        .hint("a store written by a newer connector needs that version; a damaged one: restore it from a backup"),
                ],
                None,
            );
        }
    };
    let mut checks = Vec::new();
    match store.schema_version() {
        Ok(v) if v == crate::store::SCHEMA_VERSION => checks.push(check(
            "store",
            Level::Ok,
            format!("{} opens; schema version {v} (current)", path.display()),
        )),
        Ok(v) => checks.push(
            check(
                "store",
                Level::Fail,
                format!(
                    "{}: schema version {v}, this build expects {}",
                    path.display(),
                    crate::store::SCHEMA_VERSION
                ),
            )
            .hint("use the connector version that wrote it"),
        ),
        Err(e) => checks.push(check("store", Level::Fail, e.to_string())),
    }
    match store.integrity_check() {
        Ok(result) if result == "ok" => {
            checks.push(check("store integrity", Level::Ok, "quick_check: ok"))
        }
        Ok(result) => checks.push(
            check(
                "store integrity",
                Level::Fail,
                format!("quick_check: {result}"),
            )
            .hint("restore the store from a backup"),
        ),
        Err(e) => checks.push(check("store integrity", Level::Fail, e.to_string())),
    }
    (checks, Some(store))
}

fn check_lock(config: &Config, store: Option<&Store>) -> Check {
    let lock = crate::sync::lock::lock_path(&config.store.path);
    if !lock.exists() {
        return check("sync lock", Level::Ok, "no sync running");
    }
    match crate::sync::lock::acquire(&config.store.path) {
        Ok(held) => {
            drop(held);
            // The operating system releases the lock when its holder exits, so it is never
            // stale; a run that was killed shows as a run that never finished.
            let unfinished = store
                .and_then(|s| s.last_run().ok().flatten())
                .filter(|r| r.finished_at.is_none());
            match unfinished {
                Some(run) => check(
                    "sync lock",
                    Level::Warn,
                    format!(
                        "no sync running, but run {} (started {}) never finished: it was killed",
                        run.id, run.started_at
                    ),
                )
                .hint("nothing is lost: the next `connector sync` picks up its records; see `connector history`"),
                None => check("sync lock", Level::Ok, "no sync running"),
            }
        }
        Err(e)
            if matches!(
                e.downcast_ref::<crate::error::Failure>(),
                Some(crate::error::Failure::Locked(_))
            ) =>
        {
            check(
                "sync lock",
                Level::Ok,
                format!("a sync is running now (it holds {})", lock.display()),
            )
        }
        Err(e) => check("sync lock", Level::Fail, crate::error::one_line(&e))
            .hint("the folder of store.path must be writable by the user who runs the connector"),
    }
}

/// The clock check of one server from its `Date` header.
fn clock_check(system: &str, date: Option<&str>, local: DateTime<Utc>) -> Check {
    let name = format!("clock {system}");
    let Some(date) = date else {
        return check(
            name,
            Level::Warn,
            format!("{system} sent no Date header: skew not observable"),
        );
    };
    let Ok(server) = DateTime::parse_from_rfc2822(date) else {
        return check(
            name,
            Level::Warn,
            format!("{system} sent an unreadable Date header {date:?}"),
        );
    };
    let skew = server.with_timezone(&Utc) - local;
    let secs = skew.num_seconds();
    let abs = Duration::from_secs(secs.unsigned_abs());
    let detail = format!(
        "{system}'s clock is {} s {} this machine's",
        secs.abs(),
        if secs >= 0 { "ahead of" } else { "behind" }
    );
    let hint = "synchronise the clocks (NTP): sessions, OAuth signatures and the batch path's watermarks depend on them";
    if abs > SKEW_FAIL {
        check(name, Level::Fail, detail).hint(hint)
    } else if abs > SKEW_WARN {
        check(name, Level::Warn, detail).hint(hint)
    } else {
        check(name, Level::Ok, detail)
    }
}

/// The `Date` header of any reply from `url` (no credentials are sent).
async fn server_date(url: &str, roots: &[reqwest::Certificate]) -> Result<Option<String>, String> {
    let client = crate::http::with_roots(reqwest::Client::builder(), roots)
        .timeout(Duration::from_secs(15))
        .build()
        .map_err(|e| e.to_string())?;
    let reply = client
        .get(url)
        .send()
        .await
        .map_err(|e| crate::http::describe_transport(&e))?;
    Ok(reply
        .headers()
        .get(reqwest::header::DATE)
        .and_then(|v| v.to_str().ok())
        .map(String::from))
}

fn short_backoff() -> Backoff {
    Backoff {
        base: Duration::from_millis(100),
        max: Duration::from_secs(2),
        attempts: 2,
    }
}

async fn remote_checks(
    config: &Config,
    store: Option<&Store>,
    state: LifecycleState,
    options: &DoctorOptions,
    checks: &mut Vec<Check>,
) {
    let acumatica = match AcumaticaClient::new(config) {
        Ok(c) => c.with_backoff(short_backoff()),
        Err(e) => {
            checks.push(check(
                "acumatica login",
                Level::Fail,
                crate::error::one_line(&e),
            ));
            return;
        }
    };
    let magento = match MagentoClient::new(config) {
        Ok(c) => Some(c.with_backoff(short_backoff())),
        Err(e) => {
            checks.push(check(
                "magento login",
                Level::Fail,
                crate::error::one_line(&e),
            ));
            None
        }
    };

    // Acumatica: a session login, a read, a logout.
    let a = &config.acumatica;
    let url = format!(
        "{}/entity/{}/{}/StockItem?$top=1&$select=InventoryID",
        a.url, a.endpoint, a.endpoint_version
    );
    let local = Utc::now();
    let login = acumatica.send(Method::GET, &url, None, None, true).await;
    let logged_in = login.is_ok();
    match &login {
        Ok(reply) => {
            checks.push(check(
                "acumatica login",
                Level::Ok,
                format!(
                    "user `{}` logged in to tenant `{}` ({}) and read a stock item",
                    a.username,
                    a.tenant,
                    match a.auth {
                        AcumaticaAuth::Session => "session",
                        AcumaticaAuth::Oauth2 => "OAuth 2.0",
                    }
                ),
            ));
            let date = reply
                .headers
                .get(reqwest::header::DATE)
                .and_then(|v| v.to_str().ok());
            checks.push(clock_check("acumatica", date, local));
        }
        Err(e) => {
            checks.push(
                check("acumatica login", Level::Fail, e.to_string()).hint(login_hint(e, config)),
            );
            let local = Utc::now();
            if let Ok(date) = server_date(&a.url, &a.extra_roots).await {
                checks.push(clock_check("acumatica", date.as_deref(), local));
            }
        }
    }
    checks.push(licence_check(login.as_ref().err(), config));

    if logged_in {
        objects_checks(config, &acumatica, store, state, checks).await;
        if options.push_test {
            checks.push(push_test(config, &acumatica, state, options.timeout).await);
        }
    } else {
        checks.push(
            check(
                "remote objects",
                Level::Fail,
                "not checked: Acumatica refused the login",
            )
            .hint("fix the login first"),
        );
    }
    // Logout of every session, whatever happened: an abandoned one holds a licence slot.
    acumatica.close().await;
    if logged_in {
        let open = acumatica.open_sessions().await;
        if open > 0 {
            checks.push(
                check(
                    "acumatica logout",
                    Level::Warn,
                    format!("{open} session(s) still open"),
                )
                .hint("they expire after about 10 minutes"),
            );
        }
    }

    // Magento: one authenticated read.
    if let Some(magento) = magento {
        let local = Utc::now();
        let read = magento
            .get(
                Scope::Store,
                "/V1/products",
                &SearchCriteria::new().page(1, 1).to_query(),
            )
            .await;
        let m = &config.magento;
        match read {
            Ok(_) => checks.push(check(
                "magento login",
                Level::Ok,
                format!(
                    "{} accepted the {} and listed products of store `{}`",
                    m.url,
                    match m.auth {
                        MagentoAuth::Bearer => "integration token",
                        MagentoAuth::Oauth1 => "OAuth 1.0a signature",
                    },
                    m.store_code
                ),
            )),
            Err(e) => {
                let hint = if e.status() == Some(401) {
                    "check magento.access_token (or the OAuth keys) and that the integration is active with the Catalog, Sales and Inventory resources; a bearer token needs `oauth/consumer/enable_integration_as_bearer`"
                } else {
                    "check magento.url and that the store answers"
                };
                checks.push(check("magento login", Level::Fail, e.to_string()).hint(hint));
            }
        }
        if let Ok(date) = server_date(&m.url, &m.extra_roots).await {
            checks.push(clock_check("magento", date.as_deref(), local));
        } else {
            checks.push(check(
                "clock magento",
                Level::Warn,
                "Magento did not answer: skew not observable",
            ));
        }
    }
}

fn login_hint(e: &AcumaticaError, config: &Config) -> String {
    match e {
        AcumaticaError::LoginRejected { check, .. } => format!("check {check}"),
        AcumaticaError::LoginLimit { .. } => {
            "every API-user slot is taken: close other integrations' sessions or wait about 10 minutes".into()
        }
        AcumaticaError::Transport { .. } => format!(
            "check acumatica.url ({}) and that this machine can reach it",
            config.acumatica.url
        ),
        _ => "see docs/troubleshooting.md".into(),
    }
}

fn licence_check(login_error: Option<&AcumaticaError>, config: &Config) -> Check {
    match login_error {
        Some(AcumaticaError::LoginLimit { .. }) => check(
            "licence",
            Level::Fail,
            "no free API-user slot: the login was refused over the licence limit",
        )
        .hint("close other integrations' sessions, wait about 10 minutes, or lower acumatica.max_sessions"),
        Some(_) => check("licence", Level::Warn, "not checked: the login failed"),
        None => check(
            "licence",
            Level::Warn,
            format!(
                "sessions in use are not observable through the API; a login succeeded, so at least one API-user slot was free (the connector uses up to {})",
                config.acumatica.max_sessions
            ),
        )
        .hint("Acumatica's License Monitoring Console shows the slots in use"),
    }
}

fn kind_label(kind: Kind) -> &'static str {
    match kind {
        Kind::Endpoint => "endpoint",
        Kind::GenericInquiry => "generic inquiry",
        Kind::PushNotification => "push notification",
        Kind::Schedule => "schedule",
    }
}

/// The endpoint and every object `init` keeps, read back and compared with what they should
/// be (a dry run of `init`'s reconcile) and with what the store recorded.
async fn objects_checks(
    config: &Config,
    acumatica: &AcumaticaClient,
    store: Option<&Store>,
    state: LifecycleState,
    checks: &mut Vec<Check>,
) {
    let desired = admin::objects::desired(config, state != LifecycleState::Stopped);
    let reports = match EndpointProvisioner::new(acumatica, config)
        .reconcile(&desired, true, &|_| {})
        .await
    {
        Ok(r) => r,
        Err(e) => {
            checks.push(check(
                "remote objects",
                Level::Fail,
                crate::error::one_line(&e),
            ));
            return;
        }
    };
    let recorded: Vec<(String, String)> = store
        .and_then(|s| s.remote_objects().ok())
        .unwrap_or_default()
        .into_iter()
        .map(|o| (o.kind, o.name))
        .collect();
    let initialized = state != LifecycleState::Uninitialized;
    if !initialized {
        let missing = reports
            .iter()
            .filter(|r| r.action == Action::WouldCreate)
            .count();
        checks.push(
            check(
                "remote objects",
                Level::Warn,
                format!(
                    "not initialized: {missing} of {} object(s) not created yet",
                    reports.len()
                ),
            )
            .hint("run `connector init`"),
        );
        return;
    }
    for r in &reports {
        let name = format!("{} {}", kind_label(r.kind), r.name);
        let was_recorded = r.kind == Kind::Endpoint
            || recorded
                .iter()
                .any(|(k, n)| k == r.kind.as_str() && *n == r.name);
        let c = match r.action {
            Action::Unchanged if was_recorded => check(name, Level::Ok, "present, as init left it"),
            Action::Unchanged => check(
                name,
                Level::Warn,
                "present, but the store has no record of it",
            )
            .hint("run `connector init`: it records what it finds"),
            Action::WouldCreate => check(
                name,
                Level::Fail,
                if was_recorded {
                    "missing in Acumatica (init created it; someone deleted it)"
                } else {
                    "missing in Acumatica"
                },
            )
            .hint("run `connector init`: it creates what is missing"),
            Action::WouldRepair => check(
                name,
                Level::Fail,
                format!("changed in Acumatica: {} differ", r.drift.join(", ")),
            )
            .hint("run `connector init`: it repairs what drifted"),
            other => check(name, Level::Warn, format!("{other:?}")),
        };
        checks.push(c);
    }
    // Recorded by init but no longer wanted (an entity switched off since).
    for (kind, name) in &recorded {
        if !reports
            .iter()
            .any(|r| r.kind.as_str() == kind && r.name == *name)
        {
            checks.push(
                check(
                    format!("{} {name}", kind.replace('_', " ")),
                    Level::Warn,
                    "recorded by init but no longer configured",
                )
                .hint("`connector init` keeps what is configured; the object stays until `connector uninstall`"),
            );
        }
    }
}

/// Changes the connector's test record in Acumatica and waits for its push notification to
/// come through the receiver into the store.
async fn push_test(
    config: &Config,
    acumatica: &AcumaticaClient,
    state: LifecycleState,
    timeout: Duration,
) -> Check {
    const NAME: &str = "push test";
    if !matches!(state, LifecycleState::Active | LifecycleState::Paused) {
        return check(
            NAME,
            Level::Fail,
            format!(
                "the connector is {}: push notifications are off",
                state.as_str()
            ),
        )
        .hint("`connector init` (or `connector activate`) first");
    }
    let Some(entity) = [Entity::Items, Entity::Prices]
        .into_iter()
        .find(|e| e.enabled(&config.entities))
    else {
        return check(
            NAME,
            Level::Warn,
            "items and prices are both switched off: no push notification over stock items to test",
        );
    };
    let key = probe_key(&config.acumatica.prefix);
    let store = match Store::open(&config.store.path) {
        Ok(s) => s,
        Err(e) => return check(NAME, Level::Fail, e.to_string()),
    };
    let before = match store.messages_for(entity.name(), &key) {
        Ok(m) => m.len(),
        Err(e) => return check(NAME, Level::Fail, e.to_string()),
    };
    let started = Instant::now();
    let record = json!({
        "InventoryID": { "value": key },
        "Description": { "value": format!("connector doctor push test {}", Utc::now().to_rfc3339()) },
    });
    if let Err(e) = acumatica.put("/StockItem", &record, None).await {
        return check(
            NAME,
            Level::Fail,
            format!("could not change the test stock item {key}: {e}"),
        )
        .hint("the API user needs to edit stock items");
    }
    loop {
        match store.messages_for(entity.name(), &key) {
            Ok(m) if m.len() > before => break,
            Ok(_) => {}
            Err(e) => return check(NAME, Level::Fail, e.to_string()),
        }
        if started.elapsed() >= timeout {
            return check(
                NAME,
                Level::Fail,
                format!(
                    "stock item {key} was changed, but no push notification reached the store within {} s",
                    timeout.as_secs()
                ),
            )
            .hint(format!(
                "is `connector listen` running? Acumatica must reach receiver.public_url ({}): check the URL, firewall, proxy and TLS; `connector status` counts refused notifications (wrong secret)",
                config.receiver.public_url
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let elapsed = started.elapsed();
    // The test record never goes to Magento.
    if let Ok(ids) = store.waiting_messages_of(&key) {
        let mut store = store;
        let _ = store.mark_skipped(&ids, PROBE_SKIP_REASON);
    }
    check(
        NAME,
        Level::Ok,
        format!(
            "the change of stock item {key} arrived through the receiver in {:.1} s",
            elapsed.as_secs_f64()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_skew_is_judged_by_its_size_either_way() {
        let local = DateTime::parse_from_rfc3339("2026-11-27T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let at = |s: &str| clock_check("x", Some(s), local).level;
        assert_eq!(at("Fri, 27 Nov 2026 00:00:30 GMT"), Level::Ok);
        assert_eq!(at("Thu, 26 Nov 2026 23:58:00 GMT"), Level::Warn);
        assert_eq!(at("Fri, 27 Nov 2026 00:10:00 GMT"), Level::Fail);
        assert_eq!(clock_check("x", None, local).level, Level::Warn);
        assert_eq!(
            clock_check("x", Some("yesterday"), local).level,
            Level::Warn
        );
    }
}
