//! The ready-to-use `connector.toml` that `connector sandbox --write-config` writes.

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;

use anyhow::Context;

use super::Sandbox;

/// A loopback port free right now, for the receiver of the generated config.
pub fn free_loopback_port() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot find a free loopback port")?;
    Ok(listener.local_addr()?)
}

/// The config text for a running sandbox, with the receiver on `receiver`.
pub fn render(sandbox: &Sandbox, receiver: SocketAddr) -> String {
    let c = sandbox.credentials();
    format!(
        r#"# connector.toml for the sandbox started by `connector sandbox` (simulated systems on loopback).
# Every key is described in connector.toml.example and docs/configuration.md.

[store]
path = "connector.db"
retention_days = 30

[acumatica]
url = "{acumatica_url}"
tenant = "{tenant}"
branch = "{branch}"
auth = "session"
username = "{username}"
password = "{password}"
timezone = "America/New_York"
prefix = "MC"
max_sessions = 2
max_concurrent_requests = 4
requests_per_minute = 600

[magento]
url = "{magento_url}"
store_code = "{store_code}"
auth = "bearer"
access_token = "{access_token}"
inventory_api = "msi"
inventory_source = "default"
max_concurrent_requests = 8

[receiver]
listen = "{receiver}"
public_url = "http://{receiver}/push"
header_name = "X-Connector-Secret"
secret = "sandbox-receiver-secret"

[sync]
batch_size = 100
max_attempts = 8
overlap_seconds = 300

[entities]
items = true
inventory = true
prices = true
customers = true
orders = true
shipments = true
"#,
        acumatica_url = sandbox.acumatica_url,
        tenant = c.acumatica_tenant,
        branch = c.acumatica_branch,
        username = c.acumatica_username,
        password = c.acumatica_password,
        magento_url = sandbox.magento_url,
        store_code = c.magento_store_code,
        access_token = c.magento_access_token,
    )
}

/// Writes `text` to `path` whole or not at all (temp file, then rename), readable by the
/// owner only since it holds credentials.
pub fn write_new(path: &Path, text: &str) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("connector.toml")
    ));
    let write = || -> std::io::Result<()> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().with_context(|| format!("cannot write the sandbox config to {}", path.display()))
}
