//! The crash test (issue 10, item 1): `connector sync` and `connector listen` killed with
//! SIGKILL at random points while a backlog (items, inventory, prices and shipments in
//! Acumatica, orders in Magento) is being delivered and Acumatica keeps changing, then clean
//! runs until idle. The sandbox's state must then say that nothing was lost or doubled:
//!
//! - every product, quantity and price in Magento equals Acumatica's final value;
//! - every Magento order is in Acumatica exactly once, with its grand total;
//! - every confirmed Acumatica shipment is in Magento exactly once;
//! - every push notification the listener acknowledged (the sandbox records each 2xx) is in
//!   the store and delivered (or skipped as superseded) — none lost;
//! - no Acumatica session open after the clean runs (the killed runs' sessions idle out);
//! - the store passes `PRAGMA integrity_check`.
//!
//! Seeded and bounded: `CRASH_SEED` (default: from the clock) drives every random choice,
//! `CRASH_KILLS` (default 20, the CI version; 50 or more for the long one) how many processes
//! are killed. A failure prints the seed and kills so it can be replayed:
//! `CRASH_SEED=… CRASH_KILLS=… cargo test --test crash`.
//! Budget: < 60 s with the default 20 kills (about 15 s on 2 cores).

mod util;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Child;
use std::time::{Duration, Instant};

use connector::sandbox::SandboxOptions;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};
use util::sandbox::SandboxEnv;

/// Prints how to replay the run when the test fails (a panic anywhere below).
struct ReplayHint {
    seed: u64,
    kills: u32,
}

impl Drop for ReplayHint {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "\ncrash test failed; replay with: CRASH_SEED={} CRASH_KILLS={} cargo test --test crash",
                self.seed, self.kills
            );
        }
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// SIGKILL (std's `Child::kill`); true when the process was still running.
fn kill(child: &mut Child) -> bool {
    let running = child.try_wait().expect("try_wait").is_none();
    child.kill().ok();
    child.wait().expect("wait");
    running
}

fn db(env: &SandboxEnv) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(env.dir.join("connector.db")).unwrap();
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    conn
}

fn list(v: &Value) -> Vec<Value> {
    v.as_array().cloned().unwrap_or_default()
}

/// What the run did, for the report and the docs.
#[derive(Default, Debug)]
struct Figures {
    sync_kills: u32,
    listener_kills: u32,
    syncs_finished_before_the_kill: u32,
    acumatica_changes: u32,
    orders_placed: u32,
    shipments: u32,
    clean_runs: u32,
    /// API requests the killed runs (and the listener's pushes' follow-ups) made.
    acumatica_requests_while_killing: u64,
    magento_requests_while_killing: u64,
}

/// One random change in Acumatica (a price, a quantity, a new shipment of an imported order)
/// or a new Magento order: each goes out as push notifications (or is read by a later run).
fn change(
    env: &SandboxEnv,
    rng: &mut StdRng,
    skus: &[String],
    shipped: &mut BTreeMap<String, String>,
    figures: &mut Figures,
) {
    let kind = rng.random_range(0..10);
    change_kind(env, rng, kind, skus, shipped, figures);
}

fn change_kind(
    env: &SandboxEnv,
    rng: &mut StdRng,
    kind: u32,
    skus: &[String],
    shipped: &mut BTreeMap<String, String>,
    figures: &mut Figures,
) {
    match kind {
        0..=3 => {
            let sku = &skus[rng.random_range(0..skus.len())];
            let price = rng.random_range(500..50_000) as f64 / 100.0;
            env.acumatica_control(&format!("items/{sku}"), json!({ "price": price }));
            figures.acumatica_changes += 1;
        }
        4..=6 => {
            let sku = &skus[rng.random_range(0..skus.len())];
            let qty = rng.random_range(0..2_000) as f64;
            env.acumatica_control(
                &format!("items/{sku}"),
                json!({"warehouses": {"RETAIL": {"qty_on_hand": qty, "qty_avail": qty}}}),
            );
            figures.acumatica_changes += 1;
        }
        7 => {
            // Ship (whole) an order the connector imported, once.
            let orders = list(&env.acumatica_state()["entities"]["sales_orders"]);
            let open: Vec<&Value> = orders
                .iter()
                .filter(|o| {
                    o["Status"] == "Open"
                        && o["CustomerOrder"].is_string()
                        && !shipped.contains_key(o["OrderNbr"].as_str().unwrap_or_default())
                })
                .collect();
            if let Some(order) = open.first() {
                let nbr = order["OrderNbr"].as_str().unwrap().to_string();
                let reply = env.acumatica_control(
                    "shipments",
                    json!({"order_nbr": nbr, "tracking_numbers": [format!("TRK-{nbr}")],
                           "ship_via": "UPS", "confirm": true}),
                );
                let shipment = reply["shipment_nbr"].as_str().unwrap().to_string();
                shipped.insert(nbr, shipment);
                figures.shipments += 1;
            }
        }
        _ => {
            let magento = env.magento_state();
            let simple: Vec<String> = list(&magento["products"])
                .iter()
                .filter(|p| p["type_id"] == "simple" && p["sku"].as_str().unwrap().contains('-'))
                .map(|p| p["sku"].as_str().unwrap().to_string())
                .collect();
            let sku = &simple[rng.random_range(0..simple.len())];
            env.magento_control(
                "orders",
                json!({"customer_id": rng.random_range(1..=2),
                       "items": [{"sku": sku, "qty": rng.random_range(1..=3)}]}),
            );
            figures.orders_placed += 1;
        }
    }
}

#[test]
fn sigkills_at_random_points_lose_and_double_nothing() {
    let seed = env_u64("CRASH_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            % 1_000_000_007
    });
    let kills = env_u64("CRASH_KILLS").unwrap_or(20) as u32;
    let _hint = ReplayHint { seed, kills };
    eprintln!("crash test: CRASH_SEED={seed} CRASH_KILLS={kills}");
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(seed);

    // Killed runs cannot sign out: their sessions hold licence slots until Acumatica's idle
    // timeout, scaled down here from ten minutes to one second, with a licence of ten API
    // users — otherwise most later runs would spend their time waiting for a slot (the Login
    // Limit has its own cell in tests/fault_matrix.rs) and most kills would hit a sign-in.
    let mut options = SandboxOptions {
        seed,
        items: 40,
        orders: 8,
        ..Default::default()
    };
    options.acumatica.session_idle_timeout_ms = 1_000;
    options.acumatica.max_sessions = 10;
    // No pacing worth the name: more work, and more kinds of work, between kills.
    options.acumatica.requests_per_minute = 60_000;
    let env = SandboxEnv::with_shared_skus(
        options,
        &[
            ("requests_per_minute = 600", "requests_per_minute = 30000"),
            ("batch_size = 100", "batch_size = 10"),
            // Many attempts: a record failing in every killed run must not go dead.
            ("max_attempts = 8", "max_attempts = 1000"),
        ],
        "\n[shipments]\nship_via = { UPS = \"ups\" }\n",
        &[],
    );
    let skus: Vec<String> = list(&env.acumatica_state()["entities"]["stock_items"])
        .iter()
        .map(|i| i["InventoryID"].as_str().unwrap().to_string())
        .collect();

    let mut figures = Figures::default();
    let mut shipped: BTreeMap<String, String> = BTreeMap::new();
    // The shipments backlog needs orders in Acumatica: import the seeded ones first (the
    // catalogue stays a backlog), then confirm shipments of half of them.
    env.connector(&["sync", "--entity", "customers", "--entity", "orders"])
        .expect_exit(0);
    for _ in 0..4 {
        let before = figures.shipments;
        change_kind(&env, &mut rng, 7, &skus, &mut shipped, &mut figures);
        assert_eq!(figures.shipments, before + 1, "an imported order to ship");
    }
    let mut listener = env.spawn_listener();
    let make_due = |env: &SandboxEnv| {
        db(env)
            .execute(
                "UPDATE messages SET next_attempt_at = '2000-01-01T00:00:00.000Z' WHERE status = 'failed'",
                [],
            )
            .unwrap();
    };

    let acumatica_before = env.acumatica_state()["requests"]["total"].as_u64().unwrap();
    let magento_before = env.magento_state()["total_requests"].as_u64().unwrap();
    let mut run_ms: u64 = 3_000;
    while figures.sync_kills + figures.listener_kills < kills {
        // Latency on both systems (sometimes none) so that calls are in flight when the kill
        // comes: a write may have happened with its reply never read.
        let latency = [0, 5, 20, 60][rng.random_range(0..4)];
        env.acumatica_control("faults", json!({ "latency_ms": latency }));
        env.magento_control("faults", json!({ "latency_ms": latency }));
        for _ in 0..rng.random_range(1..=6) {
            change(&env, &mut rng, &skus, &mut shipped, &mut figures);
        }
        make_due(&env);
        let mut sync = env.connector(&["sync"]).spawn_quiet();
        let spawned = Instant::now();
        // A random point inside a run: up to the length of the last run that finished.
        std::thread::sleep(Duration::from_millis(rng.random_range(0..run_ms)));
        // The listener, sometimes, while changes keep coming and the run goes on.
        if rng.random_range(0..3) == 0 {
            change(&env, &mut rng, &skus, &mut shipped, &mut figures);
            std::thread::sleep(Duration::from_millis(rng.random_range(0..50)));
            if kill(&mut listener) {
                figures.listener_kills += 1;
            }
            // Notifications sent meanwhile fail (and are retried by Acumatica, then left to
            // the batch path): not acknowledged, so not promised.
            change(&env, &mut rng, &skus, &mut shipped, &mut figures);
            listener = env.spawn_listener();
            std::thread::sleep(Duration::from_millis(rng.random_range(0..300)));
        }
        if kill(&mut sync) {
            figures.sync_kills += 1;
        } else {
            figures.syncs_finished_before_the_kill += 1;
            run_ms = (spawned.elapsed().as_millis() as u64).clamp(100, 3_000);
        }
    }

    figures.acumatica_requests_while_killing =
        env.acumatica_state()["requests"]["total"].as_u64().unwrap() - acumatica_before;
    figures.magento_requests_while_killing =
        env.magento_state()["total_requests"].as_u64().unwrap() - magento_before;

    // Clean runs until idle: no faults, the listener up, every failed record made due.
    env.acumatica_control("faults", json!({}));
    env.magento_control("faults", json!({}));
    // Pushes in flight settle (each is at most 5 quick attempts).
    std::thread::sleep(Duration::from_millis(500));
    let mut last = None;
    for _ in 0..10 {
        make_due(&env);
        let out = env.connector(&["sync", "--json"]).output();
        figures.clean_runs += 1;
        let idle = out.output.status.code() == Some(0) && env.undelivered().is_empty();
        last = Some(out);
        if idle {
            break;
        }
    }
    let last = last.unwrap();
    assert_eq!(
        last.output.status.code(),
        Some(0),
        "no clean run within 10\n{}\n{:?}",
        last.report(),
        env.undelivered()
    );
    assert!(env.undelivered().is_empty(), "{:?}", env.undelivered());
    kill(&mut listener);
    // The killed runs' sessions are gone once idle (the sandbox drops them when asked).
    std::thread::sleep(Duration::from_millis(1_100));

    // Catalogue, orders, customers, sessions.
    env.assert_converged();

    // Every confirmed shipment exactly once in Magento.
    let magento = env.magento_state();
    let titles: Vec<String> = list(&magento["shipments"])
        .iter()
        .flat_map(|s| list(&s["tracks"]))
        .filter_map(|t| t["title"].as_str().map(String::from))
        .collect();
    for (order, shipment) in &shipped {
        let title = format!("Acumatica shipment {shipment}");
        let n = titles.iter().filter(|t| **t == title).count();
        assert_eq!(
            n, 1,
            "shipment {shipment} of order {order} is in Magento {n} times: {titles:?}"
        );
    }
    assert_eq!(
        list(&magento["shipments"]).len(),
        shipped.len(),
        "no other shipment in Magento"
    );

    // Every acknowledged notification is in the store, and delivered (or superseded).
    let acumatica = env.acumatica_state();
    let acked = list(&acumatica["acknowledged_notifications"]);
    assert!(!acked.is_empty(), "no notification was acknowledged");
    let conn = db(&env);
    let mut statuses: BTreeSet<String> = BTreeSet::new();
    for n in &acked {
        let prefix = format!(
            "push|{}|{}|%",
            n["query"].as_str().unwrap(),
            n["id"].as_str().unwrap()
        );
        let rows: Vec<String> = conn
            .prepare("SELECT status FROM messages WHERE dedupe_key LIKE ?1")
            .unwrap()
            .query_map([&prefix], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let rows_in_body = n["inserted"].as_u64().unwrap() + n["deleted"].as_u64().unwrap();
        assert!(
            rows_in_body == 0 || !rows.is_empty(),
            "acknowledged notification {n} is not in the store"
        );
        for s in &rows {
            assert!(
                s == "delivered" || s == "skipped",
                "notification {n}: a message is {s}"
            );
            statuses.insert(s.clone());
        }
    }

    // The store is intact.
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");

    let sessions = &acumatica["sessions"];
    eprintln!(
        "crash test passed in {:?}: seed {seed}, {figures:?}, {} notifications acknowledged \
         ({} push attempts, {} failed for good and left to the batch path), {} orders, \
         sessions {sessions}",
        started.elapsed(),
        acked.len(),
        acumatica["push_attempts"],
        list(&acumatica["failed_notifications"]).len(),
        list(&magento["orders"]).len(),
    );
}
