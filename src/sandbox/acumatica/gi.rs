//! Generic Inquiries (screen SM208000): their definitions, the checks a push notification makes
//! on them, and their execution over the simulated tables.
//!
//! Public API:
//! - [`GenericInquiry`] (tables with aliases, relations with ON pairs, conditions, result
//!   columns, grouping/aggregates/formulas, "expose via OData").
//! - [`GenericInquiry::validate`]: a definition that can run at all (aliases, fields, tables).
//! - [`GenericInquiry::push_refusal`]: why a GI cannot be a push notification source, if it
//!   cannot (grouping, aggregates, formulas, joins of several detail tables).
//! - [`GenericInquiry::execute`]`(&dyn TableSource)`: flat rows keyed by column name.
//! - [`GenericInquiry::column_type`]: each column's [`FieldType`], for `$filter` and for the
//!   tenant-local date formatting of push rows.
//! - [`GiCatalog`]: the tenant's GIs by name, shared by the endpoint, OData and push.
//!
//! Conditions combine with AND only (the connector's GIs need nothing else); a condition whose
//! value is a parameter (`[Name]`) with no default value is skipped, as Acumatica skips
//! conditions whose parameter is empty.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::Serialize;
use serde_json::Value;

use super::odata::{FieldType, parse_stored_datetime};
use super::tables::{Row, TABLES, TableSource};

/// Tables that are details of another record (lines, per-warehouse quantities): a push GI may
/// join at most one of them.
pub const DETAIL_TABLES: &[&str] = &["SOLine", "SOShipLine", "SOPackageDetail", "INSiteStatus"];

/// The type of a DAC field, from its name (the tables carry plain JSON values).
pub fn dac_field_type(field: &str) -> FieldType {
    const NUMBERS: &[&str] = &[
        "BasePrice",
        "BaseWeight",
        "QtyOnHand",
        "QtyAvail",
        "CuryOrderTotal",
        "CuryFreightTot",
        "CuryTaxTotal",
        "CuryDiscTot",
        "LineNbr",
        "OrderQty",
        "CuryUnitPrice",
        "CuryDiscAmt",
        "CuryLineAmt",
        "ShippedQty",
        "OrigLineNbr",
    ];
    if NUMBERS.contains(&field) {
        FieldType::Number
    } else if field == "Confirmed" {
        FieldType::Boolean
    } else if field == "NoteID" {
        FieldType::Guid
    } else if field.ends_with("DateTime") || field.ends_with("Date") {
        FieldType::DateTime
    } else {
        FieldType::String
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GiTable {
    /// DAC name as in `tables.rs` (`InventoryItem`); `PX.Objects.IN.InventoryItem` is accepted
    /// and shortened.
    pub table: String,
    pub alias: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum JoinType {
    Inner,
    Left,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GiRelation {
    pub parent_alias: String,
    pub child_alias: String,
    pub join: JoinType,
    /// ON pairs (parent field, child field), all equal.
    pub on: Vec<(String, String)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ConditionOp {
    Equals,
    NotEqual,
    Greater,
    GreaterOrEqual,
    Less,
    LessOrEqual,
    Contains,
    StartsWith,
    IsNull,
    IsNotNull,
}

impl ConditionOp {
    /// Reads the operator as Acumatica's GIWhere.Condition codes or their names.
    pub fn parse(s: &str) -> Option<ConditionOp> {
        Some(match s {
            "E" | "Equals" | "eq" => ConditionOp::Equals,
            "NE" | "DoesNotEqual" | "NotEqual" | "ne" => ConditionOp::NotEqual,
            "G" | "IsGreaterThan" | "Greater" | "gt" => ConditionOp::Greater,
            "GE" | "IsGreaterThanOrEqualTo" | "GreaterOrEqual" | "ge" => {
                ConditionOp::GreaterOrEqual
            }
            "L" | "IsLessThan" | "Less" | "lt" => ConditionOp::Less,
            "LE" | "IsLessThanOrEqualTo" | "LessOrEqual" | "le" => ConditionOp::LessOrEqual,
            "LI" | "Contains" => ConditionOp::Contains,
            "RL" | "StartsWith" => ConditionOp::StartsWith,
            "NU" | "IsEmpty" | "IsNull" => ConditionOp::IsNull,
            "NN" | "IsNotEmpty" | "IsNotNull" => ConditionOp::IsNotNull,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum ConditionValue {
    None,
    Constant(Value),
    /// `[ParamName]`: the parameter's default, or the condition is skipped.
    Parameter(String),
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GiCondition {
    /// `Alias.Field`.
    pub field: String,
    pub op: ConditionOp,
    pub value: ConditionValue,
    pub active: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GiResult {
    pub alias: String,
    /// A DAC field, or a formula starting with `=`.
    pub field: String,
    /// The column name in OData and push rows; empty: derived (see [`GenericInquiry::columns`]).
    pub caption: String,
    /// `SUM`, `COUNT`, … or empty.
    pub aggregate: String,
    pub active: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GenericInquiry {
    /// The inquiry title: the `Query` of push notifications and the OData entity set name.
    pub name: String,
    /// GIDesign.DesignID, a GUID.
    pub design_id: String,
    pub expose_via_odata: bool,
    pub tables: Vec<GiTable>,
    pub relations: Vec<GiRelation>,
    pub conditions: Vec<GiCondition>,
    /// Parameter name → default value.
    pub parameters: BTreeMap<String, Value>,
    pub group_by: Vec<String>,
    pub results: Vec<GiResult>,
}

/// A column of a GI's output.
#[derive(Clone, Debug, PartialEq)]
pub struct GiColumn {
    pub name: String,
    pub alias: String,
    pub field: String,
    pub field_type: FieldType,
}

fn short_table(name: &str) -> &str {
    name.rsplit('.').next().unwrap_or(name)
}

fn table_known(table: &str) -> bool {
    TABLES.iter().any(|(t, _)| *t == table)
}

impl GenericInquiry {
    /// The output columns in order. A caption names the column; without one the field name
    /// does, or `Alias_Field` where two results share a field name (as Acumatica disambiguates).
    pub fn columns(&self) -> Vec<GiColumn> {
        let active: Vec<&GiResult> = self.results.iter().filter(|r| r.active).collect();
        active
            .iter()
            .map(|r| {
                let shared = active
                    .iter()
                    .filter(|o| o.field == r.field && o.caption.is_empty())
                    .count()
                    > 1;
                let name = if !r.caption.is_empty() {
                    r.caption.clone()
                } else if shared {
                    format!("{}_{}", r.alias, r.field)
                } else {
                    r.field.clone()
                };
                GiColumn {
                    name,
                    alias: r.alias.clone(),
                    field: r.field.clone(),
                    field_type: if r.field.starts_with('=') {
                        FieldType::String
                    } else {
                        dac_field_type(&r.field)
                    },
                }
            })
            .collect()
    }

    /// The type of an output column, for `$filter`.
    pub fn column_type(&self, column: &str) -> Option<FieldType> {
        self.columns()
            .into_iter()
            .find(|c| c.name == column)
            .map(|c| c.field_type)
    }

    fn table_of(&self, alias: &str) -> Option<&str> {
        self.tables
            .iter()
            .find(|t| t.alias == alias)
            .map(|t| short_table(&t.table))
    }

    /// Refuses a definition that cannot run: no tables, an unknown table, an alias used twice or
    /// not defined, a result or condition on an unknown alias.
    pub fn validate(&self) -> Result<(), String> {
        if self.name.trim().is_empty() {
            return Err("'Inquiry Title' cannot be empty.".into());
        }
        if self.tables.is_empty() {
            return Err(format!(
                "The generic inquiry '{}' has no tables; add at least one data source.",
                self.name
            ));
        }
        for (i, t) in self.tables.iter().enumerate() {
            if !table_known(short_table(&t.table)) {
                return Err(format!(
                    "The table '{}' cannot be found in the system.",
                    t.table
                ));
            }
            if self.tables[..i].iter().any(|o| o.alias == t.alias) {
                return Err(format!("The alias '{}' is used more than once.", t.alias));
            }
        }
        let known = |alias: &str| self.table_of(alias).is_some();
        for r in &self.relations {
            for alias in [&r.parent_alias, &r.child_alias] {
                if !known(alias) {
                    return Err(format!(
                        "The relation refers to the unknown table '{alias}'."
                    ));
                }
            }
        }
        for c in &self.conditions {
            let alias = c.field.split('.').next().unwrap_or("");
            if !known(alias) || !c.field.contains('.') {
                return Err(format!(
                    "The condition field '{}' cannot be found.",
                    c.field
                ));
            }
        }
        for r in &self.results {
            if !known(&r.alias) {
                return Err(format!(
                    "The result refers to the unknown table '{}'.",
                    r.alias
                ));
            }
        }
        Ok(())
    }

    pub fn has_formulas(&self) -> bool {
        self.results.iter().any(|r| r.field.starts_with('='))
    }

    pub fn has_aggregates(&self) -> bool {
        self.results.iter().any(|r| !r.aggregate.is_empty())
    }

    /// Why this GI cannot be the source of a push notification, or `None` if it can.
    ///
    /// Acumatica requires push queries without grouping, aggregation or formulas, joining at
    /// most one detail table (the help's "Recommendations for the Data Queries"). The wording is
    /// the simulation's own: the exact text of Acumatica's message was not found in the
    /// available sources.
    pub fn push_refusal(&self) -> Option<String> {
        let reason = if !self.group_by.is_empty() {
            "grouping"
        } else if self.has_aggregates() {
            "aggregation"
        } else if self.has_formulas() {
            "formulas"
        } else {
            let details = self
                .tables
                .iter()
                .filter(|t| DETAIL_TABLES.contains(&short_table(&t.table)))
                .count();
            if details > 1 {
                "joins of several detail tables"
            } else {
                return None;
            }
        };
        Some(format!(
            "The '{}' generic inquiry cannot be used for push notifications because it contains {reason}. Push notifications support only inquiries without grouping, aggregation, formulas, and joins of multiple detail tables.",
            self.name
        ))
    }

    /// Runs the inquiry: joins, conditions (AND), result columns. Rows come in the order of the
    /// first table, then of each joined table.
    pub fn execute(&self, source: &dyn TableSource) -> Result<Vec<Row>, String> {
        self.execute_where(source, &|_| true)
    }

    /// The columns among `names` that are plain fields of the first table, as (column,
    /// field) — `None` when any is not. A filter on those columns alone can be applied to the
    /// first table's rows before the joins: every result row carries its first-table row's
    /// values unchanged, whatever the joins add or drop.
    pub fn first_table_fields(&self, names: &[String]) -> Option<Vec<(String, String)>> {
        let first = &self.tables.first()?.alias;
        let columns = self.columns();
        names
            .iter()
            .map(|name| {
                columns
                    .iter()
                    .find(|c| &c.name == name && &c.alias == first && !c.field.starts_with('='))
                    .map(|c| (c.name.clone(), c.field.clone()))
            })
            .collect()
    }

    /// [`GenericInquiry::execute`] with the first table's rows narrowed by `keep` before the
    /// joins, as a database applies a `WHERE` on the driving table first. Building every row
    /// of a 100,000-item inquiry to answer an incremental read that matches none took the
    /// simulation 0.5–1 s per read.
    pub fn execute_where(
        &self,
        source: &dyn TableSource,
        keep: &dyn Fn(&Row) -> bool,
    ) -> Result<Vec<Row>, String> {
        self.validate()?;
        let first = &self.tables[0];
        let mut joined: Vec<BTreeMap<String, Row>> = source
            .rows_where(short_table(&first.table), keep)
            .ok_or_else(|| format!("The table '{}' cannot be found in the system.", first.table))?
            .into_iter()
            .map(|row| BTreeMap::from([(first.alias.clone(), row)]))
            .collect();
        let mut placed = vec![first.alias.clone()];
        for table in &self.tables[1..] {
            let relation = self.relations.iter().find(|r| {
                (r.child_alias == table.alias && placed.contains(&r.parent_alias))
                    || (r.parent_alias == table.alias && placed.contains(&r.child_alias))
            });
            let rows = source.rows(short_table(&table.table)).ok_or_else(|| {
                format!("The table '{}' cannot be found in the system.", table.table)
            })?;
            let mut next = Vec::new();
            for combo in joined {
                let matching: Vec<&Row> = match relation {
                    None => rows.iter().collect(), // no relation: a cross join, as SQL does
                    Some(r) => rows
                        .iter()
                        .filter(|candidate| {
                            r.on.iter().all(|(parent_field, child_field)| {
                                let (here_alias, here_field, there_field) =
                                    if r.child_alias == table.alias {
                                        (&r.parent_alias, parent_field, child_field)
                                    } else {
                                        (&r.child_alias, child_field, parent_field)
                                    };
                                let here = combo.get(here_alias).and_then(|row| row.get(here_field));
                                let there = candidate.get(there_field);
                                matches!((here, there), (Some(a), Some(b)) if !a.is_null() && a == b)
                            })
                        })
                        .collect(),
                };
                let left = relation.is_some_and(|r| r.join == JoinType::Left);
                if matching.is_empty() {
                    if left {
                        next.push(combo);
                    }
                    continue;
                }
                for m in matching {
                    let mut extended = combo.clone();
                    extended.insert(table.alias.clone(), m.clone());
                    next.push(extended);
                }
            }
            joined = next;
            placed.push(table.alias.clone());
        }

        let columns = self.columns();
        let mut out = Vec::new();
        for combo in joined {
            if !self.conditions_hold(&combo) {
                continue;
            }
            let mut row = Row::new();
            for c in &columns {
                let value = if c.field.starts_with('=') {
                    Value::Null
                } else {
                    combo
                        .get(&c.alias)
                        .and_then(|r| r.get(&c.field))
                        .cloned()
                        .unwrap_or(Value::Null)
                };
                row.insert(c.name.clone(), value);
            }
            out.push(row);
        }
        Ok(out)
    }

    fn conditions_hold(&self, combo: &BTreeMap<String, Row>) -> bool {
        self.conditions.iter().filter(|c| c.active).all(|c| {
            let (alias, field) = c.field.split_once('.').unwrap_or(("", ""));
            let actual = combo
                .get(alias)
                .and_then(|r| r.get(field))
                .unwrap_or(&Value::Null);
            let expected = match &c.value {
                ConditionValue::None => Value::Null,
                ConditionValue::Constant(v) => v.clone(),
                ConditionValue::Parameter(p) => match self.parameters.get(p) {
                    Some(v) if !v.is_null() && v != "" => v.clone(),
                    _ => return true,
                },
            };
            condition_holds(c.op, actual, &expected, dac_field_type(field))
        })
    }
}

fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn compare(actual: &Value, expected: &Value, t: FieldType) -> Option<std::cmp::Ordering> {
    match t {
        FieldType::Number => {
            let a = actual.as_f64().or_else(|| actual.as_str()?.parse().ok())?;
            let b = expected
                .as_f64()
                .or_else(|| expected.as_str()?.parse().ok())?;
            a.partial_cmp(&b)
        }
        FieldType::DateTime => {
            let a = parse_stored_datetime(actual.as_str()?)?;
            let b = parse_stored_datetime(expected.as_str()?)?;
            Some(a.cmp(&b))
        }
        FieldType::Boolean => {
            let a = actual.as_bool()?;
            let b = expected.as_bool().or_else(|| match expected.as_str()? {
                "true" | "True" | "1" => Some(true),
                "false" | "False" | "0" => Some(false),
                _ => None,
            })?;
            Some(a.cmp(&b))
        }
        FieldType::String | FieldType::Guid => Some(
            as_text(actual)?
                .to_lowercase()
                .cmp(&as_text(expected)?.to_lowercase()),
        ),
    }
}

fn condition_holds(op: ConditionOp, actual: &Value, expected: &Value, t: FieldType) -> bool {
    use std::cmp::Ordering::*;
    match op {
        ConditionOp::IsNull => actual.is_null() || actual == "",
        ConditionOp::IsNotNull => !(actual.is_null() || actual == ""),
        ConditionOp::Contains | ConditionOp::StartsWith => {
            let (Some(a), Some(b)) = (as_text(actual), as_text(expected)) else {
                return false;
            };
            let (a, b) = (a.to_lowercase(), b.to_lowercase());
            if op == ConditionOp::Contains {
                a.contains(&b)
            } else {
                a.starts_with(&b)
            }
        }
        _ => match compare(actual, expected, t) {
            None => op == ConditionOp::NotEqual && actual.is_null() != expected.is_null(),
            Some(o) => match op {
                ConditionOp::Equals => o == Equal,
                ConditionOp::NotEqual => o != Equal,
                ConditionOp::Greater => o == Greater,
                ConditionOp::GreaterOrEqual => o != Less,
                ConditionOp::Less => o == Less,
                ConditionOp::LessOrEqual => o != Greater,
                _ => false,
            },
        },
    }
}

/// The tenant's Generic Inquiries by name.
#[derive(Default)]
pub struct GiCatalog {
    inquiries: Mutex<BTreeMap<String, GenericInquiry>>,
}

impl GiCatalog {
    pub fn new() -> GiCatalog {
        GiCatalog::default()
    }

    /// Inserts or replaces by name, after [`GenericInquiry::validate`].
    pub fn put(&self, gi: GenericInquiry) -> Result<(), String> {
        gi.validate()?;
        self.lock().insert(gi.name.clone(), gi);
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<GenericInquiry> {
        self.lock().get(name).cloned()
    }

    /// By name or by DesignID (push sources refer to a GI either way).
    pub fn find(&self, name_or_design_id: &str) -> Option<GenericInquiry> {
        let map = self.lock();
        map.get(name_or_design_id).cloned().or_else(|| {
            map.values()
                .find(|g| g.design_id.eq_ignore_ascii_case(name_or_design_id))
                .cloned()
        })
    }

    pub fn remove(&self, name: &str) -> Option<GenericInquiry> {
        self.lock().remove(name)
    }

    pub fn all(&self) -> Vec<GenericInquiry> {
        self.lock().values().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, GenericInquiry>> {
        self.inquiries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Fake(BTreeMap<String, Vec<Row>>);

    impl TableSource for Fake {
        fn rows(&self, table: &str) -> Option<Vec<Row>> {
            self.0.get(table).cloned()
        }
    }

    fn row(pairs: &[(&str, Value)]) -> Row {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    fn source() -> Fake {
        Fake(BTreeMap::from([
            (
                "InventoryItem".to_string(),
                vec![
                    row(&[("InventoryCD", json!("A")), ("ItemStatus", json!("AC"))]),
                    row(&[("InventoryCD", json!("B")), ("ItemStatus", json!("IN"))]),
                    row(&[("InventoryCD", json!("C")), ("ItemStatus", json!("AC"))]),
                ],
            ),
            (
                "INSiteStatus".to_string(),
                vec![
                    row(&[
                        ("InventoryCD", json!("A")),
                        ("SiteCD", json!("WH1")),
                        ("QtyOnHand", json!(5)),
                    ]),
                    row(&[
                        ("InventoryCD", json!("A")),
                        ("SiteCD", json!("WH2")),
                        ("QtyOnHand", json!(7)),
                    ]),
                    row(&[
                        ("InventoryCD", json!("B")),
                        ("SiteCD", json!("WH1")),
                        ("QtyOnHand", json!(1)),
                    ]),
                ],
            ),
        ]))
    }

    fn stock_gi(join: JoinType) -> GenericInquiry {
        GenericInquiry {
            name: "MC-Stock".into(),
            design_id: "00000000-0000-0000-0000-000000000001".into(),
            expose_via_odata: true,
            tables: vec![
                GiTable {
                    table: "PX.Objects.IN.InventoryItem".into(),
                    alias: "Item".into(),
                },
                GiTable {
                    table: "INSiteStatus".into(),
                    alias: "Qty".into(),
                },
            ],
            relations: vec![GiRelation {
                parent_alias: "Item".into(),
                child_alias: "Qty".into(),
                join,
                on: vec![("InventoryCD".into(), "InventoryCD".into())],
            }],
            conditions: vec![GiCondition {
                field: "Item.ItemStatus".into(),
                op: ConditionOp::Equals,
                value: ConditionValue::Constant(json!("AC")),
                active: true,
            }],
            parameters: BTreeMap::new(),
            group_by: vec![],
            results: ["InventoryCD", "SiteCD", "QtyOnHand"]
                .iter()
                .map(|f| GiResult {
                    alias: if *f == "InventoryCD" { "Item" } else { "Qty" }.into(),
                    field: f.to_string(),
                    caption: String::new(),
                    aggregate: String::new(),
                    active: true,
                })
                .collect(),
        }
    }

    #[test]
    fn inner_join_with_condition() {
        let rows = stock_gi(JoinType::Inner).execute(&source()).unwrap();
        assert_eq!(
            rows,
            vec![
                row(&[
                    ("InventoryCD", json!("A")),
                    ("SiteCD", json!("WH1")),
                    ("QtyOnHand", json!(5))
                ]),
                row(&[
                    ("InventoryCD", json!("A")),
                    ("SiteCD", json!("WH2")),
                    ("QtyOnHand", json!(7))
                ]),
            ]
        );
    }

    #[test]
    fn left_join_keeps_rows_without_children() {
        let rows = stock_gi(JoinType::Left).execute(&source()).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[2]["InventoryCD"], json!("C"));
        assert_eq!(rows[2]["QtyOnHand"], Value::Null);
    }

    /// The first table narrowed before the joins gives the rows a filter on the whole result
    /// gives, inner and left joins alike; columns of a joined table are not narrowed early.
    #[test]
    fn a_filter_on_first_table_columns_narrows_before_the_joins_to_the_same_rows() {
        let gi = stock_gi(JoinType::Left);
        assert_eq!(
            gi.first_table_fields(&["InventoryCD".into()]),
            Some(vec![("InventoryCD".into(), "InventoryCD".into())])
        );
        assert_eq!(gi.first_table_fields(&["SiteCD".into()]), None);
        assert_eq!(
            gi.first_table_fields(&["InventoryCD".into(), "QtyOnHand".into()]),
            None
        );
        for join in [JoinType::Inner, JoinType::Left] {
            let gi = stock_gi(join);
            for key in ["A", "B", "C"] {
                let narrowed = gi
                    .execute_where(&source(), &|row| row["InventoryCD"] == json!(key))
                    .unwrap();
                let filtered: Vec<Row> = gi
                    .execute(&source())
                    .unwrap()
                    .into_iter()
                    .filter(|row| row["InventoryCD"] == json!(key))
                    .collect();
                assert_eq!(narrowed, filtered, "{join:?} {key}");
            }
        }
    }

    #[test]
    fn empty_parameter_skips_its_condition() {
        let mut gi = stock_gi(JoinType::Inner);
        gi.conditions[0].value = ConditionValue::Parameter("Status".into());
        assert_eq!(gi.execute(&source()).unwrap().len(), 3);
        gi.parameters.insert("Status".into(), json!("IN"));
        assert_eq!(gi.execute(&source()).unwrap().len(), 1);
    }

    #[test]
    fn duplicate_field_names_get_alias_prefixes() {
        let mut gi = stock_gi(JoinType::Inner);
        gi.results.push(GiResult {
            alias: "Qty".into(),
            field: "InventoryCD".into(),
            caption: String::new(),
            aggregate: String::new(),
            active: true,
        });
        let names: Vec<String> = gi.columns().into_iter().map(|c| c.name).collect();
        assert_eq!(
            names,
            ["Item_InventoryCD", "SiteCD", "QtyOnHand", "Qty_InventoryCD"]
        );
    }

    #[test]
    fn push_refusals() {
        let gi = stock_gi(JoinType::Inner);
        assert_eq!(gi.push_refusal(), None);
        let mut grouped = gi.clone();
        grouped.group_by.push("Item.InventoryCD".into());
        assert!(
            grouped
                .push_refusal()
                .unwrap()
                .contains("contains grouping")
        );
        let mut summed = gi.clone();
        summed.results[2].aggregate = "SUM".into();
        assert!(
            summed
                .push_refusal()
                .unwrap()
                .contains("contains aggregation")
        );
        let mut formula = gi.clone();
        formula.results[0].field = "=[Item.InventoryCD]".into();
        assert!(
            formula
                .push_refusal()
                .unwrap()
                .contains("contains formulas")
        );
        let mut details = gi.clone();
        details.tables.push(GiTable {
            table: "SOLine".into(),
            alias: "Line".into(),
        });
        assert!(
            details
                .push_refusal()
                .unwrap()
                .contains("several detail tables")
        );
    }

    #[test]
    fn validation() {
        let mut gi = stock_gi(JoinType::Inner);
        gi.tables[1].table = "Nope".into();
        assert!(gi.validate().unwrap_err().contains("Nope"));
        let mut gi = stock_gi(JoinType::Inner);
        gi.results[0].alias = "X".into();
        assert!(gi.validate().is_err());
    }
}
