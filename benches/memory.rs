//! Benchmark `memory`: the peak RSS (the child's `VmHWM`) of a full `connector sync`
//! of the catalogue (items, prices, inventory) over 100,000 items, next to the same over
//! 1,000 items in the same run. Target: at most 2× (memory flat in the catalogue's size).
//! Prints its figures; asserts nothing.
//!
//! Run: `cargo bench --bench memory` (ITEMS=N, SMALL=M to change them). No latency, and a
//! licence of 60,000 requests/min: this bench is about memory, not pace.

mod common;

use common::{Env, Limits};
use connector::sandbox::SandboxOptions;

fn full_sync(items: usize) -> (i64, f64, String) {
    let limits = Limits {
        requests_per_minute: 60_000,
        ..Limits::standard()
    };
    let env = Env::start(
        SandboxOptions {
            items,
            orders: 0,
            ..SandboxOptions::default()
        },
        limits,
    );
    env.ok(&["init", "--yes"]);
    // ENTITIES=items,prices to measure some only.
    let entities = std::env::var("ENTITIES").unwrap_or_else(|_| "items,prices,inventory".into());
    let mut args = vec!["sync", "--json"];
    for e in entities.split(',') {
        args.extend(["--entity", e]);
    }
    let run = env.ok(&args);
    let e = &run.json()["entities"];
    let summary = format!(
        "items {} / prices {} / inventory {} delivered",
        e["items"]["delivered"], e["prices"]["delivered"], e["inventory"]["delivered"]
    );
    (run.max_rss_kib, run.elapsed.as_secs_f64(), summary)
}

fn main() {
    let large = common::env_or("ITEMS", 100_000);
    let small = common::env_or("SMALL", 1_000);
    let (small_rss, small_s, small_summary) = full_sync(small);
    let (large_rss, large_s, large_summary) = full_sync(large);
    println!(
        "memory: peak RSS of a full catalogue sync (items, prices, inventory) ({})",
        common::machine()
    );
    println!(
        "  {small:>7} items: {:>8.1} MiB peak RSS ({small_s:.1} s; {small_summary})",
        small_rss as f64 / 1024.0
    );
    println!(
        "  {large:>7} items: {:>8.1} MiB peak RSS ({large_s:.1} s; {large_summary})",
        large_rss as f64 / 1024.0
    );
    println!(
        "  ratio      : {:.2}x (target ≤ 2x)",
        large_rss as f64 / small_rss as f64
    );
}
