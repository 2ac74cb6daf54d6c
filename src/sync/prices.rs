//! `prices`: Acumatica base prices → Magento `POST /V1/products/base-prices`, in batches. The
//! 200 reply lists the items that failed: those fail, the rest succeed.

use serde_json::{Value, json};

use super::engine::{Context, Outcome, Progress, Record, payload_hash};
use super::flows::{BatchResult, send_in_batches_capped};
use crate::entities::Entity;
use crate::magento::Scope;

pub async fn deliver(
    ctx: &Context<'_>,
    records: Vec<Record>,
    progress: &dyn Progress,
) -> Vec<(Record, Outcome)> {
    let mut done = Vec::new();
    // The records to send with their payload hashes, and their items (apart, so the items go
    // to the batches without a copy).
    let mut to_send: Vec<(Record, String)> = Vec::new();
    let mut items: Vec<Value> = Vec::new();
    for record in records {
        if record.operation == "delete" {
            done.push((
                record,
                Outcome::Skipped("a price row left the inquiry: nothing to send".into()),
            ));
            continue;
        }
        let Some(price) = record.row.get("BasePrice").and_then(Value::as_f64) else {
            done.push((
                record,
                Outcome::Skipped("no price in the row (untracked)".into()),
            ));
            continue;
        };
        // store_id 0: the global (default) price scope.
        let item = json!({ "sku": record.key, "price": price, "store_id": 0 });
        let hash = payload_hash(&item);
        if record
            .mapping
            .as_ref()
            .and_then(|m| m.payload_hash.as_deref())
            == Some(hash.as_str())
        {
            done.push((record, Outcome::Skipped("unchanged".into())));
            continue;
        }
        to_send.push((record, hash));
        items.push(item);
    }
    progress.advance(Entity::Prices, done.len() as u64);
    if ctx.dry_run {
        done.extend(to_send.into_iter().map(|(record, hash)| {
            let target_key = record.key.clone();
            (
                record,
                Outcome::Delivered {
                    target_key,
                    source_key: None,
                    hash,
                },
            )
        }));
        return done;
    }

    let results = send_in_batches_capped(
        items,
        ctx.config.sync.batch_size as usize,
        ctx.config.magento.max_concurrent_requests as usize,
        &ctx.batch_cap,
        |chunk| async move {
            if let Some(why) = ctx.halted() {
                return Ok(vec![Err(why); chunk.len()]);
            }
            let reply = match ctx
                .magento
                .send_detached(
                    reqwest::Method::POST,
                    Scope::All,
                    "/V1/products/base-prices",
                    json!({ "prices": chunk }),
                    true,
                )
                .await
            {
                Ok(reply) => reply,
                Err(e) => {
                    let message = ctx.magento_error(e);
                    // Magento refused the credentials: not this batch's fault, so no split.
                    if ctx.halted().is_some() {
                        return Ok(vec![Err(message); chunk.len()]);
                    }
                    return Err(message);
                }
            };
            let results = failed_items(&chunk, &reply)?;
            progress.advance(Entity::Prices, chunk.len() as u64);
            Ok(results)
        },
    )
    .await;
    for ((record, hash), result) in to_send.into_iter().zip(results) {
        let outcome = match result {
            Ok(()) => Outcome::Delivered {
                target_key: record.key.clone(),
                source_key: None,
                hash,
            },
            Err(e) => Outcome::Failed(e),
        };
        done.push((record, outcome));
    }
    done
}

/// Maps the reply's failed items back to the batch: an item failed when its SKU is among a
/// failure's parameters (Magento names the SKU there for an unknown SKU or store).
///
/// Magento does not name the SKU of every failure: an invalid price is reported as
/// `Invalid attribute %fieldName = %fieldValue.` with `["Price", "-5"]` only
/// (`BasePriceStorage::retrieveValidPrices`). Such a failure cannot be pinned on an item of a
/// larger batch, so the batch is refused as a whole (`Err`) and `send_in_batches` splits it
/// until the failure is alone: in a batch of one, every failure is that item's. Resending the
/// good prices of a split batch is harmless (a base price write is idempotent). Before this,
/// an unnamed failure was dropped and the bad price counted as delivered.
fn failed_items(chunk: &[Value], reply: &Value) -> Result<BatchResult, String> {
    let failures = reply.as_array().cloned().unwrap_or_default();
    let names = |f: &Value, sku: &str| match f.get("parameters") {
        Some(Value::Array(ps)) => ps.iter().any(|p| p.as_str() == Some(sku)),
        Some(Value::Object(ps)) => ps.values().any(|p| p.as_str() == Some(sku)),
        _ => false,
    };
    let describe = |f: &Value| crate::magento::error_message(&f.to_string());
    if chunk.len() == 1 {
        let sku = chunk[0]["sku"].as_str().unwrap_or_default();
        return Ok(vec![match failures.first() {
            None => Ok(()),
            Some(f) => Err(format!(
                "Magento refused the price of {sku}: {}",
                describe(f)
            )),
        }]);
    }
    let named = |f: &Value| {
        chunk
            .iter()
            .any(|item| names(f, item["sku"].as_str().unwrap_or_default()))
    };
    if let Some(unnamed) = failures.iter().find(|f| !named(f)) {
        return Err(format!(
            "Magento refused a price without naming its SKU ({}); splitting the batch",
            describe(unnamed)
        ));
    }
    Ok(chunk
        .iter()
        .map(|item| {
            let sku = item["sku"].as_str().unwrap_or_default();
            match failures.iter().find(|f| names(f, sku)) {
                None => Ok(()),
                Some(f) => Err(format!(
                    "Magento refused the price of {sku}: {}",
                    describe(f)
                )),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_matched_to_their_sku() {
        let chunk = vec![
            json!({"sku": "A", "price": 1.0}),
            json!({"sku": "B", "price": -1.0}),
        ];
        let reply = json!([{"message": "Invalid attribute %fieldName = %fieldValue.", "parameters": ["SKU", "B"]}]);
        let results = failed_items(&chunk, &reply).unwrap();
        assert!(results[0].is_ok());
        assert!(
            results[1]
                .as_ref()
                .unwrap_err()
                .contains("Invalid attribute SKU = B.")
        );
    }

    #[test]
    fn a_failure_that_names_no_sku_refuses_the_batch_so_it_is_split() {
        let chunk = vec![
            json!({"sku": "A", "price": 1.0}),
            json!({"sku": "B", "price": -1.0}),
        ];
        // Magento's reply to a negative price: the field and value, no SKU.
        let reply = json!([{"message": "Invalid attribute %fieldName = %fieldValue.", "parameters": ["Price", "-1"]}]);
        assert!(failed_items(&chunk, &reply).is_err());
        let one = failed_items(&chunk[1..], &reply).unwrap();
        assert!(
            one[0]
                .as_ref()
                .unwrap_err()
                .contains("Invalid attribute Price = -1.")
        );
        assert!(failed_items(&chunk[..1], &json!([])).unwrap()[0].is_ok());
    }
}
