//! Push notifications (screen SM302000) and the dispatcher that fires them.
//!
//! Public API:
//! - [`PushHook`] / [`PushSource`]: a destination (Hooks view: Name, Active, Type, Address,
//!   HeaderName, HeaderValue) and its GI sources (SourcesGI view: DesignID, Active,
//!   TrackAllFields, plus tracked fields).
//! - [`Dispatcher::new`]`(gis, source, options)`; [`Dispatcher::put_hook`] refuses a source GI
//!   that cannot be pushed ([`super::gi::GenericInquiry::push_refusal`]).
//! - [`Dispatcher::spawn`]`(receiver)`: consumes the store's [`Transaction`]s in order;
//!   [`Dispatcher::dispatch`]`(&tx)` does the same for one transaction and returns when every
//!   notification it produced is delivered or failed.
//! - [`Dispatcher::notifications_for`]: the bodies a transaction produces, without sending.
//! - [`Dispatcher::resend_failed`]: what the "process failed push notifications" schedule does.
//! - [`Dispatcher::state`]: `push_notifications` and `failed_notifications` for
//!   `/__sandbox/state`.
//!
//! Body (Acumatica's "Push Notification Format"): `Query` (GI name), `CompanyId` (tenant),
//! `Id` (a GUID per transaction), `TimeStamp` (.NET ticks of the dispatch time), `Inserted`,
//! `Deleted` (flat rows keyed by GI column; date-times tenant-local without offset, as
//! `2017-05-05T15:16:23.103`), `AdditionalInfo`. The GI is run before and after the
//! transaction; rows only in "after" are `Inserted`, rows only in "before" are `Deleted`, so an
//! update is the old row in `Deleted` and the new one in `Inserted`. When TrackAllFields is off,
//! untracked columns are null and a change touching only them sends nothing.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedReceiver;

use super::gi::{GenericInquiry, GiCatalog};
use super::odata::{FieldType, parse_stored_datetime};
use super::tables::{Row, TABLES, TableSource, Transaction};

/// One GI a destination listens to.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PushSource {
    /// The GI's name or its DesignID GUID.
    pub design_id: String,
    pub active: bool,
    pub track_all_fields: bool,
    /// GI column names whose changes are tracked when `track_all_fields` is off.
    pub tracked_fields: Vec<String>,
}

/// A push notification destination.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PushHook {
    pub name: String,
    pub active: bool,
    /// Only `Webhook` is simulated.
    pub kind: String,
    pub address: String,
    pub header_name: String,
    pub header_value: String,
    pub sources: Vec<PushSource>,
}

#[derive(Clone, Debug)]
pub struct PushOptions {
    /// `CompanyId` in every body.
    pub tenant: String,
    /// Date-times in rows are written in this zone, without offset.
    pub timezone: Tz,
    /// Send an update as two requests: `Deleted` first, then `Inserted` (same `Id`).
    pub split_updates: bool,
    /// Attempts per notification before it is kept as failed (Acumatica: 5).
    pub max_attempts: u32,
    /// Pause between attempts.
    pub retry_delay: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            tenant: "Company".into(),
            timezone: chrono_tz::America::New_York,
            split_updates: false,
            max_attempts: 5,
            retry_delay: Duration::from_millis(50),
            timeout: Duration::from_secs(10),
        }
    }
}

/// One notification on its way (or kept as failed).
#[derive(Clone, Debug, Serialize)]
pub struct Notification {
    pub hook: String,
    pub address: String,
    #[serde(skip)]
    pub header: Option<(String, String)>,
    pub query: String,
    pub id: String,
    pub body: Value,
    pub attempts: u32,
    pub last_error: String,
}

/// What `/__sandbox/state` shows of a failed notification (no header value: it is a secret).
#[derive(Clone, Debug, Serialize)]
pub struct FailedSummary {
    pub hook: String,
    pub address: String,
    pub query: String,
    pub id: String,
    pub attempts: u32,
    pub last_error: String,
    pub inserted: usize,
    pub deleted: usize,
}

pub struct Dispatcher {
    gis: Arc<GiCatalog>,
    source: Arc<dyn TableSource>,
    options: PushOptions,
    hooks: Mutex<BTreeMap<String, PushHook>>,
    failed: Mutex<Vec<Notification>>,
    /// Every notification a destination answered with a 2xx, in order (for tests: each one
    /// acknowledged must be in the receiver's store).
    acknowledged: Mutex<Vec<FailedSummary>>,
    client: reqwest::Client,
    attempts: AtomicU64,
    delivered: AtomicU64,
}

fn summary(n: &Notification) -> FailedSummary {
    FailedSummary {
        hook: n.hook.clone(),
        address: n.address.clone(),
        query: n.query.clone(),
        id: n.id.clone(),
        attempts: n.attempts,
        last_error: n.last_error.clone(),
        inserted: n.body["Inserted"].as_array().map_or(0, Vec::len),
        deleted: n.body["Deleted"].as_array().map_or(0, Vec::len),
    }
}

/// .NET ticks (100 ns since 0001-01-01) of an instant.
pub fn dotnet_ticks(at: DateTime<Utc>) -> i64 {
    const UNIX_EPOCH_TICKS: i64 = 621_355_968_000_000_000;
    UNIX_EPOCH_TICKS + at.timestamp() * 10_000_000 + i64::from(at.timestamp_subsec_nanos() / 100)
}

/// A UTC instant as Acumatica writes it in push rows: tenant-local, no offset, milliseconds
/// without trailing zeros (`2017-05-05T15:16:23.1`).
pub fn tenant_local(at: DateTime<Utc>, tz: Tz) -> String {
    let local = at.with_timezone(&tz);
    let mut s = local.format("%Y-%m-%dT%H:%M:%S").to_string();
    let ms = local.timestamp_subsec_millis();
    if ms > 0 {
        let frac = format!("{ms:03}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s
}

fn new_guid(seed: u64) -> String {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut b: [u8; 16] = rng.random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn key_fields(table: &str) -> &'static [&'static str] {
    TABLES
        .iter()
        .find(|(t, _)| *t == table)
        .map(|(_, k)| *k)
        .unwrap_or(&[])
}

fn row_key(table: &str, row: &Row) -> String {
    key_fields(table)
        .iter()
        .map(|k| row.get(*k).map(|v| v.to_string()).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\u{1f}")
}

/// The tables as they were before (or after) one transaction: the store's rows with the
/// transaction's changed records replaced by their `before` (or `after`) images.
struct Overlay<'a> {
    base: &'a dyn TableSource,
    replaced: BTreeMap<String, Vec<(String, Option<Row>)>>,
}

impl TableSource for Overlay<'_> {
    fn rows(&self, table: &str) -> Option<Vec<Row>> {
        let mut rows = self.base.rows(table)?;
        if let Some(replaced) = self.replaced.get(table) {
            rows.retain(|r| {
                let key = row_key(table, r);
                !replaced.iter().any(|(k, _)| *k == key)
            });
            rows.extend(replaced.iter().filter_map(|(_, r)| r.clone()));
        }
        Some(rows)
    }
}

fn overlay<'a>(base: &'a dyn TableSource, tx: &Transaction, after: bool) -> Overlay<'a> {
    let mut replaced: BTreeMap<String, Vec<(String, Option<Row>)>> = BTreeMap::new();
    for change in &tx.changes {
        let image = if after { &change.after } else { &change.before };
        let Some(any) = change.after.as_ref().or(change.before.as_ref()) else {
            continue;
        };
        let key = row_key(&change.table, any);
        let list = replaced.entry(change.table.clone()).or_default();
        // The last change of a record within the transaction wins for "after"; the first
        // for "before".
        if let Some(slot) = list.iter_mut().find(|(k, _)| *k == key) {
            if after {
                slot.1 = image.clone();
            }
        } else {
            list.push((key, image.clone()));
        }
    }
    Overlay { base, replaced }
}

/// Rows in `a` not matched one-for-one by an equal row in `b`.
fn multiset_minus(a: &[Row], b: &[Row]) -> Vec<Row> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for r in b {
        *counts
            .entry(serde_json::to_string(r).unwrap_or_default())
            .or_default() += 1;
    }
    a.iter()
        .filter(|r| {
            let k = serde_json::to_string(r).unwrap_or_default();
            match counts.get_mut(&k) {
                Some(n) if *n > 0 => {
                    *n -= 1;
                    false
                }
                _ => true,
            }
        })
        .cloned()
        .collect()
}

impl Dispatcher {
    pub fn new(
        gis: Arc<GiCatalog>,
        source: Arc<dyn TableSource>,
        options: PushOptions,
    ) -> Arc<Dispatcher> {
        let client = reqwest::Client::builder()
            .timeout(options.timeout)
            .build()
            .unwrap_or_default();
        Arc::new(Dispatcher {
            gis,
            source,
            options,
            hooks: Mutex::new(BTreeMap::new()),
            failed: Mutex::new(Vec::new()),
            acknowledged: Mutex::new(Vec::new()),
            client,
            attempts: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
        })
    }

    pub fn options(&self) -> &PushOptions {
        &self.options
    }

    /// Inserts or replaces a destination by name. Refuses what the SM302000 form refuses: an
    /// empty name or address, a destination type other than Webhook, a source GI that does not
    /// exist or cannot be pushed.
    pub fn put_hook(&self, hook: PushHook) -> Result<(), String> {
        if hook.name.trim().is_empty() {
            return Err("'Destination Name' cannot be empty.".into());
        }
        if !hook.kind.eq_ignore_ascii_case("Webhook") && !hook.kind.eq_ignore_ascii_case("WH") {
            return Err(format!(
                "The destination type '{}' is not supported by the sandbox; use Webhook.",
                hook.kind
            ));
        }
        if hook.address.trim().is_empty() {
            return Err("'Address' cannot be empty.".into());
        }
        if url::Url::parse(&hook.address).is_err() {
            return Err(format!(
                "The address '{}' is not a valid URL.",
                hook.address
            ));
        }
        for s in &hook.sources {
            let Some(gi) = self.gis.find(&s.design_id) else {
                return Err(format!(
                    "The generic inquiry '{}' cannot be found in the system.",
                    s.design_id
                ));
            };
            if let Some(refusal) = gi.push_refusal() {
                return Err(refusal);
            }
            let columns = gi.columns();
            for f in &s.tracked_fields {
                if !columns.iter().any(|c| c.name == *f) {
                    return Err(format!(
                        "The field '{f}' is not a column of the '{}' generic inquiry.",
                        gi.name
                    ));
                }
            }
        }
        self.lock_hooks().insert(hook.name.clone(), hook);
        Ok(())
    }

    pub fn hook(&self, name: &str) -> Option<PushHook> {
        self.lock_hooks().get(name).cloned()
    }

    pub fn hooks(&self) -> Vec<PushHook> {
        self.lock_hooks().values().cloned().collect()
    }

    pub fn remove_hook(&self, name: &str) -> Option<PushHook> {
        self.lock_hooks().remove(name)
    }

    /// Whether a GI is the source of any destination (such a GI cannot be changed into one
    /// that cannot be pushed).
    pub fn gi_in_use(&self, gi: &GenericInquiry) -> bool {
        self.lock_hooks().values().any(|h| {
            h.sources
                .iter()
                .any(|s| s.design_id == gi.name || s.design_id.eq_ignore_ascii_case(&gi.design_id))
        })
    }

    /// The notifications one transaction produces (one per active destination × active source
    /// GI whose rows changed; two when updates are split).
    pub fn notifications_for(&self, tx: &Transaction) -> Vec<Notification> {
        let now = Utc::now();
        let id = new_guid(tx.id ^ (now.timestamp_nanos_opt().unwrap_or(0) as u64).rotate_left(17));
        let ticks = dotnet_ticks(now);
        let changed: Vec<&str> = tx.changes.iter().map(|c| c.table.as_str()).collect();
        let before_view = overlay(self.source.as_ref(), tx, false);
        let after_view = overlay(self.source.as_ref(), tx, true);
        let mut out = Vec::new();
        for hook in self.hooks().into_iter().filter(|h| h.active) {
            for src in hook.sources.iter().filter(|s| s.active) {
                let Some(gi) = self.gis.find(&src.design_id) else {
                    continue;
                };
                let affected = gi.tables.iter().any(|t| {
                    let short = t.table.rsplit('.').next().unwrap_or(&t.table);
                    changed.contains(&short)
                });
                if !affected || gi.push_refusal().is_some() {
                    continue;
                }
                let (Ok(before), Ok(after)) = (gi.execute(&before_view), gi.execute(&after_view))
                else {
                    continue;
                };
                let columns = gi.columns();
                let project = |rows: Vec<Row>| -> Vec<Row> {
                    rows.into_iter()
                        .map(|mut r| {
                            for c in &columns {
                                let tracked =
                                    src.track_all_fields || src.tracked_fields.contains(&c.name);
                                if !tracked {
                                    r.insert(c.name.clone(), Value::Null);
                                }
                            }
                            r
                        })
                        .collect()
                };
                let (before, after) = (project(before), project(after));
                let inserted = multiset_minus(&after, &before);
                let deleted = multiset_minus(&before, &after);
                if inserted.is_empty() && deleted.is_empty() {
                    continue;
                }
                let format = |rows: Vec<Row>| -> Vec<Value> {
                    rows.into_iter()
                        .map(|mut r| {
                            for c in columns
                                .iter()
                                .filter(|c| c.field_type == FieldType::DateTime)
                            {
                                if let Some(Value::String(s)) = r.get(&c.name)
                                    && let Some(at) = parse_stored_datetime(s)
                                {
                                    let local = tenant_local(at, self.options.timezone);
                                    r.insert(c.name.clone(), Value::String(local));
                                }
                            }
                            Value::Object(r.into_iter().collect())
                        })
                        .collect()
                };
                let (inserted, deleted) = (format(inserted), format(deleted));
                let header = (!hook.header_name.is_empty())
                    .then(|| (hook.header_name.clone(), hook.header_value.clone()));
                let body = |ins: Vec<Value>, del: Vec<Value>| {
                    json!({
                        "Inserted": ins,
                        "Deleted": del,
                        "Query": gi.name,
                        "CompanyId": self.options.tenant,
                        "Id": id,
                        "TimeStamp": ticks,
                        "AdditionalInfo": {
                            "PXPerformanceInfoStartTime": tenant_local(now, self.options.timezone),
                        },
                    })
                };
                let bodies =
                    if self.options.split_updates && !inserted.is_empty() && !deleted.is_empty() {
                        vec![body(vec![], deleted), body(inserted, vec![])]
                    } else {
                        vec![body(inserted, deleted)]
                    };
                for b in bodies {
                    out.push(Notification {
                        hook: hook.name.clone(),
                        address: hook.address.clone(),
                        header: header.clone(),
                        query: gi.name.clone(),
                        id: id.clone(),
                        body: b,
                        attempts: 0,
                        last_error: String::new(),
                    });
                }
            }
        }
        out
    }

    /// Produces and sends the notifications of one transaction, in order.
    pub async fn dispatch(&self, tx: &Transaction) {
        for n in self.notifications_for(tx) {
            self.deliver(n).await;
        }
    }

    /// Consumes transactions until the sender is dropped.
    pub fn spawn(
        self: &Arc<Self>,
        mut transactions: UnboundedReceiver<Transaction>,
    ) -> tokio::task::JoinHandle<()> {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            while let Some(tx) = transactions.recv().await {
                me.dispatch(&tx).await;
            }
        })
    }

    /// Up to `max_attempts` POSTs; a non-2xx reply or a connection error is a failed attempt.
    /// Returns whether it was delivered; otherwise it is kept as failed.
    async fn deliver(&self, mut n: Notification) -> bool {
        for attempt in 0..self.options.max_attempts.max(1) {
            if attempt > 0 {
                tokio::time::sleep(self.options.retry_delay).await;
            }
            n.attempts += 1;
            self.attempts.fetch_add(1, Ordering::Relaxed);
            let mut request = self.client.post(&n.address).json(&n.body);
            if let Some((name, value)) = &n.header {
                request = request.header(name.as_str(), value.as_str());
            }
            match request.send().await {
                Ok(reply) if reply.status().is_success() => {
                    self.delivered.fetch_add(1, Ordering::Relaxed);
                    let summary = summary(&n);
                    self.acknowledged
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(summary);
                    return true;
                }
                Ok(reply) => n.last_error = format!("HTTP {}", reply.status().as_u16()),
                Err(e) => n.last_error = format!("connection error: {e}"),
            }
        }
        tracing::debug!(hook = %n.hook, query = %n.query, "push notification kept as failed");
        self.lock_failed().push(n);
        false
    }

    /// Resends every failed notification (each gets a fresh round of attempts). Returns how
    /// many were delivered; the others stay failed.
    pub async fn resend_failed(&self) -> usize {
        let pending = std::mem::take(&mut *self.lock_failed());
        let mut delivered = 0;
        for mut n in pending {
            n.attempts = 0;
            if self.deliver(n).await {
                delivered += 1;
            }
        }
        delivered
    }

    pub fn failed(&self) -> Vec<FailedSummary> {
        self.lock_failed().iter().map(summary).collect()
    }

    /// The notifications a destination acknowledged with a 2xx (`last_error` empty).
    pub fn acknowledged(&self) -> Vec<FailedSummary> {
        self.acknowledged
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// POST attempts made so far, and notifications delivered.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.attempts.load(Ordering::Relaxed),
            self.delivered.load(Ordering::Relaxed),
        )
    }

    /// `push_notifications` and `failed_notifications` for `/__sandbox/state`.
    pub fn state(&self) -> Value {
        let hooks: Vec<Value> = self
            .hooks()
            .into_iter()
            .map(|h| {
                json!({
                    "name": h.name,
                    "active": h.active,
                    "address": h.address,
                    "sources": h.sources.iter().map(|s| json!({
                        "gi": s.design_id,
                        "active": s.active,
                        "track_all_fields": s.track_all_fields,
                        "tracked_fields": s.tracked_fields,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        let (attempts, delivered) = self.counts();
        json!({
            "push_notifications": hooks,
            "failed_notifications": self.failed(),
            "acknowledged_notifications": self.acknowledged(),
            "push_attempts": attempts,
            "push_delivered": delivered,
        })
    }

    fn lock_hooks(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, PushHook>> {
        self.hooks.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_failed(&self) -> std::sync::MutexGuard<'_, Vec<Notification>> {
        self.failed.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn ticks_match_dotnet() {
        // DateTime(2017, 5, 5, 15, 16, 23, DateTimeKind.Utc).Ticks
        let at = Utc.with_ymd_and_hms(2017, 5, 5, 15, 16, 23).unwrap();
        assert_eq!(dotnet_ticks(at), 636_295_941_830_000_000);
    }

    #[test]
    fn tenant_local_has_no_offset_and_trims_milliseconds() {
        let at = parse_stored_datetime("2026-11-26T15:00:00.100Z").unwrap();
        assert_eq!(
            tenant_local(at, chrono_tz::America::New_York),
            "2026-11-26T10:00:00.1"
        );
        let at = parse_stored_datetime("2026-07-01T12:00:00.123Z").unwrap();
        assert_eq!(
            tenant_local(at, chrono_tz::America::New_York),
            "2026-07-01T08:00:00.123"
        );
        let at = parse_stored_datetime("2026-07-01T12:00:00Z").unwrap();
        assert_eq!(
            tenant_local(at, chrono_tz::Europe::Paris),
            "2026-07-01T14:00:00"
        );
    }

    #[test]
    fn guids_look_like_guids() {
        let g = new_guid(7);
        assert_eq!(g.len(), 36);
        assert_eq!(&g[14..15], "4");
    }
}
