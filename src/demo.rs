//! `connector demo`: the whole product against the sandbox, in one process and one command —
//! what a new user runs first. Every step calls the same library code the commands call.

use std::time::Duration;

use anyhow::Context;
use serde_json::Value;

use crate::acumatica::AcumaticaClient;
use crate::config::Config;
use crate::receiver::{self, ReceiverSettings};
use crate::sandbox::{Sandbox, SandboxOptions, config_file};
use crate::store::Store;
use crate::sync::{self, Silent, SyncOptions};

/// Where the demo's lines go (stdout for the command; a buffer for tests).
pub trait Narrator {
    fn step(&self, text: &str);
}

/// Prints each step.
pub struct Stdout;

impl Narrator for Stdout {
    fn step(&self, text: &str) {
        println!("{text}");
    }
}

async fn get_json(url: &str) -> anyhow::Result<Value> {
    Ok(reqwest::get(url).await?.error_for_status()?.json().await?)
}

async fn post_json(url: &str, body: Value) -> anyhow::Result<Value> {
    let response = reqwest::Client::new().post(url).json(&body).send().await?;
    let status = response.status();
    let text = response.text().await?;
    anyhow::ensure!(status.is_success(), "POST {url}: {status} {text}");
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The price Magento shows for `sku`.
async fn magento_price(sandbox: &Sandbox, sku: &str) -> anyhow::Result<Option<f64>> {
    let state = get_json(&format!("{}/__sandbox/state", sandbox.magento_url)).await?;
    Ok(state["products"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["sku"] == sku)
        .and_then(|p| p["price"].as_f64()))
}

/// Waits until the receiver has queued something (push notifications are asynchronous).
async fn wait_for_queue(config: &Config, status: &str) -> anyhow::Result<u64> {
    for _ in 0..100 {
        let counts = Store::open(&config.store.path)?.queue_counts()?;
        let n = if status == "held" {
            counts.held
        } else {
            counts.pending
        };
        if n > 0 {
            return Ok(n);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("no push notification arrived within 5 s")
}

async fn run_sync(config: &Config) -> anyhow::Result<sync::RunReport> {
    sync::run(config, &SyncOptions::default(), &Silent).await
}

/// The demo checks what it shows: a wrong price fails it.
fn expect(shown: f64, wanted: f64, when: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        (shown - wanted).abs() < 0.005,
        "the demo expected Magento to show {wanted:.2} {when}, but it shows {shown:.2}"
    );
    Ok(())
}

fn delivered(report: &sync::RunReport) -> u64 {
    report.entities.values().map(|c| c.delivered).sum()
}

/// Runs the demo in a temporary folder; leaves nothing running.
pub async fn run(out: &dyn Narrator) -> anyhow::Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("connector-demo-")
        .tempdir()
        .context("cannot create a temporary folder")?;
    out.step("connector demo: the whole life cycle against a simulated Acumatica and Magento on this machine.\n");

    // No seeded Magento orders: the demo places its own, with a SKU both systems know.
    let sandbox = Sandbox::start(SandboxOptions {
        orders: 0,
        ..SandboxOptions::default()
    })
    .await?;
    out.step(&format!(
        " 1. Simulated Acumatica at {} and Magento at {}",
        sandbox.acumatica_url, sandbox.magento_url
    ));
    let receiver_addr = config_file::free_loopback_port()?;
    let config_path = dir.path().join("connector.toml");
    config_file::write_new(&config_path, &config_file::render(&sandbox, receiver_addr))?;
    let config = Config::load(&config_path)?;
    out.step(&format!(
        " 2. Configuration written to {}",
        config_path.display()
    ));

    let listener = receiver::start(ReceiverSettings::from_config(&config, None)?).await?;
    out.step(&format!(
        " 3. connector listen: receiving Acumatica's push notifications at http://{}/push",
        listener.addr
    ));

    let acumatica = AcumaticaClient::new(&config)?;
    let init = crate::lifecycle::init(&config, &acumatica, false, &|_| {}).await?;
    out.step(&format!(
        " 4. connector init --yes: {} objects created in Acumatica (endpoint, Generic Inquiries, Push Notifications, schedule); state {}",
        init.created, init.state
    ));

    let first = run_sync(&config).await?;
    let count = |name: &str| first.entities.get(name).map(|c| c.delivered).unwrap_or(0);
    out.step(&format!(
        " 5. connector sync: first run read the catalogue — {} products, {} prices, {} stock levels delivered to Magento",
        count("items"),
        count("prices"),
        count("inventory")
    ));

    let state = get_json(&format!("{}/__sandbox/state", sandbox.acumatica_url)).await?;
    let sku = state["entities"]["stock_items"][0]["InventoryID"]
        .as_str()
        .context("the sandbox has no stock item")?
        .to_string();
    let before = magento_price(&sandbox, &sku).await?.unwrap_or_default();
    let new_price = ((before * 0.9) * 100.0).round() / 100.0;
    post_json(
        &format!("{}/__sandbox/items/{sku}", sandbox.acumatica_url),
        serde_json::json!({ "price": new_price }),
    )
    .await?;
    let queued = wait_for_queue(&config, "pending").await?;
    out.step(&format!(
        " 6. In Acumatica, {sku}'s price changes {before:.2} -> {new_price:.2}: a push notification arrives, {queued} message(s) queued"
    ));
    let report = run_sync(&config).await?;
    let shown = magento_price(&sandbox, &sku).await?.unwrap_or_default();
    expect(shown, new_price, "after the push and sync")?;
    out.step(&format!(
        " 7. connector sync: {} delivered; Magento now shows {sku} at {shown:.2}",
        delivered(&report)
    ));

    // Sync part 2: a Magento order reaches Acumatica with the same total; its shipment returns.
    let order = post_json(
        &format!("{}/__sandbox/orders", sandbox.magento_url),
        serde_json::json!({"customer_id": 1, "items": [{"sku": sku, "qty": 2}], "coupon_code": "SAVE10"}),
    )
    .await?;
    let increment = order["increment_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    run_sync(&config).await?;
    let state = get_json(&format!("{}/__sandbox/state", sandbox.acumatica_url)).await?;
    let imported = state["entities"]["sales_orders"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|o| o["CustomerOrder"] == increment.as_str())
        .cloned()
        .with_context(|| format!("Magento order {increment} did not reach Acumatica"))?;
    let grand_total = order["grand_total"].as_f64().unwrap_or_default();
    let total = imported["OrderTotal"].as_f64().unwrap_or_default();
    anyhow::ensure!(
        (grand_total - total).abs() < 0.005,
        "the demo expected the Acumatica order total {total:.2} to equal Magento's {grand_total:.2}"
    );
    let order_nbr = imported["OrderNbr"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    out.step(&format!(
        " 8. A Magento order {increment} (grand total {grand_total:.2}); connector sync: Acumatica sales order {order_nbr} for customer {}, total {total:.2}",
        imported["CustomerID"].as_str().unwrap_or_default()
    ));
    post_json(
        &format!("{}/__sandbox/shipments", sandbox.acumatica_url),
        serde_json::json!({"order_nbr": order_nbr, "tracking_numbers": ["1Z999AA10123456784"],
                           "ship_via": "UPS", "confirm": true}),
    )
    .await?;
    run_sync(&config).await?;
    let state = get_json(&format!("{}/__sandbox/state", sandbox.magento_url)).await?;
    let shipments = state["shipments"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["order_id"] == order["entity_id"])
        .count();
    anyhow::ensure!(
        shipments == 1,
        "the demo expected one Magento shipment for order {increment}, found {shipments}"
    );
    out.step(&format!(
        " 9. The warehouse confirms its shipment in Acumatica; connector sync: Magento order {increment} has {shipments} shipment with tracking number 1Z999AA10123456784"
    ));

    crate::lifecycle::pause(&config)?;
    let paused_price = ((new_price * 0.9) * 100.0).round() / 100.0;
    post_json(
        &format!("{}/__sandbox/items/{sku}", sandbox.acumatica_url),
        serde_json::json!({ "price": paused_price }),
    )
    .await?;
    let held = wait_for_queue(&config, "held").await?;
    run_sync(&config).await?;
    let still = magento_price(&sandbox, &sku).await?.unwrap_or_default();
    expect(still, new_price, "while paused")?;
    out.step(&format!(
        "10. connector deactivate --pause; the price changes again to {paused_price:.2}: {held} message(s) held, Magento still shows {still:.2}"
    ));

    let activated = crate::lifecycle::activate(&config, &acumatica, true).await?;
    let report = run_sync(&config).await?;
    let shown = magento_price(&sandbox, &sku).await?.unwrap_or_default();
    expect(shown, paused_price, "after activate and sync")?;
    out.step(&format!(
        "11. connector activate: {} held message(s) released; connector sync: {} delivered; Magento shows {shown:.2}",
        activated.released,
        delivered(&report)
    ));

    let stopped = crate::lifecycle::stop(&config, &acumatica).await?;
    out.step(&format!(
        "12. connector deactivate --stop: {} push notifications and schedules set inactive in Acumatica",
        stopped.objects.len()
    ));
    let store = Store::open(&config.store.path)?;
    let lifecycle = store.lifecycle()?;
    let queue = store.queue_counts()?;
    out.step(&format!(
        "13. connector status: {} since {}; {} delivered, {} pending, {} failed",
        lifecycle.state.as_str(),
        lifecycle.since,
        queue.delivered,
        queue.pending,
        queue.failed + queue.dead
    ));

    listener.stop().await?;
    sandbox.shutdown().await;
    out.step(
        "\nDone: the receiver and both simulated systems are stopped; nothing is left running.",
    );
    out.step("Next: `connector sandbox --write-config sandbox.toml` keeps them running for your own tries.");
    Ok(())
}
