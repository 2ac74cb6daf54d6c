//! The engine every flow shares: lock, life cycle, collect (the batch path), coalesce, skip
//! what is unchanged, deliver with bounded concurrency, record outcomes, and the run history.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Mutex;

use anyhow::Context as _;
use chrono::Utc;
use serde::Serialize;
use serde_json::Value;
use sha2::Digest;

use futures_util::StreamExt as _;

use super::coalesce::coalesce;
use crate::acumatica::AcumaticaClient;
use crate::config::Config;
use crate::entities::{Direction, Entity};
use crate::error::Failure;
use crate::magento::MagentoClient;
use crate::store::{Delivery, LifecycleState, Mapped, Mapping, NewMessage, QueuedMessage, Store};

/// What `connector sync` was asked to do.
#[derive(Clone, Debug, Default)]
pub struct SyncOptions {
    /// Only these entities; empty: every enabled one.
    pub entities: Vec<Entity>,
    /// Deliver at most this many records per entity.
    pub limit: Option<usize>,
    /// Show what would be sent; send nothing, change nothing.
    pub dry_run: bool,
    /// Re-read everything on the batch path, not only what changed since the watermark.
    pub full: bool,
    /// Product saves through Magento's asynchronous bulk API (`sync --full --bulk`).
    pub bulk: bool,
}

/// Counts of one entity in one run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct EntityCounts {
    /// Rows the batch path read and queued.
    pub collected: u64,
    pub delivered: u64,
    /// Not sent: unchanged, superseded by a newer version, or older than what was delivered.
    pub skipped: u64,
    /// Failed this time; retried by a later run.
    pub failed: u64,
    /// Failed for the last time (see `connector failed`).
    pub dead: u64,
    /// Kept for later: the connector is paused.
    pub held: u64,
    /// With --dry-run: records that would be sent.
    pub would_send: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    pub run_id: Option<i64>,
    pub state: &'static str,
    pub dry_run: bool,
    pub entities: BTreeMap<&'static str, EntityCounts>,
    /// Why nothing ran, when nothing did.
    pub note: Option<String>,
}

impl RunReport {
    pub fn failed_records(&self) -> u64 {
        self.entities.values().map(|c| c.failed + c.dead).sum()
    }
}

/// Progress of a run, for a terminal (indicatif) or nothing.
pub trait Progress: Send + Sync {
    /// Whether anyone sees it: when not, the run does not count the queue for it (a count of
    /// 100,000 due messages took 50 ms of a run that sends them in 3 s).
    fn shown(&self) -> bool {
        true
    }
    fn start(&self, entity: Entity, records: u64);
    /// `records` more to do than `start` said (the batch path's read queued them meanwhile).
    fn more(&self, _entity: Entity, _records: u64) {}
    fn advance(&self, entity: Entity, records: u64);
    fn finish(&self, entity: Entity);
}

/// No progress output.
pub struct Silent;

impl Progress for Silent {
    fn shown(&self) -> bool {
        false
    }
    fn start(&self, _: Entity, _: u64) {}
    fn advance(&self, _: Entity, _: u64) {}
    fn finish(&self, _: Entity) {}
}

/// One record to deliver, after coalescing.
#[derive(Clone, Debug)]
pub struct Record {
    pub key: String,
    pub version: String,
    /// `upsert` or `delete` (a delete candidate: confirm before deleting).
    pub operation: String,
    pub row: Value,
    pub message_ids: Vec<i64>,
    pub mapping: Option<Mapping>,
}

/// What became of one record.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Delivered {
        /// The record's key on the other side (SKU, order id…).
        target_key: String,
        /// The mapping key, when it differs from the record's (inventory maps per SKU).
        source_key: Option<String>,
        hash: String,
    },
    Skipped(String),
    Failed(String),
}

/// What flows need: the config, the clients, the store.
pub struct Context<'a> {
    pub config: &'a Config,
    pub magento: &'a MagentoClient,
    pub acumatica: &'a AcumaticaClient,
    pub store: &'a Mutex<Store>,
    pub dry_run: bool,
    /// Set when Magento refused the credentials (401): see
    /// [`Context::magento_error`].
    pub halt: Mutex<Option<String>>,
    /// The largest batch Magento's web API input limit lets through, once a flow of this run
    /// met it (shared, so the next flow does not have its first batch refused too).
    pub batch_cap: super::flows::BatchCap,
    /// The same for the asynchronous bulk API (`sync --full --bulk`), apart: a list the bulk
    /// endpoint accepted says nothing of the synchronous ones, and it is not kept between runs.
    pub bulk_cap: super::flows::BatchCap,
    /// `sync --full --bulk`: the items flow saves products through the async bulk API.
    pub bulk: bool,
}

impl Context<'_> {
    /// A Magento error as a record's failure text. A 401 (token revoked or an ACL resource
    /// missing) is not the record's fault: it halts the run. Before,
    /// each record failed with it, was charged an attempt (a few hours of a revoked token made
    /// the whole catalogue dead), the batch flows split every batch down to single items
    /// resending each to the same 401, and the run exited 3 instead of 1 with one clear error.
    pub fn magento_error(&self, error: crate::magento::MagentoError) -> String {
        use crate::magento::MagentoError;
        let message = error.to_string();
        // Only the 401: a transport error the client did not retry is one request's (a cut
        // reply), and an unreachable Magento comes back as GaveUp, like a record's own 5xx.
        if matches!(error, MagentoError::Unauthorized { .. }) {
            let mut halt = self.halt.lock().expect("halt lock poisoned");
            halt.get_or_insert_with(|| message.clone());
        }
        message
    }

    /// Why the run halted, once Magento refused the credentials; flows then send nothing more.
    pub fn halted(&self) -> Option<String> {
        self.halt.lock().expect("halt lock poisoned").clone()
    }

    /// Runs `f` on the store (a short synchronous call).
    pub fn store<T>(&self, f: impl FnOnce(&mut Store) -> rusqlite::Result<T>) -> anyhow::Result<T> {
        let mut store = self.store.lock().expect("store lock poisoned");
        f(&mut store).context("state store")
    }
}

/// The hash of an outbound payload: equal hashes mean nothing to send. serde_json keeps object
/// keys sorted, so equal payloads serialize equally.
pub fn payload_hash(payload: &Value) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = sha2::Sha256::digest(payload.to_string().as_bytes());
    // Hex by table: a `format!` per byte was a tenth of a batch flow's CPU per record.
    let mut hex = String::with_capacity(2 * digest.len());
    for b in digest.iter() {
        hex.push(HEX[usize::from(b >> 4)] as char);
        hex.push(HEX[usize::from(b & 0xf)] as char);
    }
    hex
}

/// The entities a run covers, in delivery order (items before prices and inventory: a
/// product must exist before its price and stock).
pub fn entities_to_run(config: &Config, options: &SyncOptions) -> Vec<Entity> {
    Entity::ALL
        .into_iter()
        .filter(|e| e.enabled(&config.entities))
        .filter(|e| options.entities.is_empty() || options.entities.contains(e))
        .filter(|e| super::flows::supported(*e))
        .collect()
}

/// One `connector sync`.
pub async fn run(
    config: &Config,
    options: &SyncOptions,
    progress: &dyn Progress,
) -> anyhow::Result<RunReport> {
    let _lock = super::lock::acquire(&config.store.path)?;
    let store = Store::open(&config.store.path)?;
    // Declared before the store's Mutex below, so dropped after it: the last checkpoint
    // comes after the last write.
    let _checkpoints = store
        .checkpoint_in_background()
        .context("starting the store's checkpoint thread")?;
    let state = store
        .lifecycle()
        .context("reading the life-cycle state")?
        .state;
    let mut report = RunReport {
        run_id: None,
        state: state.as_str(),
        dry_run: options.dry_run,
        entities: BTreeMap::new(),
        note: None,
    };
    match state {
        LifecycleState::Uninitialized => {
            return Err(Failure::CannotStart(
                "the connector is not initialized: run `connector init` first".into(),
            )
            .into());
        }
        LifecycleState::Stopped => {
            report.note = Some(
                "the connector is stopped (`connector deactivate --stop`): nothing synced; `connector activate` resumes".into(),
            );
            return Ok(report);
        }
        LifecycleState::Active | LifecycleState::Paused => {}
    }
    let acumatica = AcumaticaClient::new(config)?;
    let magento = MagentoClient::new(config)?;
    let run_id = if options.dry_run {
        None
    } else {
        Some(store.begin_run()?)
    };
    report.run_id = run_id;
    let batch_cap = super::flows::BatchCap::remembered(&store, &config.magento.url);
    let store = Mutex::new(store);
    let ctx = Context {
        config,
        magento: &magento,
        acumatica: &acumatica,
        store: &store,
        dry_run: options.dry_run,
        halt: Mutex::new(None),
        batch_cap,
        bulk_cap: super::flows::BatchCap::unknown(),
        bulk: options.bulk,
    };
    let entities = entities_to_run(config, options);
    // The last entity that calls Acumatica: when that is only its batch read (a catalogue
    // flow), the session is released as soon as the read is done.
    let last_acumatica = entities
        .iter()
        .rposition(|e| e.direction() == Direction::ToMagento || delivers_through_acumatica(*e));
    let work = async {
        for (i, entity) in entities.into_iter().enumerate() {
            let release = Some(i) == last_acumatica && !delivers_through_acumatica(entity);
            let counts = sync_entity(&ctx, entity, state, options, progress, release).await?;
            report.entities.insert(entity.name(), counts);
        }
        anyhow::Ok(())
    };
    let outcome = crate::acumatica::with_sessions(&acumatica, work).await;
    if !options.dry_run {
        if let Err(e) = ctx.store(|s| ctx.batch_cap.keep(s)) {
            tracing::warn!("keeping the batch size Magento accepted failed: {e:#}");
        }
        // Housekeeping, bounded per run so a run stays short.
        let retention = config.store.retention_days;
        if let Err(e) = ctx.store(|s| s.purge(retention, 10_000)) {
            tracing::warn!("purging old messages failed: {e:#}");
        }
    }
    if let Some(id) = run_id {
        let summary = match (&outcome, report.failed_records()) {
            (Err(_), _) => "failed",
            (Ok(()), 0) => "done",
            (Ok(()), _) => "partial",
        };
        let counts = serde_json::to_string(&report.entities)?;
        ctx.store(|s| s.finish_run(id, summary, &counts))?;
    }
    outcome?;
    Ok(report)
}

/// Whether delivering `entity` calls Acumatica, beyond the batch path's read: the flows to
/// Acumatica, shipments (read by key), and items (a delete candidate is looked up first).
fn delivers_through_acumatica(entity: Entity) -> bool {
    matches!(
        entity,
        Entity::Items | Entity::Shipments | Entity::Customers | Entity::Orders
    )
}

/// Syncs one entity. `release_acumatica`: nothing after this entity's batch read calls
/// Acumatica, so its session is logged out once the read is done, while the delivery goes
/// on — a licence slot back to the tenant's users sooner, and the logout's round trip off the
/// end of the run.
async fn sync_entity(
    ctx: &Context<'_>,
    entity: Entity,
    state: LifecycleState,
    options: &SyncOptions,
    progress: &dyn Progress,
    release_acumatica: bool,
) -> anyhow::Result<EntityCounts> {
    let mut counts = EntityCounts::default();
    let mut dry_run_rows = Vec::new();
    // The batch path's read of Acumatica, when it runs beside the delivery of what is already
    // queued (see below).
    let mut collecting = None;
    if entity.direction() == Direction::ToMagento {
        let collect = super::collect::collect_from_acumatica(ctx, entity, options);
        if ctx.dry_run || state == LifecycleState::Paused {
            // A dry run shows what the read found (nothing is queued); a paused one only holds.
            let collected = collect.await?;
            count_collected(&mut counts, &collected);
            dry_run_rows = collected.dry_run_messages;
            if state == LifecycleState::Paused {
                // Pause Sync to Magento: collect and hold, write nothing to Magento.
                return Ok(counts);
            }
        } else {
            // What push notifications queued goes out while the read runs: an incremental
            // read of a large inquiry takes the remote system a while (0.5–1 s of a 3.6 s
            // 100,000-price run, before this), and its rows are queued as they arrive and read
            // like any other message — the same as a notification arriving mid-run.
            collecting = Some(Box::pin(collect));
        }
    } else {
        // Magento -> Acumatica (sync part 2): orders and customers are read from Magento on
        // their updated_at watermark. Pause does not hold this direction.
        counts.collected =
            super::magento_collect::collect_from_magento(ctx, entity, options).await?;
    }

    // The queue is read in chunks by id, so a first run over a large catalogue never holds
    // it all in memory. Coalescing works within a chunk; a record whose versions straddle two
    // chunks costs a second call at worst, and the stale check keeps the newest.
    //
    // Chunks go through a pipeline `pipeline_depth(entity)` deep: while chunks' calls are in
    // flight the next is read and prepared and the one before is recorded, so the
    // connector's own work (SQLite, JSON, hashing) overlaps the round trips instead of
    // leaving the remote system's slots idle between chunks. A record is never in flight
    // twice: a message whose record (`Entity::conflict_key`) is in a chunk still in flight waits, and
    // is prepared again — with the mapping that chunk recorded — once that chunk is done.
    let mut remaining = options.limit.unwrap_or(usize::MAX);
    let mut after = 0i64;
    let mut extra = dry_run_rows;
    let total = if progress.shown() {
        ctx.store(|s| s.count_due(entity.name()))? + extra.len() as u64
    } else {
        0
    };
    progress.start(entity, total.min(remaining as u64));
    let mut halted = None;
    let chunk = delivery_chunk(ctx.config, entity);
    let depth = pipeline_depth(entity);
    let probe = crate::doctor::probe_key(&ctx.config.acumatica.prefix);
    let mut in_flight = futures_util::stream::FuturesOrdered::new();
    // The conflict keys of each chunk in flight, oldest first (as `in_flight`).
    let mut busy: VecDeque<HashSet<String>> = VecDeque::new();
    // Messages read while their record was in flight.
    let mut waiting: Vec<QueuedMessage> = Vec::new();
    let mut exhausted = false;
    // A chunk was recorded since `waiting` was last sorted: some of it may be free to go.
    let mut retry_waiting = false;
    let mut collect_failed: Option<anyhow::Error> = None;
    let mut releasing = None;
    loop {
        // No more reading while a chunk's worth waits (a queue holding the same records over
        // and over would otherwise be read whole into `waiting`).
        let read = !exhausted && waiting.len() < chunk;
        let sort_waiting = retry_waiting && !waiting.is_empty();
        let fill = halted.is_none()
            && collect_failed.is_none()
            && remaining > 0
            && in_flight.len() < depth
            && (read || sort_waiting);
        // Biased: the chunks in flight are polled before the next is prepared, so a chunk's
        // calls start as soon as it is pushed, not once the whole pipeline is filled (the
        // first call of a run waited some 20 ms for three chunks to be prepared, strace).
        let event = tokio::select! {
            biased;
            Some(outcomes) = in_flight.next(), if !in_flight.is_empty() => Event::Delivered(outcomes),
            collected = async { collecting.as_mut().expect("checked").await }, if collecting.is_some() => {
                Event::Collected(collected)
            }
            () = async { releasing.as_mut().expect("checked").await }, if releasing.is_some() => {
                Event::Released
            }
            () = std::future::ready(()), if fill => Event::Fill { read },
            else => Event::Idle,
        };
        match event {
            Event::Fill { read } => {
                retry_waiting = false;
                let mut due = std::mem::take(&mut waiting);
                // Their record may have been delivered since they were read: read its mapping again.
                for message in &mut due {
                    message.mapping =
                        ctx.store(|s| s.mapping(entity.name(), &message.natural_key))?;
                }
                if read {
                    let fetched =
                        ctx.store(|s| s.due_messages_after(entity.name(), after, chunk))?;
                    exhausted = fetched.len() < chunk;
                    if let Some(last) = fetched.last() {
                        after = last.id;
                    }
                    due.extend(fetched);
                }
                // `connector doctor --push-test` changes its own stock item to see a notification
                // arrive; that record is never sent to Magento, whichever path read it.
                let (probes, rest): (Vec<_>, Vec<_>) =
                    due.into_iter().partition(|m| m.natural_key == probe);
                due = rest;
                if !probes.is_empty() && !ctx.dry_run {
                    let ids: Vec<i64> = probes.iter().map(|m| m.id).collect();
                    ctx.store(|s| s.mark_skipped(&ids, crate::doctor::PROBE_SKIP_REASON))?;
                }
                // --dry-run queues nothing, so what the batch path read is not in the queue:
                // without these rows a dry run showed nothing of the changes only the batch path
                // had found (a first run, a lost push). Negative ids: never written, every store
                // write is skipped in a dry run.
                for (i, m) in std::mem::take(&mut extra)
                    .into_iter()
                    .filter(|m| m.natural_key != probe)
                    .enumerate()
                {
                    let mapping = ctx.store(|s| s.mapping(entity.name(), &m.natural_key))?;
                    due.push(QueuedMessage {
                        id: -1 - i as i64,
                        entity: m.entity.to_string(),
                        natural_key: m.natural_key,
                        version: m.version,
                        operation: m.operation.to_string(),
                        payload: Some(m.payload),
                        attempts: 0,
                        mapping,
                    });
                }
                let in_flight_keys: HashSet<&str> =
                    busy.iter().flatten().map(String::as_str).collect();
                let (records, deferred) =
                    prepare_chunk(ctx, entity, due, &in_flight_keys, remaining, &mut counts)?;
                waiting = deferred;
                if records.is_empty() {
                    continue;
                }
                remaining = remaining.saturating_sub(records.len());
                busy.push_back(
                    records
                        .iter()
                        .map(|r| entity.conflict_key(&r.key).into_owned())
                        .collect(),
                );
                in_flight.push_back(super::flows::deliver(ctx, entity, records, progress));
            }
            Event::Collected(collected) => {
                collecting = None;
                match collected {
                    Ok(collected) => {
                        count_collected(&mut counts, &collected);
                        if progress.shown() {
                            progress.more(entity, collected.count);
                        }
                        // The read queued rows after the last one read: read on.
                        exhausted = false;
                        if release_acumatica {
                            releasing = Some(Box::pin(ctx.acumatica.close()));
                        }
                    }
                    // Nothing new starts; the chunks in flight are recorded first (their
                    // calls went out), then the run fails with the read's error.
                    Err(e) => collect_failed = Some(e),
                }
            }
            Event::Delivered(outcomes) => {
                busy.pop_front();
                record_outcomes(ctx, entity, outcomes, &mut counts)?;
                retry_waiting = true;
                halted = ctx.halted();
            }
            Event::Released => releasing = None,
            Event::Idle => {
                // Nothing in flight: whatever waits can go now.
                if !waiting.is_empty()
                    && !retry_waiting
                    && remaining > 0
                    && halted.is_none()
                    && collect_failed.is_none()
                {
                    retry_waiting = true;
                    continue;
                }
                break;
            }
        }
    }
    progress.finish(entity);
    if let Some(why) = halted {
        anyhow::bail!("{why}");
    }
    if let Some(e) = collect_failed {
        return Err(e);
    }
    Ok(counts)
}

/// What the engine's loop does next.
enum Event {
    Collected(anyhow::Result<super::collect::Collected>),
    Delivered(Vec<(Record, Outcome)>),
    /// The Acumatica session was logged out (`release_acumatica`).
    Released,
    /// Room in the pipeline: read (when `read`) and prepare the next chunk.
    Fill {
        read: bool,
    },
    /// Nothing is being read or delivered, and nothing more to prepare.
    Idle,
}

fn count_collected(counts: &mut EntityCounts, collected: &super::collect::Collected) {
    counts.collected = collected.count;
    if collected.status == "held" {
        counts.held = collected.count;
    }
}

/// Messages read from the queue at a time, at least.
const DELIVERY_CHUNK: usize = 1000;

/// Messages read from the queue at a time for `entity`. The batch flows (prices, inventory)
/// send a chunk as batches of `sync.batch_size`, up to `magento.max_concurrent_requests` at
/// once: a chunk is two full waves of them, and the pipeline (`pipeline_depth`) keeps the
/// next chunks queued behind it. Four waves per chunk with three chunks in flight held some
/// 10,000 records at once and doubled a large sync's peak memory (benches/memory.rs); two
/// keep it flat. Still bounded, however large the queue.
fn delivery_chunk(config: &Config, entity: Entity) -> usize {
    match entity {
        Entity::Prices | Entity::Inventory => {
            let wave = config.sync.batch_size.max(1) as usize
                * config.magento.max_concurrent_requests.max(1) as usize;
            (wave * 2).clamp(DELIVERY_CHUNK, 20_000)
        }
        _ => DELIVERY_CHUNK,
    }
}

/// How many chunks of `entity` may be in flight at once. Three for the catalogue flows, whose
/// records are independent of each other (one product, price or quantity per SKU): with two,
/// the chunk ahead was often sent before the one behind it was recorded and the next read,
/// and the slots waited. One for
/// the flows to Acumatica and for shipments, whose records depend on others delivered in the
/// same run (an order's customer, a shipment's order) and whose writes are not idempotent.
fn pipeline_depth(entity: Entity) -> usize {
    match entity {
        Entity::Items | Entity::Prices | Entity::Inventory => 3,
        Entity::Customers | Entity::Orders | Entity::Shipments => 1,
    }
}

/// Coalesces and filters one chunk of due messages into the records to deliver (at most
/// `limit`). Superseded and stale messages are marked skipped here; messages whose record is
/// in `in_flight` are handed back to be prepared once that delivery is recorded.
fn prepare_chunk(
    ctx: &Context<'_>,
    entity: Entity,
    due: Vec<QueuedMessage>,
    in_flight: &HashSet<&str>,
    limit: usize,
    counts: &mut EntityCounts,
) -> anyhow::Result<(Vec<Record>, Vec<QueuedMessage>)> {
    let mut deferred = Vec::new();
    let due = if in_flight.is_empty() {
        due
    } else {
        let (wait, ready): (Vec<_>, Vec<_>) = due
            .into_iter()
            .partition(|m| in_flight.contains(entity.conflict_key(&m.natural_key).as_ref()));
        deferred = wait;
        ready
    };
    let mut records = Vec::new();
    let mut stale = Vec::new();
    for group in coalesce(due) {
        if records.len() >= limit {
            break;
        }
        let superseded = group.superseded;
        if !superseded.is_empty() {
            counts.skipped += superseded.len() as u64;
            if !ctx.dry_run {
                ctx.store(|s| s.mark_skipped(&superseded, "superseded by a newer version"))?;
            }
        }
        let message = group.newest;
        let mapping = message.mapping;
        if mapping
            .as_ref()
            .and_then(|m| m.version.as_deref())
            .is_some_and(|delivered| message.version.as_str() < delivered)
        {
            stale.push(message.id);
            continue;
        }
        let row = message
            .payload
            .as_deref()
            .and_then(|p| serde_json::from_str(p).ok())
            .unwrap_or(Value::Null);
        records.push(Record {
            key: message.natural_key,
            version: message.version,
            operation: message.operation,
            row,
            message_ids: vec![message.id],
            mapping,
        });
    }
    if !stale.is_empty() {
        counts.skipped += stale.len() as u64;
        if !ctx.dry_run {
            ctx.store(|s| s.mark_skipped(&stale, "older than the version already delivered"))?;
        }
    }
    Ok((records, deferred))
}

/// Records what became of one chunk's records: deliveries and skips in one transaction each
/// (a transaction per record was a large share of a big run's time), failures with their
/// next attempt.
fn record_outcomes(
    ctx: &Context<'_>,
    entity: Entity,
    outcomes: Vec<(Record, Outcome)>,
    counts: &mut EntityCounts,
) -> anyhow::Result<()> {
    let halted = ctx.halted();
    let mut delivered: Vec<(Record, String, String, String)> = Vec::new();
    let mut skipped: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (record, outcome) in outcomes {
        match outcome {
            Outcome::Delivered {
                target_key,
                source_key,
                hash,
            } => {
                if ctx.dry_run {
                    counts.would_send += 1;
                    continue;
                }
                counts.delivered += 1;
                let source = source_key.unwrap_or_else(|| record.key.clone());
                delivered.push((record, source, target_key, hash));
            }
            Outcome::Skipped(reason) => {
                counts.skipped += 1;
                if !ctx.dry_run {
                    skipped
                        .entry(reason)
                        .or_default()
                        .extend(record.message_ids.iter().copied());
                }
            }
            Outcome::Failed(_) if halted.is_some() => {
                // Magento refused the credentials: the record stays due, no attempt is charged.
            }
            Outcome::Failed(error) => {
                if ctx.dry_run {
                    counts.failed += 1;
                    continue;
                }
                let attempts = ctx.store(|s| s.attempts_of(&record.message_ids))?;
                let next = next_attempt(attempts + 1, ctx.config.sync.max_attempts);
                if next.is_none() {
                    counts.dead += 1;
                } else {
                    counts.failed += 1;
                }
                tracing::warn!(entity = entity.name(), key = %record.key, "{error}");
                ctx.store(|s| s.record_failure(&record.message_ids, &error, next.as_deref()))?;
            }
        }
    }
    if !delivered.is_empty() {
        let deliveries: Vec<Delivery<'_>> = delivered
            .iter()
            .map(|(record, source, target, hash)| Delivery {
                message_ids: &record.message_ids,
                entity: entity.name(),
                source_key: source,
                target_key: target,
                payload_hash: hash,
                version: &record.version,
                line_mappings: None,
                mapped: if *source == record.key {
                    record
                        .mapping
                        .as_ref()
                        .map_or(Mapped::Absent, |m| Mapped::To(&m.target_key))
                } else {
                    Mapped::Unknown
                },
            })
            .collect();
        ctx.store(|s| s.record_deliveries(&deliveries))?;
    }
    for (reason, ids) in skipped {
        ctx.store(|s| s.mark_skipped(&ids, &reason))?;
    }
    Ok(())
}

/// When to try again after failed attempt number `attempts`: 1, 2, 4 … minutes, at most six
/// hours; none once `max_attempts` is reached.
pub fn next_attempt(attempts: u32, max_attempts: u32) -> Option<String> {
    if attempts >= max_attempts {
        return None;
    }
    let minutes = 1i64 << attempts.saturating_sub(1).min(9);
    let at = Utc::now() + chrono::Duration::minutes(minutes.min(360));
    Some(at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// A queue message for a row the batch path read. An incremental read queues a version once;
/// a re-read (`--full`, `resync`, a catch-up) passes its own `reread` tag so that the rows
/// are queued again — the engine still sends only what differs from the last delivery.
pub fn collected_message(
    entity: Entity,
    key: String,
    version: String,
    row: &Value,
    reread: Option<&str>,
) -> NewMessage {
    let tag = reread.map(|t| format!("|{t}")).unwrap_or_default();
    NewMessage {
        direction: entity.direction().as_str(),
        entity: entity.name(),
        dedupe_key: format!("batch|{}|{key}|{version}{tag}", entity.name()),
        natural_key: key,
        version,
        operation: "upsert",
        payload: row.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_and_stop_at_the_limit() {
        assert!(next_attempt(1, 3).is_some());
        assert!(next_attempt(3, 3).is_none());
        let later = next_attempt(30, 100).unwrap();
        let at = chrono::DateTime::parse_from_rfc3339(&later).unwrap();
        assert!(
            at.with_timezone(&Utc)
                <= Utc::now() + chrono::Duration::hours(6) + chrono::Duration::seconds(5)
        );
    }

    #[test]
    fn equal_payloads_hash_equally_whatever_the_key_order() {
        let a: Value = serde_json::from_str(r#"{"b":1,"a":{"y":2,"x":3}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a":{"x":3,"y":2},"b":1}"#).unwrap();
        assert_eq!(payload_hash(&a), payload_hash(&b));
        assert_ne!(payload_hash(&a), payload_hash(&serde_json::json!({"b": 2})));
    }
}
