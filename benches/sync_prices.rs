//! Benchmark `sync_prices`: 100,000 base-price changes to Magento
//! (`POST /V1/products/base-prices`, batches of 100) with a fixed latency L on every request
//! and the sandbox's caps set; next to the naive configuration (batch size 1, one request at
//! a time) on a hundredth of them, in the same run. Prints its figures; asserts nothing.
//!
//! Run: `cargo bench --bench sync_prices` (PRICES=N, LATENCY_MS=L, RUNS=R to change them; the
//! tuned configuration runs R = 5 times and its median run is reported).
//!
//! Setup (not measured): a Magento catalogue of N products; the changes are queued as
//! Acumatica's push notifications queue them, and the batch path's watermark is now (the read
//! finds nothing more). Bound: Magento concurrency / L × records per Magento call.

mod common;

use common::{Env, Limits};
use connector::entities::Entity;
use connector::sandbox::SandboxOptions;
use serde_json::{Value, json};

fn rows(skus: &[String], cents: u64) -> Vec<Value> {
    let version = common::version_in(60);
    skus.iter()
        .enumerate()
        .map(|(i, sku)| {
            json!({"InventoryID": sku, "BasePrice": (1000 + cents + i as u64 % 9000) as f64 / 100.0,
                   "LastModifiedDateTime": version})
        })
        .collect()
}

fn main() {
    let n = common::env_or("PRICES", 100_000);
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
    // Magento's catalogue (seeded with the same count): SB-0001 …
    let skus: Vec<String> = (1..=n).map(|i| format!("SB-{i:04}")).collect();

    // Each run's prices differ from the run before (and from the naive run's, cents = 2).
    let tuned = common::measure_queued_median(
        &env,
        Entity::Prices,
        "tuned",
        5,
        |run| rows(&skus, 1 + 3 * run as u64),
        &limits,
        latency,
    );
    let naive_n = (n / 100).max(1);
    let naive = common::measure_queued(
        &env,
        Entity::Prices,
        "naive",
        &rows(&skus[..naive_n], 2),
        &limits.naive(),
        latency,
    );
    println!(
        "sync_prices: {n} price changes, L = {latency} ms, batch size {}, Magento concurrency {} ({})",
        limits.batch_size,
        limits.magento_concurrency,
        common::machine()
    );
    tuned.print();
    naive.print();
    println!(
        "  tuned: {} base-prices calls = {:.4} Magento calls per record (target ≤ 0.01)",
        common::route(&tuned.calls, "base-prices"),
        tuned.calls.magento as f64 / tuned.records as f64
    );
    common::print_gain(&tuned, &naive);
}
