//! `connector doctor` through the binary against the sandbox: a healthy setup, a wrong
//! Magento token, an object deleted in Acumatica after init, and the push test with and
//! without a receiver. Budget: under 30 s.

mod util;

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use util::sandbox::SandboxEnv;

fn json_of(out: &util::RunOutput) -> Value {
    serde_json::from_str(&out.stdout())
        .unwrap_or_else(|e| panic!("not JSON ({e})\n{}", out.report()))
}

/// The line of one check in the human output.
fn line_of(out: &util::RunOutput, check: &str) -> String {
    out.stdout()
        .lines()
        .find(|l| l.get(6..).is_some_and(|rest| rest.starts_with(check)))
        .unwrap_or_else(|| panic!("no line for {check:?}\n{}", out.report()))
        .to_string()
}

#[test]
fn a_healthy_setup_passes_every_check() {
    let env = SandboxEnv::start();
    env.connector(&["init", "--yes"]).expect_exit(0);
    let out = env.connector(&["doctor"]).expect_exit(0);
    for line in out.stdout().lines().filter(|l| !l.contains(" OK, ")) {
        // Sessions in use cannot be read through Acumatica's API: that one says so honestly.
        if line.starts_with("WARN  licence") {
            assert!(line.contains("not observable"), "{line}");
            continue;
        }
        assert!(line.starts_with("OK    "), "{line}\n{}", out.report());
    }
    for check in [
        "config",
        "store",
        "store integrity",
        "state",
        "sync lock",
        "acumatica login",
        "magento login",
        "clock acumatica",
        "clock magento",
        "endpoint MCConnector",
        "generic inquiry MC-items",
        "push notification MC-prices",
        "schedule MC-resend-push",
    ] {
        line_of(&out, check);
    }
    // Every session doctor opened was logged out again.
    let sessions = &env.acumatica_state()["sessions"];
    assert_eq!(sessions["open_sessions"], 0, "{sessions}");
    assert_eq!(sessions["logins"], sessions["logouts"], "{sessions}");
    let report = json_of(&env.connector(&["doctor", "--json"]).expect_exit(0));
    assert_eq!(report["fail"], 0, "{report}");
    assert_eq!(report["warn"], 1, "{report}");
    let checks = report["checks"].as_array().unwrap();
    assert!(
        checks
            .iter()
            .all(|c| c["check"].is_string() && c["detail"].is_string()),
        "{report}"
    );
}

#[test]
fn a_wrong_magento_token_fails_without_printing_any_secret() {
    let env = SandboxEnv::start();
    env.connector(&["init", "--yes"]).expect_exit(0);
    let config = std::fs::read_to_string(env.dir.join("connector.toml")).unwrap();
    let token = env.sandbox.credentials().magento_access_token;
    let wrong = "wrong-magento-token-4f1e";
    env.dir
        .write("connector.toml", config.replace(&token, wrong));
    let out = env.connector(&["doctor"]).expect_exit(1);
    out.one_line_error().stderr_has("magento login");
    let line = line_of(&out, "magento login");
    assert!(line.starts_with("FAIL"), "{line}");
    assert!(line.contains("401"), "{line}");
    assert!(line.contains("hint: check magento.access_token"), "{line}");
    // Acumatica is still fine.
    assert!(line_of(&out, "acumatica login").starts_with("OK"));
    let creds = env.sandbox.credentials();
    let json = env.connector(&["doctor", "--json"]).expect_exit(1);
    for text in [out.stdout(), out.stderr(), json.stdout(), json.stderr()] {
        for secret in [
            wrong,
            creds.acumatica_password.as_str(),
            "sandbox-receiver-secret",
        ] {
            assert!(!text.contains(secret), "a secret was printed: {text}");
        }
    }
}

/// Changes objects through the connector's endpoint, as an administrator would on the
/// screens: `(method, entity, name, body)`; a DELETE has no body.
fn edit_in_acumatica(
    env: &SandboxEnv,
    edits: Vec<(reqwest::Method, &'static str, &'static str, Value)>,
) {
    let base = env.sandbox.acumatica_url.clone();
    let creds = env.sandbox.credentials();
    env.block_on(async move {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .unwrap();
        let login = http
            .post(format!("{base}/entity/auth/login"))
            .json(&json!({
                "name": creds.acumatica_username,
                "password": creds.acumatica_password,
                "tenant": creds.acumatica_tenant,
                "branch": creds.acumatica_branch,
            }))
            .send()
            .await
            .unwrap();
        assert!(login.status().is_success(), "login: {}", login.status());
        for (method, entity, name, body) in edits {
            let url = format!("{base}/entity/MCConnector/24.200.001/{entity}");
            let request = if method == reqwest::Method::DELETE {
                http.delete(format!("{url}/{name}"))
            } else {
                http.request(method.clone(), url).json(&body)
            };
            let reply = request.send().await.unwrap();
            let status = reply.status();
            assert!(
                status.is_success(),
                "{method} {entity} {name}: {status} {}",
                reply.text().await.unwrap_or_default()
            );
        }
        http.post(format!("{base}/entity/auth/logout"))
            .send()
            .await
            .unwrap();
    });
}

#[test]
fn an_object_deleted_in_acumatica_after_init_is_drift() {
    let env = SandboxEnv::start();
    env.connector(&["init", "--yes"]).expect_exit(0);
    let delete = reqwest::Method::DELETE;
    edit_in_acumatica(
        &env,
        vec![
            (delete.clone(), "PushNotification", "MC-prices", Value::Null),
            (delete, "GenericInquiry", "MC-prices", Value::Null),
            (
                reqwest::Method::PUT,
                "PushNotification",
                "MC-items",
                json!({
                    "DestinationName": {"value": "MC-items"},
                    "Address": {"value": "http://127.0.0.1:9/elsewhere"},
                }),
            ),
        ],
    );
    let out = env.connector(&["doctor"]).expect_exit(1);
    out.one_line_error().stderr_has("generic inquiry MC-prices");
    let line = line_of(&out, "generic inquiry MC-prices");
    assert!(line.starts_with("FAIL"), "{line}");
    assert!(line.contains("missing"), "{line}");
    assert!(line.contains("run `connector init`"), "{line}");
    assert!(line_of(&out, "push notification MC-prices").starts_with("FAIL"));
    assert!(line_of(&out, "generic inquiry MC-items").starts_with("OK"));
    let changed = line_of(&out, "push notification MC-items");
    assert!(changed.starts_with("FAIL"), "{changed}");
    assert!(
        changed.contains("changed in Acumatica: address differ"),
        "{changed}"
    );
    // init repairs it; doctor agrees.
    env.connector(&["init", "--yes"]).expect_exit(0);
    env.connector(&["doctor"]).expect_exit(0);
}

#[test]
fn the_push_test_passes_with_a_receiver_and_fails_in_time_without() {
    let env = SandboxEnv::start();
    env.connector(&["init", "--yes"]).expect_exit(0);

    // No receiver: the notification cannot arrive; doctor gives up after --timeout.
    let started = Instant::now();
    let out = env
        .connector(&["doctor", "--push-test", "--timeout", "2"])
        .expect_exit(1);
    assert!(started.elapsed() < Duration::from_secs(15));
    let line = line_of(&out, "push test");
    assert!(line.starts_with("FAIL"), "{line}");
    assert!(line.contains("connector listen"), "{line}");
    assert!(line.contains("receiver.public_url"), "{line}");

    // With `connector listen` running it arrives.
    let mut listen = env.connector(&["listen"]).cmd;
    listen.stderr(std::process::Stdio::piped());
    let mut child = listen.spawn().expect("start connector listen");
    let mut first = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.contains("listening on"), "{first}");
    let out = env
        .connector(&["doctor", "--push-test", "--timeout", "20"])
        .output();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(out.output.status.code(), Some(0), "{}", out.report());
    let line = line_of(&out, "push test");
    assert!(line.starts_with("OK"), "{line}");
    assert!(line.contains("arrived through the receiver"), "{line}");

    // The test record never reaches Magento, whichever path reads it.
    let report = json_of(&env.connector(&["sync", "--json"]).expect_exit(0));
    assert_eq!(report["entities"]["items"]["delivered"], 20, "{report}");
    let products = env.magento_state();
    assert!(
        !products.to_string().contains("MC-DOCTOR"),
        "the probe reached Magento"
    );
}

#[test]
fn bad_doctor_flags_get_one_clear_line() {
    let env = SandboxEnv::start();
    env.connector(&["doctor", "--timeout", "5"])
        .expect_exit(2)
        .stderr_has("--push-test");
    env.connector(&["doctor", "--push-test", "--timeout", "soon"])
        .expect_exit(2)
        .stderr_has("soon");
    // A secret missing: named, and nothing else is tried.
    let config = std::fs::read_to_string(env.dir.join("connector.toml")).unwrap();
    env.dir.write(
        "connector.toml",
        config.replace("secret = \"sandbox-receiver-secret\"\n", ""),
    );
    let out = env.connector(&["doctor"]).expect_exit(1);
    let line = line_of(&out, "config");
    assert!(
        line.starts_with("FAIL") && line.contains("receiver.secret"),
        "{line}"
    );
    assert_eq!(out.stdout().lines().count(), 2, "{}", out.report());
    // Without a config file: one FAIL line, exit 1.
    let dir = util::TestDir::new();
    let out = dir.command(&["doctor"]).expect_exit(1);
    assert!(
        line_of(&out, "config").starts_with("FAIL"),
        "{}",
        out.report()
    );
    out.one_line_error();
}

#[test]
fn a_licence_without_a_free_api_user_slot_fails_the_licence_check() {
    let env = SandboxEnv::start();
    env.connector(&["init", "--yes"]).expect_exit(0);
    env.acumatica_control("limits", json!({ "max_sessions": 0 }));
    let started = Instant::now();
    let out = env.connector(&["doctor"]).expect_exit(1);
    assert!(started.elapsed() < Duration::from_secs(20));
    let line = line_of(&out, "licence");
    assert!(line.starts_with("FAIL"), "{line}\n{}", out.report());
    assert!(line.contains("API-user slot"), "{line}");
    assert!(line_of(&out, "acumatica login").starts_with("FAIL"));
    // Magento is checked all the same.
    assert!(line_of(&out, "magento login").starts_with("OK"));
}
