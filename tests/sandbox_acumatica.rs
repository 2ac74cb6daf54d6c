//! The simulated Acumatica over real HTTP on a loopback port: sign-in and limits, the
//! contract-based entities and their rejections, actions, control routes, transactions.

mod support;

use std::time::{Duration, Instant};

use connector::sandbox::acumatica::AcumaticaOptions;
use connector::sandbox::{Sandbox, SandboxOptions};
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::openapi::Spec;

const ENDPOINT: &str = "entity/Default/24.200.001";

async fn start_with(options: SandboxOptions) -> Sandbox {
    Sandbox::start(options).await.expect("sandbox starts")
}

async fn start() -> Sandbox {
    start_with(SandboxOptions::default()).await
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap()
}

fn login_body(sandbox: &Sandbox) -> Value {
    let c = sandbox.credentials();
    json!({
        "name": c.acumatica_username,
        "password": c.acumatica_password,
        "tenant": c.acumatica_tenant,
        "branch": c.acumatica_branch,
    })
}

async fn login(sandbox: &Sandbox, client: &reqwest::Client) -> reqwest::Response {
    client
        .post(format!("{}/entity/auth/login", sandbox.acumatica_url))
        .json(&login_body(sandbox))
        .send()
        .await
        .unwrap()
}

/// A client signed in with a cookie session.
async fn signed_in(sandbox: &Sandbox) -> reqwest::Client {
    let client = client();
    let response = login(sandbox, &client).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    client
}

fn url(sandbox: &Sandbox, path: &str) -> String {
    format!("{}/{ENDPOINT}/{path}", sandbox.acumatica_url)
}

async fn state(sandbox: &Sandbox) -> Value {
    reqwest::get(format!("{}/__sandbox/state", sandbox.acumatica_url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn set_limits(sandbox: &Sandbox, limits: Value) {
    let response = client()
        .post(format!("{}/__sandbox/limits", sandbox.acumatica_url))
        .json(&limits)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        response.text().await.unwrap()
    );
}

/// Reads a reply and checks it against the official description (`Default_24.200.001.json`,
/// strict: an undeclared field or status fails the test); returns its status and body.
async fn checked(method: &str, response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let path = response.url().path().to_string();
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {text}"))
    };
    let Some((_, spec_path)) = path.split_once(&format!("/{ENDPOINT}")) else {
        panic!("{method} {path} is not under the endpoint");
    };
    if let Err(errors) = Spec::acumatica().check_response(method, spec_path, status.as_u16(), &body)
    {
        panic!(
            "{method} {path} -> {status} does not conform:\n{}\n{body}",
            errors.join("\n")
        );
    }
    (status, body)
}

async fn get_json(client: &reqwest::Client, url: &str) -> (StatusCode, Value) {
    checked("GET", client.get(url).send().await.unwrap()).await
}

async fn put_json(client: &reqwest::Client, url: &str, body: &Value) -> (StatusCode, Value) {
    checked("PUT", client.put(url).json(body).send().await.unwrap()).await
}

fn first_item(state: &Value) -> String {
    state["entities"]["stock_items"][0]["InventoryID"]
        .as_str()
        .unwrap()
        .to_string()
}

// ---------------------------------------------------------------- sessions

#[tokio::test]
async fn login_sets_the_session_cookies_and_logout_ends_the_session() {
    let sandbox = start().await;
    let client = client();
    let response = login(&sandbox, &client).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let cookies: Vec<String> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert!(
        cookies.iter().any(|c| c.starts_with("ASP.NET_SessionId=")),
        "{cookies:?}"
    );
    assert!(
        cookies.iter().any(|c| c.starts_with(".ASPXAUTH=")),
        "{cookies:?}"
    );

    let (status, items) = get_json(&client, &url(&sandbox, "StockItem")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(items.as_array().unwrap().len(), 20);
    assert_eq!(state(&sandbox).await["sessions"]["open_sessions"], 1);

    let response = client
        .post(format!("{}/entity/auth/logout", sandbox.acumatica_url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let (status, body) = get_json(&client, &url(&sandbox, "StockItem")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["message"].is_string());
    let s = state(&sandbox).await;
    assert_eq!(s["sessions"]["open_sessions"], 0);
    assert_eq!(s["sessions"]["logins"], 1);
    assert_eq!(s["sessions"]["logouts"], 1);
    assert_eq!(s["sessions"]["peak_sessions"], 1);
}

#[tokio::test]
async fn wrong_password_gets_acumaticas_invalid_credentials_error() {
    let sandbox = start().await;
    let mut body = login_body(&sandbox);
    body["password"] = json!("wrong");
    let response = client()
        .post(format!("{}/entity/auth/login", sandbox.acumatica_url))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["message"], "An error has occurred.");
    assert!(
        error["exceptionMessage"]
            .as_str()
            .unwrap()
            .contains("Invalid credentials")
    );
    assert_eq!(error["exceptionType"], "PX.Data.PXException");
    assert_eq!(state(&sandbox).await["sessions"]["open_sessions"], 0);
}

#[tokio::test]
async fn company_with_tenant_is_refused_and_locale_is_accepted() {
    let sandbox = start().await;
    let mut body = login_body(&sandbox);
    body["company"] = json!("Company");
    let response = client()
        .post(format!("{}/entity/auth/login", sandbox.acumatica_url))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let text = response.text().await.unwrap();
    assert!(text.contains("company and tenant"), "{text}");

    let mut body = login_body(&sandbox);
    body["locale"] = json!("EN-US");
    let response = client()
        .post(format!("{}/entity/auth/login", sandbox.acumatica_url))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn an_entity_request_without_a_session_is_401() {
    let sandbox = start().await;
    let (status, body) = get_json(&client(), &url(&sandbox, "StockItem")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["message"].is_string());
    assert_eq!(
        state(&sandbox).await["sessions"]["unauthorized_requests"],
        1
    );
}

#[tokio::test]
async fn a_login_over_the_api_user_limit_is_429_or_500_with_api_login_limit() {
    let options = SandboxOptions {
        acumatica: AcumaticaOptions {
            max_sessions: 2,
            ..AcumaticaOptions::default()
        },
        ..SandboxOptions::default()
    };
    let sandbox = start_with(options).await;
    let _a = signed_in(&sandbox).await;
    let _b = signed_in(&sandbox).await;
    let response = login(&sandbox, &client()).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.text().await.unwrap().contains("API Login Limit"));

    set_limits(&sandbox, json!({ "login_limit_answer": "server_error" })).await;
    let response = login(&sandbox, &client()).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["exceptionMessage"]
            .as_str()
            .unwrap()
            .contains("API Login Limit")
    );

    let s = state(&sandbox).await;
    assert_eq!(s["sessions"]["open_sessions"], 2);
    assert_eq!(s["sessions"]["peak_sessions"], 2);
    assert_eq!(s["sessions"]["logins_over_limit"], 2);
    assert_eq!(s["sessions"]["limit_violations"], 2);
}

#[tokio::test]
async fn a_logout_frees_the_licence_slot_for_the_next_login() {
    let options = SandboxOptions {
        acumatica: AcumaticaOptions {
            max_sessions: 1,
            ..AcumaticaOptions::default()
        },
        ..SandboxOptions::default()
    };
    let sandbox = start_with(options).await;
    let a = signed_in(&sandbox).await;
    a.post(format!("{}/entity/auth/logout", sandbox.acumatica_url))
        .send()
        .await
        .unwrap();
    let _b = signed_in(&sandbox).await;
    assert_eq!(state(&sandbox).await["sessions"]["limit_violations"], 0);
}

#[tokio::test]
async fn an_idle_session_expires_with_401_and_frees_its_slot() {
    let options = SandboxOptions {
        acumatica: AcumaticaOptions {
            max_sessions: 1,
            session_idle_timeout_ms: 1000,
            ..AcumaticaOptions::default()
        },
        ..SandboxOptions::default()
    };
    let sandbox = start_with(options).await;
    let client = signed_in(&sandbox).await;
    assert_eq!(
        get_json(&client, &url(&sandbox, "Customer")).await.0,
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(
        get_json(&client, &url(&sandbox, "Customer")).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(state(&sandbox).await["sessions"]["sessions_expired"], 1);
    // The expired session no longer holds the only slot.
    let _again = signed_in(&sandbox).await;
}

#[tokio::test]
async fn the_control_route_expires_every_session() {
    let sandbox = start().await;
    let client = signed_in(&sandbox).await;
    let response: Value = reqwest::Client::new()
        .post(format!(
            "{}/__sandbox/sessions/expire",
            sandbox.acumatica_url
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(response["expired"], 1);
    assert_eq!(
        get_json(&client, &url(&sandbox, "StockItem")).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn oauth_password_and_refresh_grants_give_bearer_tokens() {
    let sandbox = start().await;
    let c = sandbox.credentials();
    let token_url = format!("{}/identity/connect/token", sandbox.acumatica_url);
    let http = reqwest::Client::new();
    let response = http
        .post(&token_url)
        .form(&[
            ("grant_type", "password"),
            ("client_id", c.acumatica_client_id.as_str()),
            ("client_secret", c.acumatica_client_secret.as_str()),
            ("username", c.acumatica_username.as_str()),
            ("password", c.acumatica_password.as_str()),
            ("scope", "api offline_access"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let token: Value = response.json().await.unwrap();
    assert_eq!(token["token_type"], "Bearer");
    assert!(token["expires_in"].as_u64().unwrap() > 0);
    let access = token["access_token"].as_str().unwrap().to_string();
    let refresh = token["refresh_token"].as_str().unwrap().to_string();

    let items = http
        .get(url(&sandbox, "StockItem?$top=1"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(checked("GET", items).await.0, StatusCode::OK);

    let response = http
        .post(&token_url)
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", c.acumatica_client_id.as_str()),
            ("client_secret", c.acumatica_client_secret.as_str()),
            ("refresh_token", refresh.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let renewed: Value = response.json().await.unwrap();
    let new_access = renewed["access_token"].as_str().unwrap();
    assert_ne!(new_access, access);
    let old = http
        .get(url(&sandbox, "StockItem"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(checked("GET", old).await.0, StatusCode::UNAUTHORIZED);
    let new = http
        .get(url(&sandbox, "StockItem"))
        .bearer_auth(new_access)
        .send()
        .await
        .unwrap();
    assert_eq!(checked("GET", new).await.0, StatusCode::OK);
    // A refresh keeps the licence slot: still one API user.
    assert_eq!(state(&sandbox).await["sessions"]["open_oauth_sessions"], 1);

    let reused = http
        .post(&token_url)
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", c.acumatica_client_id.as_str()),
            ("client_secret", c.acumatica_client_secret.as_str()),
            ("refresh_token", refresh.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(reused.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        reused.json::<Value>().await.unwrap()["error"],
        "invalid_grant"
    );

    let bad_client = http
        .post(&token_url)
        .form(&[
            ("grant_type", "password"),
            ("client_id", "someone-else"),
            ("client_secret", "x"),
            ("username", c.acumatica_username.as_str()),
            ("password", c.acumatica_password.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(bad_client.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        bad_client.json::<Value>().await.unwrap()["error"],
        "invalid_client"
    );
}

// ---------------------------------------------------------------- limits

/// Sends `n` requests at once while each holds its slot for a long time, waits (on the
/// counters, not the clock) until every one is running, queued or declined, then lets them
/// finish quickly; returns their statuses.
async fn burst(
    sandbox: &Sandbox,
    client: &reqwest::Client,
    n: usize,
    settled: impl Fn(&Value) -> bool,
) -> Vec<StatusCode> {
    set_limits(sandbox, json!({ "processing_ms": 1500 })).await;
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let client = client.clone();
            let url = url(sandbox, "Customer");
            tokio::spawn(async move { client.get(url).send().await.unwrap().status() })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = state(sandbox).await;
        if settled(&s["sessions"]) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the burst never settled: {}",
            s["sessions"]
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    set_limits(sandbox, json!({ "processing_ms": 0 })).await;
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    statuses
}

#[tokio::test]
async fn requests_over_the_concurrency_limit_queue_and_past_the_queue_are_declined() {
    let sandbox = start().await;
    let client = signed_in(&sandbox).await;
    set_limits(
        &sandbox,
        json!({ "max_concurrent_requests": 1, "max_queued_requests": 2 }),
    )
    .await;
    let statuses = burst(&sandbox, &client, 5, |s| {
        s["running_requests"] == 1 && s["queued_requests"] == 2 && s["requests_declined"] == 2
    })
    .await;
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let declined = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((ok, declined), (3, 2), "{statuses:?}");
    let s = state(&sandbox).await;
    assert_eq!(s["sessions"]["peak_concurrent_requests"], 1);
    assert_eq!(s["sessions"]["peak_queued_requests"], 2);
    assert_eq!(s["sessions"]["requests_declined"], 2);
    assert_eq!(s["sessions"]["limit_violations"], 2);
}

#[tokio::test]
async fn more_than_twenty_waiting_requests_are_declined_by_default() {
    let sandbox = start().await;
    let client = signed_in(&sandbox).await;
    set_limits(&sandbox, json!({ "max_concurrent_requests": 2 })).await;
    let statuses = burst(&sandbox, &client, 25, |s| {
        s["running_requests"] == 2 && s["queued_requests"] == 20 && s["requests_declined"] == 3
    })
    .await;
    let declined = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(
        declined, 3,
        "2 running + 20 waiting, the other 3 declined: {statuses:?}"
    );
    assert_eq!(
        state(&sandbox).await["sessions"]["peak_queued_requests"],
        20
    );
}

#[tokio::test]
async fn past_half_the_per_minute_limit_each_request_is_delayed_and_login_counts() {
    let sandbox = start().await;
    set_limits(
        &sandbox,
        json!({ "requests_per_minute": 10, "throttle_delay_ms": 150 }),
    )
    .await;
    // Login is request 1; requests 2..=5 stay within half of 10.
    let client = signed_in(&sandbox).await;
    for _ in 0..4 {
        assert_eq!(
            get_json(&client, &url(&sandbox, "Customer")).await.0,
            StatusCode::OK
        );
    }
    assert_eq!(state(&sandbox).await["sessions"]["requests_delayed"], 0);
    let started = Instant::now();
    assert_eq!(
        get_json(&client, &url(&sandbox, "Customer")).await.0,
        StatusCode::OK
    );
    assert!(started.elapsed() >= Duration::from_millis(150));
    client
        .post(format!("{}/entity/auth/logout", sandbox.acumatica_url))
        .send()
        .await
        .unwrap();
    let s = state(&sandbox).await;
    assert_eq!(
        s["sessions"]["requests_delayed"], 2,
        "the 6th request and the logout"
    );
    assert_eq!(s["sessions"]["peak_requests_per_minute"], 7);
    assert_eq!(s["sessions"]["requests_total"], 7);
}

// ---------------------------------------------------------------- entities

#[tokio::test]
async fn stock_items_list_with_top_skip_select_and_details_only_when_expanded() {
    let sandbox = start().await;
    let client = signed_in(&sandbox).await;
    let (status, page) = get_json(&client, &url(&sandbox, "StockItem?$top=5&$skip=2")).await;
    assert_eq!(status, StatusCode::OK);
    let page = page.as_array().unwrap();
    assert_eq!(page.len(), 5);
    assert_eq!(page[0]["InventoryID"]["value"], "SB00003");
    assert_eq!(page[0]["rowNumber"], 1);
    assert!(page[0]["id"].is_string());
    assert!(page[0]["LastModifiedDateTime"]["value"].is_string());
    assert!(page[0]["DefaultPrice"]["value"].is_number());
    assert!(
        page[0].get("WarehouseDetails").is_none(),
        "details only when expanded"
    );

    let (_, expanded) = get_json(
        &client,
        &url(&sandbox, "StockItem?$top=1&$expand=WarehouseDetails"),
    )
    .await;
    let details = expanded[0]["WarehouseDetails"].as_array().unwrap();
    assert_eq!(details.len(), 2);
    assert!(details[0]["WarehouseID"]["value"].is_string());
    assert!(details[0]["QtyOnHand"]["value"].is_number());

    let (_, selected) = get_json(
        &client,
        &url(
            &sandbox,
            "StockItem?$top=1&$select=InventoryID,DefaultPrice",
        ),
    )
    .await;
    let fields: Vec<&String> = selected[0].as_object().unwrap().keys().collect();
    assert!(
        fields.iter().all(|f| [
            "id",
            "rowNumber",
            "custom",
            "note",
            "InventoryID",
            "DefaultPrice"
        ]
        .contains(&f.as_str())),
        "{fields:?}"
    );
    assert!(fields.iter().any(|f| f.as_str() == "InventoryID"));

    let (_, custom) = get_json(
        &client,
        &url(
            &sandbox,
            "StockItem/SB00001?$custom=ItemSettings.BaseWeight",
        ),
    )
    .await;
    assert_eq!(
        custom["custom"]["ItemSettings"]["BaseWeight"]["type"],
        "CustomDecimalField"
    );
    assert!(custom["custom"]["ItemSettings"]["BaseWeight"]["value"].is_number());
}

#[tokio::test]
async fn a_record_is_read_by_its_keys_or_by_its_id_and_a_missing_one_is_an_error() {
    let sandbox = start().await;
    let client = signed_in(&sandbox).await;
    let (status, item) = get_json(&client, &url(&sandbox, "StockItem/SB00004")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(item["InventoryID"]["value"], "SB00004");
    let id = item["id"].as_str().unwrap();
    let (status, same) = get_json(&client, &url(&sandbox, &format!("StockItem/{id}"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(same["InventoryID"]["value"], "SB00004");

    let (status, error) = get_json(&client, &url(&sandbox, "StockItem/NOSUCHITEM")).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        error["exceptionMessage"]
            .as_str()
            .unwrap()
            .contains("No entity satisfies the condition")
    );

    // Routes the description does not have (so their replies are not checked against it).
    let unknown_entity = client
        .get(url(&sandbox, "NoSuchEntity"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown_entity.status(), StatusCode::NOT_FOUND);
    let unknown_version = client
        .get(format!(
            "{}/entity/Default/99.999.999/StockItem",
            sandbox.acumatica_url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown_version.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn put_inserts_then_updates_by_key_and_if_none_match_or_if_match_give_412() {
    let sandbox = start().await;
    let client = signed_in(&sandbox).await;
    let item = json!({
        "InventoryID": {"value": "NEWITEM"},
        "Description": {"value": "A new item"},
        "DefaultPrice": {"value": 12.5},
        "ItemType": {"value": "Finished Good"},
    });
    let response = client
        .put(url(&sandbox, "StockItem"))
        .header("If-None-Match", "*")
        .json(&item)
        .send()
        .await
        .unwrap();
    let (status, created) = checked("PUT", response).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(created["InventoryID"]["value"], "NEWITEM");
    assert_eq!(created["ItemStatus"]["value"], "Active");
    assert_eq!(
        created["ItemType"]["value"], "Finished Good",
        "fields without a column round-trip"
    );
    let first_stamp = created["LastModifiedDateTime"]["value"]
        .as_str()
        .unwrap()
        .to_string();

    let again = client
        .put(url(&sandbox, "StockItem"))
        .header("If-None-Match", "*")
        .json(&item)
        .send()
        .await
        .unwrap();
    let (status, error) = checked("PUT", again).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    assert!(error["message"].is_string());

    let missing = client
        .put(url(&sandbox, "StockItem"))
        .header("If-Match", "*")
        .json(&json!({"InventoryID": {"value": "NOTTHERE"}, "Description": {"value": "x"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        checked("PUT", missing).await.0,
        StatusCode::PRECONDITION_FAILED
    );

    let (status, updated) = put_json(
        &client,
        &url(&sandbox, "StockItem"),
        &json!({"InventoryID": {"value": "NEWITEM"}, "DefaultPrice": {"value": 15.0}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(updated["DefaultPrice"]["value"], 15.0);
    assert_eq!(updated["Description"]["value"], "A new item");
    assert!(
        updated["LastModifiedDateTime"]["value"].as_str().unwrap() > first_stamp.as_str(),
        "{first_stamp} {updated}"
    );
    assert_eq!(updated["id"], created["id"]);
    let count = state(&sandbox).await["entities"]["stock_items"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(count, 21);
}

#[tokio::test]
async fn an_unwrapped_value_or_an_unknown_field_is_rejected_with_the_model_state() {
    let sandbox = start().await;
    let client = signed_in(&sandbox).await;
    let (status, error) = put_json(
        &client,
        &url(&sandbox, "StockItem"),
        &json!({"InventoryID": {"value": "X1"}, "Description": "not wrapped"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["message"], "The request is invalid.");
    assert!(
        error["modelState"]["entity.Description"][0]
            .as_str()
            .unwrap()
            .contains("StringValue")
    );

    let (status, error) = put_json(
        &client,
        &url(&sandbox, "StockItem"),
        &json!({"InventoryID": {"value": "X1"}, "Colour": {"value": "red"}}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error["modelState"]["entity.Colour"][0]
            .as_str()
            .unwrap()
            .contains("Colour")
    );

    // Inside a detail, and a value of the wrong type.
    let (status, error) = put_json(
        &client,
        &url(&sandbox, "SalesOrder"),
        &json!({"CustomerID": {"value": "ABCSTUDIOS"}, "Details": [{"InventoryID": {"value": "SB00001"}, "Qty": {"value": 1}}]}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error["modelState"]["entity.Details[0].Qty"].is_array(),
        "{error}"
    );
    let (status, _) = put_json(
        &client,
        &url(&sandbox, "StockItem"),
        &json!({"InventoryID": {"value": "X1"}, "DefaultPrice": {"value": "cheap"}}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Nothing was written.
    assert_eq!(
        state(&sandbox).await["entities"]["stock_items"]
            .as_array()
            .unwrap()
            .len(),
        20
    );
}

#[tokio::test]
async fn a_missing_required_field_is_422_with_the_error_on_the_field() {
    let sandbox = start().await;
    let client = signed_in(&sandbox).await;
    let (status, body) = put_json(
        &client,
        &url(&sandbox, "SalesOrder"),
        &json!({"OrderType": {"value": "SO"}, "Description": {"value": "no customer"}}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["CustomerID"]["error"]
            .as_str()
            .unwrap()
            .contains("cannot be empty")
    );
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("raised at least one error")
    );

    let (status, body) = put_json(
        &client,
        &url(&sandbox, "SalesOrder"),
        &json!({
            "CustomerID": {"value": "ABCSTUDIOS"},
            "Details": [
                {"InventoryID": {"value": "SB00001"}, "OrderQty": {"value": 1}},
                {"InventoryID": {"value": "NOSUCH"}, "OrderQty": {"value": 1}}
            ]
        }),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["Details"][1]["InventoryID"]["error"].is_string(),
        "{body}"
    );
    assert!(body["Details"][0]["InventoryID"].get("error").is_none());

    let (status, body) = put_json(
        &client,
        &url(&sandbox, "StockItem"),
        &json!({"Description": {"value": "no id"}}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["InventoryID"]["error"].is_string());
    let s = state(&sandbox).await;
    assert_eq!(
        s["entities"]["sales_orders"].as_array().unwrap().len(),
        0,
        "a refused write leaves nothing"
    );
    assert_eq!(s["tables"]["SOLine"].as_array().unwrap().len(), 0);
}

fn order_body() -> Value {
    json!({
        "OrderType": {"value": "SO"},
        "CustomerID": {"value": "ABCSTUDIOS"},
        "CustomerOrder": {"value": "000000123"},
        "ExternalRef": {"value": "000000123"},
        "Date": {"value": "2026-11-26T10:00:00+00:00"},
        "Details": [
            {"InventoryID": {"value": "SB00001"}, "OrderQty": {"value": 2}, "UnitPrice": {"value": 10.0}},
            {"InventoryID": {"value": "SB00002"}, "OrderQty": {"value": 1}, "UnitPrice": {"value": 5.0}, "DiscountAmount": {"value": 1.0}}
        ],
        "Totals": {"Freight": {"value": 7.5}, "OverrideFreightAmount": {"value": true}},
        "TaxDetails": [{"TaxID": {"value": "VAT"}, "TaxAmount": {"value": 3.2}}],
        "DiscountDetails": [{"DiscountCode": {"value": "WEB"}, "DiscountAmount": {"value": 2.0}}]
    })
}

#[tokio::test]
async fn a_sales_order_is_numbered_and_totalled_and_last_modified_moves_on_update() {
    let sandbox = start().await;
    let client = signed_in(&sandbox).await;
    let (status, order) = put_json(
        &client,
        &url(&sandbox, "SalesOrder?$expand=Totals,Details"),
        &order_body(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{order}");
    assert_eq!(order["OrderNbr"]["value"], "000001");
    assert_eq!(order["Status"]["value"], "Open");
    assert_eq!(order["CustomerOrder"]["value"], "000000123");
    assert_eq!(order["ExternalRef"]["value"], "000000123");
    // lines 20 + 4, − discount 2, + freight 7.5, + tax 3.2
    assert_eq!(order["OrderTotal"]["value"], 32.7);
    assert_eq!(order["TaxTotal"]["value"], 3.2);
    assert_eq!(order["Totals"]["Freight"]["value"], 7.5);
    assert_eq!(order["Totals"]["DiscountTotal"]["value"], 2.0);
    assert_eq!(order["Totals"]["LineTotalAmount"]["value"], 24.0);
    assert_eq!(
        order["Details"].as_array().map(Vec::len),
        Some(2),
        "{order}"
    );
    assert_eq!(order["Details"][1]["Amount"]["value"], 4.0);
    let stamp = order["LastModified"]["value"].as_str().unwrap().to_string();

    let (_, second) = put_json(&client, &url(&sandbox, "SalesOrder"), &order_body()).await;
    assert_eq!(second["OrderNbr"]["value"], "000002");
    assert!(
        second.get("Details").is_none(),
        "contract version 4: details only when expanded, even on PUT"
    );

    let (status, updated) = put_json(
        &client,
        &url(&sandbox, "SalesOrder"),
        &json!({"OrderType": {"value": "SO"}, "OrderNbr": {"value": "000001"}, "Description": {"value": "edited"}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(updated["LastModified"]["value"].as_str().unwrap() > stamp.as_str());
    assert_eq!(updated["OrderTotal"]["value"], 32.7);

    let (_, read) = get_json(
        &client,
        &url(&sandbox, "SalesOrder/SO/000001?$expand=Details"),
    )
    .await;
    assert_eq!(read["Description"]["value"], "edited");
    assert_eq!(read["Details"].as_array().unwrap().len(), 2);
    let (_, plain) = get_json(&client, &url(&sandbox, "SalesOrder/SO/000001")).await;
    assert!(plain.get("Details").is_none());
    assert!(plain.get("Totals").is_none());
}

#[tokio::test]
async fn a_customer_keeps_its_main_contact_shown_when_expanded() {
    let sandbox = start().await;
    let client = signed_in(&sandbox).await;
    let (status, customer) = put_json(
        &client,
        &url(&sandbox, "Customer?$expand=MainContact"),
        &json!({
            "CustomerID": {"value": "MAGE0001"},
            "CustomerName": {"value": "Jane Doe"},
            "MainContact": {
                "Email": {"value": "jane@example.com"},
                "FirstName": {"value": "Jane"},
                "Address": {"AddressLine1": {"value": "1 Main St"}, "City": {"value": "Springfield"}, "Country": {"value": "US"}}
            }
        }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{customer}");
    assert_eq!(
        customer["MainContact"]["Email"]["value"],
        "jane@example.com"
    );
    assert_eq!(customer["Email"]["value"], "jane@example.com");
    let (_, read) = get_json(
        &client,
        &url(&sandbox, "Customer/MAGE0001?$expand=MainContact"),
    )
    .await;
    assert_eq!(
        read["MainContact"]["Address"]["City"]["value"],
        "Springfield"
    );
    assert_eq!(read["Status"]["value"], "Active");
    let (_, plain) = get_json(&client, &url(&sandbox, "Customer/MAGE0001")).await;
    assert!(plain.get("MainContact").is_none());
    let (status, _) = put_json(
        &client,
        &url(&sandbox, "Customer"),
        &json!({"CustomerID": {"value": "NONAME"}}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

async fn poll(client: &reqwest::Client, location: &str) -> Vec<StatusCode> {
    let mut seen = Vec::new();
    for _ in 0..100 {
        let status = client.get(location).send().await.unwrap().status();
        seen.push(status);
        if status != StatusCode::ACCEPTED {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    seen
}

#[tokio::test]
async fn a_shipment_is_confirmed_by_an_action_polled_from_202_to_204() {
    let sandbox = start().await;
    set_limits(&sandbox, json!({ "action_duration_ms": 800 })).await;
    let client = signed_in(&sandbox).await;
    let qty_before = state(&sandbox).await["tables"]["INSiteStatus"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["InventoryCD"] == "SB00001")
        .map(|r| r["QtyOnHand"].as_f64().unwrap())
        .sum::<f64>();
    put_json(&client, &url(&sandbox, "SalesOrder"), &order_body()).await;
    let (status, shipment) = put_json(
        &client,
        &url(&sandbox, "Shipment?$expand=Details,Packages"),
        &json!({
            "CustomerID": {"value": "ABCSTUDIOS"},
            "ShipVia": {"value": "UPS"},
            "Details": [
                {"OrderType": {"value": "SO"}, "OrderNbr": {"value": "000001"}, "OrderLineNbr": {"value": 1}, "ShippedQty": {"value": 2}},
                {"OrderType": {"value": "SO"}, "OrderNbr": {"value": "000001"}, "OrderLineNbr": {"value": 2}}
            ],
            "Packages": [{"TrackingNbr": {"value": "1Z999"}, "Weight": {"value": 1.5}}]
        }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{shipment}");
    assert_eq!(shipment["ShipmentNbr"]["value"], "000001");
    assert_eq!(shipment["Status"]["value"], "Open");
    assert_eq!(shipment["Packages"][0]["TrackingNbr"]["value"], "1Z999");
    assert_eq!(shipment["Details"][0]["InventoryID"]["value"], "SB00001");

    let response = client
        .post(url(&sandbox, "Shipment/ConfirmShipment"))
        .json(&json!({"entity": {"ShipmentNbr": {"value": "000001"}}}))
        .send()
        .await
        .unwrap();
    let location = response.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(checked("POST", response).await.0, StatusCode::ACCEPTED);
    assert!(
        location.contains("/Shipment/ConfirmShipment/status/"),
        "{location}"
    );
    let seen = poll(&client, &location).await;
    assert_eq!(
        seen.first(),
        Some(&StatusCode::ACCEPTED),
        "still running at first: {seen:?}"
    );
    assert_eq!(seen.last(), Some(&StatusCode::NO_CONTENT), "{seen:?}");

    let (_, confirmed) = get_json(
        &client,
        &url(&sandbox, "Shipment/000001?$expand=Orders,Packages"),
    )
    .await;
    assert_eq!(confirmed["Status"]["value"], "Confirmed");
    assert_eq!(confirmed["Orders"][0]["OrderNbr"]["value"], "000001");
    assert_eq!(confirmed["ShippedQty"]["value"], 3.0);
    let (_, order) = get_json(&client, &url(&sandbox, "SalesOrder/SO/000001")).await;
    assert_eq!(order["Status"]["value"], "Completed");
    let qty_after = state(&sandbox).await["tables"]["INSiteStatus"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["InventoryCD"] == "SB00001")
        .map(|r| r["QtyOnHand"].as_f64().unwrap())
        .sum::<f64>();
    assert_eq!(qty_before - qty_after, 2.0);

    let again = client
        .post(url(&sandbox, "Shipment/ConfirmShipment"))
        .json(&json!({"entity": {"ShipmentNbr": {"value": "000001"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(checked("POST", again).await.0, StatusCode::BAD_REQUEST);
    let edit = put_json(
        &client,
        &url(&sandbox, "Shipment"),
        &json!({"ShipmentNbr": {"value": "000001"}, "ShipVia": {"value": "FEDEX"}}),
    )
    .await;
    assert_eq!(
        edit.0,
        StatusCode::BAD_REQUEST,
        "a confirmed shipment cannot be edited"
    );
}

#[tokio::test]
async fn cancel_sales_order_is_polled_to_204_and_a_canceled_order_cannot_be_canceled_again() {
    let sandbox = start().await;
    let client = signed_in(&sandbox).await;
    let (_, order) = put_json(&client, &url(&sandbox, "SalesOrder"), &order_body()).await;
    let id = order["id"].as_str().unwrap();
    let response = client
        .post(url(&sandbox, "SalesOrder/CancelSalesOrder"))
        .json(&json!({"entity": {"id": id}}))
        .send()
        .await
        .unwrap();
    let location = response.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(checked("POST", response).await.0, StatusCode::ACCEPTED);
    assert_eq!(
        poll(&client, &location).await.last(),
        Some(&StatusCode::NO_CONTENT)
    );
    let (_, read) = get_json(&client, &url(&sandbox, "SalesOrder/SO/000001")).await;
    assert_eq!(read["Status"]["value"], "Canceled");
    let again = client
        .post(url(&sandbox, "SalesOrder/CancelSalesOrder"))
        .json(&json!({"entity": {"OrderType": {"value": "SO"}, "OrderNbr": {"value": "000001"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(checked("POST", again).await.0, StatusCode::BAD_REQUEST);
    let unknown = client
        .post(url(&sandbox, "SalesOrder/CancelSalesOrder"))
        .json(&json!({"entity": {"OrderType": {"value": "SO"}, "OrderNbr": {"value": "000001"}}, "extra": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(checked("POST", unknown).await.0, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn delete_removes_a_record_and_its_details() {
    let sandbox = start().await;
    let client = signed_in(&sandbox).await;
    let response = client
        .delete(url(&sandbox, "StockItem/SB00020"))
        .send()
        .await
        .unwrap();
    assert_eq!(checked("DELETE", response).await.0, StatusCode::NO_CONTENT);
    assert_eq!(
        get_json(&client, &url(&sandbox, "StockItem/SB00020"))
            .await
            .0,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    let s = state(&sandbox).await;
    assert!(
        !s["tables"]["INSiteStatus"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["InventoryCD"] == "SB00020")
    );
    let missing = client
        .delete(url(&sandbox, "StockItem/SB00020"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        checked("DELETE", missing).await.0,
        StatusCode::INTERNAL_SERVER_ERROR
    );

    let (_, customer) = get_json(&client, &url(&sandbox, "Customer/COFFEESHOP")).await;
    let id = customer["id"].as_str().unwrap();
    let by_id = client
        .delete(url(&sandbox, &format!("Customer/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(checked("DELETE", by_id).await.0, StatusCode::NO_CONTENT);
    assert_eq!(
        get_json(&client, &url(&sandbox, "Customer/COFFEESHOP"))
            .await
            .0,
        StatusCode::INTERNAL_SERVER_ERROR
    );

    // An item used in an order cannot go.
    put_json(&client, &url(&sandbox, "SalesOrder"), &order_body()).await;
    let used = client
        .delete(url(&sandbox, "StockItem/SB00001"))
        .send()
        .await
        .unwrap();
    let (status, error) = checked("DELETE", used).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        error["exceptionMessage"]
            .as_str()
            .unwrap()
            .contains("used in sales orders")
    );
}

// ---------------------------------------------------------------- transactions and control

#[tokio::test]
async fn every_committed_write_is_one_transaction_with_before_and_after_rows() {
    let sandbox = start().await;
    let mut transactions = sandbox.acumatica.subscribe();
    let client = signed_in(&sandbox).await;
    put_json(&client, &url(&sandbox, "SalesOrder"), &order_body()).await;
    let t = transactions.try_recv().expect("the order's transaction");
    let tables: Vec<&str> = t.changes.iter().map(|c| c.table.as_str()).collect();
    assert!(
        tables.contains(&"SOOrder") && tables.contains(&"SOLine"),
        "{tables:?}"
    );
    assert!(
        t.changes
            .iter()
            .all(|c| c.before.is_none() && c.after.is_some())
    );
    assert!(
        transactions.try_recv().is_err(),
        "one write, one transaction"
    );

    // A refused write commits nothing.
    put_json(
        &client,
        &url(&sandbox, "SalesOrder"),
        &json!({"Details": []}),
    )
    .await;
    assert!(transactions.try_recv().is_err());

    let response: Value = reqwest::Client::new()
        .post(format!(
            "{}/__sandbox/mass-price-update",
            sandbox.acumatica_url
        ))
        .json(&json!({"factor": 1.1}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(response["changed_rows"], 20);
    let t2 = transactions.try_recv().expect("the price update");
    assert_eq!(t2.id, t.id + 1);
    assert_eq!(t2.changes.len(), 20);
    let change = &t2.changes[0];
    assert_eq!(change.table, "InventoryItem");
    let before = change.before.as_ref().unwrap()["BasePrice"]
        .as_f64()
        .unwrap();
    let after = change.after.as_ref().unwrap()["BasePrice"]
        .as_f64()
        .unwrap();
    assert!((after - (before * 1.1 * 100.0).round() / 100.0).abs() < 1e-9);
    assert_ne!(
        change.before.as_ref().unwrap()["LastModifiedDateTime"],
        change.after.as_ref().unwrap()["LastModifiedDateTime"]
    );
}

#[tokio::test]
async fn the_control_route_changes_an_item_as_a_user_would() {
    let sandbox = start().await;
    let client = signed_in(&sandbox).await;
    let item = first_item(&state(&sandbox).await);
    let (_, before) = get_json(&client, &url(&sandbox, &format!("StockItem/{item}"))).await;
    let response = reqwest::Client::new()
        .post(format!("{}/__sandbox/items/{item}", sandbox.acumatica_url))
        .json(
            &json!({"price": 99.95, "warehouses": {"RETAIL": {"qty_on_hand": 7, "qty_avail": 5}}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (_, after) = get_json(
        &client,
        &url(
            &sandbox,
            &format!("StockItem/{item}?$expand=WarehouseDetails"),
        ),
    )
    .await;
    assert_eq!(after["DefaultPrice"]["value"], 99.95);
    assert!(
        after["LastModifiedDateTime"]["value"].as_str()
            > before["LastModifiedDateTime"]["value"].as_str()
    );
    let retail = after["WarehouseDetails"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["WarehouseID"]["value"] == "RETAIL")
        .unwrap();
    assert_eq!(retail["QtyOnHand"]["value"], 7.0);
    let bad = reqwest::Client::new()
        .post(format!("{}/__sandbox/items/{item}", sandbox.acumatica_url))
        .json(&json!({"prize": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn faults_switched_on_hit_the_api_but_not_the_control_routes() {
    let sandbox = start().await;
    let client = signed_in(&sandbox).await;
    let response = reqwest::Client::new()
        .post(format!("{}/__sandbox/faults", sandbox.acumatica_url))
        .json(&json!({"rate_limit_rate": 1.0, "retry_after_secs": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let limited = client.get(url(&sandbox, "StockItem")).send().await.unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.headers()["retry-after"], "3");
    let s = state(&sandbox).await;
    assert_eq!(s["requests"]["injected_faults"]["rate_limited"], 1);
    let by_route = s["requests"]["by_route"].as_object().unwrap();
    let logins = by_route.iter().find(|(route, _)| {
        route.ends_with("POST /acumatica/entity/auth/login")
            || route.as_str() == "POST /entity/auth/login"
    });
    assert_eq!(
        logins.map(|(_, n)| n.clone()),
        Some(json!(1)),
        "{by_route:?}"
    );
}

#[tokio::test]
async fn the_seed_decides_the_data() {
    let strip = |state: Value| -> Vec<(Value, Value, Value)> {
        state["entities"]["stock_items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["InventoryID"].clone(),
                    i["Description"].clone(),
                    i["DefaultPrice"].clone(),
                )
            })
            .collect()
    };
    let options = |seed| SandboxOptions {
        seed,
        items: 8,
        ..SandboxOptions::default()
    };
    let a = start_with(options(7)).await;
    let b = start_with(options(7)).await;
    let c = start_with(options(8)).await;
    let (sa, sb, sc) = (state(&a).await, state(&b).await, state(&c).await);
    assert_eq!(
        sa["entities"]["stock_items"][0]["id"],
        sb["entities"]["stock_items"][0]["id"]
    );
    let (sa, sb, sc) = (strip(sa), strip(sb), strip(sc));
    assert_eq!(sa.len(), 8);
    assert_eq!(sa, sb);
    assert_ne!(sa, sc);
    assert!(
        !state(&a).await["entities"]["customers"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

fn filtered(sandbox: &Sandbox, entity: &str, filter: &str) -> String {
    let encoded: String = url::form_urlencoded::byte_serialize(filter.as_bytes()).collect();
    url(sandbox, &format!("{entity}?$filter={encoded}"))
}

#[tokio::test]
async fn filter_selects_records_by_field_date_and_linked_entity() {
    let sandbox = start().await;
    let client = signed_in(&sandbox).await;
    let (status, one) = get_json(
        &client,
        &filtered(&sandbox, "StockItem", "InventoryID eq 'SB00003'"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one.as_array().unwrap().len(), 1);
    assert_eq!(one[0]["InventoryID"]["value"], "SB00003");

    // The batch path: what changed after a watermark.
    let (_, all) = get_json(&client, &url(&sandbox, "StockItem")).await;
    let newest = all
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            i["LastModifiedDateTime"]["value"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .max()
        .unwrap();
    reqwest::Client::new()
        .post(format!("{}/__sandbox/items/SB00007", sandbox.acumatica_url))
        .json(&json!({"price": 1.23}))
        .send()
        .await
        .unwrap();
    let watermark = newest.replace("+00:00", "Z");
    let (status, changed) = get_json(
        &client,
        &filtered(
            &sandbox,
            "StockItem",
            &format!("LastModifiedDateTime gt datetimeoffset'{watermark}'"),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    let ids: Vec<&str> = changed
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["InventoryID"]["value"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["SB00007"]);

    // A date compared with a bare string is refused, as Acumatica refuses it.
    let (status, error) = get_json(
        &client,
        &filtered(
            &sandbox,
            "StockItem",
            &format!("LastModifiedDateTime gt '{watermark}'"),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(error["exceptionMessage"].is_string());
    let (status, _) = get_json(&client, &filtered(&sandbox, "StockItem", "Colour eq 'red'")).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);

    // By a linked entity's field, and $top counts filtered records.
    put_json(
        &client,
        &url(&sandbox, "Customer"),
        &json!({"CustomerID": {"value": "MAGE0002"}, "CustomerName": {"value": "Jo"}, "MainContact": {"Email": {"value": "jo@example.com"}}}),
    )
    .await;
    let (_, found) = get_json(
        &client,
        &filtered(
            &sandbox,
            "Customer",
            "MainContact/Email eq 'JO@example.com'",
        ),
    )
    .await;
    assert_eq!(found.as_array().unwrap().len(), 1, "{found}");
    assert_eq!(found[0]["CustomerID"]["value"], "MAGE0002");
    let (_, top) = get_json(
        &client,
        &format!(
            "{}&$top=2&$skip=1",
            filtered(&sandbox, "StockItem", "DefaultPrice ge 0")
        ),
    )
    .await;
    assert_eq!(top.as_array().unwrap().len(), 2);
    assert_eq!(top[0]["InventoryID"]["value"], "SB00002");
}

#[tokio::test]
async fn a_put_with_a_filter_updates_the_record_it_names() {
    let sandbox = start().await;
    let client = signed_in(&sandbox).await;
    put_json(&client, &url(&sandbox, "SalesOrder"), &order_body()).await;
    let (_, found) = get_json(
        &client,
        &filtered(&sandbox, "SalesOrder", "CustomerOrder eq '000000123'"),
    )
    .await;
    assert_eq!(found.as_array().unwrap().len(), 1);
    let (status, updated) = put_json(
        &client,
        &filtered(&sandbox, "SalesOrder", "CustomerOrder eq '000000123'"),
        &json!({"Description": {"value": "found by filter"}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["OrderNbr"]["value"], "000001");
    assert_eq!(updated["Description"]["value"], "found by filter");
    assert_eq!(
        state(&sandbox).await["entities"]["sales_orders"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

/// The order numbers a `$filter` on `SalesOrder` finds, in the order returned.
async fn order_numbers(sandbox: &Sandbox, client: &reqwest::Client, filter: &str) -> Vec<String> {
    let (status, found) = get_json(client, &filtered(sandbox, "SalesOrder", filter)).await;
    assert_eq!(status, StatusCode::OK, "{filter}: {found}");
    found
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["OrderNbr"]["value"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_filter_by_customer_order_follows_updates_and_deletes() {
    // Such filters are answered from an index on the column: it must never go stale.
    let sandbox = start().await;
    let client = signed_in(&sandbox).await;
    put_json(&client, &url(&sandbox, "SalesOrder"), &order_body()).await;
    let mut second = order_body();
    second["CustomerOrder"] = json!({"value": "Web-2"});
    put_json(&client, &url(&sandbox, "SalesOrder"), &second).await;
    let both = "OrderType eq 'SO' and (CustomerOrder eq '000000123' or CustomerOrder eq 'WEB-2')";
    assert_eq!(
        order_numbers(&sandbox, &client, both).await,
        ["000001", "000002"]
    );
    assert_eq!(
        order_numbers(
            &sandbox,
            &client,
            "CustomerOrder eq 'web-2' and OrderType eq 'RC'"
        )
        .await,
        Vec::<String>::new()
    );

    let (status, _) = put_json(
        &client,
        &url(&sandbox, "SalesOrder"),
        &json!({"OrderType": {"value": "SO"}, "OrderNbr": {"value": "000002"},
                "CustomerOrder": {"value": "Web-3"}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        order_numbers(&sandbox, &client, "CustomerOrder eq 'Web-2'").await,
        Vec::<String>::new()
    );
    assert_eq!(
        order_numbers(&sandbox, &client, "CustomerOrder eq 'Web-3'").await,
        ["000002"]
    );

    let deleted = client
        .delete(url(&sandbox, "SalesOrder/SO/000002"))
        .send()
        .await
        .unwrap();
    assert_eq!(checked("DELETE", deleted).await.0, StatusCode::NO_CONTENT);
    assert_eq!(
        order_numbers(&sandbox, &client, "CustomerOrder eq 'Web-3'").await,
        Vec::<String>::new()
    );
    // Numbering still follows the greatest number in use.
    let (_, third) = put_json(&client, &url(&sandbox, "SalesOrder"), &second).await;
    assert_eq!(third["OrderNbr"]["value"], "000002");
    assert_eq!(
        order_numbers(&sandbox, &client, both).await,
        ["000001", "000002"]
    );
}

#[tokio::test]
async fn an_order_line_cannot_be_shipped_twice_and_the_control_route_ships_as_a_clerk_would() {
    let sandbox = start().await;
    let client = signed_in(&sandbox).await;
    put_json(&client, &url(&sandbox, "SalesOrder"), &order_body()).await;
    let shipped: Value = reqwest::Client::new()
        .post(format!("{}/__sandbox/shipments", sandbox.acumatica_url))
        .json(&json!({
            "order_nbr": "000001",
            "quantities": {"1": 1},
            "tracking_numbers": ["1Z1", "1Z2"],
            "ship_via": "UPS",
            "confirm": true
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let nbr = shipped["shipment_nbr"].as_str().unwrap().to_string();
    let (_, shipment) = get_json(
        &client,
        &url(
            &sandbox,
            &format!("Shipment/{nbr}?$expand=Packages,Details"),
        ),
    )
    .await;
    assert_eq!(shipment["Status"]["value"], "Confirmed");
    assert_eq!(shipment["Packages"].as_array().unwrap().len(), 2);
    assert_eq!(shipment["Details"].as_array().unwrap().len(), 1);
    let (_, order) = get_json(&client, &url(&sandbox, "SalesOrder/SO/000001")).await;
    assert_eq!(
        order["Status"]["value"], "Back Order",
        "one of two units shipped"
    );

    // Line 1 ordered 2, 1 shipped: 2 more is too many, 1 more is fine.
    let line = |qty: f64| {
        json!({
            "CustomerID": {"value": "ABCSTUDIOS"},
            "Details": [{"OrderType": {"value": "SO"}, "OrderNbr": {"value": "000001"},
                         "OrderLineNbr": {"value": 1}, "ShippedQty": {"value": qty}}]
        })
    };
    let (status, refused) = put_json(&client, &url(&sandbox, "Shipment"), &line(2.0)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused["Details"][0]["ShippedQty"]["error"].is_string(),
        "{refused}"
    );
    let (status, _) = put_json(&client, &url(&sandbox, "Shipment"), &line(1.0)).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_large_seed_starts_and_lists_in_full() {
    let sandbox = start_with(SandboxOptions {
        items: 3000,
        ..SandboxOptions::default()
    })
    .await;
    let client = signed_in(&sandbox).await;
    let (status, items) = get_json(&client, &url(&sandbox, "StockItem?$select=InventoryID")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(items.as_array().unwrap().len(), 3000);
    assert_eq!(items[2999]["InventoryID"]["value"], "SB03000");
}

#[tokio::test]
async fn the_tables_are_readable_by_name_as_generic_inquiries_read_them() {
    let sandbox = start().await;
    let source = sandbox.acumatica.table_source();
    let items = source.rows("InventoryItem").unwrap();
    assert_eq!(items.len(), 20);
    assert!(
        items
            .iter()
            .all(|r| r["NoteID"].is_string() && r["LastModifiedDateTime"].is_string())
    );
    assert_eq!(source.rows("INSiteStatus").unwrap().len(), 40);
    assert!(source.rows("NoSuchTable").is_none());
    let client = signed_in(&sandbox).await;
    put_json(&client, &url(&sandbox, "SalesOrder"), &order_body()).await;
    let order = &source.rows("SOOrder").unwrap()[0];
    assert_eq!(order["CustomerOrderNbr"], "000000123");
    assert_eq!(order["CuryOrderTotal"], 32.7);
    assert_eq!(order["Status"], "N");
}

#[tokio::test]
async fn the_control_route_adds_a_new_stock_item_in_one_transaction() {
    let sandbox = start().await;
    let mut transactions = sandbox.acumatica.subscribe();
    let response = reqwest::Client::new()
        .post(format!("{}/__sandbox/items/FRESH01", sandbox.acumatica_url))
        .json(
            &json!({"description": "Fresh item", "price": 5.5, "weight": 1.25,
                      "warehouses": {"RETAIL": {"qty_on_hand": 3, "qty_avail": 3}}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let t = transactions.try_recv().unwrap();
    assert_eq!(t.changes.len(), 2);
    assert!(t.changes.iter().all(|c| c.before.is_none()));
    let client = signed_in(&sandbox).await;
    let (status, item) = get_json(
        &client,
        &url(&sandbox, "StockItem/FRESH01?$expand=WarehouseDetails"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(item["Description"]["value"], "Fresh item");
    assert_eq!(item["DefaultPrice"]["value"], 5.5);
    assert_eq!(item["DimensionWeight"]["value"], 1.25);
    assert_eq!(item["WarehouseDetails"][0]["QtyOnHand"]["value"], 3.0);
}

#[tokio::test]
async fn if_match_updates_an_existing_record_and_a_bad_code_value_is_422() {
    let sandbox = start().await;
    let client = signed_in(&sandbox).await;
    let response = client
        .put(url(&sandbox, "StockItem"))
        .header("If-Match", "*")
        .json(&json!({"InventoryID": {"value": "SB00002"}, "ItemStatus": {"value": "Inactive"}}))
        .send()
        .await
        .unwrap();
    let (status, item) = checked("PUT", response).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(item["ItemStatus"]["value"], "Inactive");
    let row = sandbox
        .acumatica
        .table_source()
        .rows("InventoryItem")
        .unwrap()
        .into_iter()
        .find(|r| r["InventoryCD"] == "SB00002")
        .unwrap();
    assert_eq!(row["ItemStatus"], "IN", "the table keeps Acumatica's code");

    let (status, refused) = put_json(
        &client,
        &url(&sandbox, "StockItem"),
        &json!({"InventoryID": {"value": "SB00002"}, "ItemStatus": {"value": "Sleeping"}}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused["ItemStatus"]["error"].is_string());
}

// ---------------------------------------------------------------- wired with part 2

/// The connector's endpoint XML, as part 2's page documents it (its first `xml` block).
fn connector_endpoint_xml() -> String {
    let doc = include_str!("../docs/sandbox-acumatica-gi.md");
    let start = doc.find("```xml\n").expect("an xml block") + "```xml\n".len();
    let end = start + doc[start..].find("\n```").expect("its end");
    doc[start..end].to_string()
}

#[derive(Clone, Default)]
struct Received(std::sync::Arc<std::sync::Mutex<Vec<(axum::http::HeaderMap, Value)>>>);

async fn receive(
    axum::extract::State(r): axum::extract::State<Received>,
    headers: axum::http::HeaderMap,
    body: String,
) -> axum::http::StatusCode {
    r.0.lock()
        .unwrap()
        .push((headers, serde_json::from_str(&body).unwrap_or(Value::Null)));
    axum::http::StatusCode::OK
}

async fn push_receiver() -> (Received, String) {
    let received = Received::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route("/push", axum::routing::post(receive))
        .with_state(received.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (received, format!("http://{addr}/push"))
}

async fn wait_for(received: &Received, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let bodies: Vec<Value> = received
            .0
            .lock()
            .unwrap()
            .iter()
            .map(|(_, b)| b.clone())
            .collect();
        if bodies.len() >= n || Instant::now() > deadline {
            return bodies;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn entity_writes_and_a_mass_price_update_fire_push_notifications_through_the_wired_admin_side()
 {
    let sandbox = start().await;
    let client = signed_in(&sandbox).await;
    let (received, address) = push_receiver().await;

    // Without a session the admin side is closed too.
    let anonymous = reqwest::Client::new()
        .post(format!(
            "{}/entity/maintenance/23.200/",
            sandbox.acumatica_url
        ))
        .header("Content-Type", "application/xml")
        .body(connector_endpoint_xml())
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let created = client
        .post(format!(
            "{}/entity/maintenance/23.200/",
            sandbox.acumatica_url
        ))
        .header("Content-Type", "application/xml")
        .body(connector_endpoint_xml())
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::NO_CONTENT);

    let v = |x: Value| json!({ "value": x });
    let result = |field: &str| json!({"Object": v(json!("Item")), "Field": v(json!(field)), "Caption": v(json!(field))});
    let admin = format!(
        "{}/entity/MagentoConnector/24.200.001",
        sandbox.acumatica_url
    );
    let gi = client
        .put(format!("{admin}/GenericInquiry"))
        .json(&json!({
            "InquiryTitle": v(json!("MC-items")),
            "ExposeViaOData": v(json!(true)),
            "Tables": [{"Table": v(json!("PX.Objects.IN.InventoryItem")), "Alias": v(json!("Item"))}],
            "Results": [result("InventoryCD"), result("BasePrice"), result("LastModifiedDateTime")],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(gi.status(), StatusCode::OK, "{}", gi.text().await.unwrap());
    let hook = client
        .put(format!("{admin}/PushNotification"))
        .json(&json!({
            "DestinationName": v(json!("MC-connector")),
            "Active": v(json!(true)),
            "DestinationType": v(json!("Webhook")),
            "Address": v(json!(address)),
            "HeaderName": v(json!("X-Connector-Secret")),
            "HeaderValue": v(json!("s3cret")),
            "Inquiries": [{"InquiryTitle": v(json!("MC-items")), "Active": v(json!(true)), "TrackAllFields": v(json!(true))}],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        hook.status(),
        StatusCode::OK,
        "{}",
        hook.text().await.unwrap()
    );

    // A price changed through the contract-based API: one notification, old and new row.
    put_json(
        &client,
        &url(&sandbox, "StockItem"),
        &json!({"InventoryID": {"value": "SB00005"}, "DefaultPrice": {"value": 77.0}}),
    )
    .await;
    let bodies = wait_for(&received, 1).await;
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    assert_eq!(bodies[0]["Query"], "MC-items");
    assert_eq!(bodies[0]["Inserted"][0]["InventoryCD"], "SB00005");
    assert_eq!(bodies[0]["Inserted"][0]["BasePrice"], 77.0);
    assert_eq!(bodies[0]["Deleted"][0]["InventoryCD"], "SB00005");
    let headers = received.0.lock().unwrap()[0].0.clone();
    assert_eq!(headers["x-connector-secret"], "s3cret");

    // A mass price update is one transaction: one large notification.
    reqwest::Client::new()
        .post(format!(
            "{}/__sandbox/mass-price-update",
            sandbox.acumatica_url
        ))
        .json(&json!({"factor": 2.0}))
        .send()
        .await
        .unwrap();
    let bodies = wait_for(&received, 2).await;
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    assert_eq!(bodies[1]["Inserted"].as_array().unwrap().len(), 20);
    assert_eq!(bodies[1]["Deleted"].as_array().unwrap().len(), 20);

    // The GI is readable over OData with Basic credentials, and the state shows part 2's side.
    let c = sandbox.credentials();
    let odata = reqwest::Client::new()
        .get(format!(
            "{}/t/Company/api/odata/gi/MC-items?$top=3",
            sandbox.acumatica_url
        ))
        .basic_auth(&c.acumatica_username, Some(&c.acumatica_password))
        .send()
        .await
        .unwrap();
    assert_eq!(odata.status(), StatusCode::OK);
    let odata: Value = odata.json().await.unwrap();
    assert_eq!(odata["value"].as_array().unwrap().len(), 3, "{odata}");
    let wrong = reqwest::Client::new()
        .get(format!(
            "{}/t/Company/api/odata/gi/MC-items",
            sandbox.acumatica_url
        ))
        .basic_auth(&c.acumatica_username, Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let s = state(&sandbox).await;
    assert!(
        s["generic_inquiries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["name"] == "MC-items"),
        "{}",
        s["generic_inquiries"]
    );
    assert!(s.get("push_notifications").is_some());
    assert!(s.get("schedules").is_some());
}
