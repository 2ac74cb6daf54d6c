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

/// Maps the reply's failed items back to the batch. Magento names the SKU in a failure's
/// parameters for an unknown product, but only the field and value for a bad price; a failure
/// that names no SKU is matched by its value, and one that matches nothing fails the whole
/// batch (a resend is harmless: prices are absolute).
fn failed_items(chunk: &[Value], reply: &Value) -> BatchResult {
    let failures = reply.as_array().cloned().unwrap_or_default();
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let params_of = |f: &Value| -> Vec<String> {
        match f.get("parameters") {
            Some(Value::Array(ps)) => ps.iter().map(text).collect(),
            Some(Value::Object(map)) => map.values().map(text).collect(),
            _ => Vec::new(),
        }
    };
    let describe = |f: &Value| crate::magento::error_message(&f.to_string());
    let mut results: BatchResult = vec![Ok(()); chunk.len()];
    for failure in &failures {
        let params = params_of(failure);
        let by_sku: Vec<usize> = chunk
            .iter()
            .enumerate()
            .filter(|(_, item)| {
                item["sku"]
                    .as_str()
                    .is_some_and(|sku| params.iter().any(|p| p == sku))
            })
            .map(|(i, _)| i)
            .collect();
        let matched = if !by_sku.is_empty() {
            by_sku
        } else {
            let by_value: Vec<usize> = chunk
                .iter()
                .enumerate()
                .filter(|(_, item)| {
                    item["price"].as_f64().is_some_and(|price| {
                        params
                            .iter()
                            .any(|p| p.parse::<f64>().is_ok_and(|v| (v - price).abs() < 1e-9))
                    })
                })
                .map(|(i, _)| i)
                .collect();
            if by_value.is_empty() {
                (0..chunk.len()).collect()
            } else {
                by_value
            }
        };
        for i in matched {
            let sku = chunk[i]["sku"].as_str().unwrap_or_default();
            results[i] = Err(format!(
                "Magento refused the price of {sku}: {}",
                describe(failure)
            ));
        }
    }
    results
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_without_a_sku_is_matched_by_its_value_or_fails_the_batch() {
        let chunk = vec![
            json!({"sku": "A", "price": 1.0}),
            json!({"sku": "B", "price": 7.5}),
        ];
        let reply = json!([{"message": "Invalid attribute %fieldName = %fieldValue.", "parameters": ["Price", "7.5"]}]);
        let results = failed_items(&chunk, &reply);
        assert!(results[0].is_ok());
        assert!(
            results[1]
                .as_ref()
                .unwrap_err()
                .contains("Invalid attribute Price = 7.5.")
        );
        let unknown = json!([{"message": "Something went wrong.", "parameters": []}]);
        assert!(failed_items(&chunk, &unknown).iter().all(Result::is_err));
    }

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
