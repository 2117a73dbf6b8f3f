//! Customer validation: header mapping, per-row checks, rejects, dedupe.
//!
//! Owns the customers-CSV contract of DESIGN §3 (any column order, extra
//! columns ignored, case-insensitive headers, null tokens, `34.0` numbers).
//! Row-level problems become rejects with a reason; only structural problems
//! (no header, missing column, not UTF-8) are errors.

use std::collections::HashSet;
use std::hash::{BuildHasher, Hasher};
use std::io::BufReader;
use std::path::Path;
use std::time::Instant;

use tracing::{info, warn};

use crate::mobile;
use crate::model::{Customer, Gender, Quality, Reject};
use crate::shard::Shard;

use super::Error;
use super::lines::{Line, Lines, MAX_LINE, Splitter, still_quoted_after};

/// Columns a customers file must have.
pub const REQUIRED: [&str; 5] = ["name", "age", "income", "mobile", "gender"];

/// Surplus fields of a too-long row kept in the rejects file.
const MAX_EXTRA_FIELDS: usize = 16;

/// Validated customers and everything that was set aside.
#[derive(Clone, Debug, Default)]
pub struct Validated {
    pub customers: crate::people::People,
    /// Each customer's position among all valid unique customers of the
    /// file (its index in an unsharded run): how shards are put back in order.
    pub positions: Vec<u64>,
    pub rejects: Vec<Reject>,
    /// Columns of the rejects file after `line,reason`: the source header,
    /// then `extra_field_N` when a reject had more fields than it.
    pub header: Vec<String>,
    pub quality: Quality,
    pub rows_read: u64,
    /// Ground truth aligned with `customers`, when the source carried it
    /// row by row (`run`'s generator); else extract joins a truth file's.
    pub truth: Option<Vec<Option<crate::model::Persona>>>,
}

/// Streams rows in, keeps the first row per normalized mobile.
pub struct Validator {
    /// Position of each `REQUIRED` column in the source rows.
    cols: [usize; 5],
    width: usize,
    /// `mobile::key`s seen so far; u64s keep a million customers cheap.
    seen: HashSet<u64, KeyHashing>,
    out: Validated,
    shard: Shard,
    /// Valid unique customers seen so far, in every shard.
    unique: u64,
}

/// Hashing for `mobile::key`s: SplitMix's finalizer keyed per process.
/// SipHash (std's default) took a quarter of the time of reading a million
/// rows; a random key still keeps a crafted file from forcing collisions.
#[derive(Clone, Copy)]
struct KeyHashing(u64);

impl KeyHashing {
    fn new() -> KeyHashing {
        KeyHashing(std::hash::RandomState::new().hash_one(0u64))
    }
}

impl BuildHasher for KeyHashing {
    type Hasher = KeyHasher;
    fn build_hasher(&self) -> KeyHasher {
        KeyHasher(self.0)
    }
}

struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = crate::rng::mix(self.0 ^ u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = crate::rng::mix(self.0 ^ n);
    }
}

/// Is this cell a missing value (DESIGN §3 null tokens)?
pub fn is_missing(cell: &str) -> bool {
    let t = cell.trim();
    t.is_empty()
        || ["na", "n/a", "null", "none"]
            .iter()
            .any(|tok| t.eq_ignore_ascii_case(tok))
}

impl Validator {
    /// Map the header; `source` names the file in errors.
    pub fn new(source: &str, header: &[String]) -> Result<Validator, Error> {
        Validator::at_line(source, 1, header)
    }

    /// Map the header found on physical line `line` of `source`.
    pub fn at_line(source: &str, line: u64, header: &[String]) -> Result<Validator, Error> {
        let mut cols = [usize::MAX; 5];
        for (i, name) in header.iter().enumerate() {
            let name = name.trim().trim_start_matches('\u{feff}').trim();
            if let Some(slot) = REQUIRED.iter().position(|r| r.eq_ignore_ascii_case(name))
                && cols[slot] == usize::MAX
            {
                cols[slot] = i;
            }
        }
        // Only the key is required: a CRM export or a transaction log may
        // have no demographics at all, and those stay NULL (issue 9).
        let missing: Vec<&str> = REQUIRED
            .iter()
            .zip(cols)
            .filter(|(r, c)| **r == "mobile" && *c == usize::MAX)
            .map(|(r, _)| *r)
            .collect();
        if !missing.is_empty() {
            return Err(Error::Structural {
                path: source.to_owned(),
                line,
                message: format!(
                    "missing required column{} `{}` (header: {})",
                    if missing.len() > 1 { "s" } else { "" },
                    missing.join("`, `"),
                    header.join(",")
                ),
            });
        }
        Ok(Validator {
            cols,
            width: header.len(),
            seen: HashSet::with_hasher(KeyHashing::new()),
            out: Validated {
                header: header.to_vec(),
                ..Validated::default()
            },
            shard: Shard::WHOLE,
            unique: 0,
        })
    }

    /// Customers kept so far.
    pub fn kept(&self) -> usize {
        self.out.customers.len()
    }

    /// Keep only the customers of `shard`; rejects are kept by shard 0 alone,
    /// so summing the shards' counts gives the unsharded counts.
    pub fn with_shard(mut self, shard: Shard) -> Validator {
        self.shard = shard;
        self
    }

    /// Validate one row found at `line` (1-based, header = line 1).
    pub fn push<S: AsRef<str>>(&mut self, line: u64, fields: &[S]) {
        match self.check(fields) {
            Ok(c) => {
                self.out.rows_read += 1;
                let first = self.seen.insert(mobile::key(&c.mobile));
                if first {
                    self.unique += 1;
                }
                if !self.shard.contains(&c.mobile) {
                    return;
                }
                if first {
                    if self.shard.count > 1 {
                        self.out.positions.push(self.unique - 1);
                    }
                    self.out.customers.push(&c);
                } else {
                    self.out.quality.add("duplicate_customers_dropped", 1);
                }
            }
            Err((rule, reason)) => {
                self.reject(line, rule, reason, fields);
            }
        }
    }

    /// Count a row found at `line` as a reject of `rule`; returns its index
    /// so a reason known only later (an unbalanced quote's range) can be set.
    pub fn reject<S: AsRef<str>>(
        &mut self,
        line: u64,
        rule: &str,
        reason: String,
        fields: &[S],
    ) -> usize {
        self.out.rows_read += 1;
        if !self.shard.keeps_rejects() {
            return usize::MAX;
        }
        self.out.quality.add(rule, 1);
        // Every reject is padded to the widest one (`finish`), so one line
        // of a million commas must not widen them all.
        let keep = self.width + MAX_EXTRA_FIELDS;
        let reason = if fields.len() > keep {
            format!("{reason}; fields after the first {keep} are not kept")
        } else {
            reason
        };
        self.out.rejects.push(Reject {
            line,
            reason,
            fields: fields
                .iter()
                .take(keep)
                .map(|f| f.as_ref().to_owned())
                .collect(),
        });
        self.out.rejects.len() - 1
    }

    /// Replace the reason of the reject at `index` (from [`Validator::reject`]).
    pub fn set_reason(&mut self, index: usize, reason: String) {
        if let Some(r) = self.out.rejects.get_mut(index) {
            r.reason = reason;
        }
    }

    fn check<S: AsRef<str>>(&self, fields: &[S]) -> Result<Customer, (&'static str, String)> {
        if fields.len() != self.width {
            return Err((
                "rejected_field_count",
                format!("expected {} fields, found {}", self.width, fields.len()),
            ));
        }
        // An absent optional column reads as a missing value.
        let cell = |i: usize| fields.get(self.cols[i]).map_or("", |f| f.as_ref().trim());
        let mobile = mobile::normalize(cell(3)).map_err(|e| match e {
            mobile::Invalid::Missing => ("rejected_missing_mobile", e.to_string()),
            _ => ("rejected_invalid_mobile", format!("{e}: `{}`", cell(3))),
        })?;
        let age = match cell(1) {
            c if is_missing(c) => None,
            c => Some(parse_age(c).map_err(|m| ("rejected_invalid_age", m))?),
        };
        let income = match cell(2) {
            c if is_missing(c) => None,
            c => Some(parse_income(c).map_err(|m| ("rejected_invalid_income", m))?),
        };
        let gender = match cell(4) {
            c if is_missing(c) => None,
            c => Some(
                Gender::parse(c)
                    .ok_or_else(|| ("rejected_unknown_gender", format!("unknown gender `{c}`")))?,
            ),
        };
        let name = Some(cell(0)).filter(|n| !is_missing(n)).map(str::to_owned);
        // DESIGN §5: what is accepted must load, and no text column stores NUL.
        if let Some(field) = fields.iter().map(AsRef::as_ref).find(|f| f.contains('\0')) {
            return Err((
                "rejected_nul_byte",
                format!("a field holds a NUL byte: `{}`", field.escape_default()),
            ));
        }
        Ok(Customer {
            mobile,
            name,
            age,
            income,
            gender,
        })
    }

    /// The result. Every reject gets exactly as many fields as the rejects
    /// file has columns, so any CSV writer and reader takes the file: short
    /// rows are padded with empty cells, and when a row had more fields than
    /// the header, `extra_field_N` columns keep the surplus (issue 8).
    pub fn finish(mut self) -> Validated {
        self.out
            .quality
            .add("customers_valid", self.out.customers.len() as u64);
        let width = self
            .out
            .rejects
            .iter()
            .map(|r| r.fields.len())
            .max()
            .unwrap_or(0)
            .max(self.width);
        for i in self.width..width {
            self.out
                .header
                .push(format!("extra_field_{}", i - self.width + 1));
        }
        for r in &mut self.out.rejects {
            r.fields.resize(width, String::new());
        }
        self.out
    }
}

fn parse_age(c: &str) -> Result<u16, String> {
    let v: f64 = c.parse().map_err(|_| format!("unparseable age `{c}`"))?;
    if v.fract() != 0.0 || !(0.0..=120.0).contains(&v) {
        return Err(format!("age `{c}` is not a whole number from 0 to 120"));
    }
    Ok(v as u16)
}

fn parse_income(c: &str) -> Result<f64, String> {
    let v: f64 = c.parse().map_err(|_| format!("unparseable income `{c}`"))?;
    if !v.is_finite() || v < 0.0 {
        return Err(format!("income `{c}` is not a non-negative number"));
    }
    // DESIGN §5: a value accepted here must load; NUMERIC(14,2) holds less
    // than 10^12 (and an average over such values stays finite).
    if v >= super::purchases_file::MAX_AMOUNT {
        return Err(format!(
            "income `{c}` is 10^12 or more, more than the money columns hold"
        ));
    }
    Ok(v)
}

/// Delimiters tried on the header, in order, with the name logs use.
const DELIMITERS: [(u8, &str); 4] = [
    (b',', "comma"),
    (b';', "semicolon"),
    (b'\t', "tab"),
    (b'|', "pipe"),
];

const UNBALANCED_HEADER: &str = "unbalanced quote in the header row";

/// How many unbalanced-quote warnings to log before only counting them.
const QUOTE_WARNINGS: u64 = 5;

/// Read and validate a customers CSV file, streaming it line by line.
///
/// Every physical line after the header is one row (blank lines are not
/// rows), so a damaged line costs that line only, and rows in = valid +
/// duplicates + rejects.
pub fn read_csv(path: &Path) -> Result<Validated, Error> {
    read_csv_with(path, None, Shard::WHOLE)
}

/// [`read_csv`] keeping only the customers of `shard` (`--shard I/N`).
pub fn read_csv_shard(path: &Path, shard: Shard) -> Result<Validated, Error> {
    read_csv_with(path, None, shard)
}

/// [`read_csv`] with the field delimiter given (an ASCII byte such as
/// `b';'`) instead of detected from the header; for a `--delimiter` flag.
pub fn read_csv_with(path: &Path, delimiter: Option<u8>, shard: Shard) -> Result<Validated, Error> {
    let started = Instant::now();
    let file = std::fs::File::open(path).map_err(|source| Error::Open {
        path: path.to_owned(),
        source,
    })?;
    let name = path.display().to_string();
    let mut lines = Lines::new(BufReader::with_capacity(1 << 20, file), MAX_LINE);
    let read_err = |line: u64, e: std::io::Error| Error::Csv {
        path: name.clone(),
        line,
        source: csv::Error::from(e),
    };
    let structural = |line: u64, message: String| Error::Structural {
        path: name.clone(),
        line,
        message,
    };
    let mut splitter = Splitter::default();

    // The header is the first line that is not blank.
    let (header_line, header, delim) = loop {
        let at = lines.number() + 1;
        let next = lines.next_line().map_err(|e| read_err(at, e));
        let Some((n, line)) = next? else {
            return Err(structural(1, "no header row".to_owned()));
        };
        let bytes = match line {
            Line::Text(b) => b,
            Line::TooLong { len, .. } => {
                return Err(structural(
                    n,
                    format!("header line is {len} bytes, longer than the limit of {MAX_LINE}"),
                ));
            }
        };
        let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
        if bytes.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let text =
            std::str::from_utf8(bytes).map_err(|_| structural(n, "not valid UTF-8".to_owned()))?;
        let (delim, header) = match delimiter {
            Some(d) => match splitter.split(text, d) {
                (_, true) => return Err(structural(n, UNBALANCED_HEADER.to_owned())),
                (fields, false) => (d, fields.into_iter().map(str::to_owned).collect()),
            },
            None => detect_delimiter(&name, n, text, &mut splitter)?,
        };
        break (n, header, delim);
    };
    let mut v = Validator::at_line(&name, header_line, &header)?.with_shard(shard);

    let mut quotes = OpenQuotes::default();
    loop {
        let at = lines.number() + 1;
        let next = lines.next_line().map_err(|e| read_err(at, e));
        let Some((n, line)) = next? else { break };
        let bytes = match line {
            Line::Text(b) => b,
            Line::TooLong { len, head } => {
                // Only its head is known: enough to tell a quote closing it.
                quotes.line(&mut v, &name, n, head, delim);
                v.reject::<&str>(
                    n,
                    "rejected_line_too_long",
                    format!("line is {len} bytes, longer than the limit of {MAX_LINE}"),
                    &[],
                );
                continue;
            }
        };
        quotes.line(&mut v, &name, n, bytes, delim);
        // Blank lines are not rows.
        if bytes.is_empty() {
            continue;
        }
        let text =
            std::str::from_utf8(bytes).map_err(|_| structural(n, "not valid UTF-8".to_owned()))?;
        let (fields, quote_open) = splitter.split(text, delim);
        if quote_open {
            let idx = v.reject(
                n,
                "rejected_unbalanced_quote",
                "unbalanced quote".to_owned(),
                &fields,
            );
            quotes.pending.push((n, idx));
        } else {
            v.push(n, &fields);
        }
    }
    quotes.close(&mut v, &name, lines.number(), true);
    let out = v.finish();
    if quotes.ranges > QUOTE_WARNINGS {
        warn!(
            message = "More unbalanced quotes; see the rejects file.",
            path = %name,
            ranges = quotes.ranges
        );
    }
    info!(
        message = "Read customers.",
        path = %name,
        rows = out.rows_read,
        rejects = out.rejects.len(),
        elapsed_ms = started.elapsed().as_millis() as u64
    );
    Ok(out)
}

/// Rows whose quote was still open at the end of their line (rejects), and
/// where a standard CSV reader, which would have folded the following lines
/// into that one record, would have closed it.
///
/// Each of those following lines is still parsed as a row of its own, so a
/// stray quote costs one row. The price: the second half of a genuine
/// multi-line field (`"Asha` / `Rao",34,…`) is read as a row too, and kept
/// when it validates (name `Rao"`); the reject's reason names both lines.
#[derive(Debug, Default)]
struct OpenQuotes {
    /// (line, reject index) of every row waiting for the quote to close.
    /// All are in the same state (inside quotes at a line end), so one scan
    /// per line serves them all.
    pending: Vec<(u64, usize)>,
    /// Ranges closed so far.
    ranges: u64,
    /// Last line counted in `unbalanced_quote_lines`.
    covered_to: u64,
}

impl OpenQuotes {
    /// Line `n`, as a standard reader continuing the open record sees it.
    fn line(&mut self, v: &mut Validator, name: &str, n: u64, bytes: &[u8], delim: u8) {
        if !self.pending.is_empty() && !still_quoted_after(bytes, delim) {
            self.close(v, name, n, false);
        }
    }

    /// The quote closes on line `end`, or the file ends there (`eof`).
    fn close(&mut self, v: &mut Validator, name: &str, end: u64, eof: bool) {
        let Some(&(first, _)) = self.pending.first() else {
            return;
        };
        for (start, idx) in self.pending.drain(..) {
            let reason = match (eof, start == end) {
                (true, true) => "unbalanced quote on the last line".to_owned(),
                (true, false) => {
                    format!(
                        "unbalanced quote swallows lines {start}-{end} (to the end of the file)"
                    )
                }
                (false, _) => format!("unbalanced quote swallows lines {start}-{end}"),
            };
            v.set_reason(idx, reason);
        }
        let from = first.max(self.covered_to + 1);
        v.out.quality.add("unbalanced_quote_lines", end + 1 - from);
        self.covered_to = end;
        self.ranges += 1;
        if self.ranges <= QUOTE_WARNINGS {
            warn!(
                message = "Unbalanced quote: each line it covers was read as its own row.",
                path = %name,
                first,
                last = end
            );
        }
    }
}

/// Split the header with the first delimiter that yields every required
/// column; a file separated by `;` or tabs (a spreadsheet export in many
/// locales) is accepted and the choice logged.
fn detect_delimiter(
    name: &str,
    line: u64,
    text: &str,
    splitter: &mut Splitter,
) -> Result<(u8, Vec<String>), Error> {
    let mut first_err = None;
    for (delim, delim_name) in DELIMITERS {
        let (fields, open) = splitter.split(text, delim);
        if open {
            return Err(Error::Structural {
                path: name.to_owned(),
                line,
                message: UNBALANCED_HEADER.to_owned(),
            });
        }
        let header: Vec<String> = fields.into_iter().map(str::to_owned).collect();
        match Validator::at_line(name, line, &header) {
            Ok(_) => {
                if delim != b',' {
                    info!(
                        message = "Detected the delimiter from the header.",
                        path = %name,
                        delimiter = delim_name
                    );
                }
                return Ok((delim, header));
            }
            Err(e) => {
                // A header that splits on another delimiter but still lacks
                // a column is reported as that delimiter read it.
                if first_err.is_none() || header.len() > 1 {
                    first_err = Some(match e {
                        Error::Structural {
                            path,
                            line,
                            message,
                        } if delim != b',' => Error::Structural {
                            path,
                            line,
                            message: format!("{message}, read as {delim_name}-separated"),
                        },
                        e => e,
                    });
                }
            }
        }
        if header.len() > 1 && delim == b',' {
            // A comma-separated header: no other delimiter is plausible.
            break;
        }
    }
    Err(first_err.expect("the loop ran at least once"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(h: &str) -> Vec<String> {
        h.split(',').map(str::to_owned).collect()
    }

    #[test]
    fn header_any_order_any_case_extra_columns() {
        let mut v =
            Validator::new("f", &header("Mobile,GENDER,id,income,Age,name")).expect("header");
        v.push(2, &["+91 98765 43210", "f", "7", "NA", "34.0", "Asha"]);
        let out = v.finish();
        assert_eq!(
            out.customers.iter().collect::<Vec<_>>(),
            vec![Customer {
                mobile: "919876543210".into(),
                name: Some("Asha".into()),
                age: Some(34),
                income: None,
                gender: Some(Gender::Female),
            }]
        );
    }

    #[test]
    fn missing_column_is_named() {
        let err = Validator::new("c.csv", &header("name,age,gender"))
            .err()
            .expect("error");
        assert_eq!(
            err.to_string(),
            "c.csv:1: missing required column `mobile` (header: name,age,gender)"
        );
    }

    // See: issue 9
    #[test]
    fn issue_9_a_file_with_no_demographics_is_read_with_nulls() {
        let mut v = Validator::new("c.csv", &header("customer_id,mobile,segment_hint"))
            .expect("only mobile is required");
        v.push(2, &["17", "+919876543210", "vip"]);
        let out = v.finish();
        assert_eq!(out.customers.len(), 1);
        let c = out.customers.get(0).expect("one customer");
        assert_eq!(
            (c.name.as_deref(), c.age, c.income, c.gender),
            (None, None, None, None)
        );
    }

    #[test]
    fn rejects_carry_line_reason_and_fields() {
        let mut v = Validator::new("f", &header("name,age,income,mobile,gender")).expect("header");
        let rows: [(&[&str], &str); 7] = [
            (&["a", "30", "100", "+919876543210", "Male"], ""),
            (
                &["b", "abc", "100", "+919876543211", "Male"],
                "unparseable age `abc`",
            ),
            (
                &["c", "30", "-5", "+919876543212", "Male"],
                "income `-5` is not a non-negative number",
            ),
            (
                &["d", "30", "100", "12345", "Male"],
                "invalid mobile: 5 digits, expected 10 to 15: `12345`",
            ),
            (&["e", "30", "100", "", "Male"], "missing mobile"),
            (
                &["f", "30", "100", "+919876543213", "robot"],
                "unknown gender `robot`",
            ),
            (&["g", "30", "100"], "expected 5 fields, found 3"),
        ];
        for (i, (r, _)) in rows.iter().enumerate() {
            v.push(i as u64 + 2, r);
        }
        let out = v.finish();
        assert_eq!(out.customers.len(), 1);
        let got: Vec<(u64, &str)> = out
            .rejects
            .iter()
            .map(|r| (r.line, r.reason.as_str()))
            .collect();
        let want: Vec<(u64, &str)> = rows
            .iter()
            .enumerate()
            .skip(1)
            .map(|(i, (_, why))| (i as u64 + 2, *why))
            .collect();
        assert_eq!(got, want);
        assert_eq!(
            out.rejects[0].fields,
            ["b", "abc", "100", "+919876543211", "Male"]
        );
        assert_eq!(out.rows_read, 7);
    }

    #[test]
    fn duplicates_by_normalized_mobile_keep_the_first() {
        let mut v = Validator::new("f", &header("name,age,income,mobile,gender")).expect("header");
        v.push(2, &["first", "", "", "+919876543210", "Male"]);
        v.push(3, &["second", "", "", "91-98765-43210", "Male"]);
        let out = v.finish();
        assert_eq!(out.customers.len(), 1);
        assert_eq!(out.customers.name(0), Some("first"));
        assert_eq!(out.quality.get("duplicate_customers_dropped"), 1);
        assert!(out.rejects.is_empty());
    }

    // See: issue 8
    #[test]
    fn issue_8_values_no_sink_can_store_are_rejects_at_extract() {
        assert!(parse_income("999999999999.99").is_ok());
        for bad in ["1000000000000", "1e308", "inf", "NaN"] {
            assert!(parse_income(bad).is_err(), "{bad}");
        }
        let header: Vec<String> = ["name", "age", "income", "mobile", "gender"]
            .iter()
            .map(|h| (*h).to_owned())
            .collect();
        let mut v = Validator::new("t.csv", &header).expect("header");
        v.push(2, &["As\0ha", "30", "10", "+919876543210", "f"]);
        v.push(3, &["Ravi", "30", "1e13", "+919876543211", "m"]);
        let out = v.finish();
        assert!(out.customers.is_empty());
        let reasons: Vec<&str> = out.rejects.iter().map(|r| r.reason.as_str()).collect();
        assert_eq!(
            reasons,
            vec![
                "a field holds a NUL byte: `As\\u{0}ha`",
                "income `1e13` is 10^12 or more, more than the money columns hold"
            ]
        );
    }

    #[test]
    fn null_tokens_any_case() {
        for t in ["", " ", "NA", "n/a", "NULL", "none", "None"] {
            assert!(is_missing(t), "{t:?}");
        }
        assert!(!is_missing("0"));
    }

    #[test]
    fn rejects_are_as_wide_as_the_rejects_header() {
        let mut v = Validator::new("f", &header("name,age,income,mobile,gender")).expect("header");
        v.push(2, &["a", "1"]);
        v.push(3, &["a", "1", "2", "+919876543210", "m", "x", "y"]);
        v.reject::<&str>(4, "rejected_line_too_long", "too long".to_owned(), &[]);
        let out = v.finish();
        assert_eq!(
            out.header,
            header("name,age,income,mobile,gender,extra_field_1,extra_field_2")
        );
        assert!(out.rejects.iter().all(|r| r.fields.len() == 7));
        assert_eq!(out.rejects[0].fields, ["a", "1", "", "", "", "", ""]);
        assert_eq!(out.rejects[0].reason, "expected 5 fields, found 2");
        assert_eq!(out.rows_read, 3);
        assert_eq!(out.quality.get("rejected_field_count"), 2);
    }

    #[test]
    fn a_row_of_many_fields_does_not_widen_every_reject() {
        let mut v = Validator::new("f", &header("name,age,income,mobile,gender")).expect("header");
        v.push(2, &[""; 1000]);
        v.push(3, &["a"]);
        let out = v.finish();
        assert_eq!(out.header.len(), 5 + MAX_EXTRA_FIELDS);
        assert_eq!(
            out.rejects[0].reason,
            "expected 5 fields, found 1000; fields after the first 21 are not kept"
        );
        assert!(out.rejects.iter().all(|r| r.fields.len() == 21));
    }

    #[test]
    fn quotes_opened_on_consecutive_lines_close_together() {
        // Line 3 keeps line 2's quote open (a standard reader sees `B `,
        // a closing quote, `x" `, then a new quote) and opens its own.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.csv");
        std::fs::write(
            &path,
            "name,age,income,mobile,gender\n\
             \"A,1,2,+919876543210,m\n\
             B \"x\" ,1,2,\"+919876543211,m\n\
             C\",1,2,+919876543212,m\n\
             D,1,2,\"+919876543213\",m\n\
             \"E\n",
        )
        .expect("write");
        let out = read_csv(&path).expect("read");
        let got: Vec<(u64, &str)> = out
            .rejects
            .iter()
            .map(|r| (r.line, r.reason.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (2, "unbalanced quote swallows lines 2-4"),
                (3, "unbalanced quote swallows lines 3-4"),
                (6, "unbalanced quote on the last line"),
            ]
        );
        assert_eq!(out.customers.len(), 2);
        assert_eq!(out.rows_read, 5);
        assert_eq!(out.quality.get("rejected_unbalanced_quote"), 3);
        assert_eq!(out.quality.get("unbalanced_quote_lines"), 4);
    }

    #[test]
    fn every_line_is_one_row_whatever_the_bytes() {
        // Property: for random text over an alphabet heavy in delimiters,
        // quotes and line breaks, each non-blank line after the header is
        // one row, and rows = valid + duplicates + rejects.
        let alphabet = b",,,\"\"\n\n\r ab+919876543210";
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.csv");
        let mut state = 0u64;
        let mut next = |n: u64| {
            state += 1;
            crate::rng::mix(state) % n
        };
        for case in 0..300 {
            let mut text = b"name,age,income,mobile,gender\n".to_vec();
            for _ in 0..next(400) {
                text.push(alphabet[next(alphabet.len() as u64) as usize]);
            }
            std::fs::write(&path, &text).expect("write");
            let out = read_csv(&path).expect("ASCII text always reads");
            let body = String::from_utf8(text).expect("ASCII");
            let body = body.replace("\r\n", "\n").replace('\r', "\n");
            let lines: Vec<&str> = body.split('\n').collect();
            let non_blank: Vec<u64> = (2..=lines.len() as u64)
                .filter(|n| !lines[*n as usize - 1].is_empty())
                .collect();
            let dups = out.quality.get("duplicate_customers_dropped");
            assert_eq!(
                out.rows_read,
                non_blank.len() as u64,
                "case {case}: {body:?}"
            );
            assert_eq!(
                out.rows_read,
                out.customers.len() as u64 + dups + out.rejects.len() as u64,
                "case {case}"
            );
            let reject_lines: Vec<u64> = out.rejects.iter().map(|r| r.line).collect();
            assert!(
                reject_lines
                    .iter()
                    .all(|n| non_blank.binary_search(n).is_ok()),
                "case {case}: {reject_lines:?} {body:?}"
            );
            assert!(reject_lines.windows(2).all(|w| w[0] < w[1]), "case {case}");
            assert!(
                out.rejects
                    .iter()
                    .all(|r| r.fields.len() == out.header.len() && !r.reason.is_empty()),
                "case {case}"
            );
        }
    }

    #[test]
    fn a_given_delimiter_is_used_as_is() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.csv");
        std::fs::write(
            &path,
            "name|age|income|mobile|gender\nA,B|1|2|+919876543210|m\n",
        )
        .expect("write");
        let out = read_csv_with(&path, Some(b'|'), Shard::WHOLE).expect("read");
        assert_eq!(out.customers.name(0), Some("A,B"));
        let err = read_csv_with(&path, Some(b';'), Shard::WHOLE).expect_err("no such columns");
        assert!(
            err.to_string()
                .contains(":1: missing required column `mobile`"),
            "{err}"
        );
    }

    #[test]
    fn the_delimiter_is_the_one_that_finds_every_column() {
        let mut s = Splitter::default();
        for (text, delim) in [
            ("name,age,income,mobile,gender", b','),
            ("name;age;income;mobile;gender", b';'),
            ("name\tage\tincome\tmobile\tgender", b'\t'),
            ("name|age|income|mobile|gender", b'|'),
            // Semicolons inside a comma-separated header's names don't matter.
            ("name,age;years,age,income,mobile,gender", b','),
        ] {
            let (d, h) = detect_delimiter("f", 1, text, &mut s).expect(text);
            assert_eq!((d, h.len() >= 5), (delim, true), "{text}");
        }
        let err = detect_delimiter("f", 3, "\"name,age", &mut s).expect_err("open quote");
        assert_eq!(err.to_string(), "f:3: unbalanced quote in the header row");
    }
}
