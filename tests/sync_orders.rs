//! `connector sync` part 2 through the binary against the sandbox: Magento orders and
//! customers into Acumatica, confirmed shipments back to Magento.
//! Budget: about 10 s per test.

mod util;

use std::collections::BTreeMap;

use serde_json::{Value, json};
use util::sandbox::SandboxEnv;

/// A sandbox with `orders` seeded Magento orders, `extra_config` appended to connector.toml,
/// `connector init --yes` done, and every Magento SKU but `missing` as an Acumatica stock item
/// (Acumatica owns the catalogue; the sandboxes are seeded independently).
fn env_with(orders: usize, extra_config: &str, missing: &[&str]) -> SandboxEnv {
    SandboxEnv::with_shared_skus(
        connector::sandbox::SandboxOptions {
            orders,
            ..Default::default()
        },
        &[],
        extra_config,
        missing,
    )
}

/// `sync --entity …` with the expected exit code; returns the JSON report.
fn sync(env: &SandboxEnv, entities: &[&str], code: i32) -> Value {
    let mut args = vec!["sync", "--json"];
    for e in entities {
        args.push("--entity");
        args.push(e);
    }
    let out = env.connector(&args).expect_exit(code);
    serde_json::from_str(out.stdout().trim()).unwrap_or_else(|e| panic!("{e}\n{}", out.report()))
}

fn sync_in(env: &SandboxEnv, code: i32) -> Value {
    sync(env, &["customers", "orders"], code)
}

fn list(v: &Value) -> Vec<Value> {
    v.as_array().cloned().unwrap_or_default()
}

fn acumatica_orders(env: &SandboxEnv) -> Vec<Value> {
    list(&env.acumatica_state()["entities"]["sales_orders"])
}

fn magento_orders(env: &SandboxEnv) -> Vec<Value> {
    list(&env.magento_state()["orders"])
}

fn cents(v: &Value) -> i64 {
    (v.as_f64().unwrap_or(f64::NAN) * 100.0).round() as i64
}

/// Acumatica orders by increment id (CustomerOrder); panics on a duplicate.
fn by_increment(env: &SandboxEnv) -> BTreeMap<String, Value> {
    let mut map = BTreeMap::new();
    for o in acumatica_orders(env) {
        let inc = o["CustomerOrder"].as_str().unwrap_or_default().to_string();
        assert_eq!(o["ExternalRef"], o["CustomerOrder"], "{o}");
        let previous = map.insert(inc.clone(), o);
        assert!(previous.is_none(), "order {inc} is in Acumatica twice");
    }
    map
}

fn db(env: &SandboxEnv) -> rusqlite::Connection {
    rusqlite::Connection::open(env.dir.join("connector.db")).unwrap()
}

/// Every failed message due now (retries otherwise wait 1, 2, 4 … minutes).
fn make_due(env: &SandboxEnv) {
    db(env)
        .execute(
            "UPDATE messages SET next_attempt_at = '2000-01-01T00:00:00.000Z' WHERE status = 'failed'",
            [],
        )
        .unwrap();
}

fn skus(order: &Value) -> Vec<String> {
    list(&order["items"])
        .iter()
        .filter_map(|i| i["sku"].as_str().map(String::from))
        .collect()
}

/// GET requests to Magento's order search so far.
fn order_searches(env: &SandboxEnv) -> u64 {
    let state = env.magento_state();
    state["requests"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.starts_with("GET ") && k.ends_with("/V1/orders"))
        .map(|(_, v)| v.as_u64().unwrap_or(0))
        .sum()
}

#[test]
fn orders_are_imported_once_with_totals_equal_to_grand_total_across_pages_and_overlaps() {
    // Pages of 2: the first three seeded orders share one updated_at second across the
    // boundary between pages 1 and 2; 12 orders end on a full page (the repeated-last-page
    // quirk would show as a 7th request).
    let env = env_with(12, "\n[orders]\npage_size = 2\n", &[]);
    let report = sync_in(&env, 0);
    assert_eq!(report["entities"]["orders"]["collected"], 12, "{report}");
    assert_eq!(report["entities"]["orders"]["delivered"], 12, "{report}");
    assert_eq!(
        order_searches(&env),
        6,
        "stops on total_count, never a page past the end"
    );

    let magento = magento_orders(&env);
    let imported = by_increment(&env);
    assert_eq!(imported.len(), magento.len());
    let customers = list(&env.acumatica_state()["entities"]["customers"]);
    let (mut guests, mut discounted, mut configurable, mut shipped_freight, mut taxed) =
        (0, 0, 0, 0, 0);
    for m in &magento {
        let inc = m["increment_id"].as_str().unwrap();
        let a = &imported[inc];
        assert_eq!(
            cents(&a["OrderTotal"]),
            cents(&m["grand_total"]),
            "order {inc}: {a}"
        );
        // The customer exists, and exactly one Acumatica customer has the email.
        let email = m["customer_email"].as_str().unwrap();
        let with_email: Vec<_> = customers.iter().filter(|c| c["Email"] == email).collect();
        assert_eq!(with_email.len(), 1, "customer {email}: {with_email:?}");
        assert_eq!(with_email[0]["CustomerID"], a["CustomerID"]);
        // The order's own shipping address.
        let ship = &m["extension_attributes"]["shipping_assignments"][0]["shipping"]["address"];
        assert_eq!(a["ShipToAddress"]["City"], ship["city"], "order {inc}: {a}");
        assert_eq!(a["ShipToAddress"]["PostalCode"], ship["postcode"]);
        guests += (m["customer_is_guest"] == 1) as u32;
        discounted += (cents(&m["discount_amount"]) != 0) as u32;
        configurable += list(&m["items"])
            .iter()
            .any(|i| i["product_type"] == "configurable") as u32;
        shipped_freight += (cents(&m["shipping_amount"]) != 0) as u32;
        taxed += (cents(&m["tax_amount"]) != 0) as u32;
    }
    assert!(guests > 0 && discounted > 0 && configurable > 0 && shipped_freight > 0);
    // Registered customers carry their default address as the main contact's.
    let magento_customers = list(&env.magento_state()["customers"]);
    assert!(!magento_customers.is_empty());
    for mc in &magento_customers {
        let ac = customers
            .iter()
            .find(|c| c["Email"] == mc["email"])
            .unwrap_or_else(|| panic!("customer {} not imported", mc["email"]));
        assert_eq!(
            ac["MainContact"]["Address"]["City"], mc["addresses"][0]["city"],
            "{ac}"
        );
        assert_eq!(ac["MainContact"]["FirstName"], mc["firstname"], "{ac}");
    }

    // A Texas order carries tax: placed now, found by the next run inside the overlap.
    let placed = env.magento_control(
        "orders",
        json!({"customer_id": 1, "items": [{"sku": "SB-0001", "qty": 2}], "coupon_code": "SAVE10"}),
    );
    let again = sync_in(&env, 0);
    assert_eq!(again["entities"]["orders"]["delivered"], 1, "{again}");
    let imported = by_increment(&env);
    assert_eq!(imported.len(), magento.len() + 1, "nothing imported twice");
    let inc = placed["increment_id"].as_str().unwrap();
    assert_eq!(
        cents(&imported[inc]["OrderTotal"]),
        cents(&placed["grand_total"])
    );
    taxed += (cents(&placed["tax_amount"]) != 0) as u32;
    assert!(taxed > 0, "some order carries tax");

    // A late-committed order: its updated_at is older than the watermark (as when another
    // transaction commits late) but inside the overlap window — still found.
    let conn = db(&env);
    let later = (chrono::Utc::now() + chrono::Duration::seconds(120))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    assert_eq!(
        conn.execute(
            "UPDATE cursors SET watermark = ?1 WHERE entity = 'orders'",
            [&later]
        )
        .unwrap(),
        1
    );
    drop(conn);
    let late = env.magento_control(
        "orders",
        json!({"guest": {"email": "late@example.com", "firstname": "Lee", "lastname": "Late"},
               "items": [{"sku": "SB-TEE-S", "qty": 1}, {"sku": "SB-0004", "qty": 1}]}),
    );
    let report = sync_in(&env, 0);
    assert_eq!(report["entities"]["orders"]["delivered"], 1, "{report}");
    let imported = by_increment(&env);
    let inc = late["increment_id"].as_str().unwrap();
    assert_eq!(
        cents(&imported[inc]["OrderTotal"]),
        cents(&late["grand_total"])
    );

    // A third run re-reads the overlap window: nothing new, nothing twice.
    let third = sync_in(&env, 0);
    assert_eq!(third["entities"]["orders"]["delivered"], 0, "{third}");
    assert_eq!(by_increment(&env).len(), magento.len() + 2);
    // Line mappings: every Magento line has its Acumatica line.
    let lines: String = db(&env)
        .query_row(
            "SELECT line_mappings FROM mappings WHERE entity = 'orders' AND acumatica_key = '3'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let lines: Value = serde_json::from_str(&lines).unwrap();
    assert!(
        list(&lines["lines"]).iter().all(|l| l["line_nbr"].is_i64()),
        "{lines}"
    );
}

#[test]
fn a_run_cut_off_between_the_put_and_the_mapping_never_creates_a_second_order() {
    let env = env_with(4, "", &[]);
    sync_in(&env, 0);
    assert_eq!(acumatica_orders(&env).len(), 4);
    // As if every run had been killed after Acumatica's reply: no mapping, messages pending.
    let conn = db(&env);
    conn.execute("DELETE FROM mappings WHERE entity = 'orders'", [])
        .unwrap();
    conn.execute(
        "UPDATE messages SET status = 'pending' WHERE entity = 'orders'",
        [],
    )
    .unwrap();
    drop(conn);
    let report = sync_in(&env, 0);
    assert_eq!(report["entities"]["orders"]["delivered"], 4, "{report}");
    assert_eq!(
        by_increment(&env).len(),
        4,
        "looked up by increment id before create"
    );
    let mapped: i64 = db(&env)
        .query_row(
            "SELECT count(*) FROM mappings WHERE entity = 'orders'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(mapped, 4);
}

#[test]
fn an_unknown_sku_fails_only_its_order() {
    let env = env_with(6, "", &["SB-0002"]);
    env.magento_control(
        "orders",
        json!({"customer_id": 1, "items": [{"sku": "SB-0002", "qty": 1}]}),
    );
    let magento = magento_orders(&env);
    let bad: Vec<_> = magento
        .iter()
        .filter(|o| skus(o).iter().any(|s| s == "SB-0002"))
        .collect();
    assert!(!bad.is_empty() && bad.len() < magento.len());
    let report = sync_in(&env, 3);
    assert_eq!(
        report["entities"]["orders"]["failed"],
        bad.len(),
        "{report}"
    );
    let imported = by_increment(&env);
    assert_eq!(imported.len(), magento.len() - bad.len());
    for o in &bad {
        assert!(!imported.contains_key(o["increment_id"].as_str().unwrap()));
    }
}

#[test]
fn a_cancellation_in_magento_cancels_the_acumatica_order_and_other_updates_are_not_applied() {
    let env = env_with(3, "", &[]);
    sync_in(&env, 0);
    env.magento_control("orders/2/cancel", json!({}));
    let report = sync_in(&env, 0);
    assert_eq!(report["entities"]["orders"]["delivered"], 1, "{report}");
    let imported = by_increment(&env);
    assert_eq!(imported["000000002"]["Status"], "Canceled");
    assert_eq!(imported["000000001"]["Status"], "Open");
    // Re-read in the overlap: nothing more happens.
    let again = sync_in(&env, 0);
    assert_eq!(again["entities"]["orders"]["delivered"], 0, "{again}");
}

#[test]
fn two_partial_shipments_give_exactly_two_magento_shipments_even_when_retried() {
    let env = env_with(2, "\n[shipments]\nship_via = { UPS = \"ups\" }\n", &[]);
    let placed = env.magento_control(
        "orders",
        json!({"customer_id": 2, "items": [{"sku": "SB-0003", "qty": 3}]}),
    );
    let magento_id = placed["entity_id"].as_i64().unwrap();
    sync_in(&env, 0);
    let order = by_increment(&env)[placed["increment_id"].as_str().unwrap()].clone();
    let nbr = order["OrderNbr"].as_str().unwrap().to_string();
    let shipments_of = |env: &SandboxEnv| -> Vec<Value> {
        list(&env.magento_state()["shipments"])
            .into_iter()
            .filter(|s| s["order_id"] == magento_id)
            .collect()
    };

    for (i, (qty, tracking)) in [(1.0, "TRK-1"), (2.0, "TRK-2")].into_iter().enumerate() {
        env.acumatica_control(
            "shipments",
            json!({"order_nbr": nbr, "quantities": {"1": qty}, "tracking_numbers": [tracking],
                   "ship_via": "UPS", "confirm": true}),
        );
        let report = sync(&env, &["shipments"], 0);
        assert_eq!(report["entities"]["shipments"]["delivered"], 1, "{report}");
        // A retry, as if the run had been killed after the POST: no mapping, messages pending.
        let conn = db(&env);
        conn.execute("DELETE FROM mappings WHERE entity = 'shipments'", [])
            .unwrap();
        conn.execute(
            "UPDATE messages SET status = 'pending' WHERE entity = 'shipments'",
            [],
        )
        .unwrap();
        drop(conn);
        sync(&env, &["shipments"], 0);
        let shipments = shipments_of(&env);
        assert_eq!(shipments.len(), i + 1, "{shipments:#?}");
        let last = shipments.last().unwrap();
        assert_eq!(list(&last["items"])[0]["qty"], qty, "{last}");
        let track = &list(&last["tracks"])[0];
        assert_eq!(track["track_number"], tracking);
        assert_eq!(track["carrier_code"], "ups");
    }
    // The shipments bumped the Magento order's updated_at: recognised, nothing reported.
    let report = sync_in(&env, 0);
    assert_eq!(report["entities"]["orders"]["delivered"], 0, "{report}");
    assert_eq!(by_increment(&env).len(), 3);
}

/// Magento shipments marked as made from Acumatica shipment `shipment`.
fn magento_shipments_of(env: &SandboxEnv, shipment: &str) -> usize {
    let title = format!("Acumatica shipment {shipment}");
    list(&env.magento_state()["shipments"])
        .iter()
        .filter(|s| {
            list(&s["tracks"])
                .iter()
                .any(|t| t["title"] == title.as_str())
        })
        .count()
}

#[test]
fn a_shipment_of_an_order_whose_import_was_cut_off_waits_for_it_and_is_sent_once() {
    let env = env_with(0, "\n[shipments]\nship_via = { UPS = \"ups\" }\n", &[]);
    let placed = env.magento_control(
        "orders",
        json!({"customer_id": 1, "items": [{"sku": "SB-0002", "qty": 2}]}),
    );
    sync_in(&env, 0);
    let order = by_increment(&env)[placed["increment_id"].as_str().unwrap()].clone();
    let nbr = order["OrderNbr"].as_str().unwrap().to_string();
    // As if the run had been killed after the order's PUT, before its mapping, and the
    // order's message then backed off (a licence refusal after the kill).
    let conn = db(&env);
    conn.execute("DELETE FROM mappings WHERE entity = 'orders'", [])
        .unwrap();
    conn.execute(
        "UPDATE messages SET status = 'failed', attempts = 1, \
         next_attempt_at = '2999-01-01T00:00:00.000Z' WHERE entity = 'orders'",
        [],
    )
    .unwrap();
    drop(conn);
    let reply = env.acumatica_control(
        "shipments",
        json!({"order_nbr": nbr, "tracking_numbers": ["TRK-9"], "ship_via": "UPS", "confirm": true}),
    );
    let shipment = reply["shipment_nbr"].as_str().unwrap().to_string();

    // Not skipped for good: failed, to be retried.
    let report = sync(&env, &["shipments"], 3);
    assert_eq!(report["entities"]["shipments"]["failed"], 1, "{report}");
    assert_eq!(report["entities"]["shipments"]["skipped"], 0, "{report}");
    assert_eq!(magento_shipments_of(&env, &shipment), 0);

    // The order's retry adopts the order and records its mapping; the shipment follows.
    make_due(&env);
    let report = sync(&env, &["orders"], 0);
    assert_eq!(report["entities"]["orders"]["delivered"], 1, "{report}");
    make_due(&env);
    let report = sync(&env, &["shipments"], 0);
    assert_eq!(report["entities"]["shipments"]["delivered"], 1, "{report}");
    assert_eq!(magento_shipments_of(&env, &shipment), 1);
    assert_eq!(by_increment(&env).len(), 1, "no second order");
}

#[test]
fn shipments_of_orders_entered_in_acumatica_are_not_sent_to_magento() {
    let env = env_with(1, "\n[shipments]\nship_via = { UPS = \"ups\" }\n", &[]);
    sync_in(&env, 0);
    let customer = acumatica_orders(&env)[0]["CustomerID"]
        .as_str()
        .unwrap()
        .to_string();
    // Two orders a clerk entered: one without a customer order number, one with a PO number
    // Magento does not know.
    let text = std::fs::read_to_string(env.dir.join("connector.toml")).unwrap();
    let config =
        connector::config::Config::parse(&text, std::path::Path::new("connector.toml"), &|_| None)
            .unwrap();
    let client = connector::acumatica::AcumaticaClient::new(&config).unwrap();
    let entered: Vec<String> = env.block_on(async {
        let mut made = Vec::new();
        for reference in [None, Some("PO-778")] {
            let mut body = json!({
                "OrderType": {"value": "SO"},
                "CustomerID": {"value": customer},
                "Details": [{"InventoryID": {"value": "SB-0001"}, "OrderQty": {"value": 1}}],
            });
            if let Some(r) = reference {
                body["CustomerOrder"] = json!({ "value": r });
            }
            let order = client.put("/SalesOrder", &body, None).await.unwrap();
            made.push(order["OrderNbr"]["value"].as_str().unwrap().to_string());
        }
        client.close().await;
        made
    });
    let mut shipments = Vec::new();
    for nbr in &entered {
        let reply = env.acumatica_control(
            "shipments",
            json!({"order_nbr": nbr, "tracking_numbers": ["TRK-1"], "ship_via": "UPS", "confirm": true}),
        );
        shipments.push(reply["shipment_nbr"].as_str().unwrap().to_string());
    }
    let report = sync(&env, &["shipments"], 0);
    assert_eq!(report["entities"]["shipments"]["skipped"], 2, "{report}");
    assert_eq!(report["entities"]["shipments"]["failed"], 0, "{report}");
    for shipment in &shipments {
        assert_eq!(magento_shipments_of(&env, shipment), 0);
    }
}

#[test]
fn a_paused_connector_still_imports_orders() {
    let env = env_with(3, "", &[]);
    env.connector(&["deactivate", "--pause", "--yes"])
        .expect_exit(0);
    let report = sync_in(&env, 0);
    assert_eq!(report["state"], "paused");
    assert_eq!(report["entities"]["orders"]["delivered"], 3, "{report}");
    assert_eq!(by_increment(&env).len(), 3);
}

#[test]
fn orders_customers_and_shipments_config_mistakes_are_one_line_exit_2() {
    use util::{TestDir, example_config, example_config_with};
    // The example parses with the new sections.
    let ok = TestDir::new();
    ok.write("connector.toml", example_config());
    ok.command(&["status"]).expect_exit(0);
    for (from, to, expected) in [
        ("page_size = 300", "page_size = 500", "orders.page_size"),
        (
            "statuses = [\"pending\", \"processing\"]",
            "statuses = []",
            "orders.statuses",
        ),
        (
            "guests = \"per_email\"",
            "guests = \"customer\"",
            "customers.guest_customer_id",
        ),
        (
            "tax_mode = \"carry\"",
            "tax_mode = \"tax_zone\"",
            "orders.tax_zone",
        ),
        (
            "order_type = \"SO\"",
            "order_type = \"SALES\"",
            "orders.order_type",
        ),
        (
            "default_carrier = \"custom\"",
            "default_carrier = \"\"",
            "shipments.default_carrier",
        ),
    ] {
        let dir = TestDir::new();
        dir.write("connector.toml", example_config_with(from, to));
        let out = dir.command(&["sync"]).expect_exit(2);
        out.one_line_error().stderr_has(expected);
    }
}

#[test]
fn guests_can_share_one_customer_and_young_orders_wait_for_the_import_delay() {
    let env = env_with(
        6,
        "\n[customers]\nguests = \"customer\"\nguest_customer_id = \"ABCSTUDIOS\"\n\n[orders]\norder_import_delay_seconds = 3600\n",
        &[],
    );
    // Placed now: younger than the delay, left for a later run.
    let young = env.magento_control(
        "orders",
        json!({"guest": {"email": "new@example.com", "firstname": "N", "lastname": "Ew"},
               "items": [{"sku": "SB-0001", "qty": 1}]}),
    );
    sync_in(&env, 0);
    let imported = by_increment(&env);
    assert_eq!(imported.len(), 6, "the seeded (old) orders only");
    assert!(!imported.contains_key(young["increment_id"].as_str().unwrap()));
    let magento = magento_orders(&env);
    let mut guests = 0;
    for m in magento.iter().filter(|m| m["customer_is_guest"] == 1) {
        if let Some(a) = imported.get(m["increment_id"].as_str().unwrap()) {
            assert_eq!(a["CustomerID"], "ABCSTUDIOS", "{a}");
            guests += 1;
        }
    }
    assert!(guests > 0);
}

#[test]
fn with_faults_on_both_sides_every_order_arrives_exactly_once() {
    let env = env_with(10, "", &[]);
    let path = env.dir.join("connector.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("max_attempts = 8"));
    std::fs::write(&path, text.replace("max_attempts = 8", "max_attempts = 50")).unwrap();
    let faults = json!({"error_rate": 0.15, "drop_rate": 0.15});
    env.acumatica_control("faults", faults.clone());
    env.magento_control("faults", faults);
    // Retries wait (1, 2, 4 … minutes): put every failed message back to due between runs.
    let mut clean = false;
    for _ in 0..30 {
        let out = env
            .connector(&[
                "sync",
                "--entity",
                "customers",
                "--entity",
                "orders",
                "--json",
            ])
            .output();
        if out.output.status.code() == Some(0) {
            clean = true;
            break;
        }
        make_due(&env);
    }
    assert!(clean, "a clean run within 30");
    let injected = env.acumatica_state()["requests"]["injected_faults"].clone();
    let total: u64 = injected
        .as_object()
        .unwrap()
        .values()
        .filter_map(Value::as_u64)
        .sum();
    assert!(total > 0, "faults were injected: {injected}");
    env.acumatica_control("faults", json!({}));
    env.magento_control("faults", json!({}));
    sync_in(&env, 0);
    let imported = by_increment(&env);
    let magento = magento_orders(&env);
    assert_eq!(imported.len(), magento.len(), "injected: {injected}");
    for m in &magento {
        let a = &imported[m["increment_id"].as_str().unwrap()];
        assert_eq!(cents(&a["OrderTotal"]), cents(&m["grand_total"]));
    }
}
