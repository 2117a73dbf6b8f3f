//! `--purchases FILE`: the purchases from a file instead of the API
//! (DESIGN §3): CSV, or Parquet by the `.parquet` extension.
//!
//! Columns `mobile, date, amount, store` and optional `order_id`, in any
//! order and case, extra columns ignored, DESIGN §3's null tokens. The file
//! is streamed: each row becomes a 32-byte `Purchase` at once, so memory
//! holds no row of strings beyond the one being read. A malformed row is a
//! reject (line and reason); a purchase of a mobile that is no valid
//! customer is counted, not loaded; a file that cannot be read as a table
//! at all is a structural error (exit 2) naming it.

use std::fs::File;
use std::path::Path;

use super::Error;
use super::client::Fetched;
use super::customers::is_missing;
use super::lines::{Line, Lines, MAX_LINE, Splitter};
use crate::interner::Interner;
use crate::mobile;
use crate::model::{Purchase, RawDate, Reject, order_key};
use crate::people::{MobileIndex, People};
use crate::shard::Shard;

/// The columns DESIGN §3 names; `order_id` is optional.
const REQUIRED: [&str; 4] = ["mobile", "date", "amount", "store"];
const ORDER_ID: &str = "order_id";

/// Largest amount every sink stores exactly (NUMERIC(14,2)).
pub const MAX_AMOUNT: f64 = 1e12;

/// Read every purchase of `path` for `customers`.
pub fn read(path: &Path, customers: &People, shard: Shard, spool: bool) -> Result<Fetched, Error> {
    let parquet = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("parquet"));
    if parquet {
        read_with(
            path,
            customers,
            shard,
            spool,
            super::purchases_parquet::read,
        )
    } else {
        read_with(path, customers, shard, spool, read_csv)
    }
}

/// A reader of one file format, feeding rows to the sink.
pub(crate) type Reader = fn(&Path, &mut Sink) -> Result<(), Error>;

/// [`read`] with the format's reader given (tests hold two Parquet readers
/// against each other through the same sink).
pub(crate) fn read_with(
    path: &Path,
    customers: &People,
    shard: Shard,
    spool: bool,
    reader: Reader,
) -> Result<Fetched, Error> {
    let index = customers.index_by_mobile();
    let mut sink = Sink {
        index,
        out: Fetched {
            spool: if spool {
                Some(crate::spool::Spool::new(customers.len()).map_err(Error::Spool)?)
            } else {
                None
            },
            ..Fetched::default()
        },
        stores: Interner::default(),
        shard,
        spill_error: None,
    };
    reader(path, &mut sink)?;
    if let Some(e) = sink.spill_error.take() {
        return Err(Error::Spool(e));
    }
    let mut out = sink.out;
    out.spill()?;
    // Joined's contract: sorted by customer, file order within one (stable).
    out.purchases.sort_by_key(|p| p.customer);
    Ok(out)
}

/// One row's values, as text or typed by the file format.
pub(crate) struct Row<'a> {
    pub mobile: Option<&'a str>,
    pub date: DateValue<'a>,
    pub amount: AmountValue<'a>,
    pub store: Option<&'a str>,
    pub order_id: Option<&'a str>,
}

pub(crate) enum DateValue<'a> {
    Missing,
    Text(&'a str),
    /// A typed date column (Parquet DATE / TIMESTAMP): already a date.
    Date(chrono::NaiveDate),
}

pub(crate) enum AmountValue<'a> {
    Missing,
    Text(&'a str),
    Number(f64),
}

/// Where rows go: validated into purchases, or into rejects with a reason.
pub(crate) struct Sink {
    index: MobileIndex,
    pub out: Fetched,
    stores: Interner,
    shard: Shard,
    spill_error: Option<std::io::Error>,
}

impl Sink {
    /// Add one row; `Err(reason)` makes it a reject.
    pub(crate) fn push(&mut self, row: Row<'_>) -> Result<(), String> {
        let mobile = match row.mobile.filter(|m| !is_missing(m)) {
            None => return Err("missing mobile".to_owned()),
            Some(m) => mobile::normalize(m).map_err(|e| format!("invalid mobile: {e}"))?,
        };
        let amount = match row.amount {
            AmountValue::Missing => None,
            AmountValue::Text(t) if is_missing(t) => None,
            AmountValue::Text(t) => Some(parse_amount(t)?),
            // The number's text only for the message: formatting every
            // amount of a typed Parquet column cost a tenth of its read.
            AmountValue::Number(x) => Some(check_amount(x, || x.to_string())?),
        };
        let date = match row.date {
            DateValue::Missing => RawDate::Null,
            DateValue::Text(t) if is_missing(t) => RawDate::Null,
            DateValue::Text(t) => RawDate::classify(Some(t.trim()), &mut self.out.odd_dates),
            DateValue::Date(d) => RawDate::Ymd(d),
        };
        if let Some(text) = [row.store, row.order_id]
            .into_iter()
            .flatten()
            .find(|t| t.contains('\0'))
        {
            return Err(format!("`{}` holds a NUL byte", text.escape_default()));
        }
        let store = row
            .store
            .filter(|s| !is_missing(s))
            .map(|s| self.stores.id(&mut self.out.stores, s.trim()));
        let order = row
            .order_id
            .filter(|o| !is_missing(o))
            .map_or(0, |o| order_key(o.trim()));
        match self.index.get(&mobile::key(&mobile)) {
            Some(&customer) => {
                self.out
                    .purchases
                    .push(Purchase::new(customer, date, amount, store).with_order(order));
                if self.out.spool.is_some()
                    && self.out.purchases.len() >= 1 << 16
                    && self.spill_error.is_none()
                    && let Err(Error::Spool(e)) = self.out.spill()
                {
                    self.spill_error = Some(e);
                }
            }
            None if self.shard.contains(&mobile) => self.out.unmatched += 1,
            // Another shard's customer (or nobody's): that shard counts it.
            None => {}
        }
        Ok(())
    }

    pub(crate) fn reject(&mut self, line: u64, reason: String, fields: Vec<String>) {
        if !self.shard.keeps_rejects() {
            return;
        }
        self.out.rejects.push(Reject {
            line,
            reason,
            fields,
        });
    }
}

fn parse_amount(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let x: f64 = t.parse().map_err(|_| format!("unparseable amount `{t}`"))?;
    check_amount(x, || t.to_owned())
}

/// An amount every sink can store (DESIGN §5: what is accepted always loads).
/// `text` gives the amount as written, for the reason.
fn check_amount(x: f64, text: impl FnOnce() -> String) -> Result<f64, String> {
    if !x.is_finite() || x.abs() >= MAX_AMOUNT {
        return Err(format!(
            "amount `{}` is outside ±{MAX_AMOUNT:e}, which no money column can hold",
            text()
        ));
    }
    Ok(x)
}

/// Column positions of a header, matched case-insensitively.
pub(crate) struct Columns {
    pub mobile: usize,
    pub date: usize,
    pub amount: usize,
    pub store: usize,
    pub order_id: Option<usize>,
}

impl Columns {
    /// `Err` names the missing columns and the header seen.
    pub(crate) fn find(header: &[String]) -> Result<Columns, String> {
        let pos = |name: &str| {
            header.iter().position(|h| {
                h.trim()
                    .trim_start_matches('\u{feff}')
                    .eq_ignore_ascii_case(name)
            })
        };
        let missing: Vec<String> = REQUIRED
            .iter()
            .filter(|c| pos(c).is_none())
            .map(|c| format!("`{c}`"))
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "missing required column{} {} (header: {})",
                if missing.len() > 1 { "s" } else { "" },
                missing.join(", "),
                header.join(",")
            ));
        }
        let at = |name: &str| pos(name).unwrap_or_default();
        Ok(Columns {
            mobile: at("mobile"),
            date: at("date"),
            amount: at("amount"),
            store: at("store"),
            order_id: pos(ORDER_ID),
        })
    }
}

/// Delimiters tried on the header, in order.
const DELIMITERS: [u8; 4] = [b',', b';', b'\t', b'|'];

/// CSV, line by line (the same physical-line reader as the customers file,
/// so a broken quote costs its own line only and line numbers are an
/// editor's): a quoted field cannot span lines in a purchases file.
fn read_csv(path: &Path, sink: &mut Sink) -> Result<(), Error> {
    let name = path.display().to_string();
    let structural = |line: u64, message: String| Error::Structural {
        path: name.clone(),
        line,
        message,
    };
    let file = File::open(path).map_err(|source| Error::Open {
        path: path.to_owned(),
        source,
    })?;
    let mut lines = Lines::new(std::io::BufReader::with_capacity(1 << 20, file), MAX_LINE);
    let mut splitter = Splitter::default();
    let io_err = |source| Error::Open {
        path: path.to_owned(),
        source,
    };
    // The header: the first non-blank line, in a delimiter that names every
    // required column.
    let (header_line, header, delim, cols) = loop {
        let Some((n, line)) = lines.next_line().map_err(io_err)? else {
            return Err(structural(1, "no header row".to_owned()));
        };
        let Line::Text(bytes) = line else {
            return Err(structural(n, "the header line is too long".to_owned()));
        };
        let text = std::str::from_utf8(bytes)
            .map_err(|_| structural(n, "the header is not UTF-8".to_owned()))?;
        if text.trim().is_empty() {
            continue;
        }
        let mut first_err = None;
        let mut found = None;
        for delim in DELIMITERS {
            let (fields, _) = splitter.split(text, delim);
            let header: Vec<String> = fields.iter().map(|f| (*f).to_owned()).collect();
            match Columns::find(&header) {
                Ok(cols) => {
                    found = Some((header, delim, cols));
                    break;
                }
                Err(m) => {
                    first_err.get_or_insert(m);
                }
            }
        }
        match found {
            Some((header, delim, cols)) => break (n, header, delim, cols),
            None => return Err(structural(n, first_err.unwrap_or_default())),
        }
    };
    tracing::debug!(message = "Purchases header.", line = header_line, delimiter = %char::from(delim));
    sink.out.reject_header = header.clone();
    while let Some((n, line)) = lines.next_line().map_err(io_err)? {
        let bytes = match line {
            Line::Text(bytes) => bytes,
            Line::TooLong { len, .. } => {
                sink.reject(
                    n,
                    format!("line is {len} bytes, longer than the limit of {MAX_LINE}"),
                    Vec::new(),
                );
                continue;
            }
        };
        let Ok(text) = std::str::from_utf8(bytes) else {
            return Err(structural(n, "not UTF-8".to_owned()));
        };
        if text.trim().is_empty() {
            continue;
        }
        let (fields, open) = splitter.split(text, delim);
        let owned = || fields.iter().map(|f| (*f).to_owned()).collect::<Vec<_>>();
        if open {
            sink.reject(n, "unbalanced quote".to_owned(), owned());
            continue;
        }
        if fields.len() != header.len() {
            let reason = format!("expected {} fields, found {}", header.len(), fields.len());
            sink.reject(n, reason, owned());
            continue;
        }
        let get = |i: usize| fields.get(i).copied();
        let row = Row {
            mobile: get(cols.mobile),
            date: get(cols.date).map_or(DateValue::Missing, DateValue::Text),
            amount: get(cols.amount).map_or(AmountValue::Missing, AmountValue::Text),
            store: get(cols.store),
            order_id: cols.order_id.and_then(get),
        };
        if let Err(reason) = sink.push(row) {
            let fields = owned();
            sink.reject(n, reason, fields);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn customer(mobile: &str) -> crate::model::Customer {
        crate::model::Customer {
            mobile: mobile.to_owned(),
            name: None,
            age: None,
            income: None,
            gender: None,
        }
    }

    #[test]
    fn columns_in_any_order_and_case_with_null_tokens_and_rejects() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("p.csv");
        std::fs::write(
            &path,
            "Store,AMOUNT,extra,Date,Mobile,order_id\r\n\
             Corner,10.5,x,2026-03-01,+91 98765 43210,A1\r\n\
             NA,null,x,None,919876543210,A2\r\n\
             Corner,abc,x,2026-03-01,919876543210,A3\r\n\
             Corner,1e13,x,2026-03-01,919876543210,A4\r\n\
             Corner,5,x,2026-03-01,919999999999,A5\r\n\
             Corner,5,2026-03-01,919876543210\r\n",
        )
        .expect("write");
        let got = read(
            &path,
            &People::from(vec![customer("919876543210")]),
            Shard::WHOLE,
            false,
        )
        .expect("read");
        assert_eq!(got.purchases.len(), 2);
        assert_eq!(got.purchases[0].amount(), Some(10.5));
        assert_eq!(got.purchases[1].amount(), None);
        assert_eq!(got.purchases[1].date, RawDate::Null);
        assert_eq!(got.purchases[1].store(), None);
        assert!(got.purchases[0].order().is_some());
        assert_eq!(got.unmatched, 1);
        let rejects: Vec<(u64, &str)> = got
            .rejects
            .iter()
            .map(|r| (r.line, r.reason.as_str()))
            .collect();
        assert_eq!(
            rejects,
            vec![
                (4, "unparseable amount `abc`"),
                (
                    5,
                    "amount `1e13` is outside ±1e12, which no money column can hold"
                ),
                (7, "expected 6 fields, found 4"),
            ]
        );
    }

    #[test]
    fn a_missing_column_is_structural() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("p.csv");
        std::fs::write(&path, "mobile,date,price\n1,2,3\n").expect("write");
        let err = read(&path, &People::default(), Shard::WHOLE, false).expect_err("missing");
        assert_eq!(
            err.to_string(),
            format!(
                "{}:1: missing required columns `amount`, `store` (header: mobile,date,price)",
                path.display()
            )
        );
    }

    fn fixture(name: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name)
    }

    // See: issue 9
    #[test]
    fn issue_9_parquet_with_typed_columns_is_read() {
        let customers = People::from(vec![
            customer("919876543210"),
            customer("919876543211"),
            customer("919876543212"),
        ]);
        let got = read(
            &fixture("purchases_typed.parquet"),
            &customers,
            Shard::WHOLE,
            false,
        )
        .expect("parquet");
        assert_eq!(got.unmatched, 1, "919999999999 is no customer");
        assert!(got.rejects.is_empty(), "{:?}", got.rejects);
        let d = |day| chrono::NaiveDate::from_ymd_opt(2026, 10, day).expect("date");
        let rows: Vec<(usize, RawDate, Option<f64>, Option<&str>)> = got
            .purchases
            .iter()
            .map(|p| {
                (
                    p.customer.index(),
                    p.date,
                    p.amount(),
                    p.store().map(|s| got.stores[s as usize].as_str()),
                )
            })
            .collect();
        assert_eq!(
            rows,
            vec![
                (0, RawDate::Ymd(d(1)), Some(100.10), Some("Main St")),
                (1, RawDate::Ymd(d(2)), Some(40.0), None),
                (2, RawDate::Null, None, Some("Online")),
            ]
        );
        assert!(got.purchases.iter().all(|p| p.order().is_some()));

        // TIMESTAMP columns give their UTC calendar day; gzip is read.
        let got = read(
            &fixture("purchases_timestamps.parquet"),
            &customers,
            Shard::WHOLE,
            false,
        )
        .expect("gzip");
        let dates: Vec<RawDate> = got.purchases.iter().map(|p| p.date).collect();
        assert_eq!(dates, vec![RawDate::Ymd(d(5)), RawDate::Ymd(d(6))]);
    }

    // See: issue 9
    #[test]
    fn issue_9_an_unsupported_parquet_compression_is_a_clear_structural_error() {
        let err = read(
            &fixture("purchases_zstd.parquet"),
            &People::from(vec![customer("919876543210")]),
            Shard::WHOLE,
            false,
        )
        .expect_err("zstd is not built in");
        let text = crate::error::chain(&err);
        assert!(text.contains("purchases_zstd.parquet"), "{text}");
        assert!(text.to_lowercase().contains("zstd"), "{text}");
    }
}
