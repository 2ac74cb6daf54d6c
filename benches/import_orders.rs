//! Benchmark `import_orders`: Magento orders imported into Acumatica (`SalesOrder`, looked
//! up by increment id before it is created) under an Acumatica licence of 600 requests per
//! minute, 2 sessions, 4 concurrent requests, with a fixed latency L on every request; next
//! to the naive configuration (one session, one request at a time) on a tenth of them.
//! Prints its figures; asserts nothing.
//!
//! Run: `cargo bench --bench import_orders` (ORDERS=N, LATENCY_MS=L to change them). The
//! full figure is ORDERS=5000; at 600 requests/min each Acumatica call costs 0.1 s, so it
//! takes (calls per order × 500) s — ORDERS=500 gives the same ratios in a tenth of the time.
//!
//! Bound: min(concurrency / L, requests per minute / 60) × orders per Acumatica call; the
//! sandbox counts the most requests in any 60 s window, which must not pass the licence.

mod common;

use common::{Env, Figures, Limits};
use connector::sandbox::SandboxOptions;
use serde_json::json;

fn measure(label: &str, orders: usize, limits: &Limits, latency: u64) -> Figures {
    let env = Env::start(
        SandboxOptions {
            orders,
            ..SandboxOptions::default()
        },
        limits.clone(),
    );
    env.ok(&["init", "--yes"]);
    // Acumatica owns the catalogue: every SKU the Magento orders use is a stock item.
    let magento = env.sandbox.magento_url.clone();
    let state: serde_json::Value = env.block_on(async {
        reqwest::get(format!("{magento}/__sandbox/state"))
            .await
            .expect("the sandbox answers")
            .json()
            .await
            .expect("state is JSON")
    });
    let products: Vec<String> = state["products"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["type_id"] == "simple")
        .filter_map(|p| p["sku"].as_str().map(String::from))
        .collect();
    let url = env.sandbox.acumatica_url.clone();
    env.block_on(async {
        let client = reqwest::Client::new();
        for sku in &products {
            let reply = client
                .post(format!("{url}/__sandbox/items/{sku}"))
                .json(&json!({"price": 10.0, "description": sku,
                              "warehouses": {"RETAIL": {"qty_on_hand": 100000, "qty_avail": 100000}}}))
                .send()
                .await
                .expect("the sandbox answers");
            assert!(reply.status().is_success(), "adding {sku}: {}", reply.status());
        }
    });
    env.set_latency(latency);
    let before = env.start_counting(limits);
    let run = env.connector(&[
        "sync",
        "--json",
        "--entity",
        "customers",
        "--entity",
        "orders",
    ]);
    let calls = env.calls(&before);
    assert!(
        run.code == 0,
        "exit {}\n{}\n{}",
        run.code,
        run.stdout,
        run.stderr
    );
    let report = run.json();
    let imported = report["entities"]["orders"]["delivered"]
        .as_u64()
        .unwrap_or(0);
    assert_eq!(imported, orders as u64, "{}", run.stdout);
    println!(
        "  {label}: {imported} orders imported, {} customers; Acumatica {} calls ({:.2} per order, {:.2} calls/s against {:.2} allowed), Magento {} calls",
        report["entities"]["customers"]["delivered"],
        calls.acumatica,
        calls.acumatica as f64 / imported.max(1) as f64,
        calls.acumatica as f64 / run.elapsed.as_secs_f64(),
        rate(limits, latency),
        calls.magento,
    );
    Figures {
        label: label.into(),
        records: imported,
        elapsed: run.elapsed,
        cpu: run.cpu,
        bound_calls: calls.acumatica,
        bound_calls_per_second: rate(limits, latency),
        window: calls.acumatica_window,
        calls,
        limits: limits.clone(),
    }
}

/// Acumatica calls per second the licence allows.
fn rate(limits: &Limits, latency: u64) -> f64 {
    (limits.acumatica_concurrency as f64 / (latency.max(1) as f64 / 1000.0))
        .min(limits.requests_per_minute as f64 / 60.0)
}

fn main() {
    let orders = common::env_or("ORDERS", 5_000);
    let latency = common::env_or("LATENCY_MS", 20) as u64;
    let limits = Limits::standard();
    let tuned = measure("tuned", orders, &limits, latency);
    let naive = measure("naive", (orders / 10).max(1), &limits.naive(), latency);
    println!(
        "import_orders: {orders} Magento orders, L = {latency} ms, {} requests/min, {} sessions, {} concurrent requests ({})",
        limits.requests_per_minute,
        limits.acumatica_sessions,
        limits.acumatica_concurrency,
        common::machine()
    );
    tuned.print();
    naive.print();
    common::print_gain(&tuned, &naive);
}
