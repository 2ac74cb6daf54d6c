//! Conformance checker for the two official API descriptions in `../shared/specs/`: every reply
//! a simulation sends (and every request a client sends) is checked against them.
//!
//! It supports exactly the schema keywords the two documents use (see [`SUPPORTED_KEYWORDS`];
//! a test fails if a document starts using another one) and is STRICT: a property that the
//! schema does not declare is an error unless the schema has `additionalProperties`. That is
//! what catches a simulation inventing fields.
//!
//! Each error names the JSON pointer of the offending value (quoted; `""` is the whole body)
//! and the nearest named schema, e.g.
//! `GET /V1/products/{sku} -> 200: "/price": expected number, found string (schema catalog-data-product-interface)`.
//!
//! Where a system really does more than its document says, and the project relies on it, a
//! narrow rule says so (`Quirks` and `patch_magento`, each with its reason): Magento's null
//! for a required property, `[]` from a void method, partial nested request objects, both
//! shapes of error `parameters`, snake_case query keys; Acumatica's multi-segment `{ids}` and
//! the detail-row `delete` flag in requests. Nothing else is relaxed.
//!
//! Use from a test under `tests/`:
//!
//! ```ignore
//! mod support;
//! use support::openapi::{Spec, assert_conforms};
//!
//! let spec = Spec::magento();
//! let path = spec.relative_path(response.url().path()).unwrap(); // "/V1/products/ABC-1"
//! assert_conforms(spec.check_response("GET", path, status, &body));
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

const MAGENTO_DOCUMENT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/specs/magento/admin-schema-2.4.8.yaml"
);
const ACUMATICA_DOCUMENT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/specs/acumatica/Default_24.200.001.json"
);

/// Schema keywords the checker acts on.
pub const SUPPORTED_KEYWORDS: &[&str] = &[
    "$ref",
    "type",
    "properties",
    "required",
    "items",
    "additionalProperties",
    "allOf",
    "nullable",
    "format",
    "discriminator",
];
const HTTP_METHODS: &[&str] = &["get", "put", "post", "delete", "patch", "head", "options"];

/// Panics with every error, one per line, unless the check passed:
/// `assert_conforms(Spec::magento().check_response("GET", path, status, &body))`.
#[track_caller]
pub fn assert_conforms(result: Result<(), Vec<String>>) {
    if let Err(errors) = result {
        panic!(
            "does not conform to the API description:\n{}",
            errors.join("\n")
        );
    }
}

/// Keywords that only document a schema and never constrain a value.
const ANNOTATION_KEYWORDS: &[&str] = &["description", "xml", "title", "example"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dialect {
    /// Swagger 2.0: `#/definitions`, parameters carry `type` themselves, body is an `in: body`
    /// parameter, a response has `schema`.
    Swagger2,
    /// OpenAPI 3.0: `#/components/...`, parameters carry `schema`, `requestBody`, a response
    /// has `content`.
    OpenApi3,
}

/// One parsed API description, loaded once per test process.
pub struct Spec {
    title: &'static str,
    dialect: Dialect,
    document: Value,
    routes: Vec<Route>,
    quirks: Quirks,
    load_time: Duration,
}

/// What a system really does where its document says less. Each is explained where set.
#[derive(Clone, Copy, Default)]
struct Quirks {
    /// Path parameters whose value spans several segments.
    multi_segment_params: &'static [&'static str],
    snake_case_query_names: bool,
    required_properties_may_be_null: bool,
    request_required_top_level_only: bool,
    void_success_is_empty_array: bool,
    /// A base schema whose derived objects may carry `"delete": true` in a request.
    request_delete_flag_base: Option<&'static str>,
}

struct Route {
    template: String,
    segments: Vec<TemplateSegment>,
}

enum TemplateSegment {
    Literal(String),
    Param(String),
}

/// The operation a concrete request resolves to.
struct Operation<'s> {
    template: &'s str,
    method: String,
    definition: &'s Value,
    parameters: Vec<&'s Value>,
    path_values: Vec<(String, String)>,
}

impl Spec {
    /// Adobe Commerce 2.4.8 admin REST (Swagger 2.0). Paths are relative to `/rest/{store}`.
    pub fn magento() -> &'static Spec {
        static MAGENTO: OnceLock<Spec> = OnceLock::new();
        MAGENTO.get_or_init(|| {
            let started = Instant::now();
            let text = read_document(MAGENTO_DOCUMENT);
            let mut document: Value = serde_norway::from_str(&text)
                .unwrap_or_else(|e| panic!("parsing {MAGENTO_DOCUMENT}: {e}"));
            patch_magento(&mut document);
            let quirks = Quirks {
                multi_segment_params: &[],
                // Magento maps snake_case request keys onto its camelCase setters, so
                // `searchCriteria[filter_groups]` is the declared `searchCriteria[filterGroups]`.
                snake_case_query_names: true,
                // Its output processor (`DataObjectProcessor::buildOutputDataArray`) leaves
                // out an optional getter's null but writes a required one's null
                // (`"low_stock_date": null`); Swagger 2 cannot say `nullable`.
                required_properties_may_be_null: true,
                // Its input processor (`ServiceInputProcessor`) requires the method's own
                // parameters (`product`, `stockItem`, `prices`) but fills nested data objects
                // through setters from whatever keys are sent: a partial
                // `{"stockItem": {"qty": 5}}` is a normal request.
                request_required_top_level_only: true,
                // A void method (53 operations, e.g. POST /V1/inventory/source-items) has no
                // 200 in the document, yet Magento answers 200 with `[]`
                // (`ServiceOutputProcessor::convertValue(null)`).
                void_success_is_empty_array: true,
                request_delete_flag_base: None,
            };
            Spec::new("magento", Dialect::Swagger2, document, quirks, started)
        })
    }

    /// Acumatica contract-based REST, endpoint Default/24.200.001 (OpenAPI 3.0.1). Paths are
    /// relative to `/entity/Default/24.200.001`.
    pub fn acumatica() -> &'static Spec {
        static ACUMATICA: OnceLock<Spec> = OnceLock::new();
        ACUMATICA.get_or_init(|| {
            let started = Instant::now();
            let text = read_document(ACUMATICA_DOCUMENT);
            let document: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("parsing {ACUMATICA_DOCUMENT}: {e}"));
            let quirks = Quirks {
                // The spec describes `{ids}` as "The values of the key fields of the record.
                // The values are slash-delimited.", e.g. `/SalesOrder/SO/000123`.
                multi_segment_params: &["ids"],
                // The official client's `Entity` (AcumaticaRESTAPIClientForCSharp,
                // Acumatica.RESTClient/BaseApi/Model/EntityBase/Entity.cs) has
                // `[DataMember(Name = "delete")] bool? Delete`: "Indicates whether it is needed
                // to delete detail record." The document's `Entity` leaves it out. Requests only.
                request_delete_flag_base: Some("Entity"),
                ..Quirks::default()
            };
            Spec::new("acumatica", Dialect::OpenApi3, document, quirks, started)
        })
    }

    fn new(
        title: &'static str,
        dialect: Dialect,
        document: Value,
        quirks: Quirks,
        started: Instant,
    ) -> Spec {
        let routes = document["paths"]
            .as_object()
            .unwrap_or_else(|| panic!("{title} document has no `paths`"))
            .keys()
            .map(|template| Route {
                template: template.clone(),
                segments: split_path(template)
                    .into_iter()
                    .map(|segment| {
                        match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                            Some(name) => TemplateSegment::Param(name.to_string()),
                            None => TemplateSegment::Literal(segment.to_string()),
                        }
                    })
                    .collect(),
            })
            .collect();
        Spec {
            title,
            dialect,
            document,
            routes,
            quirks,
            load_time: started.elapsed(),
        }
    }

    /// The part of a URL path the spec's paths are relative to: Magento drops everything up to
    /// `/rest/{store}` (or a bare `/rest`), Acumatica up to `/entity/Default/24.200.001`, so
    /// `/magento/rest/default/V1/products/A%2F1` gives `/V1/products/A%2F1`. `None` when the
    /// path is not under that base. Percent-encoding is kept (the checks decode segments).
    pub fn relative_path<'p>(&self, url_path: &'p str) -> Option<&'p str> {
        match self.dialect {
            Dialect::Swagger2 => {
                let (_, after_rest) = url_path.split_once("/rest/")?;
                // `/rest/V1/...` is the default store; otherwise one segment is the store code.
                if after_rest.starts_with("V1/") {
                    return Some(&url_path[url_path.len() - after_rest.len() - 1..]);
                }
                let slash = after_rest.find('/')?;
                Some(&after_rest[slash..])
            }
            Dialect::OpenApi3 => {
                let base = "/entity/Default/24.200.001";
                let start = url_path.find(base)? + base.len();
                let rest = &url_path[start..];
                (rest.is_empty() || rest.starts_with('/')).then_some(rest)
            }
        }
    }

    /// How long reading and parsing the document took (the first call's cost).
    pub fn load_time(&self) -> Duration {
        self.load_time
    }

    /// Validate a reply body. `path` is the concrete request path relative to the spec's base
    /// (Magento: after `/rest/{store}`, e.g. "/V1/products/ABC-1"; Acumatica: after
    /// `/entity/Default/24.200.001`, e.g. "/StockItem" or "/SalesOrder/SO/000123"). A reply
    /// without a body is `Value::Null`. A query string on `path` is ignored.
    pub fn check_response(
        &self,
        method: &str,
        path: &str,
        status: u16,
        body: &Value,
    ) -> Result<(), Vec<String>> {
        let path = path.split_once('?').map_or(path, |(path, _)| path);
        let operation = self.find_operation(method, path).map_err(|e| vec![e])?;
        let label = format!("{} {} -> {status}", operation.method, operation.template);
        let responses = &operation.definition["responses"];
        if status == 200
            && responses.get("200").is_none()
            && self.quirks.void_success_is_empty_array
        {
            return if *body == Value::Array(Vec::new()) {
                Ok(())
            } else {
                Err(vec![format!(
                    "{label}: a void operation answers 200 with [], found {}",
                    describe(body)
                )])
            };
        }
        let Some(response) = responses
            .get(status.to_string())
            .or_else(|| responses.get("default"))
        else {
            let declared: Vec<&str> = responses
                .as_object()
                .map(|r| r.keys().map(String::as_str).collect())
                .unwrap_or_default();
            return Err(vec![format!(
                "{label}: status {status} is not declared (declared: {})",
                declared.join(", ")
            )]);
        };
        let (_, response) = self
            .resolve(response)
            .map_err(|e| vec![format!("{label}: {e}")])?;
        let schema = match self.dialect {
            Dialect::Swagger2 => response.get("schema"),
            Dialect::OpenApi3 => response.pointer("/content/application~1json/schema"),
        };
        match schema {
            None if body.is_null() => Ok(()),
            None => Err(vec![format!(
                "{label}: the spec declares no body for this reply, but one was sent"
            )]),
            Some(schema) => {
                let mut validator = Validator::new(self);
                validator.validate_root(schema, body, &format!("{label} body"));
                validator.finish(&label)
            }
        }
    }

    /// Validate a request: the path exists with that method, path and query parameters are
    /// declared and of the declared type, required ones are present, and the body is valid
    /// against the body schema. Magento's deep names (`searchCriteria[filter_groups][1]...`)
    /// are matched against the declared ones with any index and snake_case or camelCase keys.
    pub fn check_request(
        &self,
        method: &str,
        path_and_query: &str,
        body: Option<&Value>,
    ) -> Result<(), Vec<String>> {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        let operation = self.find_operation(method, path).map_err(|e| vec![e])?;
        let label = format!("{} {}", operation.method, operation.template);
        let mut errors = Vec::new();

        for (name, value) in &operation.path_values {
            if let Some(parameter) = operation.parameter("path", name) {
                let schema = self.parameter_schema(parameter);
                if let Err(e) = check_text_value(&schema, value) {
                    errors.push(format!("path parameter {name}={value:?}: {e}"));
                }
            }
        }

        let query_parameters: Vec<&Value> = operation
            .parameters
            .iter()
            .copied()
            .filter(|p| p["in"] == "query")
            .collect();
        let mut present: BTreeSet<&str> = BTreeSet::new();
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            match self.declared_query_parameter(&query_parameters, &key) {
                None => {
                    let declared: Vec<&str> = query_parameters
                        .iter()
                        .filter_map(|p| p["name"].as_str())
                        .collect();
                    errors.push(format!(
                        "query parameter {key:?} is not declared (declared: {})",
                        if declared.is_empty() {
                            "none".to_string()
                        } else {
                            declared.join(", ")
                        }
                    ));
                }
                Some(parameter) => {
                    present.insert(parameter["name"].as_str().unwrap_or_default());
                    let mut schema = self.parameter_schema(parameter);
                    if schema["type"] == "array" {
                        schema = schema["items"].clone();
                    }
                    if let Err(e) = check_text_value(&schema, &value) {
                        errors.push(format!("query parameter {key}={value:?}: {e}"));
                    }
                }
            }
        }
        for parameter in &query_parameters {
            let name = parameter["name"].as_str().unwrap_or_default();
            if parameter["required"] == true && !present.contains(name) {
                errors.push(format!("required query parameter {name:?} is missing"));
            }
        }

        match (self.request_body(&operation), body) {
            (None, None) => {}
            (None, Some(_)) => {
                errors.push("the spec declares no request body, but one was sent".into())
            }
            (Some((_, true)), None) => errors.push("the required request body is missing".into()),
            (Some((_, false)), None) => {}
            (Some((schema, _)), Some(body)) => {
                let mut validator = Validator::new(self);
                validator.nested_required = !self.quirks.request_required_top_level_only;
                validator.in_request = true;
                validator.validate_root(schema, body, &format!("{label} request body"));
                errors.extend(validator.errors);
            }
        }

        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors
                .into_iter()
                .map(|e| format!("{label}: {e}"))
                .collect())
        }
    }

    /// Validate any value against a named schema (Magento: a `definitions` name such as
    /// "catalog-data-product-interface"; Acumatica: a `components/schemas` name such as
    /// "StockItem").
    pub fn check_definition(&self, name: &str, value: &Value) -> Result<(), Vec<String>> {
        let Some((name, schema)) = self.named_schema(name) else {
            return Err(vec![format!(
                "the {} spec has no schema named {name:?}",
                self.title
            )]);
        };
        let mut validator = Validator::new(self);
        validator.validate(schema, value, "", name, true, false, 0);
        validator.finish(name)
    }

    /// The path template (e.g. `/V1/products/{sku}`) a concrete request resolves to, or why
    /// none does. A query string is ignored.
    pub fn route(&self, method: &str, path: &str) -> Result<String, String> {
        let path = path.split_once('?').map_or(path, |(path, _)| path);
        self.find_operation(method, path)
            .map(|operation| operation.template.to_string())
    }

    /// Every in-document `$ref` (`#/...`) that points nowhere, as `ref at /json/pointer`. A
    /// reference to another file (Magento's `info.description`) is never followed by checks.
    pub fn broken_refs(&self) -> Vec<String> {
        fn walk(spec: &Spec, value: &Value, at: &str, found: &mut Vec<String>) {
            match value {
                Value::Object(object) => {
                    if let Some(Value::String(reference)) = object.get("$ref")
                        && reference.starts_with('#')
                        && spec.resolve(value).is_err()
                    {
                        found.push(format!("{reference} at {at}"));
                    }
                    for (key, child) in object {
                        walk(spec, child, &format!("{at}/{}", escape_pointer(key)), found);
                    }
                }
                Value::Array(items) => {
                    for (i, child) in items.iter().enumerate() {
                        walk(spec, child, &format!("{at}/{i}"), found);
                    }
                }
                _ => {}
            }
        }
        let mut found = Vec::new();
        walk(self, &self.document, "", &mut found);
        found
    }

    /// Every operation as (METHOD, template), in document order.
    pub fn operations(&self) -> Vec<(String, String)> {
        object_entries(&self.document["paths"])
            .flat_map(|(template, path_item)| {
                object_entries(path_item)
                    .filter(|(method, _)| HTTP_METHODS.contains(&method.as_str()))
                    .map(|(method, _)| (method.to_ascii_uppercase(), template.clone()))
            })
            .collect()
    }

    /// Schema keywords used anywhere in the document that the checker neither supports nor
    /// knows to be documentation only, as `keyword at /json/pointer`.
    pub fn unsupported_keywords(&self) -> Vec<String> {
        let mut found = Vec::new();
        let mut visit = |schema: &Value, at: &str| collect_unsupported(schema, at, &mut found);
        match self.dialect {
            Dialect::Swagger2 => {
                for (name, schema) in object_entries(&self.document["definitions"]) {
                    visit(schema, &format!("/definitions/{name}"));
                }
            }
            Dialect::OpenApi3 => {
                for (name, schema) in object_entries(&self.document["components"]["schemas"]) {
                    visit(schema, &format!("/components/schemas/{name}"));
                }
            }
        }
        for (template, path_item) in object_entries(&self.document["paths"]) {
            for (method, operation) in object_entries(path_item) {
                let at = format!("/paths/{}/{method}", escape_pointer(template));
                for (i, parameter) in operation["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    if let Some(schema) = parameter.get("schema") {
                        visit(schema, &format!("{at}/parameters/{i}/schema"));
                    }
                }
                for (media, content) in object_entries(&operation["requestBody"]["content"]) {
                    visit(
                        &content["schema"],
                        &format!("{at}/requestBody/content/{}/schema", escape_pointer(media)),
                    );
                }
                for (status, response) in object_entries(&operation["responses"]) {
                    if let Some(schema) = response.get("schema") {
                        visit(schema, &format!("{at}/responses/{status}/schema"));
                    }
                    for (media, content) in object_entries(&response["content"]) {
                        visit(
                            &content["schema"],
                            &format!(
                                "{at}/responses/{status}/content/{}/schema",
                                escape_pointer(media)
                            ),
                        );
                    }
                }
            }
        }
        found
    }

    /// Resolve a `$ref` (if any) to the object it points at, with the referenced name.
    fn resolve<'s>(&'s self, value: &'s Value) -> Result<(Option<&'s str>, &'s Value), String> {
        match value.get("$ref").and_then(Value::as_str) {
            None => Ok((None, value)),
            Some(reference) => {
                let target = reference
                    .strip_prefix('#')
                    .and_then(|pointer| self.document.pointer(pointer))
                    .ok_or_else(|| {
                        format!("unresolvable $ref {reference:?} in the {} spec", self.title)
                    })?;
                let name = reference.rsplit('/').next();
                Ok((name, target))
            }
        }
    }

    /// A named schema with its name borrowed from the document.
    fn named_schema(&self, name: &str) -> Option<(&str, &Value)> {
        let schemas = match self.dialect {
            Dialect::Swagger2 => &self.document["definitions"],
            Dialect::OpenApi3 => &self.document["components"]["schemas"],
        };
        schemas
            .as_object()?
            .get_key_value(name)
            .map(|(key, schema)| (key.as_str(), schema))
    }

    /// Find the operation for a concrete path. Templates that declare the method compete;
    /// literal segments beat parameters, a uuid-typed parameter beats a plain one, and a
    /// plain one beats a multi-segment one, compared segment by segment from the left.
    fn find_operation(&self, method: &str, path: &str) -> Result<Operation<'_>, String> {
        let method_key = method.to_ascii_lowercase();
        if !path.starts_with('/') {
            return Err(format!("path {path:?} must start with '/'"));
        }
        let concrete: Vec<String> = split_path(path)
            .into_iter()
            .map(|s| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            })
            .collect();

        let mut best: Option<(Vec<u8>, Operation<'_>)> = None;
        let mut templates_without_method = Vec::new();
        for route in &self.routes {
            if !self.could_match(route, &concrete) {
                continue;
            }
            let path_item = &self.document["paths"][&route.template];
            let Some(definition) = path_item.get(&method_key) else {
                let mut rank = Vec::new();
                let mut values = Vec::new();
                if self.match_segments(&route.segments, &concrete, &[], &mut rank, &mut values) {
                    templates_without_method.push(route.template.as_str());
                }
                continue;
            };
            let parameters = self.operation_parameters(path_item, definition);
            let mut rank = Vec::new();
            let mut path_values = Vec::new();
            if !self.match_segments(
                &route.segments,
                &concrete,
                &parameters,
                &mut rank,
                &mut path_values,
            ) {
                continue;
            }
            if best.as_ref().is_none_or(|(best_rank, _)| rank > *best_rank) {
                best = Some((
                    rank,
                    Operation {
                        template: &route.template,
                        method: method.to_ascii_uppercase(),
                        definition,
                        parameters,
                        path_values,
                    },
                ));
            }
        }
        match best {
            Some((_, operation)) => Ok(operation),
            None if !templates_without_method.is_empty() => Err(format!(
                "{} {path}: the {} spec has no {} operation on {}",
                method.to_ascii_uppercase(),
                self.title,
                method.to_ascii_uppercase(),
                templates_without_method.join(", ")
            )),
            None => Err(format!(
                "{} {path}: no path in the {} spec matches",
                method.to_ascii_uppercase(),
                self.title
            )),
        }
    }

    /// Backtracking match of template segments against concrete ones; `rank` records, per
    /// template segment, how specific the match was (3 literal, 2 uuid, 1 parameter, 0
    /// multi-segment parameter).
    fn match_segments(
        &self,
        template: &[TemplateSegment],
        concrete: &[String],
        parameters: &[&Value],
        rank: &mut Vec<u8>,
        values: &mut Vec<(String, String)>,
    ) -> bool {
        let Some((segment, rest)) = template.split_first() else {
            return concrete.is_empty();
        };
        match segment {
            TemplateSegment::Literal(literal) => {
                if concrete.first() != Some(literal) {
                    return false;
                }
                rank.push(3);
                if self.match_segments(rest, &concrete[1..], parameters, rank, values) {
                    return true;
                }
                rank.pop();
                false
            }
            TemplateSegment::Param(name)
                if self.quirks.multi_segment_params.contains(&name.as_str()) =>
            {
                for take in 1..=concrete.len() {
                    if concrete[take - 1].is_empty() {
                        break;
                    }
                    rank.push(0);
                    values.push((name.clone(), concrete[..take].join("/")));
                    if self.match_segments(rest, &concrete[take..], parameters, rank, values) {
                        return true;
                    }
                    rank.pop();
                    values.pop();
                }
                false
            }
            TemplateSegment::Param(name) => {
                let Some(value) = concrete.first().filter(|v| !v.is_empty()) else {
                    return false;
                };
                let is_uuid_param = parameters
                    .iter()
                    .find(|p| p["in"] == "path" && p["name"] == name.as_str())
                    .is_some_and(|p| self.parameter_schema(p)["format"] == "uuid");
                if is_uuid_param && !is_uuid(value) {
                    return false;
                }
                rank.push(if is_uuid_param { 2 } else { 1 });
                values.push((name.clone(), value.clone()));
                if self.match_segments(rest, &concrete[1..], parameters, rank, values) {
                    return true;
                }
                rank.pop();
                values.pop();
                false
            }
        }
    }

    /// Path-level and operation-level parameters, `$ref`s resolved; the operation's win.
    fn operation_parameters<'s>(
        &'s self,
        path_item: &'s Value,
        operation: &'s Value,
    ) -> Vec<&'s Value> {
        let resolve_all = |list: &'s Value| -> Vec<&'s Value> {
            list.as_array()
                .into_iter()
                .flatten()
                .map(|p| self.resolve(p).map(|(_, p)| p).unwrap_or(p))
                .collect()
        };
        let own = resolve_all(&operation["parameters"]);
        let mut all: Vec<&Value> = resolve_all(&path_item["parameters"])
            .into_iter()
            .filter(|inherited| {
                !own.iter()
                    .any(|p| p["name"] == inherited["name"] && p["in"] == inherited["in"])
            })
            .collect();
        all.extend(own);
        all
    }

    /// The schema of a non-body parameter, as a schema.
    fn parameter_schema(&self, parameter: &Value) -> Value {
        match self.dialect {
            Dialect::OpenApi3 => parameter["schema"].clone(),
            Dialect::Swagger2 => {
                let mut schema = serde_json::Map::new();
                for keyword in ["type", "format", "items"] {
                    if let Some(v) = parameter.get(keyword) {
                        schema.insert(keyword.to_string(), v.clone());
                    }
                }
                Value::Object(schema)
            }
        }
    }

    fn declared_query_parameter<'p>(&self, declared: &[&'p Value], key: &str) -> Option<&'p Value> {
        let shape = self.query_name_shape(key)?;
        declared.iter().copied().find(|parameter| {
            let Some(name) = parameter["name"].as_str() else {
                return false;
            };
            let Some(declared_shape) = self.query_name_shape(name) else {
                return false;
            };
            // An array parameter may also be sent PHP-style as `name[]` or `name[0]`.
            shape == declared_shape
                || (self.parameter_schema(parameter)["type"] == "array"
                    && shape == format!("{declared_shape}[#]"))
        })
    }

    /// `searchCriteria[filter_groups][3][filters][0][field]` -> `searchCriteria[filterGroups][#][filters][#][field]`
    /// (snake_case folding only where the spec's system does it). `None` for a malformed name.
    fn query_name_shape(&self, name: &str) -> Option<String> {
        let fold = |part: &str| {
            if self.quirks.snake_case_query_names {
                snake_to_camel(part)
            } else {
                part.to_string()
            }
        };
        let (base, mut rest) = name.split_at(name.find('[').unwrap_or(name.len()));
        let mut shape = fold(base);
        while !rest.is_empty() {
            let inner = rest.strip_prefix('[')?;
            let end = inner.find(']')?;
            let index = &inner[..end];
            if index.is_empty() || index.bytes().all(|b| b.is_ascii_digit()) {
                shape.push_str("[#]");
            } else {
                shape.push('[');
                shape.push_str(&fold(index));
                shape.push(']');
            }
            rest = &inner[end + 1..];
        }
        Some(shape)
    }

    /// The body schema of an operation and whether the body is required.
    fn request_body<'s>(&'s self, operation: &Operation<'s>) -> Option<(&'s Value, bool)> {
        match self.dialect {
            Dialect::Swagger2 => operation
                .parameters
                .iter()
                .find(|p| p["in"] == "body")
                .map(|p| (&p["schema"], p["required"] == true)),
            Dialect::OpenApi3 => {
                let body = operation.definition.get("requestBody")?;
                let (_, body) = self.resolve(body).ok()?;
                let schema = body.pointer("/content/application~1json/schema")?;
                Some((schema, body["required"] == true))
            }
        }
    }
}

impl Spec {
    /// Cheap pre-filter before the full match: same segment count (without a multi-segment
    /// parameter) and equal literals up to the first multi-segment parameter.
    fn could_match(&self, route: &Route, concrete: &[String]) -> bool {
        let mut multi = false;
        for (i, segment) in route.segments.iter().enumerate() {
            match segment {
                TemplateSegment::Literal(literal) => {
                    if concrete.get(i) != Some(literal) {
                        return false;
                    }
                }
                TemplateSegment::Param(name) => {
                    if self.quirks.multi_segment_params.contains(&name.as_str()) {
                        multi = true;
                        break;
                    }
                }
            }
        }
        multi || route.segments.len() == concrete.len()
    }
}

impl Operation<'_> {
    fn parameter(&self, location: &str, name: &str) -> Option<&Value> {
        self.parameters
            .iter()
            .copied()
            .find(|p| p["in"] == location && p["name"] == name)
    }
}

/// What an object schema says about properties it does not list.
enum Additional<'s> {
    Forbidden,
    Any,
    Schema(&'s Value),
}

struct Validator<'s> {
    spec: &'s Spec,
    errors: Vec<String>,
    /// Whether `required` applies below the top level (see `request_required_top_level_only`).
    nested_required: bool,
    /// Checking a request body (see `request_delete_flag_base`).
    in_request: bool,
}

/// Deep enough for any real document, shallow enough to stop a cyclic `$ref` chain.
const MAX_DEPTH: usize = 128;

impl<'s> Validator<'s> {
    fn new(spec: &'s Spec) -> Self {
        Validator {
            spec,
            errors: Vec::new(),
            nested_required: true,
            in_request: false,
        }
    }

    fn finish(self, label: &str) -> Result<(), Vec<String>> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(self
                .errors
                .into_iter()
                .map(|e| format!("{label}: {e}"))
                .collect())
        }
    }

    fn validate_root(&mut self, schema: &'s Value, value: &Value, name: &str) {
        self.validate(schema, value, "", name, false, false, 0);
    }

    fn error(&mut self, at: &str, schema_name: &str, message: impl std::fmt::Display) {
        self.errors
            .push(format!("{at:?}: {message} (schema {schema_name})"));
    }

    /// `named` is true when `schema` is a named definition (reached through `$ref`): an
    /// object definition without properties then means "no properties", while an inline
    /// `{type: object}` means "any object". `discriminated` stops a discriminator from
    /// dispatching again from inside the schema it chose.
    #[allow(clippy::too_many_arguments)]
    fn validate(
        &mut self,
        schema: &'s Value,
        value: &Value,
        at: &str,
        name: &str,
        named: bool,
        discriminated: bool,
        depth: usize,
    ) {
        if depth > MAX_DEPTH {
            self.error(at, name, "schema nesting too deep (cyclic $ref?)");
            return;
        }
        if schema.get("$ref").is_some() {
            match self.spec.resolve(schema) {
                Ok((target_name, target)) => {
                    let target_name = target_name.unwrap_or(name);
                    self.validate(
                        target,
                        value,
                        at,
                        target_name,
                        true,
                        discriminated,
                        depth + 1,
                    );
                }
                Err(e) => self.error(at, name, e),
            }
            return;
        }

        let mut parts = Vec::new();
        if let Err(e) = self.flatten(schema, &mut parts, depth) {
            self.error(at, name, e);
            return;
        }

        if !discriminated && let Some(target) = self.discriminated_schema(&parts, value, at, name) {
            if let Some((target_name, target_schema)) = target {
                self.validate(target_schema, value, at, target_name, true, true, depth + 1);
            }
            return;
        }

        if value.is_null() {
            let nullable = parts.iter().any(|p| p["nullable"] == true);
            if let Some(part) = parts.iter().find(|p| p.get("type").is_some())
                && !nullable
            {
                let expected = type_names(part).join(" or ");
                self.error(at, name, format!("expected {expected}, found null"));
            }
            return;
        }

        for part in &parts {
            let expected = type_names(part);
            if !expected.is_empty() && !expected.iter().any(|t| type_matches(t, value)) {
                let expected = expected.join(" or ");
                self.error(
                    at,
                    name,
                    format!("expected {expected}, found {}", describe(value)),
                );
                return;
            }
        }
        for part in &parts {
            if let Some(format) = part["format"].as_str()
                && let Err(e) = check_format(format, value)
            {
                self.error(at, name, e);
            }
        }

        if let Some(items) = value.as_array() {
            if let Some(item_schema) = parts.iter().find_map(|p| p.get("items")) {
                for (i, item) in items.iter().enumerate() {
                    self.validate(
                        item_schema,
                        item,
                        &format!("{at}/{i}"),
                        name,
                        false,
                        false,
                        depth + 1,
                    );
                }
            }
            return;
        }

        let Some(object) = value.as_object() else {
            return;
        };
        let mut properties: BTreeMap<&str, &'s Value> = BTreeMap::new();
        let mut required: BTreeSet<&str> = BTreeSet::new();
        let mut additional = Additional::Forbidden;
        let mut declares_shape = false;
        for part in &parts {
            if let Some(declared) = part["properties"].as_object() {
                declares_shape = true;
                for (property, property_schema) in declared {
                    properties
                        .entry(property.as_str())
                        .or_insert(property_schema);
                }
            }
            for property in part["required"].as_array().into_iter().flatten() {
                if let Some(property) = property.as_str() {
                    required.insert(property);
                }
            }
            match part.get("additionalProperties") {
                None => {}
                Some(Value::Bool(false)) => declares_shape = true,
                Some(Value::Bool(true)) => {
                    declares_shape = true;
                    additional = Additional::Any;
                }
                Some(extra) => {
                    declares_shape = true;
                    additional = Additional::Schema(extra);
                }
            }
        }
        let is_object_type = parts.iter().any(|p| p["type"] == "object");
        let strict = declares_shape || (named && is_object_type);
        if !strict {
            // An inline `{type: object}` (or a schema with no type at all): any object.
            additional = Additional::Any;
        }

        let enforce_required = self.nested_required || at.is_empty();
        for property in &required {
            if enforce_required && !object.contains_key(*property) {
                self.error(at, name, format!("missing required property {property:?}"));
            }
        }
        let delete_flag_allowed = self.in_request
            && self
                .spec
                .quirks
                .request_delete_flag_base
                .and_then(|base| self.spec.named_schema(base))
                .is_some_and(|(_, base)| parts.iter().any(|p| std::ptr::eq(*p, base)));
        for (key, property_value) in object {
            let child_at = format!("{at}/{}", escape_pointer(key));
            if key == "delete" && delete_flag_allowed && !properties.contains_key("delete") {
                if !property_value.is_boolean() {
                    let found = describe(property_value);
                    self.error(&child_at, name, format!("expected boolean, found {found}"));
                }
                continue;
            }
            match (properties.get(key.as_str()), &additional) {
                (Some(_), _)
                    if property_value.is_null()
                        && self.spec.quirks.required_properties_may_be_null
                        && required.contains(key.as_str()) => {}
                (Some(property_schema), _) | (None, Additional::Schema(property_schema)) => {
                    self.validate(
                        property_schema,
                        property_value,
                        &child_at,
                        name,
                        false,
                        false,
                        depth + 1,
                    );
                }
                (None, Additional::Any) => {}
                (None, Additional::Forbidden) => {
                    self.error(&child_at, name, format!("property {key:?} is not declared"));
                }
            }
        }
    }

    /// The schema itself (without `allOf`) followed by every `allOf` member, `$ref`s resolved.
    fn flatten(
        &self,
        schema: &'s Value,
        parts: &mut Vec<&'s Value>,
        depth: usize,
    ) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err("allOf nesting too deep (cyclic $ref?)".into());
        }
        let (_, schema) = self.spec.resolve(schema)?;
        parts.push(schema);
        for member in schema["allOf"].as_array().into_iter().flatten() {
            self.flatten(member, parts, depth + 1)?;
        }
        Ok(())
    }

    /// With a `discriminator` (Acumatica's `CustomField`: `{"type": "CustomStringField", ...}`),
    /// the value's property names the schema that really applies. `None`: no dispatch, check
    /// here; `Some(None)`: dispatch failed and was reported; `Some(Some(..))`: check against it.
    #[allow(clippy::option_option)]
    fn discriminated_schema(
        &mut self,
        parts: &[&'s Value],
        value: &Value,
        at: &str,
        name: &str,
    ) -> Option<Option<(&'s str, &'s Value)>> {
        let property = parts
            .iter()
            .find_map(|p| p["discriminator"]["propertyName"].as_str())?;
        let chosen = value.get(property)?.as_str()?;
        match self.spec.named_schema(chosen) {
            Some(target) if chosen != name => Some(Some(target)),
            Some(_) => None,
            None => {
                self.error(
                    at,
                    name,
                    format!("discriminator {property:?} is {chosen:?}, which names no schema"),
                );
                Some(None)
            }
        }
    }
}

/// Where the Magento document differs from what Magento sends and the project relies on what
/// Magento sends (DESIGN.md section 7). Kept to the minimum; each patch says why.
fn patch_magento(document: &mut Value) {
    // An error's `parameters`: Magento sends an array for positional placeholders
    // (`"%1"` -> `["sku"]`) and an object for named ones (`"%fieldName"` ->
    // `{"fieldName": "sku"}`); the document declares only an array of objects.
    document["definitions"]["error-parameters"] = serde_json::json!({
        "type": ["array", "object"],
        "description": "connector test patch: positional (array) or named (object) placeholder values",
        "items": {},
        "additionalProperties": true
    });
}

fn collect_unsupported(schema: &Value, at: &str, found: &mut Vec<String>) {
    let Some(object) = schema.as_object() else {
        return;
    };
    for (keyword, child) in object {
        let child_at = format!("{at}/{}", escape_pointer(keyword));
        match keyword.as_str() {
            "properties" => {
                for (property, property_schema) in object_entries(child) {
                    collect_unsupported(
                        property_schema,
                        &format!("{child_at}/{}", escape_pointer(property)),
                        found,
                    );
                }
            }
            "items" | "additionalProperties" => collect_unsupported(child, &child_at, found),
            "allOf" => {
                for (i, member) in child.as_array().into_iter().flatten().enumerate() {
                    collect_unsupported(member, &format!("{child_at}/{i}"), found);
                }
            }
            k if SUPPORTED_KEYWORDS.contains(&k) || ANNOTATION_KEYWORDS.contains(&k) => {}
            other => found.push(format!("{other} at {at}")),
        }
    }
}

fn object_entries(value: &Value) -> impl Iterator<Item = (&String, &Value)> {
    value.as_object().into_iter().flatten()
}

fn read_document(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

/// Segments of a path without its leading '/'; `/a/b/` gives `["a", "b", ""]`.
fn split_path(path: &str) -> Vec<&str> {
    path.strip_prefix('/').unwrap_or(path).split('/').collect()
}

fn escape_pointer(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

fn snake_to_camel(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper_next = false;
    for c in name.chars() {
        if c == '_' && !out.is_empty() {
            upper_next = true;
        } else if upper_next {
            out.extend(c.to_uppercase());
            upper_next = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// `type` as a list: one name in the documents, a list only in [`patch_magento`].
fn type_names(schema: &Value) -> Vec<&str> {
    match &schema["type"] {
        Value::String(name) => vec![name.as_str()],
        Value::Array(names) => names.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn type_matches(expected: &str, value: &Value) -> bool {
    match expected {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        // An unknown type name is a spec problem, reported by `unsupported_keywords` tests.
        _ => true,
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) if n.is_f64() => format!("number {n}"),
        Value::Number(n) => format!("integer {n}"),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "array".into(),
        Value::Object(_) => "object".into(),
    }
}

/// Checks the formats the documents use where a check is cheap and certain. `uri` is not
/// checked: Acumatica's `FileLink.href` is a relative reference in practice.
fn check_format(format: &str, value: &Value) -> Result<(), String> {
    match format {
        "int32" if value.as_i64().is_none_or(|n| i32::try_from(n).is_err()) => {
            Err(format!("{} is outside int32", describe(value)))
        }
        "int64" if value.as_i64().is_none() => Err(format!("{} is outside int64", describe(value))),
        "uuid" if value.as_str().is_some_and(|s| !is_uuid(s)) => {
            Err(format!("{} is not a uuid", describe(value)))
        }
        "date-time"
            if value
                .as_str()
                .is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_err()) =>
        {
            Err(format!(
                "{} is not an RFC 3339 date-time (with offset)",
                describe(value)
            ))
        }
        _ => Ok(()),
    }
}

/// A path or query value (text) against a scalar parameter schema.
fn check_text_value(schema: &Value, text: &str) -> Result<(), String> {
    let ok = match schema["type"].as_str() {
        Some("integer") => text.parse::<i64>().is_ok(),
        Some("number") => text.parse::<f64>().is_ok_and(f64::is_finite),
        Some("boolean") => matches!(text, "true" | "false" | "1" | "0"),
        _ => true,
    };
    if !ok {
        return Err(format!(
            "expected {}",
            schema["type"].as_str().unwrap_or("?")
        ));
    }
    match schema["format"].as_str() {
        Some("uuid") if !is_uuid(text) => Err("expected a uuid".into()),
        Some("int32") if text.parse::<i32>().is_err() => Err("expected an int32".into()),
        _ => Ok(()),
    }
}

fn is_uuid(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}
