//! What an administrator looks at and fixes: failed messages, run history, mappings.

use rusqlite::params;
use serde::Serialize;

use super::{RunSummary, Store, now};

/// A failed or dead message, for `connector failed`.
#[derive(Clone, Debug, Serialize)]
pub struct FailedMessage {
    pub id: i64,
    pub entity: String,
    pub key: String,
    pub status: String,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// One mapping, for `connector mappings`.
#[derive(Clone, Debug, Serialize)]
pub struct MappingRow {
    pub entity: String,
    pub acumatica_key: String,
    pub magento_key: String,
    pub synced_at: String,
}

/// Delivered and skipped messages older than ?1, oldest first, at most ?2. In the order of
/// `messages_done`: ordered by id, SQLite scanned the whole table in id order instead.
pub(super) const PURGE_MESSAGES_SQL: &str = "DELETE FROM messages WHERE id IN (
    SELECT id FROM messages WHERE status IN ('delivered', 'skipped') AND updated_at <= ?1
    ORDER BY updated_at LIMIT ?2)";

impl Store {
    /// Failed and dead messages, oldest first, optionally of one entity.
    pub fn failed_messages(&self, entity: Option<&str>) -> rusqlite::Result<Vec<FailedMessage>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, entity, natural_key, status, attempts, last_error, next_attempt_at, created_at, updated_at
             FROM messages WHERE status IN ('failed', 'dead') AND (?1 IS NULL OR entity = ?1) ORDER BY id",
        )?;
        let rows = stmt.query_map(params![entity], |r| {
            Ok(FailedMessage {
                id: r.get(0)?,
                entity: r.get(1)?,
                key: r.get(2)?,
                status: r.get(3)?,
                attempts: r.get::<_, i64>(4)?.max(0) as u32,
                last_error: r.get(5)?,
                next_attempt_at: r.get(6)?,
                created_at: r.get(7)?,
                updated_at: r.get(8)?,
            })
        })?;
        rows.collect()
    }

    /// Sends failed or dead messages back to pending with their attempts reset: the given
    /// ids, or every one (of `entity`) when `ids` is empty. Returns how many.
    pub fn retry_failed(&self, ids: &[i64], entity: Option<&str>) -> rusqlite::Result<usize> {
        let sql = "UPDATE messages SET status = 'pending', attempts = 0, next_attempt_at = NULL, updated_at = ?3
                   WHERE status IN ('failed', 'dead') AND (?1 IS NULL OR id = ?1) AND (?2 IS NULL OR entity = ?2)";
        let at = now();
        if ids.is_empty() {
            return self.conn.execute(sql, params![None::<i64>, entity, at]);
        }
        let mut changed = 0;
        for id in ids {
            changed += self.conn.execute(sql, params![id, entity, at])?;
        }
        Ok(changed)
    }

    /// Marks failed or dead messages skipped, keeping them (and the reason) for audit.
    pub fn skip_failed(&self, ids: &[i64], reason: &str) -> rusqlite::Result<usize> {
        let mut changed = 0;
        let at = now();
        for id in ids {
            changed += self.conn.execute(
                "UPDATE messages SET status = 'skipped', last_error = ?2, updated_at = ?3
                 WHERE id = ?1 AND status IN ('failed', 'dead')",
                params![id, format!("skipped by an operator: {reason}"), at],
            )?;
        }
        Ok(changed)
    }

    /// The last `limit` runs, newest first.
    pub fn runs(&self, limit: usize) -> rusqlite::Result<Vec<RunSummary>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, started_at, finished_at, outcome, counts FROM runs ORDER BY id DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit as i64], |r| {
            Ok(RunSummary {
                id: r.get(0)?,
                started_at: r.get(1)?,
                finished_at: r.get(2)?,
                outcome: r.get(3)?,
                counts: serde_json::from_str(&r.get::<_, String>(4)?).unwrap_or_default(),
            })
        })?;
        rows.collect()
    }

    /// One run, and the messages that failed while it ran.
    pub fn run_failures(
        &self,
        id: i64,
    ) -> rusqlite::Result<Option<(RunSummary, Vec<FailedMessage>)>> {
        let Some(run) = self
            .runs(i64::MAX as usize)?
            .into_iter()
            .find(|r| r.id == id)
        else {
            return Ok(None);
        };
        let end = run.finished_at.clone().unwrap_or_else(now);
        let failures = self
            .failed_messages(None)?
            .into_iter()
            .filter(|m| m.updated_at >= run.started_at && m.updated_at <= end)
            .collect();
        Ok(Some((run, failures)))
    }

    /// Mappings, optionally of one entity and matching a key on either side.
    pub fn mappings(
        &self,
        entity: Option<&str>,
        find: Option<&str>,
    ) -> rusqlite::Result<Vec<MappingRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT entity, acumatica_key, magento_key, synced_at FROM mappings
             WHERE (?1 IS NULL OR entity = ?1) AND (?2 IS NULL OR acumatica_key = ?2 OR magento_key = ?2)
             ORDER BY entity, acumatica_key",
        )?;
        let rows = stmt.query_map(params![entity, find], |r| {
            Ok(MappingRow {
                entity: r.get(0)?,
                acumatica_key: r.get(1)?,
                magento_key: r.get(2)?,
                synced_at: r.get(3)?,
            })
        })?;
        rows.collect()
    }

    /// Forgets one mapping, so the record is sent in full next time. True if it existed.
    pub fn forget_mapping(&self, entity: &str, key: &str) -> rusqlite::Result<bool> {
        Ok(self.conn.execute(
            "DELETE FROM mappings WHERE entity = ?1 AND (acumatica_key = ?2 OR magento_key = ?2)",
            params![entity, key],
        )? > 0)
    }

    /// Moves an entity's watermark back (or clears it: the next run reads everything).
    pub fn rewind_cursor(&self, entity: &str, since: Option<&str>) -> rusqlite::Result<()> {
        match since {
            Some(since) => self.conn.execute(
                "INSERT INTO cursors (entity, watermark, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (entity) DO UPDATE SET watermark = excluded.watermark, updated_at = excluded.updated_at",
                params![entity, since, now()],
            )?,
            None => self
                .conn
                .execute("DELETE FROM cursors WHERE entity = ?1", [entity])?,
        };
        Ok(())
    }

    /// Housekeeping: deletes delivered and skipped messages (their payloads hold personal data)
    /// and runs older than `retention_days`, at most `max_rows` of each, so one sync never
    /// spends long on it. Returns how many messages went.
    pub fn purge(&self, retention_days: u32, max_rows: usize) -> rusqlite::Result<usize> {
        let cutoff = (chrono::Utc::now() - chrono::Duration::days(i64::from(retention_days)))
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let messages = self
            .conn
            .execute(PURGE_MESSAGES_SQL, params![cutoff, max_rows as i64])?;
        self.conn.execute(
            "DELETE FROM runs WHERE id IN (
                SELECT id FROM runs WHERE finished_at IS NOT NULL AND finished_at <= ?1
                ORDER BY id LIMIT ?2)",
            params![cutoff, max_rows as i64],
        )?;
        self.conn.execute(
            "DELETE FROM catch_up_requests WHERE done_at IS NOT NULL AND done_at <= ?1",
            params![cutoff],
        )?;
        if messages > 0 {
            // Give the pages back gradually instead of letting the file only grow.
            self.conn
                .execute_batch("PRAGMA incremental_vacuum(1000);")?;
        }
        Ok(messages)
    }

    /// The last run that finished without failing, if any.
    pub fn last_successful_run(&self) -> rusqlite::Result<Option<RunSummary>> {
        Ok(self
            .runs(1000)?
            .into_iter()
            .find(|r| matches!(r.outcome.as_deref(), Some("done") | Some("partial"))))
    }
}

/// What `connector doctor` reads of the store.
impl Store {
    /// SQLite's `quick_check`: "ok", or what is wrong.
    pub fn integrity_check(&self) -> rusqlite::Result<String> {
        let mut stmt = self.conn.prepare("PRAGMA quick_check")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        let lines = rows.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(lines.join("; "))
    }

    /// Messages of one record waiting to be delivered (pending or held): their ids.
    pub fn waiting_messages_of(&self, natural_key: &str) -> rusqlite::Result<Vec<i64>> {
        let mut stmt = self.conn.prepare(
            "SELECT id FROM messages WHERE natural_key = ?1 AND status IN ('pending', 'held') ORDER BY id",
        )?;
        let rows = stmt.query_map(params![natural_key], |r| r.get(0))?;
        rows.collect()
    }
}
