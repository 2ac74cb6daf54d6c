//! A sandbox (simulated Acumatica and Magento) running in the test process, with a
//! `connector.toml` for it in a temporary folder, so tests can run the real binary against it.

use std::net::SocketAddr;

use connector::sandbox::{Sandbox, SandboxOptions, config_file};
use serde_json::Value;

use super::{TestCommand, TestDir};

pub struct SandboxEnv {
    pub dir: TestDir,
    pub sandbox: Sandbox,
    pub receiver: SocketAddr,
    runtime: tokio::runtime::Runtime,
}

impl SandboxEnv {
    /// A sandbox without seeded Magento orders: those use the Magento catalogue's SKUs
    /// (`SB-0001`…), which the seeded Acumatica does not have (`SB00001`…), so since sync
    /// part 2 imports orders a plain `connector sync` would fail them (exit 3). Tests about
    /// orders (tests/sync_orders.rs) seed their own with `SandboxEnv::with`.
    pub fn start() -> SandboxEnv {
        SandboxEnv::with(SandboxOptions {
            orders: 0,
            ..SandboxOptions::default()
        })
    }

    pub fn with(options: SandboxOptions) -> SandboxEnv {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let sandbox = runtime
            .block_on(Sandbox::start(options))
            .expect("start the sandbox");
        let receiver = config_file::free_loopback_port().expect("free port");
        let dir = TestDir::new();
        dir.write("connector.toml", config_file::render(&sandbox, receiver));
        SandboxEnv {
            dir,
            sandbox,
            receiver,
            runtime,
        }
    }

    /// A sandbox with `options`, connector.toml edited (`edits`: from, to) and
    /// `extra_config` appended,
    /// `connector init --yes` done, and every simple Magento SKU but `missing` added as an
    /// Acumatica stock item (1,000 on hand in RETAIL): the two systems are seeded
    /// independently (`SB-0001`… in Magento, `SB00001`… in Acumatica), so orders placed
    /// with the Magento SKUs can only be imported once Acumatica knows them too.
    pub fn with_shared_skus(
        options: SandboxOptions,
        edits: &[(&str, &str)],
        extra_config: &str,
        missing: &[&str],
    ) -> SandboxEnv {
        let env = SandboxEnv::with(options);
        for (from, to) in edits {
            env.edit_config(from, to);
        }
        env.append_config(extra_config);
        env.connector(&["init", "--yes"]).expect_exit(0);
        for product in env.magento_state()["products"].as_array().unwrap() {
            let sku = product["sku"].as_str().unwrap();
            if product["type_id"] == "simple" && !missing.contains(&sku) {
                env.acumatica_control(
                    &format!("items/{sku}"),
                    serde_json::json!({"price": product["price"], "description": sku,
                           "warehouses": {"RETAIL": {"qty_on_hand": 1000, "qty_avail": 1000}}}),
                );
            }
        }
        env
    }

    /// Appends `text` to connector.toml.
    pub fn append_config(&self, text: &str) {
        if text.is_empty() {
            return;
        }
        let path = self.dir.join("connector.toml");
        let mut config = std::fs::read_to_string(&path).unwrap();
        config.push_str(text);
        std::fs::write(&path, config).unwrap();
    }

    /// Replaces the first `from` in connector.toml with `to` (panics when it is not there).
    pub fn edit_config(&self, from: &str, to: &str) {
        let path = self.dir.join("connector.toml");
        let config = std::fs::read_to_string(&path).unwrap();
        assert!(config.contains(from), "connector.toml lacks {from:?}");
        std::fs::write(&path, config.replacen(from, to, 1)).unwrap();
    }

    /// `connector ARGS…` with this sandbox's config.
    pub fn connector(&self, args: &[&str]) -> TestCommand {
        self.dir.command(args)
    }

    /// Runs a future on the sandbox's runtime.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }

    fn get_json(&self, url: String) -> Value {
        self.block_on(async move {
            reqwest::get(&url)
                .await
                .expect("sandbox answers")
                .json::<Value>()
                .await
                .expect("state is JSON")
        })
    }

    fn post_json(&self, url: String, body: Value) -> Value {
        self.block_on(async move {
            let response = reqwest::Client::new()
                .post(&url)
                .json(&body)
                .send()
                .await
                .expect("sandbox answers");
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            assert!(status.is_success(), "POST {url}: {status} {text}");
            serde_json::from_str(&text).unwrap_or(Value::Null)
        })
    }

    /// `GET {acumatica}/__sandbox/state`.
    pub fn acumatica_state(&self) -> Value {
        self.get_json(format!("{}/__sandbox/state", self.sandbox.acumatica_url))
    }

    /// `GET {magento}/__sandbox/state`.
    pub fn magento_state(&self) -> Value {
        self.get_json(format!("{}/__sandbox/state", self.sandbox.magento_url))
    }

    /// `POST {acumatica}/__sandbox/{path}` with `body`.
    pub fn acumatica_control(&self, path: &str, body: Value) -> Value {
        self.post_json(
            format!("{}/__sandbox/{path}", self.sandbox.acumatica_url),
            body,
        )
    }

    /// `POST {magento}/__sandbox/{path}` with `body`.
    pub fn magento_control(&self, path: &str, body: Value) -> Value {
        self.post_json(
            format!("{}/__sandbox/{path}", self.sandbox.magento_url),
            body,
        )
    }

    /// `connector listen` in the background, once it accepts connections.
    pub fn spawn_listener(&self) -> std::process::Child {
        let mut cmd = self.connector(&["listen"]).cmd;
        cmd.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let child = cmd.spawn().expect("spawn connector listen");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(self.receiver).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "connector listen did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        child
    }

    /// (entity, key, status, last_error) of every message neither delivered nor skipped.
    pub fn undelivered(&self) -> Vec<(String, String, String, String)> {
        let conn = rusqlite::Connection::open(self.dir.join("connector.db")).unwrap();
        // A `listen` or `sync` may be writing (tests/crash.rs).
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .unwrap();
        let mut stmt = conn
            .prepare(
                "SELECT entity, natural_key, status, coalesce(last_error, '') FROM messages
                 WHERE status NOT IN ('delivered', 'skipped') ORDER BY id",
            )
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    /// Each Acumatica stock item with its Magento product; panics naming a SKU Magento lacks.
    pub fn stock_items_with_products(&self) -> Vec<(Value, Value)> {
        let magento = self.magento_state();
        let products = magento["products"].as_array().unwrap();
        let acumatica = self.acumatica_state();
        acumatica["entities"]["stock_items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| {
                let sku = item["InventoryID"].as_str().unwrap();
                let product = products
                    .iter()
                    .find(|p| p["sku"] == sku)
                    .unwrap_or_else(|| panic!("{sku} is not in Magento"));
                (item.clone(), product.clone())
            })
            .collect()
    }

    /// The end state every sync must reach: each Acumatica stock item in Magento with its
    /// price and on-hand total, each Magento order in Acumatica exactly once with its grand
    /// total, no customer email twice, and no Acumatica session left open.
    pub fn assert_converged(&self) {
        let cents = |v: &Value| (v.as_f64().unwrap_or(f64::NAN) * 100.0).round() as i64;
        let acumatica = self.acumatica_state();
        let magento = self.magento_state();
        for (item, p) in self.stock_items_with_products() {
            let sku = item["InventoryID"].as_str().unwrap();
            assert_eq!(
                cents(&p["price"]),
                cents(&item["DefaultPrice"]),
                "{sku} price"
            );
            assert_eq!(
                p["qty_per_source"]["default"].as_f64().unwrap_or(0.0),
                on_hand(&item),
                "{sku} qty"
            );
        }
        let orders = acumatica["entities"]["sales_orders"].as_array().unwrap();
        for m in magento["orders"].as_array().unwrap() {
            let inc = &m["increment_id"];
            let found: Vec<_> = orders
                .iter()
                .filter(|o| &o["CustomerOrder"] == inc)
                .collect();
            assert_eq!(found.len(), 1, "order {inc} in Acumatica: {found:?}");
            assert_eq!(
                cents(&found[0]["OrderTotal"]),
                cents(&m["grand_total"]),
                "order {inc} total"
            );
        }
        let emails: Vec<&Value> = acumatica["entities"]["customers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| &c["Email"])
            .filter(|e| e.is_string())
            .collect();
        for (i, e) in emails.iter().enumerate() {
            assert!(!emails[..i].contains(e), "customer {e} twice");
        }
        let sessions = &acumatica["sessions"];
        assert_eq!(sessions["open_sessions"], 0, "{sessions}");
    }
}

/// An Acumatica stock item's on-hand quantity over all its warehouses.
pub fn on_hand(item: &Value) -> f64 {
    item["WarehouseDetails"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["QtyOnHand"].as_f64().unwrap_or(0.0))
        .sum()
}
