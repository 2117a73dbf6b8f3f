//! Shard interchange files (DESIGN §8): typed Parquet between the step
//! subcommands of a sharded run.
//!
//! - `features.parquet` (written by `features`, one per shard): every
//!   customer of the shard with its unsharded position, raw demographics,
//!   ground truth when known, and the purchase features.
//! - `assignments-I-of-N.parquet` (written by `fit`, one per shard): what
//!   the fit decided for each customer of shard I: segment, RFM scores and
//!   the imputed age and income (medians are over every shard).
//!
//! A reader checks the schema column by column (name, type, nullability)
//! and the shard recorded in the file's metadata, so a file from another
//! version, another step or a truncated copy stops the step with exit 2
//! naming it. Rows go in row groups of 64k, so neither side holds more than
//! one row group of Parquet buffers.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::NaiveDate;
use parquet::basic::{Compression, Type as Physical};
use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int32Type, Int64Type};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::writer::SerializedFileWriter;
use parquet::record::Field;
use parquet::schema::parser::parse_message_type;

use crate::checkpoint::Error;
use crate::model::{Customer, Gender, Persona};
use crate::shard::Shard;
use crate::transform::features::Features;

pub const FEATURES: &str = "features.parquet";

/// File name of shard `shard`'s assignments in the fit directory.
pub fn assignments_name(shard: Shard) -> String {
    format!("assignments-{}-of-{}.parquet", shard.index, shard.count)
}

const ROW_GROUP: usize = 65_536;
const SHARD_KEY: &str = "segpipe.shard";
const TRUTH_KEY: &str = "segpipe.truth";

const FEATURES_SCHEMA: &str = "message segpipe_features {
  required int64 position;
  required binary mobile (UTF8);
  optional binary name (UTF8);
  optional int32 age;
  optional double income;
  optional binary gender (UTF8);
  optional binary persona (UTF8);
  required double clv;
  optional double avg_purchase_amount;
  optional double max_purchase_amount;
  optional double min_purchase_amount;
  required int64 purchase_count;
  optional int32 first_purchase (DATE);
  optional int32 last_purchase (DATE);
  optional int32 days_since_first_purchase;
  optional int32 days_since_last_purchase;
  optional double purchase_frequency;
}";

const ASSIGNMENTS_SCHEMA: &str = "message segpipe_assignments {
  required int64 position;
  required int32 segment;
  optional int32 r_score;
  optional int32 f_score;
  optional int32 m_score;
  optional int32 age;
  optional double income;
}";

/// One shard's customers and features, in position order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ShardFeatures {
    pub shard: Option<Shard>,
    pub positions: Vec<u64>,
    pub customers: Vec<Customer>,
    /// Ground truth, when the shard's extract had a truth file.
    pub truth: Option<Vec<Option<Persona>>>,
    pub feats: Vec<Features>,
}

/// What `fit` decided for one customer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Assignment {
    pub position: u64,
    pub segment: u32,
    pub r: Option<u8>,
    pub f: Option<u8>,
    pub m: Option<u8>,
    pub age: Option<u16>,
    pub income: Option<f64>,
}

// ---------------------------------------------------------------- writing

/// One column's values for a row group; `None` is a Parquet null.
enum Values {
    I64(Vec<Option<i64>>),
    I32(Vec<Option<i32>>),
    F64(Vec<Option<f64>>),
    Text(Vec<Option<ByteArray>>),
}

fn split<T: Clone>(v: &[Option<T>]) -> (Vec<T>, Vec<i16>) {
    let defs = v.iter().map(|x| i16::from(x.is_some())).collect();
    (v.iter().flatten().cloned().collect(), defs)
}

/// Write `rows` rows of `schema`; `column(j, range)` gives column j's values
/// for the rows in `range`.
fn write(
    path: &Path,
    schema: &str,
    metadata: Vec<KeyValue>,
    rows: usize,
    column: impl Fn(usize, std::ops::Range<usize>) -> Values,
) -> Result<(), Error> {
    let fail = |message: String| Error::ShardWrite {
        path: path.to_owned(),
        message,
    };
    let schema = Arc::new(parse_message_type(schema).map_err(|e| fail(e.to_string()))?);
    let nullable: Vec<bool> = schema
        .get_fields()
        .iter()
        .map(|f| f.is_optional())
        .collect();
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_key_value_metadata(Some(metadata))
        .build();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
    }
    let file = File::create(path).map_err(|e| fail(e.to_string()))?;
    let mut writer = SerializedFileWriter::new(file, schema, Arc::new(props))
        .map_err(|e| fail(e.to_string()))?;
    let p = |e: parquet::errors::ParquetError| fail(e.to_string());
    let mut start = 0;
    // An empty shard still gets one (empty) row group: readers see the schema.
    while start < rows || (rows == 0 && start == 0) {
        let range = start..(start + ROW_GROUP).min(rows);
        let mut group = writer.next_row_group().map_err(p)?;
        let mut j = 0;
        while let Some(mut col) = group.next_column().map_err(p)? {
            let defs_for = |d: Vec<i16>| if nullable[j] { Some(d) } else { None };
            match column(j, range.clone()) {
                Values::I64(v) => {
                    let (vals, d) = split(&v);
                    let d = defs_for(d);
                    col.typed::<Int64Type>()
                        .write_batch(&vals, d.as_deref(), None)
                        .map_err(p)?;
                }
                Values::I32(v) => {
                    let (vals, d) = split(&v);
                    let d = defs_for(d);
                    col.typed::<Int32Type>()
                        .write_batch(&vals, d.as_deref(), None)
                        .map_err(p)?;
                }
                Values::F64(v) => {
                    let (vals, d) = split(&v);
                    let d = defs_for(d);
                    col.typed::<DoubleType>()
                        .write_batch(&vals, d.as_deref(), None)
                        .map_err(p)?;
                }
                Values::Text(v) => {
                    let (vals, d) = split(&v);
                    let d = defs_for(d);
                    col.typed::<ByteArrayType>()
                        .write_batch(&vals, d.as_deref(), None)
                        .map_err(p)?;
                }
            }
            col.close().map_err(p)?;
            j += 1;
        }
        group.close().map_err(p)?;
        start = range.end.max(1);
    }
    writer.close().map_err(p)?;
    Ok(())
}

fn text(s: Option<&str>) -> Option<ByteArray> {
    s.map(|s| ByteArray::from(s.as_bytes().to_vec()))
}

fn days(d: Option<NaiveDate>) -> Option<i32> {
    d.map(|d| (d - NaiveDate::default()).num_days() as i32)
}

fn shard_metadata(shard: Shard) -> KeyValue {
    KeyValue::new(SHARD_KEY.to_owned(), shard.to_string())
}

/// Write a shard's `features.parquet`.
pub fn write_features(path: &Path, f: &ShardFeatures) -> Result<(), Error> {
    let shard = f.shard.unwrap_or(Shard::WHOLE);
    let metadata = vec![
        shard_metadata(shard),
        KeyValue::new(
            TRUTH_KEY.to_owned(),
            if f.truth.is_some() { "1" } else { "0" }.to_owned(),
        ),
    ];
    let c = &f.customers;
    let x = &f.feats;
    write(path, FEATURES_SCHEMA, metadata, c.len(), |j, r| {
        let feat =
            |g: fn(&Features) -> Option<f64>| Values::F64(x[r.clone()].iter().map(g).collect());
        let int =
            |g: fn(&Features) -> Option<i32>| Values::I32(x[r.clone()].iter().map(g).collect());
        match j {
            0 => Values::I64(f.positions[r].iter().map(|&p| Some(p as i64)).collect()),
            1 => Values::Text(c[r].iter().map(|c| text(Some(&c.mobile))).collect()),
            2 => Values::Text(c[r].iter().map(|c| text(c.name.as_deref())).collect()),
            3 => Values::I32(c[r].iter().map(|c| c.age.map(i32::from)).collect()),
            4 => Values::F64(c[r].iter().map(|c| c.income).collect()),
            5 => Values::Text(
                c[r].iter()
                    .map(|c| text(c.gender.map(Gender::as_str)))
                    .collect(),
            ),
            6 => Values::Text(
                r.map(|i| {
                    let p = f.truth.as_ref().and_then(|t| t.get(i).copied().flatten());
                    text(p.map(Persona::as_str))
                })
                .collect(),
            ),
            7 => feat(|f| Some(f.clv())),
            8 => feat(|f| f.avg_purchase_amount()),
            9 => feat(|f| f.max_purchase_amount()),
            10 => feat(|f| f.min_purchase_amount()),
            11 => Values::I64(
                x[r].iter()
                    .map(|f| Some(i64::from(f.purchase_count())))
                    .collect(),
            ),
            12 => int(|f| days(f.first_purchase())),
            13 => int(|f| days(f.last_purchase())),
            14 => int(|f| f.days_since_first_purchase()),
            15 => int(|f| f.days_since_last_purchase()),
            _ => feat(|f| f.purchase_frequency()),
        }
    })
}

/// Write one shard's assignments (in position order).
pub fn write_assignments(path: &Path, shard: Shard, rows: &[Assignment]) -> Result<(), Error> {
    let score = |s: Option<u8>| s.map(i32::from);
    write(
        path,
        ASSIGNMENTS_SCHEMA,
        vec![shard_metadata(shard)],
        rows.len(),
        |j, r| {
            let a = &rows[r];
            match j {
                0 => Values::I64(a.iter().map(|a| Some(a.position as i64)).collect()),
                1 => Values::I32(a.iter().map(|a| Some(a.segment as i32)).collect()),
                2 => Values::I32(a.iter().map(|a| score(a.r)).collect()),
                3 => Values::I32(a.iter().map(|a| score(a.f)).collect()),
                4 => Values::I32(a.iter().map(|a| score(a.m)).collect()),
                5 => Values::I32(a.iter().map(|a| a.age.map(i32::from)).collect()),
                _ => Values::F64(a.iter().map(|a| a.income).collect()),
            }
        },
    )
}

// ---------------------------------------------------------------- reading

/// An open interchange file whose schema matched.
struct Reader {
    path: PathBuf,
    inner: SerializedFileReader<File>,
}

impl Reader {
    fn open(path: &Path, schema: &str) -> Result<Reader, Error> {
        let bad = |message: String| Error::Shard {
            path: path.to_owned(),
            message,
        };
        let file = File::open(path).map_err(|source| Error::Open {
            path: path.to_owned(),
            source,
        })?;
        let inner = SerializedFileReader::new(file)
            .map_err(|e| bad(format!("not a readable Parquet file (truncated?): {e}")))?;
        let expected = parse_message_type(schema).map_err(|e| bad(e.to_string()))?;
        let want: Vec<(String, Physical, bool)> = expected
            .get_fields()
            .iter()
            .map(|f| (f.name().to_owned(), f.get_physical_type(), f.is_optional()))
            .collect();
        let found: Vec<(String, Physical, bool)> = inner
            .metadata()
            .file_metadata()
            .schema()
            .get_fields()
            .iter()
            .map(|f| {
                let physical = if f.is_primitive() {
                    f.get_physical_type()
                } else {
                    Physical::FIXED_LEN_BYTE_ARRAY
                };
                (f.name().to_owned(), physical, f.is_optional())
            })
            .collect();
        if want != found {
            let show = |cols: &[(String, Physical, bool)]| {
                cols.iter()
                    .map(|(n, t, o)| format!("{n} {t}{}", if *o { "?" } else { "" }))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(bad(format!(
                "schema mismatch: expected [{}], found [{}]",
                show(&want),
                show(&found)
            )));
        }
        Ok(Reader {
            path: path.to_owned(),
            inner,
        })
    }

    fn metadata(&self, key: &str) -> Option<String> {
        self.inner
            .metadata()
            .file_metadata()
            .key_value_metadata()?
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.clone())
    }

    fn shard(&self) -> Result<Shard, Error> {
        let raw = self.metadata(SHARD_KEY).unwrap_or_default();
        raw.parse().map_err(|e| Error::Shard {
            path: self.path.clone(),
            message: format!("no valid `{SHARD_KEY}` in its metadata: {e}"),
        })
    }

    /// Every row's fields, in column order.
    fn rows(
        &self,
        mut each: impl FnMut(u64, &[&Field]) -> Result<(), String>,
    ) -> Result<(), Error> {
        let bad = |row: u64, message: String| Error::Shard {
            path: self.path.clone(),
            message: format!("row {row}: {message}"),
        };
        let rows = self
            .inner
            .get_row_iter(None)
            .map_err(|e| bad(0, e.to_string()))?;
        for (n, row) in rows.enumerate() {
            let n = n as u64 + 1;
            let row = row.map_err(|e| bad(n, e.to_string()))?;
            let fields: Vec<&Field> = row.get_column_iter().map(|(_, f)| f).collect();
            each(n, &fields).map_err(|m| bad(n, m))?;
        }
        Ok(())
    }
}

fn get_i64(f: &Field) -> Result<Option<i64>, String> {
    match f {
        Field::Null => Ok(None),
        Field::Long(v) => Ok(Some(*v)),
        other => Err(format!("expected an int64, found {other}")),
    }
}

fn get_i32(f: &Field) -> Result<Option<i32>, String> {
    match f {
        Field::Null => Ok(None),
        Field::Int(v) => Ok(Some(*v)),
        Field::Date(v) => Ok(Some(*v)),
        other => Err(format!("expected an int32, found {other}")),
    }
}

fn get_f64(f: &Field) -> Result<Option<f64>, String> {
    match f {
        Field::Null => Ok(None),
        Field::Double(v) => Ok(Some(*v)),
        other => Err(format!("expected a double, found {other}")),
    }
}

fn get_str(f: &Field) -> Result<Option<&str>, String> {
    match f {
        Field::Null => Ok(None),
        Field::Str(s) => Ok(Some(s)),
        other => Err(format!("expected text, found {other}")),
    }
}

fn required<T>(v: Option<T>, what: &str) -> Result<T, String> {
    v.ok_or_else(|| format!("`{what}` is null"))
}

fn small<T: TryFrom<i64>>(v: Option<i64>, what: &str) -> Result<Option<T>, String> {
    v.map(|x| T::try_from(x).map_err(|_| format!("`{what}` = {x} is out of range")))
        .transpose()
}

fn date(v: Option<i32>) -> Option<NaiveDate> {
    v.and_then(|d| NaiveDate::default().checked_add_signed(chrono::Duration::days(i64::from(d))))
}

/// `Features` keeps no `days_since_first_purchase` or `purchase_frequency`
/// of its own but derives them, so a stored one that differs from the
/// derived value would read back changed: refused instead. The writer
/// writes the derived values, so every file it made passes.
fn not_derived(what: &str, stored: &dyn std::fmt::Debug, derived: &dyn std::fmt::Debug) -> String {
    format!("`{what}` = {stored:?} does not follow from the other features ({derived:?})")
}

/// Read a shard's `features.parquet`.
pub fn read_features(path: &Path) -> Result<ShardFeatures, Error> {
    let r = Reader::open(path, FEATURES_SCHEMA)?;
    let has_truth = r.metadata(TRUTH_KEY).as_deref() == Some("1");
    let mut out = ShardFeatures {
        shard: Some(r.shard()?),
        ..ShardFeatures::default()
    };
    let mut truth = Vec::new();
    r.rows(|_, f| {
        let i64_at = |j: usize| get_i64(f[j]);
        let i32_at = |j: usize| get_i32(f[j]);
        let f64_at = |j: usize| get_f64(f[j]);
        out.positions
            .push(small(Some(required(i64_at(0)?, "position")?), "position")?.unwrap_or(0));
        let gender = match get_str(f[5])? {
            None => None,
            Some(g) => Some(Gender::parse(g).ok_or_else(|| format!("unknown gender `{g}`"))?),
        };
        out.customers.push(Customer {
            mobile: required(get_str(f[1])?, "mobile")?.to_owned(),
            name: get_str(f[2])?.map(str::to_owned),
            age: small(i32_at(3)?.map(i64::from), "age")?,
            income: f64_at(4)?,
            gender,
        });
        truth.push(match get_str(f[6])? {
            None => None,
            Some(p) => Some(Persona::parse(p).ok_or_else(|| format!("unknown persona `{p}`"))?),
        });
        let feats = Features::default()
            .with_clv(required(f64_at(7)?, "clv")?)
            .with_avg_purchase_amount(f64_at(8)?)
            .with_max_purchase_amount(f64_at(9)?)
            .with_min_purchase_amount(f64_at(10)?)
            .with_purchase_count(required(
                small(i64_at(11)?, "purchase_count")?,
                "purchase_count",
            )?)
            .with_first_purchase(date(i32_at(12)?))
            .with_last_purchase(date(i32_at(13)?))
            .with_days_since_last_purchase(i32_at(15)?);
        let (stored, derived) = (i32_at(14)?, feats.days_since_first_purchase());
        if stored != derived {
            return Err(not_derived("days_since_first_purchase", &stored, &derived));
        }
        // By bits: the value read back must be the one written.
        let (stored, derived) = (f64_at(16)?, feats.purchase_frequency());
        if stored.map(f64::to_bits) != derived.map(f64::to_bits) {
            return Err(not_derived("purchase_frequency", &stored, &derived));
        }
        out.feats.push(feats);
        Ok(())
    })?;
    out.truth = has_truth.then_some(truth);
    Ok(out)
}

/// Read shard assignments; returns the shard recorded in the file too.
pub fn read_assignments(path: &Path) -> Result<(Shard, Vec<Assignment>), Error> {
    let r = Reader::open(path, ASSIGNMENTS_SCHEMA)?;
    let shard = r.shard()?;
    let mut out = Vec::new();
    r.rows(|_, f| {
        let score = |j: usize| -> Result<Option<u8>, String> {
            small(get_i32(f[j])?.map(i64::from), "score")
        };
        out.push(Assignment {
            position: small(Some(required(get_i64(f[0])?, "position")?), "position")?.unwrap_or(0),
            segment: required(small(get_i32(f[1])?.map(i64::from), "segment")?, "segment")?,
            r: score(2)?,
            f: score(3)?,
            m: score(4)?,
            age: small(get_i32(f[5])?.map(i64::from), "age")?,
            income: get_f64(f[6])?,
        });
        Ok(())
    })?;
    Ok((shard, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ShardFeatures {
        let d = NaiveDate::from_ymd_opt(2026, 3, 1);
        ShardFeatures {
            shard: Some(Shard { index: 1, count: 3 }),
            positions: vec![4, 9],
            customers: vec![
                Customer {
                    mobile: "919800000001".into(),
                    name: Some("Asha".into()),
                    age: Some(34),
                    income: Some(1234.5),
                    gender: Some(Gender::Female),
                },
                Customer {
                    mobile: "919800000002".into(),
                    name: None,
                    age: None,
                    income: None,
                    gender: None,
                },
            ],
            truth: Some(vec![Some(Persona::Loyal), None]),
            feats: vec![
                // Its frequency (2.0) and days since first (3) are derived.
                Features::default()
                    .with_clv(10.5)
                    .with_avg_purchase_amount(Some(5.25))
                    .with_max_purchase_amount(Some(6.0))
                    .with_min_purchase_amount(Some(4.5))
                    .with_purchase_count(2)
                    .with_first_purchase(d)
                    .with_last_purchase(d)
                    .with_days_since_last_purchase(Some(3)),
                Features::default(),
            ],
        }
    }

    #[test]
    fn features_round_trip_exactly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(FEATURES);
        write_features(&path, &sample()).expect("write");
        assert_eq!(read_features(&path).expect("read"), sample());
    }

    /// One customer who spent 2.5 twice on 2026-03-01, 3 days before as-of,
    /// with the derived columns as given.
    fn write_one(path: &Path, since_first: Option<i32>, frequency: Option<f64>) {
        let day = days(NaiveDate::from_ymd_opt(2026, 3, 1));
        let metadata = vec![
            shard_metadata(Shard::WHOLE),
            KeyValue::new(TRUTH_KEY.to_owned(), "0".to_owned()),
        ];
        write(path, FEATURES_SCHEMA, metadata, 1, |j, _| match j {
            0 => Values::I64(vec![Some(0)]),
            1 => Values::Text(vec![text(Some("919800000001"))]),
            2 | 5 | 6 => Values::Text(vec![None]),
            3 => Values::I32(vec![None]),
            4 => Values::F64(vec![None]),
            7 => Values::F64(vec![Some(5.0)]),
            8..=10 => Values::F64(vec![Some(2.5)]),
            11 => Values::I64(vec![Some(2)]),
            12 | 13 => Values::I32(vec![day]),
            14 => Values::I32(vec![since_first]),
            15 => Values::I32(vec![Some(3)]),
            _ => Values::F64(vec![frequency]),
        })
        .expect("write");
    }

    #[test]
    fn stored_derived_values_that_do_not_follow_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(FEATURES);
        write_one(&path, Some(3), Some(2.0));
        let f = &read_features(&path).expect("derivable").feats[0];
        assert_eq!(
            (f.days_since_first_purchase(), f.purchase_frequency()),
            (Some(3), Some(2.0))
        );
        for (since_first, frequency, what) in [
            (Some(3), Some(2.5), "`purchase_frequency` = Some(2.5)"),
            (Some(3), None, "`purchase_frequency` = None"),
            (Some(4), Some(2.0), "`days_since_first_purchase` = Some(4)"),
        ] {
            write_one(&path, since_first, frequency);
            let err = read_features(&path).expect_err("not derivable").to_string();
            assert!(err.contains("row 1") && err.contains(what), "{err}");
        }
    }

    #[test]
    fn a_truncated_shard_file_names_itself() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(FEATURES);
        write_features(&path, &sample()).expect("write");
        let bytes = std::fs::read(&path).expect("read back");
        std::fs::write(&path, &bytes[..bytes.len() / 2]).expect("truncate");
        let err = read_features(&path).expect_err("truncated").to_string();
        assert!(
            err.contains("features.parquet") && err.contains("truncated"),
            "{err}"
        );
    }

    #[test]
    fn another_schema_is_refused_naming_the_columns() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.parquet");
        write_assignments(&path, Shard::WHOLE, &[]).expect("write");
        let err = read_features(&path).expect_err("wrong schema").to_string();
        assert!(
            err.contains("schema mismatch") && err.contains("position"),
            "{err}"
        );
    }
}
