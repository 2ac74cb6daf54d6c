//! Benchmark `startup`: `connector status` on a store holding 100,000 messages, next to
//! `connector --version` (process start, nothing else), alternated in the same run. Target:
//! the median of `status` within 5 ms of the median of `--version`. Prints its figures;
//! asserts nothing.
//!
//! Run: `cargo bench --bench startup` (MESSAGES=N, RUNS=K to change them).

mod common;

use std::time::Duration;

use common::{Env, Limits};
use connector::entities::Entity;
use connector::sandbox::SandboxOptions;
use serde_json::json;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let messages = common::env_or("MESSAGES", 100_000);
    let runs = common::env_or("RUNS", 31);
    let env = Env::start(
        SandboxOptions {
            orders: 0,
            ..SandboxOptions::default()
        },
        Limits::standard(),
    );
    env.ok(&["init", "--yes"]);
    let version = common::version_in(60);
    let rows: Vec<_> = (0..messages)
        .map(|i| {
            json!({"InventoryID": format!("BENCH{i:07}"), "Description": "Bench item",
                        "ItemStatus": "AC", "BaseWeight": 1.0, "LastModifiedDateTime": version})
        })
        .collect();
    env.queue_rows(Entity::Items, &rows, "startup");
    let (mut start, mut status) = (Vec::new(), Vec::new());
    // One of each first, unmeasured: the page cache holds the binary and the store.
    env.ok(&["--version"]);
    env.ok(&["status"]);
    for _ in 0..runs {
        start.push(env.ok(&["--version"]).elapsed);
        status.push(env.ok(&["status"]).elapsed);
    }
    let (start, status) = (median(start), median(status));
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "startup: `connector status` on a store of {messages} messages vs `connector --version`, median of {runs} alternated runs ({})",
        common::machine()
    );
    println!("  --version  : {:>7.2} ms", ms(start));
    println!("  status     : {:>7.2} ms", ms(status));
    println!(
        "  difference : {:>7.2} ms (target ≤ 5 ms)",
        ms(status) - ms(start)
    );
}
