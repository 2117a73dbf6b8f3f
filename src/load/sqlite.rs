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

use chrono::{NaiveDate, Utc};
use rusqlite::{Connection, TransactionBehavior, params};

use super::{Error, LoadOpts, LoadSummary, TABLES, injected, mobile, schema, store};
use crate::model::{Report, round2};

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
        tx.execute(&format!("DELETE FROM {table}"), [])
            .map_err(fail(&format!("clear `{table}`")))?;
    }
    timings.push(("delete".to_owned(), started.elapsed()));
    for table in TABLES {
        let started = Instant::now();
        insert_table(&tx, report, table).map_err(|e| match e {
            Failure::Value(e) => e,
            Failure::Sqlite(source) => Error::Sqlite {
                path: path.to_owned(),
                step: format!("insert into `{table}`"),
                source,
            },
        })?;
        timings.push((table.to_owned(), started.elapsed()));
        injected(opts, table)?;
    }

    let started = Instant::now();
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

/// Money rounded to cents; NaN/∞ are bad data (SQLite would store NULL).
fn money(table: &'static str, row: usize, column: &str, x: f64) -> Result<f64, Error> {
    if x.is_finite() {
        Ok(round2(x))
    } else {
        Err(Error::Value {
            table,
            row,
            reason: format!("`{column}` is {x}, not money"),
        })
    }
}

fn iso(d: Option<NaiveDate>) -> Option<String> {
    d.map(|d| d.format("%Y-%m-%d").to_string())
}

fn insert_table(
    tx: &rusqlite::Transaction<'_>,
    report: &Report,
    table: &'static str,
) -> Result<(), Failure> {
    match table {
        "segment_metrics" => {
            let mut stmt = tx.prepare(
                "INSERT INTO segment_metrics (segment, segment_label, num_customers, total_spend, avg_clv, \
                 avg_age, avg_income, avg_purchase_count, avg_days_since_last_purchase, \
                 avg_purchase_frequency, share_of_customers, share_of_spend) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )?;
            for (i, s) in report.segments.iter().enumerate() {
                let num = i64::try_from(s.num_customers).map_err(|_| Error::Value {
                    table,
                    row: i,
                    reason: format!("`num_customers` = {} does not fit INTEGER", s.num_customers),
                })?;
                stmt.execute(params![
                    s.segment,
                    s.segment_label,
                    num,
                    money(table, i, "total_spend", s.total_spend)?,
                    money(table, i, "avg_clv", s.avg_clv)?,
                    s.avg_age,
                    money(table, i, "avg_income", s.avg_income)?,
                    s.avg_purchase_count,
                    s.avg_days_since_last_purchase,
                    s.avg_purchase_frequency,
                    s.share_of_customers,
                    s.share_of_spend,
                ])?;
            }
        }
        "customer_segments" => {
            let mut stmt = tx.prepare(
                "INSERT INTO customer_segments (mobile, name, age, income, gender, clv, avg_purchase_amount, \
                 purchase_count, days_since_last_purchase, purchase_frequency, segment, segment_label) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )?;
            for (i, c) in report.customers.iter().enumerate() {
                let income = c.income.map(|x| money(table, i, "income", x)).transpose()?;
                stmt.execute(params![
                    c.mobile,
                    c.name,
                    c.age,
                    income,
                    c.gender.map(|g| g.as_str()),
                    money(table, i, "clv", c.clv)?,
                    money(table, i, "avg_purchase_amount", c.avg_purchase_amount)?,
                    c.purchase_count,
                    c.days_since_last_purchase,
                    c.purchase_frequency,
                    c.segment,
                    c.segment_label,
                ])?;
            }
        }
        "customer_behavior_metrics" => {
            let mut stmt = tx.prepare(
                "INSERT INTO customer_behavior_metrics (mobile, total_spent, avg_transaction_value, \
                 max_purchase_amount, min_purchase_amount, purchase_count, first_purchase, last_purchase, \
                 days_since_first_purchase, days_since_last_purchase) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?;
            for (i, b) in report.behavior.iter().enumerate() {
                stmt.execute(params![
                    mobile(report, table, i, b.customer)?,
                    money(table, i, "total_spent", b.total_spent)?,
                    money(table, i, "avg_transaction_value", b.avg_transaction_value)?,
                    money(table, i, "max_purchase_amount", b.max_purchase_amount)?,
                    money(table, i, "min_purchase_amount", b.min_purchase_amount)?,
                    b.purchase_count,
                    iso(b.first_purchase),
                    iso(b.last_purchase),
                    b.days_since_first_purchase,
                    b.days_since_last_purchase,
                ])?;
            }
        }
        "customer_store_summary" => {
            let mut stmt = tx.prepare(
                "INSERT INTO customer_store_summary (mobile, store, total_spent, visit_count) \
                 VALUES (?1, ?2, ?3, ?4)",
            )?;
            for (i, s) in report.stores.iter().enumerate() {
                stmt.execute(params![
                    mobile(report, table, i, s.customer)?,
                    store(report, table, i, s.store)?,
                    money(table, i, "total_spent", s.total_spent)?,
                    s.visit_count,
                ])?;
            }
        }
        "customer_purchase_trends" => {
            let mut stmt = tx.prepare(
                "INSERT INTO customer_purchase_trends (mobile, month, total_spent, num_purchases) \
                 VALUES (?1, ?2, ?3, ?4)",
            )?;
            for (i, t) in report.trends.iter().enumerate() {
                stmt.execute(params![
                    mobile(report, table, i, t.customer)?,
                    t.month.to_string(),
                    money(table, i, "total_spent", t.total_spent)?,
                    t.num_purchases,
                ])?;
            }
        }
        other => unreachable!("`{other}` is not in TABLES"),
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
