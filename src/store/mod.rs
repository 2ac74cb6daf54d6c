//! The SQLite state store (DESIGN.md section 5): the only module that writes SQL.
//!
//! One narrow interface (open, lifecycle, queue, mappings, cursors, runs) so that another
//! engine can back it later (DESIGN.md section 10). Schema changes are migration files under
//! `migrations/`, applied in order by `rusqlite_migration`.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use rusqlite_migration::{M, Migrations};
use serde::Serialize;

/// The migrations, oldest first. Append only: a released file never changes.
const MIGRATIONS: &[&str] = &[include_str!("../../migrations/001_initial.sql")];

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
    #[error("{path}: cannot open the state store: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{path}: cannot migrate the state store: {message}")]
    Migrate { path: PathBuf, message: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
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

pub struct Store {
    path: PathBuf,
    conn: Connection,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Store {
    /// Opens (creating if missing) and migrates the store at `path`. A file that is not SQLite,
    /// or a schema newer than this build, is refused before anything is written to it.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
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
        let tx = self.conn.transaction()?;
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
        let mut stmt = self
            .conn
            .prepare("SELECT status, COUNT(*) FROM messages GROUP BY status")?;
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
}
