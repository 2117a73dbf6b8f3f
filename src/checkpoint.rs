//! CSV checkpoints between stages: written by the subcommand shells, and by
//! `run` only when it is given `--checkpoint-dir`.
//!
//! Every value is written so that reading it back gives the same value
//! (`f64` Display is round-trip exact), so the step-by-step subcommands load
//! exactly the tables that `run` loads.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::interner::Interner;
use crate::key_order::{self, MobileRanks};
use crate::model::{
    Customer, CustomerIdx, Gender, Joined, Persona, Quality, RawDate, Report, SegmentModel,
};
use crate::report_tables::{HISTORY, TABLES};
use crate::table::{Cell, Fields, ReportParts, Table, Value};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read `{path}`")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Parse {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error("cannot write `{path}`")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A shard interchange file that is not what the step expects
    /// (truncated, another schema, a missing or repeated shard).
    #[error("{path}: {message}")]
    Shard { path: PathBuf, message: String },
    #[error("cannot write `{path}`: {message}")]
    ShardWrite { path: PathBuf, message: String },
}

/// Extract checkpoint file names.
pub const CUSTOMERS_CLEAN: &str = "customers_clean.csv";
pub const PURCHASES_RAW: &str = "purchases_raw.csv";
pub const REJECTS: &str = "rejects_customers.csv";
pub const PURCHASE_REJECTS: &str = "rejects_purchases.csv";
pub const EXTRACT_QUALITY: &str = "data_quality_extract.csv";
pub const TRUTH: &str = "truth.csv";
/// Transform checkpoint file names (the report tables are named as in §5).
pub const MODEL: &str = "segment_model.json";
pub const QUALITY: &str = "data_quality.csv";

// ---------------------------------------------------------------- writing

struct Out {
    path: PathBuf,
    w: csv::Writer<BufWriter<File>>,
}

impl Out {
    fn create(dir: &Path, name: &str, header: &[&str]) -> Result<Out, Error> {
        let path = dir.join(name);
        let file = File::create(&path).map_err(|source| Error::Write {
            path: path.clone(),
            source,
        })?;
        let mut out = Out {
            w: csv::Writer::from_writer(BufWriter::with_capacity(1 << 20, file)),
            path,
        };
        out.row(header)?;
        Ok(out)
    }

    fn row<I, S>(&mut self, fields: I) -> Result<(), Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<[u8]>,
    {
        self.w.write_record(fields).map_err(|e| self.err(e))
    }

    fn err(&self, e: csv::Error) -> Error {
        let source = match e.into_kind() {
            csv::ErrorKind::Io(io) => io,
            other => std::io::Error::other(format!("{other:?}")),
        };
        Error::Write {
            path: self.path.clone(),
            source,
        }
    }

    fn finish(self) -> Result<(), Error> {
        let path = self.path;
        let mut inner = self.w.into_inner().map_err(|e| Error::Write {
            path: path.clone(),
            source: e.into_error(),
        })?;
        inner
            .flush()
            .map_err(|source| Error::Write { path, source })
    }
}

fn create_dir(dir: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Write {
        path: dir.to_owned(),
        source,
    })
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

/// Write the customer rejects file (`line,reason`, then the source columns).
pub fn write_rejects(
    dir: &Path,
    header: &[String],
    rejects: &[crate::model::Reject],
) -> Result<(), Error> {
    write_rejects_named(dir, REJECTS, header, rejects)
}

/// A rejects file: `line,reason`, then the source file's columns.
fn write_rejects_named(
    dir: &Path,
    name: &str,
    header: &[String],
    rejects: &[crate::model::Reject],
) -> Result<(), Error> {
    create_dir(dir)?;
    let mut cols = vec!["line", "reason"];
    cols.extend(header.iter().map(String::as_str));
    let mut out = Out::create(dir, name, &cols)?;
    // A reject may have more or fewer fields than the header: keep them all.
    out.w = csv::WriterBuilder::new()
        .flexible(true)
        .from_writer(out.w.into_inner().map_err(|e| Error::Write {
            path: dir.join(name),
            source: e.into_error(),
        })?);
    for r in rejects {
        let mut row = vec![r.line.to_string(), r.reason.clone()];
        row.extend(r.fields.iter().cloned());
        out.row(&row)?;
    }
    out.finish()
}

fn write_quality(dir: &Path, name: &str, quality: &Quality) -> Result<(), Error> {
    let mut out = Out::create(dir, name, &["rule", "rows"])?;
    for q in &quality.0 {
        out.row([q.rule.as_str(), &q.rows.to_string()])?;
    }
    out.finish()
}

/// Write extract's checkpoint: clean customers, raw purchases, rejects, quality, truth.
pub fn write_joined(dir: &Path, j: &Joined) -> Result<(), Error> {
    create_dir(dir)?;
    // A shard's customers carry their unsharded position (`fit` orders by it).
    let sharded = !j.positions.is_empty();
    let columns: &[&str] = if sharded {
        &["mobile", "name", "age", "income", "gender", "position"]
    } else {
        &["mobile", "name", "age", "income", "gender"]
    };
    let mut out = Out::create(dir, CUSTOMERS_CLEAN, columns)?;
    for (i, c) in j.customers.iter().enumerate() {
        let mut row = vec![
            c.mobile,
            c.name.clone().unwrap_or_default(),
            opt(c.age),
            opt(c.income),
            opt(c.gender),
        ];
        if sharded {
            row.push(opt(j.positions.get(i)));
        }
        out.row(row)?;
    }
    out.finish()?;
    let mut out = Out::create(
        dir,
        PURCHASES_RAW,
        &["mobile", "date", "amount", "store", "order_key"],
    )?;
    for p in &j.purchases {
        let store = p.store().and_then(|s| j.stores.get(s as usize)).cloned();
        out.row([
            j.customers.mobile_at(p.customer.index()).to_owned(),
            p.date.text(&j.odd_dates).unwrap_or_default(),
            opt(p.amount()),
            store.unwrap_or_default(),
            p.order().map(|k| format!("{k:016x}")).unwrap_or_default(),
        ])?;
    }
    out.finish()?;
    write_rejects(dir, &j.source_header, &j.rejects)?;
    if !j.purchase_header.is_empty() {
        write_rejects_named(
            dir,
            PURCHASE_REJECTS,
            &j.purchase_header,
            &j.purchase_rejects,
        )?;
    }
    write_quality(dir, EXTRACT_QUALITY, &j.quality)?;
    let truth_path = dir.join(TRUTH);
    if let Some(truth) = &j.truth {
        let mut out = Out::create(dir, TRUTH, &["mobile", "persona"])?;
        for (c, p) in j.customers.mobiles().zip(truth) {
            if let Some(p) = p {
                out.row([c, p.as_str()])?;
            }
        }
        out.finish()?;
    } else if truth_path.exists() {
        // A stale truth file would score this run against another world.
        std::fs::remove_file(&truth_path).map_err(|source| Error::Write {
            path: truth_path,
            source,
        })?;
    }
    Ok(())
}

/// Write transform's checkpoint: the report tables, model and quality.
pub fn write_report(dir: &Path, r: &Report) -> Result<(), Error> {
    create_dir(dir)?;
    for table in TABLES.iter().chain(&HISTORY) {
        write_table(dir, r, table)?;
    }
    let model_path = dir.join(MODEL);
    let json = serde_json::to_vec_pretty(&r.model).map_err(|e| Error::Write {
        path: model_path.clone(),
        source: std::io::Error::other(e),
    })?;
    std::fs::write(&model_path, json).map_err(|source| Error::Write {
        path: model_path,
        source,
    })?;
    write_quality(dir, QUALITY, &r.quality)
}

/// Write only `tables` of `r` (a shard's part of the report).
pub fn write_tables(dir: &Path, r: &Report, tables: &[&Table]) -> Result<(), Error> {
    create_dir(dir)?;
    for table in tables {
        write_table(dir, r, table)?;
    }
    Ok(())
}

/// Write `segment_model.json` and `data_quality.csv` (a sharded fit).
pub fn write_model_and_quality(dir: &Path, r: &Report) -> Result<(), Error> {
    create_dir(dir)?;
    let model_path = dir.join(MODEL);
    let json = serde_json::to_vec_pretty(&r.model).map_err(|e| Error::Write {
        path: model_path.clone(),
        source: std::io::Error::other(e),
    })?;
    std::fs::write(&model_path, json).map_err(|source| Error::Write {
        path: model_path,
        source,
    })?;
    write_quality(dir, QUALITY, &r.quality)
}

/// `data_quality.csv` alone (a shard's features step).
pub fn write_quality_file(dir: &Path, q: &Quality) -> Result<(), Error> {
    create_dir(dir)?;
    write_quality(dir, QUALITY, q)
}

/// Read `data_quality.csv` of `dir`.
pub fn read_quality_file(dir: &Path) -> Result<Quality, Error> {
    read_quality(dir, QUALITY)
}

/// Read `segment_model.json` of `dir`.
pub fn read_model(dir: &Path) -> Result<SegmentModel, Error> {
    let model_path = dir.join(MODEL);
    let text = std::fs::read(&model_path).map_err(|source| Error::Open {
        path: model_path.clone(),
        source,
    })?;
    serde_json::from_slice(&text).map_err(|e| Error::Parse {
        path: model_path,
        line: e.line() as u64,
        message: e.to_string(),
    })
}

/// `<table>.csv`: the declared columns, one row per report row.
fn write_table(dir: &Path, r: &Report, table: &Table) -> Result<(), Error> {
    let header: Vec<&str> = table.column_names().collect();
    let mut out = Out::create(dir, &file_name(table), &header)?;
    let mut cells = Vec::with_capacity(header.len());
    for i in 0..(table.len)(r) {
        cells.clear();
        (table.cells)(r, i, &mut cells);
        out.row(cells.iter().map(cell_text))?;
    }
    out.finish()
}

fn file_name(table: &Table) -> String {
    format!("{}.csv", table.name)
}

/// A cell as checkpoint text: every number in its round-trip exact form,
/// NULL as the empty field.
fn cell_text(cell: &Cell<'_>) -> String {
    match *cell {
        Cell::Null | Cell::Dangling { .. } => String::new(),
        Cell::Text(s) => s.to_owned(),
        Cell::Int(n) => n.to_string(),
        Cell::Float(x) => x.to_string(),
        Cell::Date(d) => d.format("%Y-%m-%d").to_string(),
        Cell::Month(m) => m.to_string(),
    }
}

// ---------------------------------------------------------------- reading

/// A checkpoint CSV read by column name, with errors naming file:line:column.
struct In {
    path: PathBuf,
    reader: csv::Reader<File>,
    cols: Vec<usize>,
    names: Vec<&'static str>,
    record: csv::StringRecord,
    line: u64,
}

impl In {
    fn open(dir: &Path, name: &str, names: &[&'static str]) -> Result<In, Error> {
        let path = dir.join(name);
        let file = File::open(&path).map_err(|source| Error::Open {
            path: path.clone(),
            source,
        })?;
        let mut reader = csv::Reader::from_reader(file);
        let header = reader
            .headers()
            .map_err(|e| Error::Parse {
                path: path.clone(),
                line: 1,
                message: e.to_string(),
            })?
            .clone();
        let cols = names
            .iter()
            .map(|n| {
                header
                    .iter()
                    .position(|h| h == *n)
                    .ok_or_else(|| Error::Parse {
                        path: path.clone(),
                        line: 1,
                        message: format!("missing column `{n}`"),
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(In {
            path,
            reader,
            cols,
            names: names.to_vec(),
            record: csv::StringRecord::new(),
            line: 1,
        })
    }

    fn next(&mut self) -> Result<bool, Error> {
        let more = self
            .reader
            .read_record(&mut self.record)
            .map_err(|e| Error::Parse {
                path: self.path.clone(),
                line: self.line + 1,
                message: e.to_string(),
            })?;
        self.line = self.record.position().map_or(self.line + 1, |p| p.line());
        Ok(more)
    }

    fn str(&self, i: usize) -> &str {
        self.record.get(self.cols[i]).unwrap_or_default()
    }

    /// Also read column `name` when the file has it; its index for `str`.
    fn optional(&mut self, name: &'static str) -> Option<usize> {
        let at = self.reader.headers().ok()?.iter().position(|h| h == name)?;
        self.cols.push(at);
        self.names.push(name);
        Some(self.cols.len() - 1)
    }

    fn err(&self, i: usize, message: impl std::fmt::Display) -> Error {
        Error::Parse {
            path: self.path.clone(),
            line: self.line,
            message: format!("column `{}`: {message}", self.names[i]),
        }
    }

    fn parse<T: FromStr>(&self, i: usize) -> Result<T, Error>
    where
        T::Err: std::fmt::Display,
    {
        let s = self.str(i);
        s.parse().map_err(|e| self.err(i, format!("`{s}`: {e}")))
    }

    fn opt<T: FromStr>(&self, i: usize) -> Result<Option<T>, Error>
    where
        T::Err: std::fmt::Display,
    {
        if self.str(i).is_empty() {
            Ok(None)
        } else {
            self.parse(i).map(Some)
        }
    }

    fn opt_string(&self, i: usize) -> Option<String> {
        Some(self.str(i))
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    }

    fn gender(&self, i: usize) -> Result<Option<Gender>, Error> {
        match self.str(i) {
            "" => Ok(None),
            s => Gender::parse(s)
                .map(Some)
                .ok_or_else(|| self.err(i, format!("unknown gender `{s}`"))),
        }
    }

    fn customer(
        &self,
        i: usize,
        index: &HashMap<String, CustomerIdx>,
    ) -> Result<CustomerIdx, Error> {
        index
            .get(self.str(i))
            .copied()
            .ok_or_else(|| self.err(i, format!("unknown mobile `{}`", self.str(i))))
    }
}

fn read_quality(dir: &Path, name: &str) -> Result<Quality, Error> {
    let mut q = Quality::default();
    let mut f = In::open(dir, name, &["rule", "rows"])?;
    while f.next()? {
        q.add(f.str(0), f.parse(1)?);
    }
    Ok(q)
}

/// Read extract's checkpoint back: the validated customers (with rejects and
/// quality), the purchases, and the truth when present.
pub fn read_joined(dir: &Path) -> Result<Joined, Error> {
    let mut j = Joined::default();
    let mut index: HashMap<String, CustomerIdx> = HashMap::new();
    let mut f = In::open(
        dir,
        CUSTOMERS_CLEAN,
        &["mobile", "name", "age", "income", "gender"],
    )?;
    let position = f.optional("position");
    while f.next()? {
        if let Some(i) = position {
            j.positions.push(f.parse(i)?);
        }
        let c = Customer {
            mobile: f.str(0).to_owned(),
            name: f.opt_string(1),
            age: f.opt(2)?,
            income: f.opt(3)?,
            gender: f.gender(4)?,
        };
        index.insert(c.mobile.clone(), CustomerIdx::from_index(j.customers.len()));
        j.customers.push(&c);
    }
    let mut stores = Interner::default();
    let mut f = In::open(
        dir,
        PURCHASES_RAW,
        &["mobile", "date", "amount", "store", "order_key"],
    )?;
    while f.next()? {
        let customer = f.customer(0, &index)?;
        let date = RawDate::classify(Some(f.str(1)).filter(|s| !s.is_empty()), &mut j.odd_dates);
        let store = f.opt_string(3).map(|s| stores.id(&mut j.stores, &s));
        let order = match f.str(4) {
            "" => 0,
            hex => u64::from_str_radix(hex, 16).map_err(|e| f.err(4, format!("`{hex}`: {e}")))?,
        };
        j.purchases
            .push(crate::model::Purchase::new(customer, date, f.opt(2)?, store).with_order(order));
    }
    j.quality = read_quality(dir, EXTRACT_QUALITY)?;
    if dir.join(TRUTH).exists() {
        let mut truth = vec![None; j.customers.len()];
        let mut f = In::open(dir, TRUTH, &["mobile", "persona"])?;
        while f.next()? {
            let i = f.customer(0, &index)?;
            let p = Persona::parse(f.str(1))
                .ok_or_else(|| f.err(1, format!("unknown persona `{}`", f.str(1))))?;
            truth[i.index()] = Some(p);
        }
        j.truth = Some(truth);
    }
    Ok(j)
}

/// Read transform's checkpoint back into a `Report`.
pub fn read_report(dir: &Path) -> Result<Report, Error> {
    read_reports(&[dir.to_path_buf()])
}

/// Read one report spread over several checkpoint directories (a sharded
/// run's fit and per-shard outputs): each table is the rows of every
/// directory that has its file, in the order given; the model and quality
/// come from the first directory with a model.
pub fn read_reports(dirs: &[PathBuf]) -> Result<Report, Error> {
    let Some(first) = dirs.first() else {
        return Err(Error::Parse {
            path: PathBuf::from("."),
            line: 0,
            message: "no input directory".to_owned(),
        });
    };
    let mut parts = ReportParts::default();
    for table in TABLES {
        let with: Vec<&PathBuf> = dirs
            .iter()
            .filter(|d| d.join(file_name(table)).exists())
            .collect();
        if with.is_empty() {
            // Fails naming the missing file.
            read_table(first, table, &mut parts)?;
        }
        for dir in with {
            read_table(dir, table, &mut parts)?;
        }
    }
    // Checkpoints written before history tables existed have no such file.
    for table in HISTORY {
        for dir in dirs.iter().filter(|d| d.join(file_name(table)).exists()) {
            read_table(dir, table, &mut parts)?;
        }
    }
    // Each shard's store and trend rows are in key order, one shard's after
    // another's are not: the stable sort merges them (see `key_order`).
    if dirs.len() > 1 {
        let started = std::time::Instant::now();
        let ranks = MobileRanks::by(parts.customers.len(), |i| &parts.customers[i].mobile);
        key_order::sort(&mut parts.stores, &ranks);
        key_order::sort(&mut parts.trends, &ranks);
        tracing::debug!(
            message = "Merged the shards' store and trend rows into key order.",
            elapsed_ms = started.elapsed().as_millis() as u64
        );
    }
    let dir = dirs
        .iter()
        .find(|d| d.join(MODEL).exists())
        .unwrap_or(first);
    let model_path = dir.join(MODEL);
    let text = std::fs::read(&model_path).map_err(|source| Error::Open {
        path: model_path.clone(),
        source,
    })?;
    let model: SegmentModel = serde_json::from_slice(&text).map_err(|e| Error::Parse {
        path: model_path,
        line: e.line() as u64,
        message: e.to_string(),
    })?;
    Ok(Report {
        customers: parts.customers.into(),
        behavior: parts.behavior.into(),
        segments: parts.segments,
        store_names: parts.store_names,
        stores: parts.stores.into(),
        trends: parts.trends.into(),
        transitions: parts.transitions,
        model,
        quality: read_quality(dir, QUALITY)?,
    })
}

/// Parse `<table>.csv` by its declared columns into `parts`.
fn read_table(dir: &Path, table: &Table, parts: &mut ReportParts) -> Result<(), Error> {
    let names: Vec<&'static str> = table.column_names().collect();
    let mut f = In::open(dir, &file_name(table), &names)?;
    let mut values = Vec::with_capacity(names.len());
    while f.next()? {
        values.clear();
        for (i, column) in table.columns.iter().enumerate() {
            values.push(Value::parse(column, f.str(i)).map_err(|m| f.err(i, m))?);
        }
        (table.read)(parts, &Fields { values: &values }).map_err(|e| f.err(e.column, e.message))?;
    }
    Ok(())
}
