//! The Magento client against the simulated Magento over real HTTP on loopback, through the
//! recording proxy of `support::proxy` (every request kept for the schema check; scripted
//! faults where a test needs an exact sequence).

mod support;

use std::path::Path;
use std::time::Duration;

use connector::config::Config;
use connector::http::Backoff;
use connector::magento::{Condition, Filter, MagentoClient, MagentoError, Scope, SearchCriteria};
use connector::sandbox::magento::MagentoKnobs;
use connector::sandbox::{Faults, Sandbox, SandboxOptions, config_file};
use serde_json::{Value, json};
use support::openapi::{Spec, assert_conforms};
use support::proxy::{Action, Proxy, Recorded};

struct Env {
    sandbox: Sandbox,
    proxy: Proxy,
    config_text: String,
}

impl Env {
    async fn start() -> Env {
        let sandbox = Sandbox::start(SandboxOptions {
            items: 12,
            orders: 3,
            ..SandboxOptions::default()
        })
        .await
        .expect("sandbox starts");
        let proxy = Proxy::start(sandbox.addr).await;
        let receiver = config_file::free_loopback_port().expect("free port");
        let config_text = config_file::render(&sandbox, receiver).replace(
            &format!("url = \"{}\"", sandbox.magento_url),
            &format!("url = \"{}/magento\"", proxy.url),
        );
        Env {
            sandbox,
            proxy,
            config_text,
        }
    }

    fn config(&self, edits: &[(&str, &str)]) -> Config {
        let mut text = self.config_text.clone();
        for (from, to) in edits {
            assert!(text.contains(from), "config lacks {from:?}");
            text = text.replacen(from, to, 1);
        }
        Config::parse(&text, Path::new("connector.toml"), &|_| None).expect("config parses")
    }

    fn client(&self, edits: &[(&str, &str)]) -> MagentoClient {
        MagentoClient::new(&self.config(edits))
            .expect("client")
            .with_backoff(fast())
    }

    /// The OAuth 1.0a config, with `consumer_secret` as given.
    fn oauth1_client(&self, consumer_secret: &str) -> MagentoClient {
        let c = self.sandbox.credentials();
        let auth = format!(
            "auth = \"oauth1\"\nconsumer_key = \"{}\"\nconsumer_secret = \"{consumer_secret}\"\naccess_token_secret = \"{}\"",
            c.magento_consumer_key, c.magento_access_token_secret
        );
        self.client(&[("auth = \"bearer\"", &auth)])
    }

    /// `GET {magento}/__sandbox/state`.
    async fn state(&self) -> Value {
        reqwest::get(format!("{}/__sandbox/state", self.sandbox.magento_url))
            .await
            .expect("state")
            .json()
            .await
            .expect("state is JSON")
    }

    fn knobs(&self, knobs: MagentoKnobs) {
        self.sandbox.magento.set_knobs(knobs);
    }

    /// Every request the client sent conforms to the admin schema.
    fn assert_requests_conform_except(&self, deliberate: impl Fn(&Recorded) -> bool) {
        let spec = Spec::magento();
        let mut checked = 0;
        for r in self.proxy.requests().iter().filter(|r| !deliberate(r)) {
            let relative = spec
                .relative_path(&r.path)
                .unwrap_or_else(|| panic!("{} is not a REST path", r.path));
            let target = match &r.query {
                Some(q) => format!("{relative}?{q}"),
                None => relative.to_string(),
            };
            assert_conforms(spec.check_request(&r.method, &target, r.json().as_ref()));
            checked += 1;
        }
        assert!(checked > 0, "no request was recorded");
    }

    fn assert_requests_conform(&self) {
        self.assert_requests_conform_except(|_| false)
    }
}

fn fast() -> Backoff {
    Backoff {
        base: Duration::from_millis(5),
        max: Duration::from_millis(100),
        attempts: 10,
    }
}

fn skus(results: &Value) -> Vec<String> {
    results["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|p| p["sku"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_reads_and_writes() {
    let env = Env::start().await;
    let client = env.client(&[]);
    let product = client
        .get(Scope::Store, "/V1/products/SB-0001", &[])
        .await
        .expect("GET with the bearer token");
    assert_eq!(product["sku"], "SB-0001");
    let saved = client
        .put(
            Scope::All,
            "/V1/products/SB-0002",
            &json!({"product": {"sku": "SB-0002", "weight": 2.5}}),
        )
        .await
        .expect("PUT through all");
    assert_eq!(saved["weight"], 2.5);
    let r = &env.proxy.requests()[0];
    assert!(r.path.starts_with("/magento/rest/default/V1/"));
    assert!(
        r.headers["authorization"]
            .to_str()
            .unwrap()
            .starts_with("Bearer ")
    );
    assert!(
        env.proxy.requests()[1]
            .path
            .starts_with("/magento/rest/all/V1/")
    );
    env.assert_requests_conform();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth1_signed_requests_are_accepted_and_a_bad_secret_is_one_clear_401() {
    let env = Env::start().await;
    let good = env.sandbox.credentials().magento_consumer_secret;
    let client = env.oauth1_client(&good);
    let product = client
        .get(Scope::Store, "/V1/products/SB-0003", &[])
        .await
        .expect("signed GET");
    assert_eq!(product["sku"], "SB-0003");
    // The query takes part in the signature: brackets, spaces, `%` and `,` in values.
    let query = SearchCriteria::new()
        .and(Filter::new("sku", Condition::Like, "SB-00%"))
        .and(Filter::new(
            "name",
            Condition::Neq,
            "a name, with spaces & more",
        ))
        .sort_descending("sku")
        .page(2, 1)
        .to_query();
    let found = client
        .get(Scope::Store, "/V1/products", &query)
        .await
        .expect("signed search");
    assert_eq!(skus(&found).len(), 2);
    client
        .put(
            Scope::All,
            "/V1/products/SB-0003",
            &json!({"product": {"sku": "SB-0003", "weight": 1.25}}),
        )
        .await
        .expect("signed PUT");
    // A retry is signed anew: the sandbox saw the first nonce and refuses a replay.
    env.proxy
        .script("GET", "/V1/products/SB-0005", 1, Action::ForwardThenDrop);
    client
        .get(Scope::Store, "/V1/products/SB-0005", &[])
        .await
        .expect("signed GET retried after a cut");
    let tries = env.proxy.requests_to("GET", "/V1/products/SB-0005");
    assert_eq!(
        tries.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![0, 200]
    );
    assert_ne!(
        tries[0].headers["authorization"],
        tries[1].headers["authorization"]
    );
    let auth = env.proxy.requests()[0].headers["authorization"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(auth.starts_with("OAuth "), "{auth}");
    assert!(
        auth.contains("oauth_signature_method=\"HMAC-SHA256\""),
        "{auth}"
    );
    let sent = env.proxy.requests().len();

    let bad = env.oauth1_client("not-the-consumer-secret");
    let err = bad
        .get(Scope::Store, "/V1/products/SB-0003", &[])
        .await
        .expect_err("refused");
    assert!(matches!(err, MagentoError::Unauthorized { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("revoked"), "{text}");
    assert!(text.contains("ACL"), "{text}");
    assert!(
        text.contains("Magento_Catalog::products"),
        "the server's %resources filled: {text}"
    );
    assert!(!text.contains("not-the-consumer-secret"), "{text}");
    assert_eq!(env.proxy.requests().len(), sent + 1, "a 401 is not retried");
    env.assert_requests_conform();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_turned_off_in_magento_is_the_clear_401() {
    let env = Env::start().await;
    env.knobs(MagentoKnobs {
        bearer: false,
        ..MagentoKnobs::default()
    });
    let client = env.client(&[]);
    let err = client
        .get(Scope::Store, "/V1/products/SB-0001", &[])
        .await
        .expect_err("bearer off");
    assert_eq!(err.status(), Some(401));
    let text = err.to_string();
    assert!(text.contains("standalone Bearer"), "{text}");
    let token = env.sandbox.credentials().magento_access_token;
    assert!(!text.contains(&token), "{text}");
    assert_eq!(env.proxy.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn magento_errors_have_their_placeholders_filled_and_fail_at_once() {
    let env = Env::start().await;
    let client = env.client(&[]);
    // Named placeholder (`%fieldName`, parameters as an object).
    let err = client
        .put(
            Scope::All,
            "/V1/products/SB-0001",
            &json!({"product": {"sku": "SB-0001", "colour": "red"}}),
        )
        .await
        .expect_err("unknown property");
    assert_eq!(err.status(), Some(400));
    let text = err.to_string();
    assert!(text.contains("is not supported"), "{text}");
    assert!(!text.contains('%'), "placeholder left: {text}");
    assert!(text.to_lowercase().contains("colour"), "{text}");
    // Positional placeholder (`%1`, parameters as a list).
    let err = client
        .put(
            Scope::All,
            "/V1/products/NEW-1",
            &json!({"product": {"sku": "NEW-1", "name": "New", "attribute_set_id": 4, "type_id": "simple"}}),
        )
        .await
        .expect_err("create without price");
    let text = err.to_string();
    assert!(
        text.contains("\"Price\" attribute value is empty"),
        "{text}"
    );
    // A missing record: 404, typed.
    let err = client
        .get(Scope::Store, "/V1/products/NOPE", &[])
        .await
        .expect_err("missing");
    assert!(err.is_not_found(), "{err}");
    let err = client
        .get(Scope::Store, "/V1/customers/999", &[])
        .await
        .expect_err("missing customer");
    assert!(err.is_not_found(), "{err}");
    assert!(!err.to_string().contains('%'), "{err}");
    // Each failed once: no retry of a validation error.
    let puts = env.proxy.requests_to("PUT", "/V1/products/");
    assert_eq!(puts.len(), 2);
    assert!(puts.iter().all(|r| r.status == 400));
    assert_eq!(env.proxy.requests().len(), 4);
    env.assert_requests_conform_except(|r| String::from_utf8_lossy(&r.body).contains("colour"));
}

fn reply(status: u16, content_type: &str, body: &str) -> Action {
    Action::Reply {
        status,
        headers: vec![("content-type", content_type.to_string())],
        body: body.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_server_errors_and_deadlocks_are_retried_to_success() {
    let env = Env::start().await;
    let client = MagentoClient::new(&env.config(&[]))
        .unwrap()
        .with_backoff(Backoff {
            base: Duration::from_millis(5),
            max: Duration::from_secs(3),
            attempts: 6,
        });
    env.proxy.script(
        "GET",
        "/V1/products/SB-0001",
        1,
        reply(
            500,
            "application/json",
            r#"{"message":"Internal Error. Details are available in Magento log file. Report ID: webapi-1"}"#,
        ),
    );
    env.proxy.script(
        "GET",
        "/V1/products/SB-0001",
        1,
        reply(502, "text/html", "<html>502</html>"),
    );
    env.proxy.script(
        "GET",
        "/V1/products/SB-0001",
        1,
        reply(503, "text/html", "<html>503</html>"),
    );
    client
        .get(Scope::Store, "/V1/products/SB-0001", &[])
        .await
        .expect("retried past 500/502/503");
    let statuses: Vec<u16> = env
        .proxy
        .requests_to("GET", "/V1/products/SB-0001")
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, vec![500, 502, 503, 200]);

    env.proxy.script(
        "GET",
        "/V1/products/SB-0002",
        1,
        Action::Reply {
            status: 429,
            headers: vec![
                ("retry-after", "1".into()),
                ("content-type", "text/html".into()),
            ],
            body: "<html><body><h1>429 Too Many Requests</h1></body></html>".into(),
        },
    );
    client
        .get(Scope::Store, "/V1/products/SB-0002", &[])
        .await
        .expect("retried after the 429");
    let tries = env.proxy.requests_to("GET", "/V1/products/SB-0002");
    assert_eq!(
        tries.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![429, 200]
    );
    assert!(
        tries[1].at - tries[0].at >= Duration::from_millis(950),
        "retried {:?} after Retry-After: 1",
        tries[1].at - tries[0].at
    );

    // The sandbox's own faults at a high rate (its 500 body, proxy pages, HTML 429s).
    env.sandbox.magento.faults.set_faults(Faults {
        error_rate: 0.3,
        rate_limit_rate: 0.2,
        ..Faults::default()
    });
    let fast_client = env.client(&[]);
    for i in 4..=8 {
        let sku = format!("SB-{i:04}");
        let p = fast_client
            .get(Scope::Store, &format!("/V1/products/{sku}"), &[])
            .await
            .expect("faults retried");
        assert_eq!(p["sku"], sku.as_str());
    }
    assert!(
        env.sandbox
            .magento
            .faults
            .injected_counts()
            .values()
            .sum::<u64>()
            > 0
    );
    env.sandbox.magento.faults.set_faults(Faults::default());

    // Two saves of one product at once: the later one deadlocks (400) and is saved again.
    env.knobs(MagentoKnobs {
        deadlock: true,
        product_save_ms: 150,
        ..MagentoKnobs::default()
    });
    let weight = json!({"product": {"sku": "SB-0009", "weight": 1.0}});
    let price = json!({"product": {"sku": "SB-0009", "price": 19.5}});
    let (a, b) = tokio::join!(
        fast_client.put(Scope::All, "/V1/products/SB-0009", &weight),
        fast_client.put(Scope::All, "/V1/products/SB-0009", &price),
    );
    a.expect("first save");
    b.expect("second save");
    let puts = env.proxy.requests_to("PUT", "/V1/products/SB-0009");
    assert!(
        puts.iter().any(|r| r.status == 400),
        "no deadlock happened: {:?}",
        puts.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert_eq!(puts.iter().filter(|r| r.status == 200).count(), 2);
    let state = env.state().await;
    let product = state["products"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["sku"] == "SB-0009")
        .unwrap()
        .clone();
    assert_eq!(product["price"], 19.5);
    assert_eq!(product["weight"], 1.0);
    env.assert_requests_conform();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_is_retried_only_when_the_call_is_idempotent() {
    let env = Env::start().await;
    let client = env.client(&[]);
    env.proxy
        .script("PUT", "/V1/products/SB-0004", 1, Action::ForwardThenDrop);
    let saved = client
        .put(
            Scope::All,
            "/V1/products/SB-0004",
            &json!({"product": {"sku": "SB-0004", "weight": 4.5}}),
        )
        .await
        .expect("PUT retried after the cut");
    assert_eq!(saved["weight"], 4.5);
    let statuses: Vec<u16> = env
        .proxy
        .requests_to("PUT", "/V1/products/SB-0004")
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, vec![0, 200]);

    // The sandbox's own cut connections (the save happened, the reply never came).
    env.sandbox.magento.faults.set_faults(Faults {
        drop_rate: 0.5,
        ..Faults::default()
    });
    for i in 5..=8 {
        let sku = format!("SB-{i:04}");
        let saved = client
            .put(
                Scope::All,
                &format!("/V1/products/{sku}"),
                &json!({"product": {"sku": sku, "weight": 7.0}}),
            )
            .await
            .expect("PUT retried past the sandbox's cuts");
        assert_eq!(saved["weight"], 7.0);
    }
    let injected = env.sandbox.magento.faults.injected_counts();
    assert!(
        injected.get("dropped").copied().unwrap_or(0) > 0,
        "{injected:?}"
    );
    env.sandbox.magento.faults.set_faults(Faults::default());

    // A shipment cut off mid-reply may exist: not sent again blindly.
    let order_id = env.state().await["orders"][0]["entity_id"].clone();
    let path = format!("/V1/order/{order_id}/ship");
    env.proxy.script("POST", &path, 1, Action::ForwardThenDrop);
    let err = client
        .post(Scope::Store, &path, &json!({"notify": false}), false)
        .await
        .expect_err("cut");
    assert!(matches!(err, MagentoError::Transport { .. }), "{err:?}");
    assert_eq!(env.proxy.requests_to("POST", &path).len(), 1);
    env.assert_requests_conform();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_criteria_filter_sort_and_page_as_the_sandbox_reads_them() {
    let env = Env::start().await;
    let client = env.client(&[]);
    let criteria = || {
        SearchCriteria::new()
            .and(Filter::new("sku", Condition::Like, "SB-00%"))
            .and_any_of(vec![
                Filter::new("type_id", Condition::Eq, "simple"),
                Filter::new("sku", Condition::Eq, "SB-TEE"),
            ])
            .and(Filter::new(
                "updated_at",
                Condition::Gteq,
                "2000-01-01 00:00:00",
            ))
            .sort_descending("updated_at")
            .sort_ascending("entity_id")
    };
    let all = client
        .get(Scope::Store, "/V1/products", &criteria().to_query())
        .await
        .expect("search");
    let every = skus(&all);
    assert_eq!(all["total_count"], 12);
    assert_eq!(every.len(), 12);
    assert!(every.iter().all(|s| s.starts_with("SB-00")), "{every:?}");

    let page2 = client
        .get(
            Scope::Store,
            "/V1/products",
            &criteria().page(5, 2).to_query(),
        )
        .await
        .expect("page 2");
    assert_eq!(page2["total_count"], 12, "total_count is unpaged");
    assert_eq!(skus(&page2), every[5..10].to_vec());

    // OR inside a group, AND across groups.
    let either = client
        .get(
            Scope::Store,
            "/V1/products",
            &SearchCriteria::new()
                .and_any_of(vec![
                    Filter::new("sku", Condition::Eq, "SB-0001"),
                    Filter::new("sku", Condition::Eq, "SB-0002"),
                ])
                .and(Filter::new("sku", Condition::Neq, "SB-0002"))
                .to_query(),
        )
        .await
        .expect("search");
    assert_eq!(skus(&either), vec!["SB-0001".to_string()]);

    // No criteria at all still sends the required `searchCriteria`.
    let orders = client
        .get(
            Scope::Store,
            "/V1/orders",
            &SearchCriteria::new().to_query(),
        )
        .await
        .expect("orders");
    assert_eq!(orders["total_count"], 3);
    env.assert_requests_conform();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_keeps_its_requests_in_flight_cap() {
    let env = Env::start().await;
    env.sandbox.magento.faults.set_faults(Faults {
        latency_ms: 30,
        ..Faults::default()
    });
    let client = env.client(&[("max_concurrent_requests = 8", "max_concurrent_requests = 3")]);
    let calls = (1..=12).map(|i| {
        let client = &client;
        async move {
            client
                .get(Scope::Store, &format!("/V1/products/SB-{i:04}"), &[])
                .await
        }
    });
    for r in futures_util::future::join_all(calls).await {
        r.expect("GET");
    }
    assert!(
        env.proxy.peak_in_flight() <= 3,
        "{}",
        env.proxy.peak_in_flight()
    );
    assert!(env.proxy.peak_in_flight() >= 2, "ran one at a time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_batch_names_each_item_error() {
    let env = Env::start().await;
    let client = env.client(&[]);
    let err = client
        .post(
            Scope::Store,
            "/V1/inventory/source-items",
            &json!({"sourceItems": [
                {"sku": "SB-0001", "source_code": "default", "quantity": 5, "status": 1},
                {"sku": "", "source_code": "default", "quantity": 1, "status": 1}
            ]}),
            true,
        )
        .await
        .expect_err("one bad item fails the batch");
    assert_eq!(err.status(), Some(400), "{err}");
    let text = err.to_string();
    assert!(text.contains("Validation Failed"), "{text}");
    assert!(
        text.contains("\"sku\" can not be empty"),
        "the item's reason, placeholders filled: {text}"
    );
    assert_eq!(
        env.proxy
            .requests_to("POST", "/V1/inventory/source-items")
            .len(),
        1
    );
    env.assert_requests_conform();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skus_with_spaces_and_slashes_round_trip_signed() {
    let env = Env::start().await;
    let good = env.sandbox.credentials().magento_consumer_secret;
    let client = env.oauth1_client(&good);
    let sku = "SB 50/X+1";
    let path = format!("/V1/products/{}", connector::magento::segment(sku));
    let created = client
        .put(
            Scope::All,
            &path,
            &json!({"product": {"sku": sku, "name": "Odd SKU", "price": 3.5,
                                "attribute_set_id": 4, "type_id": "simple"}}),
        )
        .await
        .expect("created");
    assert_eq!(created["sku"], sku);
    let read = client
        .get(Scope::Store, &path, &[])
        .await
        .expect("read back");
    assert_eq!(read["sku"], sku);
    let found = client
        .get(
            Scope::Store,
            "/V1/products",
            &SearchCriteria::new()
                .and(Filter::new("sku", Condition::Eq, sku))
                .to_query(),
        )
        .await
        .expect("search");
    assert_eq!(skus(&found), vec![sku.to_string()]);
    env.assert_requests_conform();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_that_persists_gives_up_after_the_configured_tries() {
    let env = Env::start().await;
    let client = MagentoClient::new(&env.config(&[]))
        .unwrap()
        .with_backoff(Backoff {
            base: Duration::from_millis(2),
            max: Duration::from_millis(10),
            attempts: 3,
        });
    env.proxy.script(
        "PUT",
        "/V1/products/SB-0001",
        100,
        reply(
            500,
            "application/json",
            r#"{"message":"Internal Error. Details are available in Magento log file. Report ID: webapi-7"}"#,
        ),
    );
    let err = client
        .put(
            Scope::All,
            "/V1/products/SB-0001",
            &json!({"product": {"sku": "SB-0001", "weight": 1.0}}),
        )
        .await
        .expect_err("never recovers");
    assert!(
        matches!(err, MagentoError::GaveUp { attempts: 3, .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("PUT /V1/products/SB-0001"), "{text}");
    assert!(text.contains("Report ID: webapi-7"), "{text}");
    assert_eq!(
        env.proxy.requests_to("PUT", "/V1/products/SB-0001").len(),
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_store_code_is_not_mistaken_for_a_missing_record() {
    let env = Env::start().await;
    let client = env.client(&[("store_code = \"default\"", "store_code = \"nosuch\"")]);
    let err = client
        .get(Scope::Store, "/V1/products/SB-0001", &[])
        .await
        .expect_err("no such store");
    assert_eq!(err.status(), Some(404));
    assert!(
        !err.is_not_found(),
        "a route miss is not an absent product (a flow would try to create it): {err}"
    );
    let text = err.to_string();
    assert!(text.contains("magento.store_code"), "{text}");
    assert!(text.contains("magento.url"), "{text}");
    // A product that really is absent still is.
    let good = env.client(&[]);
    let err = good
        .get(Scope::Store, "/V1/products/NOPE", &[])
        .await
        .expect_err("absent");
    assert!(err.is_not_found(), "{err}");
}
