//! Benchmark `sync_unchanged`: 10,000 items read again from Acumatica (`sync --full`) that
//! are unchanged since their last delivery: the connector must send Magento nothing. Next to
//! the naive configuration (no skip of unchanged records, one request at a time) on a tenth of
//! them. Prints its figures; asserts nothing.
//!
//! Run: `cargo bench --bench sync_unchanged` (ITEMS=N, LATENCY_MS=L to change them).
//!
//! The run's only work is the batch path's OData read (500 rows a page), so the bound is
//! Acumatica's: min(concurrency / L, requests per minute / 60) × records per Acumatica call.
//! "No skip" is simulated by forgetting the payload hashes of the last deliveries.

mod common;

use common::{Env, Figures, Limits};
use connector::sandbox::SandboxOptions;

fn measure(env: &Env, label: &str, records: usize, limits: &Limits, latency: u64) -> Figures {
    env.configure(limits);
    env.set_latency(latency);
    let before = env.start_counting(limits);
    let run = env.ok(&["sync", "--json", "--full", "--entity", "items"]);
    let calls = env.calls(&before);
    env.set_latency(0);
    let items = &run.json()["entities"]["items"];
    let seconds = latency.max(1) as f64 / 1000.0;
    // With the skip, only Acumatica's reads are left to bound the run; without it (naive),
    // Magento's saves.
    let (bound_calls, rate) = if calls.magento == 0 {
        let rate = (limits.acumatica_concurrency as f64 / seconds)
            .min(limits.requests_per_minute as f64 / 60.0);
        (calls.acumatica, rate)
    } else {
        (calls.magento, limits.magento_concurrency as f64 / seconds)
    };
    println!(
        "  {label}: collected {}, skipped {}, delivered {}; Magento catalogue calls {}",
        items["collected"], items["skipped"], items["delivered"], calls.magento
    );
    Figures {
        label: label.into(),
        records: records as u64,
        elapsed: run.elapsed,
        cpu: run.cpu,
        bound_calls,
        bound_calls_per_second: rate,
        window: if calls.magento == 0 {
            calls.acumatica_window
        } else {
            calls.magento_window
        },
        calls,
        limits: limits.clone(),
    }
}

fn main() {
    let items = common::env_or("ITEMS", 10_000);
    let latency = common::env_or("LATENCY_MS", 20) as u64;
    let limits = Limits::standard();
    println!(
        "sync_unchanged: {items} unchanged items, L = {latency} ms ({})",
        common::machine()
    );
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
    let tuned = measure(&env, "tuned", items, &limits, latency);

    // Naive: a smaller catalogue, whose last deliveries' hashes are forgotten (no skip).
    let naive_n = (items / 10).max(1);
    let small = Env::start(
        SandboxOptions {
            items: naive_n,
            orders: 0,
            ..SandboxOptions::default()
        },
        limits.clone(),
    );
    small.ok(&["init", "--yes"]);
    small.ok(&["sync", "--entity", "items"]);
    rusqlite::Connection::open(small.store_path())
        .unwrap()
        .execute(
            "UPDATE mappings SET payload_hash = NULL WHERE entity = 'items'",
            [],
        )
        .unwrap();
    let naive = measure(&small, "naive", naive_n, &limits.naive(), latency);

    tuned.print();
    naive.print();
    common::print_gain(&tuned, &naive);
}
