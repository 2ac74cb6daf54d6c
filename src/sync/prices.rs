//! `prices`: Acumatica base prices → Magento `POST /V1/products/base-prices`, in batches. The
//! 200 reply lists the items that failed: those fail, the rest succeed.

use serde_json::{Value, json};

use super::engine::{Context, Outcome, Progress, Record, payload_hash};
use super::flows::{BatchResult, send_in_batches};
use crate::entities::Entity;
use crate::magento::Scope;

pub async fn deliver(
    ctx: &Context<'_>,
    records: Vec<Record>,
    progress: &dyn Progress,
) -> Vec<(Record, Outcome)> {
    let mut done = Vec::new();
    let mut to_send: Vec<(Record, Value, String)> = Vec::new();
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
        to_send.push((record, item, hash));
    }
    progress.advance(Entity::Prices, done.len() as u64);
    if ctx.dry_run {
        done.extend(to_send.into_iter().map(|(record, _, hash)| {
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

    let items: Vec<Value> = to_send.iter().map(|(_, item, _)| item.clone()).collect();
    let results = send_in_batches(
        items,
        ctx.config.sync.batch_size as usize,
        |chunk| async move {
            let reply = ctx
                .magento
                .post(
                    Scope::All,
                    "/V1/products/base-prices",
                    &json!({ "prices": chunk }),
                    true,
                )
                .await
                .map_err(|e| e.to_string())?;
            progress.advance(Entity::Prices, chunk.len() as u64);
            Ok(failed_items(&chunk, &reply))
        },
    )
    .await;
    for ((record, _, hash), result) in to_send.into_iter().zip(results) {
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
/// failure's parameters (Magento names the SKU there).
fn failed_items(chunk: &[Value], reply: &Value) -> BatchResult {
    let failures = reply.as_array().cloned().unwrap_or_default();
    chunk
        .iter()
        .map(|item| {
            let sku = item["sku"].as_str().unwrap_or_default();
            let failure = failures.iter().find(|f| {
                f.get("parameters")
                    .and_then(Value::as_array)
                    .is_some_and(|ps| ps.iter().any(|p| p.as_str() == Some(sku)))
            });
            match failure {
                None => Ok(()),
                Some(f) => Err(format!(
                    "Magento refused the price of {sku}: {}",
                    crate::magento::error_message(&f.to_string())
                )),
            }
        })
        .collect()
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
        let reply = json!([{"message": "Invalid attribute %fieldName = %fieldValue.", "parameters": ["price", "-1", "B"]}]);
        let results = failed_items(&chunk, &reply);
        assert!(results[0].is_ok());
        assert!(
            results[1]
                .as_ref()
                .unwrap_err()
                .contains("Invalid attribute price = -1.")
        );
    }
}
