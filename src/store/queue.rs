//! The queue, the mappings and the run history: what the sync engine reads and writes.

use rusqlite::{OptionalExtension, params};

use super::{Store, json_list, now};

/// A message waiting for delivery.
#[derive(Clone, Debug, PartialEq)]
pub struct QueuedMessage {
    pub id: i64,
    pub entity: String,
    pub natural_key: String,
    pub version: String,
    /// `upsert` or `delete`.
    pub operation: String,
    pub payload: Option<String>,
    pub attempts: u32,
    /// The record's mapping (what was delivered last) as it was when the message was read:
    /// read in the same query, so the engine needs no lookup per record.
    pub mapping: Option<Mapping>,
}

/// Which Magento (or Acumatica) record an entity's record was delivered to, and what was sent.
#[derive(Clone, Debug, PartialEq)]
pub struct Mapping {
    pub target_key: String,
    pub payload_hash: Option<String>,
    pub version: Option<String>,
    pub line_mappings: Option<String>,
}

impl Mapping {
    /// A mapping read from a row's columns `magento_key, payload_hash, version,
    /// line_mappings`, starting at `first`; `None` when `magento_key` is NULL (a LEFT JOIN that
    /// found no mapping). Every query of the mappings table reads them in this order.
    fn from_row(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Option<Mapping>> {
        let Some(target_key) = r.get(first)? else {
            return Ok(None);
        };
        Ok(Some(Mapping {
            target_key,
            payload_hash: r.get(first + 1)?,
            version: r.get(first + 2)?,
            line_mappings: r.get(first + 3)?,
        }))
    }
}

/// Kept quantities of one item in one warehouse: (warehouse, on hand, available).
pub type StockRow = (String, Option<f64>, Option<f64>);

/// New quantities of one item in one warehouse, at `version`.
pub struct StockUpdate<'a> {
    pub item: &'a str,
    pub warehouse: &'a str,
    pub on_hand: Option<f64>,
    pub available: Option<f64>,
    pub version: &'a str,
}

/// A successful delivery of one record (one or more messages coalesced into it).
pub struct Delivery<'a> {
    pub message_ids: &'a [i64],
    pub entity: &'a str,
    pub source_key: &'a str,
    pub target_key: &'a str,
    pub payload_hash: &'a str,
    pub version: &'a str,
    pub line_mappings: Option<&'a str>,
    /// What the record's mapping was when its messages were read: it only chooses which
    /// statement is tried first (a mapping made since is still found and updated).
    pub mapped: Mapped<'a>,
}

/// A record's mapping as the engine last read it, for [`Store::record_deliveries`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mapped<'a> {
    /// Not read (the mapping's key differs from the record's: inventory maps per SKU).
    Unknown,
    /// None then: a first delivery, inserted at once.
    Absent,
    /// To this target: most likely only its hash and version change.
    To(&'a str),
}

/// The due messages of an entity after an id, oldest first, each with its mapping
/// (through the partial index `messages_due`: see migrations/004_queue_indexes.sql).
pub(super) const DUE_MESSAGES_SQL: &str =
    "SELECT m.id, m.entity, m.natural_key, m.version, m.operation, m.payload, m.attempts,
            map.magento_key, map.payload_hash, map.version, map.line_mappings
     FROM messages m
     LEFT JOIN mappings map ON map.entity = m.entity AND map.acumatica_key = m.natural_key
     WHERE m.entity = ?1 AND m.id > ?4 AND m.status IN ('pending', 'failed')
       AND (m.status = 'pending' OR (m.status = 'failed' AND m.next_attempt_at <= ?2))
     ORDER BY m.id LIMIT ?3";

impl Store {
    /// Messages of `entity` that are due: pending, or failed with their next attempt due;
    /// oldest first, at most `limit`.
    pub fn due_messages(&self, entity: &str, limit: usize) -> rusqlite::Result<Vec<QueuedMessage>> {
        self.due_messages_after(entity, 0, limit)
    }

    /// How many messages of `entity` are due now.
    pub fn count_due(&self, entity: &str) -> rusqlite::Result<u64> {
        let n: i64 = self.conn.query_row(
            "SELECT COUNT(*) FROM messages
             WHERE entity = ?1 AND status IN ('pending', 'failed')
               AND (status = 'pending' OR (status = 'failed' AND next_attempt_at <= ?2))",
            params![entity, now()],
            |r| r.get(0),
        )?;
        Ok(n.max(0) as u64)
    }

    /// Like [`Store::due_messages`], from the message after `after_id`: the engine reads the
    /// queue in chunks.
    pub fn due_messages_after(
        &self,
        entity: &str,
        after_id: i64,
        limit: usize,
    ) -> rusqlite::Result<Vec<QueuedMessage>> {
        let mut stmt = self.conn.prepare_cached(DUE_MESSAGES_SQL)?;
        let rows = stmt.query_map(params![entity, now(), limit as i64, after_id], |r| {
            Ok(QueuedMessage {
                id: r.get(0)?,
                entity: r.get(1)?,
                natural_key: r.get(2)?,
                version: r.get(3)?,
                operation: r.get(4)?,
                payload: r.get(5)?,
                attempts: r.get::<_, i64>(6)?.max(0) as u32,
                mapping: Mapping::from_row(r, 7)?,
            })
        })?;
        rows.collect()
    }

    /// The most attempts any of these messages has had.
    pub fn attempts_of(&self, ids: &[i64]) -> rusqlite::Result<u32> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT attempts FROM messages WHERE id = ?1")?;
        let mut most = 0;
        for id in ids {
            let n: i64 = stmt.query_row([id], |r| r.get(0)).optional()?.unwrap_or(0);
            most = most.max(n.max(0) as u32);
        }
        Ok(most)
    }

    /// Marks messages skipped (kept for audit) with the reason.
    pub fn mark_skipped(&mut self, ids: &[i64], reason: &str) -> rusqlite::Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.conn
            .prepare_cached(
                "UPDATE messages SET status = 'skipped', last_error = ?2, updated_at = ?3
                 WHERE id IN (SELECT value FROM json_each(?1))",
            )?
            .execute(params![json_list(ids), reason, now()])?;
        Ok(())
    }

    /// Records a 2xx delivery: the messages become `delivered` and the mapping takes the new
    /// payload hash and version — in one transaction, only after the remote system said yes.
    pub fn record_delivery(&mut self, delivery: &Delivery<'_>) -> rusqlite::Result<()> {
        self.record_deliveries(std::slice::from_ref(delivery))
    }

    /// [`Store::record_delivery`] for several records in one transaction: the engine records
    /// a whole chunk's deliveries at once. One transaction per record was most of a large
    /// batch flow's time between its calls (a commit is far dearer than the statement).
    pub fn record_deliveries(&mut self, deliveries: &[Delivery<'_>]) -> rusqlite::Result<()> {
        if deliveries.is_empty() {
            return Ok(());
        }
        let tx = self.conn.transaction()?;
        let at = now();
        {
            // One statement for the chunk's messages, not one per message: the status trigger
            // makes each UPDATE open a statement journal and copy the pages it touches into
            // it, which was a large share of recording a delivery (perf: memjrnlWrite, memmove).
            let ids: Vec<i64> = deliveries
                .iter()
                .flat_map(|d| d.message_ids.iter().copied())
                .collect();
            tx.prepare_cached(
                "UPDATE messages SET status = 'delivered', last_error = NULL, updated_at = ?2
                 WHERE id IN (SELECT value FROM json_each(?1))",
            )?
            .execute(params![json_list(&ids), at])?;
            // The common case, a record delivered again to the same target, only rewrites the
            // row: the upsert below also rewrote the (entity, magento_key) index entry each time.
            let mut refresh = tx.prepare_cached(
                "UPDATE mappings SET
                    line_mappings = COALESCE(?4, line_mappings),
                    payload_hash = ?5, version = ?6, synced_at = ?7
                 WHERE entity = ?1 AND acumatica_key = ?2 AND magento_key = ?3",
            )?;
            let mut mapping = tx.prepare_cached(
                "INSERT INTO mappings (entity, acumatica_key, magento_key, line_mappings, payload_hash, version, synced_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (entity, acumatica_key) DO UPDATE SET
                    magento_key = excluded.magento_key,
                    line_mappings = COALESCE(excluded.line_mappings, mappings.line_mappings),
                    payload_hash = excluded.payload_hash,
                    version = excluded.version,
                    synced_at = excluded.synced_at",
            )?;
            for delivery in deliveries {
                let values = params![
                    delivery.entity,
                    delivery.source_key,
                    delivery.target_key,
                    delivery.line_mappings,
                    delivery.payload_hash,
                    delivery.version,
                    at
                ];
                // A first delivery skips the refresh that would find no row (one statement
                // per record of an initial load).
                let refreshed = match delivery.mapped {
                    Mapped::Absent => false,
                    Mapped::To(target) if target != delivery.target_key => false,
                    Mapped::To(_) | Mapped::Unknown => refresh.execute(values)? > 0,
                };
                if !refreshed {
                    mapping.execute(values)?;
                }
            }
        }
        tx.commit()
    }

    /// Records a failed attempt. `next_attempt_at` None: no more tries — the messages are dead.
    pub fn record_failure(
        &mut self,
        ids: &[i64],
        error: &str,
        next_attempt_at: Option<&str>,
    ) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "UPDATE messages SET attempts = attempts + 1, last_error = ?2, next_attempt_at = ?3,
                        status = CASE WHEN ?3 IS NULL THEN 'dead' ELSE 'failed' END, updated_at = ?4
                 WHERE id = ?1",
            )?;
            let at = now();
            for id in ids {
                stmt.execute(params![id, error, next_attempt_at, at])?;
            }
        }
        tx.commit()
    }

    pub fn mapping(&self, entity: &str, source_key: &str) -> rusqlite::Result<Option<Mapping>> {
        self.conn
            .prepare_cached(
                "SELECT magento_key, payload_hash, version, line_mappings FROM mappings
                 WHERE entity = ?1 AND acumatica_key = ?2",
            )?
            .query_row(params![entity, source_key], |r| Mapping::from_row(r, 0))
            .optional()
            .map(Option::flatten)
    }

    /// [`Store::mapping`] of several records of `entity` in one query: source key → mapping.
    pub fn mappings_of(
        &self,
        entity: &str,
        source_keys: &[&str],
    ) -> rusqlite::Result<std::collections::HashMap<String, Mapping>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT acumatica_key, magento_key, payload_hash, version, line_mappings FROM mappings
             WHERE entity = ?1 AND acumatica_key IN (SELECT value FROM json_each(?2))",
        )?;
        let mut rows = stmt.query(params![entity, json_list(source_keys)])?;
        let mut found = std::collections::HashMap::new();
        while let Some(r) = rows.next()? {
            if let Some(mapping) = Mapping::from_row(r, 1)? {
                found.insert(r.get(0)?, mapping);
            }
        }
        Ok(found)
    }

    /// Keeps the line mappings (and target) of a record before the engine records its
    /// delivery, which keeps them (`COALESCE`). Flows that map lines (orders: Magento item_id
    /// <-> Acumatica line) call it right after the remote write.
    pub fn save_line_mappings(
        &self,
        entity: &str,
        source_key: &str,
        target_key: &str,
        line_mappings: &str,
    ) -> rusqlite::Result<()> {
        self.conn.execute(
            "INSERT INTO mappings (entity, acumatica_key, magento_key, line_mappings, synced_at)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (entity, acumatica_key) DO UPDATE SET
                magento_key = excluded.magento_key, line_mappings = excluded.line_mappings",
            params![entity, source_key, target_key, line_mappings, now()],
        )?;
        Ok(())
    }

    /// The mapping whose other-side key is `target_key`: (source key, mapping).
    pub fn mapping_by_target(
        &self,
        entity: &str,
        target_key: &str,
    ) -> rusqlite::Result<Option<(String, Mapping)>> {
        self.conn
            .query_row(
                "SELECT acumatica_key, magento_key, payload_hash, version, line_mappings FROM mappings
                 WHERE entity = ?1 AND magento_key = ?2",
                params![entity, target_key],
                |r| {
                    let source: String = r.get(0)?;
                    Ok(Mapping::from_row(r, 1)?.map(|m| (source, m)))
                },
            )
            .optional()
            .map(Option::flatten)
    }

    /// Moves every held message of `direction` back to pending (activate after pause).
    pub fn release_held(&self, direction: &str) -> rusqlite::Result<usize> {
        self.conn.execute(
            "UPDATE messages SET status = 'pending', updated_at = ?2 WHERE status = 'held' AND direction = ?1",
            params![direction, now()],
        )
    }

    /// Queues what the batch path read and advances the entity's watermark, in one
    /// transaction (so a crash between the two cannot skip rows). Rows already queued at the
    /// same version are not queued again. Returns how many were new and their status
    /// (`pending`, or `held` while paused).
    pub fn enqueue_collected(
        &mut self,
        entity: &str,
        messages: &[super::NewMessage],
        watermark: Option<&str>,
    ) -> rusqlite::Result<(u64, &'static str)> {
        // IMMEDIATE: this transaction reads, then writes. A deferred one would fail at once
        // with SQLITE_BUSY (busy_timeout does not apply to a read lock's upgrade) whenever the
        // receiver and a sync write the store at the same moment.
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let state: String =
            tx.query_row("SELECT state FROM lifecycle WHERE id = 1", [], |r| r.get(0))?;
        let status = if state == "paused" { "held" } else { "pending" };
        let at = now();
        let mut inserted = 0;
        for m in messages {
            // Pause holds the direction it names (to Magento); orders keep flowing in.
            let status = if m.direction == "to_acumatica" {
                "pending"
            } else {
                status
            };
            inserted += u64::from(super::insert_message(&tx, m, status, &at)?);
        }
        if let Some(watermark) = watermark {
            tx.execute(
                "INSERT INTO cursors (entity, watermark, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (entity) DO UPDATE SET watermark = max(cursors.watermark, excluded.watermark),
                                                    updated_at = excluded.updated_at",
                params![entity, watermark, at],
            )?;
        }
        tx.commit()?;
        Ok((inserted, status))
    }

    /// Closes the open catch-up requests of `entity` (the batch path has re-read it).
    pub fn close_catch_ups(&self, entity: &str) -> rusqlite::Result<()> {
        self.conn.execute(
            "UPDATE catch_up_requests SET done_at = ?2 WHERE entity = ?1 AND done_at IS NULL",
            params![entity, now()],
        )?;
        Ok(())
    }

    /// Keeps the newest quantities of one item in one warehouse; false when `version` is
    /// older than what is kept (a stale read).
    pub fn upsert_stock(
        &mut self,
        item: &str,
        warehouse: &str,
        on_hand: Option<f64>,
        available: Option<f64>,
        version: &str,
    ) -> rusqlite::Result<bool> {
        Ok(self.upsert_stocks(&[StockUpdate {
            item,
            warehouse,
            on_hand,
            available,
            version,
        }])?[0])
    }

    /// [`Store::upsert_stock`] for many rows in one transaction (the inventory flow keeps a
    /// whole chunk's quantities at once instead of committing each row).
    pub fn upsert_stocks(&mut self, rows: &[StockUpdate<'_>]) -> rusqlite::Result<Vec<bool>> {
        let tx = self.conn.transaction()?;
        let mut changed = Vec::with_capacity(rows.len());
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO stock (inventory_id, warehouse, qty_on_hand, qty_available, version)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (inventory_id, warehouse) DO UPDATE SET
                    qty_on_hand = COALESCE(excluded.qty_on_hand, stock.qty_on_hand),
                    qty_available = COALESCE(excluded.qty_available, stock.qty_available),
                    version = excluded.version
                 WHERE excluded.version >= stock.version",
            )?;
            for r in rows {
                changed.push(
                    stmt.execute(params![
                        r.item,
                        r.warehouse,
                        r.on_hand,
                        r.available,
                        r.version
                    ])? > 0,
                );
            }
        }
        tx.commit()?;
        Ok(changed)
    }

    /// Kept quantities of several items, per item, in one query (a flow's chunk: one query
    /// per item was a tenth of the inventory flow's time). Items with no row are absent.
    pub fn stock_rows_of(
        &self,
        items: &[&str],
    ) -> rusqlite::Result<std::collections::HashMap<String, Vec<StockRow>>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT inventory_id, warehouse, qty_on_hand, qty_available FROM stock
             WHERE inventory_id IN (SELECT value FROM json_each(?1))
             ORDER BY inventory_id, warehouse",
        )?;
        let mut rows = std::collections::HashMap::<String, Vec<StockRow>>::new();
        let mut query = stmt.query([json_list(items)])?;
        while let Some(r) = query.next()? {
            rows.entry(r.get(0)?)
                .or_default()
                .push((r.get(1)?, r.get(2)?, r.get(3)?));
        }
        Ok(rows)
    }

    /// The item's quantity summed over `warehouses` (all when empty).
    pub fn stock_total(
        &self,
        item: &str,
        warehouses: &[String],
        on_hand: bool,
    ) -> rusqlite::Result<f64> {
        let column = if on_hand {
            "qty_on_hand"
        } else {
            "qty_available"
        };
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT warehouse, COALESCE({column}, 0) FROM stock WHERE inventory_id = ?1"
        ))?;
        let rows = stmt.query_map([item], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, f64>(1)?))
        })?;
        let mut total = 0.0;
        for row in rows {
            let (warehouse, qty) = row?;
            if warehouses.is_empty() || warehouses.iter().any(|w| w == &warehouse) {
                total += qty;
            }
        }
        Ok(total)
    }

    /// Starts a run record; returns its id.
    pub fn begin_run(&self) -> rusqlite::Result<i64> {
        self.conn
            .execute("INSERT INTO runs (started_at) VALUES (?1)", [now()])?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Ends a run with its outcome (`done`, `partial`, `failed`) and counts (JSON).
    pub fn finish_run(&self, id: i64, outcome: &str, counts_json: &str) -> rusqlite::Result<()> {
        self.conn.execute(
            "UPDATE runs SET finished_at = ?2, outcome = ?3, counts = ?4 WHERE id = ?1",
            params![id, now(), outcome, counts_json],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::store::{LifecycleState, NewMessage, PushCommit, Store};

    use super::{Delivery, Mapped};

    fn message(key: &str, version: &str, dedupe: &str) -> NewMessage {
        NewMessage {
            direction: "to_magento",
            entity: "items",
            natural_key: key.into(),
            version: version.into(),
            dedupe_key: dedupe.into(),
            operation: "upsert",
            payload: "{}".into(),
        }
    }

    #[test]
    fn a_delivery_marks_messages_and_keeps_the_hash_and_version() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("c.db")).unwrap();
        store.transition(LifecycleState::Active, "test").unwrap();
        let committed = store
            .commit_pushed(&[vec![message("A", "2026-01-01T00:00:00.000Z", "d1")]])
            .unwrap();
        assert!(matches!(committed, PushCommit::Stored(_)));
        let due = store.due_messages("items", 10).unwrap();
        assert_eq!(due.len(), 1);
        store
            .record_delivery(&Delivery {
                message_ids: &[due[0].id],
                entity: "items",
                source_key: "A",
                target_key: "A",
                payload_hash: "h1",
                version: "2026-01-01T00:00:00.000Z",
                line_mappings: None,
                mapped: Mapped::Unknown,
            })
            .unwrap();
        assert!(store.due_messages("items", 10).unwrap().is_empty());
        let mapping = store.mapping("items", "A").unwrap().unwrap();
        assert_eq!(mapping.payload_hash.as_deref(), Some("h1"));
        assert_eq!(store.queue_counts().unwrap().delivered, 1);
    }

    /// The counts per status (kept by triggers) after a chunk's deliveries, skips and failures,
    /// each recorded by one statement for many messages, equal a count of the messages.
    #[test]
    fn a_chunk_recorded_at_once_leaves_every_message_and_count_right() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("c.db")).unwrap();
        store.transition(LifecycleState::Active, "test").unwrap();
        let queued: Vec<NewMessage> = (0..8)
            .map(|i| {
                message(
                    &format!("K{i}"),
                    "2026-01-01T00:00:00.000Z",
                    &format!("d{i}"),
                )
            })
            .collect();
        store.commit_pushed(&[queued]).unwrap();
        let ids: Vec<i64> = store
            .due_messages("items", 10)
            .unwrap()
            .iter()
            .map(|m| m.id)
            .collect();
        let delivery = |ids, key| Delivery {
            message_ids: ids,
            entity: "items",
            source_key: key,
            target_key: key,
            payload_hash: "h",
            version: "2026-01-01T00:00:00.000Z",
            line_mappings: None,
            mapped: Mapped::Absent,
        };
        // Two messages coalesced into one record, then two records of one message each.
        store
            .record_deliveries(&[
                delivery(&ids[0..2], "K0"),
                delivery(&ids[2..3], "K2"),
                delivery(&ids[3..4], "K3"),
            ])
            .unwrap();
        store.mark_skipped(&ids[4..6], "unchanged").unwrap();
        store
            .record_failure(&ids[6..7], "503", Some("2999-01-01T00:00:00.000Z"))
            .unwrap();
        store.record_failure(&ids[7..8], "gave up", None).unwrap();

        let counts = store.queue_counts().unwrap();
        assert_eq!(
            (
                counts.pending,
                counts.delivered,
                counts.skipped,
                counts.failed,
                counts.dead
            ),
            (0, 4, 2, 1, 1)
        );
        let rows = |sql: &str| -> Vec<(String, i64)> {
            let mut stmt = store.conn.prepare(sql).unwrap();
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        let counted = rows("SELECT status, COUNT(*) FROM messages GROUP BY status ORDER BY status");
        let kept = rows("SELECT status, n FROM message_counts WHERE n > 0 ORDER BY status");
        assert_eq!(kept, counted);
        for key in ["K0", "K2", "K3"] {
            assert!(store.mapping("items", key).unwrap().is_some(), "{key}");
        }
        assert!(store.mapping("items", "K1").unwrap().is_none());
        // What the engine read of a mapping only picks the statement tried first: a mapping
        // made since it was read ("absent"), or whose target changed, is still updated.
        let ids2: Vec<i64> = {
            let more: Vec<NewMessage> = ["K0", "K2"]
                .iter()
                .map(|k| message(k, "2026-01-02T00:00:00.000Z", &format!("{k}-2")))
                .collect();
            store.commit_pushed(&[more]).unwrap();
            store
                .due_messages("items", 10)
                .unwrap()
                .iter()
                .map(|m| m.id)
                .collect()
        };
        store
            .record_deliveries(&[
                Delivery {
                    payload_hash: "h2",
                    ..delivery(&ids2[0..1], "K0")
                },
                Delivery {
                    target_key: "K2-renamed",
                    mapped: Mapped::To("K2"),
                    ..delivery(&ids2[1..2], "K2")
                },
            ])
            .unwrap();
        let k0 = store.mapping("items", "K0").unwrap().unwrap();
        assert_eq!(k0.payload_hash.as_deref(), Some("h2"));
        let k2 = store.mapping("items", "K2").unwrap().unwrap();
        assert_eq!(k2.target_key, "K2-renamed");
        // An empty chunk writes nothing and fails nothing.
        store.record_deliveries(&[]).unwrap();
        store.mark_skipped(&[], "nothing").unwrap();
    }

    #[test]
    fn failures_retry_later_and_die_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("c.db")).unwrap();
        store.transition(LifecycleState::Active, "test").unwrap();
        store
            .commit_pushed(&[vec![message("A", "2026-01-01T00:00:00.000Z", "d1")]])
            .unwrap();
        let id = store.due_messages("items", 10).unwrap()[0].id;
        store
            .record_failure(&[id], "503", Some("2999-01-01T00:00:00.000Z"))
            .unwrap();
        assert!(
            store.due_messages("items", 10).unwrap().is_empty(),
            "not due yet"
        );
        store
            .record_failure(&[id], "503", Some("2000-01-01T00:00:00.000Z"))
            .unwrap();
        let due = store.due_messages("items", 10).unwrap();
        assert_eq!(due[0].attempts, 2);
        store.record_failure(&[id], "gave up", None).unwrap();
        assert_eq!(store.queue_counts().unwrap().dead, 1);
    }
}
