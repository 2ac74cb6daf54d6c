//! Benchmark `sync_bulk`: a first full load of N stock items into Magento through the real
//! `connector` binary against the in-process sandbox, once with the synchronous path (one
//! product save per item) and once with `--bulk` (Magento's asynchronous bulk API), with a
//! fixed latency on every Magento request. Prints records/s, Magento calls per record and the
//! ratio; asserts only that both runs delivered every item.
//!
//! Run: `cargo bench --bench sync_bulk` (ITEMS=N, default 5000; LATENCY_MS=L, default 20).
//!
//! Only the items flow runs (`--entity items`): prices and inventory use the same batch
//! endpoints either way. The sandbox's simulated consumer saves each bulk 100 ms after it was
//! accepted and a save itself costs nothing (`product_save_ms` 0), so the figure is what the
//! bulk API saves in round trips; on a real store each save still costs its PHP time, in the
//! consumer instead of the request.

use std::time::Instant;

use connector::sandbox::{Faults, Sandbox, SandboxOptions, config_file};
use serde_json::Value;

struct Figures {
    seconds: f64,
    delivered: u64,
    magento_calls: u64,
    per_route: Vec<(String, u64)>,
}

fn run(runtime: &tokio::runtime::Runtime, items: usize, latency_ms: u64, bulk: bool) -> Figures {
    let sandbox = runtime
        .block_on(Sandbox::start(SandboxOptions {
            items,
            orders: 0,
            ..SandboxOptions::default()
        }))
        .expect("the sandbox starts");
    let dir = tempfile::tempdir().unwrap();
    let receiver = config_file::free_loopback_port().unwrap();
    std::fs::write(
        dir.path().join("connector.toml"),
        config_file::render(&sandbox, receiver),
    )
    .unwrap();
    let connector = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_connector"))
            .current_dir(dir.path())
            .args(args)
            .env_remove("RUST_LOG")
            .output()
            .expect("connector runs");
        assert!(
            out.status.success(),
            "connector {args:?}: {:?}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    connector(&["init", "--yes"]);
    sandbox.magento.faults.set_faults(Faults {
        latency_ms,
        ..Faults::default()
    });
    let before = sandbox.magento.faults.total_requests();
    let before_routes = sandbox.magento.faults.request_counts();
    let mut args = vec!["sync", "--json", "--full", "--entity", "items"];
    if bulk {
        args.push("--bulk");
    }
    let start = Instant::now();
    let out = connector(&args);
    let seconds = start.elapsed().as_secs_f64();
    let report: Value = serde_json::from_str(out.trim()).expect("--json output");
    let delivered = report["entities"]["items"]["delivered"].as_u64().unwrap();
    assert_eq!(delivered, items as u64, "{report}");
    let per_route = sandbox
        .magento
        .faults
        .request_counts()
        .into_iter()
        .map(|(route, n)| {
            let earlier = before_routes.get(&route).copied().unwrap_or(0);
            (route, n - earlier)
        })
        .filter(|(_, n)| *n > 0)
        .collect();
    let magento_calls = sandbox.magento.faults.total_requests() - before;
    drop(sandbox);
    Figures {
        seconds,
        delivered,
        magento_calls,
        per_route,
    }
}

fn main() {
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let items = env("ITEMS", 5000) as usize;
    let latency_ms = env("LATENCY_MS", 20);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let synchronous = run(&runtime, items, latency_ms, false);
    let bulk = run(&runtime, items, latency_ms, true);
    println!(
        "sync_bulk: first full load of {items} items (sync --full --entity items), Magento latency {latency_ms} ms, max_concurrent_requests 8, bulk_size 100"
    );
    for (name, f) in [("synchronous", &synchronous), ("--bulk", &bulk)] {
        println!(
            "  {name:<12}: {:>8.1} records/s   {:>7.2} s   {:>6} Magento calls   {:.3} calls/record",
            f.delivered as f64 / f.seconds,
            f.seconds,
            f.magento_calls,
            f.magento_calls as f64 / f.delivered as f64
        );
        for (route, n) in &f.per_route {
            println!("                  {n:>6}  {route}");
        }
    }
    println!(
        "  ratio       : {:.1}x records/s, {:.0}x fewer Magento calls",
        synchronous.seconds / bulk.seconds,
        synchronous.magento_calls as f64 / bulk.magento_calls as f64
    );
}
