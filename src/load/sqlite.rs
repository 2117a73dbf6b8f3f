//! The SQLite sink: everything in one `BEGIN IMMEDIATE` transaction.
//!
//! `BEGIN IMMEDIATE` takes the database's write lock up front, so it is both
//! the load lock (a second loader waits in the busy handler) and the
//! migration lock. Inside it: migrate, delete the old rows (children first),
//! insert the new ones with prepared statements (parents first, foreign keys
//! on), append to `pipeline_runs`, commit. In WAL mode readers keep their
//! snapshot of the old set until the commit. Money is REAL rounded to cents
//! and dates are ISO text (see migrations/sqlite).

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::Utc;
use rusqlite::types::{ToSqlOutput, Value as SqlOwned, ValueRef};
use rusqlite::{Connection, ToSql, TransactionBehavior, params};

use super::{Error, LoadOpts, LoadSummary, injected, schema};
use crate::model::{Report, round2};
use crate::report_tables::{HISTORY, TABLES};
use crate::table::{Cell, Column, Table, check};

/// How long a second loader waits for the first before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(600);

/// Switch to WAL. Changing the journal mode needs the file to itself and
/// SQLite answers BUSY without calling the busy handler when a second
/// loader opens the same new file at the same moment: retry until the
/// busy timeout.
fn enable_wal(conn: &Connection) -> Result<(), rusqlite::Error> {
    let deadline = Instant::now() + BUSY_TIMEOUT;
    loop {
        match conn.pragma_update(None, "journal_mode", "WAL") {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// Open (creating parent directories and the file) to prove it is writable.
pub(crate) fn ping(path: &Path) -> Result<(), Error> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| Error::Dir {
            path: parent.to_owned(),
            source,
        })?;
    }
    let conn = Connection::open(path).map_err(|source| Error::Sqlite {
        path: path.to_owned(),
        step: "open".to_owned(),
        source,
    })?;
    conn.execute_batch("BEGIN IMMEDIATE; ROLLBACK;")
        .map_err(|source| Error::Sqlite {
            path: path.to_owned(),
            step: "check write access".to_owned(),
            source,
        })
}

pub(crate) fn load(report: &Report, path: &Path, opts: &LoadOpts) -> Result<LoadSummary, Error> {
    let fail = |step: &str| {
        let step = step.to_owned();
        move |source| Error::Sqlite {
            path: path.to_owned(),
            step,
            source,
        }
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| Error::Dir {
            path: parent.to_owned(),
            source,
        })?;
    }
    let mut conn = Connection::open(path).map_err(fail("open"))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(fail("set busy timeout"))?;
    // WAL: readers are not blocked by the load and keep the old snapshot.
    // NORMAL is durable at every checkpoint and never corrupts in WAL mode.
    enable_wal(&conn).map_err(fail("enable WAL"))?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(fail("set synchronous"))?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(fail("enable foreign keys"))?;

    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(fail("begin"))?;
    schema::migrate_sqlite(&tx)?;

    let mut timings = Vec::new();
    let started = Instant::now();
    for table in TABLES.iter().rev() {
        tx.execute(&format!("DELETE FROM {}", table.name), [])
            .map_err(fail(&format!("clear `{}`", table.name)))?;
    }
    timings.push(("delete".to_owned(), started.elapsed()));
    for table in TABLES {
        let started = Instant::now();
        insert_table(&tx, report, table).map_err(|e| match e {
            Failure::Value(e) => e,
            Failure::Sqlite(source) => Error::Sqlite {
                path: path.to_owned(),
                step: format!("insert into `{}`", table.name),
                source,
            },
        })?;
        timings.push((table.name.to_owned(), started.elapsed()));
        injected(opts, table.name)?;
    }

    let started = Instant::now();
    for table in HISTORY {
        tx.execute(
            &format!("DELETE FROM {} WHERE {} = ?1", table.name, table.key[0]),
            [&report.model.run_id],
        )
        .map_err(fail(&format!("clear this run from `{}`", table.name)))?;
        insert_table(&tx, report, table).map_err(|e| match e {
            Failure::Value(e) => e,
            Failure::Sqlite(source) => Error::Sqlite {
                path: path.to_owned(),
                step: format!("insert into `{}`", table.name),
                source,
            },
        })?;
    }
    record_run(&tx, report).map_err(fail("record the run in `pipeline_runs`"))?;
    tx.commit().map_err(fail("commit"))?;
    timings.push(("commit".to_owned(), started.elapsed()));
    Ok(LoadSummary {
        destination: String::new(),
        rows: report.row_counts(),
        timings,
    })
}

/// Insert errors: bad report data (already an [`Error`]) or SQLite's.
enum Failure {
    Value(Error),
    Sqlite(rusqlite::Error),
}

impl From<rusqlite::Error> for Failure {
    fn from(e: rusqlite::Error) -> Self {
        Failure::Sqlite(e)
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Value(e)
    }
}

/// A cell converted for its STRICT column, checked first. Money is rounded
/// to cents, dates are ISO text.
#[derive(Debug)]
struct SqlValue<'a>(ToSqlOutput<'a>);

impl<'a> SqlValue<'a> {
    fn new(column: &Column, cell: Cell<'a>) -> Result<SqlValue<'a>, String> {
        check(column, &cell)?;
        Ok(SqlValue(match cell {
            Cell::Null | Cell::Dangling { .. } => ToSqlOutput::Borrowed(ValueRef::Null),
            Cell::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Cell::Int(n) => ToSqlOutput::Owned(SqlOwned::Integer(n)),
            Cell::Float(x) if column.kind.is_money() => {
                ToSqlOutput::Owned(SqlOwned::Real(round2(x)))
            }
            Cell::Float(x) => ToSqlOutput::Owned(SqlOwned::Real(x)),
            Cell::Date(d) => ToSqlOutput::Owned(SqlOwned::Text(d.format("%Y-%m-%d").to_string())),
            Cell::Month(m) => ToSqlOutput::Owned(SqlOwned::Text(m.to_string())),
        }))
    }
}

impl ToSql for SqlValue<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match &self.0 {
            ToSqlOutput::Borrowed(v) => ToSqlOutput::Borrowed(*v),
            ToSqlOutput::Owned(v) => ToSqlOutput::Borrowed(ValueRef::from(v)),
            other => other.to_sql()?,
        })
    }
}

/// Insert every row of `table` with one prepared statement.
fn insert_table(
    tx: &rusqlite::Transaction<'_>,
    report: &Report,
    table: &Table,
) -> Result<(), Failure> {
    let columns: Vec<&str> = table.column_names().collect();
    let placeholders: Vec<String> = (1..=columns.len()).map(|i| format!("?{i}")).collect();
    let mut stmt = tx.prepare(&format!(
        "INSERT INTO {} ({}) VALUES ({})",
        table.name,
        columns.join(", "),
        placeholders.join(", ")
    ))?;
    let mut cells = Vec::with_capacity(columns.len());
    let mut values = Vec::with_capacity(columns.len());
    for row in 0..(table.len)(report) {
        cells.clear();
        (table.cells)(report, row, &mut cells);
        values.clear();
        for (column, cell) in table.columns.iter().zip(&cells) {
            values.push(SqlValue::new(column, *cell).map_err(|reason| Error::Value {
                table: table.name,
                row,
                reason,
            })?);
        }
        stmt.execute(rusqlite::params_from_iter(values.iter()))?;
    }
    Ok(())
}

/// Append this load to `pipeline_runs`; the write lock makes the
/// `load_number` read-then-insert race-free.
fn record_run(tx: &rusqlite::Transaction<'_>, report: &Report) -> Result<(), rusqlite::Error> {
    let m = &report.model;
    let (ari, nmi) = match &m.evaluation {
        Some(e) => (Some(e.ari), Some(e.nmi)),
        None => (None, None),
    };
    tx.execute(
        "INSERT INTO pipeline_runs (run_id, report_run_id, load_number, started_at, finished_at, status, \
             as_of, seed, k, silhouette, inertia, ari, nmi, row_counts, data_quality) \
         SELECT CASE WHEN n = 0 THEN ?1 ELSE ?1 || '-' || (n + 1) END, ?1, n + 1, ?2, ?3, 'succeeded', \
             ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12 \
         FROM (SELECT COALESCE(MAX(load_number), 0) AS n FROM pipeline_runs WHERE report_run_id = ?1)",
        params![
            m.run_id,
            m.started_at.to_rfc3339(),
            Utc::now().to_rfc3339(),
            m.as_of.format("%Y-%m-%d").to_string(),
            m.seed.to_string(),
            m.k,
            m.silhouette,
            m.inertia,
            ari,
            nmi,
            super::row_counts_json(report).to_string(),
            super::quality_json(report).to_string(),
        ],
    )?;
    Ok(())
}
