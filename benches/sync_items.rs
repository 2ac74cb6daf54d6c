//! Benchmark `sync_items`: 10,000 changed stock items delivered to Magento (one product save
//! each) with a fixed latency L on every request of both systems and the sandbox's caps set;
//! next to the naive configuration (one request at a time) on a tenth of them, in the same run.
//! Prints its figures; asserts nothing.
//!
//! Run: `cargo bench --bench sync_items` (ITEMS=N, LATENCY_MS=L to change them).
//!
//! The catalogue is first delivered once without latency (setup, not measured); then N
//! changes (new name and weight) are queued as Acumatica's push notifications queue them, and
//! `connector sync --entity items` is timed. Bound: min(concurrency / L, —) × records per
//! Magento call (Magento has no per-minute limit).

mod common;

use common::{Env, Figures, Limits};
use connector::entities::Entity;
use connector::sandbox::SandboxOptions;
use serde_json::json;

/// New weights (never seeded: those are below 50 kg) and names for `skus`. The name is
/// create-only by default (`items.create_only`), so the weight is what makes each a change.
fn changes(env: &Env, skus: &[String], tag: &str) {
    let version = common::version_in(60);
    let base = if tag == "tuned" { 100.0 } else { 200.0 };
    let rows: Vec<_> = skus
        .iter()
        .enumerate()
        .map(|(i, sku)| {
            json!({"InventoryID": sku, "Description": format!("Bench {tag} {i}"), "ItemStatus": "AC",
                   "BaseWeight": base + (i % 50) as f64, "BasePrice": 10.0, "LastModifiedDateTime": version})
        })
        .collect();
    env.queue_rows(Entity::Items, &rows, tag);
}

fn measure(env: &Env, label: &str, skus: &[String], limits: &Limits, latency: u64) -> Figures {
    env.configure(limits);
    changes(env, skus, label);
    env.set_latency(latency);
    let before = env.start_counting(limits);
    let run = env.ok(&["sync", "--json", "--entity", "items"]);
    let calls = env.calls(&before);
    env.set_latency(0);
    let delivered = run.json()["entities"]["items"]["delivered"]
        .as_u64()
        .unwrap_or(0);
    if delivered != skus.len() as u64 {
        println!("  {label}: of {} queued, {}", skus.len(), run.stdout.trim());
    }
    Figures {
        label: label.into(),
        records: delivered,
        elapsed: run.elapsed,
        cpu: run.cpu,
        bound_calls: calls.magento,
        bound_calls_per_second: limits.magento_concurrency as f64 / (latency as f64 / 1000.0),
        window: calls.magento_window,
        calls,
        limits: limits.clone(),
    }
}

fn main() {
    let items = common::env_or("ITEMS", 10_000);
    let latency = common::env_or("LATENCY_MS", 20) as u64;
    let limits = Limits::standard();
    let env = Env::start(
        SandboxOptions {
            items,
            orders: 0,
            ..SandboxOptions::default()
        },
        limits.clone(),
    );
    env.ok(&["init", "--yes"]);
    env.ok(&["sync", "--entity", "items"]);
    let skus: Vec<String> = (1..=items).map(|n| format!("SB{n:05}")).collect();

    let tuned = measure(&env, "tuned", &skus, &limits, latency);
    let naive_n = (items / 10).max(1);
    let naive = measure(&env, "naive", &skus[..naive_n], &limits.naive(), latency);

    println!(
        "sync_items: {items} changed items, L = {latency} ms, Magento concurrency {} ({})",
        limits.magento_concurrency,
        common::machine()
    );
    tuned.print();
    naive.print();
    common::print_gain(&tuned, &naive);
}
