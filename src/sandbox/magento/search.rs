//! `searchCriteria` as Magento's REST layer reads it from a query string and as its
//! collections apply it: filters inside a group are ORed, groups are ANDed, several sort
//! orders, `pageSize`/`currentPage`, and the collection quirk that a page past the end
//! returns the last page again.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::errors::{ApiError, ApiResult};
use super::oauth1::query_pairs;

/// `webapi/validation/maximum_page_size` and `default_page_size` (Stores → Configuration →
/// Services → Magento Web API → Web API Input Limits), enforced only when limits are on.
pub const MAX_PAGE_SIZE: u64 = 300;
pub const DEFAULT_PAGE_SIZE: u64 = 20;

#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub field: String,
    pub value: Option<String>,
    pub condition_type: Option<String>,
}

#[derive(Debug, Clone)]
pub struct SortOrder {
    pub field: String,
    pub direction: String,
}

#[derive(Debug, Clone, Default)]
pub struct SearchCriteria {
    pub filter_groups: Vec<Vec<Filter>>,
    pub sort_orders: Vec<SortOrder>,
    pub page_size: Option<u64>,
    pub current_page: Option<u64>,
}

/// A nested tree of bracketed query keys: `a[b][0][c]=v`.
#[derive(Debug, Default)]
struct Node {
    value: Option<String>,
    children: BTreeMap<String, Node>,
}

impl Node {
    fn insert(&mut self, path: &[String], value: String) {
        match path.split_first() {
            None => self.value = Some(value),
            Some((head, rest)) => self
                .children
                .entry(head.clone())
                .or_default()
                .insert(rest, value),
        }
    }

    /// Children in index order (`0`, `1`, `10` sorted numerically).
    fn indexed(&self) -> Vec<&Node> {
        let mut entries: Vec<(&String, &Node)> = self.children.iter().collect();
        entries.sort_by_key(|(k, _)| k.parse::<u64>().unwrap_or(u64::MAX));
        entries.into_iter().map(|(_, v)| v).collect()
    }
}

fn split_key(key: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let (head, mut rest) = match key.find('[') {
        Some(i) => (&key[..i], &key[i..]),
        None => (key, ""),
    };
    parts.push(head.to_string());
    while let Some(stripped) = rest.strip_prefix('[') {
        match stripped.find(']') {
            Some(end) => {
                parts.push(stripped[..end].to_string());
                rest = &stripped[end + 1..];
            }
            None => break,
        }
    }
    parts
}

/// camelCase → snake_case, as the REST layer accepts either spelling.
fn snake(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn parse_uint(field: &str, raw: &str) -> ApiResult<u64> {
    raw.trim()
        .parse::<i64>()
        .map(|n| n.max(0) as u64)
        .map_err(|_| ApiError::invalid_type(field, &json!(raw), "int"))
}

/// Reads `searchCriteria[...]` from a raw query string. `None` when the query has no
/// `searchCriteria` at all (the caller decides whether that is an error).
pub fn parse(raw_query: Option<&str>) -> ApiResult<Option<SearchCriteria>> {
    let mut root = Node::default();
    let mut seen = false;
    for (key, value) in query_pairs(raw_query.unwrap_or("")) {
        let parts = split_key(&key);
        if parts[0] != "searchCriteria" && parts[0] != "search_criteria" {
            continue;
        }
        seen = true;
        root.insert(&parts[1..], value);
    }
    if !seen {
        return Ok(None);
    }
    let mut criteria = SearchCriteria::default();
    for (name, node) in &root.children {
        match snake(name).as_str() {
            "filter_groups" => {
                for group in node.indexed() {
                    let mut filters = Vec::new();
                    for (gname, gnode) in &group.children {
                        if snake(gname) != "filters" {
                            return Err(ApiError::not_supported(&snake(gname)));
                        }
                        for f in gnode.indexed() {
                            let mut filter = Filter::default();
                            for (fname, fnode) in &f.children {
                                let v = fnode.value.clone();
                                match snake(fname).as_str() {
                                    "field" => filter.field = v.unwrap_or_default(),
                                    "value" => filter.value = v,
                                    "condition_type" => filter.condition_type = v,
                                    other => return Err(ApiError::not_supported(other)),
                                }
                            }
                            filters.push(filter);
                        }
                    }
                    criteria.filter_groups.push(filters);
                }
            }
            "sort_orders" => {
                for s in node.indexed() {
                    let mut field = String::new();
                    let mut direction = "ASC".to_string();
                    for (sname, snode) in &s.children {
                        let v = snode.value.clone().unwrap_or_default();
                        match snake(sname).as_str() {
                            "field" => field = v,
                            "direction" => direction = v.to_ascii_uppercase(),
                            other => return Err(ApiError::not_supported(other)),
                        }
                    }
                    criteria.sort_orders.push(SortOrder { field, direction });
                }
            }
            "page_size" => {
                criteria.page_size =
                    Some(parse_uint("pageSize", node.value.as_deref().unwrap_or(""))?)
            }
            "current_page" => {
                criteria.current_page = Some(parse_uint(
                    "currentPage",
                    node.value.as_deref().unwrap_or(""),
                )?)
            }
            // `searchCriteria=` alone, or an empty `searchCriteria[]`: "everything".
            "" => {}
            other => return Err(ApiError::not_supported(other)),
        }
    }
    Ok(Some(criteria))
}

/// Applies Magento's Web API input limits to the criteria (`SearchCriteriaValidator`,
/// `DefaultPageSizeSetter`), when the store has them on.
pub fn apply_input_limits(criteria: &mut SearchCriteria) -> ApiResult<()> {
    match criteria.page_size {
        Some(size) if size > MAX_PAGE_SIZE => Err(ApiError::bad_request(
            "Maximum SearchCriteria pageSize is %max",
        )
        .with_named(&[("max", json!(MAX_PAGE_SIZE))])),
        Some(_) => Ok(()),
        None => {
            criteria.page_size = Some(DEFAULT_PAGE_SIZE);
            Ok(())
        }
    }
}

/// The value of `field` in a record: a top-level property, else a product custom attribute.
fn field_value<'a>(record: &'a Value, field: &str) -> Option<&'a Value> {
    if let Some(v) = record.get(field) {
        return if v.is_null() { None } else { Some(v) };
    }
    record
        .get("custom_attributes")
        .and_then(Value::as_array)
        .and_then(|attrs| {
            attrs
                .iter()
                .find(|a| a.get("attribute_code").and_then(Value::as_str) == Some(field))
        })
        .and_then(|a| a.get("value"))
}

fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Compares as numbers when both sides are numbers, else as strings (dates in
/// `Y-m-d H:i:s` compare correctly as strings).
fn compare(a: &str, b: &str) -> Ordering {
    match (a.trim().parse::<f64>(), b.trim().parse::<f64>()) {
        (Ok(x), Ok(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        _ => a.cmp(b),
    }
}

/// SQL `LIKE` with `%` and `_`, case-insensitive as MySQL's default collation is.
fn like(text: &str, pattern: &str) -> bool {
    fn go(t: &[char], p: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('%', rest)) => (0..=t.len()).any(|i| go(&t[i..], rest)),
            Some(('_', rest)) => !t.is_empty() && go(&t[1..], rest),
            Some((c, rest)) => t.first() == Some(c) && go(&t[1..], rest),
        }
    }
    let t: Vec<char> = text.to_lowercase().chars().collect();
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    go(&t, &p)
}

fn matches(record: &Value, filter: &Filter) -> bool {
    let actual = field_value(record, &filter.field).map(as_text);
    let wanted = filter.value.clone().unwrap_or_default();
    let list = || -> Vec<String> { wanted.split(',').map(|s| s.trim().to_string()).collect() };
    let condition = filter.condition_type.as_deref().unwrap_or("eq");
    match condition {
        "null" => actual.is_none(),
        "notnull" => actual.is_some(),
        _ => {
            let Some(actual) = actual else {
                // SQL: a comparison with NULL is never true.
                return false;
            };
            match condition {
                "neq" => compare(&actual, &wanted) != Ordering::Equal,
                "gt" => compare(&actual, &wanted) == Ordering::Greater,
                "gteq" | "from" | "moreq" => compare(&actual, &wanted) != Ordering::Less,
                "lt" => compare(&actual, &wanted) == Ordering::Less,
                "lteq" | "to" => compare(&actual, &wanted) != Ordering::Greater,
                "like" => like(&actual, &wanted),
                "nlike" => !like(&actual, &wanted),
                "in" => list()
                    .iter()
                    .any(|w| compare(&actual, w) == Ordering::Equal),
                "nin" => !list()
                    .iter()
                    .any(|w| compare(&actual, w) == Ordering::Equal),
                "finset" => actual.split(',').any(|part| part.trim() == wanted),
                "nfinset" => !actual.split(',').any(|part| part.trim() == wanted),
                _ => compare(&actual, &wanted) == Ordering::Equal,
            }
        }
    }
}

/// Filters, sorts and pages `records`, returning the search-results body
/// (`items`, `search_criteria`, `total_count`). `id_field` is the default order.
pub fn run(records: Vec<Value>, criteria: &SearchCriteria, id_field: &str) -> Value {
    let mut hits: Vec<Value> = records
        .into_iter()
        .filter(|r| {
            criteria
                .filter_groups
                .iter()
                .all(|group| group.is_empty() || group.iter().any(|f| matches(r, f)))
        })
        .collect();
    hits.sort_by(|a, b| {
        for order in &criteria.sort_orders {
            let x = field_value(a, &order.field).map(as_text);
            let y = field_value(b, &order.field).map(as_text);
            // NULL sorts first ascending, as in MySQL.
            let ord = match (x, y) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Less,
                (Some(_), None) => Ordering::Greater,
                (Some(x), Some(y)) => compare(&x, &y),
            };
            let ord = if order.direction == "DESC" {
                ord.reverse()
            } else {
                ord
            };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        compare(
            &field_value(a, id_field).map(as_text).unwrap_or_default(),
            &field_value(b, id_field).map(as_text).unwrap_or_default(),
        )
    });
    let total = hits.len() as u64;
    let items: Vec<Value> = match criteria.page_size {
        Some(size) if size > 0 => {
            // `AbstractDb::getCurPage`: below 1 is 1, past the last page is the last page.
            let last_page = total.div_ceil(size).max(1);
            let page = criteria.current_page.unwrap_or(1).clamp(1, last_page);
            hits.into_iter()
                .skip(((page - 1) * size) as usize)
                .take(size as usize)
                .collect()
        }
        _ => hits,
    };
    json!({
        "items": items,
        "search_criteria": echo(criteria),
        "total_count": total,
    })
}

/// The criteria as Magento echoes them in `search_criteria`.
pub fn echo(criteria: &SearchCriteria) -> Value {
    let groups: Vec<Value> = criteria
        .filter_groups
        .iter()
        .map(|filters| {
            let filters: Vec<Value> = filters
                .iter()
                .map(|f| {
                    let mut m = Map::new();
                    m.insert("field".into(), json!(f.field));
                    m.insert("value".into(), json!(f.value.clone().unwrap_or_default()));
                    if let Some(c) = &f.condition_type {
                        m.insert("condition_type".into(), json!(c));
                    }
                    Value::Object(m)
                })
                .collect();
            json!({ "filters": filters })
        })
        .collect();
    let mut out = Map::new();
    out.insert("filter_groups".into(), Value::Array(groups));
    if !criteria.sort_orders.is_empty() {
        out.insert(
            "sort_orders".into(),
            Value::Array(
                criteria
                    .sort_orders
                    .iter()
                    .map(|s| json!({"field": s.field, "direction": s.direction}))
                    .collect(),
            ),
        );
    }
    if let Some(size) = criteria.page_size {
        out.insert("page_size".into(), json!(size));
    }
    if let Some(page) = criteria.current_page {
        out.insert("current_page".into(), json!(page));
    }
    Value::Object(out)
}
