//! The life cycle through the binary against the sandbox: init (idempotent, repairing),
//! deactivate, activate, uninstall — and no session left open after any of them.
//! Budget: under 30 s.

mod util;

use std::time::Duration;

use connector::acumatica::{AcumaticaClient, with_sessions};
use connector::config::Config;
use connector::sandbox::{Faults, SandboxOptions};
use reqwest::Method;
use serde_json::{Value, json};
use util::sandbox::SandboxEnv;

const ENDPOINT: &str = "entity/MCConnector/24.200.001";

fn config(env: &SandboxEnv) -> Config {
    Config::load(&env.dir.join("connector.toml")).expect("the generated config loads")
}

/// An administrator's request through the connector's endpoint (as if edited on the screen).
fn admin(env: &SandboxEnv, method: Method, path: &str, body: Option<Value>) -> Value {
    let config = config(env);
    let client = AcumaticaClient::new(&config).unwrap();
    let url = format!("{}/{ENDPOINT}/{path}", env.sandbox.acumatica_url);
    env.block_on(async {
        with_sessions(&client, async {
            let reply = client.send(method, &url, body.as_ref(), None, true).await?;
            Ok(reply.json("ADMIN", path)?)
        })
        .await
        .unwrap()
    })
}

fn open_sessions(env: &SandboxEnv) -> u64 {
    env.acumatica_state()["sessions"]["open_sessions"]
        .as_u64()
        .unwrap()
}

fn names(state: &Value, key: &str) -> Vec<String> {
    let mut names: Vec<String> = state[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().or(o["id"].as_str()).unwrap().to_string())
        .collect();
    names.sort();
    names
}

fn init(env: &SandboxEnv) -> Value {
    let out = env.connector(&["init", "--yes", "--json"]).expect_exit(0);
    assert_eq!(open_sessions(env), 0, "init left a session open");
    serde_json::from_str(&out.stdout()).expect("init --json")
}

#[test]
fn init_twice_creates_each_object_once_and_the_second_run_changes_nothing() {
    let env = SandboxEnv::start();
    let first = init(&env);
    assert_eq!(first["created"], 10, "{first}");
    let second = init(&env);
    assert_eq!(
        (second["created"].as_u64(), second["repaired"].as_u64()),
        (Some(0), Some(0)),
        "{second}"
    );
    assert_eq!(second["unchanged"], 10);

    let state = env.acumatica_state();
    assert_eq!(
        names(&state, "generic_inquiries"),
        ["MC-inventory", "MC-items", "MC-prices", "MC-shipments"]
    );
    assert_eq!(
        names(&state, "push_notifications"),
        ["MC-inventory", "MC-items", "MC-prices", "MC-shipments"]
    );
    assert_eq!(names(&state, "schedules"), ["MC-resend-push"]);
    for hook in state["push_notifications"].as_array().unwrap() {
        assert_eq!(hook["active"], true);
        assert_eq!(hook["address"], format!("http://{}/push", env.receiver));
    }
    let status = env.connector(&["status", "--json"]).expect_exit(0);
    let status: Value = serde_json::from_str(&status.stdout()).unwrap();
    assert_eq!(status["state"], "active");
    assert_eq!(status["remote_objects"].as_array().unwrap().len(), 10);
}

#[test]
fn init_with_the_local_store_deleted_finds_its_objects_and_duplicates_nothing() {
    let env = SandboxEnv::start();
    init(&env);
    std::fs::remove_file(env.dir.join("connector.db")).unwrap();
    let again = init(&env);
    assert_eq!(again["created"], 0, "{again}");
    let state = env.acumatica_state();
    assert_eq!(state["generic_inquiries"].as_array().unwrap().len(), 4);
    assert_eq!(state["push_notifications"].as_array().unwrap().len(), 4);
}

#[test]
fn init_repairs_an_edited_address_a_dropped_tracked_field_and_a_changed_column() {
    let env = SandboxEnv::start();
    init(&env);
    // An administrator edits three things on the screens.
    admin(
        &env,
        Method::PUT,
        "PushNotification",
        Some(json!({
            "DestinationName": {"value": "MC-items"}, "Address": {"value": "http://127.0.0.1:1/elsewhere"}
        })),
    );
    let hook = admin(
        &env,
        Method::GET,
        "PushNotification?$filter=DestinationName eq 'MC-prices'&$expand=TrackedFields",
        None,
    );
    let tracked = hook[0]["TrackedFields"].as_array().unwrap();
    let drop_id = tracked
        .iter()
        .find(|r| r["FieldName"]["value"] == "BasePrice")
        .unwrap()["id"]
        .clone();
    admin(
        &env,
        Method::PUT,
        "PushNotification",
        Some(json!({
            "DestinationName": {"value": "MC-prices"}, "TrackedFields": [{"id": drop_id, "delete": true}]
        })),
    );
    let gi = admin(
        &env,
        Method::GET,
        "GenericInquiry?$filter=InquiryTitle eq 'MC-items'&$expand=Results",
        None,
    );
    let result_id = gi[0]["Results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["Caption"]["value"] == "Description")
        .unwrap()["id"]
        .clone();
    admin(
        &env,
        Method::PUT,
        "GenericInquiry",
        Some(json!({
            "InquiryTitle": {"value": "MC-items"}, "Results": [{"id": result_id, "Caption": {"value": "Name"}}]
        })),
    );

    let repaired = init(&env);
    assert_eq!(repaired["repaired"], 3, "{repaired}");
    let drift: Vec<(String, Vec<Value>)> = repaired["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["action"] == "repaired")
        .map(|o| {
            (
                o["name"].as_str().unwrap().to_string(),
                o["drift"].as_array().unwrap().clone(),
            )
        })
        .collect();
    assert!(
        drift.contains(&("MC-items".into(), vec![json!("address")])),
        "{drift:?}"
    );
    assert!(
        drift.contains(&("MC-prices".into(), vec![json!("tracked_fields")])),
        "{drift:?}"
    );
    assert!(
        drift.contains(&("MC-items".into(), vec![json!("results")])),
        "{drift:?}"
    );
    // Restored, and a third run finds nothing to do.
    let state = env.acumatica_state();
    let items = state["push_notifications"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == "MC-items")
        .unwrap()
        .clone();
    assert_eq!(items["address"], format!("http://{}/push", env.receiver));
    assert_eq!(init(&env)["repaired"], 0);
}

#[test]
fn init_without_a_terminal_and_without_yes_refuses_and_changes_nothing() {
    let env = SandboxEnv::start();
    env.connector(&["init"])
        .expect_exit(2)
        .one_line_error()
        .stderr_has("pass --yes");
    let state = env.acumatica_state();
    assert!(state["generic_inquiries"].as_array().unwrap().is_empty());
    assert_eq!(open_sessions(&env), 0);
}

#[test]
fn init_answered_no_on_a_terminal_changes_nothing() {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        panic!("`script` (util-linux) is needed to give init a terminal");
    }
    let env = SandboxEnv::start();
    let command = format!(
        "{} --config {} init",
        env!("CARGO_BIN_EXE_connector"),
        env.dir.join("connector.toml").display()
    );
    let mut child = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    use std::io::Write;
    child.stdin.as_mut().unwrap().write_all(b"n\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Are you sure you wish to initialize all features for Magento Connector?"),
        "{text}"
    );
    assert!(text.contains("Nothing was changed."), "{text}");
    assert!(
        env.acumatica_state()["generic_inquiries"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(open_sessions(&env), 0);
}

#[test]
fn pause_stop_and_activate_drive_the_notifications_and_catch_up_what_changed_while_stopped() {
    let env = SandboxEnv::start();
    init(&env);
    env.connector(&["deactivate", "--pause", "--yes"])
        .expect_exit(0)
        .stdout_has("state: paused");
    let active = |env: &SandboxEnv| -> Vec<bool> {
        env.acumatica_state()["push_notifications"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["active"].as_bool().unwrap())
            .collect()
    };
    assert!(
        active(&env).iter().all(|a| *a),
        "pause keeps notifications active"
    );

    env.connector(&["deactivate", "--stop", "--yes"])
        .expect_exit(0)
        .stdout_has("state: stopped");
    assert!(active(&env).iter().all(|a| !*a), "stop turns them off");
    assert_eq!(env.acumatica_state()["schedules"][0]["active"], false);
    env.connector(&["sync"])
        .expect_exit(0)
        .stdout_has("stopped");

    // A change while stopped: no notification goes out; the catch-up must find it.
    let item = env.acumatica_state()["entities"]["stock_items"][0]["InventoryID"]
        .as_str()
        .unwrap()
        .to_string();
    std::thread::sleep(Duration::from_millis(20));
    env.acumatica_control(&format!("items/{item}"), json!({"price": 123.45}));
    env.connector(&["activate", "--yes"])
        .expect_exit(0)
        .stdout_has("queued a catch-up");
    assert!(
        active(&env).iter().all(|a| *a),
        "activate turns them back on"
    );
    let out = env.connector(&["sync", "--json"]).expect_exit(0);
    let report: Value = serde_json::from_str(&out.stdout()).unwrap();
    assert!(
        report["entities"]["prices"]["delivered"].as_u64().unwrap() >= 1,
        "{report}"
    );
    let magento = env.magento_state();
    let product = magento["products"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["sku"] == item.as_str())
        .cloned();
    assert_eq!(product.expect("the item reached Magento")["price"], 123.45);
    assert_eq!(open_sessions(&env), 0);
}

#[test]
fn senseless_commands_say_why_and_exit_2() {
    let env = SandboxEnv::start();
    env.connector(&["deactivate", "--pause", "--yes"])
        .expect_exit(2)
        .stderr_has("run `connector init` first");
    env.connector(&["activate", "--yes"])
        .expect_exit(2)
        .stderr_has("run `connector init` first");
    init(&env);
    env.connector(&["activate", "--yes"])
        .expect_exit(2)
        .stderr_has("already active");
    env.connector(&["uninstall", "--yes"])
        .expect_exit(2)
        .stderr_has("only from the stopped state");
}

#[test]
fn uninstall_removes_exactly_what_init_created() {
    let env = SandboxEnv::start();
    init(&env);
    // Someone else's inquiry on the same site must survive.
    admin(
        &env,
        Method::PUT,
        "GenericInquiry",
        Some(json!({
            "InquiryTitle": {"value": "Sales by region"},
            "Tables": [{"Table": {"value": "SOOrder"}, "Alias": {"value": "O"}}],
            "Results": [{"Object": {"value": "O"}, "Field": {"value": "OrderNbr"}}]
        })),
    );
    env.connector(&["deactivate", "--stop", "--yes"])
        .expect_exit(0);
    env.connector(&["uninstall", "--yes"]).expect_exit(0);
    let state = env.acumatica_state();
    assert_eq!(names(&state, "generic_inquiries"), ["Sales by region"]);
    assert!(state["push_notifications"].as_array().unwrap().is_empty());
    assert!(state["schedules"].as_array().unwrap().is_empty());
    let status = env.connector(&["status", "--json"]).expect_exit(0);
    let status: Value = serde_json::from_str(&status.stdout()).unwrap();
    assert_eq!(status["state"], "uninitialized");
    assert!(status["remote_objects"].as_array().unwrap().is_empty());
    assert_eq!(open_sessions(&env), 0);
}

#[test]
fn a_wrong_password_is_one_clear_error_and_exit_1() {
    let env = SandboxEnv::start();
    let out = env
        .connector(&["init", "--yes"])
        .env("CONNECTOR_ACUMATICA_PASSWORD", "wrong-password-value")
        .expect_exit(1);
    out.one_line_error()
        .stderr_has("refused the login of user `admin` to tenant `Company`");
    assert!(!out.stderr().contains("wrong-password-value"));
    assert!(
        env.acumatica_state()["generic_inquiries"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn ctrl_c_during_init_leaves_no_session_open() {
    let env = SandboxEnv::with(SandboxOptions {
        faults: Faults {
            latency_ms: 150,
            ..Faults::default()
        },
        ..SandboxOptions::default()
    });
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_connector"))
        .args([
            "--config",
            env.dir.join("connector.toml").to_str().unwrap(),
            "init",
            "--yes",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until init holds a session, then interrupt it.
    let mut waited = 0;
    while open_sessions(&env) == 0 && waited < 100 {
        std::thread::sleep(Duration::from_millis(20));
        waited += 1;
    }
    assert!(open_sessions(&env) > 0, "init never logged in");
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert_ne!(status.code(), Some(0));
    assert_eq!(
        open_sessions(&env),
        0,
        "the interrupted init left a session open"
    );
}

#[test]
fn a_login_over_the_licence_limit_is_retried_until_a_slot_frees() {
    let env = SandboxEnv::start();
    env.acumatica_control("limits", json!({"max_sessions": 1}));
    // Another integration holds the only API-user slot for a moment.
    let creds = env.sandbox.credentials();
    let url = env.sandbox.acumatica_url.clone();
    let holder = env.block_on(async {
        let client = reqwest::Client::builder().cookie_store(true).build().unwrap();
        let r = client.post(format!("{url}/entity/auth/login"))
            .json(&json!({"name": creds.acumatica_username, "password": creds.acumatica_password, "tenant": creds.acumatica_tenant}))
            .send().await.unwrap();
        assert_eq!(r.status(), 204);
        client
    });
    std::thread::scope(|scope| {
        scope.spawn(|| {
            std::thread::sleep(Duration::from_millis(800));
            env.block_on(async {
                let r = holder
                    .post(format!("{url}/entity/auth/logout"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 204);
            });
        });
        env.connector(&["init", "--yes"]).expect_exit(0);
    });
    let sessions = env.acumatica_state()["sessions"].clone();
    assert!(
        sessions["logins_over_limit"].as_u64().unwrap() >= 1,
        "{sessions}"
    );
    assert_eq!(sessions["open_sessions"], 0);
}

#[test]
fn init_dry_run_prints_the_plan_and_changes_nothing() {
    let env = SandboxEnv::start();
    let out = env.connector(&["init", "--dry-run"]).expect_exit(0);
    out.stdout_has("would create");
    out.stdout_has("dry run, nothing changed: would be 10 created");
    let state = env.acumatica_state();
    assert!(state["endpoints"].as_array().unwrap().is_empty());
    assert!(state["generic_inquiries"].as_array().unwrap().is_empty());
    let status = env.connector(&["status", "--json"]).expect_exit(0);
    let status: Value = serde_json::from_str(&status.stdout()).unwrap();
    assert_eq!(status["state"], "uninitialized");
    // After a real init, a dry run finds nothing to do.
    init(&env);
    let out = env
        .connector(&["init", "--dry-run", "--json"])
        .expect_exit(0);
    let plan: Value = serde_json::from_str(&out.stdout()).unwrap();
    assert_eq!(
        (plan["created"].as_u64(), plan["repaired"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(open_sessions(&env), 0);
}

#[test]
fn status_json_reports_state_objects_queue_and_last_run() {
    let env = SandboxEnv::start();
    init(&env);
    env.connector(&["sync"]).expect_exit(0);
    let out = env.connector(&["status", "--json"]).expect_exit(0);
    let status: Value = serde_json::from_str(&out.stdout()).unwrap();
    assert_eq!(status["state"], "active");
    assert!(status["since"].is_string());
    let objects = status["remote_objects"].as_array().unwrap();
    assert!(
        objects
            .iter()
            .all(|o| o["kind"].is_string() && o["name"].is_string() && o["active"] == true)
    );
    for key in ["pending", "held", "failed", "dead", "skipped"] {
        assert!(status["queue"][key].is_u64(), "queue.{key} in {status}");
    }
    assert_eq!(status["last_run"]["outcome"], "done");
}
