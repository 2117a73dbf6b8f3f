//! The PostgreSQL sink, two modes (DESIGN §5).
//!
//! - `swap` (default): the new tables are built on two connections and
//!   swapped in by one short transaction; see `staging`.
//! - `in-place`: one connection, one transaction. `pg_advisory_xact_lock`
//!   (the key `swap` takes as a session lock) so loads serialize, the
//!   migrations, then lock the live tables in ROW EXCLUSIVE mode (fixed
//!   order, bounded waits, see `lock_tables`), `DELETE` their rows (children
//!   first) and binary COPY the new rows in (parents first) with keys
//!   checked as they arrive; append to `pipeline_runs`, commit.
//!
//! Every lock wait but the advisory lock's is bounded by `lock_timeout`
//! (`[load] lock_timeout_ms`). Readers see the old set until the commit and
//! then the new one; DDL is transactional, so a failure or a killed process
//! leaves the live tables as they were.
//! Not owned here: what the tables look like (migrations/postgres, and the
//! declarations in `report_tables` that the COPY and the keys follow).

use std::time::{Duration, Instant};

use chrono::{NaiveDate, Utc};
use postgres_types::{IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls, Transaction};

use super::binary_copy::{BinaryWriter, WriteError};
use super::numeric::Cents;
use super::{Error, LoadMode, LoadOpts, LoadSummary, injected, schema, staging};
use crate::model::{Report, YearMonth};
use crate::report_tables::{HISTORY, TABLES};
use crate::secret::DatabaseUrl;
use crate::table::{Cell, Column, Kind, Table, check, cmp_cell};

/// Advisory lock key shared by every segpipe load ("segpipe" in ASCII).
pub(super) const LOCK_KEY: i64 = 0x0073_6567_7069_7065;

/// Run the load on a runtime of its own: callers are synchronous. Two
/// workers let the connection tasks do socket I/O while rows are encoded;
/// swap's staging threads drive their own connections on the same runtime.
pub(crate) fn load(
    report: &Report,
    url: &DatabaseUrl,
    opts: &LoadOpts,
) -> Result<LoadSummary, Error> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    let rt = runtime.handle();
    let (mut client, driver) = rt.block_on(connect(url))?;
    let result = match opts.mode {
        LoadMode::Swap => staging::swap(rt, &mut client, url, report, opts),
        LoadMode::InPlace => rt.block_on(in_one_transaction(&mut client, report, opts)),
    }
    .map_err(|e| lock_timeout_of(e, opts));
    drop(client);
    // The driver ends once the client is gone; its own errors were logged.
    let _ = rt.block_on(driver);
    result
}

/// A connection whose driver runs on the current runtime.
pub(super) async fn connect(
    url: &DatabaseUrl,
) -> Result<(Client, tokio::task::JoinHandle<()>), Error> {
    let (client, connection) = tokio_postgres::connect(url.expose(), NoTls)
        .await
        .map_err(|source| connect_error(url, source))?;
    let driver = tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(message = "PostgreSQL connection ended with an error.", error = %e);
        }
    });
    Ok((client, driver))
}

/// Connect and run `SELECT 1`.
pub(crate) fn ping(url: &DatabaseUrl) -> Result<(), Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    runtime.block_on(async {
        let connect = |source| connect_error(url, source);
        let (client, connection) = tokio_postgres::connect(url.expose(), NoTls)
            .await
            .map_err(connect)?;
        let driver = tokio::spawn(connection);
        client.simple_query("SELECT 1").await.map_err(connect)?;
        drop(client);
        let _ = driver.await;
        Ok(())
    })
}

/// A connection failure; a database that does not exist gets the command
/// that creates it (issue 12: messages that tell the user what to do).
fn connect_error(url: &DatabaseUrl, source: tokio_postgres::Error) -> Error {
    if source.code() == Some(&tokio_postgres::error::SqlState::INVALID_CATALOG_NAME)
        && let Ok(config) = url.expose().parse::<tokio_postgres::Config>()
    {
        let mut cmd = String::from("createdb");
        if let Some(tokio_postgres::config::Host::Tcp(host)) = config.get_hosts().first() {
            cmd.push_str(&format!(" -h {host}"));
        }
        if let Some(port) = config.get_ports().first() {
            cmd.push_str(&format!(" -p {port}"));
        }
        if let Some(user) = config.get_user() {
            cmd.push_str(&format!(" -U {user}"));
        }
        let database = config.get_dbname().unwrap_or("postgres").to_owned();
        return Error::MissingDatabase {
            url: url.masked(),
            command: format!("{cmd} {database}"),
            database,
        };
    }
    Error::Connect {
        url: url.masked(),
        source,
    }
}

/// A statement that waited `lock_timeout` out fails with SQLSTATE 55P03;
/// say which wait ran out and which setting bounds it.
fn lock_timeout_of(err: Error, opts: &LoadOpts) -> Error {
    let step = match &err {
        Error::Ddl { step, source } | Error::MigratePostgres { step, source }
            if source.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) =>
        {
            step.clone()
        }
        Error::Copy { table, source } if source.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) => {
            format!("copy into `{table}`")
        }
        Error::Record(source) if source.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) => {
            "record the run".to_owned()
        }
        _ => return err,
    };
    Error::LockTimeout {
        step,
        waited_ms: opts.lock_timeout.as_millis() as u64,
    }
}

/// `--load-mode in-place`: everything in one transaction on one connection.
async fn in_one_transaction(
    client: &mut Client,
    report: &Report,
    opts: &LoadOpts,
) -> Result<LoadSummary, Error> {
    let tx = client.transaction().await.map_err(Error::Lock)?;
    // Lock before anything else, migrations included: two first-time loads
    // would otherwise both try to create the schema. Not bounded by
    // `lock_timeout`: a second load waits for the first to finish.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
        .await
        .map_err(Error::Lock)?;
    // From here on every lock wait (migration DDL, row locks of in-place
    // deletes) is bounded; a wait that runs out surfaces as LockTimeout.
    set_lock_timeout(tx.client(), opts.lock_timeout).await?;
    schema::migrate_postgres(&tx).await?;
    let mut timings = Vec::new();
    in_place(&tx, report, opts, &mut timings).await?;
    finish(tx, report, timings).await
}

/// Append the run to the history tables and commit `tx`.
pub(super) async fn finish(
    tx: Transaction<'_>,
    report: &Report,
    mut timings: Vec<(String, Duration)>,
) -> Result<LoadSummary, Error> {
    let started = Instant::now();
    write_history(&tx, report).await?;
    record_run(&tx, report).await?;
    timings.push(("record run".to_owned(), started.elapsed()));
    let started = Instant::now();
    tx.commit().await.map_err(Error::Commit)?;
    timings.push(("commit".to_owned(), started.elapsed()));
    Ok(LoadSummary {
        destination: String::new(),
        rows: report.row_counts(),
        timings,
    })
}

/// `--load-mode in-place`: delete the live tables' rows (children first)
/// and COPY the new ones in (parents first), keys and foreign keys checked
/// as rows arrive. The tables themselves stay, so views and grants stay;
/// DELETE is MVCC, so a reader with an older snapshot still sees the old
/// rows, and its ROW EXCLUSIVE lock never blocks readers.
async fn in_place(
    tx: &Transaction<'_>,
    report: &Report,
    opts: &LoadOpts,
    timings: &mut Vec<(String, Duration)>,
) -> Result<(), Error> {
    let started = Instant::now();
    // Only writers' and DDL's locks conflict with this one; the fixed order
    // and bounded waits are the same as swap's.
    lock_tables(
        tx.client(),
        "ROW EXCLUSIVE",
        opts.lock_timeout,
        "replace their rows",
    )
    .await?;
    timings.push(("lock".to_owned(), started.elapsed()));
    let started = Instant::now();
    for table in TABLES.iter().rev() {
        let name = table.name;
        ddl(
            tx.client(),
            &format!("delete the rows of `{name}`"),
            &format!("DELETE FROM {name}"),
        )
        .await?;
    }
    timings.push(("delete".to_owned(), started.elapsed()));
    for table in TABLES {
        let started = Instant::now();
        copy_table(tx.client(), report, table, table.name, false).await?;
        timings.push((table.name.to_owned(), started.elapsed()));
        injected(opts, table.name)?;
    }
    Ok(())
}

/// `SET LOCAL lock_timeout` to `timeout` (at least 1 ms: 0 would mean
/// "wait forever").
pub(super) async fn set_lock_timeout(tx: &Client, timeout: Duration) -> Result<(), Error> {
    let ms = timeout.as_millis().max(1);
    ddl(
        tx,
        "set lock_timeout",
        &format!("SET LOCAL lock_timeout = {ms}"),
    )
    .await
}

/// Lock every report table in `mode`, in `TABLES` order, within `timeout`.
///
/// A reader may hold one table and then ask for another. Waiting for the
/// second table while holding the first would deadlock with such a reader
/// (each waits for the other), and PostgreSQL would kill one of the two.
/// So each attempt waits at most half the server's `deadlock_timeout`
/// (before the deadlock detector runs) and, when it runs out, gives back
/// what it took (ROLLBACK TO SAVEPOINT) so the reader can finish, then
/// tries again, queued behind that reader, until `timeout` is spent.
pub(super) async fn lock_tables(
    tx: &Client,
    mode: &str,
    timeout: Duration,
    step: &str,
) -> Result<(), Error> {
    let failed = |source| Error::Ddl {
        step: format!("lock the report tables to {step}"),
        source,
    };
    let deadlock_ms: i64 = tx
        .query_one(
            "SELECT setting::bigint FROM pg_settings WHERE name = 'deadlock_timeout'",
            &[],
        )
        .await
        .map_err(failed)?
        .get(0);
    let slice = Duration::from_millis(u64::try_from(deadlock_ms / 2).unwrap_or(0).max(10));
    let names = TABLES.map(|t| t.name).join(", ");
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::LockTimeout {
                step: step.to_owned(),
                waited_ms: timeout.as_millis() as u64,
            });
        }
        let attempt = format!(
            "SAVEPOINT segpipe_lock; SET LOCAL lock_timeout = {}; LOCK TABLE {names} IN {mode} MODE",
            left.min(slice).as_millis().max(1)
        );
        match tx.batch_execute(&attempt).await {
            Ok(()) => break,
            Err(e)
                if matches!(
                    e.code(),
                    Some(&SqlState::LOCK_NOT_AVAILABLE | &SqlState::T_R_DEADLOCK_DETECTED)
                ) =>
            {
                tx.batch_execute("ROLLBACK TO SAVEPOINT segpipe_lock")
                    .await
                    .map_err(failed)?;
            }
            Err(e) => return Err(failed(e)),
        }
    }
    tx.batch_execute("RELEASE SAVEPOINT segpipe_lock")
        .await
        .map_err(failed)?;
    set_lock_timeout(tx, timeout).await
}

/// Views (and materialized views) reading any report table: swap would
/// have to drop them.
pub(super) async fn refuse_dependent_views(tx: &Client) -> Result<(), Error> {
    let names: Vec<&str> = TABLES.iter().map(|t| t.name).collect();
    let rows = tx
        .query(
            "SELECT DISTINCT v.oid::regclass::text, t.relname::text \
             FROM pg_depend d \
             JOIN pg_rewrite r ON r.oid = d.objid \
             JOIN pg_class v ON v.oid = r.ev_class \
             JOIN pg_class t ON t.oid = d.refobjid \
             WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass \
               AND d.refobjid = ANY($1::text[]::regclass[]) AND v.oid <> t.oid \
             ORDER BY 1, 2",
            &[&names],
        )
        .await
        .map_err(|source| Error::Ddl {
            step: "look for views on the report tables".to_owned(),
            source,
        })?;
    if rows.is_empty() {
        return Ok(());
    }
    let views = rows
        .iter()
        .map(|r| {
            format!(
                "view `{}` reads `{}`",
                r.get::<_, String>(0),
                r.get::<_, String>(1)
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    Err(Error::DependentView { views })
}

/// Re-issue on `<table>__new` every GRANT the live `<table>` holds, table-
/// and column-level (from `pg_class.relacl` / `pg_attribute.attacl`). The
/// owner's own entries are left out: the new table's owner has them.
pub(super) async fn carry_grants(tx: &Client, table: &str) -> Result<(), Error> {
    let failed = |source| Error::Ddl {
        step: format!("carry the grants of `{table}` over"),
        source,
    };
    let new = format!("{table}__new");
    let grants = tx
        .query(
            "SELECT format('GRANT %s ON %I TO %s%s', a.privilege_type, $2::text, \
                 CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END, \
                 CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END) \
             FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a \
             WHERE c.oid = $1::text::regclass AND a.grantee <> c.relowner \
             UNION ALL \
             SELECT format('GRANT %s (%I) ON %I TO %s%s', a.privilege_type, att.attname, $2::text, \
                 CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END, \
                 CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END) \
             FROM pg_class c \
             JOIN pg_attribute att ON att.attrelid = c.oid AND att.attnum > 0 AND NOT att.attisdropped \
             CROSS JOIN LATERAL aclexplode(att.attacl) a \
             WHERE c.oid = $1::text::regclass AND a.grantee <> c.relowner",
            &[&table, &new],
        )
        .await
        .map_err(failed)?;
    for grant in grants {
        let sql: String = grant.get(0);
        tx.batch_execute(&sql).await.map_err(failed)?;
    }
    Ok(())
}

pub(super) async fn ddl(tx: &Client, step: &str, sql: &str) -> Result<(), Error> {
    tx.batch_execute(sql).await.map_err(|source| Error::Ddl {
        step: step.to_owned(),
        source,
    })
}

/// Append the history tables' rows, replacing any this run id already has.
async fn write_history(tx: &Transaction<'_>, report: &Report) -> Result<(), Error> {
    for table in HISTORY {
        let name = table.name;
        let copy_err = |source| Error::Copy {
            table: name,
            source,
        };
        tx.execute(
            &format!("DELETE FROM {name} WHERE {} = $1", table.key[0]),
            &[&report.model.run_id],
        )
        .await
        .map_err(copy_err)?;
        let columns: Vec<&str> = table.column_names().collect();
        let params: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
        let insert = tx
            .prepare(&format!(
                "INSERT INTO {name} ({}) VALUES ({})",
                columns.join(", "),
                params.join(", ")
            ))
            .await
            .map_err(copy_err)?;
        let mut cells = Vec::with_capacity(columns.len());
        for row in 0..(table.len)(report) {
            cells.clear();
            (table.cells)(report, row, &mut cells);
            let values = table
                .columns
                .iter()
                .zip(&cells)
                .map(|(column, cell)| PgValue::new(column, *cell))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|reason| Error::Value {
                    table: name,
                    row,
                    reason,
                })?;
            let refs: Vec<&(dyn ToSql + Sync)> =
                values.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
            tx.execute(&insert, &refs).await.map_err(copy_err)?;
        }
    }
    Ok(())
}

/// `pipeline_runs` row for this load; `load_number` counts loads of the
/// same run, race-free because we hold the load lock.
async fn record_run(tx: &Transaction<'_>, report: &Report) -> Result<(), Error> {
    let m = &report.model;
    let k = i32::try_from(m.k).map_err(|_| Error::Value {
        table: "pipeline_runs",
        row: 0,
        reason: format!("k {} does not fit INTEGER", m.k),
    })?;
    let (ari, nmi) = match &m.evaluation {
        Some(e) => (Some(e.ari), Some(e.nmi)),
        None => (None, None),
    };
    tx.execute(
        "INSERT INTO pipeline_runs (run_id, report_run_id, load_number, started_at, finished_at, status, \
             as_of, seed, k, silhouette, inertia, ari, nmi, row_counts, data_quality, \
             method, k_sweep, holdout) \
         SELECT CASE WHEN n = 0 THEN $1::text ELSE $1::text || '-' || (n + 1) END, $1::text, n + 1, \
             $2::timestamptz, $3::timestamptz, 'succeeded', \
             $4::date, $5::text::numeric, $6::int4, $7::float8, $8::float8, $9::float8, $10::float8, \
             $11::jsonb, $12::jsonb, $13::text, $14::jsonb, $15::jsonb \
         FROM (SELECT COALESCE(MAX(load_number), 0) AS n FROM pipeline_runs WHERE report_run_id = $1::text) prev",
        &[
            &m.run_id,
            &m.started_at,
            &Utc::now(),
            &m.as_of,
            &m.seed.to_string(),
            &k,
            &m.silhouette,
            &m.inertia,
            &ari,
            &nmi,
            &super::row_counts_json(report),
            &super::quality_json(report),
            &super::method_text(report),
            &super::k_sweep_json(report),
            &super::holdout_json(report),
        ],
    )
    .await
    .map_err(Error::Record)?;
    Ok(())
}

/// A cell converted for its column's PostgreSQL type, checked first.
#[derive(Debug)]
enum PgValue<'a> {
    Null,
    Text(&'a str),
    Int4(i32),
    Int8(i64),
    Numeric(Cents),
    Float8(f64),
    Date(NaiveDate),
    /// `YYYY-MM` written straight into the COPY buffer: no String per row.
    Month(YearMonth),
}

impl<'a> PgValue<'a> {
    fn new(column: &Column, cell: Cell<'a>) -> Result<PgValue<'a>, String> {
        check(column, &cell)?;
        let name = column.name;
        Ok(match (cell, column.kind) {
            (Cell::Null | Cell::Dangling { .. }, _) => PgValue::Null,
            (Cell::Text(s), _) => PgValue::Text(s),
            (Cell::Int(n), Kind::Int) => PgValue::Int4(
                i32::try_from(n).map_err(|_| format!("`{name}` = {n} does not fit INTEGER"))?,
            ),
            (Cell::Int(n), _) => PgValue::Int8(n),
            (Cell::Float(x), kind) if kind.is_money() => PgValue::Numeric(
                Cents::from_f64(x).ok_or_else(|| format!("`{name}` is {x}, not money"))?,
            ),
            (Cell::Float(x), _) => PgValue::Float8(x),
            (Cell::Date(d), _) => PgValue::Date(d),
            (Cell::Month(m), _) if !month_fits(m) => {
                return Err(format!("`{name}` = {m} is not a month `YYYY-MM`"));
            }
            (Cell::Month(m), _) => PgValue::Month(m),
        })
    }
}

/// What the month column's `CHECK (month ~ '^[0-9]{4}-(0[1-9]|1[0-2])$')`
/// accepts, which the swap does not make PostgreSQL evaluate (see
/// `staging::DEFERRED_CHECKS`); `YearMonth` prints its year zero-padded.
pub(super) fn month_fits(m: YearMonth) -> bool {
    (0..=9999).contains(&m.year) && (1..=12).contains(&m.month)
}

impl ToSql for PgValue<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            PgValue::Null => Ok(IsNull::Yes),
            PgValue::Text(s) => s.to_sql(ty, out),
            PgValue::Int4(n) => n.to_sql(ty, out),
            PgValue::Int8(n) => n.to_sql(ty, out),
            PgValue::Numeric(c) => c.to_sql(ty, out),
            PgValue::Float8(x) => x.to_sql(ty, out),
            PgValue::Date(d) => d.to_sql(ty, out),
            PgValue::Month(m) => {
                // `PgValue::new` checked it fits `YYYY-MM`; by hand, since
                // `fmt` was a tenth of the COPY's encoding time.
                let (y, mo) = (m.year.unsigned_abs(), m.month);
                let digit = |n: u32| b'0' + (n % 10) as u8;
                out.extend_from_slice(&[
                    digit(y / 1000),
                    digit(y / 100),
                    digit(y / 10),
                    digit(y),
                    b'-',
                    digit(mo / 10),
                    digit(mo),
                ]);
                Ok(IsNull::No)
            }
        }
    }

    // Each value was made for its column's declared kind, whose type is
    // the one COPY is told (`pg_type`).
    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// The binary COPY type of a column kind.
fn pg_type(kind: Kind) -> Type {
    match kind {
        Kind::Text | Kind::Month => Type::TEXT,
        Kind::Int => Type::INT4,
        Kind::BigInt => Type::INT8,
        Kind::Money | Kind::Total => Type::NUMERIC,
        Kind::Float => Type::FLOAT8,
        Kind::Date => Type::DATE,
    }
}

/// What one COPY wrote.
pub(super) struct Copied {
    pub rows: u64,
    /// Whether the rows came in primary-key order (see `key_order`).
    pub in_key_order: bool,
}

/// COPY one table's rows from `report` into `into` (the table or its
/// `__new` copy). `freeze` writes them frozen (COPY FREEZE), for a table
/// created in the same transaction: the key build, ANALYZE and the first
/// readers then do not rewrite every page to set hint bits.
pub(super) async fn copy_table(
    tx: &Client,
    report: &Report,
    table: &Table,
    into: &str,
    freeze: bool,
) -> Result<Copied, Error> {
    let name = table.name;
    let copy_err = |source| Error::Copy {
        table: name,
        source,
    };
    let columns: Vec<&str> = table.column_names().collect();
    let types: Vec<Type> = table.columns.iter().map(|c| pg_type(c.kind)).collect();
    let sql = format!(
        "COPY {into} ({}) FROM STDIN (FORMAT binary{})",
        columns.join(", "),
        if freeze { ", FREEZE" } else { "" }
    );
    let sink = tx.copy_in(&sql).await.map_err(copy_err)?;
    let mut writer = BinaryWriter::new(sink, &types);
    let key = table.key_positions();
    let mut in_key_order = true;
    let mut cells = Vec::with_capacity(columns.len());
    let mut prev = Vec::with_capacity(columns.len());
    let mut values = Vec::with_capacity(columns.len());
    for row in 0..(table.len)(report) {
        std::mem::swap(&mut cells, &mut prev);
        cells.clear();
        (table.cells)(report, row, &mut cells);
        if in_key_order && row > 0 {
            in_key_order = key
                .iter()
                .map(|&k| cmp_cell(&prev[k], &cells[k]))
                .find(|o| o.is_ne())
                .is_some_and(|o| o.is_lt());
        }
        values.clear();
        for (column, cell) in table.columns.iter().zip(&cells) {
            values.push(PgValue::new(column, *cell).map_err(|reason| Error::Value {
                table: name,
                row,
                reason,
            })?);
        }
        writer.write(&values).await.map_err(|e| match e {
            WriteError::Copy(source) => copy_err(source),
            WriteError::Value(column, reason) => Error::Value {
                table: name,
                row,
                reason: format!("`{}`: {reason}", table.columns[column].name),
            },
        })?;
    }
    let rows = writer.finish().await.map_err(copy_err)?;
    Ok(Copied { rows, in_key_order })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `^[0-9]{4}-(0[1-9]|1[0-2])$`, spelled out.
    fn matches_the_check(text: &str) -> bool {
        let b = text.as_bytes();
        b.len() == 7
            && b[..4].iter().all(u8::is_ascii_digit)
            && b[4] == b'-'
            && matches!(&b[5..], [b'0', b'1'..=b'9'] | [b'1', b'0'..=b'2'])
    }

    /// See: issue 11 (the month CHECK is not re-run on segpipe's rows).
    /// `month_fits` must refuse exactly what the CHECK refuses.
    #[test]
    fn issue_11_month_fits_exactly_what_the_check_accepts() {
        let mut compared = 0;
        for year in [-10_000, -1, 0, 1, 999, 2026, 9999, 10_000, 123_456] {
            for month in 0..=14 {
                let m = YearMonth { year, month };
                assert_eq!(month_fits(m), matches_the_check(&m.to_string()), "{m}");
                compared += 1;
            }
        }
        assert!(compared > 100);
        for m in [
            YearMonth { year: 0, month: 1 },
            YearMonth { year: 7, month: 10 },
            YearMonth {
                year: 2026,
                month: 12,
            },
            YearMonth {
                year: 9999,
                month: 9,
            },
        ] {
            let mut out = bytes::BytesMut::new();
            PgValue::Month(m)
                .to_sql(&Type::TEXT, &mut out)
                .expect("encode");
            assert_eq!(&out[..], m.to_string().as_bytes());
        }
        let column = Column {
            name: "month",
            kind: Kind::Month,
            nullable: false,
        };
        let err = PgValue::new(
            &column,
            Cell::Month(YearMonth {
                year: 10_000,
                month: 1,
            }),
        )
        .expect_err("five-digit year");
        assert_eq!(err, "`month` = 10000-01 is not a month `YYYY-MM`");
    }
}
