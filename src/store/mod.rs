//! The SQLite state store (DESIGN.md section 5): the only module that writes SQL.
//!
//! One narrow interface (open, lifecycle, queue, mappings, cursors, runs) so that another
//! engine can back it later (DESIGN.md section 10). Schema changes are migration files under
//! `migrations/`, applied in order by `rusqlite_migration`.

mod operate;
mod queue;

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use rusqlite_migration::{M, Migrations};
use serde::Serialize;

/// The migrations, oldest first. Append only: a released file never changes.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/001_initial.sql"),
    include_str!("../../migrations/002_receiver.sql"),
    include_str!("../../migrations/003_message_counts.sql"),
    include_str!("../../migrations/004_queue_indexes.sql"),
    include_str!("../../migrations/005_count_triggers.sql"),
    include_str!("../../migrations/006_learned.sql"),
];

/// The schema version this build writes: the number of migrations.
pub const SCHEMA_VERSION: usize = MIGRATIONS.len();

const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// A store that cannot be used: exit 2, one line, the file left untouched.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "{path}: not a connector state store (not an SQLite database); move it away or set store.path to another file"
    )]
    NotSqlite { path: PathBuf },
    #[error(
        "{path}: the state store has schema version {found}, newer than this connector's {supported}; upgrade connector (the store was left untouched)"
    )]
    TooNew {
        path: PathBuf,
        found: usize,
        supported: usize,
    },
    #[error("{path}: cannot open the state store: {source}; {}", open_hint(source))]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{path}: cannot migrate the state store: {message}")]
    Migrate { path: PathBuf, message: String },
    #[error("{path}: {source}; {}", io_hint(source))]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What to do about a store SQLite could not open or write.
fn open_hint(error: &rusqlite::Error) -> &'static str {
    use rusqlite::ErrorCode;
    match error.sqlite_error_code() {
        Some(ErrorCode::DiskFull | ErrorCode::SystemIoFailure) => {
            "free space on its disk (and check the folder is writable), then run the command again"
        }
        Some(ErrorCode::ReadOnly | ErrorCode::PermissionDenied | ErrorCode::CannotOpen) => {
            "the store and its folder must be readable and writable by this user (SQLite writes -wal and -shm files next to it); fix the permissions or set store.path"
        }
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            "another process holds the store; run the command again when it is done"
        }
        _ => "check store.path in the config and the file's permissions",
    }
}

/// What to do about a file-system error on the store's path.
fn io_hint(error: &std::io::Error) -> &'static str {
    match error.kind() {
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => {
            "the store and its folder must be readable and writable by this user; fix the permissions or set store.path"
        }
        std::io::ErrorKind::StorageFull => "free space on its disk, then run the command again",
        std::io::ErrorKind::IsADirectory => "store.path names a folder; name a file instead",
        std::io::ErrorKind::NotADirectory => {
            "a part of store.path is a file, not a folder; fix store.path"
        }
        _ => "check store.path in the config",
    }
}

/// Queues one message unless its dedupe key is already queued; true when it was new.
fn insert_message(
    tx: &rusqlite::Transaction<'_>,
    m: &NewMessage,
    status: &str,
    at: &str,
) -> rusqlite::Result<bool> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO messages (direction, entity, natural_key, version, dedupe_key, operation,
                               payload, status, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)
         ON CONFLICT (dedupe_key) DO NOTHING",
    )?;
    let inserted = insert.execute(params![
        m.direction,
        m.entity,
        m.natural_key,
        m.version,
        m.dedupe_key,
        m.operation,
        m.payload,
        status,
        at
    ])?;
    Ok(inserted > 0)
}

/// Rows per statement of [`Store::commit_pushed`], largest first. Few sizes, each with an
/// insert and a supersede statement: with the receiver's other statements they stay within
/// the connection's cache of 16 prepared statements.
const MULTI_ROW_SIZES: [usize; 5] = [16, 8, 4, 2, 1];

/// Splits `n` rows into statements of [`MULTI_ROW_SIZES`] rows, largest first.
fn multi_row_chunks(mut n: usize) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        let rows = MULTI_ROW_SIZES.into_iter().find(|&size| size <= n)?;
        n -= rows;
        Some(rows)
    })
}

/// `rows` tuples of `width` numbered parameters from `?first` on, each followed by `tail`.
fn values_clause(rows: usize, first: usize, width: usize, tail: &str) -> String {
    (0..rows)
        .map(|r| {
            let start = first + r * width;
            let row: Vec<String> = (start..start + width).map(|i| format!("?{i}")).collect();
            format!("({}{tail})", row.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The insert and the supersede statement of [`Store::commit_pushed`] for `rows` rows (one of
/// [`MULTI_ROW_SIZES`]), written once.
fn push_statements(rows: usize) -> (&'static str, &'static str) {
    static STATEMENTS: std::sync::OnceLock<Vec<(String, String)>> = std::sync::OnceLock::new();
    let statements = STATEMENTS.get_or_init(|| {
        MULTI_ROW_SIZES
            .iter()
            .map(|&rows| {
                // ?1 status, ?2 the time; per row direction, entity, natural_key, version,
                // dedupe_key, operation, payload.
                let insert = format!(
                    "INSERT INTO messages (direction, entity, natural_key, version, dedupe_key,
                                           operation, payload, status, created_at, updated_at)
                     VALUES {}
                     ON CONFLICT (dedupe_key) DO NOTHING
                     RETURNING id, dedupe_key",
                    values_clause(rows, 3, 7, ", ?1, ?2, ?2")
                );
                // ?1 the time; per stored upsert entity, natural_key, version, id.
                let supersede = format!(
                    "UPDATE messages
                     SET status = 'skipped', last_error = 'superseded by a newer upsert',
                         updated_at = ?1
                     FROM (VALUES {}) AS upsert
                     WHERE messages.entity = upsert.column1
                       AND messages.natural_key = upsert.column2
                       AND messages.operation = 'delete'
                       AND messages.status IN ('pending', 'held')
                       AND messages.version <= upsert.column3
                       AND messages.id < upsert.column4",
                    values_clause(rows, 2, 4, "")
                );
                (insert, supersede)
            })
            .collect()
    });
    let (insert, supersede) = &statements[MULTI_ROW_SIZES
        .iter()
        .position(|&size| size == rows)
        .expect("a size of MULTI_ROW_SIZES")];
    (insert, supersede)
}

/// The connector's life-cycle states (DESIGN.md section 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LifecycleState {
    Uninitialized,
    Active,
    Paused,
    Stopped,
}

impl LifecycleState {
    pub fn as_str(self) -> &'static str {
        match self {
            LifecycleState::Uninitialized => "uninitialized",
            LifecycleState::Active => "active",
            LifecycleState::Paused => "paused",
            LifecycleState::Stopped => "stopped",
        }
    }

    fn parse(s: &str) -> LifecycleState {
        match s {
            "active" => LifecycleState::Active,
            "paused" => LifecycleState::Paused,
            "stopped" => LifecycleState::Stopped,
            _ => LifecycleState::Uninitialized,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Lifecycle {
    pub state: LifecycleState,
    pub since: String,
    pub stopped_at: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Transition {
    pub at: String,
    pub from: String,
    pub to: String,
    pub command: String,
}

/// One of the connector's objects in Acumatica, as last seen.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct RemoteObject {
    pub kind: String,
    pub name: String,
    pub active: bool,
    pub seen_at: String,
}

/// A sync run, for `status`.
#[derive(Clone, Debug, Serialize)]
pub struct RunSummary {
    pub id: i64,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub outcome: Option<String>,
    pub counts: serde_json::Value,
}

/// Message counts by status, for `status`.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct QueueCounts {
    pub pending: u64,
    pub held: u64,
    pub delivered: u64,
    pub failed: u64,
    pub dead: u64,
    pub skipped: u64,
}

/// A message to queue (either direction).
#[derive(Clone, Debug, PartialEq)]
pub struct NewMessage {
    pub direction: &'static str,
    pub entity: &'static str,
    pub natural_key: String,
    /// The record's last-modified time, UTC, RFC 3339 with milliseconds: compares as text.
    pub version: String,
    pub dedupe_key: String,
    /// `upsert` or `delete`.
    pub operation: &'static str,
    pub payload: String,
}

/// What one batch of pushed messages became.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EnqueueOutcome {
    pub accepted: u64,
    pub duplicates: u64,
}

/// The outcome of committing several requests' messages in one transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PushCommit {
    /// Stored (as `pending` when active, `held` when paused); one outcome per batch.
    Stored(Vec<EnqueueOutcome>),
    /// The state refuses pushes (stopped or uninitialized): nothing was stored.
    Refused(LifecycleState),
}

pub use operate::{FailedMessage, MappingRow};
pub use queue::{Delivery, Mapped, Mapping, QueuedMessage, StockUpdate};

pub struct Store {
    path: PathBuf,
    conn: Connection,
}

/// A list as a JSON array, for a statement that takes a whole list in one parameter through
/// `json_each(?)`: one statement for a chunk instead of one per element.
fn json_list<T: serde::Serialize>(items: &[T]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// How often the checkpoint thread of [`Store::checkpoint_in_background`] checkpoints. What
/// the log holds when the run ends is checkpointed on the run's critical path (the last
/// connection's close copies it and fsyncs the database): every 250 ms left up to a quarter
/// second of a 100,000-quantity run's writes for the end, 40–60 ms between the last reply and
/// the exit; every 50 ms, 4–15 ms. The thread waits on the disk, not on a core.
const CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(50);

/// The checkpoint thread of [`Store::checkpoint_in_background`]: on drop it checkpoints once
/// more and ends. Drop it after the store it serves, so that nothing is written after it.
pub struct BackgroundCheckpoints {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for BackgroundCheckpoints {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Store {
    /// Opens (creating if missing) and migrates the store at `path`, for a command that writes
    /// to it. A file that is not SQLite, or a schema newer than this build, is refused before
    /// anything is written to it; a store that cannot be written (a full disk, a read-only
    /// folder) is refused here, in one line naming it, before the command does any work.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let store = Store::open_to_read(path)?;
        // A write that changes nothing (the schema version as it is) but needs the disk: the
        // proof that the store can be written, before any work.
        store
            .conn
            .pragma_update(None, "user_version", SCHEMA_VERSION as i64)
            .map_err(|source| StoreError::Open {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(store)
    }

    /// [`Store::open`] for a command that only reads (`status`): nothing is written unless the
    /// store is new or its schema older than this build — no commit, no fsync.
    pub fn open_to_read(path: &Path) -> Result<Store, StoreError> {
        let io = |source| StoreError::Io {
            path: path.to_path_buf(),
            source,
        };
        match std::fs::metadata(path) {
            Ok(meta) if meta.len() > 0 => {
                use std::io::Read;
                let mut header = [0u8; 16];
                let mut file = std::fs::File::open(path).map_err(io)?;
                let n = file.read(&mut header).map_err(io)?;
                if n < 16 || &header != SQLITE_HEADER {
                    return Err(StoreError::NotSqlite {
                        path: path.to_path_buf(),
                    });
                }
                Store::refuse_newer(path)?;
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                        path: dir.to_path_buf(),
                        source,
                    })?;
                }
            }
            Err(e) => return Err(io(e)),
        }

        let open_err = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let mut conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(open_err)?;
        // Set before the first table exists: lets housekeeping give pages back to the disk.
        // Only when not set: on a database with tables, setting it writes the header page in a
        // transaction of its own every time (SQLite's OP_SetCookie), so the read-only `status`
        // wrote and fsynced the store on each run (strace: three fsyncs, about 2 ms of
        // `status` on this VM).
        let auto_vacuum: i64 = conn
            .pragma_query_value(None, "auto_vacuum", |r| r.get(0))
            .map_err(open_err)?;
        if auto_vacuum != 2 {
            conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")
                .map_err(open_err)?;
        }
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_err)?;
        let migrations = Migrations::new(MIGRATIONS.iter().map(|sql| M::up(sql)).collect());
        migrations
            .to_latest(&mut conn)
            .map_err(|e| StoreError::Migrate {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        Ok(Store {
            path: path.to_path_buf(),
            conn,
        })
    }

    /// Moves this connection's checkpoints of the write-ahead log to a thread of their own,
    /// for as long as the returned guard lives (a `connector sync`). A checkpoint copies the
    /// log into the database and fsyncs it: on this VM that fsync took up to 0.5 s, and done
    /// by the committing connection (SQLite's automatic checkpoint, every 1,000 pages) it held
    /// the sync's only thread that records and prepares chunks, so the calls in flight ran
    /// out and Magento's slots stood idle (a 100,000-price run varied from 50 % to 87 % of
    /// its bound). A passive checkpoint on another connection never blocks the writer.
    pub fn checkpoint_in_background(&self) -> rusqlite::Result<BackgroundCheckpoints> {
        let conn = Connection::open(&self.path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("store-checkpoint".into())
            .spawn(move || {
                loop {
                    use std::sync::mpsc::RecvTimeoutError;
                    let last = !matches!(
                        stopped.recv_timeout(CHECKPOINT_INTERVAL),
                        Err(RecvTimeoutError::Timeout)
                    );
                    // Passive: copies what no reader still needs, waits for no one.
                    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                    {
                        tracing::debug!("checkpointing the store failed: {e}");
                    }
                    if last {
                        break;
                    }
                }
            });
        match thread {
            Ok(thread) => {
                self.conn.pragma_update(None, "wal_autocheckpoint", 0)?;
                Ok(BackgroundCheckpoints {
                    stop: Some(stop),
                    thread: Some(thread),
                })
            }
            // No thread: the connection keeps checkpointing itself.
            Err(e) => {
                tracing::debug!("no checkpoint thread ({e}); checkpoints stay inline");
                Ok(BackgroundCheckpoints {
                    stop: None,
                    thread: None,
                })
            }
        }
    }

    /// Reads the schema version read-only, so a newer store is refused without a write.
    fn refuse_newer(path: &Path) -> Result<(), StoreError> {
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(
            |source| StoreError::Open {
                path: path.to_path_buf(),
                source,
            },
        )?;
        let found: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(f, _)
                    if f.code == rusqlite::ErrorCode::NotADatabase =>
                {
                    StoreError::NotSqlite {
                        path: path.to_path_buf(),
                    }
                }
                source => StoreError::Open {
                    path: path.to_path_buf(),
                    source,
                },
            })?;
        let found = found.max(0) as usize;
        if found > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                path: path.to_path_buf(),
                found,
                supported: SCHEMA_VERSION,
            });
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes every commit wait for the disk (`synchronous=FULL`): for writes acknowledged to
    /// another system, such as the receiver's 200.
    pub fn set_durable(&self) -> rusqlite::Result<()> {
        self.conn.pragma_update(None, "synchronous", "FULL")
    }

    /// Commits pushed messages of several requests in one transaction (group commit), after
    /// reading the life-cycle state in the same transaction: active → `pending`, paused →
    /// `held`, anything else → nothing stored. Duplicates (same dedupe key) are stored once.
    /// An upsert supersedes delete candidates of the same record that are not newer (the two
    /// halves of an update split over two requests).
    ///
    /// The messages go in with a few multi-row statements instead of two statements each
    /// (an insert, and a supersede per upsert): a profile of the receiver found much of a
    /// message's cost in per-statement work — each insert opened the table's seven b-trees
    /// and, the count trigger making it a statement that may abort half-way, copied every page
    /// it touched into a statement journal. Parameters are bound row by row rather than passed
    /// as one `json_each` list, which would read every field out of each element again and
    /// carry the payload escaped inside JSON. The result is the same as inserting the messages
    /// one by one in arrival order, each stored upsert then superseding the delete candidates
    /// queued before it (a test compares the two).
    pub fn commit_pushed(&mut self, batches: &[Vec<NewMessage>]) -> rusqlite::Result<PushCommit> {
        // IMMEDIATE: this transaction reads, then writes. A deferred one would fail at once
        // with SQLITE_BUSY (busy_timeout does not apply to a read lock's upgrade) whenever the
        // receiver and a sync write the store at the same moment.
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let state: String = tx
            .prepare_cached("SELECT state FROM lifecycle WHERE id = 1")?
            .query_row([], |r| r.get(0))?;
        let status = match LifecycleState::parse(&state) {
            LifecycleState::Active => "pending",
            LifecycleState::Paused => "held",
            other => return Ok(PushCommit::Refused(other)),
        };
        let at = now();
        let messages: Vec<&NewMessage> = batches.iter().flatten().collect();
        // The id each message was stored under; None: a duplicate.
        let mut ids: Vec<Option<i64>> = Vec::with_capacity(messages.len());
        let mut start = 0;
        for rows in multi_row_chunks(messages.len()) {
            let chunk = &messages[start..start + rows];
            start += rows;
            let mut insert = tx.prepare_cached(push_statements(rows).0)?;
            insert.raw_bind_parameter(1, status)?;
            insert.raw_bind_parameter(2, &at)?;
            for (i, m) in chunk.iter().enumerate() {
                let p = 3 + i * 7;
                insert.raw_bind_parameter(p, m.direction)?;
                insert.raw_bind_parameter(p + 1, m.entity)?;
                insert.raw_bind_parameter(p + 2, &m.natural_key)?;
                insert.raw_bind_parameter(p + 3, &m.version)?;
                insert.raw_bind_parameter(p + 4, &m.dedupe_key)?;
                insert.raw_bind_parameter(p + 5, m.operation)?;
                insert.raw_bind_parameter(p + 6, &m.payload)?;
            }
            // The rows inserted, by dedupe key (unique in the table, so once per chunk). A row
            // not inserted (its key already queued, or earlier in this group) returns nothing;
            // the first of a chunk's rows with a key takes the id, any later one is a duplicate.
            // Matched by key, not by RETURNING's order, which SQLite does not promise.
            let mut stored: std::collections::HashMap<String, i64> =
                std::collections::HashMap::with_capacity(rows);
            let mut returned = insert.raw_query();
            while let Some(row) = returned.next()? {
                stored.insert(row.get(1)?, row.get(0)?);
            }
            for m in chunk {
                ids.push(stored.remove(&m.dedupe_key));
            }
        }
        // Every stored upsert supersedes the delete candidates of its record that are not
        // newer and were queued before it (a lower id), as one statement per chunk.
        let upserts: Vec<(&NewMessage, i64)> = messages
            .iter()
            .zip(&ids)
            .filter_map(|(m, id)| Some((*m, (*id)?)).filter(|(m, _)| m.operation == "upsert"))
            .collect();
        let mut start = 0;
        for rows in multi_row_chunks(upserts.len()) {
            let chunk = &upserts[start..start + rows];
            start += rows;
            let mut supersede = tx.prepare_cached(push_statements(rows).1)?;
            supersede.raw_bind_parameter(1, &at)?;
            for (i, (m, id)) in chunk.iter().enumerate() {
                let p = 2 + i * 4;
                supersede.raw_bind_parameter(p, m.entity)?;
                supersede.raw_bind_parameter(p + 1, &m.natural_key)?;
                supersede.raw_bind_parameter(p + 2, &m.version)?;
                supersede.raw_bind_parameter(p + 3, *id)?;
            }
            supersede.raw_execute()?;
        }
        let mut outcomes = Vec::with_capacity(batches.len());
        let mut totals = EnqueueOutcome::default();
        let mut ids = ids.into_iter();
        for batch in batches {
            let mut outcome = EnqueueOutcome::default();
            for stored in ids.by_ref().take(batch.len()) {
                if stored.is_some() {
                    outcome.accepted += 1;
                } else {
                    outcome.duplicates += 1;
                }
            }
            totals.accepted += outcome.accepted;
            totals.duplicates += outcome.duplicates;
            outcomes.push(outcome);
        }
        {
            let mut count = tx.prepare_cached(
                "INSERT INTO receiver_counters (name, value) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
            )?;
            count.execute(params!["accepted", totals.accepted as i64])?;
            count.execute(params!["duplicates", totals.duplicates as i64])?;
        }
        tx.commit()?;
        Ok(PushCommit::Stored(outcomes))
    }

    /// Records the connector's objects in Acumatica as last seen (kind, name, active).
    pub fn record_remote_objects(
        &mut self,
        objects: &[(String, String, Option<bool>)],
    ) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO remote_objects (kind, name, properties, active, updated_at)
                 VALUES (?1, ?2, '{}', ?3, ?4)
                 ON CONFLICT (kind, name) DO UPDATE SET active = excluded.active, updated_at = excluded.updated_at",
            )?;
            let at = now();
            for (kind, name, active) in objects {
                stmt.execute(params![kind, name, active.unwrap_or(true), at])?;
            }
        }
        tx.commit()
    }

    /// The connector's objects in Acumatica as last seen: (kind, name, active).
    pub fn remote_objects(&self) -> rusqlite::Result<Vec<RemoteObject>> {
        let mut stmt = self.conn.prepare(
            "SELECT kind, name, active, updated_at FROM remote_objects ORDER BY kind, name",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(RemoteObject {
                kind: r.get(0)?,
                name: r.get(1)?,
                active: r.get::<_, i64>(2)? != 0,
                seen_at: r.get(3)?,
            })
        })?;
        rows.collect()
    }

    /// Forgets every remote object (after `uninstall` deleted them).
    pub fn forget_remote_objects(&self) -> rusqlite::Result<()> {
        self.conn.execute("DELETE FROM remote_objects", [])?;
        Ok(())
    }

    /// The last sync run: (id, started, finished, outcome, counts JSON).
    pub fn last_run(&self) -> rusqlite::Result<Option<RunSummary>> {
        self.conn
            .query_row(
                "SELECT id, started_at, finished_at, outcome, counts FROM runs ORDER BY id DESC LIMIT 1",
                [],
                |r| {
                    Ok(RunSummary {
                        id: r.get(0)?,
                        started_at: r.get(1)?,
                        finished_at: r.get(2)?,
                        outcome: r.get(3)?,
                        counts: serde_json::from_str(&r.get::<_, String>(4)?).unwrap_or_default(),
                    })
                },
            )
            .optional()
    }

    /// Adds to the receiver's counters (rejections are counted in memory and flushed here).
    pub fn add_receiver_counts(&self, counts: &[(String, u64)]) -> rusqlite::Result<()> {
        let mut stmt = self.conn.prepare_cached(
            "INSERT INTO receiver_counters (name, value) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
        )?;
        for (name, n) in counts {
            stmt.execute(params![name, *n as i64])?;
        }
        Ok(())
    }

    pub fn receiver_counts(&self) -> rusqlite::Result<std::collections::BTreeMap<String, u64>> {
        let mut stmt = self
            .conn
            .prepare("SELECT name, value FROM receiver_counters ORDER BY name")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        rows.map(|r| r.map(|(k, v)| (k, v.max(0) as u64))).collect()
    }

    /// Asks the batch path to re-read `entities` from `since` (or everything).
    pub fn request_catch_up(
        &self,
        entities: &[&str],
        since: Option<&str>,
        reason: &str,
    ) -> rusqlite::Result<()> {
        let mut stmt = self.conn.prepare_cached(
            "INSERT INTO catch_up_requests (entity, since, reason, requested_at) VALUES (?1, ?2, ?3, ?4)",
        )?;
        let at = now();
        for entity in entities {
            stmt.execute(params![entity, since, reason, at])?;
        }
        Ok(())
    }

    /// Open catch-up requests: (entity, since, reason).
    pub fn open_catch_ups(&self) -> rusqlite::Result<Vec<(String, Option<String>, String)>> {
        let mut stmt = self.conn.prepare(
            "SELECT entity, since, reason FROM catch_up_requests WHERE done_at IS NULL ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        rows.collect()
    }

    /// Messages of one entity and record, oldest first: (operation, version, status).
    pub fn messages_for(
        &self,
        entity: &str,
        natural_key: &str,
    ) -> rusqlite::Result<Vec<(String, String, String)>> {
        let mut stmt = self.conn.prepare(
            "SELECT operation, version, status FROM messages WHERE entity = ?1 AND natural_key = ?2 ORDER BY id",
        )?;
        let rows = stmt.query_map(params![entity, natural_key], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
        rows.collect()
    }

    pub fn schema_version(&self) -> rusqlite::Result<usize> {
        let v: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |row| row.get(0))?;
        Ok(v.max(0) as usize)
    }

    pub fn lifecycle(&self) -> rusqlite::Result<Lifecycle> {
        self.conn.query_row(
            "SELECT state, since, stopped_at FROM lifecycle WHERE id = 1",
            [],
            |row| {
                Ok(Lifecycle {
                    state: LifecycleState::parse(&row.get::<_, String>(0)?),
                    since: row.get(1)?,
                    stopped_at: row.get(2)?,
                })
            },
        )
    }

    /// Moves to `to`, recording the transition and (for `stopped`) the stop time, atomically.
    pub fn transition(&mut self, to: LifecycleState, command: &str) -> rusqlite::Result<Lifecycle> {
        // IMMEDIATE: this transaction reads, then writes. A deferred one would fail at once
        // with SQLITE_BUSY (busy_timeout does not apply to a read lock's upgrade) whenever the
        // receiver and a sync write the store at the same moment.
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let from: String =
            tx.query_row("SELECT state FROM lifecycle WHERE id = 1", [], |r| r.get(0))?;
        let at = now();
        if to == LifecycleState::Stopped {
            tx.execute(
                "UPDATE lifecycle SET state = ?1, since = ?2, stopped_at = ?2 WHERE id = 1",
                params![to.as_str(), at],
            )?;
        } else {
            tx.execute(
                "UPDATE lifecycle SET state = ?1, since = ?2 WHERE id = 1",
                params![to.as_str(), at],
            )?;
        }
        tx.execute(
            "INSERT INTO lifecycle_history (at, from_state, to_state, command) VALUES (?1, ?2, ?3, ?4)",
            params![at, from, to.as_str(), command],
        )?;
        tx.commit()?;
        self.lifecycle()
    }

    /// The last `limit` transitions, newest first.
    pub fn transitions(&self, limit: usize) -> rusqlite::Result<Vec<Transition>> {
        let mut stmt = self.conn.prepare(
            "SELECT at, from_state, to_state, command FROM lifecycle_history ORDER BY id DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit as i64], |row| {
            Ok(Transition {
                at: row.get(0)?,
                from: row.get(1)?,
                to: row.get(2)?,
                command: row.get(3)?,
            })
        })?;
        rows.collect()
    }

    pub fn queue_counts(&self) -> rusqlite::Result<QueueCounts> {
        let mut counts = QueueCounts::default();
        let mut stmt = self.conn.prepare("SELECT status, n FROM message_counts")?;
        let rows = stmt.query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
        })?;
        for row in rows {
            let (status, n) = row?;
            let n = n as u64;
            match status.as_str() {
                "pending" => counts.pending = n,
                "held" => counts.held = n,
                "delivered" => counts.delivered = n,
                "failed" => counts.failed = n,
                "dead" => counts.dead = n,
                "skipped" => counts.skipped = n,
                _ => {}
            }
        }
        Ok(counts)
    }

    /// The watermark of an entity's batch path, if it has run.
    pub fn cursor(&self, entity: &str) -> rusqlite::Result<Option<String>> {
        self.conn
            .query_row(
                "SELECT watermark FROM cursors WHERE entity = ?1",
                [entity],
                |row| row.get(0),
            )
            .optional()
    }

    pub fn set_cursor(&self, entity: &str, watermark: &str) -> rusqlite::Result<()> {
        self.conn.execute(
            "INSERT INTO cursors (entity, watermark, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (entity) DO UPDATE SET watermark = excluded.watermark, updated_at = excluded.updated_at",
            params![entity, watermark, now()],
        )?;
        Ok(())
    }

    /// A fact learned about a remote system in an earlier run (`None`: not known).
    pub fn learned(&self, name: &str) -> rusqlite::Result<Option<String>> {
        self.conn
            .query_row("SELECT value FROM learned WHERE name = ?1", [name], |row| {
                row.get(0)
            })
            .optional()
    }

    /// Keeps a fact for the next runs (`None`: forgets it).
    pub fn set_learned(&self, name: &str, value: Option<&str>) -> rusqlite::Result<()> {
        match value {
            Some(value) => self.conn.execute(
                "INSERT INTO learned (name, value, learned_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value, learned_at = excluded.learned_at",
                params![name, value, now()],
            )?,
            None => self
                .conn
                .execute("DELETE FROM learned WHERE name = ?1", [name])?,
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state/connector.db")).unwrap();
        (dir, store)
    }

    /// The queue's hot reads go through their partial indexes, whatever SQLite's planner
    /// would otherwise pick: a sync reading the due messages, and the purge, used to walk every
    /// message the entity (or the store) ever kept.
    #[test]
    fn the_due_read_and_the_purge_use_their_partial_indexes() {
        let (_dir, store) = temp_store();
        let plan = |sql: &str| -> String {
            let mut stmt = store
                .conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap();
            // Parameters left unbound (NULL): the plan does not depend on their values.
            let mut rows = stmt.raw_query();
            let mut steps = Vec::new();
            while let Some(row) = rows.next().unwrap() {
                steps.push(row.get::<_, String>(3).unwrap());
            }
            steps.join("; ")
        };
        let due = plan(queue::DUE_MESSAGES_SQL);
        assert!(
            due.contains("INDEX messages_due (entity=? AND id>?)"),
            "{due}"
        );
        assert!(!due.contains("TEMP B-TREE"), "{due}");
        let purge = plan(operate::PURGE_MESSAGES_SQL);
        assert!(purge.contains("INDEX messages_done"), "{purge}");
        let failed = plan(
            "SELECT id FROM messages WHERE status IN ('failed', 'dead') AND (NULL IS NULL OR entity = NULL) ORDER BY id",
        );
        assert!(failed.contains("INDEX messages_failed"), "{failed}");
    }

    #[test]
    fn a_new_store_is_migrated_in_wal_mode_and_uninitialized() {
        let (_dir, store) = temp_store();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        let mode: String = store
            .conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let fk: i64 = store
            .conn
            .pragma_query_value(None, "foreign_keys", |r| r.get(0))
            .unwrap();
        assert_eq!(fk, 1);
        assert_eq!(
            store.lifecycle().unwrap().state,
            LifecycleState::Uninitialized
        );
        assert_eq!(store.queue_counts().unwrap(), QueueCounts::default());
    }

    /// Opening a store that exists to read writes nothing, so a read-only command (`status`)
    /// costs no commit and no fsync; a new store still gets incremental auto-vacuum.
    #[test]
    fn opening_an_existing_store_to_read_commits_nothing() {
        let (dir, store) = temp_store();
        let auto_vacuum: i64 = store
            .conn
            .pragma_query_value(None, "auto_vacuum", |r| r.get(0))
            .unwrap();
        assert_eq!(auto_vacuum, 2, "incremental");
        let path = store.path().to_path_buf();
        drop(store);
        // `data_version` changes when another connection commits to the database.
        let watcher = Connection::open(&path).unwrap();
        let version = || -> i64 {
            watcher
                .pragma_query_value(None, "data_version", |r| r.get(0))
                .unwrap()
        };
        let before = version();
        let store = Store::open_to_read(&path).unwrap();
        store.queue_counts().unwrap();
        drop(store);
        assert_eq!(version(), before, "opening the store committed a change");
        // Opened to write, it proves it can be written.
        drop(Store::open(&path).unwrap());
        assert_ne!(version(), before, "no write when opened to write");
        drop(dir);
    }

    /// A store written by an older build (schema 4: counts kept by 003's triggers, a row
    /// only for statuses seen) keeps its counts through migration 5, whose triggers only
    /// update rows.
    #[test]
    fn the_status_counts_survive_the_upgrade_to_one_row_per_status() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("connector.db");
        {
            let mut conn = Connection::open(&path).unwrap();
            Migrations::new(MIGRATIONS[..4].iter().map(|sql| M::up(sql)).collect())
                .to_latest(&mut conn)
                .unwrap();
            conn.execute_batch(
                "INSERT INTO messages (direction, entity, natural_key, version, dedupe_key, status, created_at, updated_at)
                 VALUES ('to_magento', 'items', 'A', 'v', 'd1', 'pending', 'now', 'now'),
                        ('to_magento', 'items', 'B', 'v', 'd2', 'delivered', 'now', 'now');",
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        let counts = store.queue_counts().unwrap();
        assert_eq!((counts.pending, counts.delivered, counts.dead), (1, 1, 0));
        store
            .conn
            .execute(
                "UPDATE messages SET status = 'dead' WHERE natural_key = 'A'",
                [],
            )
            .unwrap();
        let counts = store.queue_counts().unwrap();
        assert_eq!((counts.pending, counts.delivered, counts.dead), (0, 1, 1));
    }

    /// While the guard lives, the store's own connection leaves checkpoints to the thread,
    /// which does them: the database file grows as the log is copied into it.
    #[test]
    fn background_checkpoints_copy_the_log_into_the_database() {
        let (dir, mut store) = temp_store();
        let db = dir.path().join("state/connector.db");
        let size = || std::fs::metadata(&db).unwrap().len();
        let before = size();
        let checkpoints = store.checkpoint_in_background().unwrap();
        let inline: i64 = store
            .conn
            .pragma_query_value(None, "wal_autocheckpoint", |r| r.get(0))
            .unwrap();
        assert_eq!(inline, 0, "the connection still checkpoints itself");
        let messages: Vec<NewMessage> = (0..2000)
            .map(|i| NewMessage {
                direction: "to_magento",
                entity: "items",
                natural_key: format!("K{i}"),
                version: "2026-01-01T00:00:00.000Z".into(),
                dedupe_key: format!("d{i}"),
                operation: "upsert",
                payload: "{\"x\": 1}".repeat(20),
            })
            .collect();
        store.transition(LifecycleState::Active, "test").unwrap();
        store.commit_pushed(&[messages]).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while size() <= before {
            assert!(
                std::time::Instant::now() < deadline,
                "nothing was checkpointed into {}",
                db.display()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        drop(store);
        drop(checkpoints);
    }

    #[test]
    fn transitions_are_recorded_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("connector.db");
        {
            let mut store = Store::open(&path).unwrap();
            store.transition(LifecycleState::Active, "init").unwrap();
            let stopped = store
                .transition(LifecycleState::Stopped, "deactivate --stop")
                .unwrap();
            assert_eq!(stopped.stopped_at.as_deref(), Some(stopped.since.as_str()));
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.lifecycle().unwrap().state, LifecycleState::Stopped);
        let history = store.transitions(10).unwrap();
        assert_eq!(history.len(), 2);
        assert_eq!(
            (
                history[0].from.as_str(),
                history[0].to.as_str(),
                history[0].command.as_str()
            ),
            ("active", "stopped", "deactivate --stop")
        );
        assert_eq!(history[1].from, "uninitialized");
    }

    #[test]
    fn an_empty_database_from_before_the_first_migration_is_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("connector.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch("CREATE TABLE unrelated (x INTEGER);")
            .unwrap();
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    }

    #[test]
    fn cursors_round_trip() {
        let (_dir, store) = temp_store();
        assert_eq!(store.cursor("items").unwrap(), None);
        store.set_cursor("items", "2026-11-26T10:00:00Z").unwrap();
        store.set_cursor("items", "2026-11-26T11:00:00Z").unwrap();
        assert_eq!(
            store.cursor("items").unwrap().as_deref(),
            Some("2026-11-26T11:00:00Z")
        );
    }

    /// What `commit_pushed` did before it inserted several rows per statement: each message
    /// on its own, each stored upsert then superseding the delete candidates queued so far.
    fn commit_pushed_one_by_one(
        store: &mut Store,
        batches: &[Vec<NewMessage>],
        status: &str,
    ) -> PushCommit {
        let tx = store.conn.transaction().unwrap();
        let at = now();
        let mut outcomes = Vec::new();
        for batch in batches {
            let mut outcome = EnqueueOutcome::default();
            for m in batch {
                if !insert_message(&tx, m, status, &at).unwrap() {
                    outcome.duplicates += 1;
                    continue;
                }
                outcome.accepted += 1;
                if m.operation == "upsert" {
                    tx.execute(
                        "UPDATE messages SET status = 'skipped', last_error = 'superseded by a newer upsert', updated_at = ?4
                         WHERE entity = ?1 AND natural_key = ?2 AND operation = 'delete'
                           AND status IN ('pending', 'held') AND version <= ?3",
                        params![m.entity, m.natural_key, m.version, at],
                    )
                    .unwrap();
                }
            }
            outcomes.push(outcome);
        }
        tx.commit().unwrap();
        PushCommit::Stored(outcomes)
    }

    /// Random groups of requests — repeated dedupe keys, in the same request, the same group
    /// and earlier groups, both halves of updates in either order and at various versions —
    /// leave the same rows and outcomes as the one-message-at-a-time commit.
    #[test]
    fn a_group_committed_with_multi_row_statements_equals_one_message_at_a_time() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for round in 0..20 {
            let (_a_dir, mut a) = temp_store();
            let (_b_dir, mut b) = temp_store();
            // Every third round paused: the messages are held, and still supersede.
            let (state, status) = if round % 3 == 0 {
                (LifecycleState::Paused, "held")
            } else {
                (LifecycleState::Active, "pending")
            };
            for store in [&mut a, &mut b] {
                store.transition(state, "test").unwrap();
            }
            for _ in 0..6 {
                let requests = 1 + next(40) as usize;
                let group: Vec<Vec<NewMessage>> = (0..requests)
                    .map(|_| {
                        (0..next(4))
                            .map(|_| {
                                let key = format!("K{}", next(6));
                                let operation = if next(2) == 0 { "upsert" } else { "delete" };
                                NewMessage {
                                    direction: "to_magento",
                                    entity: if next(5) == 0 { "prices" } else { "items" },
                                    version: format!("2026-01-0{}T00:00:00.000Z", 1 + next(4)),
                                    dedupe_key: format!("push|q|{}|{operation}|{key}", next(25)),
                                    natural_key: key,
                                    operation,
                                    payload: format!("{{\"n\":{}}}", next(1000)),
                                }
                            })
                            .collect()
                    })
                    .collect();
                let expected = commit_pushed_one_by_one(&mut b, &group, status);
                assert_eq!(a.commit_pushed(&group).unwrap(), expected, "round {round}");
            }
            // Every column a push writes, so a parameter bound to the wrong place shows.
            let rows = |store: &Store| -> Vec<Vec<rusqlite::types::Value>> {
                let mut stmt = store
                    .conn
                    .prepare(
                        "SELECT id, dedupe_key, status, last_error, direction, entity, natural_key,
                                version, operation, payload
                         FROM messages ORDER BY id",
                    )
                    .unwrap();
                stmt.query_map([], |r| (0..10).map(|i| r.get(i)).collect())
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap()
            };
            let (got, expected) = (rows(&a), rows(&b));
            assert!(
                got.iter()
                    .any(|r| r[2] == rusqlite::types::Value::Text("skipped".into())),
                "round {round}: no supersede tried"
            );
            assert_eq!(got, expected, "round {round}");
            assert_eq!(a.queue_counts().unwrap(), b.queue_counts().unwrap());
        }
    }

    #[test]
    fn a_truncated_header_is_not_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("connector.db");
        std::fs::write(&path, b"SQLite format").unwrap();
        assert!(matches!(
            Store::open(&path),
            Err(StoreError::NotSqlite { .. })
        ));
    }
}
