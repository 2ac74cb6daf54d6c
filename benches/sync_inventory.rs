//! Benchmark `sync_inventory`: 100,000 quantity changes to Magento MSI
//! (`POST /V1/inventory/source-items`, batches of 100) with a fixed latency L on every request
//! and the sandbox's caps set; next to the naive configuration (batch size 1, one request at
//! a time) on a hundredth of them, in the same run. Prints its figures; asserts nothing.
//!
//! Run: `cargo bench --bench sync_inventory` (CHANGES=N, LATENCY_MS=L, RUNS=R to change them;
//! the tuned configuration runs R = 5 times and its median run is reported).
//!
//! Setup (not measured): a Magento catalogue of N products the items flow delivered before
//! (their mappings), so no SKU needs a lookup; the changes (one warehouse row per product)
//! are queued as Acumatica's push notifications queue them, and the batch path's watermark is
//! now. Bound: Magento concurrency / L × records per Magento call.

mod common;

use common::{Env, Limits};
use connector::entities::Entity;
use connector::sandbox::SandboxOptions;
use serde_json::{Value, json};

fn rows(skus: &[String], base: u64) -> Vec<Value> {
    let version = common::version_in(60);
    skus.iter()
        .enumerate()
        .map(|(i, sku)| {
            let qty = (base + i as u64 % 500) as f64;
            json!({"InventoryID": sku, "WarehouseID": "WHOLESALE", "QtyOnHand": qty,
                   "QtyAvailable": qty, "LastModifiedDateTime": version})
        })
        .collect()
}

fn main() {
    let n = common::env_or("CHANGES", 100_000);
    let latency = common::env_or("LATENCY_MS", 20) as u64;
    let limits = Limits::standard();
    let env = Env::start(
        SandboxOptions {
            items: n,
            orders: 0,
            ..SandboxOptions::default()
        },
        limits.clone(),
    );
    env.ok(&["init", "--yes"]);
    // Magento's catalogue (seeded with the same count): SB-0001 …, delivered before.
    let skus: Vec<String> = (1..=n).map(|i| format!("SB-{i:04}")).collect();
    env.map_items(&skus);

    // Each run's quantities differ from the run before (and from the naive run's, 2000 + …).
    let tuned = common::measure_queued_median(
        &env,
        Entity::Inventory,
        "tuned",
        5,
        |run| rows(&skus, 1000 + 3 * run as u64),
        &limits,
        latency,
    );
    let naive_n = (n / 100).max(1);
    let naive = common::measure_queued(
        &env,
        Entity::Inventory,
        "naive",
        &rows(&skus[..naive_n], 2000),
        &limits.naive(),
        latency,
    );
    println!(
        "sync_inventory: {n} quantity changes, L = {latency} ms, batch size {}, Magento concurrency {} ({})",
        limits.batch_size,
        limits.magento_concurrency,
        common::machine()
    );
    tuned.print();
    naive.print();
    println!(
        "  tuned: {} source-items calls = {:.4} Magento calls per record (target ≤ 0.01)",
        common::route(&tuned.calls, "source-items"),
        tuned.calls.magento as f64 / tuned.records as f64
    );
    common::print_gain(&tuned, &naive);
}
