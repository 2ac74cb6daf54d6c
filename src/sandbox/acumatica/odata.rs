//! OData `$filter` as the simulated Acumatica reads it, for contract-based entity reads and for
//! OData v4 Generic Inquiry reads.
//!
//! Public API:
//! - [`parse`]`(filter) -> Result<Filter, FilterError>`: syntax only (positions are 0-based
//!   character offsets into the filter text, as OData libraries report them).
//! - [`Filter::check`]`(types)`: every field exists and every comparison has compatible types
//!   (a date field compared with a bare string is refused, as Acumatica refuses it: dates must
//!   be written `datetimeoffset'2026-11-26T10:00:00Z'`).
//! - [`Filter::matches`]`(row, types)`: checks, then evaluates against one flat [`Row`].
//!   `types(field)` says what a field is; `None` means the entity/GI has no such field.
//! - [`Filter::fields`]: the field names the filter refers to.
//! - [`Filter::candidates`]`(lookup)`: the row keys an indexed equality narrows the filter to.
//! - [`FilterError::status`] / [`FilterError::body`]: the HTTP reply Acumatica gives for a
//!   filter it cannot use.
//!
//! Grammar: `eq ne gt ge lt le`, `and or not`, parentheses, `'strings'` (`''` escapes a quote),
//! numbers (optionally suffixed `m`, `d`, `f`, `L` as OData v3 allows), `true false null`,
//! `datetimeoffset'…'` (RFC 3339: fractional seconds and offsets allowed), `guid'…'`, and the
//! functions Acumatica documents for `$filter`: `substringof(needle, haystack)`,
//! `startswith(s, prefix)`, `endswith(s, suffix)`; OData v4's `contains(haystack, needle)` too.
//! Field names may contain `/` (`MainContact/Email`) — the caller flattens its rows to match.
//!
//! Semantics: string comparisons ignore case (Acumatica's SQL Server collation does); a date
//! field holds an RFC 3339 string (UTC per `tables.rs`; a value without offset is read as UTC);
//! `x eq null` is true only for null/absent values, any ordering comparison with null is false.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, FixedOffset, NaiveDateTime, Utc};
use serde_json::{Value, json};

use super::tables::Row;

/// What a field holds, as far as filtering is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    String,
    /// Integers and decimals alike.
    Number,
    Boolean,
    /// A date and time (`Edm.DateTimeOffset`).
    DateTime,
    Guid,
}

impl FieldType {
    /// The OData (EDM) type name, as `$metadata` and error messages spell it.
    pub fn edm(self) -> &'static str {
        match self {
            FieldType::String => "Edm.String",
            FieldType::Number => "Edm.Decimal",
            FieldType::Boolean => "Edm.Boolean",
            FieldType::DateTime => "Edm.DateTimeOffset",
            FieldType::Guid => "Edm.Guid",
        }
    }
}

/// Why a filter was refused, and where.
#[derive(Clone, Debug, PartialEq)]
pub struct FilterError {
    pub kind: FilterErrorKind,
    /// 0-based character offset into the filter text.
    pub position: usize,
    pub message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterErrorKind {
    Syntax,
    UnknownField,
    IncompatibleTypes,
    UnknownFunction,
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for FilterError {}

impl FilterError {
    /// Acumatica lets the OData library's exception escape as an internal server error.
    pub fn status(&self) -> u16 {
        500
    }

    /// The reply body, in the shape of Acumatica's unhandled-exception replies.
    pub fn body(&self) -> Value {
        json!({
            "message": "An error has occurred.",
            "exceptionMessage": self.message,
            "exceptionType": "Microsoft.OData.ODataException",
            "stackTrace": "",
        })
    }

    fn syntax(position: usize, text: &str) -> FilterError {
        FilterError {
            kind: FilterErrorKind::Syntax,
            position,
            message: format!("Syntax error at position {position} in '{text}'."),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CompareOp {
    /// The operator kind name OData libraries use in their messages.
    fn kind_name(self) -> &'static str {
        match self {
            CompareOp::Eq => "Equal",
            CompareOp::Ne => "NotEqual",
            CompareOp::Gt => "GreaterThan",
            CompareOp::Ge => "GreaterThanOrEqual",
            CompareOp::Lt => "LessThan",
            CompareOp::Le => "LessThanOrEqual",
        }
    }
}

/// A literal written in the filter.
#[derive(Clone, Debug, PartialEq)]
pub enum Literal {
    Null,
    Bool(bool),
    /// `integer` is true when written without a decimal point (`Edm.Int32` in messages).
    Number {
        value: f64,
        integer: bool,
    },
    String(String),
    DateTime(DateTime<FixedOffset>),
    Guid(String),
}

/// One node of a parsed filter.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Field {
        name: String,
        position: usize,
    },
    Literal {
        value: Literal,
        position: usize,
    },
    Compare {
        op: CompareOp,
        left: Box<Expr>,
        right: Box<Expr>,
        position: usize,
    },
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Call {
        function: String,
        args: Vec<Expr>,
        position: usize,
    },
}

/// A parsed `$filter`.
#[derive(Clone, Debug, PartialEq)]
pub struct Filter {
    pub expr: Expr,
    pub text: String,
}

/// Parses a `$filter` value (already URL-decoded).
pub fn parse(filter: &str) -> Result<Filter, FilterError> {
    let tokens = tokenize(filter)?;
    let mut parser = Parser {
        tokens,
        at: 0,
        text: filter,
    };
    let expr = parser.or_expr()?;
    if let Some(t) = parser.tokens.get(parser.at) {
        return Err(FilterError::syntax(t.position, filter));
    }
    Ok(Filter {
        expr,
        text: filter.to_string(),
    })
}

impl Filter {
    /// Refuses unknown fields, functions and incompatible comparisons.
    pub fn check(&self, types: &dyn Fn(&str) -> Option<FieldType>) -> Result<(), FilterError> {
        let t = check_expr(&self.expr, types)?;
        if t != Type::Bool {
            return Err(FilterError {
                kind: FilterErrorKind::IncompatibleTypes,
                position: 0,
                message: format!(
                    "The $filter expression must evaluate to a single boolean value; found '{}'.",
                    t.edm()
                ),
            });
        }
        Ok(())
    }

    /// Whether `row` passes the filter. Checks first, so a bad filter fails even on no rows
    /// when the caller calls [`Filter::check`] once up front.
    pub fn matches(
        &self,
        row: &Row,
        types: &dyn Fn(&str) -> Option<FieldType>,
    ) -> Result<bool, FilterError> {
        self.check(types)?;
        Ok(eval_bool(&self.expr, row, types))
    }

    /// The keys of every row that can pass, when the filter pins an indexed field: each
    /// `field eq 'text'` asks `lookup(field, text)` for the keys of the rows holding that text
    /// (`None`: no index on the field); `and` takes the sides that answer (both: their
    /// intersection), `or` needs both (their union). `None`: every row must be tested. The
    /// keys are a superset: each row is still tested with [`Filter::matches`].
    pub fn candidates(
        &self,
        lookup: &dyn Fn(&str, &str) -> Option<BTreeSet<String>>,
    ) -> Option<BTreeSet<String>> {
        fn walk(
            e: &Expr,
            lookup: &dyn Fn(&str, &str) -> Option<BTreeSet<String>>,
        ) -> Option<BTreeSet<String>> {
            match e {
                Expr::Compare {
                    op: CompareOp::Eq,
                    left,
                    right,
                    ..
                } => match (left.as_ref(), right.as_ref()) {
                    (
                        Expr::Field { name, .. },
                        Expr::Literal {
                            value: Literal::String(text),
                            ..
                        },
                    )
                    | (
                        Expr::Literal {
                            value: Literal::String(text),
                            ..
                        },
                        Expr::Field { name, .. },
                    ) => lookup(name, text),
                    _ => None,
                },
                Expr::And(l, r) => match (walk(l, lookup), walk(r, lookup)) {
                    (Some(a), Some(b)) => Some(a.intersection(&b).cloned().collect()),
                    (one, other) => one.or(other),
                },
                Expr::Or(l, r) => {
                    let (mut a, b) = (walk(l, lookup)?, walk(r, lookup)?);
                    a.extend(b);
                    Some(a)
                }
                _ => None,
            }
        }
        walk(&self.expr, lookup)
    }

    /// The field names the filter mentions, in order of appearance, without repeats.
    pub fn fields(&self) -> Vec<String> {
        fn walk(e: &Expr, out: &mut Vec<String>) {
            match e {
                Expr::Field { name, .. } => {
                    if !out.contains(name) {
                        out.push(name.clone());
                    }
                }
                Expr::Literal { .. } => {}
                Expr::Compare { left, right, .. }
                | Expr::And(left, right)
                | Expr::Or(left, right) => {
                    walk(left, out);
                    walk(right, out);
                }
                Expr::Not(inner) => walk(inner, out),
                Expr::Call { args, .. } => args.iter().for_each(|a| walk(a, out)),
            }
        }
        let mut out = Vec::new();
        walk(&self.expr, &mut out);
        out
    }
}

// ---------------------------------------------------------------------------------------------
// Tokens

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(f64, bool),
    /// `datetimeoffset'…'`, `guid'…'`, `datetime'…'`: the prefix and the quoted text.
    Typed(String, String),
    LParen,
    RParen,
    Comma,
}

#[derive(Clone, Debug)]
struct Token {
    tok: Tok,
    position: usize,
}

fn tokenize(text: &str) -> Result<Vec<Token>, FilterError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        match c {
            '(' => {
                out.push(Token {
                    tok: Tok::LParen,
                    position: start,
                });
                i += 1;
            }
            ')' => {
                out.push(Token {
                    tok: Tok::RParen,
                    position: start,
                });
                i += 1;
            }
            ',' => {
                out.push(Token {
                    tok: Tok::Comma,
                    position: start,
                });
                i += 1;
            }
            '\'' => {
                let (s, next) = quoted(&chars, i, text)?;
                out.push(Token {
                    tok: Tok::Str(s),
                    position: start,
                });
                i = next;
            }
            c if c.is_ascii_digit() || c == '-' || c == '+' => {
                i += 1;
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                    i += 1;
                }
                let digits: String = chars[start..i].iter().collect();
                let integer = !digits.contains('.');
                let value: f64 = digits
                    .parse()
                    .map_err(|_| FilterError::syntax(start, text))?;
                // OData v3 type suffixes: 10m (decimal), 1.5d (double), 1.5f (single), 10L.
                if i < chars.len()
                    && matches!(chars[i], 'm' | 'M' | 'd' | 'D' | 'f' | 'F' | 'l' | 'L')
                {
                    i += 1;
                }
                if i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    return Err(FilterError::syntax(i, text));
                }
                out.push(Token {
                    tok: Tok::Num(value, integer),
                    position: start,
                });
            }
            c if c.is_alphabetic() || c == '_' => {
                while i < chars.len()
                    && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '/' | '.'))
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                if i < chars.len() && chars[i] == '\'' {
                    let (s, next) = quoted(&chars, i, text)?;
                    out.push(Token {
                        tok: Tok::Typed(word, s),
                        position: start,
                    });
                    i = next;
                } else {
                    out.push(Token {
                        tok: Tok::Ident(word),
                        position: start,
                    });
                }
            }
            _ => return Err(FilterError::syntax(start, text)),
        }
    }
    Ok(out)
}

/// Reads a quoted literal starting at the opening quote; `''` is one quote.
fn quoted(chars: &[char], open: usize, text: &str) -> Result<(String, usize), FilterError> {
    let mut s = String::new();
    let mut i = open + 1;
    loop {
        match chars.get(i) {
            None => {
                return Err(FilterError {
                    kind: FilterErrorKind::Syntax,
                    position: open,
                    message: format!(
                        "There is an unterminated string literal at position {open} in '{text}'."
                    ),
                });
            }
            Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                s.push('\'');
                i += 2;
            }
            Some('\'') => return Ok((s, i + 1)),
            Some(c) => {
                s.push(*c);
                i += 1;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Parser (precedence: or < and < not < comparison < primary)

struct Parser<'a> {
    tokens: Vec<Token>,
    at: usize,
    text: &'a str,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn peek_keyword(&self, keyword: &str) -> bool {
        matches!(self.peek(), Some(Token { tok: Tok::Ident(w), .. }) if w == keyword)
    }

    fn end_error(&self) -> FilterError {
        FilterError::syntax(self.text.chars().count(), self.text)
    }

    fn or_expr(&mut self) -> Result<Expr, FilterError> {
        let mut left = self.and_expr()?;
        while self.peek_keyword("or") {
            self.at += 1;
            let right = self.and_expr()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and_expr(&mut self) -> Result<Expr, FilterError> {
        let mut left = self.not_expr()?;
        while self.peek_keyword("and") {
            self.at += 1;
            let right = self.not_expr()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn not_expr(&mut self) -> Result<Expr, FilterError> {
        if self.peek_keyword("not") {
            self.at += 1;
            let inner = self.not_expr()?;
            return Ok(Expr::Not(Box::new(inner)));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, FilterError> {
        let left = self.primary()?;
        let op = match self.peek() {
            Some(Token {
                tok: Tok::Ident(w),
                position,
            }) => {
                let op = match w.as_str() {
                    "eq" => Some(CompareOp::Eq),
                    "ne" => Some(CompareOp::Ne),
                    "gt" => Some(CompareOp::Gt),
                    "ge" => Some(CompareOp::Ge),
                    "lt" => Some(CompareOp::Lt),
                    "le" => Some(CompareOp::Le),
                    _ => None,
                };
                op.map(|op| (op, *position))
            }
            _ => None,
        };
        let Some((op, position)) = op else {
            return Ok(left);
        };
        self.at += 1;
        let right = self.primary()?;
        Ok(Expr::Compare {
            op,
            left: Box::new(left),
            right: Box::new(right),
            position,
        })
    }

    fn primary(&mut self) -> Result<Expr, FilterError> {
        let Some(token) = self.peek().cloned() else {
            return Err(self.end_error());
        };
        self.at += 1;
        let position = token.position;
        match token.tok {
            Tok::LParen => {
                let inner = self.or_expr()?;
                match self.peek() {
                    Some(Token {
                        tok: Tok::RParen, ..
                    }) => {
                        self.at += 1;
                        Ok(inner)
                    }
                    Some(t) => Err(FilterError::syntax(t.position, self.text)),
                    None => Err(self.end_error()),
                }
            }
            Tok::Str(s) => Ok(Expr::Literal {
                value: Literal::String(s),
                position,
            }),
            Tok::Num(value, integer) => Ok(Expr::Literal {
                value: Literal::Number { value, integer },
                position,
            }),
            Tok::Typed(prefix, body) => {
                let value = match prefix.as_str() {
                    "datetimeoffset" => Literal::DateTime(parse_datetimeoffset(&body).ok_or_else(
                        || FilterError {
                            kind: FilterErrorKind::Syntax,
                            position,
                            message: format!(
                                "Unrecognized 'Edm.DateTimeOffset' literal 'datetimeoffset'{body}'' at '{position}' in '{}'.",
                                self.text
                            ),
                        },
                    )?),
                    "guid" => Literal::Guid(body),
                    _ => return Err(FilterError::syntax(position, self.text)),
                };
                Ok(Expr::Literal { value, position })
            }
            Tok::Ident(word) => match word.as_str() {
                "true" => Ok(Expr::Literal {
                    value: Literal::Bool(true),
                    position,
                }),
                "false" => Ok(Expr::Literal {
                    value: Literal::Bool(false),
                    position,
                }),
                "null" => Ok(Expr::Literal {
                    value: Literal::Null,
                    position,
                }),
                "and" | "or" | "not" | "eq" | "ne" | "gt" | "ge" | "lt" | "le" => {
                    Err(FilterError::syntax(position, self.text))
                }
                _ => {
                    if matches!(
                        self.peek(),
                        Some(Token {
                            tok: Tok::LParen,
                            ..
                        })
                    ) {
                        self.at += 1;
                        let mut args = Vec::new();
                        if matches!(
                            self.peek(),
                            Some(Token {
                                tok: Tok::RParen,
                                ..
                            })
                        ) {
                            self.at += 1;
                        } else {
                            loop {
                                args.push(self.or_expr()?);
                                match self.peek() {
                                    Some(Token {
                                        tok: Tok::Comma, ..
                                    }) => self.at += 1,
                                    Some(Token {
                                        tok: Tok::RParen, ..
                                    }) => {
                                        self.at += 1;
                                        break;
                                    }
                                    Some(t) => {
                                        return Err(FilterError::syntax(t.position, self.text));
                                    }
                                    None => return Err(self.end_error()),
                                }
                            }
                        }
                        Ok(Expr::Call {
                            function: word,
                            args,
                            position,
                        })
                    } else {
                        Ok(Expr::Field {
                            name: word,
                            position,
                        })
                    }
                }
            },
            Tok::RParen | Tok::Comma => Err(FilterError::syntax(position, self.text)),
        }
    }
}

fn parse_datetimeoffset(s: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(s).ok()
}

// ---------------------------------------------------------------------------------------------
// Type checking

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Type {
    Null,
    Bool,
    Int,
    Decimal,
    String,
    DateTime,
    Guid,
}

impl Type {
    fn edm(self) -> &'static str {
        match self {
            Type::Null => "null",
            Type::Bool => "Edm.Boolean",
            Type::Int => "Edm.Int32",
            Type::Decimal => "Edm.Decimal",
            Type::String => "Edm.String",
            Type::DateTime => "Edm.DateTimeOffset",
            Type::Guid => "Edm.Guid",
        }
    }

    fn of_field(t: FieldType) -> Type {
        match t {
            FieldType::String => Type::String,
            FieldType::Number => Type::Decimal,
            FieldType::Boolean => Type::Bool,
            FieldType::DateTime => Type::DateTime,
            FieldType::Guid => Type::Guid,
        }
    }

    fn comparable(self, other: Type) -> bool {
        use Type::*;
        match (self, other) {
            (Null, _) | (_, Null) => true,
            (Int | Decimal, Int | Decimal) => true,
            // A GUID field compared with a plain string is common in Acumatica filters.
            (Guid, Guid | String) | (String, Guid) => true,
            (a, b) => a == b,
        }
    }
}

fn field_type(
    name: &str,
    position: usize,
    types: &dyn Fn(&str) -> Option<FieldType>,
) -> Result<FieldType, FilterError> {
    types(name).ok_or_else(|| FilterError {
        kind: FilterErrorKind::UnknownField,
        position,
        message: format!("Could not find a property named '{name}'."),
    })
}

fn check_expr(e: &Expr, types: &dyn Fn(&str) -> Option<FieldType>) -> Result<Type, FilterError> {
    match e {
        Expr::Field { name, position } => Ok(Type::of_field(field_type(name, *position, types)?)),
        Expr::Literal { value, .. } => Ok(match value {
            Literal::Null => Type::Null,
            Literal::Bool(_) => Type::Bool,
            Literal::Number { integer: true, .. } => Type::Int,
            Literal::Number { .. } => Type::Decimal,
            Literal::String(_) => Type::String,
            Literal::DateTime(_) => Type::DateTime,
            Literal::Guid(_) => Type::Guid,
        }),
        Expr::Compare {
            op,
            left,
            right,
            position,
        } => {
            let l = check_expr(left, types)?;
            let r = check_expr(right, types)?;
            let ordering = !matches!(op, CompareOp::Eq | CompareOp::Ne);
            if !l.comparable(r) || (ordering && (l == Type::Bool || r == Type::Bool)) {
                return Err(FilterError {
                    kind: FilterErrorKind::IncompatibleTypes,
                    position: *position,
                    message: format!(
                        "A binary operator with incompatible types was detected. Found operand types '{}' and '{}' for operator kind '{}'.",
                        l.edm(),
                        r.edm(),
                        op.kind_name()
                    ),
                });
            }
            Ok(Type::Bool)
        }
        Expr::And(left, right) | Expr::Or(left, right) => {
            let kind = if matches!(e, Expr::And(..)) {
                "And"
            } else {
                "Or"
            };
            let l = check_expr(left, types)?;
            let r = check_expr(right, types)?;
            if l != Type::Bool || r != Type::Bool {
                return Err(FilterError {
                    kind: FilterErrorKind::IncompatibleTypes,
                    position: 0,
                    message: format!(
                        "A binary operator with incompatible types was detected. Found operand types '{}' and '{}' for operator kind '{kind}'.",
                        l.edm(),
                        r.edm()
                    ),
                });
            }
            Ok(Type::Bool)
        }
        Expr::Not(inner) => {
            let t = check_expr(inner, types)?;
            if t != Type::Bool {
                return Err(FilterError {
                    kind: FilterErrorKind::IncompatibleTypes,
                    position: 0,
                    message: format!(
                        "A unary operator with an incompatible type was detected. Found operand type '{}' for operator kind 'Not'.",
                        t.edm()
                    ),
                });
            }
            Ok(Type::Bool)
        }
        Expr::Call {
            function,
            args,
            position,
        } => {
            if !matches!(
                function.as_str(),
                "substringof" | "startswith" | "endswith" | "contains"
            ) {
                return Err(FilterError {
                    kind: FilterErrorKind::UnknownFunction,
                    position: *position,
                    message: format!("An unknown function with name '{function}' was found."),
                });
            }
            if args.len() != 2 {
                return Err(FilterError {
                    kind: FilterErrorKind::IncompatibleTypes,
                    position: *position,
                    message: format!(
                        "No function signature for the function with name '{function}' matches the specified arguments. The function signatures considered are: {function}(Edm.String Nullable=true, Edm.String Nullable=true)."
                    ),
                });
            }
            for a in args {
                let t = check_expr(a, types)?;
                if !matches!(t, Type::String | Type::Null | Type::Guid) {
                    return Err(FilterError {
                        kind: FilterErrorKind::IncompatibleTypes,
                        position: *position,
                        message: format!(
                            "No function signature for the function with name '{function}' matches the specified arguments. The function signatures considered are: {function}(Edm.String Nullable=true, Edm.String Nullable=true)."
                        ),
                    });
                }
            }
            Ok(Type::Bool)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Evaluation (only after a successful check)

#[derive(Clone, Debug, PartialEq)]
enum Val {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Date(DateTime<Utc>),
}

/// Reads a stored date-time: RFC 3339, or without offset (then UTC).
pub fn parse_stored_datetime(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(d.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(s, format) {
            return Some(n.and_utc());
        }
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|n| n.and_utc())
}

fn field_value(value: Option<&Value>, t: FieldType) -> Val {
    let Some(value) = value else {
        return Val::Null;
    };
    match (t, value) {
        (_, Value::Null) => Val::Null,
        (FieldType::Boolean, Value::Bool(b)) => Val::Bool(*b),
        (FieldType::Number, Value::Number(n)) => n.as_f64().map(Val::Num).unwrap_or(Val::Null),
        (FieldType::Number, Value::String(s)) => s.parse().map(Val::Num).unwrap_or(Val::Null),
        (FieldType::DateTime, Value::String(s)) => {
            parse_stored_datetime(s).map(Val::Date).unwrap_or(Val::Null)
        }
        (_, Value::String(s)) => Val::Str(s.clone()),
        (_, Value::Bool(b)) => Val::Bool(*b),
        (_, Value::Number(n)) => Val::Str(n.to_string()),
        (_, other) => Val::Str(other.to_string()),
    }
}

fn eval(e: &Expr, row: &Row, types: &dyn Fn(&str) -> Option<FieldType>) -> Val {
    match e {
        Expr::Field { name, .. } => match types(name) {
            Some(t) => field_value(row.get(name), t),
            None => Val::Null,
        },
        Expr::Literal { value, .. } => match value {
            Literal::Null => Val::Null,
            Literal::Bool(b) => Val::Bool(*b),
            Literal::Number { value, .. } => Val::Num(*value),
            Literal::String(s) | Literal::Guid(s) => Val::Str(s.clone()),
            Literal::DateTime(d) => Val::Date(d.with_timezone(&Utc)),
        },
        _ => Val::Bool(eval_bool(e, row, types)),
    }
}

fn compare(a: &Val, b: &Val) -> Option<Ordering> {
    match (a, b) {
        (Val::Bool(x), Val::Bool(y)) => Some(x.cmp(y)),
        (Val::Num(x), Val::Num(y)) => x.partial_cmp(y),
        (Val::Str(x), Val::Str(y)) => Some(x.to_lowercase().cmp(&y.to_lowercase())),
        (Val::Date(x), Val::Date(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn eval_bool(e: &Expr, row: &Row, types: &dyn Fn(&str) -> Option<FieldType>) -> bool {
    match e {
        Expr::And(l, r) => eval_bool(l, row, types) && eval_bool(r, row, types),
        Expr::Or(l, r) => eval_bool(l, row, types) || eval_bool(r, row, types),
        Expr::Not(inner) => !eval_bool(inner, row, types),
        Expr::Compare {
            op, left, right, ..
        } => {
            let l = eval(left, row, types);
            let r = eval(right, row, types);
            match (op, &l, &r) {
                (CompareOp::Eq, Val::Null, Val::Null) => true,
                (CompareOp::Ne, Val::Null, Val::Null) => false,
                (CompareOp::Eq, Val::Null, _) | (CompareOp::Eq, _, Val::Null) => false,
                (CompareOp::Ne, Val::Null, _) | (CompareOp::Ne, _, Val::Null) => true,
                (_, Val::Null, _) | (_, _, Val::Null) => false,
                _ => match compare(&l, &r) {
                    None => false,
                    Some(o) => match op {
                        CompareOp::Eq => o == Ordering::Equal,
                        CompareOp::Ne => o != Ordering::Equal,
                        CompareOp::Gt => o == Ordering::Greater,
                        CompareOp::Ge => o != Ordering::Less,
                        CompareOp::Lt => o == Ordering::Less,
                        CompareOp::Le => o != Ordering::Greater,
                    },
                },
            }
        }
        Expr::Call { function, args, .. } => {
            let a = eval(&args[0], row, types);
            let b = eval(&args[1], row, types);
            let (Val::Str(a), Val::Str(b)) = (a, b) else {
                return false;
            };
            let (a, b) = (a.to_lowercase(), b.to_lowercase());
            match function.as_str() {
                "substringof" => b.contains(&a),
                "contains" => a.contains(&b),
                "startswith" => a.starts_with(&b),
                "endswith" => a.ends_with(&b),
                _ => false,
            }
        }
        Expr::Field { .. } | Expr::Literal { .. } => {
            matches!(eval(e, row, types), Val::Bool(true))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn types(name: &str) -> Option<FieldType> {
        match name {
            "InventoryID" | "Description" | "MainContact/Email" => Some(FieldType::String),
            "BasePrice" | "Qty" => Some(FieldType::Number),
            "Active" => Some(FieldType::Boolean),
            "LastModifiedDateTime" => Some(FieldType::DateTime),
            "NoteID" => Some(FieldType::Guid),
            _ => None,
        }
    }

    fn row() -> Row {
        let mut r = Row::new();
        r.insert("InventoryID".into(), json!("AA-100"));
        r.insert("Description".into(), json!("It's a widget"));
        r.insert("BasePrice".into(), json!(12.5));
        r.insert("Qty".into(), json!(3));
        r.insert("Active".into(), json!(true));
        r.insert(
            "LastModifiedDateTime".into(),
            json!("2026-11-26T10:00:00.500Z"),
        );
        r.insert("MainContact/Email".into(), Value::Null);
        r.insert(
            "NoteID".into(),
            json!("6f1b2c3d-0000-0000-0000-000000000001"),
        );
        r
    }

    fn is(filter: &str) -> bool {
        parse(filter)
            .unwrap_or_else(|e| panic!("{filter}: {e}"))
            .matches(&row(), &types)
            .unwrap_or_else(|e| panic!("{filter}: {e}"))
    }

    #[test]
    fn comparisons_and_logic() {
        assert!(is("InventoryID eq 'AA-100'"));
        assert!(
            is("InventoryID eq 'aa-100'"),
            "SQL Server compares without case"
        );
        assert!(!is("InventoryID ne 'AA-100'"));
        assert!(is("BasePrice gt 12 and BasePrice lt 13"));
        assert!(is("BasePrice ge 12.5 and BasePrice le 12.5m"));
        assert!(!is("BasePrice gt 12.5"));
        assert!(is("Qty eq 3 or InventoryID eq 'none'"));
        assert!(is("not (Qty eq 4)"));
        assert!(is("(Qty eq 4 or Qty eq 3) and Active eq true"));
        assert!(is("Active"));
        assert!(!is("not Active"));
        assert!(is("Description eq 'It''s a widget'"));
    }

    #[test]
    fn precedence_and_binds_tighter_than_or() {
        // false and false or true → (false and false) or true → true
        assert!(is("Qty eq 1 and Qty eq 2 or Qty eq 3"));
        // true or false and false → true or (false and false) → true
        assert!(is("Qty eq 3 or Qty eq 1 and Qty eq 2"));
        assert!(!is("(Qty eq 3 or Qty eq 1) and Qty eq 2"));
    }

    #[test]
    fn nulls() {
        assert!(is("MainContact/Email eq null"));
        assert!(!is("MainContact/Email ne null"));
        assert!(!is("MainContact/Email gt 'a'"));
        assert!(is("InventoryID ne null"));
    }

    #[test]
    fn dates_with_datetimeoffset() {
        assert!(is(
            "LastModifiedDateTime gt datetimeoffset'2026-11-26T10:00:00Z'"
        ));
        assert!(is(
            "LastModifiedDateTime lt datetimeoffset'2026-11-26T10:00:00.501Z'"
        ));
        assert!(is(
            "LastModifiedDateTime eq datetimeoffset'2026-11-26T10:00:00.5Z'"
        ));
        // 05:00:00.5 at -05:00 is the same instant.
        assert!(is(
            "LastModifiedDateTime eq datetimeoffset'2026-11-26T05:00:00.5-05:00'"
        ));
        assert!(is(
            "LastModifiedDateTime ge datetimeoffset'2026-11-26T12:59:00+03:00'"
        ));
    }

    #[test]
    fn a_bare_string_against_a_date_is_refused() {
        let f = parse("LastModifiedDateTime gt '2026-11-26T10:00:00Z'").unwrap();
        let e = f.matches(&row(), &types).unwrap_err();
        assert_eq!(e.kind, FilterErrorKind::IncompatibleTypes);
        assert_eq!(e.position, 21);
        assert_eq!(
            e.message,
            "A binary operator with incompatible types was detected. Found operand types \
             'Edm.DateTimeOffset' and 'Edm.String' for operator kind 'GreaterThan'."
        );
        assert_eq!(e.status(), 500);
        assert_eq!(e.body()["message"], "An error has occurred.");
        assert_eq!(e.body()["exceptionMessage"], e.message.as_str());
        // A bare, unquoted date is a syntax error.
        let e = parse("LastModifiedDateTime gt 2026-11-26T10:00:00Z").unwrap_err();
        assert_eq!(e.kind, FilterErrorKind::Syntax);
    }

    #[test]
    fn strings_against_numbers_are_refused() {
        let f = parse("BasePrice eq '12.5'").unwrap();
        assert_eq!(
            f.check(&types).unwrap_err().kind,
            FilterErrorKind::IncompatibleTypes
        );
        let f = parse("InventoryID eq 5").unwrap();
        assert!(f.check(&types).is_err());
    }

    #[test]
    fn functions() {
        assert!(is("substringof('widg', Description)"));
        assert!(!is("substringof('gadget', Description)"));
        assert!(is("startswith(InventoryID, 'AA')"));
        assert!(is("endswith(InventoryID, '100')"));
        assert!(is("contains(Description, 'WIDGET')"));
        assert!(!is("startswith(MainContact/Email, 'a')"));
        let e = parse("length(InventoryID) eq 6")
            .unwrap()
            .check(&types)
            .unwrap_err();
        assert_eq!(e.kind, FilterErrorKind::UnknownFunction);
        assert!(
            parse("startswith(BasePrice, '1')")
                .unwrap()
                .check(&types)
                .is_err()
        );
    }

    #[test]
    fn guids() {
        assert!(is("NoteID eq guid'6f1b2c3d-0000-0000-0000-000000000001'"));
        assert!(is("NoteID eq '6F1B2C3D-0000-0000-0000-000000000001'"));
    }

    #[test]
    fn unknown_fields_are_refused_with_their_position() {
        let e = parse("Qty eq 3 and Colour eq 'red'")
            .unwrap()
            .check(&types)
            .unwrap_err();
        assert_eq!(e.kind, FilterErrorKind::UnknownField);
        assert_eq!(e.position, 13);
        assert_eq!(e.message, "Could not find a property named 'Colour'.");
    }

    #[test]
    fn syntax_errors_carry_positions() {
        let cases = [
            ("Qty eq", 6),
            ("Qty eq 3 and", 12),
            ("(Qty eq 3", 9),
            ("Qty eq 3)", 8),
            ("Qty == 3", 4),
            ("Qty eq 3 xor Qty eq 4", 9),
            ("Description eq 'open", 15),
            ("LastModifiedDateTime gt datetimeoffset'yesterday'", 24),
            ("Qty eq 3abc", 8),
        ];
        for (text, position) in cases {
            let e = parse(text).unwrap_err();
            assert_eq!(e.kind, FilterErrorKind::Syntax, "{text}");
            assert_eq!(e.position, position, "{text}: {}", e.message);
        }
        assert_eq!(
            parse("Qty == 3").unwrap_err().message,
            "Syntax error at position 4 in 'Qty == 3'."
        );
    }

    #[test]
    fn fields_lists_each_field_once() {
        let f = parse("Qty eq 1 or (Qty eq 2 and startswith(InventoryID, 'A'))").unwrap();
        assert_eq!(
            f.fields(),
            vec!["Qty".to_string(), "InventoryID".to_string()]
        );
    }

    #[test]
    fn the_whole_expression_must_be_boolean() {
        assert!(parse("Qty").unwrap().check(&types).is_err());
        assert!(parse("Qty eq 1 and 'x'").unwrap().check(&types).is_err());
    }

    /// `candidates` with an index on `InventoryID` that holds each text under its own name.
    fn candidates(filter: &str) -> Option<Vec<String>> {
        let lookup = |field: &str, text: &str| {
            (field == "InventoryID").then(|| BTreeSet::from([text.to_lowercase()]))
        };
        parse(filter)
            .unwrap()
            .candidates(&lookup)
            .map(|keys| keys.into_iter().collect())
    }

    #[test]
    fn candidates_come_only_from_equalities_every_match_must_meet() {
        let v = |keys: &[&str]| Some(keys.iter().map(|k| k.to_string()).collect::<Vec<_>>());
        assert_eq!(candidates("InventoryID eq 'A'"), v(&["a"]));
        assert_eq!(candidates("'A' eq InventoryID"), v(&["a"]));
        assert_eq!(candidates("Qty gt 1 and InventoryID eq 'A'"), v(&["a"]));
        assert_eq!(
            candidates("Qty gt 1 and (InventoryID eq 'A' or InventoryID eq 'B')"),
            v(&["a", "b"])
        );
        assert_eq!(
            candidates("InventoryID eq 'A' and InventoryID eq 'B'"),
            v(&[])
        );
        // A side no index bounds leaves every row to test.
        assert_eq!(candidates("InventoryID eq 'A' or Qty gt 1"), None);
        assert_eq!(candidates("not (InventoryID eq 'A')"), None);
        assert_eq!(candidates("InventoryID ne 'A'"), None);
        assert_eq!(candidates("Description eq 'A'"), None);
        assert_eq!(candidates("startswith(InventoryID, 'A')"), None);
    }
}
