//! `generate`: synthetic customers with planted personas and realistic dirt.
//!
//! Rows are produced lazily ([`customers`]) so the CSV shell streams them to
//! disk with flat memory, and `run` feeds the same rows to extract.

pub mod dirt;
pub mod persona;

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use fake::Fake;
use fake::faker::name::en::Name;
use rand::RngExt;

use crate::model::Persona;
use crate::rng::{self, Rng};
pub use dirt::Dirt;

/// Column order of the generated customers CSV.
pub const HEADER: [&str; 5] = ["name", "age", "income", "mobile", "gender"];

/// Generator inputs, built from `Settings`.
#[derive(Clone, Debug)]
pub struct GenerateOpts {
    pub customers: u64,
    pub seed: u64,
    pub dirt: Dirt,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot write `{path}`")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write `{path}`")]
    Csv {
        path: PathBuf,
        #[source]
        source: csv::Error,
    },
}

/// One generated CSV row and, for a customer's first row, its truth.
#[derive(Clone, Debug, PartialEq)]
pub struct Generated {
    /// Fields in [`HEADER`] order, as they appear in the CSV.
    pub fields: [String; 5],
    /// Canonical mobile and persona; `None` for duplicate rows and for
    /// customers whose mobile was made malformed (they can't be joined).
    pub truth: Option<(String, Persona)>,
}

/// Counts of what a generation wrote.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    pub rows: u64,
    pub customers: u64,
    pub duplicates: u64,
    pub malformed_mobiles: u64,
    pub missing_age: u64,
    pub missing_income: u64,
}

/// Lazily generate the customer rows (duplicates interleaved).
pub fn customers(opts: &GenerateOpts) -> impl Iterator<Item = Generated> + use<> {
    Rows::new(opts.clone())
}

/// Path of the truth file written beside `out`: `customers.csv` → `customers.truth.csv`.
pub fn truth_path(out: &Path) -> PathBuf {
    let stem = out
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    out.with_file_name(format!("{stem}.truth.csv"))
}

/// Stream the customers CSV and the truth file to disk.
pub fn write(opts: &GenerateOpts, out: &Path) -> Result<Summary, Error> {
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.to_owned(),
            source,
        })?;
    }
    let truth_out = truth_path(out);
    let mut csv = csv_writer(out)?;
    let mut truth = csv_writer(&truth_out)?;
    csv.write_record(HEADER).map_err(|e| csv_err(out, e))?;
    truth
        .write_record(["mobile", "persona"])
        .map_err(|e| csv_err(&truth_out, e))?;
    let mut summary = Summary::default();
    let bar = crate::progress::bar(opts.customers, "generate");
    for row in customers(opts) {
        summary.rows += 1;
        match &row.truth {
            Some((mobile, persona)) => {
                summary.customers += 1;
                bar.inc(1);
                truth
                    .write_record([mobile.as_str(), persona.as_str()])
                    .map_err(|e| csv_err(&truth_out, e))?;
            }
            None if crate::mobile::normalize(&row.fields[3]).is_err() => {
                summary.customers += 1;
                summary.malformed_mobiles += 1;
            }
            None => summary.duplicates += 1,
        }
        summary.missing_age += u64::from(is_missing(&row.fields[1]));
        summary.missing_income += u64::from(is_missing(&row.fields[2]));
        csv.write_record(&row.fields).map_err(|e| csv_err(out, e))?;
    }
    bar.finish_and_clear();
    flush(csv, out)?;
    flush(truth, &truth_out)?;
    Ok(summary)
}

fn csv_err(path: &Path, source: csv::Error) -> Error {
    Error::Csv {
        path: path.to_owned(),
        source,
    }
}

fn is_missing(field: &str) -> bool {
    matches!(field, "" | "NA" | "null" | "None")
}

fn csv_writer(path: &Path) -> Result<csv::Writer<BufWriter<File>>, Error> {
    let file = File::create(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })?;
    Ok(csv::Writer::from_writer(BufWriter::with_capacity(
        1 << 20,
        file,
    )))
}

fn flush(w: csv::Writer<BufWriter<File>>, path: &Path) -> Result<(), Error> {
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let mut inner = w.into_inner().map_err(|e| io(e.into_error()))?;
    inner.flush().map_err(io)
}

/// How many recent rows a duplicate may repeat; keeps memory flat in N.
const RECENT: usize = 512;

struct Rows {
    opts: GenerateOpts,
    rng: Rng,
    next: u64,
    /// Affine permutation of the 4e9 Indian mobile numbers: unique per index.
    mul: u128,
    add: u128,
    recent: VecDeque<[String; 5]>,
    pending_duplicate: Option<Generated>,
}

const MOBILE_SPACE: u128 = 4_000_000_000;

impl Rows {
    fn new(opts: GenerateOpts) -> Rows {
        let h = rng::hash(&[b"mobile-permutation", &opts.seed.to_le_bytes()]);
        // Coprime with 4e9 = 2^11 * 5^9: odd and not a multiple of 5.
        let mut mul = u128::from(h % 3_000_000_000 + 1_000_000_000) | 1;
        if mul % 5 == 0 {
            mul += 2;
        }
        Rows {
            rng: rng::seeded(opts.seed, "generate"),
            add: u128::from(rng::mix(h)) % MOBILE_SPACE,
            mul,
            opts,
            next: 0,
            recent: VecDeque::with_capacity(RECENT),
            pending_duplicate: None,
        }
    }

    fn mobile(&self, i: u64) -> String {
        let n = (self.mul * u128::from(i) + self.add) % MOBILE_SPACE + 6_000_000_000;
        format!("+91{n}")
    }

    fn customer(&mut self, i: u64) -> Generated {
        let mobile = self.mobile(i);
        let normalized = &mobile[1..];
        let persona = persona::persona_of(self.opts.seed, normalized);
        let (age, income) = persona::demographics(self.opts.seed, normalized, persona);
        let name: String = Name().fake_with_rng(&mut self.rng);
        let d = &self.opts.dirt;
        let age = if self.rng.random_bool(d.missing_age_rate) {
            dirt::missing_token(&mut self.rng).to_owned()
        } else if self.rng.random_bool(0.05) {
            format!("{age}.0") // as pandas writes an int column with gaps
        } else {
            age.to_string()
        };
        let income = if self.rng.random_bool(d.missing_income_rate) {
            dirt::missing_token(&mut self.rng).to_owned()
        } else {
            format!("{income:.0}")
        };
        let gender = match self.rng.random_range(0..100) {
            0..48 => "Male",
            48..96 => "Female",
            96..98 => "Other",
            98 => "male",
            _ => "FEMALE",
        };
        let (mobile_field, truth) = if self.rng.random_bool(d.malformed_mobile_rate) {
            (dirt::malformed_mobile(&mut self.rng, &mobile), None)
        } else {
            (mobile.clone(), Some((mobile, persona)))
        };
        Generated {
            fields: [name, age, income, mobile_field, gender.to_owned()],
            truth,
        }
    }

    fn duplicate(&mut self) -> Option<Generated> {
        if self.recent.is_empty() {
            return None;
        }
        let pick = self.rng.random_range(0..self.recent.len());
        let mut fields = self.recent[pick].clone();
        if self.rng.random_bool(0.5) {
            fields[3] = dirt::reformat_mobile(&mut self.rng, &fields[3]);
        }
        Some(Generated {
            fields,
            truth: None,
        })
    }
}

impl Iterator for Rows {
    type Item = Generated;

    fn next(&mut self) -> Option<Generated> {
        if let Some(dup) = self.pending_duplicate.take() {
            return Some(dup);
        }
        if self.next >= self.opts.customers {
            return None;
        }
        let row = self.customer(self.next);
        self.next += 1;
        if row.truth.is_some() {
            if self.recent.len() == RECENT {
                self.recent.pop_front();
            }
            self.recent.push_back(row.fields.clone());
        }
        if self.rng.random_bool(self.opts.dirt.duplicate_rate) {
            self.pending_duplicate = self.duplicate();
        }
        Some(row)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::mobile;

    fn opts(n: u64, seed: u64) -> GenerateOpts {
        GenerateOpts {
            customers: n,
            seed,
            dirt: Dirt::default(),
        }
    }

    #[test]
    fn same_seed_same_rows_other_seed_other_rows() {
        let a: Vec<_> = customers(&opts(2000, 42)).collect();
        let b: Vec<_> = customers(&opts(2000, 42)).collect();
        let c: Vec<_> = customers(&opts(2000, 43)).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn dirt_rates_are_within_tolerance() {
        let n = 40_000u64;
        let rows: Vec<_> = customers(&opts(n, 7)).collect();
        let distinct = rows.iter().filter(|r| r.truth.is_some()).count() as f64;
        let malformed = rows
            .iter()
            .filter(|r| mobile::normalize(&r.fields[3]).is_err())
            .count() as f64;
        let dups = rows.len() as f64 - distinct - malformed;
        let missing_age = rows.iter().filter(|r| is_missing(&r.fields[1])).count() as f64;
        let missing_income = rows.iter().filter(|r| is_missing(&r.fields[2])).count() as f64;
        let n = n as f64;
        assert!((dups / n - 0.05).abs() < 0.006, "duplicates {}", dups / n);
        assert!(
            (malformed / n - 0.01).abs() < 0.003,
            "malformed {}",
            malformed / n
        );
        // Duplicate rows copy their source's age, so measure over all rows.
        assert!(
            (missing_age / rows.len() as f64 - 0.10).abs() < 0.01,
            "age {}",
            missing_age / n
        );
        assert!(
            (missing_income / rows.len() as f64 - 0.02).abs() < 0.004,
            "income"
        );
    }

    #[test]
    fn mobiles_are_unique_and_duplicates_repeat_a_real_customer() {
        let rows: Vec<_> = customers(&opts(20_000, 3)).collect();
        let mut seen = HashSet::new();
        for r in &rows {
            match (&r.truth, mobile::normalize(&r.fields[3])) {
                (Some(_), Ok(m)) => assert!(seen.insert(m), "mobile repeated as a new customer"),
                (None, Ok(m)) => assert!(seen.contains(&m), "duplicate of unknown mobile {m}"),
                (_, Err(_)) => {}
            }
        }
    }

    #[test]
    fn write_streams_csv_and_truth() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("c.csv");
        let s = write(&opts(300, 1), &out).expect("write");
        let text = std::fs::read_to_string(&out).expect("read");
        assert!(text.starts_with("name,age,income,mobile,gender\n"));
        assert_eq!(text.lines().count() as u64, s.rows + 1);
        let truth = std::fs::read_to_string(truth_path(&out)).expect("truth");
        assert_eq!(
            truth.lines().count() as u64,
            s.customers - s.malformed_mobiles + 1
        );
        assert_eq!(truth_path(&out), dir.path().join("c.truth.csv"));
    }
}
