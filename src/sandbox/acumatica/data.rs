//! The simulated tenant's database: the DAC-like tables of `tables.rs`, written in
//! transactions. Every committed write is sent, with before/after rows, to whoever subscribed
//! (the push-notification side), as one [`Transaction`].

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Map, Value};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use super::tables::{Change, Row, TABLES, TableSource, Transaction};

/// Contract fields a table has no column for (a customer's contact, an order's date), kept per
/// record so they round-trip; keyed by the record's `NoteID`.
pub type Extras = Map<String, Value>;

/// Columns the store keeps an index on (value → row keys), as a database would: looking a
/// sales order up by its customer order number, a customer by email or a record by `NoteID`
/// otherwise rendered and tested every row of the table, so each call cost grew with it.
const INDEXED: &[(&str, &str)] = &[
    ("SOOrder", "CustomerOrderNbr"),
    ("SOOrder", "CustomerRefNbr"),
    ("SOOrder", "NoteID"),
    ("Customer", "Email"),
    ("Customer", "NoteID"),
    ("InventoryItem", "NoteID"),
    ("SOShipment", "NoteID"),
];

/// How an index files a value: lower case, as `$filter` compares strings; numbers by their
/// text. Other values (null, booleans) are not filed: no string equals them.
pub fn index_value(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.to_lowercase()),
        Value::Number(n) => Some(n.to_string().to_lowercase()),
        _ => None,
    }
}

pub struct Store {
    tables: BTreeMap<String, BTreeMap<String, Row>>,
    extras: HashMap<String, Extras>,
    last_transaction: u64,
    last_stamp: DateTime<Utc>,
    rng: StdRng,
    subscribers: Vec<UnboundedSender<Transaction>>,
    /// (table, key) → index in the open transaction's changes, so a second write of a row
    /// folds into its first change without a scan (a seed of thousands of rows is one
    /// transaction). Cleared by `commit` and `rollback`.
    pending: HashMap<(String, String), usize>,
    /// The `INDEXED` columns: (table, column) → [`index_value`] → keys of the rows holding
    /// it. Kept in step by [`Store::set`], the one place rows are stored or removed.
    indexes: HashMap<(&'static str, &'static str), HashMap<String, BTreeSet<String>>>,
}

/// The key fields of `table` (panics for a table not in `TABLES`: a programming error).
pub fn key_fields(table: &str) -> &'static [&'static str] {
    TABLES
        .iter()
        .find(|(name, _)| *name == table)
        .map(|(_, keys)| *keys)
        .unwrap_or_else(|| panic!("no table {table}"))
}

fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The key of a row as one string (key values joined), as the store indexes it.
pub fn row_key(table: &str, row: &Row) -> String {
    key_fields(table)
        .iter()
        .map(|field| row.get(*field).map(plain).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\u{1f}")
}

/// The store key from key values given in key-field order.
pub fn key_of(values: &[&str]) -> String {
    values.join("\u{1f}")
}

/// UTC, RFC 3339 with milliseconds, as tables.rs stores date-times.
pub fn stamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn same_ignoring_stamp(a: &Row, b: &Row) -> bool {
    let strip = |row: &Row| {
        row.iter()
            .filter(|(k, _)| k.as_str() != "LastModifiedDateTime")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<Row>()
    };
    strip(a) == strip(b)
}

impl Store {
    pub fn new(seed: u64) -> Store {
        Store {
            tables: TABLES
                .iter()
                .map(|(name, _)| (name.to_string(), BTreeMap::new()))
                .collect(),
            extras: HashMap::new(),
            last_transaction: 0,
            last_stamp: DateTime::<Utc>::MIN_UTC,
            rng: StdRng::seed_from_u64(seed ^ 0xACC0_4A71),
            subscribers: Vec::new(),
            pending: HashMap::new(),
            indexes: INDEXED
                .iter()
                .map(|&column| (column, HashMap::new()))
                .collect(),
        }
    }

    pub fn subscribe(&mut self) -> UnboundedReceiver<Transaction> {
        let (tx, rx) = unbounded_channel();
        self.subscribers.push(tx);
        rx
    }

    /// A new GUID from the seeded generator, so a seed gives the same ids.
    pub fn new_guid(&mut self) -> String {
        let bytes: [u8; 16] = self.rng.random();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        format!(
            "{}-{}-4{}-a{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[13..16],
            &hex[17..20],
            &hex[20..32]
        )
    }

    pub fn rng(&mut self) -> &mut StdRng {
        &mut self.rng
    }

    /// Now, in whole milliseconds (the precision stamps are stored with) and strictly after
    /// every stamp given before, so two writes never share a stamp.
    pub fn now(&mut self) -> DateTime<Utc> {
        let mut now = Utc::now();
        now = DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now);
        if now <= self.last_stamp {
            now = self.last_stamp + Duration::milliseconds(1);
        }
        self.last_stamp = now;
        now
    }

    pub fn table(&self, table: &str) -> &BTreeMap<String, Row> {
        &self.tables[table]
    }

    pub fn get(&self, table: &str, key: &str) -> Option<&Row> {
        self.tables.get(table).and_then(|rows| rows.get(key))
    }

    /// Rows whose leading key fields equal `parent` (an item's warehouses, an order's lines),
    /// found by key range rather than a scan, in line-number order.
    pub fn children(&self, table: &str, parent: &[&str]) -> Vec<Row> {
        let mut prefix = parent.join("\u{1f}");
        prefix.push('\u{1f}');
        let mut rows: Vec<Row> = self.tables[table]
            .range(prefix.clone()..)
            .take_while(|(key, _)| key.starts_with(&prefix))
            .map(|(_, row)| row.clone())
            .collect();
        rows.sort_by(|a, b| {
            let n = |r: &Row| r.get("LineNbr").and_then(Value::as_f64).unwrap_or(0.0);
            n(a).total_cmp(&n(b))
        });
        rows
    }

    pub fn find_by_note_id(&self, table: &str, note_id: &str) -> Option<&Row> {
        let by_index = self.lookup(table, "NoteID", &Value::String(note_id.to_string()));
        let mut rows: Box<dyn Iterator<Item = &Row>> = match by_index {
            Some(keys) => Box::new(keys.filter_map(|key| self.get(table, key))),
            None => Box::new(self.tables[table].values()),
        };
        rows.find(|row| row.get("NoteID").and_then(Value::as_str) == Some(note_id))
    }

    /// Keys of the rows of `table` whose `column` may equal `value` (equal by
    /// [`index_value`]: the caller still tests each row), in key order; `None` when the
    /// column has no index.
    pub fn lookup<'a>(
        &'a self,
        table: &str,
        column: &str,
        value: &Value,
    ) -> Option<impl Iterator<Item = &'a String> + use<'a>> {
        let index = self
            .indexes
            .iter()
            .find(|((t, c), _)| *t == table && *c == column)?
            .1;
        let keys = index_value(value).and_then(|v| index.get(&v));
        Some(keys.into_iter().flatten())
    }

    pub fn extras(&self, note_id: &str) -> Option<&Extras> {
        self.extras.get(note_id)
    }

    pub fn extras_mut(&mut self, note_id: &str) -> &mut Extras {
        self.extras.entry(note_id.to_string()).or_default()
    }

    /// Inserts or replaces a row inside the transaction `changes`; `NoteID` is given to a new
    /// row and `LastModifiedDateTime` bumped when anything changed. Returns the row as stored.
    pub fn put_row(&mut self, table: &str, mut row: Row, changes: &mut Vec<Change>) -> Row {
        let key = row_key(table, &row);
        let before = self.tables[table].get(&key).cloned();
        if let Some(before) = &before {
            for field in ["NoteID", "LastModifiedDateTime"] {
                if !row.contains_key(field)
                    && let Some(v) = before.get(field)
                {
                    row.insert(field.to_string(), v.clone());
                }
            }
            if same_ignoring_stamp(before, &row) {
                return before.clone();
            }
        }
        if !row.contains_key("NoteID") {
            let guid = self.new_guid();
            row.insert("NoteID".into(), Value::String(guid));
        }
        let now = self.now();
        row.insert("LastModifiedDateTime".into(), Value::String(stamp(now)));
        self.set(table, &key, Some(row.clone()));
        self.record(changes, table, &key, before, Some(row.clone()));
        row
    }

    /// Bumps a row's `LastModifiedDateTime` (the record was saved with changes its columns do
    /// not show, e.g. a description kept outside the table).
    pub fn touch_row(&mut self, table: &str, key: &str, changes: &mut Vec<Change>) {
        let Some(mut row) = self.tables[table].get(key).cloned() else {
            return;
        };
        let before = row.clone();
        let now = self.now();
        row.insert("LastModifiedDateTime".into(), Value::String(stamp(now)));
        self.set(table, key, Some(row.clone()));
        self.record(changes, table, key, Some(before), Some(row));
    }

    pub fn delete_row(&mut self, table: &str, key: &str, changes: &mut Vec<Change>) {
        if let Some(before) = self.set(table, key, None) {
            if let Some(Value::String(note)) = before.get("NoteID") {
                self.extras.remove(note);
            }
            self.record(changes, table, key, Some(before), None);
        }
    }

    /// Undoes `changes` (a write that failed half-way leaves nothing behind).
    pub fn rollback(&mut self, changes: Vec<Change>) {
        self.pending.clear();
        for change in changes.into_iter().rev() {
            let probe = change.after.as_ref().or(change.before.as_ref());
            let Some(probe) = probe else { continue };
            let key = row_key(&change.table, probe);
            self.set(&change.table, &key, change.before);
        }
    }

    /// Commits `changes` as one transaction and hands it to the subscribers.
    pub fn commit(&mut self, mut changes: Vec<Change>) -> Option<u64> {
        self.pending.clear();
        // A row inserted and deleted within the transaction never existed for anyone else.
        changes.retain(|c| c.before.is_some() || c.after.is_some());
        if changes.is_empty() {
            return None;
        }
        self.last_transaction += 1;
        let transaction = Transaction {
            id: self.last_transaction,
            changes,
        };
        self.subscribers
            .retain(|subscriber| subscriber.send(transaction.clone()).is_ok());
        Some(self.last_transaction)
    }

    pub fn last_transaction(&self) -> u64 {
        self.last_transaction
    }

    pub fn all_rows(&self, table: &str) -> Option<Vec<Row>> {
        self.tables
            .get(table)
            .map(|rows| rows.values().cloned().collect())
    }
}

impl Store {
    /// Stores (`Some`) or removes (`None`) the row at `key`, keeping the indexes in step;
    /// returns the row it replaced.
    fn set(&mut self, table: &str, key: &str, row: Option<Row>) -> Option<Row> {
        let rows = self.tables.get_mut(table).expect("known table");
        let old = match row {
            Some(row) => rows.insert(key.to_string(), row),
            None => rows.remove(key),
        };
        let new = rows.get(key);
        for (&(_, column), index) in self.indexes.iter_mut().filter(|((t, _), _)| *t == table) {
            let value = |r: Option<&Row>| r.and_then(|r| r.get(column)).and_then(index_value);
            let (was, now) = (value(old.as_ref()), value(new));
            if was == now {
                continue;
            }
            if let Some(was) = was
                && let Some(keys) = index.get_mut(&was)
            {
                keys.remove(key);
                if keys.is_empty() {
                    index.remove(&was);
                }
            }
            if let Some(now) = now {
                index.entry(now).or_default().insert(key.to_string());
            }
        }
        old
    }

    /// Adds a change to the transaction, folding a second write of one row into the first.
    fn record(
        &mut self,
        changes: &mut Vec<Change>,
        table: &str,
        key: &str,
        before: Option<Row>,
        after: Option<Row>,
    ) {
        let slot = (table.to_string(), key.to_string());
        if let Some(&index) = self.pending.get(&slot)
            && let Some(existing) = changes.get_mut(index)
            && existing.table == table
        {
            existing.after = after;
            return;
        }
        self.pending.insert(slot, changes.len());
        changes.push(Change {
            table: table.to_string(),
            before,
            after,
        });
    }
}

/// The tables, read through a shared handle to the store.
pub struct StoreReader(pub std::sync::Arc<std::sync::Mutex<Store>>);

impl TableSource for StoreReader {
    fn rows(&self, table: &str) -> Option<Vec<Row>> {
        self.0.lock().unwrap().all_rows(table)
    }
}
