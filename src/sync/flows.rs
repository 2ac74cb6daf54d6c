//! Which flow delivers which entity, and the batching every batch endpoint shares.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::engine::{Context, Outcome, Progress, Record};
use super::{customers, inventory, items, orders, prices, shipments};
use crate::entities::Entity;
use crate::store::Store;

/// Entities whose flow is built (customers, orders and shipments: sync part 2).
pub fn supported(entity: Entity) -> bool {
    matches!(
        entity,
        Entity::Items
            | Entity::Prices
            | Entity::Inventory
            | Entity::Customers
            | Entity::Orders
            | Entity::Shipments
    )
}

pub async fn deliver(
    ctx: &Context<'_>,
    entity: Entity,
    records: Vec<Record>,
    progress: &dyn Progress,
) -> Vec<(Record, Outcome)> {
    match entity {
        Entity::Items => items::deliver(ctx, records, progress).await,
        Entity::Prices => prices::deliver(ctx, records, progress).await,
        Entity::Inventory => inventory::deliver(ctx, records, progress).await,
        // Sync part 2.
        Entity::Customers => customers::deliver(ctx, records, progress).await,
        Entity::Orders => orders::deliver(ctx, records, progress).await,
        Entity::Shipments => shipments::deliver(ctx, records, progress).await,
        #[allow(unreachable_patterns)]
        other => records
            .into_iter()
            .map(|r| {
                (
                    r,
                    Outcome::Failed(format!("the {} flow is not built yet", other.name())),
                )
            })
            .collect(),
    }
}

/// Magento's web API input limit (when a store enables it) caps arrays at 20 items.
pub const INPUT_LIMIT: usize = 20;

/// Whether an error says the array was larger than the store's web API input limit.
pub fn is_input_limit_error(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    (m.contains("maximum") && m.contains("items")) || m.contains("input limit")
}

/// The limit an input-limit error states (`Maximum items of type "…" is 10`): a store can set
/// its own (Stores > Configuration > Services > Web API Input Limits), so 20 is only the default.
fn stated_input_limit(message: &str) -> Option<usize> {
    let lower = message.to_ascii_lowercase();
    let after = &message[lower.rfind(" is ")? + 4..];
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok().filter(|n| *n > 0)
}

/// A batch's fate: every item's outcome, in order.
pub type BatchResult = Vec<Result<(), String>>;

/// Sends `items` in batches of `size`, one batch at a time. A batch refused as a whole (`Err`
/// from `send`) is split in halves until the bad items are isolated, since some endpoints (MSI
/// source items) fail a whole batch for one bad item; an input-limit refusal shrinks the batch
/// size for the rest of the run instead.
pub async fn send_in_batches<T, F, Fut>(items: Vec<T>, size: usize, send: F) -> BatchResult
where
    T: Clone,
    F: Fn(Vec<T>) -> Fut,
    Fut: Future<Output = Result<BatchResult, String>>,
{
    send_in_batches_capped(items, size, 1, &BatchCap::unknown(), send).await
}

/// What is known of the batch sizes a store's web API input limit lets through, shared by the
/// flows and the chunks of one run (`Context::batch_cap`), and kept between runs
/// ([`BatchCap::learned`]).
pub struct BatchCap {
    /// The limit a refusal stated in this run (`usize::MAX`: none met).
    limit: AtomicUsize,
    /// The largest full batch that went through (0: none), in this run or an earlier one.
    passed: AtomicUsize,
    /// Where earlier runs kept what they learned (the store's `learned` table), and what it
    /// held when this run began; `None` for a cap not kept between runs.
    kept: Option<(String, Option<usize>)>,
    /// Held by the chunk whose first batch probes the size; the chunks in flight beside it wait
    /// for that answer instead of probing too (with three chunks in flight, three lone batches
    /// went first and five of Magento's eight slots stood idle for a round trip).
    probe: tokio::sync::Mutex<()>,
}

impl BatchCap {
    /// Not known yet: the first batch goes alone.
    pub fn unknown() -> BatchCap {
        BatchCap::passed(0)
    }

    /// Batches of up to `size` went through before (an earlier run against the same store):
    /// no batch of that size needs to go alone first. A later refusal still sets the limit.
    pub fn passed(size: usize) -> BatchCap {
        BatchCap {
            limit: AtomicUsize::new(usize::MAX),
            passed: AtomicUsize::new(size),
            kept: None,
            probe: tokio::sync::Mutex::new(()),
        }
    }

    /// The cap of a run against the Magento store at `magento_url`: what earlier runs kept in
    /// `store`, or unknown (also when it cannot be read: the run probes, as a first run does).
    /// [`BatchCap::keep`] leaves this run's for the next.
    pub fn remembered(store: &Store, magento_url: &str) -> BatchCap {
        let name = format!(
            "magento.batch_size_passed {}",
            without_credentials(magento_url)
        );
        let size = match store.learned(&name) {
            Ok(value) => value.and_then(|v| v.parse().ok()),
            Err(e) => {
                tracing::warn!("reading the batch size Magento accepted before failed: {e:#}");
                None
            }
        };
        BatchCap {
            kept: Some((name, size)),
            ..BatchCap::passed(size.unwrap_or(0))
        }
    }

    /// Keeps what this run learned for the next runs ([`BatchCap::learned`]); writes nothing
    /// when that is what was kept already, or for a cap not kept between runs.
    pub fn keep(&self, store: &Store) -> rusqlite::Result<()> {
        let Some((name, before)) = &self.kept else {
            return Ok(());
        };
        let now = self.learned().filter(|&size| size > 0);
        if now == *before {
            return Ok(());
        }
        store.set_learned(name, now.map(|n| n.to_string()).as_deref())
    }

    /// What this run leaves to the next: `Some(n)` when batches of `n` went through and no
    /// input limit refused one (keep `n`); `None` when a limit did (forget what was kept: the
    /// store's limit may have changed, the next run probes again).
    pub fn learned(&self) -> Option<usize> {
        (self.limit.load(Ordering::Relaxed) == usize::MAX)
            .then(|| self.passed.load(Ordering::Relaxed))
    }

    /// Whether a batch of `size` must go alone first: no limit met in this run and no batch
    /// that large known to pass.
    fn needs_probe(&self, size: usize) -> bool {
        self.limit.load(Ordering::Relaxed) == usize::MAX
            && self.passed.load(Ordering::Relaxed) < size
    }
}

/// A URL without user name, password, query or fragment: a name to keep in the store that
/// never holds a credential someone put in the URL.
fn without_credentials(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(url) => format!("{}{}", url.origin().ascii_serialization(), url.path()),
        Err(_) => "(unparsable Magento URL)".into(),
    }
}

/// [`send_in_batches`] with up to `concurrency` batches in flight and the batch cap shared by
/// the flows of one run (`Context::batch_cap`): once prices met the store's input limit,
/// inventory starts at it instead of having its first batch refused too. The cap is the limit
/// the error states (a store may set less than 20).
///
/// Batches used to go one after another: a run of 100,000 prices waited for 1,000 round trips
/// in a row while Magento could take `max_concurrent_requests` at once. Now, while the batch
/// size is not known to pass (the first batch sent to a store, or the first after a refusal),
/// that batch goes alone, so a store's input limit refuses one batch, not `concurrency` of
/// them; then the rest go concurrently.
/// Batches to split (a bad item) are resent in the next wave.
pub async fn send_in_batches_capped<T, F, Fut>(
    items: Vec<T>,
    size: usize,
    concurrency: usize,
    cap: &BatchCap,
    send: F,
) -> BatchResult
where
    T: Clone,
    F: Fn(Vec<T>) -> Fut,
    Fut: Future<Output = Result<BatchResult, String>>,
{
    use futures_util::StreamExt;

    let concurrency = concurrency.max(1);
    // Until a batch of this size went through, one batch at a time — by one chunk of the run.
    let size = size.max(1);
    let mut probe_held = None;
    if cap.needs_probe(size) {
        let guard = cap.probe.lock().await;
        if cap.needs_probe(size) {
            probe_held = Some(guard);
        }
    }
    let mut probing = probe_held.is_some();
    let mut size = size.min(cap.limit.load(Ordering::Relaxed));
    let mut results: Vec<Option<Result<(), String>>> = vec![None; items.len()];
    // Ranges (start, end) still to send, in order.
    let mut ranges: std::collections::VecDeque<(usize, usize)> = (0..items.len())
        .step_by(size)
        .map(|s| (s, (s + size).min(items.len())))
        .collect();
    while !ranges.is_empty() {
        let wave: Vec<(usize, usize)> = if probing {
            ranges.pop_front().into_iter().collect()
        } else {
            ranges.drain(..).collect()
        };
        let items = &items;
        let send = &send;
        let mut replies = futures_util::stream::iter(wave)
            .map(|(start, end)| {
                let reply = send(items[start..end].to_vec());
                async move { (start, end, reply.await) }
            })
            // Twice the slots: the extra batches wait in the client's limiter (which keeps the
            // cap), ready to take a freed slot while the engine records or prepares a chunk.
            .buffer_unordered(2 * concurrency);
        let mut again: Vec<(usize, usize)> = Vec::new();
        while let Some((start, end, reply)) = replies.next().await {
            match reply {
                Ok(outcomes) => {
                    // This size passes the store's input limit, if it has one — when Magento
                    // took the batch: a batch not sent (the run halted) or lost to a transport
                    // error reports every item failed and proves nothing.
                    if end - start == size && outcomes.iter().any(Result::is_ok) {
                        cap.passed.fetch_max(size, Ordering::Relaxed);
                    }
                    for (i, outcome) in outcomes.into_iter().enumerate() {
                        if let Some(slot) = results.get_mut(start + i) {
                            *slot = Some(outcome);
                        }
                    }
                }
                Err(e)
                    if is_input_limit_error(&e)
                        && end - start > stated_input_limit(&e).unwrap_or(INPUT_LIMIT) =>
                {
                    size = size.min(stated_input_limit(&e).unwrap_or(INPUT_LIMIT));
                    cap.limit.fetch_min(size, Ordering::Relaxed);
                    tracing::info!(
                        "Magento's input limit refused a batch of {}; sending {size} at a time",
                        end - start
                    );
                    let mut pieces = Vec::new();
                    let mut s = end;
                    while s > start {
                        let from = s.saturating_sub(size).max(start);
                        pieces.push((from, s));
                        s = from;
                    }
                    again.extend(pieces.into_iter().rev());
                }
                Err(e) if end - start > 1 => {
                    let mid = start + (end - start) / 2;
                    tracing::debug!("a batch of {} was refused ({e}); splitting it", end - start);
                    again.push((start, mid));
                    again.push((mid, end));
                }
                Err(e) => results[start] = Some(Err(e)),
            }
        }
        drop(replies);
        // One wave of probing is enough: a batch refused for a bad item got past the input
        // limit (Magento checks it first), and an input-limit refusal set the size.
        probing = false;
        drop(probe_held.take());
        // The halves and pieces go first, in order; batches not sent yet that are longer
        // than a size the input limit just set are cut to it (each would be refused).
        again.sort_unstable();
        let rest: Vec<(usize, usize)> = ranges.drain(..).collect();
        for (start, end) in again.into_iter().chain(rest) {
            let mut s = start;
            while s < end {
                let to = if end - start > size {
                    (s + size).min(end)
                } else {
                    end
                };
                ranges.push_back((s, to));
                s = to;
            }
        }
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err("not sent".into())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[tokio::test]
    async fn one_bad_item_is_isolated_and_the_rest_delivered() {
        let calls = Mutex::new(0);
        let items: Vec<u32> = (0..10).collect();
        let results = send_in_batches(items, 10, |chunk: Vec<u32>| {
            *calls.lock().unwrap() += 1;
            async move {
                if chunk.contains(&7) {
                    Err("400: invalid source item".to_string())
                } else {
                    Ok(chunk.iter().map(|_| Ok(())).collect())
                }
            }
        })
        .await;
        assert_eq!(results.iter().filter(|r| r.is_err()).count(), 1);
        assert!(results[7].is_err());
        assert!(*calls.lock().unwrap() <= 9, "splitting is logarithmic");
    }

    #[tokio::test]
    async fn the_input_limit_shrinks_batches_to_twenty() {
        let sizes = Mutex::new(Vec::new());
        let items: Vec<u32> = (0..100).collect();
        let results = send_in_batches(items, 100, |chunk: Vec<u32>| {
            sizes.lock().unwrap().push(chunk.len());
            async move {
                if chunk.len() > 20 {
                    Err("Maximum items of type \"sourceItems\" is 20".to_string())
                } else {
                    Ok(chunk.iter().map(|_| Ok(())).collect())
                }
            }
        })
        .await;
        assert!(results.iter().all(Result::is_ok));
        assert_eq!(sizes.into_inner().unwrap(), vec![100, 20, 20, 20, 20, 20]);
    }

    #[tokio::test]
    async fn chunks_sent_side_by_side_probe_the_batch_size_once() {
        let seen = in_flight_at_each_start(&BatchCap::unknown(), 2).await;
        assert_eq!(seen.len(), 6);
        assert_eq!(seen[0], 1, "the probe goes alone");
        assert_eq!(seen[1], 1, "the other chunk waited for the probe: {seen:?}");
        assert!(
            seen.iter().any(|n| *n > 1),
            "then batches go side by side: {seen:?}"
        );
    }

    #[test]
    fn the_name_kept_for_a_magento_store_holds_no_credential() {
        assert_eq!(
            without_credentials("https://admin:s3cret@shop.example.com:8443/base/?key=s3cret#x"),
            "https://shop.example.com:8443/base/"
        );
        assert_eq!(
            without_credentials("http://127.0.0.1:9000/magento"),
            "http://127.0.0.1:9000/magento"
        );
        assert!(!without_credentials("not a url s3cret").contains("s3cret"));
    }

    /// How many batches were in flight as each one started, sending `chunks` chunks of 300
    /// items side by side in batches of 100 with `cap`, each batch taking 5 ms.
    async fn in_flight_at_each_start(cap: &BatchCap, chunks: usize) -> Vec<usize> {
        use std::sync::atomic::AtomicUsize;
        let in_flight = AtomicUsize::new(0);
        let seen = Mutex::new(Vec::new());
        let send = |chunk: Vec<u32>| {
            seen.lock()
                .unwrap()
                .push(in_flight.fetch_add(1, Ordering::SeqCst) + 1);
            let in_flight = &in_flight;
            async move {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                Ok(chunk.iter().map(|_| Ok(())).collect())
            }
        };
        let results = futures_util::future::join_all(
            (0..chunks).map(|_| send_in_batches_capped((0..300).collect(), 100, 8, cap, send)),
        )
        .await;
        assert!(results.iter().flatten().all(Result::is_ok));
        seen.into_inner().unwrap()
    }

    #[tokio::test]
    async fn a_size_that_passed_in_an_earlier_run_is_not_probed_again() {
        // Unknown: the first batch goes alone; then 100 is what this run leaves to the next.
        let cap = BatchCap::unknown();
        assert_eq!(in_flight_at_each_start(&cap, 1).await, vec![1, 1, 2]);
        assert_eq!(cap.learned(), Some(100));
        // Known from before: all three go side by side.
        let cap = BatchCap::passed(100);
        assert_eq!(in_flight_at_each_start(&cap, 1).await, vec![1, 2, 3]);
        // A smaller size passed before says nothing of 100: probed.
        let cap = BatchCap::passed(50);
        assert_eq!(in_flight_at_each_start(&cap, 1).await, vec![1, 1, 2]);
        assert_eq!(cap.learned(), Some(100));
    }

    #[tokio::test]
    async fn a_batch_whose_items_all_failed_proves_no_size() {
        // A run that halted (Magento refused the credentials) answers each batch with every
        // item failed, without sending it: nothing is learned from that.
        let cap = BatchCap::unknown();
        let send = |chunk: Vec<u32>| async move {
            Ok(chunk.iter().map(|_| Err("halted".to_string())).collect())
        };
        send_in_batches_capped((0..200).collect(), 100, 8, &cap, send).await;
        assert_eq!(cap.learned(), Some(0));
        assert!(cap.needs_probe(100));
    }

    #[tokio::test]
    async fn a_run_that_met_an_input_limit_leaves_nothing_to_keep() {
        let cap = BatchCap::passed(100);
        let send = |chunk: Vec<u32>| async move {
            if chunk.len() > 20 {
                Err("Maximum items of type \"prices\" is 20".to_string())
            } else {
                Ok(chunk.iter().map(|_| Ok(())).collect())
            }
        };
        let results = send_in_batches_capped((0..100).collect(), 100, 8, &cap, send).await;
        assert!(results.iter().all(Result::is_ok));
        assert_eq!(cap.learned(), None);
    }

    #[tokio::test]
    async fn a_store_limit_below_twenty_is_read_from_the_error_and_kept_for_the_run() {
        let cap = BatchCap::unknown();
        let sizes = Mutex::new(Vec::new());
        let send = |chunk: Vec<u32>| {
            sizes.lock().unwrap().push(chunk.len());
            async move {
                if chunk.len() > 8 {
                    Err("Maximum items of type \"\\Magento\\X\" is 8".to_string())
                } else {
                    Ok(chunk.iter().map(|_| Ok(())).collect())
                }
            }
        };
        let results = send_in_batches_capped((0..20).collect(), 100, 1, &cap, send).await;
        assert!(results.iter().all(Result::is_ok));
        assert_eq!(*sizes.lock().unwrap(), vec![20, 4, 8, 8]);
        // A later flow of the same run starts at the cap: no refused batch.
        sizes.lock().unwrap().clear();
        send_in_batches_capped((0..10).collect(), 100, 1, &cap, send).await;
        assert_eq!(*sizes.lock().unwrap(), vec![8, 2]);
    }
}
