//! The Acumatica client against the simulated Acumatica over real HTTP on loopback.
//!
//! Between the client and the sandbox sits a recording proxy (`support::proxy`): it keeps every
//! request the client sent, so each test can check them against `Default_24.200.001.json`, and
//! it answers scripted faults where a test needs an exact sequence rather than a rate. The
//! sandbox's own counters (sessions, peaks, limit violations) say whether the licence was kept.

mod support;

use std::path::Path;
use std::time::Duration;

use connector::acumatica::{AcumaticaClient, AcumaticaError, Precondition, with_sessions};
use connector::config::Config;
use connector::http::Backoff;
use connector::sandbox::acumatica::AcumaticaOptions;
use connector::sandbox::{Faults, Sandbox, SandboxOptions, config_file};
use serde_json::{Value, json};
use support::openapi::{Spec, assert_conforms};
use support::proxy::{Action, Proxy};

struct Env {
    sandbox: Sandbox,
    proxy: Proxy,
    config_text: String,
}

impl Env {
    async fn start(acumatica: AcumaticaOptions) -> Env {
        Env::start_with(SandboxOptions {
            items: 5,
            acumatica,
            ..SandboxOptions::default()
        })
        .await
    }

    async fn start_with(options: SandboxOptions) -> Env {
        let sandbox = Sandbox::start(options).await.expect("sandbox starts");
        let proxy = Proxy::start(sandbox.addr).await;
        let receiver = config_file::free_loopback_port().expect("free port");
        let config_text = config_file::render(&sandbox, receiver).replace(
            &format!("url = \"{}\"", sandbox.acumatica_url),
            &format!("url = \"{}/acumatica\"", proxy.url),
        );
        Env {
            sandbox,
            proxy,
            config_text,
        }
    }

    /// The sandbox's config with `(from, to)` line edits.
    fn config(&self, edits: &[(&str, &str)]) -> Config {
        let mut text = self.config_text.clone();
        for (from, to) in edits {
            assert!(text.contains(from), "config lacks {from:?}");
            text = text.replacen(from, to, 1);
        }
        Config::parse(&text, Path::new("connector.toml"), &|_| None).expect("config parses")
    }

    fn client(&self, edits: &[(&str, &str)]) -> AcumaticaClient {
        AcumaticaClient::new(&self.config(edits))
            .expect("client")
            .with_backoff(fast())
    }

    fn open_sessions(&self) -> usize {
        self.sandbox.acumatica.sessions.open_sessions().len()
    }

    fn password(&self) -> String {
        self.sandbox.credentials().acumatica_password
    }

    /// Every request the client sent to the Default endpoint conforms to its description.
    fn assert_requests_conform(&self) {
        self.assert_requests_conform_except(|_| false)
    }

    /// As `assert_requests_conform`, leaving out the requests a test made wrong on purpose.
    fn assert_requests_conform_except(
        &self,
        deliberate: impl Fn(&support::proxy::Recorded) -> bool,
    ) {
        let spec = Spec::acumatica();
        let mut checked = 0;
        for r in self.proxy.requests().iter().filter(|r| !deliberate(r)) {
            let Some(relative) = spec.relative_path(&r.path) else {
                continue;
            };
            let target = match &r.query {
                Some(q) => format!("{relative}?{q}"),
                None => relative.to_string(),
            };
            assert_conforms(spec.check_request(&r.method, &target, r.json().as_ref()));
            checked += 1;
        }
        assert!(
            checked > 0,
            "no request to the Default endpoint was recorded"
        );
    }
}

fn fast() -> Backoff {
    Backoff {
        base: Duration::from_millis(5),
        max: Duration::from_millis(100),
        attempts: 8,
    }
}

fn options() -> AcumaticaOptions {
    AcumaticaOptions::default()
}

/// Waits (bounded) until `check` holds.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..500 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

fn values(list: &Value) -> &Vec<Value> {
    list.as_array().expect("a list of records")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_get_and_close_leave_no_session_open() {
    let env = Env::start(options()).await;
    let client = env.client(&[("max_sessions = 2", "max_sessions = 1")]);

    let items = client.get("/StockItem?$top=3").await.expect("GET works");
    assert_eq!(values(&items).len(), 3);
    let one = client
        .get("/StockItem/SB00001?$expand=WarehouseDetails")
        .await
        .expect("GET by key works");
    assert_eq!(one["InventoryID"]["value"], "SB00001");
    assert!(one["WarehouseDetails"].is_array());
    assert_eq!(env.open_sessions(), 1);
    assert_eq!(client.open_sessions().await, 1);

    client.close().await;
    assert_eq!(env.open_sessions(), 0, "close() logs every session out");
    assert_eq!(client.open_sessions().await, 0);
    let counters = env.sandbox.acumatica.counters();
    assert_eq!(counters.logins, 1);
    assert_eq!(counters.logouts, 1);
    assert_eq!(
        env.proxy.requests_to("POST", "/entity/auth/logout").len(),
        1
    );
    env.assert_requests_conform();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_work_keeps_within_sessions_and_concurrency() {
    // The sandbox holds every request 30 ms and declines anything that would have to queue:
    // one request past the client's cap would be a counted violation.
    let env = Env::start(AcumaticaOptions {
        max_sessions: 2,
        max_concurrent_requests: 3,
        max_queued_requests: 0,
        processing_ms: 30,
        ..options()
    })
    .await;
    let client = env.client(&[
        ("max_sessions = 2", "max_sessions = 2"),
        ("max_concurrent_requests = 4", "max_concurrent_requests = 3"),
        // Pacing is another test's subject: here it must not hide the concurrency.
        ("requests_per_minute = 600", "requests_per_minute = 60000"),
    ]);

    let calls = (0..24).map(|i| {
        let client = &client;
        async move {
            let id = format!("SB{:05}", i % 5 + 1);
            client.get(&format!("/StockItem/{id}")).await
        }
    });
    let results = futures_util::future::join_all(calls).await;
    for r in &results {
        assert!(r.is_ok(), "a parallel GET failed: {r:?}");
    }
    let counters = env.sandbox.acumatica.counters();
    assert!(
        counters.peak_sessions <= 2,
        "peak sessions {}",
        counters.peak_sessions
    );
    assert!(
        counters.peak_concurrent_requests <= 3,
        "peak concurrent {}",
        counters.peak_concurrent_requests
    );
    assert!(env.proxy.peak_in_flight() <= 3);
    assert!(
        counters.peak_concurrent_requests >= 2,
        "the work ran one request at a time"
    );
    assert_eq!(counters.limit_violations(), 0, "{counters:?}");
    client.close().await;
    assert_eq!(env.open_sessions(), 0);
    env.assert_requests_conform();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_paced_to_the_per_minute_limit() {
    let env = Env::start(options()).await;
    // 600 a minute: one every 100 ms.
    let client = env.client(&[("requests_per_minute = 600", "requests_per_minute = 600")]);
    let calls = (0..16).map(|_| client.get("/StockItem?$top=1"));
    for r in futures_util::future::join_all(calls).await {
        r.expect("GET works");
    }
    client.close().await;
    let mut arrivals: Vec<_> = env.proxy.requests().iter().map(|r| r.at).collect();
    arrivals.sort();
    // The logins and logouts of both sessions count against the limit too.
    let logins = env.proxy.requests_to("POST", "/entity/auth/login").len();
    assert_eq!(logins, 2);
    assert_eq!(arrivals.len(), 16 + 2 * logins);
    // At 600 a minute a second holds at most 11; 13 within one (two of slack for a busy
    // machine delaying one arrival) would mean the pace was not kept. Unpaced, all 20 arrive
    // within a few milliseconds.
    for window in arrivals.windows(13) {
        let span = window[12] - window[0];
        assert!(
            span >= Duration::from_millis(1000),
            "13 requests within {span:?}: more than 600 a minute"
        );
    }
    assert_eq!(env.sandbox.acumatica.counters().limit_violations(), 0);
    env.assert_requests_conform();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_session_logs_in_again_once() {
    let env = Env::start(options()).await;
    let client = env.client(&[("max_sessions = 2", "max_sessions = 1")]);
    client.get("/StockItem?$top=1").await.expect("first GET");
    env.sandbox.acumatica.sessions.expire_all();

    let item = client
        .get("/StockItem/SB00002")
        .await
        .expect("GET after expiry");
    assert_eq!(item["InventoryID"]["value"], "SB00002");
    assert_eq!(env.proxy.requests_to("POST", "/entity/auth/login").len(), 2);
    let gets = env.proxy.requests_to("GET", "/StockItem/SB00002");
    assert_eq!(
        gets.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![401, 200]
    );

    // A 401 right after the new login is not chased forever: one re-login, then the error.
    env.sandbox.acumatica.sessions.expire_all();
    let unauthorized = Action::Reply {
        status: 401,
        headers: vec![("content-type", "application/json".into())],
        body: r#"{"message":"You are not logged in."}"#.into(),
    };
    env.proxy
        .script("GET", "/StockItem/SB00003", 2, unauthorized);
    let err = client
        .get("/StockItem/SB00003")
        .await
        .expect_err("401 twice");
    assert_eq!(err.status(), Some(401), "{err}");
    assert!(err.to_string().contains("not logged in"), "{err}");
    assert_eq!(env.proxy.requests_to("POST", "/entity/auth/login").len(), 3);
    client.close().await;
    assert_eq!(env.open_sessions(), 0);
    env.assert_requests_conform();
}

/// Holds every API-user slot with a session of its own, as another integration would.
struct Occupant {
    http: reqwest::Client,
    base: String,
}

impl Occupant {
    async fn login(env: &Env) -> Occupant {
        let c = env.sandbox.credentials();
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .unwrap();
        let base = env.sandbox.acumatica_url.clone();
        let r = http
            .post(format!("{base}/entity/auth/login"))
            .json(
                &json!({"name": c.acumatica_username, "password": c.acumatica_password,
                          "tenant": c.acumatica_tenant, "branch": c.acumatica_branch}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        Occupant { http, base }
    }

    async fn logout(self) {
        let r = self
            .http
            .post(format!("{}/entity/auth/logout", self.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
    }
}

async fn login_over_the_limit_is_retried(answer: &str, status: u16) {
    let mut all = json!(options());
    all["login_limit_answer"] = json!(answer);
    all["max_sessions"] = json!(1);
    let limits: AcumaticaOptions = serde_json::from_value(all).expect("options");
    let env = Env::start(limits).await;
    let occupant = Occupant::login(&env).await;
    let client = AcumaticaClient::new(&env.config(&[("max_sessions = 2", "max_sessions = 1")]))
        .unwrap()
        .with_backoff(Backoff {
            base: Duration::from_millis(20),
            max: Duration::from_millis(100),
            attempts: 30,
        });

    let work = async {
        let get = client.get("/StockItem/SB00001");
        let free = async {
            eventually("the client's login was refused", || {
                env.sandbox.acumatica.counters().logins_over_limit >= 2
            })
            .await;
            occupant.logout().await;
        };
        let (got, ()) = tokio::join!(get, free);
        got
    };
    let item = work.await.expect("the login succeeds once a slot frees");
    assert_eq!(item["InventoryID"]["value"], "SB00001");
    let logins = env.proxy.requests_to("POST", "/entity/auth/login");
    assert!(logins.len() >= 3, "{} logins", logins.len());
    assert!(
        logins[..logins.len() - 1]
            .iter()
            .all(|r| r.status == status)
    );
    assert_eq!(logins.last().unwrap().status, 204);
    client.close().await;
    assert_eq!(env.open_sessions(), 0);
    env.assert_requests_conform();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_over_the_licence_limit_429_is_retried() {
    login_over_the_limit_is_retried("too_many_requests", 429).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_over_the_licence_limit_500_api_login_limit_is_retried() {
    login_over_the_limit_is_retried("server_error", 500).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_rejected_once_and_named_without_the_password() {
    let env = Env::start(options()).await;
    let good = env.password();
    let wrong = "Wr0ng-Secret-Passw0rd";
    let client = env.client(&[(
        &format!("password = \"{good}\""),
        &format!("password = \"{wrong}\""),
    )]);
    let err = client.get("/StockItem?$top=1").await.expect_err("refused");
    assert!(
        matches!(err, AcumaticaError::LoginRejected { .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("`admin`"), "{text}");
    assert!(text.contains("`Company`"), "{text}");
    assert!(text.contains("Invalid credentials"), "{text}");
    assert!(!text.contains(wrong), "the password leaked: {text}");
    assert!(!format!("{err:?}").contains(wrong));
    assert!(!text.contains(&good));
    assert_eq!(
        env.proxy.requests_to("POST", "/entity/auth/login").len(),
        1,
        "a refused login is not retried"
    );
    assert_eq!(env.open_sessions(), 0);
}

fn html(status: u16) -> Action {
    Action::Reply {
        status,
        headers: vec![("content-type", "text/html".into())],
        body: format!("<html><body><h1>{status}</h1></body></html>"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_and_429_are_retried_to_success() {
    let env = Env::start(options()).await;
    let client = AcumaticaClient::new(&env.config(&[]))
        .unwrap()
        .with_backoff(Backoff {
            base: Duration::from_millis(5),
            max: Duration::from_secs(3),
            attempts: 6,
        });
    env.proxy.script(
        "GET",
        "/StockItem/SB00001",
        1,
        Action::Reply {
            status: 500,
            headers: vec![("content-type", "application/json".into())],
            body: r#"{"message":"An error has occurred.","exceptionMessage":"Timeout","exceptionType":"System.Exception","stackTrace":null}"#.into(),
        },
    );
    env.proxy.script("GET", "/StockItem/SB00001", 1, html(502));
    env.proxy.script("GET", "/StockItem/SB00001", 1, html(503));
    let item = client.get("/StockItem/SB00001").await.expect("retried");
    assert_eq!(item["InventoryID"]["value"], "SB00001");
    let statuses: Vec<u16> = env
        .proxy
        .requests_to("GET", "/StockItem/SB00001")
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, vec![500, 502, 503, 200]);

    // 429 with Retry-After: 1 — the retry does not come before the server's second.
    env.proxy.script(
        "GET",
        "/StockItem/SB00002",
        1,
        Action::Reply {
            status: 429,
            headers: vec![
                ("retry-after", "1".into()),
                ("content-type", "application/json".into()),
            ],
            body: r#"{"message":"The request limit has been exceeded. Please try again later."}"#
                .into(),
        },
    );
    client.get("/StockItem/SB00002").await.expect("retried");
    let tries = env.proxy.requests_to("GET", "/StockItem/SB00002");
    assert_eq!(
        tries.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![429, 200]
    );
    assert!(
        tries[1].at - tries[0].at >= Duration::from_millis(950),
        "retried {:?} after a Retry-After of 1 s",
        tries[1].at - tries[0].at
    );

    // The sandbox's own faults (its 500 body, proxy pages, 429s, cut replies) at a high rate.
    env.sandbox.acumatica.faults.set_faults(Faults {
        error_rate: 0.3,
        rate_limit_rate: 0.2,
        drop_rate: 0.1,
        ..Faults::default()
    });
    let fast_client = AcumaticaClient::new(&env.config(&[]))
        .unwrap()
        .with_backoff(Backoff {
            base: Duration::from_millis(2),
            max: Duration::from_millis(20),
            attempts: 20,
        });
    for i in 1..=5 {
        let id = format!("SB{i:05}");
        let item = fast_client
            .get(&format!("/StockItem/{id}"))
            .await
            .expect("faults retried");
        assert_eq!(item["InventoryID"]["value"], id.as_str());
    }
    let injected = env.sandbox.acumatica.faults.injected_counts();
    assert!(
        injected.get("server_error").copied().unwrap_or(0) > 0,
        "{injected:?}"
    );
    env.sandbox.acumatica.faults.set_faults(Faults::default());
    fast_client.close().await;
    client.close().await;
    assert_eq!(env.open_sessions(), 0);
    env.assert_requests_conform();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_acumatica_refuses_fails_at_once_with_its_message() {
    let env = Env::start(options()).await;
    let client = env.client(&[]);
    // A field StockItem does not define: 400 from the model binder.
    let err = client
        .put(
            "/StockItem",
            &json!({"InventoryID": {"value": "SB00001"}, "Colour": {"value": "red"}}),
            None,
        )
        .await
        .expect_err("unknown field");
    assert_eq!(err.status(), Some(400), "{err}");
    assert!(err.to_string().contains("Colour"), "{err}");
    assert_eq!(env.proxy.requests_to("PUT", "/StockItem").len(), 1);

    // A record without its key: 422 with the field's error.
    let err = client
        .put(
            "/StockItem",
            &json!({"Description": {"value": "no key"}}),
            None,
        )
        .await
        .expect_err("missing key");
    assert_eq!(err.status(), Some(422), "{err}");
    assert!(err.to_string().contains("InventoryID"), "{err}");
    assert_eq!(env.proxy.requests_to("PUT", "/StockItem").len(), 2);

    // If-None-Match: * on an existing record: 412, typed.
    let err = client
        .put(
            "/StockItem",
            &json!({"InventoryID": {"value": "SB00001"}, "Description": {"value": "x"}}),
            Some(Precondition::InsertOnly),
        )
        .await
        .expect_err("exists");
    assert!(err.is_precondition_failed(), "{err}");
    let err = client.get("/StockItem/NOPE").await.expect_err("missing");
    assert!(err.is_not_found(), "{err}");
    assert_eq!(env.proxy.requests_to("GET", "/StockItem/NOPE").len(), 1);

    // A good write and filtered read go through.
    let put = client
        .put(
            "/StockItem",
            &json!({"InventoryID": {"value": "SB00002"}, "Description": {"value": "Renamed"}}),
            Some(Precondition::UpdateOnly),
        )
        .await
        .expect("update");
    assert_eq!(put["Description"]["value"], "Renamed");
    assert_eq!(
        env.sandbox.acumatica.state()["entities"]["stock_items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["InventoryID"] == "SB00002")
            .map(|i| i["Description"].clone()),
        Some(json!("Renamed"))
    );
    let since = client
        .get("/StockItem?$filter=LastModifiedDateTime%20gt%20datetimeoffset'2000-01-01T00:00:00Z'&$select=InventoryID,Description&$top=2")
        .await
        .expect("filtered read");
    assert_eq!(values(&since).len(), 2);
    client.close().await;
    env.assert_requests_conform_except(|r| String::from_utf8_lossy(&r.body).contains("Colour"));
}

fn oauth_edits(env: &Env) -> Vec<(String, String)> {
    let c = env.sandbox.credentials();
    vec![
        (
            "auth = \"session\"".to_string(),
            format!(
                "auth = \"oauth2\"\nclient_id = \"{}\"\nclient_secret = \"{}\"",
                c.acumatica_client_id, c.acumatica_client_secret
            ),
        ),
        ("max_sessions = 2".into(), "max_sessions = 1".into()),
    ]
}

fn form(r: &support::proxy::Recorded) -> std::collections::HashMap<String, String> {
    url::form_urlencoded::parse(&r.body).into_owned().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth2_password_grant_bearer_and_refresh() {
    let env = Env::start(options()).await;
    let edits = oauth_edits(&env);
    let edits: Vec<(&str, &str)> = edits
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let client = env.client(&edits);

    client
        .get("/StockItem/SB00001")
        .await
        .expect("GET with a token");
    let tokens = env.proxy.requests_to("POST", "/identity/connect/token");
    assert_eq!(tokens.len(), 1);
    assert_eq!(form(&tokens[0])["grant_type"], "password");
    let get = &env.proxy.requests_to("GET", "/StockItem/SB00001")[0];
    let auth = get.headers["authorization"].to_str().unwrap();
    assert!(auth.starts_with("Bearer "), "{auth}");
    assert!(
        env.proxy
            .requests_to("POST", "/entity/auth/login")
            .is_empty()
    );

    // The access token runs out: the refresh token gets a new one, keeping the licence slot.
    env.proxy.script(
        "GET",
        "/StockItem/SB00002",
        1,
        Action::Reply {
            status: 401,
            headers: vec![("content-type", "application/json".into())],
            body: r#"{"message":"You are not logged in."}"#.into(),
        },
    );
    client.get("/StockItem/SB00002").await.expect("refreshed");
    let tokens = env.proxy.requests_to("POST", "/identity/connect/token");
    assert_eq!(tokens.len(), 2);
    assert_eq!(form(&tokens[1])["grant_type"], "refresh_token");
    let retried = env.proxy.requests_to("GET", "/StockItem/SB00002");
    assert_eq!(retried.last().unwrap().status, 200);
    assert_ne!(
        retried.last().unwrap().headers["authorization"],
        get.headers["authorization"],
        "the retry carries the new token"
    );
    assert_eq!(env.open_sessions(), 1);

    // Everything revoked: the refresh is refused, the password grant starts over. The new
    // token lives one second.
    env.sandbox
        .acumatica
        .sessions
        .set_options(AcumaticaOptions {
            access_token_lifetime_secs: 1,
            ..options()
        });
    env.sandbox.acumatica.sessions.expire_all();
    client.get("/StockItem/SB00003").await.expect("new grant");
    // Past its lifetime the token is refused (401) and refreshed.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    client
        .get("/StockItem/SB00004")
        .await
        .expect("refreshed after expiry");
    let expired = env.proxy.requests_to("GET", "/StockItem/SB00004");
    assert_eq!(
        expired.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![401, 200]
    );
    let grants: Vec<String> = env
        .proxy
        .requests_to("POST", "/identity/connect/token")
        .iter()
        .map(|r| form(r)["grant_type"].clone())
        .collect();
    assert_eq!(
        grants,
        vec![
            "password",
            "refresh_token",
            "refresh_token",
            "password",
            "refresh_token"
        ]
    );

    client.close().await;
    assert_eq!(env.open_sessions(), 0, "close() ends the token's session");
    env.assert_requests_conform();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_sessions_logs_out_when_the_work_fails() {
    let env = Env::start(options()).await;
    let client = env.client(&[]);
    let outcome: anyhow::Result<()> = with_sessions(&client, async {
        client.get("/StockItem?$top=1").await?;
        client.get("/StockItem/SB00001").await?;
        client.get("/StockItem/NOPE").await?;
        Ok(())
    })
    .await;
    let err = outcome.expect_err("the work failed");
    assert!(
        err.downcast_ref::<AcumaticaError>()
            .is_some_and(AcumaticaError::is_not_found),
        "{err}"
    );
    assert_eq!(env.sandbox.acumatica.counters().logins, 2);
    assert_eq!(env.open_sessions(), 0, "with_sessions logged out");
    env.assert_requests_conform();
}

/// Runs in a child process (this test binary, this test, an environment variable set): holds
/// a session open in `with_sessions` until the parent sends a signal.
async fn signal_child(config_text: String, expected: &str) {
    let config = Config::parse(&config_text, Path::new("connector.toml"), &|_| None).unwrap();
    let client = AcumaticaClient::new(&config).unwrap().with_backoff(fast());
    let outcome: anyhow::Result<()> = with_sessions(&client, async {
        client.get("/StockItem?$top=1").await?;
        std::future::pending::<()>().await;
        Ok(())
    })
    .await;
    let err = outcome.expect_err("interrupted");
    assert!(
        err.to_string()
            .contains(&format!("interrupted by {expected}")),
        "{err}"
    );
    println!("CHILD-INTERRUPTED");
}

/// Starts this test again as a child holding a session, sends it `signal` (`INT`, `TERM`)
/// once the session is open, and checks the child logged out before it ended.
async fn interrupt_child(signal: &str, expected: &str) {
    let env = Env::start(options()).await;
    let child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "with_sessions_logs_out_on_sigint_and_sigterm",
            "--nocapture",
        ])
        .env("ACUMATICA_CLIENT_SIGNAL_CHILD", &env.config_text)
        .env("ACUMATICA_CLIENT_SIGNAL_EXPECTED", expected)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("child starts");
    eventually("the child holds a session", || env.open_sessions() == 1).await;
    eventually("the child's GET was answered", || {
        env.proxy
            .requests_to("GET", "/StockItem")
            .iter()
            .any(|r| r.status == 200)
    })
    .await;
    let pid = child.id().unwrap().to_string();
    let kill = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("the child stops")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("CHILD-INTERRUPTED"),
        "child ({signal}): {:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        env.open_sessions(),
        0,
        "the run stopped by SIG{signal} logged out"
    );
    assert_eq!(
        env.proxy.requests_to("POST", "/entity/auth/logout").len(),
        1
    );
    env.assert_requests_conform();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_sessions_logs_out_on_sigint_and_sigterm() {
    if let Ok(config) = std::env::var("ACUMATICA_CLIENT_SIGNAL_CHILD") {
        let expected = std::env::var("ACUMATICA_CLIENT_SIGNAL_EXPECTED").unwrap();
        signal_child(config, &expected).await;
        return;
    }
    interrupt_child("INT", "Ctrl-C").await;
    interrupt_child("TERM", "SIGTERM").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_401s_on_one_session_log_in_once() {
    let env = Env::start(options()).await;
    let client = env.client(&[("max_sessions = 2", "max_sessions = 1")]);
    client.get("/StockItem?$top=1").await.expect("first GET");
    env.sandbox.acumatica.sessions.expire_all();
    let calls = (1..=5).map(|i| {
        let client = &client;
        async move { client.get(&format!("/StockItem/SB{i:05}")).await }
    });
    for r in futures_util::future::join_all(calls).await {
        r.expect("GET after expiry");
    }
    assert_eq!(
        env.proxy.requests_to("POST", "/entity/auth/login").len(),
        2,
        "one login at start, one after the expiry"
    );
    assert_eq!(env.sandbox.acumatica.counters().limit_violations(), 0);
    client.close().await;
    assert_eq!(env.open_sessions(), 0);
    env.assert_requests_conform();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth2_with_a_wrong_client_secret_is_rejected_without_secrets() {
    let env = Env::start(options()).await;
    let edits = oauth_edits(&env);
    let good = env.sandbox.credentials().acumatica_client_secret;
    let wrong_secret = "wrong-client-secret-value";
    let auth = edits[0].1.replace(&good, wrong_secret);
    let client = env.client(&[(edits[0].0.as_str(), auth.as_str())]);
    let err = client.get("/StockItem?$top=1").await.expect_err("refused");
    assert!(
        matches!(err, AcumaticaError::LoginRejected { .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("invalid_client"), "{text}");
    assert!(
        text.contains("client_secret"),
        "names the setting to check: {text}"
    );
    assert!(!text.contains(wrong_secret), "{text}");
    assert!(!text.contains(&env.password()), "{text}");
    assert_eq!(
        env.proxy
            .requests_to("POST", "/identity/connect/token")
            .len(),
        1
    );
    assert_eq!(env.open_sessions(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_are_polled_to_the_end_and_not_repeated_blindly() {
    let env = Env::start(AcumaticaOptions {
        action_duration_ms: 50,
        ..options()
    })
    .await;
    let client = env.client(&[]);
    let order = client
        .put(
            "/SalesOrder",
            &json!({
                "OrderType": {"value": "SO"},
                "CustomerID": {"value": "ABCSTUDIOS"},
                "CustomerOrder": {"value": "000000123"},
                "Details": [
                    {"InventoryID": {"value": "SB00001"}, "OrderQty": {"value": 2}, "UnitPrice": {"value": 10.0}}
                ]
            }),
            Some(Precondition::InsertOnly),
        )
        .await
        .expect("order created");
    let nbr = order["OrderNbr"]["value"].as_str().unwrap().to_string();
    let keys = json!({"entity": {"OrderType": {"value": "SO"}, "OrderNbr": {"value": nbr}}});

    // A proxy error on the action itself is not sent again: the action may have run.
    env.proxy
        .script("POST", "/SalesOrder/CancelSalesOrder", 1, html(502));
    let err = client
        .invoke("SalesOrder", "CancelSalesOrder", &keys)
        .await
        .expect_err("502");
    assert!(err.to_string().contains("502"), "{err}");
    assert_eq!(
        env.proxy
            .requests_to("POST", "/SalesOrder/CancelSalesOrder")
            .len(),
        1
    );

    client
        .invoke("SalesOrder", "CancelSalesOrder", &keys)
        .await
        .expect("cancelled");
    let read = client
        .get(&format!("/SalesOrder/SO/{nbr}"))
        .await
        .expect("read back");
    assert_eq!(read["Status"]["value"], "Canceled");

    // Cancelling again is refused by the order's state: at once, with the reason.
    let err = client
        .invoke("SalesOrder", "CancelSalesOrder", &keys)
        .await
        .expect_err("already cancelled");
    assert_eq!(err.status(), Some(400), "{err}");
    let err = client
        .delete("/StockItem/NOPE")
        .await
        .expect_err("nothing to delete");
    assert!(err.is_not_found(), "{err}");
    assert_eq!(env.proxy.requests_to("DELETE", "/StockItem/NOPE").len(), 1);
    client.close().await;
    assert_eq!(env.open_sessions(), 0);
    env.assert_requests_conform();
}

/// The connector's endpoint XML as docs/sandbox-acumatica-gi.md documents it (its first `xml`
/// block): what the sandbox's endpoint maintenance accepts.
fn endpoint_xml() -> String {
    const DOC: &str = include_str!("../docs/sandbox-acumatica-gi.md");
    let start = DOC.find("```xml\n").expect("an xml block") + "```xml\n".len();
    let end = start + DOC[start..].find("\n```").expect("end of the xml block");
    DOC[start..end].to_string()
}

fn items_gi(name: &str) -> Value {
    let v = |x: Value| json!({ "value": x });
    let result = |field: &str| json!({"Object": v(json!("Item")), "Field": v(json!(field)), "Caption": v(json!(field))});
    json!({
        "InquiryTitle": v(json!(name)),
        "ExposeViaOData": v(json!(true)),
        "Tables": [{"Table": v(json!("PX.Objects.IN.InventoryItem")), "Alias": v(json!("Item"))}],
        "Results": [result("InventoryCD"), result("BasePrice"), result("LastModifiedDateTime")],
    })
}

/// Creates the connector's endpoint and an items GI exposed over OData, through `client`.
async fn provision_items_gi(client: &AcumaticaClient) {
    let site = client.site().to_string();
    let reply = client
        .post_xml(
            &format!("{site}/entity/maintenance/23.200/"),
            &endpoint_xml(),
        )
        .await
        .expect("endpoint created");
    assert!(reply.status < 300, "{reply:?}");
    client
        .send(
            reqwest::Method::PUT,
            &format!("{site}/entity/MagentoConnector/24.200.001/GenericInquiry"),
            Some(&items_gi("MC-items")),
            None,
            true,
        )
        .await
        .expect("GI created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odata_reads_a_generic_inquiry_with_basic_credentials_or_the_bearer_token() {
    let env = Env::start(options()).await;
    let client = env.client(&[("max_sessions = 2", "max_sessions = 1")]);
    provision_items_gi(&client).await;

    let filter = "LastModifiedDateTime gt datetimeoffset'2000-01-01T00:00:00Z'".to_string();
    let page = client
        .odata(
            "MC-items",
            &[("$filter", filter.clone()), ("$top", "2".into())],
        )
        .await
        .expect("OData read");
    let rows = page["value"].as_array().expect("value rows");
    assert_eq!(rows.len(), 2);
    assert!(rows[0]["InventoryCD"].is_string(), "{page}");
    let read = env.proxy.requests_to("GET", "/api/odata/gi/MC-items");
    assert_eq!(read.len(), 1);
    let auth = read[0].headers["authorization"].to_str().unwrap();
    assert!(auth.starts_with("Basic "), "{auth}");

    let err = client
        .odata("MC-nothing", &[])
        .await
        .expect_err("no such GI");
    assert!(err.is_not_found(), "{err}");
    assert_eq!(
        env.proxy
            .requests_to("GET", "/api/odata/gi/MC-nothing")
            .len(),
        1
    );
    client.close().await;
    assert_eq!(env.open_sessions(), 0);

    // OAuth 2.0: the same read with the bearer token.
    let edits = oauth_edits(&env);
    let edits: Vec<(&str, &str)> = edits
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let oauth = env.client(&edits);
    let page = oauth
        .odata("MC-items", &[("$top", "3".into())])
        .await
        .expect("OData read with a token");
    assert_eq!(page["value"].as_array().unwrap().len(), 3);
    let read = env.proxy.requests_to("GET", "/api/odata/gi/MC-items");
    let auth = read.last().unwrap().headers["authorization"]
        .to_str()
        .unwrap();
    assert!(auth.starts_with("Bearer "), "{auth}");
    oauth.close().await;
    assert_eq!(env.open_sessions(), 0);
    assert_eq!(env.sandbox.acumatica.counters().limit_violations(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_that_fails_while_running_is_reported_at_once() {
    let env = Env::start(AcumaticaOptions {
        action_duration_ms: 400,
        ..options()
    })
    .await;
    let client = env.client(&[]);
    let order = client
        .put(
            "/SalesOrder",
            &json!({
                "OrderType": {"value": "SO"},
                "CustomerID": {"value": "ABCSTUDIOS"},
                "Details": [
                    {"InventoryID": {"value": "SB00001"}, "OrderQty": {"value": 1}, "UnitPrice": {"value": 10.0}}
                ]
            }),
            None,
        )
        .await
        .expect("order created");
    let nbr = order["OrderNbr"]["value"].as_str().unwrap().to_string();
    let keys = json!({"entity": {"OrderType": {"value": "SO"}, "OrderNbr": {"value": nbr}}});

    // While the cancellation runs, the warehouse ships the order: the action fails.
    let ship = async {
        eventually("the action was accepted", || {
            env.proxy
                .requests_to("POST", "/SalesOrder/CancelSalesOrder")
                .iter()
                .any(|r| r.status == 202)
        })
        .await;
        let r = reqwest::Client::new()
            .post(format!("{}/__sandbox/shipments", env.sandbox.acumatica_url))
            .json(&json!({"order_nbr": nbr, "confirm": false}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    };
    let (outcome, ()) = tokio::join!(client.invoke("SalesOrder", "CancelSalesOrder", &keys), ship);
    let err = outcome.expect_err("the action failed");
    assert!(err.to_string().contains("has shipments"), "{err}");
    let polls = env.proxy.requests_to("GET", "/CancelSalesOrder/status/");
    assert!(
        !polls.is_empty(),
        "the action was polled through its Location"
    );
    assert_eq!(
        polls.iter().filter(|r| r.status == 500).count(),
        1,
        "the action's failure is its outcome, not a server error to ask again: {:?}",
        polls.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    client.close().await;
    assert_eq!(env.open_sessions(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_that_persists_gives_up_after_the_configured_tries() {
    let env = Env::start(options()).await;
    let client = AcumaticaClient::new(&env.config(&[]))
        .unwrap()
        .with_backoff(Backoff {
            base: Duration::from_millis(2),
            max: Duration::from_millis(10),
            attempts: 4,
        });
    env.proxy
        .script("GET", "/StockItem/SB00001", 100, html(503));
    let err = client
        .get("/StockItem/SB00001")
        .await
        .expect_err("never recovers");
    assert!(
        matches!(err, AcumaticaError::GaveUp { attempts: 4, .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("GET"), "{text}");
    assert!(text.contains("/StockItem/SB00001"), "{text}");
    assert!(text.contains("503"), "{text}");
    assert!(!text.contains(&env.password()), "{text}");
    assert_eq!(env.proxy.requests_to("GET", "/StockItem/SB00001").len(), 4);
    client.close().await;
    assert_eq!(env.open_sessions(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_that_cannot_grow_works_with_the_sessions_it_has() {
    // Two API users in the licence, one taken by another integration: the client's second
    // session cannot log in, and the work goes through the first.
    let env = Env::start(AcumaticaOptions {
        max_sessions: 2,
        ..options()
    })
    .await;
    let occupant = Occupant::login(&env).await;
    let client = env.client(&[("requests_per_minute = 600", "requests_per_minute = 60000")]);
    client
        .get("/StockItem?$top=1")
        .await
        .expect("first session");
    let calls = (0..8).map(|i| {
        let client = &client;
        async move { client.get(&format!("/StockItem/SB{:05}", i % 5 + 1)).await }
    });
    for r in futures_util::future::join_all(calls).await {
        r.expect("served by the session the licence allows");
    }
    let counters = env.sandbox.acumatica.counters();
    assert!(counters.peak_sessions <= 2);
    let refused = env
        .proxy
        .requests_to("POST", "/entity/auth/login")
        .iter()
        .filter(|r| r.status == 429)
        .count();
    assert!(
        refused <= 2,
        "{refused} logins over the limit: the full session is not tried again and again"
    );
    client.close().await;
    assert_eq!(
        env.open_sessions(),
        1,
        "only the other integration's session is left"
    );
    occupant.logout().await;
    assert_eq!(env.open_sessions(), 0);
    env.assert_requests_conform();
}
