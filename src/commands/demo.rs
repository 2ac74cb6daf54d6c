//! `connector demo`: the whole product in one command, against a sandbox started in-process.
//! A temporary folder gets the config and the state store; the receiver (`listen`) runs
//! in-process; each step prints what happened. Everything started is stopped, the folder
//! removed, and the exit code is 0 only when every step saw what it expected.

use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::acumatica::AcumaticaClient;
use crate::config::Config;
use crate::entities::Entity;
use crate::lifecycle;
use crate::receiver::{self, ReceiverSettings};
use crate::sandbox::{Sandbox, SandboxOptions, config_file};
use crate::store::Store;
use crate::sync::{Silent, SyncOptions};

struct Demo {
    config: Config,
    sandbox: Sandbox,
    http: reqwest::Client,
    quiet: bool,
}

impl Demo {
    fn say(&self, line: impl AsRef<str>) {
        if !self.quiet {
            println!("{}", line.as_ref());
        }
    }

    async fn control(&self, base: &str, path: &str, body: Value) -> anyhow::Result<Value> {
        let url = format!("{base}/__sandbox/{path}");
        let reply = self.http.post(&url).json(&body).send().await?;
        let status = reply.status();
        let text = reply.text().await?;
        if !status.is_success() {
            bail!("sandbox {path}: {status} {text}");
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn state(&self, base: &str) -> anyhow::Result<Value> {
        Ok(self
            .http
            .get(format!("{base}/__sandbox/state"))
            .send()
            .await?
            .json()
            .await?)
    }

    async fn sync(&self, entities: &[Entity]) -> anyhow::Result<crate::sync::RunReport> {
        let options = SyncOptions {
            entities: entities.to_vec(),
            ..Default::default()
        };
        crate::sync::run(&self.config, &options, &Silent).await
    }

    /// Waits until the receiver has stored more push rows than `before` (at most 10 s).
    async fn push_arrived(&self, before: u64) -> anyhow::Result<u64> {
        for _ in 0..100 {
            let now = received(&self.config)?;
            if now > before {
                return Ok(now);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("no push notification reached the receiver within 10 s")
    }

    async fn magento_price(&self, sku: &str) -> anyhow::Result<f64> {
        let state = self.state(&self.sandbox.magento_url).await?;
        state["products"]
            .as_array()
            .and_then(|p| p.iter().find(|p| p["sku"] == sku))
            .and_then(|p| p["price"].as_f64())
            .with_context(|| format!("Magento has no product {sku}"))
    }
}

/// Push rows the receiver stored so far.
fn received(config: &Config) -> anyhow::Result<u64> {
    let store = Store::open(&config.store.path)?;
    Ok(store.receiver_counts()?.values().sum())
}

pub fn run(quiet: bool) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("connector-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let outcome = runtime.block_on(walk(&dir, quiet));
    let _ = std::fs::remove_dir_all(&dir);
    outcome
}

async fn walk(dir: &std::path::Path, quiet: bool) -> anyhow::Result<()> {
    let sandbox = Sandbox::start(SandboxOptions {
        orders: 0,
        ..Default::default()
    })
    .await?;
    let receiver_addr = config_file::free_loopback_port()?;
    let path = dir.join("connector.toml");
    config_file::write_new(&path, &config_file::render(&sandbox, receiver_addr))?;
    let config = Config::load(&path)?;
    let demo = Demo {
        config,
        sandbox,
        http: reqwest::Client::new(),
        quiet,
    };
    demo.say(format!(
        "Sandbox: Acumatica {} · Magento {} · config {}",
        demo.sandbox.acumatica_url,
        demo.sandbox.magento_url,
        path.display()
    ));
    let running = receiver::start(ReceiverSettings::from_config(&demo.config, None)?).await?;
    demo.say(format!(
        "listen: receiving push notifications on http://{}",
        running.addr
    ));
    let result = steps(&demo).await;
    running.stop().await?;
    demo.sandbox.shutdown().await;
    result
}

async fn steps(demo: &Demo) -> anyhow::Result<()> {
    let config = &demo.config;
    let acumatica = AcumaticaClient::new(config)?;
    let acu = demo.sandbox.acumatica_url.clone();
    let mag = demo.sandbox.magento_url.clone();

    // 1. init, answering yes.
    let report = lifecycle::init(config, &acumatica, false, &|_| {}).await?;
    demo.say(format!(
        "1. init (answered yes): {} objects in Acumatica; state {}",
        report.objects.len(),
        Store::open(&config.store.path)?.lifecycle()?.state.as_str()
    ));

    // 2. The catalogue reaches Magento.
    let run = demo
        .sync(&[Entity::Items, Entity::Prices, Entity::Inventory])
        .await?;
    let items = run.entities.get("items").map(|c| c.delivered).unwrap_or(0);
    demo.say(format!(
        "2. sync: {items} stock items became Magento products"
    ));

    // 3. A price changed in Acumatica reaches Magento through a real push notification.
    let sku = "SB00001";
    let before = received(config)?;
    demo.control(&acu, &format!("items/{sku}"), json!({"price": 12.34}))
        .await?;
    let after = demo.push_arrived(before).await?;
    demo.sync(&[Entity::Prices]).await?;
    let price = demo.magento_price(sku).await?;
    demo.say(format!(
        "3. price of {sku} set to 12.34 in Acumatica → push notification ({} row(s)) → sync → Magento price {price:.2}",
        after - before
    ));
    if (price - 12.34).abs() > 0.001 {
        bail!("Magento's price of {sku} is {price}, not 12.34");
    }

    // 4. A Magento order reaches Acumatica with the same total.
    let order = demo
        .control(
            &mag,
            "orders",
            json!({"customer_id": 1, "items": [{"sku": sku, "qty": 2}, {"sku": "SB00002", "qty": 1}],
                   "coupon_code": "SAVE10"}),
        )
        .await?;
    let inc = order["increment_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    demo.sync(&[Entity::Customers, Entity::Orders]).await?;
    let acu_state = demo.state(&acu).await?;
    let imported = acu_state["entities"]["sales_orders"]
        .as_array()
        .and_then(|o| o.iter().find(|o| o["CustomerOrder"] == inc.as_str()))
        .cloned()
        .with_context(|| format!("order {inc} did not reach Acumatica"))?;
    let (grand, total) = (
        order["grand_total"].as_f64().unwrap_or(f64::NAN),
        imported["OrderTotal"].as_f64().unwrap_or(f64::NAN),
    );
    let nbr = imported["OrderNbr"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    demo.say(format!(
        "4. Magento order {inc} (grand total {grand:.2}) → sync → Acumatica order SO {nbr}, total {total:.2}, customer {}",
        imported["CustomerID"].as_str().unwrap_or_default()
    ));
    if (grand * 100.0).round() != (total * 100.0).round() {
        bail!("the totals differ");
    }

    // 5. Its shipment reaches Magento.
    let before = received(config)?;
    demo.control(
        &acu,
        "shipments",
        json!({"order_nbr": nbr, "tracking_numbers": ["1Z999AA10123456784"], "ship_via": "UPS", "confirm": true}),
    )
    .await?;
    let pushed = demo.push_arrived(before).await.is_ok();
    demo.sync(&[Entity::Shipments]).await?;
    let mag_state = demo.state(&mag).await?;
    let shipments = mag_state["shipments"]
        .as_array()
        .map(|s| {
            s.iter()
                .filter(|s| s["order_id"] == order["entity_id"])
                .count()
        })
        .unwrap_or(0);
    demo.say(format!(
        "5. shipment confirmed in Acumatica{} → sync → {shipments} shipment in Magento for order {inc}",
        if pushed { " → push notification" } else { "" }
    ));
    if shipments != 1 {
        bail!("Magento has {shipments} shipments for order {inc}, not 1");
    }

    // 6. Pause: a change is held, then delivered after activate.
    lifecycle::pause(config)?;
    let before = received(config)?;
    demo.control(&acu, &format!("items/{sku}"), json!({"price": 15.0}))
        .await?;
    demo.push_arrived(before).await?;
    let run = demo.sync(&[Entity::Prices]).await?;
    let held = run.entities.get("prices").map(|c| c.held).unwrap_or(0);
    let held_total = Store::open(&config.store.path)?.queue_counts()?.held;
    let price = demo.magento_price(sku).await?;
    demo.say(format!(
        "6. deactivate --pause; price set to 15.00 in Acumatica → sync: {} message(s) held, Magento price still {price:.2}",
        held_total.max(held)
    ));
    if (price - 12.34).abs() > 0.001 || held_total == 0 {
        bail!("the paused connector wrote to Magento or held nothing");
    }
    let report = lifecycle::activate(config, &acumatica, true).await?;
    demo.sync(&[Entity::Prices]).await?;
    let price = demo.magento_price(sku).await?;
    demo.say(format!(
        "7. activate: {} held message(s) released → sync → Magento price {price:.2}",
        report.released
    ));
    if (price - 15.0).abs() > 0.001 {
        bail!("the held price was not delivered");
    }

    // 8. Stop, and the status.
    lifecycle::stop(config, &acumatica).await?;
    let store = Store::open(&config.store.path)?;
    let state = store.lifecycle()?.state;
    let counts = store.queue_counts()?;
    demo.say(format!(
        "8. deactivate --stop: push notifications inactive; status: state {}, {} delivered, {} pending, {} failed",
        state.as_str(),
        counts.delivered,
        counts.pending,
        counts.failed + counts.dead
    ));
    acumatica.close().await;
    demo.say("Demo finished: everything started was stopped.");
    Ok(())
}
