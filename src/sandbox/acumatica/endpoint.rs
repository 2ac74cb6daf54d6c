//! The endpoint maintenance API and the admin entities served through a custom endpoint:
//! Generic Inquiries (SM208000), Push Notifications (SM302000), Automation Schedules
//! (SM205020); and OData v4 reads of Generic Inquiries. docs/sandbox-acumatica-gi.md describes
//! the endpoint XML accepted and the screen objects and fields it can map to.
//!
//! Public API:
//! - [`AdminApi::new`]`(source, push_options, base_url)`; [`AdminApi::router`]: an axum
//!   [`Router`] with no authentication of its own (the session layer wraps it):
//!   - `POST /entity/maintenance/23.200/` (endpoint XML) · `GET /entity/maintenance/23.200/{name}/{version}`
//!   - `GET|PUT /entity/{endpoint}/{version}/{entity}` · `GET|DELETE …/{entity}/{key}`
//!   - `GET /t/{tenant}/api/odata/gi` (service document) · `GET /t/{tenant}/api/odata/gi/{gi}`
//! - [`AdminApi::gis`], [`AdminApi::push`] (the [`Dispatcher`] to feed with transactions),
//!   [`AdminApi::schedules`], [`AdminApi::run_schedule`], [`AdminApi::state`].

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::gi::{
    ConditionOp, ConditionValue, GenericInquiry, GiCatalog, GiCondition, GiRelation, GiResult,
    GiTable, JoinType,
};
use super::odata::{self, FieldType, parse_stored_datetime};
use super::push::{Dispatcher, PushHook, PushOptions, PushSource};
use super::tables::{Row, TableSource};
use super::xml::{self, Element};

/// Versions of the Default endpoint an endpoint may extend.
pub const DEFAULT_VERSIONS: &[&str] = &["20.200.001", "22.200.001", "23.200.001", "24.200.001"];

/// One object (data view) of a screen and the fields an endpoint may map to.
struct ScreenObject {
    name: &'static str,
    detail: bool,
    fields: &'static [(&'static str, FieldType)],
}

struct Screen {
    id: &'static str,
    /// The object and field that identify a record.
    key: (&'static str, &'static str),
    objects: &'static [ScreenObject],
}

use FieldType::{Boolean as B, Number as N, String as S};

const SCREENS: &[Screen] = &[
    Screen {
        id: "SM208000",
        key: ("Designs", "Name"),
        objects: &[
            ScreenObject {
                name: "Designs",
                detail: false,
                fields: &[
                    ("Name", S),
                    ("DesignID", FieldType::Guid),
                    ("ExposeViaOData", B),
                ],
            },
            ScreenObject {
                name: "Tables",
                detail: true,
                fields: &[("Name", S), ("Alias", S)],
            },
            ScreenObject {
                name: "Relations",
                detail: true,
                fields: &[
                    ("ParentTable", S),
                    ("ChildTable", S),
                    ("JoinType", S),
                    ("ParentField", S),
                    ("ChildField", S),
                ],
            },
            ScreenObject {
                name: "Where",
                detail: true,
                fields: &[
                    ("DataFieldName", S),
                    ("Condition", S),
                    ("Value1", S),
                    ("IsActive", B),
                ],
            },
            ScreenObject {
                name: "Parameters",
                detail: true,
                fields: &[("Name", S), ("DefaultValue", S)],
            },
            ScreenObject {
                name: "Results",
                detail: true,
                fields: &[
                    ("ObjectName", S),
                    ("Field", S),
                    ("Caption", S),
                    ("AggregateFunction", S),
                    ("IsActive", B),
                ],
            },
            ScreenObject {
                name: "GroupBy",
                detail: true,
                fields: &[("DataFieldName", S)],
            },
        ],
    },
    Screen {
        id: "SM302000",
        key: ("Hooks", "Name"),
        objects: &[
            ScreenObject {
                name: "Hooks",
                detail: false,
                fields: &[
                    ("Name", S),
                    ("Active", B),
                    ("Type", S),
                    ("Address", S),
                    ("HeaderName", S),
                    ("HeaderValue", S),
                ],
            },
            ScreenObject {
                name: "SourcesGI",
                detail: true,
                fields: &[("DesignID", S), ("Active", B), ("TrackAllFields", B)],
            },
            ScreenObject {
                name: "FieldsGI",
                detail: true,
                fields: &[("DesignID", S), ("FieldName", S)],
            },
        ],
    },
    Screen {
        id: "SM205020",
        key: ("Schedule", "ScheduleID"),
        objects: &[ScreenObject {
            name: "Schedule",
            detail: false,
            fields: &[
                ("ScheduleID", S),
                ("Description", S),
                ("ScreenID", S),
                ("ActionName", S),
                ("IsActive", B),
                ("Interval", N),
            ],
        }],
    },
];

fn screen(id: &str) -> Option<&'static Screen> {
    SCREENS.iter().find(|s| s.id.eq_ignore_ascii_case(id))
}

impl Screen {
    fn object(&self, name: &str) -> Option<&'static ScreenObject> {
        self.objects.iter().find(|o| o.name == name)
    }
}

/// The value types an endpoint field may declare, and which screen field types each accepts.
fn value_type_accepts(value_type: &str, t: FieldType) -> Option<bool> {
    Some(match value_type {
        "StringValue" => matches!(t, S | FieldType::Guid),
        "GuidValue" => matches!(t, FieldType::Guid | S),
        "BooleanValue" => t == B,
        "IntValue" | "ShortValue" | "LongValue" | "DecimalValue" | "DoubleValue" => t == N,
        "DateTimeValue" => t == FieldType::DateTime,
        _ => return None,
    })
}

/// A field of an entity, resolved to the screen object and field it maps to.
#[derive(Clone, Debug)]
struct MappedField {
    name: String,
    value_type: String,
    object: &'static str,
    screen_field: &'static str,
    field_type: FieldType,
}

/// A detail collection of an entity.
#[derive(Clone, Debug)]
struct MappedDetail {
    name: String,
    entity: String,
    object: &'static str,
    fields: Vec<MappedField>,
}

/// A top-level entity of a stored endpoint, ready to serve.
#[derive(Clone)]
struct MappedEntity {
    name: String,
    screen: &'static Screen,
    fields: Vec<MappedField>,
    details: Vec<MappedDetail>,
}

impl MappedEntity {
    fn key_field(&self) -> Option<&MappedField> {
        self.fields
            .iter()
            .find(|f| (f.object, f.screen_field) == self.screen.key)
    }
}

/// A stored endpoint definition.
pub struct EndpointDef {
    pub name: String,
    pub version: String,
    pub extends: Option<(String, String)>,
    /// The XML as posted; `GET` returns it.
    pub xml: String,
    entities: Vec<MappedEntity>,
}

impl EndpointDef {
    pub fn entity_names(&self) -> Vec<String> {
        self.entities.iter().map(|e| e.name.clone()).collect()
    }
}

/// An entity's declared fields (name, type) and mappings (field → object, screen field).
type Declared = (
    Vec<(String, String)>,
    HashMap<String, (String, Option<String>)>,
);

fn fields_and_mappings(element: &Element) -> Result<Declared, String> {
    let entity = element.attr("name").unwrap_or("");
    let mut fields = Vec::new();
    for f in element
        .children_named("Fields")
        .flat_map(|x| x.children_named("Field"))
    {
        let (Some(name), Some(value_type)) = (f.attr("name"), f.attr("type")) else {
            return Err(format!(
                "A field of the '{entity}' entity has no 'name' or 'type' attribute."
            ));
        };
        fields.push((name.to_string(), value_type.to_string()));
    }
    let mut mappings = HashMap::new();
    for m in element
        .children_named("Mappings")
        .flat_map(|x| x.children_named("Mapping"))
    {
        let Some(field) = m.attr("field") else {
            return Err(format!(
                "A mapping of the '{entity}' entity has no 'field' attribute."
            ));
        };
        let Some(to) = m.children_named("To").next() else {
            return Err(format!(
                "The mapping of the '{field}' field of the '{entity}' entity has no <To> element."
            ));
        };
        let Some(object) = to.attr("object") else {
            return Err(format!(
                "The mapping of the '{field}' field of the '{entity}' entity names no object."
            ));
        };
        mappings.insert(
            field.to_string(),
            (object.to_string(), to.attr("field").map(str::to_string)),
        );
    }
    Ok((fields, mappings))
}

fn map_field(
    screen: &'static Screen,
    entity: &str,
    name: &str,
    value_type: &str,
    mapping: Option<&(String, Option<String>)>,
    want_detail: bool,
) -> Result<MappedField, String> {
    let Some((object, Some(target))) = mapping else {
        return Err(format!(
            "The '{name}' field of the '{entity}' entity has no mapping to a field of the {} screen.",
            screen.id
        ));
    };
    let Some(obj) = screen.object(object) else {
        return Err(format!(
            "The '{object}' object is not found on the {} screen (field '{name}' of the '{entity}' entity).",
            screen.id
        ));
    };
    if obj.detail != want_detail {
        return Err(format!(
            "The '{name}' field of the '{entity}' entity is mapped to the '{object}' object, which is {} of the {} screen.",
            if obj.detail {
                "a detail view"
            } else {
                "the header"
            },
            screen.id
        ));
    }
    let Some((screen_field, field_type)) = obj.fields.iter().find(|(f, _)| f == target) else {
        return Err(format!(
            "The '{target}' field is not found in the '{object}' object of the {} screen (field '{name}' of the '{entity}' entity).",
            screen.id
        ));
    };
    match value_type_accepts(value_type, *field_type) {
        None => Err(format!(
            "The type '{value_type}' of the '{name}' field of the '{entity}' entity is not a known value type."
        )),
        Some(false) => Err(format!(
            "The type '{value_type}' of the '{name}' field of the '{entity}' entity does not match the type of {object}.{target} ({}).",
            field_type.edm()
        )),
        Some(true) => Ok(MappedField {
            name: name.to_string(),
            value_type: value_type.to_string(),
            object: obj.name,
            screen_field,
            field_type: *field_type,
        }),
    }
}

/// Reads and checks an endpoint definition.
pub fn parse_endpoint(text: &str) -> Result<EndpointDef, String> {
    let root = xml::parse(text)?;
    if root.name != "Endpoint" {
        return Err(format!(
            "The root element must be <Endpoint>, not <{}>.",
            root.name
        ));
    }
    let name = root
        .attr("name")
        .filter(|s| !s.is_empty())
        .ok_or("The endpoint has no name.")?;
    let version = root
        .attr("version")
        .filter(|s| !s.is_empty())
        .ok_or("The endpoint has no version.")?;
    if name.eq_ignore_ascii_case("Default") || name.eq_ignore_ascii_case("maintenance") {
        return Err(format!(
            "The endpoint name '{name}' is reserved by the system."
        ));
    }
    let extends = match root.children_named("ExtendsEndpoint").next() {
        None => None,
        Some(e) => {
            let (n, v) = (
                e.attr("name").unwrap_or(""),
                e.attr("version").unwrap_or(""),
            );
            if n != "Default" || !DEFAULT_VERSIONS.contains(&v) {
                return Err(format!("The endpoint {n}/{v} to extend does not exist."));
            }
            Some((n.to_string(), v.to_string()))
        }
    };
    let details: HashMap<&str, &Element> = root
        .children
        .iter()
        .filter(|c| c.name == "Detail")
        .filter_map(|c| c.attr("name").map(|n| (n, c)))
        .collect();
    let mut entities = Vec::new();
    for top in root.children_named("TopLevelEntity") {
        let entity = top
            .attr("name")
            .filter(|s| !s.is_empty())
            .ok_or("A top-level entity has no name.")?;
        if entities.iter().any(|e: &MappedEntity| e.name == entity) {
            return Err(format!("The entity '{entity}' is declared twice."));
        }
        let screen_id = top.attr("screen").unwrap_or("");
        let Some(screen) = screen(screen_id) else {
            return Err(format!(
                "The screen '{screen_id}' of the '{entity}' entity is not simulated by the sandbox, which serves SM208000, SM302000 and SM205020 through custom endpoints."
            ));
        };
        let (fields, mappings) = fields_and_mappings(top)?;
        let mut mapped = MappedEntity {
            name: entity.to_string(),
            screen,
            fields: Vec::new(),
            details: Vec::new(),
        };
        for (field, value_type) in fields {
            if let Some(detail_entity) = value_type.strip_suffix("[]") {
                let Some(detail) = details.get(detail_entity) else {
                    return Err(format!(
                        "The detail entity '{detail_entity}' of the '{field}' field is not declared (<Detail name=\"{detail_entity}\">)."
                    ));
                };
                let (detail_fields, detail_mappings) = fields_and_mappings(detail)?;
                let mut mapped_fields = Vec::new();
                for (f, t) in detail_fields {
                    mapped_fields.push(map_field(
                        screen,
                        detail_entity,
                        &f,
                        &t,
                        detail_mappings.get(&f),
                        true,
                    )?);
                }
                let objects: Vec<&str> = mapped_fields.iter().map(|f| f.object).collect();
                let Some(object) = objects.first().copied() else {
                    return Err(format!(
                        "The detail entity '{detail_entity}' has no fields."
                    ));
                };
                if objects.iter().any(|o| *o != object) {
                    return Err(format!(
                        "The fields of the detail entity '{detail_entity}' are mapped to several objects."
                    ));
                }
                if let Some((link_object, _)) = mappings.get(&field)
                    && link_object != object
                {
                    return Err(format!(
                        "The '{field}' field of the '{entity}' entity is mapped to '{link_object}' but its fields to '{object}'."
                    ));
                }
                mapped.details.push(MappedDetail {
                    name: field,
                    entity: detail_entity.to_string(),
                    object,
                    fields: mapped_fields,
                });
            } else {
                mapped.fields.push(map_field(
                    screen,
                    entity,
                    &field,
                    &value_type,
                    mappings.get(&field),
                    false,
                )?);
            }
        }
        if mapped.key_field().is_none() {
            return Err(format!(
                "The '{entity}' entity must map the key field {}.{} of the {} screen.",
                screen.key.0, screen.key.1, screen.id
            ));
        }
        entities.push(mapped);
    }
    Ok(EndpointDef {
        name: name.to_string(),
        version: version.to_string(),
        extends,
        xml: text.to_string(),
        entities,
    })
}

/// An Automation Schedule (SM205020).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Schedule {
    pub id: String,
    pub description: String,
    pub screen_id: String,
    pub action_name: String,
    pub active: bool,
    pub interval_minutes: f64,
}

/// The screen that lists failed push notifications; a schedule on it resends them.
pub const PROCESS_PUSH_NOTIFICATIONS: &str = "SM502000";

#[derive(Clone, Debug, Default)]
struct DetailRow {
    id: String,
    fields: BTreeMap<String, Value>,
}

/// One record of an admin screen, by screen object and field.
#[derive(Clone, Debug, Default)]
struct Record {
    id: String,
    header: BTreeMap<String, Value>,
    details: BTreeMap<String, Vec<DetailRow>>,
}

impl Record {
    fn header_str(&self, field: &str) -> String {
        text(self.header.get(field))
    }

    fn rows(&self, object: &str) -> &[DetailRow] {
        self.details.get(object).map_or(&[], Vec::as_slice)
    }
}

fn text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

fn flag(v: Option<&Value>, default: bool) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => matches!(s.as_str(), "true" | "True" | "1"),
        Some(Value::Number(n)) => n.as_f64() != Some(0.0),
        _ => default,
    }
}

pub struct AdminApi {
    tenant: String,
    base_url: String,
    source: Arc<dyn TableSource>,
    gis: Arc<GiCatalog>,
    push: Arc<Dispatcher>,
    endpoints: Mutex<BTreeMap<(String, String), Arc<EndpointDef>>>,
    records: Mutex<BTreeMap<(&'static str, String), Record>>,
    schedules: Mutex<BTreeMap<String, Schedule>>,
    guids: Mutex<StdRng>,
    schedule_runs: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl AdminApi {
    /// `base_url` is where the Acumatica site is served (for `@odata.context`).
    pub fn new(
        source: Arc<dyn TableSource>,
        push_options: PushOptions,
        base_url: &str,
    ) -> Arc<AdminApi> {
        let gis = Arc::new(GiCatalog::new());
        let tenant = push_options.tenant.clone();
        let push = Dispatcher::new(gis.clone(), source.clone(), push_options);
        Arc::new(AdminApi {
            tenant,
            base_url: base_url.trim_end_matches('/').to_string(),
            source,
            gis,
            push,
            endpoints: Mutex::new(BTreeMap::new()),
            records: Mutex::new(BTreeMap::new()),
            schedules: Mutex::new(BTreeMap::new()),
            guids: Mutex::new(StdRng::seed_from_u64(0x5EED_0D47A)),
            schedule_runs: AtomicU64::new(0),
        })
    }

    pub fn gis(&self) -> &Arc<GiCatalog> {
        &self.gis
    }

    pub fn push(&self) -> &Arc<Dispatcher> {
        &self.push
    }

    pub fn schedules(&self) -> Vec<Schedule> {
        lock(&self.schedules).values().cloned().collect()
    }

    pub fn endpoint(&self, name: &str, version: &str) -> Option<Arc<EndpointDef>> {
        lock(&self.endpoints)
            .get(&(name.to_string(), version.to_string()))
            .cloned()
    }

    /// Runs every active schedule on its own timer: each one every `Interval` minutes, where a
    /// minute lasts `minute` (a real minute for `connector sandbox`, a few milliseconds in
    /// tests). Stops when the returned task is aborted or the API is dropped.
    pub fn spawn_schedules(
        self: &Arc<Self>,
        minute: std::time::Duration,
    ) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let tick = (minute / 4).max(std::time::Duration::from_millis(1));
            let mut last_run: BTreeMap<String, tokio::time::Instant> = BTreeMap::new();
            loop {
                tokio::time::sleep(tick).await;
                let Some(api) = weak.upgrade() else {
                    return;
                };
                let now = tokio::time::Instant::now();
                for s in api.schedules().into_iter().filter(|s| s.active) {
                    let every = minute.mul_f64(s.interval_minutes.max(0.0));
                    if every.is_zero() {
                        continue;
                    }
                    let due = last_run
                        .get(&s.id)
                        .is_none_or(|at| now.duration_since(*at) >= every);
                    if due {
                        last_run.insert(s.id.clone(), now);
                        api.run_schedule(&s.id).await;
                    }
                }
            }
        })
    }

    /// Runs a schedule's action now, as its timer would. A schedule on Process Push
    /// Notifications (SM502000) resends the failed notifications; it returns how many were
    /// delivered. An inactive or unknown schedule does nothing.
    pub async fn run_schedule(&self, id: &str) -> Option<usize> {
        let schedule = lock(&self.schedules).get(id).cloned()?;
        if !schedule.active {
            return None;
        }
        self.schedule_runs.fetch_add(1, Ordering::Relaxed);
        if schedule
            .screen_id
            .eq_ignore_ascii_case(PROCESS_PUSH_NOTIFICATIONS)
        {
            return Some(self.push.resend_failed().await);
        }
        Some(0)
    }

    /// `generic_inquiries`, `push_notifications`, `schedules`, `failed_notifications` and the
    /// stored endpoints, for `/__sandbox/state`.
    pub fn state(&self) -> Value {
        let mut state = self.push.state();
        state["generic_inquiries"] = json!(
            self.gis
                .all()
                .into_iter()
                .map(|g| json!({
                    "name": g.name,
                    "design_id": g.design_id,
                    "expose_via_odata": g.expose_via_odata,
                    "push_usable": g.push_refusal().is_none(),
                }))
                .collect::<Vec<_>>()
        );
        state["schedules"] = json!(self.schedules());
        state["schedule_runs"] = json!(self.schedule_runs.load(Ordering::Relaxed));
        state["endpoints"] = json!(
            lock(&self.endpoints)
                .values()
                .map(
                    |e| json!({"name": e.name, "version": e.version, "entities": e.entity_names()})
                )
                .collect::<Vec<_>>()
        );
        state
    }

    fn new_guid(&self) -> String {
        let b: [u8; 16] = lock(&self.guids).random();
        let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }

    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/entity/maintenance/23.200", post(post_endpoint))
            .route("/entity/maintenance/23.200/", post(post_endpoint))
            .route(
                "/entity/maintenance/23.200/{name}/{version}",
                get(get_endpoint),
            )
            .route("/entity/{endpoint}/{version}/{entity}", get(list).put(put))
            .route(
                "/entity/{endpoint}/{version}/{entity}/{key}",
                get(get_one).delete(delete_one),
            )
            .route("/t/{tenant}/api/odata/gi", get(odata_service))
            .route("/t/{tenant}/api/odata/gi/{gi}", get(odata_gi))
            .with_state(self.clone())
    }

    /// Applies a screen record to the GI catalog, the dispatcher or the schedules, as saving
    /// the screen would. Nothing changes when it is refused.
    fn apply(&self, screen: &Screen, record: &mut Record) -> Result<(), String> {
        match screen.id {
            "SM208000" => {
                if record.header_str("DesignID").is_empty() {
                    record
                        .header
                        .insert("DesignID".into(), Value::String(self.new_guid()));
                }
                let gi = gi_from_record(record)?;
                if self.push.gi_in_use(&gi)
                    && let Some(refusal) = gi.push_refusal()
                {
                    return Err(refusal);
                }
                self.gis.put(gi)
            }
            "SM302000" => self.push.put_hook(hook_from_record(record)),
            "SM205020" => {
                let s = Schedule {
                    id: record.header_str("ScheduleID"),
                    description: record.header_str("Description"),
                    screen_id: record.header_str("ScreenID"),
                    action_name: record.header_str("ActionName"),
                    active: flag(record.header.get("IsActive"), true),
                    interval_minutes: record
                        .header
                        .get("Interval")
                        .and_then(|v| v.as_f64().or_else(|| v.as_str()?.parse().ok()))
                        .unwrap_or(0.0),
                };
                if s.screen_id.trim().is_empty() {
                    return Err("'Screen ID' cannot be empty.".into());
                }
                lock(&self.schedules).insert(s.id.clone(), s);
                Ok(())
            }
            _ => Err(format!("The screen {} is not simulated.", screen.id)),
        }
    }

    fn unapply(&self, screen: &Screen, key: &str) -> Result<(), String> {
        match screen.id {
            "SM208000" => {
                if let Some(gi) = self.gis.get(key)
                    && self.push.gi_in_use(&gi)
                {
                    return Err(format!(
                        "The generic inquiry '{key}' cannot be deleted because it is used in push notifications."
                    ));
                }
                self.gis.remove(key);
            }
            "SM302000" => {
                self.push.remove_hook(key);
            }
            _ => {
                lock(&self.schedules).remove(key);
            }
        }
        Ok(())
    }
}

fn gi_from_record(r: &Record) -> Result<GenericInquiry, String> {
    let mut relations: Vec<GiRelation> = Vec::new();
    for row in r.rows("Relations") {
        let f = |k: &str| text(row.fields.get(k));
        let join = match f("JoinType").as_str() {
            "" | "Inner" | "I" => JoinType::Inner,
            "Left" | "L" => JoinType::Left,
            other => {
                return Err(format!(
                    "The join type '{other}' is not supported (Inner or Left)."
                ));
            }
        };
        let (parent, child) = (f("ParentTable"), f("ChildTable"));
        let pair = (f("ParentField"), f("ChildField"));
        match relations
            .iter_mut()
            .find(|x| x.parent_alias == parent && x.child_alias == child)
        {
            Some(existing) => existing.on.push(pair),
            None => relations.push(GiRelation {
                parent_alias: parent,
                child_alias: child,
                join,
                on: vec![pair],
            }),
        }
    }
    let mut conditions = Vec::new();
    for row in r.rows("Where") {
        let f = |k: &str| text(row.fields.get(k));
        let op = ConditionOp::parse(&f("Condition"))
            .ok_or_else(|| format!("The condition '{}' is not supported.", f("Condition")))?;
        let raw = f("Value1");
        let value = if raw.is_empty() {
            ConditionValue::None
        } else if let Some(p) = raw.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
            ConditionValue::Parameter(p.to_string())
        } else {
            ConditionValue::Constant(row.fields.get("Value1").cloned().unwrap_or(Value::Null))
        };
        conditions.push(GiCondition {
            field: f("DataFieldName"),
            op,
            value,
            active: flag(row.fields.get("IsActive"), true),
        });
    }
    Ok(GenericInquiry {
        name: r.header_str("Name"),
        design_id: r.header_str("DesignID"),
        expose_via_odata: flag(r.header.get("ExposeViaOData"), false),
        tables: r
            .rows("Tables")
            .iter()
            .map(|row| {
                let table = text(row.fields.get("Name"));
                let alias = text(row.fields.get("Alias"));
                GiTable {
                    alias: if alias.is_empty() {
                        table.rsplit('.').next().unwrap_or(&table).to_string()
                    } else {
                        alias
                    },
                    table,
                }
            })
            .collect(),
        relations,
        conditions,
        parameters: r
            .rows("Parameters")
            .iter()
            .map(|row| {
                (
                    text(row.fields.get("Name")),
                    row.fields
                        .get("DefaultValue")
                        .cloned()
                        .unwrap_or(Value::Null),
                )
            })
            .collect(),
        group_by: r
            .rows("GroupBy")
            .iter()
            .map(|row| text(row.fields.get("DataFieldName")))
            .collect(),
        results: r
            .rows("Results")
            .iter()
            .map(|row| GiResult {
                alias: text(row.fields.get("ObjectName")),
                field: text(row.fields.get("Field")),
                caption: text(row.fields.get("Caption")),
                aggregate: text(row.fields.get("AggregateFunction")),
                active: flag(row.fields.get("IsActive"), true),
            })
            .collect(),
    })
}

fn hook_from_record(r: &Record) -> PushHook {
    let tracked = r.rows("FieldsGI");
    PushHook {
        name: r.header_str("Name"),
        active: flag(r.header.get("Active"), true),
        kind: {
            let t = r.header_str("Type");
            if t.is_empty() { "Webhook".into() } else { t }
        },
        address: r.header_str("Address"),
        header_name: r.header_str("HeaderName"),
        header_value: r.header_str("HeaderValue"),
        sources: r
            .rows("SourcesGI")
            .iter()
            .map(|row| {
                let design_id = text(row.fields.get("DesignID"));
                PushSource {
                    tracked_fields: tracked
                        .iter()
                        .filter(|t| text(t.fields.get("DesignID")) == design_id)
                        .map(|t| text(t.fields.get("FieldName")))
                        .collect(),
                    design_id,
                    active: flag(row.fields.get("Active"), true),
                    track_all_fields: flag(row.fields.get("TrackAllFields"), true),
                }
            })
            .collect(),
    }
}

// ---------------------------------------------------------------------------------------------
// Error replies (the ASP.NET Web API `HttpError` shape the spec describes)

fn message(status: StatusCode, text: &str) -> Response {
    (status, Json(json!({ "message": text }))).into_response()
}

fn exception(status: StatusCode, text: &str, exception_type: &str) -> Response {
    (
        status,
        Json(json!({
            "message": "An error has occurred.",
            "exceptionMessage": text,
            "exceptionType": exception_type,
            "stackTrace": null,
        })),
    )
        .into_response()
}

fn model_state(path: &str, text: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({
            "message": "The request is invalid.",
            "modelState": { path: [text] },
        })),
    )
        .into_response()
}

fn not_found(uri: &OriginalUri) -> Response {
    message(
        StatusCode::NOT_FOUND,
        &format!(
            "No HTTP resource was found that matches the request URI '{}'.",
            uri.0
        ),
    )
}

fn no_entity() -> Response {
    exception(
        StatusCode::INTERNAL_SERVER_ERROR,
        "No entity satisfies the condition.",
        "PX.Api.ContractBased.NoEntitySatisfiesTheConditionException",
    )
}

// ---------------------------------------------------------------------------------------------
// Endpoint maintenance

async fn post_endpoint(State(api): State<Arc<AdminApi>>, body: Bytes) -> Response {
    let Ok(text) = std::str::from_utf8(&body) else {
        return message(
            StatusCode::BAD_REQUEST,
            "The endpoint definition is not UTF-8 text.",
        );
    };
    match parse_endpoint(text) {
        Err(e) => exception(
            StatusCode::BAD_REQUEST,
            &e,
            "PX.Api.ContractBased.Maintenance.EndpointValidationException",
        ),
        Ok(def) => {
            let key = (def.name.clone(), def.version.clone());
            lock(&api.endpoints).insert(key, Arc::new(def));
            StatusCode::NO_CONTENT.into_response()
        }
    }
}

async fn get_endpoint(
    State(api): State<Arc<AdminApi>>,
    Path((name, version)): Path<(String, String)>,
    uri: OriginalUri,
) -> Response {
    match api.endpoint(&name, &version) {
        None => not_found(&uri),
        Some(def) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
            def.xml.clone(),
        )
            .into_response(),
    }
}

// ---------------------------------------------------------------------------------------------
// Entities

/// A refused request's reply, boxed: it travels in `Err` through the binding helpers.
type Refusal = Box<Response>;

/// A bound detail row: its `id` (if any), whether it is to be deleted, its screen fields.
type DetailOp = (Option<String>, bool, BTreeMap<String, Value>);

type EntityPath = Path<(String, String, String)>;

fn find_entity(
    api: &AdminApi,
    endpoint: &str,
    version: &str,
    entity: &str,
) -> Option<MappedEntity> {
    api.endpoint(endpoint, version)?
        .entities
        .iter()
        .find(|e| e.name == entity)
        .cloned()
}

fn expanded(query: &HashMap<String, String>) -> Vec<String> {
    query
        .get("$expand")
        .map(|s| s.split(',').map(|x| x.trim().to_string()).collect())
        .unwrap_or_default()
}

fn wrap(v: Option<&Value>) -> Value {
    match v {
        None | Some(Value::Null) => json!({}),
        Some(v) => json!({ "value": v }),
    }
}

fn render(entity: &MappedEntity, record: &Record, query: &HashMap<String, String>) -> Value {
    let select: Option<Vec<String>> = query
        .get("$select")
        .map(|s| s.split(',').map(|x| x.trim().to_string()).collect());
    let expand = expanded(query);
    let mut out = Map::new();
    out.insert("id".into(), json!(record.id));
    out.insert("rowNumber".into(), json!(1));
    out.insert("note".into(), json!({}));
    for f in &entity.fields {
        if select.as_ref().is_some_and(|s| !s.contains(&f.name)) && !f.name.is_empty() {
            continue;
        }
        out.insert(f.name.clone(), wrap(record.header.get(f.screen_field)));
    }
    for d in entity.details.iter().filter(|d| expand.contains(&d.name)) {
        let rows: Vec<Value> = record
            .rows(d.object)
            .iter()
            .enumerate()
            .map(|(i, row)| {
                let mut o = Map::new();
                o.insert("id".into(), json!(row.id));
                o.insert("rowNumber".into(), json!(i + 1));
                o.insert("note".into(), json!({}));
                for f in &d.fields {
                    o.insert(f.name.clone(), wrap(row.fields.get(f.screen_field)));
                }
                o.insert("custom".into(), json!({}));
                Value::Object(o)
            })
            .collect();
        out.insert(d.name.clone(), Value::Array(rows));
    }
    out.insert("custom".into(), json!({}));
    Value::Object(out)
}

const ENTITY_FIELDS: &[&str] = &[
    "id",
    "rowNumber",
    "note",
    "custom",
    "_links",
    "files",
    "delete",
    "error",
];

/// The value inside `{"value": …}`, or the binding error Acumatica gives for anything else.
fn unwrap_value(value: &Value, value_type: &str, path: &str) -> Result<Value, Refusal> {
    match value {
        Value::Object(o) if o.keys().all(|k| k == "value" || k == "error") => {
            Ok(o.get("value").cloned().unwrap_or(Value::Null))
        }
        other => Err(Box::new(model_state(
            path,
            &format!(
                "Error converting value {} to type 'PX.Api.ContractBased.Models.{value_type}'. Path '{path}'.",
                match other {
                    Value::String(s) => format!("\"{s}\""),
                    v => v.to_string(),
                }
            ),
        ))),
    }
}

fn check_detail_row(
    endpoint: &str,
    detail: &MappedDetail,
    row: &Value,
    path: &str,
) -> Result<DetailOp, Refusal> {
    let Some(o) = row.as_object() else {
        return Err(Box::new(model_state(
            path,
            &format!(
                "Error converting value to type '{}'. Path '{path}'.",
                detail.entity
            ),
        )));
    };
    let mut fields = BTreeMap::new();
    for (k, v) in o {
        if ENTITY_FIELDS.contains(&k.as_str()) {
            continue;
        }
        let here = format!("{path}.{k}");
        let Some(f) = detail.fields.iter().find(|f| f.name == *k) else {
            return Err(Box::new(model_state(
                &here,
                &format!(
                    "The field '{k}' is not defined in the '{}' entity of the {endpoint} endpoint.",
                    detail.entity
                ),
            )));
        };
        fields.insert(
            f.screen_field.to_string(),
            unwrap_value(v, &f.value_type, &here)?,
        );
    }
    let id = o.get("id").and_then(Value::as_str).map(str::to_string);
    let delete = o.get("delete").and_then(Value::as_bool).unwrap_or(false);
    Ok((id, delete, fields))
}

async fn put(
    State(api): State<Arc<AdminApi>>,
    Path((endpoint, version, entity_name)): EntityPath,
    Query(query): Query<HashMap<String, String>>,
    uri: OriginalUri,
    body: Bytes,
) -> Response {
    let Some(entity) = find_entity(&api, &endpoint, &version, &entity_name) else {
        return not_found(&uri);
    };
    let endpoint_label = format!("{endpoint}/{version}");
    let body: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return model_state("entity", &e.to_string()),
    };
    let Some(object) = body.as_object() else {
        return model_state(
            "entity",
            &format!("Error converting value to type '{entity_name}'. Path ''."),
        );
    };
    // Bind the body first: nothing is written when any part of it is refused.
    let mut header = BTreeMap::new();
    let mut detail_ops: Vec<(&MappedDetail, Vec<DetailOp>)> = Vec::new();
    for (k, v) in object {
        if ENTITY_FIELDS.contains(&k.as_str()) {
            continue;
        }
        if let Some(f) = entity.fields.iter().find(|f| f.name == *k) {
            match unwrap_value(v, &f.value_type, k) {
                Ok(value) => {
                    header.insert(f.screen_field.to_string(), value);
                }
                Err(r) => return *r,
            }
        } else if let Some(d) = entity.details.iter().find(|d| d.name == *k) {
            let Some(rows) = v.as_array() else {
                return model_state(
                    k,
                    &format!(
                        "Error converting value to type '{}[]'. Path '{k}'.",
                        d.entity
                    ),
                );
            };
            let mut ops = Vec::new();
            for (i, row) in rows.iter().enumerate() {
                match check_detail_row(&endpoint_label, d, row, &format!("{k}[{i}]")) {
                    Ok(op) => ops.push(op),
                    Err(r) => return *r,
                }
            }
            detail_ops.push((d, ops));
        } else {
            return model_state(
                k,
                &format!(
                    "The field '{k}' is not defined in the '{entity_name}' entity of the {endpoint_label} endpoint."
                ),
            );
        }
    }

    let screen = entity.screen;
    let key_field = entity.key_field().cloned();
    let by_id = object.get("id").and_then(Value::as_str).map(str::to_string);
    let key_value = text(header.get(screen.key.1));
    let mut records = lock(&api.records);
    let existing_key = if !key_value.is_empty() {
        Some(key_value.clone())
    } else {
        by_id.as_ref().and_then(|id| {
            records
                .iter()
                .find(|((s, _), r)| *s == screen.id && r.id == *id)
                .map(|((_, k), _)| k.clone())
        })
    };
    let Some(key) = existing_key else {
        let mut reply = render(&entity, &Record::default(), &query);
        if let Some(f) = key_field {
            reply[&f.name] = json!({ "error": format!("'{}' cannot be empty.", f.name) });
        }
        return (StatusCode::UNPROCESSABLE_ENTITY, Json(reply)).into_response();
    };
    let mut record = records
        .get(&(screen.id, key.clone()))
        .cloned()
        .unwrap_or_else(|| Record {
            id: api.new_guid(),
            ..Record::default()
        });
    record.header.extend(header);
    record
        .header
        .insert(screen.key.1.to_string(), Value::String(key.clone()));
    for (detail, ops) in detail_ops {
        let rows = record.details.entry(detail.object.to_string()).or_default();
        for (id, delete, fields) in ops {
            match id.and_then(|id| rows.iter().position(|r| r.id == id)) {
                Some(i) if delete => {
                    rows.remove(i);
                }
                Some(i) => rows[i].fields.extend(fields),
                None if delete => {}
                None => rows.push(DetailRow {
                    id: api.new_guid(),
                    fields,
                }),
            }
        }
    }
    if let Err(e) = api.apply(screen, &mut record) {
        let mut reply = render(&entity, &record, &query);
        reply["error"] = json!(e);
        return (StatusCode::UNPROCESSABLE_ENTITY, Json(reply)).into_response();
    }
    let reply = render(&entity, &record, &query);
    records.insert((screen.id, key), record);
    (StatusCode::OK, Json(reply)).into_response()
}

fn filter_type(entity: &MappedEntity, field: &str) -> Option<FieldType> {
    entity
        .fields
        .iter()
        .find(|f| f.name == field)
        .map(|f| match f.value_type.as_str() {
            "GuidValue" => FieldType::Guid,
            _ => f.field_type,
        })
}

async fn list(
    State(api): State<Arc<AdminApi>>,
    Path((endpoint, version, entity_name)): EntityPath,
    Query(query): Query<HashMap<String, String>>,
    uri: OriginalUri,
) -> Response {
    let Some(entity) = find_entity(&api, &endpoint, &version, &entity_name) else {
        return not_found(&uri);
    };
    let filter = match query.get("$filter").map(|f| odata::parse(f)) {
        None => None,
        Some(Err(e)) => return (StatusCode::INTERNAL_SERVER_ERROR, Json(e.body())).into_response(),
        Some(Ok(f)) => {
            if let Err(e) = f.check(&|name| filter_type(&entity, name)) {
                return (
                    StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                    Json(e.body()),
                )
                    .into_response();
            }
            Some(f)
        }
    };
    let skip = query
        .get("$skip")
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(0);
    let top = query
        .get("$top")
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(usize::MAX);
    let records = lock(&api.records);
    let mut out = Vec::new();
    for ((s, _), record) in records.iter() {
        if *s != entity.screen.id {
            continue;
        }
        if let Some(f) = &filter {
            let row = entity
                .fields
                .iter()
                .map(|mf| {
                    (
                        mf.name.clone(),
                        record
                            .header
                            .get(mf.screen_field)
                            .cloned()
                            .unwrap_or(Value::Null),
                    )
                })
                .collect();
            if !f
                .matches(&row, &|name| filter_type(&entity, name))
                .unwrap_or(false)
            {
                continue;
            }
        }
        out.push(render(&entity, record, &query));
    }
    let page: Vec<Value> = out.into_iter().skip(skip).take(top).collect();
    (StatusCode::OK, Json(Value::Array(page))).into_response()
}

fn find_record(
    records: &BTreeMap<(&'static str, String), Record>,
    screen: &Screen,
    key: &str,
) -> Option<(String, Record)> {
    records
        .get(&(screen.id, key.to_string()))
        .map(|r| (key.to_string(), r.clone()))
        .or_else(|| {
            records
                .iter()
                .find(|((s, _), r)| *s == screen.id && r.id.eq_ignore_ascii_case(key))
                .map(|((_, k), r)| (k.clone(), r.clone()))
        })
}

async fn get_one(
    State(api): State<Arc<AdminApi>>,
    Path((endpoint, version, entity_name, key)): Path<(String, String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
    uri: OriginalUri,
) -> Response {
    let Some(entity) = find_entity(&api, &endpoint, &version, &entity_name) else {
        return not_found(&uri);
    };
    let records = lock(&api.records);
    match find_record(&records, entity.screen, &key) {
        None => no_entity(),
        Some((_, r)) => (StatusCode::OK, Json(render(&entity, &r, &query))).into_response(),
    }
}

async fn delete_one(
    State(api): State<Arc<AdminApi>>,
    Path((endpoint, version, entity_name, key)): Path<(String, String, String, String)>,
    uri: OriginalUri,
) -> Response {
    let Some(entity) = find_entity(&api, &endpoint, &version, &entity_name) else {
        return not_found(&uri);
    };
    let mut records = lock(&api.records);
    let Some((key, _)) = find_record(&records, entity.screen, &key) else {
        return no_entity();
    };
    if let Err(e) = api.unapply(entity.screen, &key) {
        return exception(StatusCode::INTERNAL_SERVER_ERROR, &e, "PX.Data.PXException");
    }
    records.remove(&(entity.screen.id, key));
    StatusCode::NO_CONTENT.into_response()
}

// ---------------------------------------------------------------------------------------------
// OData v4 reads of Generic Inquiries

fn odata_error(status: StatusCode, text: &str) -> Response {
    (
        status,
        Json(json!({ "error": { "code": "", "message": text } })),
    )
        .into_response()
}

async fn odata_service(
    State(api): State<Arc<AdminApi>>,
    Path(tenant): Path<String>,
    uri: OriginalUri,
) -> Response {
    if !tenant.eq_ignore_ascii_case(&api.tenant) {
        return not_found(&uri);
    }
    let sets: Vec<Value> = api
        .gis
        .all()
        .into_iter()
        .filter(|g| g.expose_via_odata)
        .map(|g| json!({ "name": g.name, "kind": "EntitySet", "url": g.name }))
        .collect();
    Json(json!({
        "@odata.context": format!("{}/t/{}/api/odata/gi/$metadata", api.base_url, api.tenant),
        "value": sets,
    }))
    .into_response()
}

async fn odata_gi(
    State(api): State<Arc<AdminApi>>,
    Path((tenant, gi_name)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    uri: OriginalUri,
) -> Response {
    if !tenant.eq_ignore_ascii_case(&api.tenant) {
        return not_found(&uri);
    }
    let Some(gi) = api.gis.get(&gi_name).filter(|g| g.expose_via_odata) else {
        return odata_error(
            StatusCode::NOT_FOUND,
            &format!(
                "The path template 'gi/{gi_name}' on the action 'Get' in controller 'GI' is not a valid OData path template. Resource not found for the segment '{gi_name}'."
            ),
        );
    };
    let filter = match query.get("$filter").map(|f| odata::parse(f)) {
        None => None,
        Some(Err(e)) => return odata_error(StatusCode::BAD_REQUEST, &e.message),
        Some(Ok(f)) => {
            if let Err(e) = f.check(&|c| gi.column_type(c)) {
                return odata_error(StatusCode::BAD_REQUEST, &e.message);
            }
            Some(f)
        }
    };
    let columns = gi.columns();
    let select: Option<Vec<String>> = query
        .get("$select")
        .map(|s| s.split(',').map(|x| x.trim().to_string()).collect());
    if let Some(sel) = &select
        && let Some(bad) = sel
            .iter()
            .find(|c| !columns.iter().any(|col| col.name == **c))
    {
        return odata_error(
            StatusCode::BAD_REQUEST,
            &format!(
                "Could not find a property named '{bad}' on type '{}'.",
                gi.name
            ),
        );
    }
    let parse_count = |name: &str| -> Result<Option<usize>, Refusal> {
        match query.get(name) {
            None => Ok(None),
            Some(s) => s.parse::<usize>().map(Some).map_err(|_| {
                Box::new(odata_error(
                    StatusCode::BAD_REQUEST,
                    &format!("Invalid value '{s}' for {name} query option found. The {name} query option requires a non-negative integer value."),
                ))
            }),
        }
    };
    let (skip, top) = match (parse_count("$skip"), parse_count("$top")) {
        (Ok(s), Ok(t)) => (s.unwrap_or(0), t.unwrap_or(usize::MAX)),
        (Err(r), _) | (_, Err(r)) => return *r,
    };
    // The column types once, not a column list built per row and field.
    let types: BTreeMap<&str, FieldType> = columns
        .iter()
        .map(|c| (c.name.as_str(), c.field_type))
        .collect();
    let type_of = |c: &str| types.get(c).copied();
    let passes = |row: &Row| {
        filter
            .as_ref()
            .is_none_or(|f| f.matches(row, &type_of).unwrap_or(false))
    };
    // A filter on the first table's columns only (an incremental read's last-modified
    // column) narrows that table before the joins; the filter still runs on every result.
    let first_table = filter
        .as_ref()
        .and_then(|f| gi.first_table_fields(&f.fields()));
    let executed = match &first_table {
        Some(fields) => gi.execute_where(api.source.as_ref(), &|row| {
            let columns: Row = fields
                .iter()
                .map(|(column, field)| {
                    (
                        column.clone(),
                        row.get(field).cloned().unwrap_or(Value::Null),
                    )
                })
                .collect();
            passes(&columns)
        }),
        None => gi.execute(api.source.as_ref()),
    };
    let rows = match executed {
        Ok(rows) => rows,
        Err(e) => return odata_error(StatusCode::INTERNAL_SERVER_ERROR, &e),
    };
    let tz = api.push.options().timezone;
    let value: Vec<Row> = rows.into_iter().filter(|row| passes(row)).collect();
    let value: Vec<Value> = value
        .into_iter()
        .skip(skip)
        .take(top)
        .map(|row| {
            let mut o = Map::new();
            for c in &columns {
                if select.as_ref().is_some_and(|s| !s.contains(&c.name)) {
                    continue;
                }
                let v = row.get(&c.name).cloned().unwrap_or(Value::Null);
                let v = match (&v, c.field_type) {
                    (Value::String(s), FieldType::DateTime) => parse_stored_datetime(s)
                        .map(|at| {
                            Value::String(
                                at.with_timezone(&tz)
                                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                            )
                        })
                        .unwrap_or(v),
                    _ => v,
                };
                o.insert(c.name.clone(), v);
            }
            Value::Object(o)
        })
        .collect();
    Json(json!({
        "@odata.context": format!("{}/t/{}/api/odata/gi/$metadata#{}", api.base_url, api.tenant, gi.name),
        "value": value,
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GI_ENTITY: &str = r#"<Endpoint xmlns="http://www.acumatica.com/entity/maintenance/5.31" name="MC" version="24.200.001" systemContractVersion="4">
  <ExtendsEndpoint name="Default" version="24.200.001" />
  <TopLevelEntity name="GenericInquiry" screen="SM208000">
    <Fields>
      <Field name="InquiryTitle" type="StringValue" />
      <Field name="Tables" type="GenericInquiryTable[]" />
    </Fields>
    <Mappings>
      <Mapping field="InquiryTitle"><To object="Designs" field="Name" /></Mapping>
      <Mapping field="Tables"><To object="Tables" /></Mapping>
    </Mappings>
  </TopLevelEntity>
  <Detail name="GenericInquiryTable">
    <Fields><Field name="Table" type="StringValue" /><Field name="Alias" type="StringValue" /></Fields>
    <Mappings>
      <Mapping field="Table"><To object="Tables" field="Name" /></Mapping>
      <Mapping field="Alias"><To object="Tables" field="Alias" /></Mapping>
    </Mappings>
  </Detail>
</Endpoint>"#;

    #[test]
    fn parses_an_endpoint_with_a_detail() {
        let def = parse_endpoint(GI_ENTITY).unwrap();
        assert_eq!(def.name, "MC");
        assert_eq!(def.extends, Some(("Default".into(), "24.200.001".into())));
        assert_eq!(def.entity_names(), vec!["GenericInquiry".to_string()]);
        assert_eq!(def.entities[0].details[0].object, "Tables");
    }

    #[test]
    fn refuses_bad_definitions() {
        let cases = [
            (GI_ENTITY.replace("SM208000", "IN202500"), "not simulated"),
            (GI_ENTITY.replace("field=\"Name\" /></Mapping>\n      <Mapping field=\"Tables\"", "field=\"Title\" /></Mapping>\n      <Mapping field=\"Tables\""), "'Title' field is not found"),
            (GI_ENTITY.replace("<Detail name=\"GenericInquiryTable\">", "<Detail name=\"Other\">"), "is not declared"),
            (GI_ENTITY.replace("version=\"24.200.001\" />", "version=\"9.0\" />"), "does not exist"),
            (GI_ENTITY.replace("<Mapping field=\"InquiryTitle\"><To object=\"Designs\" field=\"Name\" /></Mapping>", ""), "no mapping"),
            (GI_ENTITY.replace("type=\"StringValue\" />\n      <Field name=\"Tables\"", "type=\"BooleanValue\" />\n      <Field name=\"Tables\""), "does not match"),
        ];
        for (xml, expected) in cases {
            let e = parse_endpoint(&xml).err().unwrap_or_default();
            assert!(e.contains(expected), "expected '{expected}' in: {e}");
        }
    }
}
