//! The SQLite sink: everything in one `BEGIN IMMEDIATE` transaction.
//!
//! `BEGIN IMMEDIATE` takes the database's write lock up front, so it is both
//! the load lock (a second loader waits in the busy handler) and the
//! migration lock. Inside it: migrate, delete the old rows, insert the new
//! ones with prepared statements (parents first), append to
//! `pipeline_runs`, commit. In WAL mode readers keep their snapshot of the
//! old set until the commit. Money is REAL rounded to cents and dates are
//! ISO text (see migrations/sqlite). Both load modes behave alike here:
//! the tables are never dropped, so views and snapshot readers keep
//! working either way, and SQLite has no GRANTs.
//!
//! What makes it fast (issue 12: 1M customers, ~13M rows):
//! - Rows go in primary-key order (`plan`): the report holds each
//!   customer's rows together but customers in input order, and inserting
//!   those into WITHOUT ROWID B-trees lands every row on a random page.
//!   In key order every insert appends at the right edge.
//! - Foreign keys are checked in memory against the parent's keys
//!   (`plan`), not by SQLite, for this connection only: SQLite would look
//!   the parent up once per row, and a table involved in a foreign key
//!   cannot use DELETE's truncate optimization (row-by-row delete instead).
//!   The schema keeps its REFERENCES for every other writer.
//! - 64-row INSERT statements (one bind/step/reset per 64 rows), no
//!   String per date or month cell, a larger page cache.
//! - The CHECK constraints are checked in Rust too (`domain`), for the
//!   same reason as the foreign keys: SQLite evaluates each per row (the
//!   month's GLOB, `date()` on every date), about a fifth of the load's
//!   CPU. A test holds `domain` against the migrated schema.
//! - `INSERT OR ROLLBACK`: a failed row ends the whole load anyway, so
//!   SQLite need not keep a statement journal to undo just the statement.
//! - An empty file (new, or created by `preflight`) has no old set for a
//!   reader to keep: it is filled with a rollback journal, which writes
//!   each page once, instead of WAL, which writes it to the log and again
//!   at the checkpoint; WAL is switched on right after the commit. Its
//!   pages are 16 KiB (SQLite's default is 4 KiB; fewer B-tree pages to
//!   split and write, the file is laid out once). See [`Journal`].
//! - Spilled rows (`run`) are read into memory first when they fit
//!   [`RESIDENT_BUDGET`]: the key order jumps from customer to customer,
//!   and each jump read a whole page of the scratch file.
//!
//! `benches/load.rs`, 1M customers (15M rows), 2-core machine under load:
//! 168 s → 26 s → 11.5–12.6 s into a fresh file, 116 s → 21 s →
//! 14.3–14.8 s replacing a full set (README "Performance").

use std::cmp::Ordering;
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{NaiveDate, Utc};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, ToSql, TransactionBehavior, params};

use super::{Error, LoadOpts, LoadSummary, injected, schema};
use crate::model::{Report, round2};
use crate::report_tables::{HISTORY, TABLES};
use crate::table::{Cell, Column, ForeignKey, Table, check, cmp_cell, cmp_cells};

/// How long a second loader waits for the first before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(600);

/// How long the switch to WAL after filling an empty file waits for
/// readers before leaving it to the next load (see [`Journal::Rollback`]).
const WAL_AFTER_COMMIT_TIMEOUT: Duration = Duration::from_secs(5);

/// In-memory size up to which spilled rows are read back whole before the
/// load (see the module doc). Fixed, so memory still does not grow with
/// purchases: a million customers' rows (~330 MiB) stay on disk.
const RESIDENT_BUDGET: usize = 64 << 20;

/// Page size of a file this load creates (see the module doc). SQLite
/// fixes it when the first page is written; existing files keep theirs.
const NEW_FILE_PAGE_SIZE: i64 = 16_384;

/// Switch to WAL. Changing the journal mode needs the file to itself and
/// SQLite answers BUSY without calling the busy handler when a second
/// loader opens the same new file at the same moment: retry until
/// `timeout`.
fn enable_wal(conn: &Connection, timeout: Duration) -> Result<(), rusqlite::Error> {
    let deadline = Instant::now() + timeout;
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

/// How the load's transaction is journaled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Journal {
    /// The file holds tables: WAL, so readers keep the old set until the
    /// commit and are never blocked.
    Wal,
    /// The file is empty: nothing for a reader to keep, so the pages are
    /// written once, through a rollback journal (a kill mid-load still
    /// rolls back to the empty file), and WAL is turned on after commit.
    /// A reader that opens the file meanwhile waits for the commit
    /// (busy) or sees no tables, never a part of the load. If another
    /// loader fills the file between this check and our lock, this load
    /// replaces that set through the rollback journal: slower for
    /// readers, as atomic.
    Rollback,
}

impl Journal {
    fn choose(conn: &Connection) -> Result<Journal, rusqlite::Error> {
        let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        Ok(if pages == 0 {
            Journal::Rollback
        } else {
            Journal::Wal
        })
    }
}

/// A copy of `report` with its spilled rows in memory, when they fit
/// [`RESIDENT_BUDGET`]; `None` when nothing is spilled or they do not fit.
fn resident(report: &Report) -> Result<Option<Report>, Error> {
    use std::mem::size_of;
    let (b, s, t) = (&report.behavior, &report.stores, &report.trends);
    if !(b.is_spilled() || s.is_spilled() || t.is_spilled()) {
        return Ok(None);
    }
    let bytes = b.len() * size_of::<crate::model::CustomerBehavior>()
        + s.len() * size_of::<crate::model::StoreSummary>()
        + t.len() * size_of::<crate::model::PurchaseTrend>()
        + report.customers.len() * size_of::<crate::model::CustomerSegment>();
    if bytes > RESIDENT_BUDGET {
        return Ok(None);
    }
    let read = |table: &'static str| move |source| Error::Spill { table, source };
    Ok(Some(Report {
        customers: report.customers.clone(),
        behavior: b
            .to_vec()
            .map_err(read("customer_behavior_metrics"))?
            .into(),
        segments: report.segments.clone(),
        store_names: report.store_names.clone(),
        stores: s.to_vec().map_err(read("customer_store_summary"))?.into(),
        trends: t.to_vec().map_err(read("customer_purchase_trends"))?.into(),
        transitions: report.transitions.clone(),
        model: report.model.clone(),
        quality: report.quality.clone(),
    }))
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
    let journal = Journal::choose(&conn).map_err(fail("read the page count"))?;
    match journal {
        Journal::Wal => {
            // WAL: readers are not blocked by the load and keep the old
            // snapshot. NORMAL is durable at every checkpoint and never
            // corrupts in WAL mode; a power cut may lose the last commit.
            enable_wal(&conn, BUSY_TIMEOUT).map_err(fail("enable WAL"))?;
            conn.pragma_update(None, "synchronous", "NORMAL")
                .map_err(fail("set synchronous"))?;
        }
        Journal::Rollback => {
            // FULL: with a rollback journal NORMAL may corrupt the file on
            // a power cut; FULL syncs the journal before the database is
            // written, and the commit is durable when it returns.
            conn.pragma_update(None, "page_size", NEW_FILE_PAGE_SIZE)
                .map_err(fail("set page_size"))?;
            conn.pragma_update(None, "synchronous", "FULL")
                .map_err(fail("set synchronous"))?;
        }
    }
    // Checked in `plan` instead (see the module doc). A connection-level
    // setting that SQLite ignores inside a transaction: set it first.
    conn.pragma_update(None, "foreign_keys", "OFF")
        .map_err(fail("disable per-row foreign key checks"))?;
    // 64 MiB of page cache (the default is 2 MiB) and in-memory temp
    // B-trees; both last only as long as this connection.
    conn.pragma_update(None, "cache_size", -65_536)
        .map_err(fail("set cache_size"))?;
    conn.pragma_update(None, "temp_store", "MEMORY")
        .map_err(fail("set temp_store"))?;

    let mut timings = Vec::new();
    // Sorting and checking need no lock: do them before taking it.
    let started = Instant::now();
    let resident = resident(report)?;
    let report = resident.as_ref().unwrap_or(report);
    let plans = plan(report)?;
    timings.push(("sort and check keys".to_owned(), started.elapsed()));

    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(fail("begin"))?;
    schema::migrate_sqlite(&tx)?;

    let started = Instant::now();
    for table in TABLES.iter().rev() {
        tx.execute(&format!("DELETE FROM {}", table.name), [])
            .map_err(fail(&format!("clear `{}`", table.name)))?;
    }
    timings.push(("delete".to_owned(), started.elapsed()));
    let insert = |table: &Table, order: Option<&[u32]>| {
        insert_table(&tx, report, table, order).map_err(|e| match e {
            Failure::Value(e) => e,
            Failure::Sqlite(source) => Error::Sqlite {
                path: path.to_owned(),
                step: format!("insert into `{}`", table.name),
                source,
            },
        })
    };
    // `domain` checks what the report tables' CHECK constraints do (see
    // the module doc); the flag lasts for this connection's statements
    // prepared while it is set, so history and `pipeline_runs` keep
    // SQLite's checks.
    tx.pragma_update(None, "ignore_check_constraints", "ON")
        .map_err(fail("leave CHECK constraints to the loader"))?;
    for (table, plan) in TABLES.iter().zip(&plans) {
        let started = Instant::now();
        insert(table, plan.order.as_deref())?;
        timings.push((table.name.to_owned(), started.elapsed()));
        injected(opts, table.name)?;
    }
    tx.pragma_update(None, "ignore_check_constraints", "OFF")
        .map_err(fail("restore CHECK constraints"))?;

    let started = Instant::now();
    for table in HISTORY {
        tx.execute(
            &format!("DELETE FROM {} WHERE {} = ?1", table.name, table.key[0]),
            [&report.model.run_id],
        )
        .map_err(fail(&format!("clear this run from `{}`", table.name)))?;
        insert(table, None)?;
    }
    record_run(&tx, report).map_err(fail("record the run in `pipeline_runs`"))?;
    tx.commit().map_err(fail("commit"))?;
    timings.push(("commit".to_owned(), started.elapsed()));
    if journal == Journal::Rollback {
        let started = Instant::now();
        // The tables are committed: a reader holding the file past the
        // timeout only delays WAL to the next load, which turns it on
        // before it starts. Not a failed load.
        if let Err(e) = enable_wal(&conn, WAL_AFTER_COMMIT_TIMEOUT) {
            tracing::warn!(
                message = "Cannot switch the new file to WAL yet; the next load will.",
                path = %path.display(),
                error = %e
            );
        }
        timings.push(("enable WAL".to_owned(), started.elapsed()));
    }
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
/// to cents, dates are ISO text written into the value itself (no String
/// per cell for the usual four-digit years).
#[derive(Debug)]
enum SqlValue<'a> {
    Ref(ValueRef<'a>),
    /// `YYYY-MM-DD` or `YYYY-MM`.
    Short([u8; 10], usize),
    Owned(String),
}

impl<'a> SqlValue<'a> {
    fn new(column: &Column, domain: Domain, cell: Cell<'a>) -> Result<SqlValue<'a>, String> {
        check(column, &cell)?;
        domain.check(column, &cell)?;
        Ok(match cell {
            Cell::Null | Cell::Dangling { .. } => SqlValue::Ref(ValueRef::Null),
            Cell::Text(s) => SqlValue::Ref(ValueRef::Text(s.as_bytes())),
            Cell::Int(n) => SqlValue::Ref(ValueRef::Integer(n)),
            Cell::Float(x) if column.kind.is_money() => SqlValue::Ref(ValueRef::Real(round2(x))),
            Cell::Float(x) => SqlValue::Ref(ValueRef::Real(x)),
            Cell::Date(d) => {
                use chrono::Datelike;
                match iso(d.year(), d.month(), Some(d.day())) {
                    Some((buf, len)) => SqlValue::Short(buf, len),
                    None => SqlValue::Owned(d.format("%Y-%m-%d").to_string()),
                }
            }
            Cell::Month(m) => match iso(m.year, m.month, None) {
                Some((buf, len)) => SqlValue::Short(buf, len),
                None => SqlValue::Owned(m.to_string()),
            },
        })
    }
}

/// A column's CHECK constraint in migrations/sqlite, which the loader
/// enforces itself (`ignore_check_constraints`, see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Domain {
    /// No CHECK beyond its STRICT type.
    Any,
    /// `CHECK (x >= 0)`.
    NonNegative,
    /// `CHECK (x BETWEEN 1 AND 5)`: an RFM score.
    Score,
    /// `CHECK (gender IN ('male', 'female', 'other'))`.
    Gender,
    /// `CHECK (x IS date(x))`: a day from -4713-11-25 to 9999-12-31.
    Date,
    /// `CHECK (month GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]' AND
    /// substr(month, 6, 2) BETWEEN '01' AND '12')`.
    Month,
}

/// Every CHECK of the report tables' columns, by (table, column): the
/// migrations are the contract and name them one by one, so does this list;
/// `domains_match_the_migrated_checks` fails when the two drift.
const DOMAINS: &[(&str, &str, Domain)] = &[
    ("segment_metrics", "segment", Domain::NonNegative),
    ("segment_metrics", "num_customers", Domain::NonNegative),
    ("customer_segments", "age", Domain::NonNegative),
    ("customer_segments", "gender", Domain::Gender),
    ("customer_segments", "purchase_count", Domain::NonNegative),
    ("customer_segments", "r_score", Domain::Score),
    ("customer_segments", "f_score", Domain::Score),
    ("customer_segments", "m_score", Domain::Score),
    (
        "customer_behavior_metrics",
        "purchase_count",
        Domain::NonNegative,
    ),
    ("customer_behavior_metrics", "first_purchase", Domain::Date),
    ("customer_behavior_metrics", "last_purchase", Domain::Date),
    ("customer_store_summary", "visit_count", Domain::NonNegative),
    ("customer_purchase_trends", "month", Domain::Month),
    (
        "customer_purchase_trends",
        "num_purchases",
        Domain::NonNegative,
    ),
];

impl Domain {
    fn of(table: &Table, column: &Column) -> Domain {
        DOMAINS
            .iter()
            .find(|(t, c, _)| *t == table.name && *c == column.name)
            .map_or(Domain::Any, |d| d.2)
    }

    /// Why SQLite's CHECK would refuse `cell` (NULL passes a CHECK).
    fn check(self, column: &Column, cell: &Cell<'_>) -> Result<(), String> {
        use chrono::Datelike;
        let name = column.name;
        let ok = match (self, *cell) {
            (Domain::Any, _) | (_, Cell::Null) => true,
            (Domain::NonNegative, Cell::Int(n)) => n >= 0,
            (Domain::Score, Cell::Int(n)) => (1..=5).contains(&n),
            (Domain::Gender, Cell::Text(g)) => matches!(g, "male" | "female" | "other"),
            // `date()` gives back what chrono prints for the days SQLite's
            // calendar holds, -4713-11-25 (its first midnight) to 9999-12-31.
            (Domain::Date, Cell::Date(d)) => {
                d.year() <= 9999
                    && NaiveDate::from_ymd_opt(-4713, 11, 25).is_some_and(|min| d >= min)
            }
            (Domain::Month, Cell::Month(m)) => {
                (0..=9999).contains(&m.year) && (1..=12).contains(&m.month)
            }
            // A cell of another kind than its column's: SQLite would see
            // a value of the wrong type, which STRICT refuses anyway.
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "`{name}` = {} fails its CHECK constraint",
                show(cell)
            ))
        }
    }
}

/// `YYYY-MM[-DD]` for years 0..=9999 (what `%Y-%m-%d` prints for them).
fn iso(year: i32, month: u32, day: Option<u32>) -> Option<([u8; 10], usize)> {
    let year = u32::try_from(year).ok().filter(|y| *y <= 9999)?;
    if month > 99 || day.is_some_and(|d| d > 99) {
        return None;
    }
    let digit = |n: u32| b'0' + (n % 10) as u8;
    let mut buf = *b"0000-00-00";
    buf[0] = digit(year / 1000);
    buf[1] = digit(year / 100);
    buf[2] = digit(year / 10);
    buf[3] = digit(year);
    buf[5] = digit(month / 10);
    buf[6] = digit(month);
    match day {
        Some(d) => {
            buf[8] = digit(d / 10);
            buf[9] = digit(d);
            Some((buf, 10))
        }
        None => Some((buf, 7)),
    }
}

impl ToSql for SqlValue<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            SqlValue::Ref(v) => *v,
            SqlValue::Short(buf, len) => ValueRef::Text(&buf[..*len]),
            SqlValue::Owned(s) => ValueRef::Text(s.as_bytes()),
        }))
    }
}

/// Rows per multi-row INSERT: one statement step per batch instead of per
/// row cuts the per-statement overhead (bind, step, reset) that dominates
/// narrow tables. 64 × 12 columns stays far below SQLite's 32,766 variables.
const BATCH_ROWS: usize = 64;

/// Insert every row of `table` in `order` (row indices) when given, with
/// two prepared statements: `BATCH_ROWS` rows at a time, then one by one.
fn insert_table(
    tx: &rusqlite::Transaction<'_>,
    report: &Report,
    table: &Table,
    order: Option<&[u32]>,
) -> Result<(), Failure> {
    let columns: Vec<&str> = table.column_names().collect();
    let width = columns.len();
    let statement = |rows: usize| {
        let one = format!("({})", vec!["?"; width].join(", "));
        format!(
            "INSERT OR ROLLBACK INTO {} ({}) VALUES {}",
            table.name,
            columns.join(", "),
            vec![one; rows].join(", ")
        )
    };
    let domains: Vec<Domain> = table.columns.iter().map(|c| Domain::of(table, c)).collect();
    let mut batch = tx.prepare(&statement(BATCH_ROWS))?;
    let mut single = tx.prepare(&statement(1))?;
    let mut cells = Vec::with_capacity(width);
    let mut values: Vec<SqlValue<'_>> = Vec::with_capacity(width * BATCH_ROWS);
    let n = (table.len)(report);
    let rows: Box<dyn Iterator<Item = usize>> = match order {
        Some(order) => Box::new(order.iter().map(|&i| i as usize)),
        None => Box::new(0..n),
    };
    let mut pending = 0;
    for row in rows {
        cells.clear();
        (table.cells)(report, row, &mut cells);
        for ((column, domain), cell) in table.columns.iter().zip(&domains).zip(&cells) {
            values.push(
                SqlValue::new(column, *domain, *cell).map_err(|reason| Error::Value {
                    table: table.name,
                    row,
                    reason,
                })?,
            );
        }
        pending += 1;
        if pending == BATCH_ROWS {
            execute(&mut batch, &values)?;
            values.clear();
            pending = 0;
        }
    }
    for one in values.chunks(width) {
        execute(&mut single, one)?;
    }
    Ok(())
}

/// Bind `values` to `stmt`'s parameters in order and run it.
fn execute(stmt: &mut rusqlite::Statement<'_>, values: &[SqlValue<'_>]) -> rusqlite::Result<()> {
    for (i, value) in values.iter().enumerate() {
        stmt.raw_bind_parameter(i + 1, value)?;
    }
    stmt.raw_execute()?;
    Ok(())
}

// ------------------------------------------------------------ plan

/// How one table goes in: its row order, and (for a parent table) its
/// sorted distinct key values, which the children's foreign keys are
/// checked against.
struct Plan<'a> {
    /// Row indices in primary-key order; `None` when already in order.
    order: Option<Vec<u32>>,
    keys: Vec<SortKey<'a>>,
}

/// A key cell with its first 16 bytes (or its whole value) inline, so
/// sorting a million keys compares integers instead of chasing a pointer
/// to each string: ~10× faster at 1M customers.
#[derive(Clone, Copy, Debug)]
struct SortKey<'a> {
    prefix: u128,
    cell: Cell<'a>,
}

impl<'a> SortKey<'a> {
    fn new(cell: Cell<'a>) -> SortKey<'a> {
        let prefix = match cell {
            Cell::Text(s) => {
                // Zero-padded big-endian: differing prefixes order as the
                // strings do; equal ones fall back to the full compare.
                let mut buf = [0u8; 16];
                let n = s.len().min(16);
                buf[..n].copy_from_slice(&s.as_bytes()[..n]);
                u128::from_be_bytes(buf)
            }
            Cell::Int(n) => u128::from((n as u64) ^ (1 << 63)),
            Cell::Date(d) => {
                use chrono::Datelike;
                u128::from((d.num_days_from_ce() as u32) ^ (1 << 31))
            }
            Cell::Month(m) => {
                u128::from(((m.year as u32) ^ (1 << 31)) as u64 * 16 + u64::from(m.month))
            }
            Cell::Float(_) | Cell::Null | Cell::Dangling { .. } => 0,
        };
        SortKey { prefix, cell }
    }

    fn cmp(&self, other: &SortKey<'_>) -> Ordering {
        self.prefix
            .cmp(&other.prefix)
            .then_with(|| cmp_cell(&self.cell, &other.cell))
    }
}

/// A maximal stretch of rows sharing the first key column's value.
struct Run<'a> {
    first: SortKey<'a>,
    start: u32,
    len: u32,
    /// Whether the rows inside are in order by the other key columns.
    sorted: bool,
}

/// Plan every table in `TABLES` order (parents before children), checking
/// each child's foreign key against its parent's keys.
fn plan(report: &Report) -> Result<Vec<Plan<'_>>, Error> {
    let mut plans: Vec<Plan<'_>> = Vec::with_capacity(TABLES.len());
    for table in TABLES {
        let parent = table.parent.and_then(|fk| {
            let at = TABLES.iter().position(|t| t.name == fk.parent)?;
            let column = table.columns.iter().position(|c| c.name == fk.column)?;
            Some((fk, column, plans.get(at)?.keys.as_slice()))
        });
        let is_parent = TABLES
            .iter()
            .any(|t| t.parent.is_some_and(|fk| fk.parent == table.name));
        let p = plan_table(report, table, parent, is_parent)?;
        plans.push(p);
    }
    Ok(plans)
}

fn plan_table<'a>(
    report: &'a Report,
    table: &Table,
    parent: Option<(ForeignKey, usize, &[SortKey<'a>])>,
    is_parent: bool,
) -> Result<Plan<'a>, Error> {
    let key = table.key_positions();
    let n = (table.len)(report);
    let (Some(&first_at), Ok(n32)) = (key.first(), u32::try_from(n)) else {
        // No key declared, or more rows than u32 indexes: keep report order
        // (and leave foreign keys to the insert-time checks of `check`).
        return Ok(Plan {
            order: None,
            keys: Vec::new(),
        });
    };
    // The foreign key column is the first key column (children keyed by
    // their parent): check it run by run after sorting, by a merge with the
    // parent's sorted keys. Otherwise look each row's value up.
    let merge_fk = parent.is_some_and(|(_, at, _)| at == first_at);
    let mut runs: Vec<Run<'a>> = Vec::new();
    let mut cells = Vec::with_capacity(table.columns.len());
    let (mut rest, mut prev_rest): (Vec<Cell<'a>>, Vec<Cell<'a>>) = (Vec::new(), Vec::new());
    for row in 0..n32 {
        cells.clear();
        (table.cells)(report, row as usize, &mut cells);
        if let (Some((fk, at, keys)), false) = (parent, merge_fk) {
            let value = SortKey::new(cells[at]);
            if !known(&value, |v| keys.binary_search_by(|k| k.cmp(v)).is_ok()) {
                return Err(fk_error(table, fk, row, &value));
            }
        }
        let first = SortKey::new(cells[first_at]);
        rest.clear();
        rest.extend(key[1..].iter().map(|&i| cells[i]));
        match runs.last_mut() {
            Some(run) if run.first.cmp(&first).is_eq() => {
                run.len += 1;
                if cmp_cells(&prev_rest, &rest).is_ge() {
                    run.sorted = false;
                }
            }
            _ => runs.push(Run {
                first,
                start: row,
                len: 1,
                sorted: true,
            }),
        }
        std::mem::swap(&mut rest, &mut prev_rest);
    }
    let in_order = runs.iter().all(|r| r.sorted)
        && runs.windows(2).all(|w| w[0].first.cmp(&w[1].first).is_lt());
    if !in_order {
        // Stable: a key split over two runs keeps report order inside it.
        runs.sort_by(|a, b| a.first.cmp(&b.first));
    }
    if let (Some((fk, _, keys)), true) = (parent, merge_fk) {
        let mut k = 0;
        for run in &runs {
            while k < keys.len() && keys[k].cmp(&run.first).is_lt() {
                k += 1;
            }
            let found = k < keys.len() && keys[k].cmp(&run.first).is_eq();
            if !known(&run.first, |_| found) {
                return Err(fk_error(table, fk, run.start, &run.first));
            }
        }
    }
    let keys = if is_parent {
        let mut keys: Vec<SortKey<'a>> = runs.iter().map(|r| r.first).collect();
        keys.dedup_by(|a, b| a.cmp(b).is_eq());
        keys
    } else {
        Vec::new()
    };
    if in_order {
        return Ok(Plan { order: None, keys });
    }
    let mut order = Vec::with_capacity(n);
    for run in &runs {
        let rows = run.start..run.start + run.len;
        if run.sorted {
            order.extend(rows);
        } else {
            let rest_of = |row: u32| {
                let mut c = Vec::with_capacity(table.columns.len());
                (table.cells)(report, row as usize, &mut c);
                key[1..].iter().map(|&i| c[i]).collect::<Vec<_>>()
            };
            let mut group: Vec<(Vec<Cell<'a>>, u32)> = rows.map(|r| (rest_of(r), r)).collect();
            group.sort_by(|a, b| cmp_cells(&a.0, &b.0));
            order.extend(group.into_iter().map(|(_, r)| r));
        }
    }
    Ok(Plan {
        order: Some(order),
        keys,
    })
}

/// NULL references nothing (SQL), and a dangling index is refused with its
/// own message when the row is inserted; anything else must be `found`.
fn known(value: &SortKey<'_>, found: impl FnOnce(&SortKey<'_>) -> bool) -> bool {
    matches!(value.cell, Cell::Null | Cell::Dangling { .. }) || found(value)
}

fn fk_error(table: &Table, fk: ForeignKey, row: u32, value: &SortKey<'_>) -> Error {
    Error::Value {
        table: table.name,
        row: row as usize,
        reason: format!(
            "`{}` = {} is not a key of `{}` (FOREIGN KEY constraint `{}`)",
            fk.column,
            show(&value.cell),
            fk.parent,
            table.fkey_name().unwrap_or_default()
        ),
    }
}

/// A key value as an error message shows it.
fn show(c: &Cell<'_>) -> String {
    match c {
        Cell::Text(s) => format!("'{s}'"),
        Cell::Int(n) => n.to_string(),
        Cell::Float(x) => x.to_string(),
        Cell::Date(d) => d.to_string(),
        Cell::Month(m) => m.to_string(),
        Cell::Null | Cell::Dangling { .. } => "NULL".to_owned(),
    }
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
             as_of, seed, k, silhouette, inertia, ari, nmi, row_counts, data_quality, \
             method, k_sweep, holdout) \
         SELECT CASE WHEN n = 0 THEN ?1 ELSE ?1 || '-' || (n + 1) END, ?1, n + 1, ?2, ?3, 'succeeded', \
             ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15 \
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
            super::method_text(report),
            super::k_sweep_json(report).to_string(),
            super::holdout_json(report).map(|h| h.to_string()),
        ],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::table::Kind;

    #[test]
    fn iso_writes_what_chrono_prints_for_four_digit_years() {
        let text = |v: Option<([u8; 10], usize)>| {
            v.map(|(b, n)| String::from_utf8_lossy(&b[..n]).into_owned())
        };
        assert_eq!(text(iso(2026, 3, Some(1))).as_deref(), Some("2026-03-01"));
        assert_eq!(text(iso(987, 12, None)).as_deref(), Some("0987-12"));
        assert_eq!(iso(10_000, 1, Some(1)), None);
        assert_eq!(iso(-1, 1, Some(1)), None);
    }

    /// See: issue 12. The loader turns SQLite's CHECK constraints off for
    /// the report tables and checks `DOMAINS` instead: every value must be
    /// refused by one exactly when the migrated schema refuses it.
    #[test]
    fn issue_12_domains_match_the_migrated_checks() {
        use crate::model::YearMonth;
        let date = |y, m, d| Cell::Date(NaiveDate::from_ymd_opt(y, m, d).expect("valid date"));
        let month = |year, month| Cell::Month(YearMonth { year, month });
        let mut conn = Connection::open_in_memory().expect("in-memory db");
        // Foreign keys are not CHECKs (and are checked in `plan`).
        conn.pragma_update(None, "foreign_keys", "OFF")
            .expect("foreign keys off");
        let tx = conn.transaction().expect("begin");
        schema::migrate_sqlite(&tx).expect("migrate");
        for (t, c, _) in DOMAINS {
            let table = TABLES.iter().find(|x| x.name == *t).expect("table");
            assert!(table.column_names().any(|n| n == *c), "{t}.{c}");
        }
        let mut compared = 0;
        for table in TABLES {
            let domains: Vec<Domain> = table.columns.iter().map(|c| Domain::of(table, c)).collect();
            // A row every CHECK accepts.
            let base: Vec<Cell<'_>> = table
                .columns
                .iter()
                .zip(&domains)
                .map(|(c, d)| match (c.kind, d) {
                    (_, Domain::Score) => Cell::Int(1),
                    (_, Domain::Gender) => Cell::Text("male"),
                    (Kind::Text, _) => Cell::Text("a"),
                    (Kind::Int | Kind::BigInt, _) => Cell::Int(1),
                    (Kind::Money | Kind::Total | Kind::Float, _) => Cell::Float(1.0),
                    (Kind::Date, _) => date(2026, 3, 1),
                    (Kind::Month, _) => month(2026, 3),
                })
                .collect();
            let sql = format!(
                "INSERT INTO {} VALUES ({})",
                table.name,
                vec!["?"; table.columns.len()].join(", ")
            );
            for (i, column) in table.columns.iter().enumerate() {
                let mut candidates = match column.kind {
                    Kind::Text => vec![Cell::Text("male"), Cell::Text("female"), Cell::Text("x")],
                    Kind::Int | Kind::BigInt => [-1, 0, 1, 5, 6].map(Cell::Int).to_vec(),
                    Kind::Money | Kind::Total | Kind::Float => vec![Cell::Float(-1.0)],
                    Kind::Date => vec![
                        date(2026, 12, 31),
                        date(0, 1, 1),
                        date(9999, 12, 31),
                        date(10_000, 1, 1),
                        date(-1, 1, 1),
                        date(-4713, 11, 25),
                        date(-4713, 11, 24),
                        date(-10_000, 1, 1),
                    ],
                    Kind::Month => vec![
                        month(2026, 1),
                        month(2026, 12),
                        month(2026, 0),
                        month(2026, 13),
                        month(0, 1),
                        month(10_000, 1),
                        month(-1, 1),
                    ],
                };
                if column.nullable {
                    candidates.push(Cell::Null);
                }
                for cell in candidates {
                    let mut row = base.clone();
                    row[i] = cell;
                    let values: Vec<SqlValue<'_>> = table
                        .columns
                        .iter()
                        .zip(&row)
                        .map(|(c, v)| SqlValue::new(c, Domain::Any, *v).expect("storable"))
                        .collect();
                    let sqlite = tx.execute(&sql, rusqlite::params_from_iter(&values));
                    tx.execute(&format!("DELETE FROM {}", table.name), [])
                        .expect("clear");
                    let ours = domains[i].check(column, &cell).is_ok();
                    assert_eq!(
                        ours,
                        sqlite.is_ok(),
                        "{}.{} = {cell:?}: {sqlite:?}",
                        table.name,
                        column.name
                    );
                    compared += 1;
                }
            }
        }
        assert!(compared > 100, "{compared}");
    }

    #[test]
    fn cells_compare_as_sqlite_orders_them() {
        assert!(cmp_cell(&Cell::Text("9198"), &Cell::Text("91980")).is_lt());
        assert!(cmp_cell(&Cell::Text("Z"), &Cell::Text("a")).is_lt());
        assert!(cmp_cell(&Cell::Int(-3), &Cell::Int(2)).is_lt());
        assert!(cmp_cells(&[Cell::Int(1), Cell::Int(5)], &[Cell::Int(1), Cell::Int(6)]).is_lt());
        assert_eq!(show(&Cell::Text("x")), "'x'");
        // Inline prefixes order as the values do, ties broken in full.
        let k = |c| SortKey::new(c);
        for (a, b) in [
            (Cell::Text("ab"), Cell::Text("ab\u{1}")),
            (Cell::Text("919876543210"), Cell::Text("919876543211")),
            (
                Cell::Text("0123456789abcdefA"),
                Cell::Text("0123456789abcdefB"),
            ),
            (Cell::Int(-5), Cell::Int(3)),
            (Cell::Int(i64::MIN), Cell::Int(i64::MAX)),
        ] {
            assert!(k(a).cmp(&k(b)).is_lt(), "{a:?} < {b:?}");
            assert!(k(b).cmp(&k(a)).is_gt(), "{b:?} > {a:?}");
            assert!(k(a).cmp(&k(a)).is_eq(), "{a:?}");
        }
    }
}
