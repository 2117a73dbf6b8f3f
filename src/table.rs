//! What a report table is: a name, typed columns, a key, an optional parent,
//! and the two functions that move one row between the model and cells.
//!
//! Every writer and reader of report tables (the CSV checkpoint, PostgreSQL
//! binary COPY, SQLite inserts, row counts) is a loop over a [`Table`]'s
//! columns and cells; none of them names a table or a column. The tables
//! themselves are declared in `report_tables`; the migrations stay SQL and a
//! test holds them against these declarations.

use std::cmp::Ordering;
use std::collections::HashMap;

use chrono::NaiveDate;

use crate::interner::Interner;
use crate::model::{
    CustomerBehavior, CustomerIdx, CustomerSegment, Gender, PurchaseTrend, Report, SegmentMetrics,
    StoreSummary, Transition, YearMonth,
};

/// A column's kind: decides its SQL types, its checks and its text form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Text,
    /// 32-bit integer (`INTEGER`).
    Int,
    /// 64-bit integer (`BIGINT`).
    BigInt,
    /// Money per customer: `NUMERIC(14,2)`.
    Money,
    /// Money summed over a segment: `NUMERIC(18,2)`.
    Total,
    /// Averages and ratios that are not money: `DOUBLE PRECISION`.
    Float,
    Date,
    /// `YYYY-MM`.
    Month,
}

impl Kind {
    /// The type `information_schema.columns` reports (`format_type` form).
    pub fn postgres_type(self) -> &'static str {
        match self {
            Kind::Text | Kind::Month => "text",
            Kind::Int => "integer",
            Kind::BigInt => "bigint",
            Kind::Money => "numeric(14,2)",
            Kind::Total => "numeric(18,2)",
            Kind::Float => "double precision",
            Kind::Date => "date",
        }
    }

    /// The STRICT column type in migrations/sqlite.
    pub fn sqlite_type(self) -> &'static str {
        match self {
            Kind::Text | Kind::Month | Kind::Date => "TEXT",
            Kind::Int | Kind::BigInt => "INTEGER",
            Kind::Money | Kind::Total | Kind::Float => "REAL",
        }
    }

    /// Money is stored rounded to cents.
    pub fn is_money(self) -> bool {
        matches!(self, Kind::Money | Kind::Total)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub kind: Kind,
    pub nullable: bool,
}

/// A column that always has a value.
pub const fn col(name: &'static str, kind: Kind) -> Column {
    Column {
        name,
        kind,
        nullable: false,
    }
}

/// A column whose unknown value is NULL.
pub const fn nullable(name: &'static str, kind: Kind) -> Column {
    Column {
        name,
        kind,
        nullable: true,
    }
}

/// `column` references `parent`'s primary key (a single column of the same name).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ForeignKey {
    pub column: &'static str,
    pub parent: &'static str,
}

/// One value on its way out of the model. Money travels as `Float` and is
/// checked and rounded by the writer, which knows the column's kind.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cell<'a> {
    Null,
    Text(&'a str),
    Int(i64),
    Float(f64),
    Date(NaiveDate),
    Month(YearMonth),
    /// A row index (customer, store) the report cannot resolve: bad data
    /// that every writer refuses with this description.
    Dangling {
        what: &'static str,
        index: usize,
        of: usize,
    },
}

impl<'a> Cell<'a> {
    pub fn opt<T>(v: Option<T>, f: impl FnOnce(T) -> Cell<'a>) -> Cell<'a> {
        v.map_or(Cell::Null, f)
    }
}

/// A report table, declared once.
pub struct Table {
    pub name: &'static str,
    pub columns: &'static [Column],
    /// Primary key columns.
    pub key: &'static [&'static str],
    pub parent: Option<ForeignKey>,
    /// Rows of this table in a report.
    pub len: fn(&Report) -> usize,
    /// Row `i`'s cells, one per column in order, appended to `out`. A
    /// reference the report cannot resolve comes out [`Cell::Dangling`].
    pub cells: for<'a> fn(&'a Report, usize, &mut Vec<Cell<'a>>),
    /// Add one row read back from a checkpoint to `parts`.
    pub read: fn(&mut ReportParts, &Fields<'_>) -> Result<(), FieldError>,
}

impl Table {
    pub fn column_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.columns.iter().map(|c| c.name)
    }

    /// The primary key's columns, as positions in `columns`.
    pub fn key_positions(&self) -> Vec<usize> {
        self.key
            .iter()
            .filter_map(|k| self.columns.iter().position(|c| c.name == *k))
            .collect()
    }

    /// `<table>_pkey`, as the migrations name it.
    pub fn pkey_name(&self) -> String {
        format!("{}_pkey", self.name)
    }

    /// `<table>_<column>_fkey`, as the migrations name it.
    pub fn fkey_name(&self) -> Option<String> {
        self.parent
            .map(|fk| format!("{}_{}_fkey", self.name, fk.column))
    }
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table").field("name", &self.name).finish()
    }
}

/// Why a cell cannot be stored in its column.
pub fn check(column: &Column, cell: &Cell<'_>) -> Result<(), String> {
    let name = column.name;
    match (*cell, column.kind) {
        (Cell::Null, _) if column.nullable => Ok(()),
        (Cell::Null, _) => Err(format!("`{name}` is NULL in a NOT NULL column")),
        (Cell::Dangling { what, index, of }, _) => {
            Err(format!("{what} index {index} out of range ({of} {what}s)"))
        }
        (Cell::Int(n), Kind::Int) if i32::try_from(n).is_err() => {
            Err(format!("`{name}` = {n} does not fit INTEGER"))
        }
        (Cell::Float(x), kind) if !x.is_finite() && kind.is_money() => {
            Err(format!("`{name}` is {x}, not money"))
        }
        (Cell::Float(x), _) if !x.is_finite() => Err(format!("`{name}` is {x}, not a number")),
        (Cell::Text(s), _) if s.contains('\0') => Err(format!("`{name}` holds a NUL byte")),
        _ => Ok(()),
    }
}

/// The order of stored key values in both sinks: text bytewise (SQLite's
/// BINARY, PostgreSQL's "C" collation of the key columns), numbers,
/// dates and months as such.
/// Cells of different kinds never share a column; any fixed order will do.
pub fn cmp_cell(a: &Cell<'_>, b: &Cell<'_>) -> Ordering {
    match (a, b) {
        (Cell::Text(x), Cell::Text(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Cell::Int(x), Cell::Int(y)) => x.cmp(y),
        (Cell::Float(x), Cell::Float(y)) => x.total_cmp(y),
        (Cell::Date(x), Cell::Date(y)) => x.cmp(y),
        (Cell::Month(x), Cell::Month(y)) => (x.year, x.month).cmp(&(y.year, y.month)),
        _ => rank(a).cmp(&rank(b)),
    }
}

fn rank(c: &Cell<'_>) -> u8 {
    match c {
        Cell::Null => 0,
        Cell::Int(_) => 1,
        Cell::Float(_) => 2,
        Cell::Text(_) => 3,
        Cell::Date(_) => 4,
        Cell::Month(_) => 5,
        Cell::Dangling { .. } => 6,
    }
}

pub fn cmp_cells(a: &[Cell<'_>], b: &[Cell<'_>]) -> Ordering {
    a.iter()
        .zip(b)
        .map(|(x, y)| cmp_cell(x, y))
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal)
}

// ------------------------------------------------------------ reading back

/// A checkpoint value parsed by its column's kind (money as `Float`).
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Text(String),
    Int(i64),
    Float(f64),
    Date(NaiveDate),
    Month(YearMonth),
}

impl Value {
    /// Parse a checkpoint field; empty is NULL in nullable columns.
    pub fn parse(column: &Column, text: &str) -> Result<Value, String> {
        if text.is_empty() && column.nullable {
            return Ok(Value::Null);
        }
        let bad = |e: &dyn std::fmt::Display| format!("`{text}`: {e}");
        Ok(match column.kind {
            Kind::Text => Value::Text(text.to_owned()),
            Kind::Int | Kind::BigInt => Value::Int(text.parse().map_err(|e| bad(&e))?),
            Kind::Money | Kind::Total | Kind::Float => {
                Value::Float(text.parse().map_err(|e| bad(&e))?)
            }
            Kind::Date => Value::Date(text.parse().map_err(|e| bad(&e))?),
            Kind::Month => Value::Month(text.parse().map_err(|e| bad(&e))?),
        })
    }
}

/// A value of the wrong shape for the model field at `column` (an index).
#[derive(Debug, PartialEq)]
pub struct FieldError {
    pub column: usize,
    pub message: String,
}

/// One row's parsed values with typed accessors for the model's fields.
pub struct Fields<'r> {
    pub values: &'r [Value],
}

impl Fields<'_> {
    fn err(&self, column: usize, message: impl Into<String>) -> FieldError {
        FieldError {
            column,
            message: message.into(),
        }
    }

    fn get(&self, i: usize) -> &Value {
        self.values.get(i).unwrap_or(&Value::Null)
    }

    pub fn text(&self, i: usize) -> Result<String, FieldError> {
        self.str(i).map(str::to_owned)
    }

    fn str(&self, i: usize) -> Result<&str, FieldError> {
        match self.get(i) {
            Value::Text(s) => Ok(s),
            other => Err(self.err(i, format!("expected text, found {other:?}"))),
        }
    }

    pub fn opt_text(&self, i: usize) -> Result<Option<String>, FieldError> {
        match self.get(i) {
            Value::Null => Ok(None),
            _ => self.text(i).map(Some),
        }
    }

    pub fn int<T: TryFrom<i64>>(&self, i: usize) -> Result<T, FieldError> {
        match self.get(i) {
            Value::Int(n) => {
                T::try_from(*n).map_err(|_| self.err(i, format!("{n} is out of range")))
            }
            other => Err(self.err(i, format!("expected an integer, found {other:?}"))),
        }
    }

    pub fn opt_int<T: TryFrom<i64>>(&self, i: usize) -> Result<Option<T>, FieldError> {
        match self.get(i) {
            Value::Null => Ok(None),
            _ => self.int(i).map(Some),
        }
    }

    pub fn float(&self, i: usize) -> Result<f64, FieldError> {
        match self.get(i) {
            Value::Float(x) => Ok(*x),
            other => Err(self.err(i, format!("expected a number, found {other:?}"))),
        }
    }

    pub fn opt_float(&self, i: usize) -> Result<Option<f64>, FieldError> {
        match self.get(i) {
            Value::Null => Ok(None),
            _ => self.float(i).map(Some),
        }
    }

    pub fn opt_date(&self, i: usize) -> Result<Option<NaiveDate>, FieldError> {
        match self.get(i) {
            Value::Null => Ok(None),
            Value::Date(d) => Ok(Some(*d)),
            other => Err(self.err(i, format!("expected a date, found {other:?}"))),
        }
    }

    pub fn month(&self, i: usize) -> Result<YearMonth, FieldError> {
        match self.get(i) {
            Value::Month(m) => Ok(*m),
            other => Err(self.err(i, format!("expected YYYY-MM, found {other:?}"))),
        }
    }

    pub fn opt_gender(&self, i: usize) -> Result<Option<Gender>, FieldError> {
        match self.opt_text(i)? {
            None => Ok(None),
            Some(s) => Gender::parse(&s)
                .map(Some)
                .ok_or_else(|| self.err(i, format!("unknown gender `{s}`"))),
        }
    }

    /// The customer whose mobile is at `i`, which must be known already.
    pub fn customer(&self, i: usize, parts: &ReportParts) -> Result<CustomerIdx, FieldError> {
        let mobile = self.str(i)?;
        // A customer's store and trend rows come one after another.
        if let Some(last) = parts.last_customer.get()
            && parts.customers[last.index()].mobile == mobile
        {
            return Ok(last);
        }
        let found = parts
            .index
            .get(mobile)
            .copied()
            .ok_or_else(|| self.err(i, format!("unknown mobile `{mobile}`")))?;
        parts.last_customer.set(Some(found));
        Ok(found)
    }
}

/// A report's tables being read back, parents first.
#[derive(Debug, Default)]
pub struct ReportParts {
    pub customers: Vec<CustomerSegment>,
    /// foldhash: asked once per store and trend row.
    pub index: HashMap<String, CustomerIdx, foldhash::fast::RandomState>,
    /// The customer `Fields::customer` found last.
    pub last_customer: std::cell::Cell<Option<CustomerIdx>>,
    pub behavior: Vec<CustomerBehavior>,
    pub segments: Vec<SegmentMetrics>,
    pub store_names: Vec<String>,
    pub store_ids: Interner,
    pub stores: Vec<StoreSummary>,
    pub trends: Vec<PurchaseTrend>,
    pub transitions: Vec<Transition>,
}

impl ReportParts {
    pub fn push_customer(&mut self, c: CustomerSegment) {
        self.index.insert(
            c.mobile.clone(),
            CustomerIdx::from_index(self.customers.len()),
        );
        self.customers.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_catches_what_no_sink_can_store() {
        let int = col("n", Kind::Int);
        assert!(check(&int, &Cell::Int(i64::from(i32::MAX))).is_ok());
        assert_eq!(
            check(&int, &Cell::Int(i64::from(i32::MAX) + 1)),
            Err(format!(
                "`n` = {} does not fit INTEGER",
                i64::from(i32::MAX) + 1
            ))
        );
        assert!(check(&col("m", Kind::Money), &Cell::Float(f64::INFINITY)).is_err());
        assert!(check(&col("t", Kind::Text), &Cell::Text("a\0b")).is_err());
        assert!(check(&col("t", Kind::Text), &Cell::Null).is_err());
        assert!(check(&nullable("t", Kind::Text), &Cell::Null).is_ok());
    }

    #[test]
    fn values_parse_by_kind_and_empty_is_null_only_where_allowed() {
        assert_eq!(Value::parse(&nullable("a", Kind::Int), ""), Ok(Value::Null));
        assert!(Value::parse(&col("a", Kind::Int), "").is_err());
        assert_eq!(
            Value::parse(&col("s", Kind::Text), ""),
            Ok(Value::Text(String::new()))
        );
        assert_eq!(
            Value::parse(&col("x", Kind::Money), "1.5"),
            Ok(Value::Float(1.5))
        );
        assert!(Value::parse(&col("m", Kind::Month), "2026-13").is_err());
    }
}
