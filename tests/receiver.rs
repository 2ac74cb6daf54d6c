//! The push-notification receiver over real HTTP: what Acumatica would see, and what lands in
//! the queue. Budget: under 15 s.

mod util;

use std::time::Duration;

use connector::entities::Entity;
use connector::receiver::{self, ReceiverSettings};
use connector::secret::Secret;
use connector::store::{LifecycleState, Store};
use serde_json::json;

const SECRET: &str = "s3cret-header-value";

fn settings(dir: &tempfile::TempDir, max_body_bytes: u64) -> ReceiverSettings {
    ReceiverSettings {
        bind: "127.0.0.1:0".parse().unwrap(),
        path: "/push".into(),
        header_name: "x-connector-secret".parse().unwrap(),
        secret: Secret::new(SECRET),
        max_body_bytes,
        max_connections: 64,
        prefix: "MC".into(),
        timezone: chrono_tz::America::New_York,
        store_path: dir.path().join("connector.db"),
        catch_up_entities: vec![
            Entity::Items,
            Entity::Inventory,
            Entity::Prices,
            Entity::Shipments,
        ],
        group_commit: true,
    }
}

fn set_state(dir: &tempfile::TempDir, state: LifecycleState) {
    let mut store = Store::open(&dir.path().join("connector.db")).unwrap();
    if store.lifecycle().unwrap().state != state {
        store.transition(state, "test").unwrap();
    }
}

fn item_notification(id: &str, item: &str, modified: &str) -> serde_json::Value {
    json!({
        "Query": "MC-items", "CompanyId": "Company", "Id": id, "TimeStamp": 638680000000000000i64,
        "Inserted": [{"InventoryID": item, "Description": "Widget", "LastModifiedDateTime": modified}],
        "Deleted": [], "AdditionalInfo": {}
    })
}

async fn post(addr: std::net::SocketAddr, secret: Option<&str>, body: Vec<u8>) -> (u16, String) {
    let mut request = reqwest::Client::new()
        .post(format!("http://{addr}/push"))
        .header("content-type", "application/json")
        .body(body);
    if let Some(secret) = secret {
        request = request.header("X-Connector-Secret", secret);
    }
    let response = request.send().await.expect("the receiver answers");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

fn messages(dir: &tempfile::TempDir, item: &str) -> Vec<(String, String, String)> {
    Store::open(&dir.path().join("connector.db"))
        .unwrap()
        .messages_for("items", item)
        .unwrap()
}

#[tokio::test]
async fn an_accepted_notification_is_queued_with_entity_key_and_version() {
    let dir = tempfile::tempdir().unwrap();
    set_state(&dir, LifecycleState::Active);
    let running = receiver::start(settings(&dir, 1 << 20)).await.unwrap();
    let body = item_notification("n1", "AB-1", "2026-11-26T10:00:00.500").to_string();
    let (status, text) = post(running.addr, Some(SECRET), body.into_bytes()).await;
    assert_eq!(status, 200, "{text}");
    running.stop().await.unwrap();
    assert_eq!(
        messages(&dir, "AB-1"),
        vec![(
            "upsert".into(),
            "2026-11-26T15:00:00.500Z".into(),
            "pending".into()
        )]
    );
}

#[tokio::test]
async fn duplicates_are_stored_once_and_a_split_update_is_one_upsert() {
    let dir = tempfile::tempdir().unwrap();
    set_state(&dir, LifecycleState::Active);
    let running = receiver::start(settings(&dir, 1 << 20)).await.unwrap();
    let body = item_notification("n1", "AB-1", "2026-11-26T10:00:00").to_string();
    for _ in 0..3 {
        assert_eq!(
            post(running.addr, Some(SECRET), body.clone().into_bytes())
                .await
                .0,
            200
        );
    }
    // An update split over two requests: the old row alone, then the new row alone.
    let old_half = json!({"Query": "MC-items", "Id": "n2", "TimeStamp": 1,
        "Deleted": [{"InventoryID": "CD-2", "LastModifiedDateTime": "2026-11-26T11:00:00"}]});
    let new_half = json!({"Query": "MC-items", "Id": "n3", "TimeStamp": 1,
        "Inserted": [{"InventoryID": "CD-2", "LastModifiedDateTime": "2026-11-26T11:00:00"}]});
    assert_eq!(
        post(
            running.addr,
            Some(SECRET),
            old_half.to_string().into_bytes()
        )
        .await
        .0,
        200
    );
    assert_eq!(
        post(
            running.addr,
            Some(SECRET),
            new_half.to_string().into_bytes()
        )
        .await
        .0,
        200
    );
    running.stop().await.unwrap();

    assert_eq!(
        messages(&dir, "AB-1").len(),
        1,
        "a resent notification is stored once"
    );
    let split = messages(&dir, "CD-2");
    let live: Vec<_> = split
        .iter()
        .filter(|(_, _, status)| status == "pending")
        .collect();
    assert_eq!(live.len(), 1, "{split:?}");
    assert_eq!(live[0].0, "upsert");
    let counts = Store::open(&dir.path().join("connector.db"))
        .unwrap()
        .receiver_counts()
        .unwrap();
    assert_eq!(counts.get("duplicates"), Some(&2), "{counts:?}");
}

#[tokio::test]
async fn bad_requests_get_their_status_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    set_state(&dir, LifecycleState::Active);
    let running = receiver::start(settings(&dir, 1 << 20)).await.unwrap();
    let good = item_notification("n1", "AB-1", "2026-11-26T10:00:00")
        .to_string()
        .into_bytes();
    assert_eq!(post(running.addr, None, good.clone()).await.0, 401);
    assert_eq!(post(running.addr, Some("wrong"), good.clone()).await.0, 401);
    let (status, text) = post(running.addr, Some(SECRET), b"{not json".to_vec()).await;
    assert_eq!(status, 400);
    assert!(text.contains("not JSON"), "{text}");
    let unknown = json!({"Query": "SomeoneElsesGI", "Id": "x", "Inserted": []}).to_string();
    let (status, text) = post(running.addr, Some(SECRET), unknown.into_bytes()).await;
    assert_eq!(status, 400);
    assert!(text.contains("unknown Query"), "{text}");
    assert!(!text.contains("SECRET") && !text.contains(SECRET));
    running.stop().await.unwrap();
    assert!(messages(&dir, "AB-1").is_empty());
    let counts = Store::open(&dir.path().join("connector.db"))
        .unwrap()
        .receiver_counts()
        .unwrap();
    assert_eq!(counts.get("rejected_unauthorized"), Some(&2), "{counts:?}");
    assert_eq!(counts.get("rejected_malformed"), Some(&1), "{counts:?}");
    assert_eq!(counts.get("rejected_unknown_query"), Some(&1), "{counts:?}");
}

#[tokio::test]
async fn an_oversize_notification_is_413_and_queues_a_catch_up() {
    let dir = tempfile::tempdir().unwrap();
    set_state(&dir, LifecycleState::Active);
    let running = receiver::start(settings(&dir, 4096)).await.unwrap();
    let rows: Vec<_> = (0..200)
        .map(|i| json!({"InventoryID": format!("IT-{i}"), "LastModifiedDateTime": "2026-11-26T10:00:00"}))
        .collect();
    let big = json!({"Query": "MC-prices", "Id": "mass", "Inserted": rows}).to_string();
    assert!(big.len() > 4096);
    assert_eq!(
        post(running.addr, Some(SECRET), big.into_bytes()).await.0,
        413
    );
    running.stop().await.unwrap();
    let store = Store::open(&dir.path().join("connector.db")).unwrap();
    let catch_ups: Vec<String> = store
        .open_catch_ups()
        .unwrap()
        .into_iter()
        .map(|c| c.0)
        .collect();
    assert_eq!(catch_ups, vec!["items", "inventory", "prices", "shipments"]);
    assert_eq!(store.queue_counts().unwrap().pending, 0);
}

#[tokio::test]
async fn paused_holds_and_stopped_or_uninitialized_refuse_with_503() {
    let dir = tempfile::tempdir().unwrap();
    let running = receiver::start(settings(&dir, 1 << 20)).await.unwrap();
    let body = |id: &str| {
        item_notification(id, "AB-1", "2026-11-26T10:00:00")
            .to_string()
            .into_bytes()
    };
    // A fresh store is uninitialized.
    assert_eq!(post(running.addr, Some(SECRET), body("n0")).await.0, 503);
    // The state is read at each commit: another process may change it while listen runs.
    set_state(&dir, LifecycleState::Paused);
    assert_eq!(post(running.addr, Some(SECRET), body("n1")).await.0, 200);
    set_state(&dir, LifecycleState::Stopped);
    assert_eq!(post(running.addr, Some(SECRET), body("n2")).await.0, 503);
    running.stop().await.unwrap();
    assert_eq!(
        messages(&dir, "AB-1"),
        vec![(
            "upsert".into(),
            "2026-11-26T15:00:00.000Z".into(),
            "held".into()
        )]
    );
}

#[test]
fn kill_9_right_after_a_200_loses_nothing() {
    use std::io::{BufRead, BufReader};
    let dir = util::TestDir::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = util::example_config_with(
        "listen = \"127.0.0.1:8700\"",
        &format!("listen = \"127.0.0.1:{port}\""),
    );
    dir.write("connector.toml", config);
    {
        let mut store = Store::open(&dir.join("connector.db")).unwrap();
        store.transition(LifecycleState::Active, "test").unwrap();
    }
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_connector"))
        .current_dir(dir.path())
        .args(["listen"])
        .env("CONNECTOR_RECEIVER_SECRET", SECRET)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for "listening on …".
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("listening on"), "{line}");

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let acknowledged = runtime.block_on(async {
        let mut acknowledged = Vec::new();
        let mut tasks = Vec::new();
        for i in 0..40 {
            let body =
                item_notification(&format!("n{i}"), &format!("IT-{i}"), "2026-11-26T10:00:00");
            tasks.push(tokio::spawn(async move {
                (
                    i,
                    post(addr, Some(SECRET), body.to_string().into_bytes())
                        .await
                        .0,
                )
            }));
        }
        for task in tasks {
            let (i, status) = task.await.unwrap();
            if status == 200 {
                acknowledged.push(i);
            }
        }
        acknowledged
    });
    // SIGKILL: no chance to flush anything that was not already committed.
    child.kill().unwrap();
    child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(acknowledged.len(), 40);
    let store = Store::open(&dir.join("connector.db")).unwrap();
    for i in acknowledged {
        assert_eq!(
            store
                .messages_for("items", &format!("IT-{i}"))
                .unwrap()
                .len(),
            1,
            "IT-{i} lost"
        );
    }
}

#[test]
fn sigterm_finishes_in_flight_work_and_exits_0() {
    use std::io::{BufRead, BufReader};
    let dir = util::TestDir::new();
    // Port 0: a port picked beforehand could be taken by a parallel test before `listen` binds.
    dir.write(
        "connector.toml",
        util::example_config_with("listen = \"127.0.0.1:8700\"", "listen = \"127.0.0.1:0\""),
    );
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_connector"))
        .current_dir(dir.path())
        .args(["listen"])
        .env("CONNECTOR_RECEIVER_SECRET", SECRET)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("listening on"), "{line}");
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

mod arbitrary_requests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        // Each case is a real HTTP request: keep the count small for CI.
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        #[test]
        fn no_body_or_header_makes_the_receiver_fail_or_store_garbage(
            body in proptest::collection::vec(any::<u8>(), 0..512),
            secret in prop_oneof![Just(SECRET.to_string()), "[ -~]{0,40}"],
            json_like in any::<bool>(),
        ) {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            runtime.block_on(async {
                let dir = tempfile::tempdir().unwrap();
                set_state(&dir, LifecycleState::Active);
                let running = receiver::start(settings(&dir, 4096)).await.unwrap();
                let body = if json_like {
                    let text = String::from_utf8_lossy(&body).to_string();
                    json!({"Query": "MC-items", "Id": text, "Inserted": [{"InventoryID": text}]}).to_string().into_bytes()
                } else {
                    body
                };
                let (status, text) = post(running.addr, Some(&secret), body).await;
                running.stop().await.unwrap();
                prop_assert!(matches!(status, 200 | 400 | 401 | 413), "{status} {text}");
                if secret != SECRET {
                    prop_assert_eq!(status, 401);
                }
                prop_assert!(!text.contains(SECRET));
                let counts = Store::open(&dir.path().join("connector.db")).unwrap().queue_counts().unwrap();
                if status != 200 {
                    prop_assert_eq!(counts.pending, 0);
                }
                Ok(())
            })?;
        }
    }
}

#[test]
fn a_change_in_the_simulated_acumatica_arrives_by_push_with_entity_key_and_version() {
    let env = util::sandbox::SandboxEnv::start();
    env.connector(&["init", "--yes"]).expect_exit(0);
    let config = connector::config::Config::load(&env.dir.join("connector.toml")).unwrap();
    let settings = ReceiverSettings::from_config(&config, None).unwrap();
    let running = env.block_on(receiver::start(settings)).unwrap();

    let item = env.acumatica_state()["entities"]["stock_items"][0]["InventoryID"]
        .as_str()
        .unwrap()
        .to_string();
    env.acumatica_control(&format!("items/{item}"), json!({"price": 42.5}));
    // The sandbox posts asynchronously: wait for the messages to land.
    let store_path = env.dir.join("connector.db");
    let mut prices = Vec::new();
    for _ in 0..100 {
        prices = Store::open(&store_path)
            .unwrap()
            .messages_for("prices", &item)
            .unwrap();
        if !prices.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    env.block_on(running.stop()).unwrap();
    assert_eq!(
        prices.len(),
        1,
        "one upsert for the price change: {prices:?}"
    );
    let (operation, version, status) = &prices[0];
    assert_eq!((operation.as_str(), status.as_str()), ("upsert", "pending"));
    // The version is the item's last-modified time, in UTC, as Acumatica's own state says.
    let row = env.acumatica_state()["tables"]["InventoryItem"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["InventoryCD"] == item.as_str())
        .cloned()
        .unwrap();
    let modified = row["LastModifiedDateTime"].as_str().unwrap();
    let expected = chrono::DateTime::parse_from_rfc3339(modified).unwrap();
    let got = chrono::DateTime::parse_from_rfc3339(version).unwrap();
    assert_eq!(got, expected, "version {version} vs Acumatica's {modified}");
    // The items GI saw the same change (its row has LastModifiedDateTime too).
    let items = Store::open(&store_path)
        .unwrap()
        .messages_for("items", &item)
        .unwrap();
    assert_eq!(items.len(), 1, "{items:?}");
}

#[tokio::test]
async fn connections_beyond_max_connections_wait_until_one_closes() {
    let dir = tempfile::tempdir().unwrap();
    set_state(&dir, LifecycleState::Active);
    let mut capped = settings(&dir, 1 << 20);
    capped.max_connections = 2;
    let running = receiver::start(capped).await.unwrap();
    // Two clients that connect and send nothing hold both slots.
    let idle_a = tokio::net::TcpStream::connect(running.addr).await.unwrap();
    let _idle_b = tokio::net::TcpStream::connect(running.addr).await.unwrap();
    let body = item_notification("n1", "CAP-1", "2026-11-26T10:00:00").to_string();
    let held = tokio::time::timeout(
        Duration::from_millis(500),
        post(running.addr, Some(SECRET), body.clone().into_bytes()),
    )
    .await;
    assert!(held.is_err(), "a third connection was served: {held:?}");
    // One closes: the next notification is served.
    drop(idle_a);
    let (status, text) = tokio::time::timeout(
        Duration::from_secs(10),
        post(running.addr, Some(SECRET), body.into_bytes()),
    )
    .await
    .expect("a freed slot serves the next connection");
    assert_eq!(status, 200, "{text}");
    running.stop().await.unwrap();
    assert_eq!(messages(&dir, "CAP-1").len(), 1);
}
