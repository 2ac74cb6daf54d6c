//! `connector sync` (Acumatica → Magento: items, prices, inventory) through the real binary
//! against the in-process sandbox (issue 6, item 5). Small catalogues and no sandbox latency
//! keep the suite fast; every test ends by checking that no Acumatica licence limit was
//! exceeded.

mod util;

use std::process::Child;
use std::time::{Duration, Instant};

use connector::sandbox::SandboxOptions;
use connector::store::{NewMessage, Store};
use serde_json::{Value, json};
use util::sandbox::{SandboxEnv, on_hand};

const PRICES: &str = "POST /magento/rest/{store}/V1/products/base-prices";
const SOURCE_ITEMS: &str = "POST /magento/rest/{store}/V1/inventory/source-items";
const PRODUCT_PUT: &str = "PUT /magento/rest/{store}/V1/products/{sku}";

/// A sandbox with `items` stock items and an initialized connector; `config` edits the
/// generated connector.toml (from, to).
fn started(items: usize, config: &[(&str, &str)]) -> SandboxEnv {
    // No seeded Magento orders: this file is about the catalogue flows (see SandboxEnv::start).
    let env = SandboxEnv::with(SandboxOptions {
        items,
        orders: 0,
        ..Default::default()
    });
    if !config.is_empty() {
        let path = env.dir.join("connector.toml");
        let mut text = std::fs::read_to_string(&path).unwrap();
        for (from, to) in config {
            assert!(text.contains(from), "config lacks {from}");
            text = text.replacen(from, to, 1);
        }
        std::fs::write(&path, text).unwrap();
    }
    env.connector(&["init", "--yes"]).expect_exit(0);
    env
}

/// `connector sync --json ARGS…`, expecting `code`; the JSON report.
fn sync(env: &SandboxEnv, args: &[&str], code: i32) -> Value {
    let mut all = vec!["sync", "--json"];
    all.extend_from_slice(args);
    let out = env.connector(&all).expect_exit(code);
    serde_json::from_str(out.stdout().trim())
        .unwrap_or_else(|e| panic!("--json output is not JSON ({e})\n{}", out.report()))
}

/// Every sync run asks Magento for new orders and customers (the flows to Acumatica); these
/// reads are not catalogue work, so `magento_calls(env, None)` leaves them out.
const FROM_MAGENTO_READS: [&str; 2] = [
    "GET /magento/rest/{store}/V1/orders",
    "GET /magento/rest/{store}/V1/customers/search",
];

/// How many requests Magento counted on `route` (when `None`: all but the order and
/// customer reads of the flows from Magento).
fn magento_calls(env: &SandboxEnv, route: Option<&str>) -> u64 {
    let state = env.magento_state();
    let on = |r: &str| state["requests"][r].as_u64().unwrap_or(0);
    match route {
        None => {
            let reads: u64 = FROM_MAGENTO_READS.iter().map(|r| on(r)).sum();
            state["total_requests"].as_u64().unwrap() - reads
        }
        Some(r) => on(r),
    }
}

fn product(env: &SandboxEnv, sku: &str) -> Value {
    env.magento_state()["products"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["sku"] == sku)
        .cloned()
        .unwrap_or(Value::Null)
}

fn edit_item(env: &SandboxEnv, id: &str, body: Value) {
    env.acumatica_control(&format!("items/{id}"), body);
}

/// Every Acumatica stock item is in Magento with its price, on-hand total and status.
fn assert_magento_equals_acumatica(env: &SandboxEnv) {
    for (item, p) in env.stock_items_with_products() {
        let sku = item["InventoryID"].as_str().unwrap();
        assert_eq!(
            p["price"].as_f64(),
            item["DefaultPrice"].as_f64(),
            "{sku} price"
        );
        // An item in no warehouse has no inventory row, so no source item either.
        assert_eq!(
            p["qty_per_source"]["default"].as_f64().unwrap_or(0.0),
            on_hand(&item),
            "{sku} qty"
        );
        assert_eq!(p["status"], 1, "{sku} status");
    }
}

/// No Acumatica licence limit was exceeded, and every session was signed out.
fn assert_within_limits(env: &SandboxEnv) {
    let sessions = assert_no_limit_violation(env);
    assert_eq!(
        sessions["open_sessions"], 0,
        "every session signed out: {sessions}"
    );
}

fn assert_no_limit_violation(env: &SandboxEnv) -> Value {
    let sessions = env.acumatica_state()["sessions"].clone();
    assert_eq!(sessions["limit_violations"], 0, "{sessions}");
    sessions
}

fn counts(report: &Value, entity: &str) -> Value {
    report["entities"][entity].clone()
}

fn store(env: &SandboxEnv) -> Store {
    Store::open(&env.dir.join("connector.db")).unwrap()
}

/// Queues a message as the receiver or the batch path would.
fn enqueue(
    env: &SandboxEnv,
    entity: &'static str,
    key: &str,
    version: &str,
    op: &'static str,
    row: Value,
) {
    let message = NewMessage {
        direction: "to_magento",
        entity,
        natural_key: key.into(),
        version: version.into(),
        dedupe_key: format!("test|{entity}|{key}|{version}|{op}"),
        operation: op,
        payload: row.to_string(),
    };
    store(env)
        .enqueue_collected(entity, &[message], None)
        .unwrap();
}

/// A price change as the push path queues it.
fn price_message(sku: &str, version: &str, price: f64) -> NewMessage {
    NewMessage {
        direction: "to_magento",
        entity: "prices",
        natural_key: sku.into(),
        version: version.into(),
        dedupe_key: format!("test|prices|{sku}|{version}"),
        operation: "upsert",
        payload: json!({"InventoryID": sku, "BasePrice": price}).to_string(),
    }
}

/// The batch path of `entity` still runs but finds nothing: its watermark is in the future
/// and no catch-up read is pending. Only what a test queues is delivered.
fn quiet_batch_read(env: &SandboxEnv, entity: &str) {
    let s = store(env);
    s.set_cursor(entity, "2099-01-01T00:00:00.000Z").unwrap();
    s.close_catch_ups(entity).unwrap();
}

/// `connector listen` in the background, ready to accept.
struct Listener(Child);

impl Listener {
    fn start(env: &SandboxEnv) -> Listener {
        Listener(env.spawn_listener())
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until the store holds `n` messages for (entity, key) (the receiver committed them).
fn wait_for_messages(env: &SandboxEnv, entity: &str, key: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = store(env).messages_for(entity, key).unwrap();
        if got.len() >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {got:?} arrived for {entity} {key}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_batch_path_delivers_changes_and_unchanged_items_cost_no_magento_call() {
    let env = started(30, &[("batch_size = 100", "batch_size = 10")]);
    let first = sync(&env, &[], 0);
    // --json shape: run id, state, per-entity counts.
    assert!(first["run_id"].as_i64().is_some(), "{first}");
    assert_eq!(first["state"], "active");
    assert_eq!(first["dry_run"], false);
    for entity in ["items", "prices", "inventory"] {
        let c = counts(&first, entity);
        for key in [
            "collected",
            "delivered",
            "skipped",
            "failed",
            "dead",
            "held",
            "would_send",
        ] {
            assert!(c[key].is_u64(), "{entity}.{key} in {first}");
        }
    }
    assert_eq!(counts(&first, "items")["delivered"], 30);
    // New products: one search for the 30 SKUs (not a GET each), then one save each.
    assert_eq!(
        magento_calls(&env, Some("GET /magento/rest/{store}/V1/products/{sku}")),
        0
    );
    assert_eq!(magento_calls(&env, Some(PRODUCT_PUT)), 30);
    // Batches of 10: 30 prices and 30 quantities in 3 calls each.
    assert_eq!(magento_calls(&env, Some(PRICES)), 3);
    assert_eq!(magento_calls(&env, Some(SOURCE_ITEMS)), 3);
    assert_magento_equals_acumatica(&env);

    // Nothing changed: not one Magento call.
    let before = magento_calls(&env, None);
    let second = sync(&env, &[], 0);
    assert_eq!(magento_calls(&env, None), before, "{second}");
    assert_eq!(counts(&second, "items")["delivered"], 0);

    // One item changed in Acumatica: found by the batch path, one product save, one price call.
    edit_item(
        &env,
        "SB00002",
        json!({"price": 12.5, "weight": 2.25, "description": "Renamed in ERP"}),
    );
    let third = sync(&env, &[], 0);
    assert_eq!(counts(&third, "items")["delivered"], 1, "{third}");
    assert_eq!(magento_calls(&env, Some(PRICES)), 4);
    let p = product(&env, "SB00002");
    assert_eq!(p["price"], 12.5);
    assert_eq!(p["weight"], 2.25);
    // The name is create-only by default.
    assert_ne!(p["name"], "Renamed in ERP");
    assert_magento_equals_acumatica(&env);
    assert_within_limits(&env);
}

#[test]
fn a_pushed_change_reaches_magento_and_three_changes_cost_one_call() {
    let env = started(3, &[]);
    sync(&env, &[], 0);
    let _listener = Listener::start(&env);
    // Blind the batch path (a watermark past every change): what arrives now can only have
    // come through the receiver.
    for entity in ["items", "prices", "inventory"] {
        store(&env)
            .set_cursor(entity, "2099-01-01T00:00:00.000Z")
            .unwrap();
    }

    edit_item(&env, "SB00001", json!({"price": 10.0}));
    wait_for_messages(&env, "prices", "SB00001", 1);
    let prices_before = magento_calls(&env, Some(PRICES));
    let report = sync(&env, &["--entity", "prices"], 0);
    assert_eq!(counts(&report, "prices")["delivered"], 1, "{report}");
    assert_eq!(counts(&report, "prices")["collected"], 0, "{report}");
    assert_eq!(product(&env, "SB00001")["price"], 10.0);
    assert_eq!(magento_calls(&env, Some(PRICES)), prices_before + 1);
    let statuses: Vec<String> = store(&env)
        .messages_for("prices", "SB00001")
        .unwrap()
        .into_iter()
        .map(|(_, _, s)| s)
        .collect();
    assert!(statuses.contains(&"delivered".to_string()), "{statuses:?}");

    // Three changes of one item before a run: one call, the newest value.
    let n = store(&env).messages_for("prices", "SB00003").unwrap().len();
    for price in [21.0, 22.0, 23.0] {
        edit_item(&env, "SB00003", json!({"price": price}));
        std::thread::sleep(Duration::from_millis(5));
    }
    wait_for_messages(&env, "prices", "SB00003", n + 3);
    let prices_before = magento_calls(&env, Some(PRICES));
    let puts_before = magento_calls(&env, Some(PRODUCT_PUT));
    let report = sync(&env, &[], 0);
    assert_eq!(
        magento_calls(&env, Some(PRICES)),
        prices_before + 1,
        "{report}"
    );
    assert_eq!(product(&env, "SB00003")["price"], 23.0);
    // The price is not an items field: the item's unchanged payload costs no product save.
    assert_eq!(
        magento_calls(&env, Some(PRODUCT_PUT)),
        puts_before,
        "{report}"
    );
    assert!(
        counts(&report, "prices")["skipped"].as_u64().unwrap() >= 2,
        "{report}"
    );

    // Three weight changes of one item: one product save, the newest weight.
    let n = store(&env).messages_for("items", "SB00002").unwrap().len();
    for weight in [1.25, 2.25, 3.25] {
        edit_item(&env, "SB00002", json!({"weight": weight}));
        std::thread::sleep(Duration::from_millis(5));
    }
    wait_for_messages(&env, "items", "SB00002", n + 3);
    let report = sync(&env, &["--entity", "items"], 0);
    assert_eq!(
        magento_calls(&env, Some(PRODUCT_PUT)),
        puts_before + 1,
        "{report}"
    );
    assert_eq!(product(&env, "SB00002")["weight"], 3.25);
    assert_within_limits(&env);
}

#[test]
fn a_stale_batch_read_after_a_delivered_push_sends_nothing() {
    let env = started(2, &[]);
    sync(&env, &[], 0);
    edit_item(&env, "SB00001", json!({"price": 40.0}));
    sync(&env, &[], 0);
    assert_eq!(product(&env, "SB00001")["price"], 40.0);
    // An OData read taken before that change, arriving late with the old price.
    let row = json!({"InventoryID": "SB00001", "BasePrice": 1.0});
    enqueue(
        &env,
        "prices",
        "SB00001",
        "2020-01-01T00:00:00.000Z",
        "upsert",
        row,
    );
    let before = magento_calls(&env, None);
    let report = sync(&env, &["--entity", "prices"], 0);
    assert_eq!(magento_calls(&env, None), before, "{report}");
    assert_eq!(counts(&report, "prices")["skipped"], 1);
    assert_eq!(product(&env, "SB00001")["price"], 40.0);
    assert_within_limits(&env);
}

#[test]
fn a_partially_failing_price_batch_fails_only_its_bad_items() {
    let env = started(4, &[]);
    sync(&env, &[], 0);
    // A new item (not in Magento yet), a negative price, and a good change.
    edit_item(
        &env,
        "NEW0001",
        json!({"price": 5.0, "description": "New", "weight": 1.0}),
    );
    edit_item(&env, "SB00001", json!({"price": -5.0}));
    edit_item(&env, "SB00002", json!({"price": 77.0}));
    let report = sync(&env, &["--entity", "prices"], 3);
    let c = counts(&report, "prices");
    assert_eq!(c["failed"], 2, "{report}");
    assert_eq!(c["delivered"], 1, "{report}");
    assert_eq!(product(&env, "SB00002")["price"], 77.0);
    assert_ne!(product(&env, "SB00001")["price"], -5.0);
    assert!(
        product(&env, "NEW0001").is_null(),
        "--entity prices writes no product"
    );
    // The run is recorded with its outcome and counts.
    let last = store(&env).last_run().unwrap().expect("a run record");
    assert_eq!(Some(last.id), report["run_id"].as_i64());
    assert_eq!(last.outcome.as_deref(), Some("partial"));
    assert!(last.finished_at.is_some());
    assert_eq!(last.counts["prices"]["failed"], 2, "{:?}", last.counts);
    assert_within_limits(&env);
}

#[test]
fn the_input_limit_is_detected_and_respected() {
    let env = started(45, &[]);
    env.magento_control("faults", json!({"input_limit": true}));
    let report = sync(&env, &[], 0);
    assert_eq!(counts(&report, "prices")["delivered"], 45, "{report}");
    assert_eq!(counts(&report, "inventory")["delivered"], 90, "{report}");
    // The first batch flow: one refused batch of 45, then 20 + 20 + 5. The second, later in
    // the same run, starts at 20: no refused batch.
    let calls = [
        magento_calls(&env, Some(PRICES)),
        magento_calls(&env, Some(SOURCE_ITEMS)),
    ];
    assert_eq!(calls.iter().sum::<u64>(), 7, "{calls:?}");
    assert_eq!(calls.iter().min(), Some(&3), "{calls:?}");
    assert_magento_equals_acumatica(&env);

    // A store that sets its own, lower limit: the refusal states it and it is used.
    env.magento_control(
        "faults",
        json!({"input_limit": true, "input_list_limit": 10}),
    );
    // One refused batch of 45, then 10 + 10 + 10 + 10 + 5.
    assert_eq!(price_change_calls(&env, 45), 6);
    assert_magento_equals_acumatica(&env);
    assert_within_limits(&env);
}

/// Changes every price in Acumatica, syncs prices (all `items` delivered) and returns the
/// base-price calls it took.
fn price_change_calls(env: &SandboxEnv, items: u64) -> u64 {
    env.acumatica_control("mass-price-update", json!({"factor": 1.1}));
    let before = magento_calls(env, Some(PRICES));
    let report = sync(env, &["--entity", "prices"], 0);
    assert_eq!(counts(&report, "prices")["delivered"], items, "{report}");
    magento_calls(env, Some(PRICES)) - before
}

/// The facts the store keeps about the remote systems (`learned`), by name.
fn learned(env: &SandboxEnv) -> Vec<(String, String)> {
    let conn = rusqlite::Connection::open(env.dir.join("connector.db")).unwrap();
    let mut stmt = conn
        .prepare("SELECT name, value FROM learned ORDER BY name")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// A batch size Magento accepted is kept for the next runs, whose first batches then go side
/// by side instead of one going alone to find out; a refusal by the store's input limit
/// forgets it, and the run after probes again.
#[test]
fn the_batch_size_magento_accepted_is_kept_and_an_input_limit_forgets_it() {
    let env = started(45, &[("batch_size = 100", "batch_size = 20")]);
    let report = sync(&env, &[], 0);
    assert_eq!(counts(&report, "prices")["delivered"], 45, "{report}");
    let kept = learned(&env);
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(
        kept[0].0.starts_with("magento.batch_size_passed "),
        "{kept:?}"
    );
    assert_eq!(kept[0].1, "20");

    // The store lowers its limit to 10. Batches of 20 are known to pass, so the first wave
    // (20, 20, 5) goes at once: two refused, then 10 × 4. Probing would have cost 6 calls.
    env.magento_control(
        "faults",
        json!({"input_limit": true, "input_list_limit": 10}),
    );
    assert_eq!(price_change_calls(&env, 45), 7);
    assert_eq!(learned(&env), vec![], "the refusal forgot the size");

    // Forgotten: the next run's first batch goes alone — one refused batch of 20, then 10s.
    assert_eq!(price_change_calls(&env, 45), 6);
    assert_magento_equals_acumatica(&env);
    assert_within_limits(&env);
}

#[test]
fn pause_holds_everything_and_activate_releases_it() {
    let env = started(3, &[]);
    sync(&env, &[], 0);
    let _listener = Listener::start(&env);
    env.connector(&["deactivate", "--pause", "--yes"])
        .expect_exit(0);
    edit_item(
        &env,
        "SB00001",
        json!({"price": 33.0, "weight": 3.5,
        "warehouses": {"RETAIL": {"qty_on_hand": 9.0, "qty_avail": 9.0}}}),
    );
    wait_for_messages(&env, "prices", "SB00001", 2);
    let before = magento_calls(&env, None);
    let report = sync(&env, &[], 0);
    assert_eq!(report["state"], "paused");
    assert_eq!(
        magento_calls(&env, None),
        before,
        "paused: nothing written: {report}"
    );
    // The batch path's rows are kept as well, and the pushed messages stay held.
    assert!(
        counts(&report, "prices")["held"].as_u64().unwrap() >= 1,
        "{report}"
    );
    let statuses: Vec<String> = store(&env)
        .messages_for("prices", "SB00001")
        .unwrap()
        .into_iter()
        .skip(1) // the first run's
        .map(|(_, _, s)| s)
        .collect();
    assert!(statuses.iter().all(|s| s == "held"), "{statuses:?}");
    env.connector(&["activate", "--yes"]).expect_exit(0);
    sync(&env, &[], 0);
    let p = product(&env, "SB00001");
    assert_eq!(p["price"], 33.0);
    assert_eq!(p["weight"], 3.5);
    assert_magento_equals_acumatica(&env);
    assert_within_limits(&env);
}

#[test]
fn a_second_concurrent_sync_exits_4() {
    let env = started(1, &[]);
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(env.dir.join("connector.db.lock"))
        .unwrap();
    lock.try_lock().unwrap();
    let out = env.connector(&["sync"]).expect_exit(4);
    out.one_line_error();
    drop(lock);
    sync(&env, &[], 0);
}

#[test]
fn a_sigkill_mid_run_then_a_clean_run_leaves_magento_equal_to_acumatica() {
    let env = started(25, &[("batch_size = 100", "batch_size = 5")]);
    env.magento_control("faults", json!({"latency_ms": 40}));
    let mut child = env.connector(&["sync"]).spawn_quiet();
    let deadline = Instant::now() + Duration::from_secs(20);
    while magento_calls(&env, Some(PRODUCT_PUT)) < 5 {
        assert!(Instant::now() < deadline, "the run made no product saves");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    env.magento_control("faults", json!({}));
    sync(&env, &[], 0);
    assert_magento_equals_acumatica(&env);
    // The killed run could not sign out: its session stays open until Acumatica times it
    // out (DESIGN.md section 6); the clean run must still have kept within the limits.
    let sessions = assert_no_limit_violation(&env);
    assert!(
        sessions["open_sessions"].as_u64().unwrap() <= 1,
        "{sessions}"
    );
}

#[test]
fn with_a_20_percent_error_rate_a_few_runs_converge() {
    let env = started(12, &[]);
    env.magento_control("faults", json!({"error_rate": 0.2}));
    env.acumatica_control("faults", json!({"error_rate": 0.2}));
    let mut done = false;
    for _ in 0..4 {
        let out = env.connector(&["sync", "--json"]).output();
        if out.output.status.code() == Some(0) {
            done = true;
            break;
        }
    }
    for i in 1..=12 {
        edit_item(
            &env,
            &format!("SB{i:05}"),
            json!({"price": 100.0 + i as f64}),
        );
    }
    for _ in 0..4 {
        let out = env.connector(&["sync", "--json"]).output();
        done = out.output.status.code() == Some(0);
        if done {
            break;
        }
    }
    assert!(done, "runs did not converge");
    let injected = env.magento_state()["injected"].clone();
    assert!(
        injected.as_object().is_some_and(|o| !o.is_empty()),
        "faults were injected: {injected}"
    );
    env.magento_control("faults", json!({}));
    env.acumatica_control("faults", json!({}));
    assert_magento_equals_acumatica(&env);
    assert_within_limits(&env);
}

#[test]
fn dry_run_sends_nothing_and_changes_no_state() {
    let env = started(3, &[]);
    // Before the first run: everything would be sent, nothing fails, nothing is written.
    let report = sync(&env, &["--dry-run"], 0);
    assert_eq!(report["run_id"], Value::Null);
    assert_eq!(counts(&report, "items")["would_send"], 3, "{report}");
    assert_eq!(counts(&report, "prices")["would_send"], 3, "{report}");
    assert_eq!(counts(&report, "inventory")["would_send"], 6, "{report}");
    assert!(product(&env, "SB00001").is_null());
    sync(&env, &[], 0);
    edit_item(&env, "SB00001", json!({"price": 55.0, "weight": 5.5}));
    let cursors = || {
        let s = store(&env);
        ["items", "prices", "inventory"].map(|e| s.cursor(e).unwrap())
    };
    let cursors_before = cursors();
    let writes = || {
        let state = env.magento_state();
        state["requests"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| !k.starts_with("GET "))
            .map(|(_, v)| v.as_u64().unwrap())
            .sum::<u64>()
    };
    let before = writes();
    let report = sync(&env, &["--dry-run"], 0);
    assert_eq!(report["dry_run"], true);
    assert_eq!(writes(), before, "{report}");
    assert_eq!(counts(&report, "prices")["would_send"], 1, "{report}");
    assert_eq!(counts(&report, "items")["would_send"], 1, "{report}");
    assert_eq!(
        store(&env).messages_for("prices", "SB00001").unwrap().len(),
        1,
        "nothing queued"
    );
    assert_eq!(cursors(), cursors_before, "no watermark moved");
    // The change is still delivered by the next real run.
    let report = sync(&env, &[], 0);
    assert_eq!(counts(&report, "prices")["delivered"], 1, "{report}");
    assert_eq!(product(&env, "SB00001")["price"], 55.0);
    assert_within_limits(&env);
}

#[test]
fn entity_limit_and_full() {
    let env = started(4, &[]);
    sync(&env, &["--entity", "items"], 0);
    assert_eq!(magento_calls(&env, Some(PRICES)), 0);
    assert_eq!(magento_calls(&env, Some(SOURCE_ITEMS)), 0);
    let report = sync(&env, &["--entity", "prices", "--limit", "3"], 0);
    assert_eq!(counts(&report, "prices")["delivered"], 3, "{report}");
    assert!(report["entities"].get("items").is_none(), "{report}");
    let report = sync(&env, &["--entity", "prices", "--limit", "3"], 0);
    assert_eq!(counts(&report, "prices")["delivered"], 1, "{report}");
    sync(&env, &[], 0);
    // A change the watermark passed over (as a clock skew could): only --full finds it.
    store(&env)
        .set_cursor("prices", "2099-01-01T00:00:00.000Z")
        .unwrap();
    edit_item(&env, "SB00004", json!({"price": 4.44}));
    let report = sync(&env, &["--entity", "prices"], 0);
    assert_eq!(counts(&report, "prices")["delivered"], 0, "{report}");
    let report = sync(&env, &["--entity", "prices", "--full"], 0);
    assert_eq!(counts(&report, "prices")["delivered"], 1, "{report}");
    assert_eq!(product(&env, "SB00004")["price"], 4.44);
    assert_within_limits(&env);
}

#[test]
fn merchandiser_edits_survive_and_existing_products_are_linked() {
    let env = started(2, &[]);
    // SB-0001 exists in Magento before the first run (seeded); Acumatica gets the same SKU.
    edit_item(
        &env,
        "SB-0001",
        json!({"price": 8.0, "description": "ERP name", "weight": 1.5}),
    );
    let id_before = product(&env, "SB-0001")["id"].clone();
    let products_before = env.magento_state()["products"].as_array().unwrap().len();
    sync(&env, &[], 0);
    let p = product(&env, "SB-0001");
    assert_eq!(p["id"], id_before, "linked, not re-created");
    assert_eq!(
        p["name"], "Compact Headlamp",
        "an existing product keeps its name"
    );
    assert_eq!(p["url_key"], "compact-headlamp-sb-0001");
    assert_eq!(p["weight"], 1.5);
    assert_eq!(
        env.magento_state()["products"].as_array().unwrap().len(),
        products_before + 2
    );

    env.magento_control(
        "products/SB00001",
        json!({"name": "Merchandised", "description": "<p>Copy</p>"}),
    );
    edit_item(
        &env,
        "SB00001",
        json!({"description": "ERP rename", "weight": 9.75}),
    );
    sync(&env, &[], 0);
    let p = product(&env, "SB00001");
    assert_eq!(p["name"], "Merchandised");
    assert_eq!(p["global"]["description"], "<p>Copy</p>");
    assert_eq!(p["weight"], 9.75);
    assert_within_limits(&env);
}

#[test]
fn a_delete_candidate_disables_only_what_acumatica_no_longer_has() {
    let env = started(2, &[]);
    sync(&env, &[], 0);
    let row = json!({"InventoryID": "SB00001"});
    enqueue(
        &env,
        "items",
        "SB00001",
        "2030-01-01T00:00:00.000Z",
        "delete",
        row,
    );
    // SB-0002 exists in Magento only: gone from Acumatica.
    let row = json!({"InventoryID": "SB-0002"});
    enqueue(
        &env,
        "items",
        "SB-0002",
        "2030-01-01T00:00:00.000Z",
        "delete",
        row,
    );
    sync(&env, &["--entity", "items"], 0);
    assert_eq!(
        product(&env, "SB00001")["status"],
        1,
        "still in Acumatica: left enabled"
    );
    assert_eq!(
        product(&env, "SB-0002")["status"],
        2,
        "gone from Acumatica: disabled"
    );
    assert_within_limits(&env);
}

#[test]
fn legacy_stock_sums_only_the_configured_warehouses_of_the_available_quantity() {
    let env = started(
        2,
        &[
            ("inventory_api = \"msi\"", "inventory_api = \"legacy\""),
            (
                "[entities]",
                "[inventory]\nwarehouses = [\"RETAIL\"]\n\n[entities]",
            ),
        ],
    );
    edit_item(
        &env,
        "SB00001",
        json!({"warehouses": {"RETAIL": {"qty_on_hand": 9.0, "qty_avail": 7.0},
                              "WHOLESALE": {"qty_on_hand": 50.0, "qty_avail": 50.0}}}),
    );
    sync(&env, &[], 0);
    assert_eq!(magento_calls(&env, Some(SOURCE_ITEMS)), 0);
    assert_eq!(
        magento_calls(
            &env,
            Some("PUT /magento/rest/{store}/V1/products/{sku}/stockItems/{item_id}")
        ),
        2
    );
    let p = product(&env, "SB00001");
    assert_eq!(p["qty"], 7.0, "available, RETAIL only: {p}");
    assert_within_limits(&env);
}

#[test]
fn exit_codes_follow_the_life_cycle_and_dead_records() {
    // Not initialized: exit 2, one line.
    let env = SandboxEnv::with(SandboxOptions {
        items: 2,
        orders: 0,
        ..Default::default()
    });
    env.connector(&["sync"]).expect_exit(2).one_line_error();

    let path = env.dir.join("connector.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("max_attempts = 8", "max_attempts = 1")).unwrap();
    env.connector(&["init", "--yes"]).expect_exit(0);
    sync(&env, &[], 0);
    // One try allowed: a refused price is dead at once, exit 3.
    edit_item(&env, "SB00001", json!({"price": -1.0}));
    let report = sync(&env, &[], 3);
    assert_eq!(counts(&report, "prices")["dead"], 1, "{report}");
    assert_eq!(counts(&report, "prices")["failed"], 0, "{report}");
    // Dead is not retried: the next run has nothing to do and succeeds.
    let before = magento_calls(&env, Some(PRICES));
    sync(&env, &[], 0);
    assert_eq!(magento_calls(&env, Some(PRICES)), before);

    // Stopped: nothing, said so, exit 0; a change made while stopped is caught up after
    // activate.
    env.connector(&["deactivate", "--stop", "--yes"])
        .expect_exit(0);
    edit_item(&env, "SB00002", json!({"price": 62.0}));
    let before = magento_calls(&env, None);
    let report = sync(&env, &[], 0);
    assert_eq!(report["state"], "stopped");
    assert!(
        report["note"]
            .as_str()
            .is_some_and(|n| n.contains("stopped")),
        "{report}"
    );
    assert_eq!(magento_calls(&env, None), before);
    env.connector(&["activate", "--yes"]).expect_exit(0);
    sync(&env, &[], 0);
    assert_eq!(product(&env, "SB00002")["price"], 62.0);
    assert_within_limits(&env);
}

#[test]
fn a_new_product_whose_url_key_is_taken_is_still_created() {
    let env = started(1, &[]);
    // Magento's seeded SB-0001 "Compact Headlamp" holds url_key compact-headlamp-sb-0001; a new
    // Acumatica item "SB 0001" with the same name slugs to the same key.
    edit_item(
        &env,
        "SB 0001",
        json!({"price": 3.0, "description": "Compact Headlamp", "weight": 1.0}),
    );
    sync(&env, &[], 0);
    let p = product(&env, "SB 0001");
    assert_eq!(p["name"], "Compact Headlamp", "{p}");
    assert_ne!(p["url_key"], product(&env, "SB-0001")["url_key"]);
    assert_magento_equals_acumatica(&env);
    assert_within_limits(&env);
}

#[test]
fn refused_credentials_halt_the_run_with_exit_1_and_charge_no_attempt() {
    // One attempt allowed: a record charged for the 401 would be dead at once.
    let env = started(3, &[("max_attempts = 8", "max_attempts = 1")]);
    let path = env.dir.join("connector.toml");
    let good = std::fs::read_to_string(&path).unwrap();
    let token = good
        .lines()
        .find(|l| l.starts_with("access_token"))
        .unwrap()
        .to_string();
    std::fs::write(&path, good.replace(&token, "access_token = \"revoked\"")).unwrap();
    let before = magento_calls(&env, None);
    let out = env.connector(&["sync"]).expect_exit(1);
    out.one_line_error().stderr_has("token was revoked");
    // Every record of the run shares the failure: a handful of calls, no batch splitting.
    assert!(
        magento_calls(&env, None) - before <= 3,
        "{}",
        env.magento_state()["requests"]
    );
    assert_eq!(
        store(&env).last_run().unwrap().unwrap().outcome.as_deref(),
        Some("failed")
    );

    std::fs::write(&path, good).unwrap();
    let report = sync(&env, &[], 0);
    assert_eq!(counts(&report, "items")["delivered"], 3, "{report}");
    assert_magento_equals_acumatica(&env);
    assert_within_limits(&env);
}

#[test]
fn item_statuses_enable_what_acumatica_sells_and_disable_the_rest() {
    let env = started(4, &[]);
    sync(&env, &[], 0);
    edit_item(&env, "SB00001", json!({"status": "Inactive"}));
    edit_item(&env, "SB00002", json!({"status": "No Request"}));
    edit_item(&env, "SB00003", json!({"status": "No Sales"}));
    edit_item(&env, "SB00004", json!({"status": "No Purchases"}));
    let report = sync(&env, &["--entity", "items"], 0);
    // Only the two that leave sale change the product; the sellable ones stay unchanged.
    assert_eq!(counts(&report, "items")["delivered"], 2, "{report}");
    assert_eq!(counts(&report, "items")["skipped"], 2, "{report}");
    let status = |sku| product(&env, sku)["status"].as_u64();
    assert_eq!(
        [
            status("SB00001"),
            status("SB00002"),
            status("SB00003"),
            status("SB00004")
        ],
        [Some(2), Some(1), Some(2), Some(1)]
    );
    assert_within_limits(&env);
}

#[test]
fn a_run_killed_between_odata_pages_loses_no_row() {
    // 600 items: the items inquiry comes in two pages of 500 and 100. Without overlap, a
    // watermark stored with the first page would hide the second page's rows for good.
    let env = started(600, &[("overlap_seconds = 300", "overlap_seconds = 0")]);
    const ODATA: &str = "GET /acumatica/t/{tenant}/api/odata/gi/{gi}";
    let odata = || {
        env.acumatica_state()["requests"]["by_route"][ODATA]
            .as_u64()
            .unwrap_or(0)
    };
    // The first page's newest row is over a second newer than the rest (the watermark filter
    // has whole seconds), as when an item is edited while the catalogue is read.
    std::thread::sleep(Duration::from_millis(1100));
    edit_item(&env, "SB00001", json!({"weight": 1.0}));
    let before = odata();
    env.acumatica_control("faults", json!({"latency_ms": 300}));
    let mut child = env.connector(&["sync", "--entity", "items"]).spawn_quiet();
    let deadline = Instant::now() + Duration::from_secs(20);
    // The second page is asked for: the first is queued.
    while odata() < before + 2 {
        assert!(Instant::now() < deadline, "the second page was never read");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    env.acumatica_control("faults", json!({}));
    sync(&env, &[], 0);
    assert_magento_equals_acumatica(&env);
    assert_no_limit_violation(&env);
}

/// The engine keeps two chunks in flight at once (one sending while the next is prepared and
/// the last recorded). A record is never in both: a message whose record is in the chunk in
/// flight waits until that chunk is recorded and is then weighed against what it delivered.
/// Here a price's older version arrives a chunk after its newer one.
#[test]
fn a_record_in_two_chunks_is_sent_once_and_its_older_version_never_wins() {
    // Batches of 10 at 8 at once: chunks of 1,000 messages.
    let env = started(1100, &[("batch_size = 100", "batch_size = 10")]);
    quiet_batch_read(&env, "prices");
    let message = price_message;
    let (newer, older) = ("2030-01-02T00:00:00.000Z", "2030-01-01T00:00:00.000Z");
    // Magento's seeded catalogue: SB-0001 … SB-1100.
    let mut queue = vec![message("SB-0001", newer, 77.0)];
    queue.extend((2..=1001).map(|i| message(&format!("SB-{i:04}"), newer, i as f64)));
    queue.push(message("SB-0001", older, 11.0));
    store(&env)
        .enqueue_collected("prices", &queue, None)
        .unwrap();
    // Calls take a while, so the second chunk is read while the first is in flight.
    env.magento_control("faults", json!({ "latency_ms": 20 }));

    let report = sync(&env, &["--entity", "prices"], 0);
    assert_eq!(counts(&report, "prices")["delivered"], 1001, "{report}");
    assert_eq!(counts(&report, "prices")["skipped"], 1, "{report}");
    assert_eq!(product(&env, "SB-0001")["price"], 77.0);
    assert_eq!(product(&env, "SB-1001")["price"], 1001.0);
    let statuses: Vec<(String, String)> = store(&env)
        .messages_for("prices", "SB-0001")
        .unwrap()
        .into_iter()
        .map(|(_, version, status)| (version, status))
        .collect();
    assert!(
        statuses.contains(&(newer.into(), "delivered".into()))
            && statuses.contains(&(older.into(), "skipped".into())),
        "{statuses:?}"
    );
    assert_no_limit_violation(&env);
}

/// The same records queued again and again, a chunk apart (three rounds of price changes for
/// 1,000 SKUs): each round waits for the one before it, so Magento ends with the newest price
/// of every SKU whatever the pipeline overlaps.
#[test]
fn rounds_of_changes_to_the_same_records_land_in_order() {
    let env = started(1100, &[("batch_size = 100", "batch_size = 10")]);
    quiet_batch_read(&env, "prices");
    let mut queue = Vec::new();
    for round in 1..=3u32 {
        let version = format!("2030-01-0{round}T00:00:00.000Z");
        for i in 1..=1000 {
            queue.push(price_message(
                &format!("SB-{i:04}"),
                &version,
                f64::from(round) * 1000.0 + i as f64,
            ));
        }
    }
    store(&env)
        .enqueue_collected("prices", &queue, None)
        .unwrap();
    env.magento_control("faults", json!({ "latency_ms": 20 }));

    let report = sync(&env, &["--entity", "prices"], 0);
    let c = counts(&report, "prices");
    assert_eq!(c["failed"], 0, "{report}");
    assert_eq!(
        c["delivered"].as_u64().unwrap() + c["skipped"].as_u64().unwrap(),
        3000,
        "{report}"
    );
    let products = env.magento_state()["products"].clone();
    for p in products.as_array().unwrap() {
        let sku = p["sku"].as_str().unwrap();
        if let Some(i) = sku.strip_prefix("SB-").and_then(|n| n.parse::<u32>().ok())
            && i <= 1000
        {
            assert_eq!(p["price"].as_f64(), Some(3000.0 + f64::from(i)), "{sku}");
        }
    }
    assert_no_limit_violation(&env);
}

/// The batch path's read of Acumatica runs beside the delivery of what push notifications
/// queued, so a read that fails holds nothing back: the queued change reaches Magento and is
/// recorded, and the run still fails with the read's error.
#[test]
fn a_failing_batch_read_does_not_hold_back_what_the_queue_holds() {
    let env = started(2, &[]);
    sync(&env, &[], 0);
    let row = json!({"InventoryID": "SB00002", "BasePrice": 42.5});
    enqueue(
        &env,
        "prices",
        "SB00002",
        "2030-01-01T00:00:00.000Z",
        "upsert",
        row,
    );
    env.acumatica_control(
        "faults",
        json!({"scripted": [{
            "route": "GET /acumatica/t/{tenant}/api/odata/gi/{gi}",
            "kind": "wrong_shape"
        }]}),
    );
    let out = env
        .connector(&["sync", "--entity", "prices"])
        .expect_exit(1);
    out.stderr_has("no `value` array");
    env.acumatica_control("faults", json!({}));
    assert_eq!(product(&env, "SB00002")["price"], 42.5);
    let queued: Vec<(String, String)> = store(&env)
        .messages_for("prices", "SB00002")
        .unwrap()
        .into_iter()
        .map(|(_, version, status)| (version, status))
        .filter(|(version, _)| version.starts_with("2030"))
        .collect();
    assert_eq!(
        queued,
        [("2030-01-01T00:00:00.000Z".into(), "delivered".into())]
    );
}

/// A run of catalogue flows only gives its Acumatica session (a licence slot) back once the
/// batch read is done, while the prices are still being sent — not after the last of them.
#[test]
fn a_catalogue_run_logs_out_of_acumatica_once_its_read_is_done() {
    let env = started(1100, &[("batch_size = 100", "batch_size = 10")]);
    // The batch read still runs (and logs in) but finds nothing newer.
    quiet_batch_read(&env, "prices");
    let queue: Vec<NewMessage> = (1..=1000)
        .map(|i| price_message(&format!("SB-{i:04}"), "2030-01-01T00:00:00.000Z", i as f64))
        .collect();
    store(&env)
        .enqueue_collected("prices", &queue, None)
        .unwrap();
    // 100 calls, 8 at a time, 100 ms each: over a second of sending.
    env.magento_control("faults", json!({ "latency_ms": 100 }));
    let sessions = &env.sandbox.acumatica.sessions;
    let logins_before = sessions.counters().logins;
    let mut child = env.connector(&["sync", "--entity", "prices"]).spawn_quiet();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut released_while_sending = None;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the sync did not end");
        let sent = magento_calls(&env, Some(PRICES));
        if released_while_sending.is_none()
            && sessions.counters().logins > logins_before
            && sessions.open_sessions().is_empty()
            && sent < 100
        {
            released_while_sending = Some(sent);
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success());
    assert!(
        released_while_sending.is_some(),
        "the session stayed open until the prices were sent"
    );
    assert_eq!(product(&env, "SB-1000")["price"], 1000.0);
}
