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
}
