//! The Parquet half of `--purchases FILE`: rows streamed through the
//! `parquet` crate's record API into the same [`Sink`] the CSV reader uses.
//!
//! Typed columns are taken as typed: a DATE or TIMESTAMP `date` is a date
//! (timestamps by their UTC calendar day), numeric `amount`s are numbers, an
//! integer `mobile` or `order_id` is its digits. A reject's `line` is the
//! 1-based row number (Parquet has no lines). Compression: snappy, gzip, lz4
//! and none; a zstd file fails with an error saying so.

use std::fs::File;
use std::path::Path;

use chrono::{DateTime, Days, NaiveDate};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;

use super::Error;
use super::purchases_file::{AmountValue, Columns, DateValue, Row, Sink};

pub(crate) fn read(path: &Path, sink: &mut Sink) -> Result<(), Error> {
    let structural = |message: String| Error::Structural {
        path: path.display().to_string(),
        line: 0,
        message,
    };
    let file = File::open(path).map_err(|source| Error::Open {
        path: path.to_owned(),
        source,
    })?;
    let reader = SerializedFileReader::new(file)
        .map_err(|e| structural(format!("not a readable Parquet file: {e}")))?;
    let header: Vec<String> = reader
        .metadata()
        .file_metadata()
        .schema_descr()
        .root_schema()
        .get_fields()
        .iter()
        .map(|f| f.name().to_owned())
        .collect();
    let cols = Columns::find(&header).map_err(structural)?;
    sink.out.reject_header = header.clone();
    let rows = reader
        .get_row_iter(None)
        .map_err(|e| structural(format!("cannot read rows: {e}")))?;
    for (n, row) in rows.enumerate() {
        let line = n as u64 + 1;
        let row = row.map_err(|e| Error::Structural {
            path: path.display().to_string(),
            line,
            message: format!("row {line}: {e}"),
        })?;
        let fields: Vec<&Field> = row.get_column_iter().map(|(_, f)| f).collect();
        let texts: Vec<Option<String>> = fields.iter().map(|f| text(f)).collect();
        let text_at = |i: usize| texts.get(i).and_then(|t| t.as_deref());
        let date = match fields.get(cols.date) {
            Some(Field::Date(days)) => typed_date(i64::from(*days), 86_400_000),
            Some(Field::TimestampMillis(ms)) => typed_date(*ms, 1),
            Some(Field::TimestampMicros(us)) => typed_date(us.div_euclid(1000), 1),
            _ => text_at(cols.date).map_or(DateValue::Missing, DateValue::Text),
        };
        let amount = match fields.get(cols.amount) {
            Some(Field::Double(x)) => AmountValue::Number(*x),
            Some(Field::Float(x)) => AmountValue::Number(f64::from(*x)),
            Some(Field::Int(x)) => AmountValue::Number(f64::from(*x)),
            Some(Field::Long(x)) => AmountValue::Number(*x as f64),
            _ => text_at(cols.amount).map_or(AmountValue::Missing, AmountValue::Text),
        };
        let parsed = Row {
            mobile: text_at(cols.mobile),
            date,
            amount,
            store: text_at(cols.store),
            order_id: cols.order_id.and_then(text_at),
        };
        if let Err(reason) = sink.push(parsed) {
            let fields = texts.into_iter().map(Option::unwrap_or_default).collect();
            sink.reject(line, reason, fields);
        }
    }
    Ok(())
}

/// A value as text; `None` for a Parquet null.
fn text(field: &Field) -> Option<String> {
    match field {
        Field::Null => None,
        Field::Str(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// The UTC calendar day of `count` units of `unit_ms` since the epoch.
fn typed_date(count: i64, unit_ms: i64) -> DateValue<'static> {
    let day = count
        .checked_mul(unit_ms)
        .and_then(DateTime::from_timestamp_millis)
        .map(|t| t.date_naive())
        .or_else(|| {
            // DATE columns far from the epoch: count days directly.
            let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)?;
            u64::try_from(count)
                .ok()
                .and_then(|d| epoch.checked_add_days(Days::new(d)))
        });
    day.map_or(DateValue::Missing, DateValue::Date)
}
