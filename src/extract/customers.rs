//! Customer validation: header mapping, per-row checks, rejects, dedupe.
//!
//! Owns the customers-CSV contract of DESIGN §3 (any column order, extra
//! columns ignored, case-insensitive headers, null tokens, `34.0` numbers).
//! Row-level problems become rejects with a reason; only structural problems
//! (no header, missing column, not UTF-8) are errors.

use std::collections::HashSet;
use std::path::Path;

use crate::mobile;
use crate::model::{Customer, Gender, Quality, Reject};

use super::Error;

/// Columns a customers file must have.
pub const REQUIRED: [&str; 5] = ["name", "age", "income", "mobile", "gender"];

/// Validated customers and everything that was set aside.
#[derive(Clone, Debug, Default)]
pub struct Validated {
    pub customers: Vec<Customer>,
    pub rejects: Vec<Reject>,
    pub header: Vec<String>,
    pub quality: Quality,
    pub rows_read: u64,
}

/// Streams rows in, keeps the first row per normalized mobile.
pub struct Validator {
    /// Position of each `REQUIRED` column in the source rows.
    cols: [usize; 5],
    width: usize,
    /// `mobile::key`s seen so far; u64s keep a million customers cheap.
    seen: HashSet<u64>,
    out: Validated,
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
        let mut cols = [usize::MAX; 5];
        for (i, name) in header.iter().enumerate() {
            let name = name.trim().trim_start_matches('\u{feff}').trim();
            if let Some(slot) = REQUIRED.iter().position(|r| r.eq_ignore_ascii_case(name))
                && cols[slot] == usize::MAX
            {
                cols[slot] = i;
            }
        }
        let missing: Vec<&str> = REQUIRED
            .iter()
            .zip(cols)
            .filter(|(_, c)| *c == usize::MAX)
            .map(|(r, _)| *r)
            .collect();
        if !missing.is_empty() {
            return Err(Error::Structural {
                path: source.to_owned(),
                line: 1,
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
            seen: HashSet::new(),
            out: Validated {
                header: header.to_vec(),
                ..Validated::default()
            },
        })
    }

    /// Validate one row found at `line` (1-based, header = line 1).
    pub fn push<S: AsRef<str>>(&mut self, line: u64, fields: &[S]) {
        self.out.rows_read += 1;
        match self.check(fields) {
            Ok(c) => {
                if self.seen.insert(mobile::key(&c.mobile)) {
                    self.out.customers.push(c);
                } else {
                    self.out.quality.add("duplicate_customers_dropped", 1);
                }
            }
            Err((rule, reason)) => {
                self.out.quality.add(rule, 1);
                self.out.rejects.push(Reject {
                    line,
                    reason,
                    fields: fields.iter().map(|f| f.as_ref().to_owned()).collect(),
                });
            }
        }
    }

    fn check<S: AsRef<str>>(&self, fields: &[S]) -> Result<Customer, (&'static str, String)> {
        if fields.len() != self.width {
            return Err((
                "rejected_field_count",
                format!("row has {} fields, header has {}", fields.len(), self.width),
            ));
        }
        let cell = |i: usize| fields[self.cols[i]].as_ref().trim();
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
        Ok(Customer {
            mobile,
            name,
            age,
            income,
            gender,
        })
    }

    pub fn finish(mut self) -> Validated {
        self.out
            .quality
            .add("customers_valid", self.out.customers.len() as u64);
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
    Ok(v)
}

/// Read and validate a customers CSV file.
pub fn read_csv(path: &Path) -> Result<Validated, Error> {
    let file = std::fs::File::open(path).map_err(|source| Error::Open {
        path: path.to_owned(),
        source,
    })?;
    let name = path.display().to_string();
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(false)
        .from_reader(std::io::BufReader::with_capacity(1 << 20, file));
    let mut record = csv::ByteRecord::new();
    let csv_err = |line: u64, source: csv::Error| Error::Csv {
        path: name.clone(),
        line,
        source,
    };
    let has_header = reader
        .read_byte_record(&mut record)
        .map_err(|e| csv_err(1, e))?;
    if !has_header || record.iter().all(|f| f.iter().all(u8::is_ascii_whitespace)) {
        return Err(Error::Structural {
            path: name,
            line: 1,
            message: "no header row".to_owned(),
        });
    }
    let header = utf8_fields(&record).map_err(|message| Error::Structural {
        path: name.clone(),
        line: 1,
        message,
    })?;
    let mut v = Validator::new(&name, &header)?;
    loop {
        let line = reader.position().line();
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(csv_err(line, e)),
        }
        let line = record.position().map_or(line, |p| p.line());
        // Blank lines are not rows.
        if record.len() == 1 && record[0].is_empty() {
            continue;
        }
        let mut fields: Vec<&str> = Vec::with_capacity(record.len());
        for f in record.iter() {
            match std::str::from_utf8(f) {
                Ok(s) => fields.push(s),
                Err(_) => {
                    return Err(Error::Structural {
                        path: name,
                        line,
                        message: "not valid UTF-8".to_owned(),
                    });
                }
            }
        }
        v.push(line, &fields);
    }
    Ok(v.finish())
}

fn utf8_fields(record: &csv::ByteRecord) -> Result<Vec<String>, String> {
    record
        .iter()
        .map(|f| {
            std::str::from_utf8(f)
                .map(str::to_owned)
                .map_err(|_| "not valid UTF-8".to_owned())
        })
        .collect()
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
            out.customers,
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
        let err = Validator::new("c.csv", &header("name,age,mobile"))
            .err()
            .expect("error");
        assert_eq!(
            err.to_string(),
            "c.csv:1: missing required columns `income`, `gender` (header: name,age,mobile)"
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
            (&["g", "30", "100"], "row has 3 fields, header has 5"),
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
        assert_eq!(out.customers[0].name.as_deref(), Some("first"));
        assert_eq!(out.quality.get("duplicate_customers_dropped"), 1);
        assert!(out.rejects.is_empty());
    }

    #[test]
    fn null_tokens_any_case() {
        for t in ["", " ", "NA", "n/a", "NULL", "none", "None"] {
            assert!(is_missing(t), "{t:?}");
        }
        assert!(!is_missing("0"));
    }
}
