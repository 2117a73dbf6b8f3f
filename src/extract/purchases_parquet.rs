//! The Parquet half of `--purchases FILE`: each row group is decoded column
//! by column with the `parquet` crate's typed column readers, [`BATCH`] rows
//! at a time, into the same [`Sink`] the CSV reader uses.
//!
//! Why not the record API (`get_row_iter`): it builds a `Row` of `Field`s
//! per row, decodes every column and allocates a `String` per text cell,
//! which made a Parquet file slower to read than the same purchases as CSV
//! (issue 9). Here only the known columns are decoded, a text cell is
//! borrowed from the decoded page, and memory holds one batch per column
//! (the file is streamed row group by row group, page by page).
//!
//! Typed columns are taken as typed: a DATE or TIMESTAMP `date` is a date
//! (timestamps by their UTC calendar day), numeric `amount`s are numbers, an
//! integer `mobile` or `order_id` is its digits; any other cell is its text
//! as the record API prints it, so results are the record API's. Known
//! columns must be flat (one value per row): a nested one is a structural
//! error naming it. A reject's `line` is the 1-based row number (Parquet has
//! no lines) and its fields are every column's text; the other columns are
//! decoded only for that, only in a row group with a reject and only at the
//! rejected rows. Compression: snappy, gzip, lz4 and none; a zstd file fails
//! with an error saying so.

use std::fmt::Write as _;
use std::fs::File;
use std::path::Path;

use chrono::{DateTime, Days, NaiveDate};
use parquet::basic::{ConvertedType, Repetition, Type as Physical};
use parquet::column::reader::{ColumnReader, ColumnReaderImpl};
use parquet::data_type::{
    BoolType, ByteArray, ByteArrayType, DoubleType, FixedLenByteArray, FixedLenByteArrayType,
    FloatType, Int32Type, Int64Type, Int96, Int96Type,
};
use parquet::errors::ParquetError;
use parquet::file::reader::{FileReader, RowGroupReader, SerializedFileReader};
use parquet::record::Field;
use parquet::schema::types::{ColumnDescPtr, SchemaDescPtr, Type as SchemaType};

use super::Error;
use super::purchases_file::{AmountValue, Columns, DateValue, Row, Sink};

/// Rows decoded per column at a time: large enough that per-call overhead
/// vanishes, small enough that a batch is a few hundred KB per column.
const BATCH: usize = 8192;

/// Positions of the known columns in [`Plan::slots`] and a row's cells.
const MOBILE: usize = 0;
const DATE: usize = 1;
const AMOUNT: usize = 2;
const STORE: usize = 3;
const ORDER_ID: usize = 4;

pub(crate) fn read(path: &Path, sink: &mut Sink) -> Result<(), Error> {
    let name = path.display().to_string();
    let file = File::open(path).map_err(|source| Error::Open {
        path: path.to_owned(),
        source,
    })?;
    let reader = SerializedFileReader::new(file).map_err(|e| Error::Structural {
        path: name.clone(),
        line: 0,
        message: format!("not a readable Parquet file: {e}"),
    })?;
    let plan = Plan::new(name, reader.metadata().file_metadata().schema_descr_ptr())?;
    sink.out.reject_header = plan.header.clone();
    let mut rows_before = 0u64;
    for g in 0..reader.num_row_groups() {
        let group = reader
            .get_row_group(g)
            .map_err(|e| plan.error(rows_before + 1, format!("row group {g}: {e}")))?;
        rows_before += plan.read_group(group.as_ref(), rows_before, sink)?;
    }
    Ok(())
}

/// What to decode, found once from the file's schema.
struct Plan {
    /// The file's name, for errors.
    path: String,
    /// Top-level column names: the header of the rejects file.
    header: Vec<String>,
    /// The known columns, at [`MOBILE`], [`DATE`], … ([`ORDER_ID`] only
    /// when the file has it).
    slots: Vec<Slot>,
    /// Per top-level column, its leaf when it is flat.
    leaves: Vec<Option<usize>>,
    schema: SchemaDescPtr,
}

/// One flat top-level column.
struct Slot {
    /// Position among the top-level columns (its field in a reject).
    field: usize,
    /// Its column chunk in each row group.
    leaf: usize,
    descr: ColumnDescPtr,
    kind: Kind,
}

impl Plan {
    fn new(path: String, schema: SchemaDescPtr) -> Result<Plan, Error> {
        let fields = schema.root_schema().get_fields();
        let header: Vec<String> = fields.iter().map(|f| f.name().to_owned()).collect();
        let structural = |message| Error::Structural {
            path: path.clone(),
            line: 0,
            message,
        };
        let cols = Columns::find(&header).map_err(structural)?;
        // A top-level column is flat when it is one primitive, non-repeated leaf.
        let mut leaf_count = vec![0usize; fields.len()];
        let mut leaves = vec![None; fields.len()];
        for leaf in 0..schema.num_columns() {
            let field = schema.get_column_root_idx(leaf);
            leaf_count[field] += 1;
            leaves[field] = Some(leaf);
        }
        for (field, leaf) in leaves.iter_mut().enumerate() {
            let f = &fields[field];
            let repeated = f.get_basic_info().has_repetition()
                && f.get_basic_info().repetition() == Repetition::REPEATED;
            if leaf_count[field] != 1 || !f.is_primitive() || repeated {
                *leaf = None;
            }
        }
        let known = [
            Some(cols.mobile),
            Some(cols.date),
            Some(cols.amount),
            Some(cols.store),
        ];
        let mut slots = Vec::with_capacity(5);
        for field in known.into_iter().chain([cols.order_id]).flatten() {
            let name = &header[field];
            let leaf = leaves[field].ok_or_else(|| {
                structural(format!(
                    "column `{name}` is nested (a group, list or map); \
                     purchases columns must hold one value per row"
                ))
            })?;
            let descr = schema.column(leaf);
            let kind = Kind::of(&descr);
            if kind == Kind::Raw {
                return Err(structural(format!(
                    "column `{name}` has a type segpipe cannot read ({} {})",
                    descr.physical_type(),
                    descr.converted_type()
                )));
            }
            slots.push(Slot {
                field,
                leaf,
                descr,
                kind,
            });
        }
        Ok(Plan {
            path,
            header,
            slots,
            leaves,
            schema,
        })
    }

    fn error(&self, line: u64, message: String) -> Error {
        Error::Structural {
            path: self.path.clone(),
            line,
            message,
        }
    }

    /// A column chunk's reader; `line` is the row group's first row.
    fn chunk(&self, group: &dyn RowGroupReader, leaf: usize, line: u64) -> Result<Chunk, Error> {
        let descr = self.schema.column(leaf);
        match group.get_column_reader(leaf) {
            Ok(reader) => Ok(Chunk::new(reader, descr.max_def_level())),
            Err(e) => {
                let codec = group.metadata().column(leaf).compression();
                Err(self.error(
                    line,
                    format!(
                        "column `{}` ({codec} compression) cannot be read: {e}",
                        descr.name()
                    ),
                ))
            }
        }
    }

    /// Feed one row group's rows to `sink`; returns its row count.
    fn read_group(
        &self,
        group: &dyn RowGroupReader,
        rows_before: u64,
        sink: &mut Sink,
    ) -> Result<u64, Error> {
        let first = rows_before + 1;
        let rows = usize::try_from(group.metadata().num_rows())
            .map_err(|_| self.error(first, "a row group has a negative row count".to_owned()))?;
        let mut chunks = self
            .slots
            .iter()
            .map(|s| self.chunk(group, s.leaf, first))
            .collect::<Result<Vec<_>, _>>()?;
        // Text of a typed cell that is used as text (an integer mobile, say).
        let mut scratch: [String; 5] = Default::default();
        let mut pending: Vec<Pending> = Vec::new();
        let mut start = 0;
        while start < rows {
            let want = BATCH.min(rows - start);
            let line = |r: usize| rows_before + (start + r) as u64 + 1;
            for (chunk, slot) in chunks.iter_mut().zip(&self.slots) {
                let name = slot.descr.name();
                let got = chunk
                    .read(want)
                    .map_err(|e| self.error(line(0), format!("column `{name}`: {e}")))?;
                if got != want {
                    let message = format!(
                        "column `{name}` ends after {} of its row group's {rows} rows",
                        start + got
                    );
                    return Err(self.error(line(got), message));
                }
            }
            // Per column, the next non-null value of the batch.
            let mut next = [0usize; 5];
            for r in 0..want {
                let mut cells = [Cell::Null, Cell::Null, Cell::Null, Cell::Null, Cell::Null];
                for (k, (chunk, slot)) in chunks.iter().zip(&self.slots).enumerate() {
                    if chunk.present(r) {
                        cells[k] = chunk.cell(next[k], slot.kind, &slot.descr).map_err(|m| {
                            let line = line(r);
                            self.error(
                                line,
                                format!("row {line}: column `{}` {m}", slot.descr.name()),
                            )
                        })?;
                        next[k] += 1;
                    }
                }
                let date = match cells[DATE] {
                    Cell::Date(days) => Some(typed_date(i64::from(days), 86_400_000)),
                    Cell::Millis(ms) => Some(typed_date(ms, 1)),
                    Cell::Micros(us) => Some(typed_date(us.div_euclid(1000), 1)),
                    _ => None,
                };
                let amount = match cells[AMOUNT] {
                    Cell::Int(x) => Some(x as f64),
                    Cell::Float(x) => Some(f64::from(x)),
                    Cell::Double(x) => Some(x),
                    _ => None,
                };
                for (k, cell) in cells.iter().enumerate() {
                    let typed = (k == DATE && date.is_some()) || (k == AMOUNT && amount.is_some());
                    if !typed && !matches!(cell, Cell::Null | Cell::Text(_)) {
                        scratch[k].clear();
                        cell.write_text(&mut scratch[k]);
                    }
                }
                let text_at = |k: usize| match &cells[k] {
                    Cell::Null => None,
                    Cell::Text(s) => Some(*s),
                    _ => Some(scratch[k].as_str()),
                };
                let row = Row {
                    mobile: text_at(MOBILE),
                    date: date.unwrap_or_else(|| {
                        text_at(DATE).map_or(DateValue::Missing, DateValue::Text)
                    }),
                    amount: amount.map_or_else(
                        || text_at(AMOUNT).map_or(AmountValue::Missing, AmountValue::Text),
                        AmountValue::Number,
                    ),
                    store: text_at(STORE),
                    order_id: text_at(ORDER_ID),
                };
                if let Err(reason) = sink.push(row) {
                    let mut fields = vec![String::new(); self.header.len()];
                    for (cell, slot) in cells.iter().zip(&self.slots) {
                        cell.write_text(&mut fields[slot.field]);
                    }
                    pending.push(Pending {
                        row: start + r,
                        line: line(r),
                        reason,
                        fields,
                    });
                }
            }
            start += want;
        }
        if !pending.is_empty() {
            self.fill_other_columns(group, first, &mut pending)?;
            for p in pending {
                sink.reject(p.line, p.reason, p.fields);
            }
        }
        Ok(rows as u64)
    }

    /// The fields of the unknown columns of `pending` rejects (in row
    /// order), as the record API prints them. Flat columns skip to each
    /// rejected row; nested ones go through the record API, projected to
    /// them alone.
    fn fill_other_columns(
        &self,
        group: &dyn RowGroupReader,
        first: u64,
        pending: &mut [Pending],
    ) -> Result<(), Error> {
        let known: Vec<usize> = self.slots.iter().map(|s| s.field).collect();
        let mut nested = Vec::new();
        for field in (0..self.header.len()).filter(|f| !known.contains(f)) {
            let Some(leaf) = self.leaves[field] else {
                nested.push(field);
                continue;
            };
            let descr = self.schema.column(leaf);
            let kind = Kind::of(&descr);
            let mut chunk = self.chunk(group, leaf, first)?;
            let mut at = 0;
            for p in pending.iter_mut() {
                let err = |e: String| {
                    self.error(
                        p.line,
                        format!("row {}: column `{}` {e}", p.line, descr.name()),
                    )
                };
                let skipped = chunk.skip(p.row - at).map_err(|e| err(e.to_string()))?;
                let read = chunk.read(1).map_err(|e| err(e.to_string()))?;
                if skipped != p.row - at || read != 1 {
                    return Err(err("ends before its row group does".to_owned()));
                }
                if chunk.present(0) {
                    chunk
                        .cell(0, kind, &descr)
                        .map_err(err)?
                        .write_text(&mut p.fields[field]);
                }
                at = p.row + 1;
            }
        }
        if nested.is_empty() {
            return Ok(());
        }
        let root = self.schema.root_schema();
        let projection = SchemaType::group_type_builder(root.name())
            .with_fields(
                nested
                    .iter()
                    .map(|&f| root.get_fields()[f].clone())
                    .collect(),
            )
            .build()
            .and_then(|p| group.get_row_iter(Some(p)))
            .map_err(|e| self.error(first, format!("nested columns: {e}")));
        let mut rows = projection?;
        let mut at = 0;
        for p in pending.iter_mut() {
            let row = match rows.nth(p.row - at) {
                Some(Ok(row)) => row,
                Some(Err(e)) => return Err(self.error(p.line, format!("row {}: {e}", p.line))),
                None => {
                    let message = format!("row {}: nested columns end early", p.line);
                    return Err(self.error(p.line, message));
                }
            };
            for ((_, value), &field) in row.get_column_iter().zip(&nested) {
                if let Some(text) = text(value) {
                    p.fields[field] = text;
                }
            }
            at = p.row + 1;
        }
        Ok(())
    }
}

/// A rejected row whose unknown columns are not decoded yet.
struct Pending {
    /// Row within its row group.
    row: usize,
    line: u64,
    reason: String,
    fields: Vec<String>,
}

/// How a flat column's values read, by physical and converted type, as
/// the record API's `Field::convert_*` would turn them.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Text,
    /// INT32 or INT64 without a converted type (or INT_32 / INT_64).
    Int,
    Date,
    TimestampMillis,
    TimestampMicros,
    Int96,
    Float,
    Double,
    /// Rare types: through `Field::convert_*` and its printing.
    Converted,
    /// A pairing `Field::convert_*` would panic on (an INTERVAL, say):
    /// printed raw in a reject, refused as a known column.
    Raw,
}

impl Kind {
    fn of(descr: &ColumnDescPtr) -> Kind {
        use ConvertedType as C;
        match (descr.physical_type(), descr.converted_type()) {
            (Physical::BYTE_ARRAY, C::UTF8 | C::ENUM | C::JSON) => Kind::Text,
            (Physical::INT32, C::NONE | C::INT_32) | (Physical::INT64, C::NONE | C::INT_64) => {
                Kind::Int
            }
            (Physical::INT32, C::DATE) => Kind::Date,
            (Physical::INT64, C::TIMESTAMP_MILLIS) => Kind::TimestampMillis,
            (Physical::INT64, C::TIMESTAMP_MICROS) => Kind::TimestampMicros,
            (Physical::INT96, _) => Kind::Int96,
            (Physical::FLOAT, _) => Kind::Float,
            (Physical::DOUBLE, _) => Kind::Double,
            (Physical::BOOLEAN, _)
            | (
                Physical::INT32,
                C::INT_8
                | C::INT_16
                | C::UINT_8
                | C::UINT_16
                | C::UINT_32
                | C::TIME_MILLIS
                | C::DECIMAL,
            )
            | (Physical::INT64, C::UINT_64 | C::TIME_MICROS | C::DECIMAL)
            | (Physical::BYTE_ARRAY, C::BSON | C::NONE | C::DECIMAL)
            | (Physical::FIXED_LEN_BYTE_ARRAY, C::NONE | C::DECIMAL) => Kind::Converted,
            _ => Kind::Raw,
        }
    }
}

/// One cell of a row, borrowed from its column's batch where it can be.
enum Cell<'a> {
    Null,
    Text(&'a str),
    Int(i64),
    /// Days since the epoch.
    Date(i32),
    Millis(i64),
    Micros(i64),
    Float(f32),
    Double(f64),
    /// Boxed: rare, and a `Field` would triple every cell's size.
    Field(Box<Field>),
}

impl Cell<'_> {
    fn field(f: Field) -> Self {
        Cell::Field(Box::new(f))
    }

    /// Append the text the record API gave this cell (`Field`'s printing,
    /// strings unquoted, null empty).
    fn write_text(&self, out: &mut String) {
        // Writing to a String cannot fail.
        let _ = match self {
            Cell::Null => Ok(()),
            Cell::Text(s) => {
                out.push_str(s);
                Ok(())
            }
            Cell::Int(x) => write!(out, "{x}"),
            // `Field` prints dates through chrono and panics beyond its
            // range; there the raw count is all there is to say.
            Cell::Date(days)
                if DateTime::from_timestamp(i64::from(*days) * 86_400, 0).is_some() =>
            {
                write!(out, "{}", Field::Date(*days))
            }
            Cell::Millis(ms) if DateTime::from_timestamp_millis(*ms).is_some() => {
                write!(out, "{}", Field::TimestampMillis(*ms))
            }
            Cell::Micros(us) if DateTime::from_timestamp_micros(*us).is_some() => {
                write!(out, "{}", Field::TimestampMicros(*us))
            }
            Cell::Date(days) => write!(out, "{days}"),
            Cell::Millis(x) | Cell::Micros(x) => write!(out, "{x}"),
            Cell::Float(x) => write!(out, "{}", Field::Float(*x)),
            Cell::Double(x) => write!(out, "{}", Field::Double(*x)),
            Cell::Field(f) => write!(out, "{f}"),
        };
    }
}

/// A typed column reader with its buffer of decoded values.
enum Data {
    Bool(ColumnReaderImpl<BoolType>, Vec<bool>),
    Int32(ColumnReaderImpl<Int32Type>, Vec<i32>),
    Int64(ColumnReaderImpl<Int64Type>, Vec<i64>),
    Int96(ColumnReaderImpl<Int96Type>, Vec<Int96>),
    Float(ColumnReaderImpl<FloatType>, Vec<f32>),
    Double(ColumnReaderImpl<DoubleType>, Vec<f64>),
    Bytes(ColumnReaderImpl<ByteArrayType>, Vec<ByteArray>),
    Fixed(
        ColumnReaderImpl<FixedLenByteArrayType>,
        Vec<FixedLenByteArray>,
    ),
}

/// The same code for every physical type.
macro_rules! each {
    ($data:expr, $reader:ident, $values:ident => $body:expr) => {
        match $data {
            Data::Bool($reader, $values) => $body,
            Data::Int32($reader, $values) => $body,
            Data::Int64($reader, $values) => $body,
            Data::Int96($reader, $values) => $body,
            Data::Float($reader, $values) => $body,
            Data::Double($reader, $values) => $body,
            Data::Bytes($reader, $values) => $body,
            Data::Fixed($reader, $values) => $body,
        }
    };
}

/// One column chunk, read a batch at a time.
struct Chunk {
    data: Data,
    /// Definition levels of the batch's rows.
    defs: Vec<i16>,
    /// The level of a present value; 0 for a required column.
    max_def: i16,
}

impl Chunk {
    fn new(reader: ColumnReader, max_def: i16) -> Chunk {
        let data = match reader {
            ColumnReader::BoolColumnReader(r) => Data::Bool(r, Vec::new()),
            ColumnReader::Int32ColumnReader(r) => Data::Int32(r, Vec::new()),
            ColumnReader::Int64ColumnReader(r) => Data::Int64(r, Vec::new()),
            ColumnReader::Int96ColumnReader(r) => Data::Int96(r, Vec::new()),
            ColumnReader::FloatColumnReader(r) => Data::Float(r, Vec::new()),
            ColumnReader::DoubleColumnReader(r) => Data::Double(r, Vec::new()),
            ColumnReader::ByteArrayColumnReader(r) => Data::Bytes(r, Vec::new()),
            ColumnReader::FixedLenByteArrayColumnReader(r) => Data::Fixed(r, Vec::new()),
        };
        Chunk {
            data,
            defs: Vec::with_capacity(BATCH),
            max_def,
        }
    }

    /// Decode the next `n` rows (fewer at the chunk's end); returns how many.
    fn read(&mut self, n: usize) -> Result<usize, ParquetError> {
        self.defs.clear();
        let defs = Some(&mut self.defs);
        let (rows, _, _) = each!(&mut self.data, reader, values => {
            values.clear();
            reader.read_records(n, defs, None, values)?
        });
        Ok(rows)
    }

    /// Skip `n` rows; returns how many were skipped.
    fn skip(&mut self, n: usize) -> Result<usize, ParquetError> {
        each!(&mut self.data, reader, _values => reader.skip_records(n))
    }

    /// Whether row `r` of the batch holds a value (else it is null).
    #[inline]
    fn present(&self, r: usize) -> bool {
        self.max_def == 0 || self.defs.get(r) == Some(&self.max_def)
    }

    /// The batch's `i`-th non-null value as a cell of `kind`.
    #[inline]
    fn cell(&self, i: usize, kind: Kind, descr: &ColumnDescPtr) -> Result<Cell<'_>, String> {
        let absent = || "has fewer values than rows".to_owned();
        let converted = |e: ParquetError| e.to_string();
        Ok(match &self.data {
            Data::Bytes(_, v) => {
                let b = v.get(i).ok_or_else(absent)?;
                match kind {
                    Kind::Text => Cell::Text(
                        std::str::from_utf8(b.data()).map_err(|e| format!("is not UTF-8: {e}"))?,
                    ),
                    Kind::Converted => {
                        Cell::field(Field::convert_byte_array(descr, b.clone()).map_err(converted)?)
                    }
                    _ => Cell::field(Field::Bytes(b.clone())),
                }
            }
            Data::Int32(_, v) => {
                let x = *v.get(i).ok_or_else(absent)?;
                match kind {
                    Kind::Int => Cell::Int(i64::from(x)),
                    Kind::Date => Cell::Date(x),
                    Kind::Converted => Cell::field(Field::convert_int32(descr, x)),
                    _ => Cell::field(Field::Int(x)),
                }
            }
            Data::Int64(_, v) => {
                let x = *v.get(i).ok_or_else(absent)?;
                match kind {
                    Kind::Int => Cell::Int(x),
                    Kind::TimestampMillis => Cell::Millis(x),
                    Kind::TimestampMicros => Cell::Micros(x),
                    Kind::Converted => Cell::field(Field::convert_int64(descr, x)),
                    _ => Cell::field(Field::Long(x)),
                }
            }
            Data::Int96(_, v) => Cell::Millis(v.get(i).ok_or_else(absent)?.to_millis()),
            Data::Float(_, v) => Cell::Float(*v.get(i).ok_or_else(absent)?),
            Data::Double(_, v) => Cell::Double(*v.get(i).ok_or_else(absent)?),
            Data::Bool(_, v) => Cell::field(Field::Bool(*v.get(i).ok_or_else(absent)?)),
            Data::Fixed(_, v) => {
                let b = ByteArray::from(v.get(i).ok_or_else(absent)?.clone());
                match kind {
                    Kind::Converted => {
                        Cell::field(Field::convert_byte_array(descr, b).map_err(converted)?)
                    }
                    _ => Cell::field(Field::Bytes(b)),
                }
            }
        })
    }
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::shard::Shard;

    use parquet::basic::Compression;
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use parquet::schema::parser::parse_message_type;
    use pretty_assertions::assert_eq;

    use super::*;
    use crate::extract::client::Fetched;
    use crate::extract::purchases_file::read_with;
    use crate::model::Customer;

    /// The reader this module replaced (issue 9), kept as the oracle: the
    /// record API, one `Row` of `Field`s per row, every column decoded.
    fn record_api(path: &Path, sink: &mut Sink) -> Result<(), Error> {
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
            let row = row.map_err(|e| structural(format!("row {line}: {e}")))?;
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

    /// One leaf column of one row group, as the low-level writer takes it.
    enum Values {
        Bool(Vec<bool>),
        I32(Vec<i32>),
        I64(Vec<i64>),
        F32(Vec<f32>),
        F64(Vec<f64>),
        Bytes(Vec<ByteArray>),
        Fixed(Vec<FixedLenByteArray>),
    }

    struct Leaf {
        values: Values,
        defs: Vec<i16>,
        reps: Option<Vec<i16>>,
    }

    /// A flat optional leaf from one cell per row.
    fn optional<T>(cells: impl Iterator<Item = Option<T>>, wrap: fn(Vec<T>) -> Values) -> Leaf {
        let (mut values, mut defs) = (Vec::new(), Vec::new());
        for cell in cells {
            defs.push(i16::from(cell.is_some()));
            values.extend(cell);
        }
        Leaf {
            values: wrap(values),
            defs,
            reps: None,
        }
    }

    fn bytes(text: &str) -> ByteArray {
        ByteArray::from(text.as_bytes().to_vec())
    }

    /// Write `groups` (each a list of leaves, in schema order) as a file of
    /// small pages, so batches, pages and row groups all have edges.
    fn write(path: &Path, schema: &str, groups: Vec<Vec<Leaf>>, compression: Compression) {
        let schema = Arc::new(parse_message_type(schema).expect("schema"));
        let props = WriterProperties::builder()
            .set_compression(compression)
            .set_write_batch_size(700)
            .set_data_page_row_count_limit(700)
            .set_dictionary_page_size_limit(4096)
            .build();
        let file = File::create(path).expect("create");
        let mut writer = SerializedFileWriter::new(file, schema, Arc::new(props)).expect("writer");
        for leaves in groups {
            let mut group = writer.next_row_group().expect("row group");
            for leaf in leaves {
                let mut col = group.next_column().expect("column").expect("a leaf");
                let (defs, reps) = (Some(&leaf.defs[..]), leaf.reps.as_deref());
                match &leaf.values {
                    Values::Bool(v) => col.typed::<BoolType>().write_batch(v, defs, reps),
                    Values::I32(v) => col.typed::<Int32Type>().write_batch(v, defs, reps),
                    Values::I64(v) => col.typed::<Int64Type>().write_batch(v, defs, reps),
                    Values::F32(v) => col.typed::<FloatType>().write_batch(v, defs, reps),
                    Values::F64(v) => col.typed::<DoubleType>().write_batch(v, defs, reps),
                    Values::Bytes(v) => col.typed::<ByteArrayType>().write_batch(v, defs, reps),
                    Values::Fixed(v) => col
                        .typed::<FixedLenByteArrayType>()
                        .write_batch(v, defs, reps),
                }
                .expect("write");
                col.close().expect("close column");
            }
            group.close().expect("close row group");
        }
        writer.close().expect("close file");
    }

    /// Row-group sizes: one over two batches, a tiny one, one under a batch.
    const GROUPS: [std::ops::Range<usize>; 3] = [0..20_000, 20_000..20_010, 20_010..29_010];

    fn customers() -> crate::people::People {
        (0..50)
            .map(|k| Customer {
                mobile: format!("91987654{k:04}"),
                name: None,
                age: None,
                income: None,
                gender: None,
            })
            .collect()
    }

    /// A mobile of row `i`: a customer's in several spellings, a stranger,
    /// or a broken one.
    fn mobile_text(i: usize) -> Option<String> {
        match i {
            _ if i % 19 == 2 => None,
            _ if i.is_multiple_of(97) => Some("12ab".to_owned()),
            _ if i % 60 >= 50 => Some(format!("91999999{:04}", i % 60)),
            _ if i.is_multiple_of(2) => Some(format!("+91 98765 4{:04}", i % 60)),
            _ => Some(format!("91987654{:04}", i % 60)),
        }
    }

    /// Run both readers over `path`; they must agree on everything.
    fn both(path: &Path) -> Fetched {
        let customers = customers();
        let want =
            read_with(path, &customers, Shard::WHOLE, false, record_api).expect("record API");
        let got = read_with(path, &customers, Shard::WHOLE, false, read).expect("column readers");
        assert_eq!(got.reject_header, want.reject_header);
        assert_eq!(got.rejects, want.rejects);
        // `Purchase` keeps a missing amount as NaN, which is never equal.
        let rows = |f: &Fetched| {
            f.purchases
                .iter()
                .map(|p| (p.customer, p.date, p.amount(), p.store(), p.order()))
                .collect::<Vec<_>>()
        };
        assert_eq!(rows(&got), rows(&want));
        assert_eq!(got.stores, want.stores);
        assert_eq!(got.odd_dates, want.odd_dates);
        assert_eq!(got.unmatched, want.unmatched);
        got
    }

    // See: issue 9
    #[test]
    fn issue_9_column_readers_match_the_record_api_across_row_groups_nulls_and_rejects() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("text.parquet");
        let schema = "message schema {
            optional binary note (UTF8);
            optional binary Store (UTF8);
            optional group meta { optional int32 a; optional binary b (UTF8); }
            optional binary MOBILE (UTF8);
            optional binary date (UTF8);
            optional double amount;
            repeated int32 tags;
            optional binary order_id (UTF8);
            optional boolean flag;
        }";
        let groups = GROUPS
            .iter()
            .map(|rows| {
                let rows = || rows.clone();
                let text = |f: fn(usize) -> Option<String>| {
                    optional(rows().map(|i| f(i).map(|t| bytes(&t))), Values::Bytes)
                };
                // meta { a, b }: levels 0 = meta null, 1 = leaf null, 2 = value.
                let (mut a, mut a_defs, mut b, mut b_defs) = (vec![], vec![], vec![], vec![]);
                // tags: an empty list, or i % 3 elements.
                let (mut t, mut t_defs, mut t_reps) = (vec![], vec![], vec![]);
                for i in rows() {
                    let level = (i % 7).min(2) as i16;
                    a_defs.push(level);
                    if level == 2 {
                        a.push(i as i32);
                    }
                    let level = match i {
                        _ if i.is_multiple_of(7) => 0,
                        _ if i.is_multiple_of(5) => 1,
                        _ => 2,
                    };
                    b_defs.push(level);
                    if level == 2 {
                        b.push(bytes(&format!("m{i}")));
                    }
                    if i.is_multiple_of(3) {
                        t_defs.push(0);
                        t_reps.push(0);
                    }
                    for k in 0..i % 3 {
                        t_defs.push(1);
                        t_reps.push(i16::from(k > 0));
                        t.push((i + k) as i32);
                    }
                }
                let (meta_a, meta_b, tags) = (
                    Leaf {
                        values: Values::I32(a),
                        defs: a_defs,
                        reps: None,
                    },
                    Leaf {
                        values: Values::Bytes(b),
                        defs: b_defs,
                        reps: None,
                    },
                    Leaf {
                        values: Values::I32(t),
                        defs: t_defs,
                        reps: Some(t_reps),
                    },
                );
                vec![
                    text(|i| (!i.is_multiple_of(11)).then(|| format!("n{i}"))),
                    text(|i| match i {
                        _ if i % 13 == 3 => None,
                        _ if i % 401 == 5 => Some("bad\0store".to_owned()),
                        _ if i % 17 == 1 => Some("NA".to_owned()),
                        _ => Some(["DMart", "Star Bazaar", " Corner "][i % 3].to_owned()),
                    }),
                    meta_a,
                    meta_b,
                    text(mobile_text),
                    text(|i| {
                        let d = i % 28 + 1;
                        match i % 23 {
                            4 => None,
                            0 => Some(format!("{d:02}-03-2026")),
                            1 => Some(format!("2026/03/{d:02}")),
                            2 => Some(format!("garbage{}", i % 3)),
                            3 => Some("NA".to_owned()),
                            5 => Some(" 2026-03-01 ".to_owned()),
                            6 => Some("2026-10-01T10:00:00Z".to_owned()),
                            _ => Some(format!("2026-03-{d:02}")),
                        }
                    }),
                    optional(
                        rows().map(|i| match i {
                            _ if i % 29 == 6 => None,
                            _ if i % 503 == 7 => Some(1e13),
                            _ if i % 1009 == 8 => Some(f64::NAN),
                            _ => Some((i % 1000) as f64 * 1.25),
                        }),
                        Values::F64,
                    ),
                    tags,
                    text(|i| (i % 31 != 9).then(|| format!("o{}", i % 5000))),
                    optional(
                        rows().map(|i| (i % 37 != 10).then_some(i.is_multiple_of(2))),
                        Values::Bool,
                    ),
                ]
            })
            .collect();
        write(&path, schema, groups, Compression::SNAPPY);

        let got = both(&path);
        assert_eq!(
            got.reject_header,
            [
                "note", "Store", "meta", "MOBILE", "date", "amount", "tags", "order_id", "flag"
            ]
        );
        let total = GROUPS[2].end;
        let missing: Vec<u64> = (0..total)
            .filter(|i| i % 19 == 2)
            .map(|i| i as u64 + 1)
            .collect();
        let rejected: Vec<u64> = got
            .rejects
            .iter()
            .filter(|r| r.reason == "missing mobile")
            .map(|r| r.line)
            .collect();
        assert_eq!(rejected, missing, "rejects name their 1-based row");
        // Rejects in every row group, their unknown columns filled in too.
        for rows in GROUPS {
            let lines = rows.start as u64 + 1..=rows.end as u64;
            assert!(
                got.rejects.iter().any(|r| lines.contains(&r.line)),
                "{rows:?}"
            );
        }
        let row_40 = got
            .rejects
            .iter()
            .find(|r| r.line == 41)
            .expect("row 40 is rejected");
        assert_eq!(
            row_40.fields,
            [
                "n40",
                "Star Bazaar",
                "{a: 40, b: null}",
                "",
                "2026-03-13",
                "50.0",
                "[40]",
                "",
                "true"
            ]
        );
        assert!(got.purchases.len() > 20_000, "{}", got.purchases.len());
        assert!(got.unmatched > 0);
        assert!(!got.odd_dates.is_empty());
    }

    /// Typed columns of every kind the reader takes as typed, `mobile`
    /// required (no definition levels), unknown columns of rarer types.
    fn typed_file(path: &Path, date: &str, amount: &str, order_id: bool) {
        let schema = format!(
            "message m {{
                optional int32 price (DECIMAL(9,2));
                required int64 mobile;
                {date}
                {amount}
                optional fixed_len_byte_array(3) code;
                optional binary store (UTF8);
                optional int32 small (INT_8);
                {}
                optional int64 seen (TIMESTAMP_MILLIS);
            }}",
            if order_id {
                "optional int64 order_id;"
            } else {
                ""
            }
        );
        let groups = GROUPS
            .iter()
            .map(|rows| {
                let rows = || rows.clone();
                let day = |i: usize| 20_500 + (i % 800) as i64;
                let mut leaves = vec![
                    optional(
                        rows().map(|i| (!i.is_multiple_of(3)).then_some(i as i32)),
                        Values::I32,
                    ),
                    Leaf {
                        values: Values::I64(
                            rows()
                                .map(|i| match mobile_text(i) {
                                    // A short number is an invalid mobile.
                                    None => 12345,
                                    Some(m) => {
                                        m.replace(['+', ' ', 'a', 'b'], "").parse().unwrap_or(1)
                                    }
                                })
                                .collect(),
                        ),
                        defs: rows().map(|_| 0).collect(),
                        reps: None,
                    },
                    match date.split_whitespace().nth(1) {
                        Some("int32") => optional(
                            rows().map(|i| (i % 23 != 4).then(|| day(i) as i32)),
                            Values::I32,
                        ),
                        _ if date.contains("MILLIS") => optional(
                            rows().map(|i| (i % 23 != 4).then(|| day(i) * 86_400_000 - 3_600_000)),
                            Values::I64,
                        ),
                        _ => optional(
                            rows()
                                .map(|i| (i % 23 != 4).then(|| day(i) * 86_400_000_000 + i as i64)),
                            Values::I64,
                        ),
                    },
                    {
                        let x = |i: usize| match i {
                            _ if i % 503 == 7 => 2e12,
                            _ => (i % 1000) as f64 * 1.5,
                        };
                        let cells = rows().map(move |i| (i % 29 != 6).then(|| x(i)));
                        match amount.split_whitespace().nth(1) {
                            Some("float") => {
                                optional(cells.map(|c| c.map(|x| x as f32)), Values::F32)
                            }
                            Some("int32") => {
                                optional(cells.map(|c| c.map(|x| x.min(2e9) as i32)), Values::I32)
                            }
                            Some("int64") => {
                                optional(cells.map(|c| c.map(|x| x as i64)), Values::I64)
                            }
                            _ => optional(cells, Values::F64),
                        }
                    },
                    optional(
                        rows().map(|i| {
                            (i % 5 != 1)
                                .then(|| FixedLenByteArray::from(vec![b'a', (i % 26) as u8, 0xff]))
                        }),
                        Values::Fixed,
                    ),
                    optional(
                        rows().map(|i| match i {
                            _ if i % 13 == 3 => None,
                            _ if i % 401 == 5 => Some(bytes("bad\0store")),
                            _ => Some(bytes(["DMart", "Star Bazaar"][i % 2])),
                        }),
                        Values::Bytes,
                    ),
                    optional(
                        rows().map(|i| (i % 4 != 2).then_some((i % 100) as i32)),
                        Values::I32,
                    ),
                ];
                if order_id {
                    leaves.push(optional(
                        rows().map(|i| (i % 31 != 9).then_some((i % 5000) as i64)),
                        Values::I64,
                    ));
                }
                leaves.push(optional(
                    rows().map(|i| (!i.is_multiple_of(6)).then(|| day(i) * 86_400_000 + 1234)),
                    Values::I64,
                ));
                leaves
            })
            .collect();
        write(path, &schema, groups, Compression::UNCOMPRESSED);
    }

    // See: issue 9
    #[test]
    fn issue_9_typed_columns_read_as_the_record_api_read_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cases = [
            (
                "optional int32 date (DATE);",
                "optional float amount;",
                true,
            ),
            (
                "optional int64 date (TIMESTAMP_MILLIS);",
                "optional int32 amount;",
                false,
            ),
            (
                "optional int64 date (TIMESTAMP_MICROS);",
                "optional int64 amount;",
                true,
            ),
            (
                "optional int32 date (DATE);",
                "optional double amount;",
                true,
            ),
        ];
        for (n, (date, amount, order_id)) in cases.into_iter().enumerate() {
            let path = dir.path().join(format!("typed{n}.parquet"));
            typed_file(&path, date, amount, order_id);
            let got = both(&path);
            assert!(got.purchases.len() > 20_000, "{date} {amount}");
            assert!(got.odd_dates.is_empty(), "typed dates are dates");
            assert!(
                got.purchases.iter().all(|p| matches!(
                    p.date,
                    crate::model::RawDate::Ymd(_) | crate::model::RawDate::Null
                )),
                "{date}"
            );
            let too_much = got.rejects.iter().any(|r| r.reason.starts_with("amount `"));
            assert_eq!(too_much, !amount.contains("int32"), "{amount}");
            assert!(
                got.rejects
                    .iter()
                    .any(|r| r.reason.starts_with("invalid mobile"))
            );
            assert!(got.rejects.iter().any(|r| r.reason.contains("NUL")));
        }
    }

    // See: issue 9
    #[test]
    fn issue_9_a_nested_known_column_is_a_structural_error_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (schema, column) in [
            (
                "message m { optional binary mobile (UTF8); optional binary date (UTF8);
                  optional double amount; optional group store { optional binary name (UTF8); } }",
                "store",
            ),
            (
                "message m { repeated binary mobile (UTF8); optional binary date (UTF8);
                  optional double amount; optional binary store (UTF8); }",
                "mobile",
            ),
        ] {
            let path = dir.path().join(format!("{column}.parquet"));
            write(&path, schema, Vec::new(), Compression::UNCOMPRESSED);
            let err =
                read_with(&path, &customers(), Shard::WHOLE, false, read).expect_err("nested");
            assert_eq!(
                err.to_string(),
                format!(
                    "{}:0: column `{column}` is nested (a group, list or map); \
                     purchases columns must hold one value per row",
                    path.display()
                )
            );
        }
    }
}
