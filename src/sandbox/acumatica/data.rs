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

/// What an index files a row under.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Indexed {
    /// A column's value as `$filter` compares it ([`index_value`]), for lookups by value.
    Value(&'static str),
    /// A document number column (a string reading as a `u64`), per value of a group column
    /// (none: one group), for the greatest number in use.
    Number {
        group: Option<&'static str>,
        number: &'static str,
    },
}

/// The indexes the store keeps beside its tables, as a database would: looking a sales order
/// up by its customer order number, a customer by email or a record by `NoteID` rendered and
/// tested every row of the table, and numbering a new order or shipment read every row, so
/// each call cost grew with the table.
const INDEXES: &[(&str, Indexed)] = &[
    ("SOOrder", Indexed::Value("CustomerOrderNbr")),
    ("SOOrder", Indexed::Value("CustomerRefNbr")),
    ("SOOrder", Indexed::Value("NoteID")),
    (
        "SOOrder",
        Indexed::Number {
            group: Some("OrderType"),
            number: "OrderNbr",
        },
    ),
    ("Customer", Indexed::Value("Email")),
    ("Customer", Indexed::Value("NoteID")),
    ("InventoryItem", Indexed::Value("NoteID")),
    ("SOShipment", Indexed::Value("NoteID")),
    (
        "SOShipment",
        Indexed::Number {
            group: None,
            number: "ShipmentNbr",
        },
    ),
];

/// How an index files a value: lower case, as `$filter` compares strings; numbers by their
/// text. Other values (null, booleans) are not filed: no string equals them.
fn index_value(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.to_lowercase()),
        Value::Number(n) => Some(n.to_string().to_lowercase()),
        _ => None,
    }
}

impl Indexed {
    /// Where `row` is filed: (value, 0) or (group value, number); `None`: not filed.
    fn key(self, row: &Row) -> Option<(String, u64)> {
        match self {
            Indexed::Value(column) => row.get(column).and_then(index_value).map(|v| (v, 0)),
            Indexed::Number { group, number } => {
                let n = row.get(number)?.as_str()?.parse::<u64>().ok()?;
                let group = group
                    .and_then(|g| row.get(g))
                    .map(plain)
                    .unwrap_or_default();
                Some((group, n))
            }
        }
    }
}

/// One index: where each row is filed → the keys of the rows filed there.
type Index = BTreeMap<(String, u64), BTreeSet<String>>;

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
    /// The [`INDEXES`], each beside its table and kept in step by [`Store::set`], the one
    /// place rows are stored or removed.
    indexes: Vec<(&'static str, Indexed, Index)>,
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
            indexes: INDEXES
                .iter()
                .map(|&(table, indexed)| (table, indexed, Index::new()))
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

    fn index(&self, table: &str, indexed: Indexed) -> Option<&Index> {
        self.indexes
            .iter()
            .find(|(t, i, _)| *t == table && *i == indexed)
            .map(|(_, _, index)| index)
    }

    /// Keys of the rows of `table` whose `column` may equal `value` (equal by
    /// [`index_value`]: the caller still tests each row), in key order; `None` when the
    /// column has no index.
    pub fn lookup<'a>(
        &'a self,
        table: &str,
        column: &'static str,
        value: &Value,
    ) -> Option<impl Iterator<Item = &'a String> + use<'a>> {
        let index = self.index(table, Indexed::Value(column))?;
        let keys = index_value(value).and_then(|v| index.get(&(v, 0)));
        Some(keys.into_iter().flatten())
    }

    /// The greatest `number` (a string reading as a `u64`) among the rows of `table` whose
    /// `group` column reads `group_value` (`""` without a group), 0 when none. Panics without
    /// such an index (a programming error).
    pub fn max_number(
        &self,
        table: &str,
        group: Option<&'static str>,
        number: &'static str,
        group_value: &str,
    ) -> u64 {
        let index = self
            .index(table, Indexed::Number { group, number })
            .unwrap_or_else(|| panic!("no number index on {table}.{number}"));
        let group_value = group_value.to_string();
        index
            .range((group_value.clone(), 0)..=(group_value, u64::MAX))
            .next_back()
            .map_or(0, |((_, n), _)| *n)
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
        self.rows_where(table, &|_| true)
    }

    pub fn rows_where(&self, table: &str, keep: &dyn Fn(&Row) -> bool) -> Option<Vec<Row>> {
        self.tables
            .get(table)
            .map(|rows| rows.values().filter(|row| keep(row)).cloned().collect())
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
        for (_, indexed, index) in self.indexes.iter_mut().filter(|(t, _, _)| *t == table) {
            let (was, now) = (
                old.as_ref().and_then(|r| indexed.key(r)),
                new.and_then(|r| indexed.key(r)),
            );
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

    fn rows_where(&self, table: &str, keep: &dyn Fn(&Row) -> bool) -> Option<Vec<Row>> {
        self.0.lock().unwrap().rows_where(table, keep)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Every index equals one built afresh from its table.
    fn assert_indexes_match(store: &Store) {
        for (table, indexed, index) in &store.indexes {
            let mut rebuilt = Index::new();
            for (key, row) in &store.tables[*table] {
                if let Some(at) = indexed.key(row) {
                    rebuilt.entry(at).or_default().insert(key.clone());
                }
            }
            assert_eq!(index, &rebuilt, "index on {table}");
        }
    }

    fn order(nbr: &str, customer_order: Value) -> Row {
        [
            ("OrderType", json!("SO")),
            ("OrderNbr", json!(nbr)),
            ("CustomerOrderNbr", customer_order),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    fn keys(store: &Store, value: &str) -> Vec<String> {
        store
            .lookup("SOOrder", "CustomerOrderNbr", &json!(value))
            .unwrap()
            .cloned()
            .collect()
    }

    #[test]
    fn indexes_follow_inserts_updates_deletes_and_rollbacks() {
        let mut store = Store::new(1);
        let mut changes = Vec::new();
        store.put_row("SOOrder", order("000001", json!("Inc-1")), &mut changes);
        store.put_row("SOOrder", order("000002", json!(1002)), &mut changes);
        store.put_row("SOOrder", order("000007", Value::Null), &mut changes);
        store.commit(changes);
        assert_indexes_match(&store);
        // Found ignoring case, as `$filter` compares; a number by its text; null not filed.
        assert_eq!(keys(&store, "INC-1"), vec![key_of(&["SO", "000001"])]);
        assert_eq!(keys(&store, "1002"), vec![key_of(&["SO", "000002"])]);
        assert!(keys(&store, "").is_empty());
        assert_eq!(
            store.max_number("SOOrder", Some("OrderType"), "OrderNbr", "SO"),
            7
        );
        assert_eq!(
            store.max_number("SOOrder", Some("OrderType"), "OrderNbr", "RC"),
            0
        );
        let note = note_id_of(&store, "000002");
        assert_eq!(
            store.find_by_note_id("SOOrder", &note).unwrap()["OrderNbr"],
            "000002"
        );
        assert!(
            store
                .find_by_note_id("SOOrder", &note.to_uppercase())
                .is_none()
        );

        // An update moves the row to its new value; a delete takes it out.
        let mut changes = Vec::new();
        store.put_row("SOOrder", order("000001", json!("Inc-9")), &mut changes);
        let seven = key_of(&["SO", "000007"]);
        store.delete_row("SOOrder", &seven, &mut changes);
        store.commit(changes);
        assert_indexes_match(&store);
        assert!(keys(&store, "inc-1").is_empty());
        assert_eq!(keys(&store, "inc-9"), vec![key_of(&["SO", "000001"])]);
        assert_eq!(
            store.max_number("SOOrder", Some("OrderType"), "OrderNbr", "SO"),
            2
        );

        // A rolled-back write leaves the indexes as they were.
        let mut changes = Vec::new();
        store.put_row("SOOrder", order("000001", json!("Inc-5")), &mut changes);
        store.put_row("SOOrder", order("000010", json!("Inc-9")), &mut changes);
        store.delete_row("SOOrder", &key_of(&["SO", "000002"]), &mut changes);
        assert_eq!(keys(&store, "inc-9"), vec![key_of(&["SO", "000010"])]);
        assert_eq!(
            store.max_number("SOOrder", Some("OrderType"), "OrderNbr", "SO"),
            10
        );
        store.rollback(changes);
        assert_indexes_match(&store);
        assert_eq!(keys(&store, "inc-9"), vec![key_of(&["SO", "000001"])]);
        assert_eq!(keys(&store, "1002"), vec![key_of(&["SO", "000002"])]);
        assert_eq!(
            store.max_number("SOOrder", Some("OrderType"), "OrderNbr", "SO"),
            2
        );
        assert_eq!(
            store.find_by_note_id("SOOrder", &note).unwrap()["OrderNbr"],
            "000002"
        );
    }

    fn note_id_of(store: &Store, nbr: &str) -> String {
        store.get("SOOrder", &key_of(&["SO", nbr])).unwrap()["NoteID"]
            .as_str()
            .unwrap()
            .to_string()
    }
}
