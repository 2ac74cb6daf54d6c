//! Several messages for one record collapse into the newest: versions (UTC last-modified
//! times) compare across the push and batch paths, so an older read never overwrites a newer
//! change, and three changes in one run cost one call.

use std::collections::HashMap;

use crate::store::QueuedMessage;

/// The message to deliver for one record, and the older ones it supersedes.
#[derive(Clone, Debug, PartialEq)]
pub struct Coalesced {
    pub newest: QueuedMessage,
    pub superseded: Vec<i64>,
}

/// Groups by record, in order of first appearance. The newest version wins; at equal
/// versions an upsert beats a delete candidate (the split halves of one update), then the
/// later message wins.
pub fn coalesce(messages: Vec<QueuedMessage>) -> Vec<Coalesced> {
    let mut order: Vec<String> = Vec::new();
    let mut groups: HashMap<String, Coalesced> = HashMap::new();
    for message in messages {
        match groups.get_mut(&message.natural_key) {
            None => {
                order.push(message.natural_key.clone());
                groups.insert(
                    message.natural_key.clone(),
                    Coalesced {
                        newest: message,
                        superseded: Vec::new(),
                    },
                );
            }
            Some(group) => {
                let rank = |m: &QueuedMessage| (m.version.clone(), m.operation == "upsert", m.id);
                if rank(&message) > rank(&group.newest) {
                    let old = std::mem::replace(&mut group.newest, message);
                    group.superseded.push(old.id);
                } else {
                    group.superseded.push(message.id);
                }
            }
        }
    }
    order
        .into_iter()
        .filter_map(|key| groups.remove(&key))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(id: i64, key: &str, version: &str, operation: &str) -> QueuedMessage {
        QueuedMessage {
            id,
            entity: "items".into(),
            natural_key: key.into(),
            version: version.into(),
            operation: operation.into(),
            payload: None,
            attempts: 0,
            mapping: None,
        }
    }

    #[test]
    fn the_newest_version_wins_whatever_the_arrival_order() {
        let out = coalesce(vec![
            m(1, "A", "2026-01-01T00:00:02.000Z", "upsert"),
            m(2, "B", "2026-01-01T00:00:00.000Z", "upsert"),
            m(3, "A", "2026-01-01T00:00:03.000Z", "upsert"),
            // A stale batch read arriving last.
            m(4, "A", "2026-01-01T00:00:01.000Z", "upsert"),
        ]);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].newest.id, 3);
        let mut superseded = out[0].superseded.clone();
        superseded.sort();
        assert_eq!(superseded, vec![1, 4]);
        assert_eq!(out[1].newest.id, 2);
    }

    #[test]
    fn at_equal_versions_the_upsert_beats_the_delete_candidate() {
        let out = coalesce(vec![
            m(5, "A", "2026-01-01T00:00:00.000Z", "upsert"),
            m(6, "A", "2026-01-01T00:00:00.000Z", "delete"),
        ]);
        assert_eq!(out[0].newest.id, 5);
        assert_eq!(out[0].superseded, vec![6]);
    }
}
