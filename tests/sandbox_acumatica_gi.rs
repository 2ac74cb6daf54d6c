//! The simulated Acumatica's admin side over HTTP: the endpoint maintenance API, the admin
//! entities it serves, Generic Inquiries read through OData, and push notifications received by
//! a test server — all on loopback, port 0. The tables behind them are an in-test fake
//! `TableSource` (the real store is the entity side's).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use connector::sandbox::acumatica::endpoint::AdminApi;
use connector::sandbox::acumatica::push::PushOptions;
use connector::sandbox::acumatica::tables::{Change, Row, TableSource, Transaction};
use serde_json::{Value, json};

mod support;
use support::openapi::{Spec, assert_conforms};

/// Acumatica's error bodies are the spec's `HttpError` (ASP.NET Web API), also on the admin side.
fn assert_http_error(body: &Value) {
    assert_conforms(Spec::acumatica().check_definition("HttpError", body));
}

/// The page that documents the endpoint XML the sandbox accepts; its first `xml` block is the
/// connector's endpoint, and these tests post exactly that.
const DOC: &str = include_str!("../docs/sandbox-acumatica-gi.md");

fn endpoint_xml() -> String {
    let start = DOC.find("```xml\n").expect("an xml block in the page") + "```xml\n".len();
    let end = start
        + DOC[start..]
            .find("\n```")
            .expect("the end of the xml block");
    DOC[start..end].to_string()
}

const BASE: &str = "/entity/MagentoConnector/24.200.001";

// ---------------------------------------------------------------------------------------------
// Fake tables

#[derive(Default)]
struct FakeTables {
    tables: Mutex<BTreeMap<String, Vec<Row>>>,
    next_tx: Mutex<u64>,
}

fn row(pairs: &[(&str, Value)]) -> Row {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

impl TableSource for FakeTables {
    fn rows(&self, table: &str) -> Option<Vec<Row>> {
        self.tables.lock().unwrap().get(table).cloned()
    }
}

impl FakeTables {
    fn seeded() -> Arc<FakeTables> {
        let t = FakeTables::default();
        let item = |cd: &str, status: &str, price: f64| {
            row(&[
                ("InventoryCD", json!(cd)),
                ("Descr", json!(format!("Item {cd}"))),
                ("ItemStatus", json!(status)),
                ("BasePrice", json!(price)),
                ("LastModifiedDateTime", json!("2026-11-26T15:00:00.120Z")),
                (
                    "NoteID",
                    json!(format!("00000000-0000-0000-0000-0000000000{cd}")),
                ),
            ])
        };
        let qty = |cd: &str, site: &str, on_hand: f64| {
            row(&[
                ("InventoryCD", json!(cd)),
                ("SiteCD", json!(site)),
                ("QtyOnHand", json!(on_hand)),
                ("QtyAvail", json!(on_hand - 1.0)),
                ("LastModifiedDateTime", json!("2026-07-01T12:00:00Z")),
            ])
        };
        *t.tables.lock().unwrap() = BTreeMap::from([
            (
                "InventoryItem".to_string(),
                vec![
                    item("10", "AC", 10.0),
                    item("11", "AC", 11.0),
                    item("12", "IN", 12.0),
                    item("13", "AC", 13.0),
                ],
            ),
            (
                "INSiteStatus".to_string(),
                vec![
                    qty("10", "WH1", 5.0),
                    qty("10", "WH2", 7.0),
                    qty("11", "WH1", 3.0),
                    qty("12", "WH1", 9.0),
                ],
            ),
            ("SOLine".to_string(), vec![]),
        ]);
        Arc::new(t)
    }

    /// Changes `field` of the given items in one transaction, as a mass update does.
    fn update_items(&self, items: &[&str], field: &str, value: Value) -> Transaction {
        let mut tables = self.tables.lock().unwrap();
        let rows = tables.get_mut("InventoryItem").unwrap();
        let mut changes = Vec::new();
        for r in rows.iter_mut() {
            if items.contains(&r["InventoryCD"].as_str().unwrap()) {
                let before = r.clone();
                r.insert(field.into(), value.clone());
                r.insert(
                    "LastModifiedDateTime".into(),
                    json!("2026-11-26T16:30:00.5Z"),
                );
                changes.push(Change {
                    table: "InventoryItem".into(),
                    before: Some(before),
                    after: Some(r.clone()),
                });
            }
        }
        let mut id = self.next_tx.lock().unwrap();
        *id += 1;
        Transaction { id: *id, changes }
    }

    fn insert_item(&self, cd: &str) -> Transaction {
        let new = row(&[
            ("InventoryCD", json!(cd)),
            ("Descr", json!("New")),
            ("ItemStatus", json!("AC")),
            ("BasePrice", json!(1.5)),
            ("LastModifiedDateTime", json!("2026-11-26T17:00:00Z")),
        ]);
        self.tables
            .lock()
            .unwrap()
            .get_mut("InventoryItem")
            .unwrap()
            .push(new.clone());
        let mut id = self.next_tx.lock().unwrap();
        *id += 1;
        Transaction {
            id: *id,
            changes: vec![Change {
                table: "InventoryItem".into(),
                before: None,
                after: Some(new),
            }],
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Servers

struct Sim {
    url: String,
    api: Arc<AdminApi>,
    tables: Arc<FakeTables>,
    http: reqwest::Client,
}

async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    format!("http://{addr}")
}

async fn start(split_updates: bool) -> Sim {
    let tables = FakeTables::seeded();
    let options = PushOptions {
        tenant: "Company".into(),
        split_updates,
        retry_delay: Duration::from_millis(5),
        ..PushOptions::default()
    };
    // The router is served at the site root; `base_url` only feeds `@odata.context`.
    let api = AdminApi::new(tables.clone(), options, "http://sandbox.invalid/acumatica");
    let url = serve(api.router()).await;
    Sim {
        url,
        api,
        tables,
        http: reqwest::Client::new(),
    }
}

impl Sim {
    async fn post_endpoint(&self, xml: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/entity/maintenance/23.200/", self.url))
            .header("Content-Type", "application/xml")
            .body(xml.to_string())
            .send()
            .await
            .unwrap()
    }

    async fn put(&self, entity: &str, body: Value) -> (StatusCode, Value) {
        let r = self
            .http
            .put(format!("{}{BASE}/{entity}?$expand=Tables,Relations,Conditions,Results,Grouping,Inquiries,TrackedFields", self.url))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = StatusCode::from_u16(r.status().as_u16()).unwrap();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap();
        let status = StatusCode::from_u16(r.status().as_u16()).unwrap();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn with_endpoint() -> Sim {
        let sim = start(false).await;
        assert_eq!(sim.post_endpoint(&endpoint_xml()).await.status(), 204);
        sim
    }
}

fn v(x: Value) -> Value {
    json!({ "value": x })
}

/// The connector's inventory GI: items joined to their per-warehouse quantities.
fn inventory_gi(name: &str, expose: bool) -> Value {
    let result = |object: &str, field: &str, caption: &str| json!({"Object": v(json!(object)), "Field": v(json!(field)), "Caption": v(json!(caption))});
    json!({
        "InquiryTitle": v(json!(name)),
        "ExposeViaOData": v(json!(expose)),
        "Tables": [
            {"Table": v(json!("PX.Objects.IN.InventoryItem")), "Alias": v(json!("Item"))},
            {"Table": v(json!("PX.Objects.IN.INSiteStatus")), "Alias": v(json!("Qty"))},
        ],
        "Relations": [{
            "ParentTable": v(json!("Item")), "ChildTable": v(json!("Qty")),
            "JoinType": v(json!("Inner")),
            "ParentField": v(json!("InventoryCD")), "ChildField": v(json!("InventoryCD")),
        }],
        "Conditions": [{
            "DataField": v(json!("Item.ItemStatus")), "Condition": v(json!("E")),
            "Value": v(json!("AC")),
        }],
        "Results": [
            result("Item", "InventoryCD", "InventoryID"),
            result("Qty", "SiteCD", "WarehouseID"),
            result("Qty", "QtyOnHand", "QtyOnHand"),
            result("Qty", "QtyAvail", "QtyAvailable"),
            result("Qty", "LastModifiedDateTime", "LastModifiedDateTime"),
        ],
    })
}

/// The connector's items GI: one table, no conditions.
fn items_gi(name: &str) -> Value {
    let result = |field: &str, caption: &str| json!({"Object": v(json!("Item")), "Field": v(json!(field)), "Caption": v(json!(caption))});
    json!({
        "InquiryTitle": v(json!(name)),
        "ExposeViaOData": v(json!(true)),
        "Tables": [{"Table": v(json!("PX.Objects.IN.InventoryItem")), "Alias": v(json!("Item"))}],
        "Results": [
            result("InventoryCD", "InventoryID"),
            result("Descr", "Description"),
            result("ItemStatus", "ItemStatus"),
            result("BasePrice", "BasePrice"),
            result("LastModifiedDateTime", "LastModifiedDateTime"),
        ],
    })
}

// ---------------------------------------------------------------------------------------------
// A push destination that records what it receives and answers from a script

#[derive(Clone, Default)]
struct Hook {
    received: Arc<Mutex<Vec<(HeaderMap, Value)>>>,
    /// Statuses to answer, in order; 200 once empty. `always` overrides when set.
    script: Arc<Mutex<VecDeque<u16>>>,
    always: Arc<Mutex<Option<u16>>>,
}

async fn hook_handler(State(h): State<Hook>, headers: HeaderMap, body: String) -> StatusCode {
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    h.received.lock().unwrap().push((headers, body));
    let status = h
        .always
        .lock()
        .unwrap()
        .or_else(|| h.script.lock().unwrap().pop_front())
        .unwrap_or(200);
    StatusCode::from_u16(status).unwrap()
}

async fn start_hook() -> (Hook, String) {
    let hook = Hook::default();
    let url = serve(
        axum::Router::new()
            .route("/push", post(hook_handler))
            .with_state(hook.clone()),
    )
    .await;
    (hook, format!("{url}/push"))
}

impl Hook {
    fn bodies(&self) -> Vec<Value> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .map(|(_, b)| b.clone())
            .collect()
    }
}

fn push_notification(address: &str, gi: &str, track_all: bool, tracked: &[&str]) -> Value {
    json!({
        "DestinationName": v(json!("MC-connector")),
        "Active": v(json!(true)),
        "DestinationType": v(json!("Webhook")),
        "Address": v(json!(address)),
        "HeaderName": v(json!("X-Connector-Secret")),
        "HeaderValue": v(json!("s3cret")),
        "Inquiries": [{
            "InquiryTitle": v(json!(gi)), "Active": v(json!(true)),
            "TrackAllFields": v(json!(track_all)),
        }],
        "TrackedFields": tracked.iter().map(|f| json!({
            "InquiryTitle": v(json!(gi)), "FieldName": v(json!(f)),
        })).collect::<Vec<_>>(),
    })
}

// ---------------------------------------------------------------------------------------------
// Endpoint maintenance

#[tokio::test]
async fn endpoint_is_created_read_back_and_serves_only_what_it_declares() {
    let sim = start(false).await;
    // Before it exists, neither the definition nor its entities are there.
    let (status, _) = sim
        .get("/entity/maintenance/23.200/MagentoConnector/24.200.001")
        .await;
    assert_eq!(status, 404);
    let (status, body) = sim.get(&format!("{BASE}/GenericInquiry")).await;
    assert_eq!(status, 404);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("No HTTP resource was found")
    );
    assert_http_error(&body);

    assert_eq!(sim.post_endpoint(&endpoint_xml()).await.status(), 204);
    let r = sim
        .http
        .get(format!(
            "{}/entity/maintenance/23.200/MagentoConnector/24.200.001",
            sim.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/xml")
    );
    assert_eq!(r.text().await.unwrap(), endpoint_xml());

    // An entity the endpoint does not declare.
    let (status, _) = sim.get(&format!("{BASE}/StockItem")).await;
    assert_eq!(status, 404);
    // A field the entity does not declare, and an unwrapped value: refused, nothing stored.
    let mut body = items_gi("MC-items");
    body["Colour"] = v(json!("red"));
    let (status, reply) = sim.put("GenericInquiry", body).await;
    assert_eq!(status, 400);
    assert_eq!(reply["message"], "The request is invalid.");
    assert_http_error(&reply);
    assert_eq!(
        reply["modelState"]["Colour"][0],
        "The field 'Colour' is not defined in the 'GenericInquiry' entity of the MagentoConnector/24.200.001 endpoint."
    );
    let mut body = items_gi("MC-items");
    body["ExposeViaOData"] = json!(true);
    let (status, reply) = sim.put("GenericInquiry", body).await;
    assert_eq!(status, 400);
    assert!(
        reply["modelState"]["ExposeViaOData"][0]
            .as_str()
            .unwrap()
            .contains("BooleanValue")
    );
    let mut body = items_gi("MC-items");
    body["Tables"][0]["Schema"] = v(json!("dbo"));
    let (status, reply) = sim.put("GenericInquiry", body).await;
    assert_eq!(status, 400);
    assert!(reply["modelState"]["Tables[0].Schema"].is_array());
    assert_http_error(&reply);
    let (status, list) = sim.get(&format!("{BASE}/GenericInquiry")).await;
    assert_eq!((status, list), (StatusCode::OK, json!([])));

    // A definition naming a screen object field that does not exist is refused whole.
    let bad = endpoint_xml()
        .replace("name=\"MagentoConnector\"", "name=\"Broken\"")
        .replace("field=\"HeaderValue\" />", "field=\"Secret\" />");
    let r = sim.post_endpoint(&bad).await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["exceptionMessage"]
            .as_str()
            .unwrap()
            .contains("'Secret' field is not found in the 'Hooks' object of the SM302000 screen"),
        "{body}"
    );
    assert_http_error(&body);
    let (status, _) = sim
        .get("/entity/maintenance/23.200/Broken/24.200.001")
        .await;
    assert_eq!(status, 404);
    let r = sim
        .post_endpoint("<Endpoint name='X' version='1'><Oops></Endpoint>")
        .await;
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn admin_entities_insert_update_read_filter_and_delete_by_key() {
    let sim = Sim::with_endpoint().await;
    let (status, gi) = sim.put("GenericInquiry", items_gi("MC-items")).await;
    assert_eq!(status, 200, "{gi}");
    assert_eq!(gi["InquiryTitle"], v(json!("MC-items")));
    let design_id = gi["DesignID"]["value"].as_str().unwrap().to_string();
    assert_eq!(design_id.len(), 36, "a DesignID is generated");
    assert_eq!(gi["Tables"].as_array().unwrap().len(), 1);
    let table_row_id = gi["Tables"][0]["id"].as_str().unwrap().to_string();

    // PUT again by key updates the same record; detail rows without an id are added, rows
    // with an id are updated or deleted — as Acumatica treats detail collections.
    let (status, again) = sim
        .put(
            "GenericInquiry",
            json!({
                "InquiryTitle": v(json!("MC-items")),
                "ExposeViaOData": v(json!(false)),
                "Tables": [{"id": table_row_id, "Alias": v(json!("Item"))}],
            }),
        )
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["id"], gi["id"]);
    assert_eq!(again["DesignID"]["value"], json!(design_id));
    assert_eq!(again["Tables"].as_array().unwrap().len(), 1);
    assert_eq!(sim.api.gis().all().len(), 1);
    assert!(!sim.api.gis().get("MC-items").unwrap().expose_via_odata);

    sim.put("GenericInquiry", inventory_gi("MC-inventory", true))
        .await;
    // Details only when expanded.
    let (_, one) = sim
        .get(&format!("{BASE}/GenericInquiry/MC-inventory"))
        .await;
    assert_eq!(one["InquiryTitle"], v(json!("MC-inventory")));
    assert!(one.get("Tables").is_none());
    let (_, one) = sim
        .get(&format!(
            "{BASE}/GenericInquiry/MC-inventory?$expand=Results"
        ))
        .await;
    assert_eq!(one["Results"].as_array().unwrap().len(), 5);
    // $filter over the entity's fields, with the same parser as the contract API.
    let (status, list) = sim
        .get(&format!(
            "{BASE}/GenericInquiry?$filter=startswith(InquiryTitle,'MC-inv')"
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (status, list) = sim
        .get(&format!(
            "{BASE}/GenericInquiry?$filter=ExposeViaOData eq true&$select=InquiryTitle"
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(list[0]["InquiryTitle"], v(json!("MC-inventory")));
    assert!(list[0].get("ExposeViaOData").is_none());
    let (status, err) = sim
        .get(&format!("{BASE}/GenericInquiry?$filter=Colour eq 'red'"))
        .await;
    assert_eq!(status, 500);
    assert_eq!(
        err["exceptionMessage"],
        "Could not find a property named 'Colour'."
    );
    assert_http_error(&err);

    // A missing key is refused with the error on the key field.
    let (status, reply) = sim
        .put("GenericInquiry", json!({"ExposeViaOData": v(json!(true))}))
        .await;
    assert_eq!(status, 422);
    assert_eq!(
        reply["InquiryTitle"]["error"],
        "'InquiryTitle' cannot be empty."
    );

    // Schedules.
    let (status, s) = sim
        .put(
            "AutomationSchedule",
            json!({
                "ScheduleID": v(json!("MC-resend")), "Description": v(json!("Resend failed pushes")),
                "ScreenID": v(json!("SM502000")), "ActionName": v(json!("Process All")),
                "Active": v(json!(true)), "Interval": v(json!(5)),
            }),
        )
        .await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(sim.api.schedules()[0].interval_minutes, 5.0);

    // DELETE by key; a second time there is nothing to delete.
    let r = sim
        .http
        .delete(format!("{}{BASE}/GenericInquiry/MC-items", sim.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(sim.api.gis().get("MC-items").is_none());
    let r = sim
        .http
        .delete(format!("{}{BASE}/GenericInquiry/MC-items", sim.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["exceptionMessage"],
        "No entity satisfies the condition."
    );
    assert_http_error(&body);
}

// ---------------------------------------------------------------------------------------------
// OData

#[tokio::test]
async fn generic_inquiry_runs_through_odata_with_join_conditions_and_paging() {
    let sim = Sim::with_endpoint().await;
    sim.put("GenericInquiry", inventory_gi("MC-inventory", true))
        .await;
    sim.put("GenericInquiry", {
        let mut gi = items_gi("MC-hidden");
        gi["ExposeViaOData"] = v(json!(false));
        gi
    })
    .await;

    let (status, body) = sim.get("/t/Company/api/odata/gi/MC-inventory").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["@odata.context"],
        "http://sandbox.invalid/acumatica/t/Company/api/odata/gi/$metadata#MC-inventory"
    );
    // Item 12 is inactive (condition), item 13 has no quantities (inner join).
    let rows = body["value"].as_array().unwrap();
    let keys: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["InventoryID"].as_str().unwrap().into(),
                r["WarehouseID"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        keys,
        [("10", "WH1"), ("10", "WH2"), ("11", "WH1")].map(|(a, b)| (a.to_string(), b.to_string()))
    );
    assert_eq!(rows[0]["QtyOnHand"], json!(5.0));
    assert_eq!(rows[0]["QtyAvailable"], json!(4.0));
    // Dates as Edm.DateTimeOffset in the tenant's zone (New York: UTC-4 in July).
    assert_eq!(
        rows[0]["LastModifiedDateTime"],
        "2026-07-01T08:00:00.000-04:00"
    );

    let (_, page) = sim
        .get("/t/Company/api/odata/gi/MC-inventory?$skip=1&$top=1&$select=InventoryID,WarehouseID")
        .await;
    assert_eq!(
        page["value"],
        json!([{"InventoryID": "10", "WarehouseID": "WH2"}])
    );

    let (_, filtered) = sim
        .get("/t/Company/api/odata/gi/MC-inventory?$filter=QtyOnHand gt 4 and LastModifiedDateTime ge datetimeoffset'2026-07-01T12:00:00Z'")
        .await;
    assert_eq!(filtered["value"].as_array().unwrap().len(), 2);

    // A date compared with a bare string is refused, as Acumatica refuses it.
    let (status, err) = sim
        .get("/t/Company/api/odata/gi/MC-inventory?$filter=LastModifiedDateTime gt '2026-07-01T12:00:00Z'")
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        err["error"]["message"],
        "A binary operator with incompatible types was detected. Found operand types 'Edm.DateTimeOffset' and 'Edm.String' for operator kind 'GreaterThan'."
    );
    let (status, _) = sim
        .get("/t/Company/api/odata/gi/MC-inventory?$select=Nope")
        .await;
    assert_eq!(status, 400);
    let (status, _) = sim
        .get("/t/Company/api/odata/gi/MC-inventory?$top=-1")
        .await;
    assert_eq!(status, 400);

    // Not exposed, unknown, or another tenant: not found.
    for path in [
        "/t/Company/api/odata/gi/MC-hidden",
        "/t/Company/api/odata/gi/Nope",
        "/t/Other/api/odata/gi/MC-inventory",
    ] {
        assert_eq!(sim.get(path).await.0, 404, "{path}");
    }
    let (_, service) = sim.get("/t/Company/api/odata/gi").await;
    assert_eq!(
        service["value"],
        json!([{"name": "MC-inventory", "kind": "EntitySet", "url": "MC-inventory"}])
    );
}

// ---------------------------------------------------------------------------------------------
// Push notifications

#[tokio::test]
async fn a_gi_that_groups_aggregates_or_uses_formulas_is_refused_as_a_push_source() {
    let sim = Sim::with_endpoint().await;
    let (_, url) = start_hook().await;

    let mut grouped = items_gi("MC-grouped");
    grouped["Grouping"] = json!([{"DataField": v(json!("Item.ItemStatus"))}]);
    let mut summed = items_gi("MC-summed");
    summed["Results"][3]["AggregateFunction"] = v(json!("SUM"));
    let mut formula = items_gi("MC-formula");
    formula["Results"][1]["Field"] = v(json!("=Upper([Item.Descr])"));
    let mut details = inventory_gi("MC-details", false);
    details["Tables"]
        .as_array_mut()
        .unwrap()
        .push(json!({"Table": v(json!("SOLine")), "Alias": v(json!("Line"))}));
    for (gi, reason) in [
        (grouped, "grouping"),
        (summed, "aggregation"),
        (formula, "formulas"),
        (details, "joins of several detail tables"),
    ] {
        let name = gi["InquiryTitle"]["value"].as_str().unwrap().to_string();
        let (status, _) = sim.put("GenericInquiry", gi).await;
        assert_eq!(status, 200, "the GI itself is fine: {name}");
        let (status, reply) = sim
            .put(
                "PushNotification",
                push_notification(&url, &name, true, &[]),
            )
            .await;
        assert_eq!(status, 422, "{name}");
        assert_eq!(
            reply["error"],
            format!(
                "The '{name}' generic inquiry cannot be used for push notifications because it contains {reason}. Push notifications support only inquiries without grouping, aggregation, formulas, and joins of multiple detail tables."
            )
        );
    }
    assert!(sim.api.push().hooks().is_empty());

    // A GI in use cannot be turned into one that cannot be pushed, nor deleted.
    sim.put("GenericInquiry", items_gi("MC-items")).await;
    let (status, _) = sim
        .put(
            "PushNotification",
            push_notification(&url, "MC-items", true, &[]),
        )
        .await;
    assert_eq!(status, 200);
    let (status, reply) = sim
        .put(
            "GenericInquiry",
            json!({"InquiryTitle": v(json!("MC-items")), "Grouping": [{"DataField": v(json!("Item.ItemStatus"))}]}),
        )
        .await;
    assert_eq!(status, 422);
    assert!(
        reply["error"]
            .as_str()
            .unwrap()
            .contains("contains grouping")
    );
    let r = sim
        .http
        .delete(format!("{}{BASE}/GenericInquiry/MC-items", sim.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    // An unknown GI or an unknown tracked column is refused too.
    let (status, reply) = sim
        .put(
            "PushNotification",
            push_notification(&url, "MC-nope", true, &[]),
        )
        .await;
    assert_eq!(status, 422);
    assert!(reply["error"].as_str().unwrap().contains("cannot be found"));
    let (status, _) = sim
        .put(
            "PushNotification",
            push_notification(&url, "MC-items", false, &["Colour"]),
        )
        .await;
    assert_eq!(status, 422);
}

#[tokio::test]
async fn a_change_is_pushed_with_the_exact_format_and_header() {
    let sim = Sim::with_endpoint().await;
    let (hook, url) = start_hook().await;
    sim.put("GenericInquiry", items_gi("MC-items")).await;
    let (status, reply) = sim
        .put(
            "PushNotification",
            push_notification(
                &url,
                "MC-items",
                false,
                &["InventoryID", "BasePrice", "LastModifiedDateTime"],
            ),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["HeaderValue"], v(json!("s3cret")));

    let tx = sim.tables.update_items(&["11"], "BasePrice", json!(19.99));
    sim.api.push().dispatch(&tx).await;

    let received = hook.received.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    let (headers, body) = &received[0];
    assert_eq!(headers["x-connector-secret"], "s3cret");
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "AdditionalInfo",
            "CompanyId",
            "Deleted",
            "Id",
            "Inserted",
            "Query",
            "TimeStamp"
        ]
    );
    assert_eq!(body["Query"], "MC-items");
    assert_eq!(body["CompanyId"], "Company");
    let id = body["Id"].as_str().unwrap();
    assert_eq!(id.len(), 36);
    assert_eq!(id.matches('-').count(), 4);
    // .NET ticks of "now": after 2026-01-01 (639_028_800_000_000_000) and an integer.
    assert!(body["TimeStamp"].as_i64().unwrap() > 639_028_800_000_000_000);
    assert!(body["AdditionalInfo"].is_object());
    // Flat rows keyed by column; untracked columns null; dates tenant-local without offset
    // (16:30:00.5Z is 11:30:00.5 in New York in November).
    assert_eq!(
        body["Inserted"],
        json!([{
            "InventoryID": "11", "Description": null, "ItemStatus": null, "BasePrice": 19.99,
            "LastModifiedDateTime": "2026-11-26T11:30:00.5",
        }])
    );
    assert_eq!(
        body["Deleted"],
        json!([{
            "InventoryID": "11", "Description": null, "ItemStatus": null, "BasePrice": 11.0,
            "LastModifiedDateTime": "2026-11-26T10:00:00.12",
        }])
    );

    // A change to an untracked field only sends nothing.
    let tx = sim.tables.update_items(&["11"], "Descr", json!("Renamed"));
    let mut quiet = tx.clone();
    // Keep the stamp as it was, so only the untracked Descr differs.
    for c in &mut quiet.changes {
        let stamp = c.before.as_ref().unwrap()["LastModifiedDateTime"].clone();
        c.after
            .as_mut()
            .unwrap()
            .insert("LastModifiedDateTime".into(), stamp);
    }
    assert!(sim.api.push().notifications_for(&quiet).is_empty());

    // An insert is a row in Inserted only; an inactive destination sends nothing.
    let tx = sim.tables.insert_item("99");
    sim.api.push().dispatch(&tx).await;
    let last = hook.bodies().last().unwrap().clone();
    assert_eq!(last["Inserted"][0]["InventoryID"], "99");
    assert_eq!(last["Deleted"], json!([]));
    let mut inactive = push_notification(&url, "MC-items", true, &[]);
    inactive["Active"] = v(json!(false));
    sim.put("PushNotification", inactive).await;
    let tx = sim.tables.update_items(&["10"], "BasePrice", json!(1.0));
    assert!(sim.api.push().notifications_for(&tx).is_empty());
}

#[tokio::test]
async fn one_transaction_of_many_changes_is_one_notification() {
    let sim = Sim::with_endpoint().await;
    let (hook, url) = start_hook().await;
    sim.put("GenericInquiry", items_gi("MC-items")).await;
    sim.put(
        "PushNotification",
        push_notification(&url, "MC-items", true, &[]),
    )
    .await;
    // The dispatcher consumes the store's transactions from a channel, in order.
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    let task = sim.api.push().spawn(receiver);
    sender
        .send(
            sim.tables
                .update_items(&["10", "11", "12", "13"], "BasePrice", json!(5.0)),
        )
        .unwrap();
    drop(sender);
    task.await.unwrap();
    let bodies = hook.bodies();
    assert_eq!(bodies.len(), 1);
    assert_eq!(bodies[0]["Inserted"].as_array().unwrap().len(), 4);
    assert_eq!(bodies[0]["Deleted"].as_array().unwrap().len(), 4);
    assert!(
        bodies[0]["Inserted"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["BasePrice"] == json!(5.0))
    );
    assert_eq!(sim.api.push().counts(), (1, 1));
}

#[tokio::test]
async fn an_update_can_arrive_split_in_two_requests() {
    let sim = start(true).await;
    assert_eq!(sim.post_endpoint(&endpoint_xml()).await.status(), 204);
    let (hook, url) = start_hook().await;
    sim.put("GenericInquiry", items_gi("MC-items")).await;
    sim.put(
        "PushNotification",
        push_notification(&url, "MC-items", true, &[]),
    )
    .await;
    let tx = sim.tables.update_items(&["13"], "ItemStatus", json!("IN"));
    sim.api.push().dispatch(&tx).await;
    let bodies = hook.bodies();
    assert_eq!(bodies.len(), 2);
    assert_eq!(bodies[0]["Inserted"], json!([]));
    assert_eq!(bodies[0]["Deleted"][0]["ItemStatus"], "AC");
    assert_eq!(bodies[1]["Deleted"], json!([]));
    assert_eq!(bodies[1]["Inserted"][0]["ItemStatus"], "IN");
    assert_eq!(bodies[0]["Id"], bodies[1]["Id"], "one transaction, one Id");
}

#[tokio::test]
async fn failed_deliveries_are_retried_five_times_then_kept_for_the_resend_schedule() {
    let sim = Sim::with_endpoint().await;
    let (hook, url) = start_hook().await;
    sim.put("GenericInquiry", items_gi("MC-items")).await;
    sim.put(
        "PushNotification",
        push_notification(&url, "MC-items", true, &[]),
    )
    .await;
    sim.put(
        "AutomationSchedule",
        json!({
            "ScheduleID": v(json!("MC-resend")), "Description": v(json!("Resend failed pushes")),
            "ScreenID": v(json!("SM502000")), "ActionName": v(json!("Process All")),
            "Active": v(json!(true)), "Interval": v(json!(10)),
        }),
    )
    .await;

    // 500 four times, then 200: delivered on the fifth attempt, nothing kept.
    hook.script.lock().unwrap().extend([500, 500, 500, 500]);
    let tx = sim.tables.update_items(&["10"], "BasePrice", json!(2.0));
    sim.api.push().dispatch(&tx).await;
    assert_eq!(hook.bodies().len(), 5);
    assert!(
        hook.bodies().windows(2).all(|w| w[0] == w[1]),
        "the same body each time"
    );
    assert!(sim.api.push().failed().is_empty());

    // Always 500: five attempts, then kept as failed.
    *hook.always.lock().unwrap() = Some(500);
    let tx = sim.tables.update_items(&["11"], "BasePrice", json!(3.0));
    sim.api.push().dispatch(&tx).await;
    assert_eq!(hook.bodies().len(), 10);
    let failed = sim.api.push().failed();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].attempts, 5);
    assert_eq!(failed[0].last_error, "HTTP 500");
    assert_eq!(failed[0].query, "MC-items");
    let state = sim.api.state();
    assert_eq!(state["failed_notifications"].as_array().unwrap().len(), 1);
    assert_eq!(state["push_notifications"][0]["address"], json!(url));
    assert!(
        !state.to_string().contains("s3cret"),
        "no header value in the state"
    );

    // The resend schedule replays it once the destination is back.
    *hook.always.lock().unwrap() = None;
    assert_eq!(sim.api.run_schedule("MC-resend").await, Some(1));
    assert_eq!(hook.bodies().len(), 11);
    assert_eq!(hook.bodies()[10]["Inserted"][0]["BasePrice"], json!(3.0));
    assert!(sim.api.push().failed().is_empty());

    // A destination that does not answer at all fails the same way.
    let mut dead = push_notification("http://127.0.0.1:9/push", "MC-items", true, &[]);
    dead["DestinationName"] = v(json!("MC-dead"));
    let (status, _) = sim.put("PushNotification", dead).await;
    assert_eq!(status, 200);
    let tx = sim.tables.update_items(&["13"], "BasePrice", json!(4.0));
    sim.api.push().dispatch(&tx).await;
    let failed = sim.api.push().failed();
    assert_eq!(failed.len(), 1);
    assert!(
        failed[0].last_error.starts_with("connection error"),
        "{}",
        failed[0].last_error
    );
}

#[tokio::test]
async fn a_push_gi_over_a_join_sends_the_rows_of_the_changed_record_only() {
    let sim = Sim::with_endpoint().await;
    let (hook, url) = start_hook().await;
    sim.put("GenericInquiry", inventory_gi("MC-inventory", false))
        .await;
    let (status, reply) = sim
        .put(
            "PushNotification",
            push_notification(&url, "MC-inventory", true, &[]),
        )
        .await;
    assert_eq!(status, 200, "{reply}");

    // A quantity change in one warehouse: that row only.
    let tx = {
        let mut tables = sim.tables.tables.lock().unwrap();
        let rows = tables.get_mut("INSiteStatus").unwrap();
        let before = rows[1].clone();
        rows[1].insert("QtyOnHand".into(), json!(6.0));
        rows[1].insert("LastModifiedDateTime".into(), json!("2026-11-26T18:00:00Z"));
        Transaction {
            id: 100,
            changes: vec![Change {
                table: "INSiteStatus".into(),
                before: Some(before),
                after: Some(rows[1].clone()),
            }],
        }
    };
    sim.api.push().dispatch(&tx).await;
    let bodies = hook.bodies();
    assert_eq!(bodies.len(), 1);
    assert_eq!(bodies[0]["Query"], "MC-inventory");
    assert_eq!(
        bodies[0]["Inserted"],
        json!([{
            "InventoryID": "10", "WarehouseID": "WH2", "QtyOnHand": 6.0, "QtyAvailable": 6.0,
            "LastModifiedDateTime": "2026-11-26T13:00:00",
        }])
    );
    assert_eq!(bodies[0]["Deleted"][0]["QtyOnHand"], json!(7.0));

    // An item leaving the GI's condition (inactive): all its warehouse rows are deleted.
    let tx = sim.tables.update_items(&["10"], "ItemStatus", json!("IN"));
    sim.api.push().dispatch(&tx).await;
    let bodies = hook.bodies();
    assert_eq!(bodies.len(), 2);
    assert_eq!(bodies[1]["Inserted"], json!([]));
    let gone: Vec<&str> = bodies[1]["Deleted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["WarehouseID"].as_str().unwrap())
        .collect();
    assert_eq!(gone, ["WH1", "WH2"]);
    // A change to a table the GI does not read sends nothing.
    let other = Transaction {
        id: 101,
        changes: vec![Change {
            table: "SOLine".into(),
            before: None,
            after: Some(row(&[
                ("OrderType", json!("SO")),
                ("OrderNbr", json!("1")),
                ("LineNbr", json!(1)),
            ])),
        }],
    };
    assert!(sim.api.push().notifications_for(&other).is_empty());
}

#[tokio::test]
async fn the_resend_schedule_also_runs_on_its_own_timer() {
    let sim = Sim::with_endpoint().await;
    let (hook, url) = start_hook().await;
    sim.put("GenericInquiry", items_gi("MC-items")).await;
    sim.put(
        "PushNotification",
        push_notification(&url, "MC-items", true, &[]),
    )
    .await;
    *hook.always.lock().unwrap() = Some(503);
    let tx = sim.tables.update_items(&["10"], "BasePrice", json!(8.0));
    sim.api.push().dispatch(&tx).await;
    assert_eq!(sim.api.push().failed().len(), 1);
    *hook.always.lock().unwrap() = None;

    // A schedule every "minute", where a minute lasts 20 ms here.
    let (status, _) = sim
        .put(
            "AutomationSchedule",
            json!({
                "ScheduleID": v(json!("MC-resend")), "ScreenID": v(json!("SM502000")),
                "ActionName": v(json!("Process All")), "Active": v(json!(true)),
                "Interval": v(json!(1)),
            }),
        )
        .await;
    assert_eq!(status, 200);
    let timer = sim.api.spawn_schedules(Duration::from_millis(20));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !sim.api.push().failed().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the schedule never resent"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    timer.abort();
    assert_eq!(
        hook.bodies().len(),
        6,
        "five failed attempts, then the resend"
    );
    assert_eq!(hook.bodies()[5]["Inserted"][0]["BasePrice"], json!(8.0));
    assert!(sim.api.state()["schedule_runs"].as_u64().unwrap() >= 1);
}
