//! The PostgreSQL sink: one connection, one transaction.
//!
//! 1. `pg_advisory_xact_lock` (fixed key) so concurrent loads serialize,
//!    then the migrations, under that lock.
//! 2. `CREATE TABLE <t>__new (LIKE <t> …)`: fresh tables with the live
//!    tables' columns, CHECK and NOT NULL constraints, but no keys.
//! 3. Binary COPY of every table into the key-less copies: no per-row index
//!    maintenance, which is what makes keyed COPY ~3× slower.
//! 4. Primary keys, then foreign keys (one sort per index and one anti-join
//!    per FK, much faster than row-at-a-time checks), `ANALYZE`.
//! 5. Swap: `DROP` the old tables, `RENAME` the new ones and their key
//!    constraints to the canonical names, append to `pipeline_runs`, commit.
//!
//! Readers keep reading the old tables until the commit and then see the
//! new set; DDL is transactional, so a failure or a killed process at any
//! point rolls everything back and leaves no `__new` tables behind.
//! Not owned here: what the tables look like (migrations/postgres, and the
//! declarations in `report_tables` that the COPY and the keys follow).

use std::time::Instant;

use chrono::{NaiveDate, Utc};
use futures_util::pin_mut;
use postgres_types::{IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::{NoTls, Transaction};

use super::numeric::Cents;
use super::{Error, LoadOpts, LoadSummary, injected, schema};
use crate::model::{Report, YearMonth};
use crate::report_tables::{HISTORY, TABLES};
use crate::secret::DatabaseUrl;
use crate::table::{Cell, Column, Kind, Table, check};

/// Advisory lock key shared by every segpipe load ("segpipe" in ASCII).
const LOCK_KEY: i64 = 0x0073_6567_7069_7065;

/// Run the load on a runtime of its own: callers are synchronous. Two
/// workers let the connection task do socket I/O while rows are encoded.
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
    runtime.block_on(load_async(report, url, opts))
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

async fn load_async(
    report: &Report,
    url: &DatabaseUrl,
    opts: &LoadOpts,
) -> Result<LoadSummary, Error> {
    let (mut client, connection) = tokio_postgres::connect(url.expose(), NoTls)
        .await
        .map_err(|source| connect_error(url, source))?;
    let driver = tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(message = "PostgreSQL connection ended with an error.", error = %e);
        }
    });
    let result = replace_tables(&mut client, report, opts).await;
    drop(client);
    // The driver ends once the client is gone; its own errors were logged.
    let _ = driver.await;
    result
}

async fn replace_tables(
    client: &mut tokio_postgres::Client,
    report: &Report,
    opts: &LoadOpts,
) -> Result<LoadSummary, Error> {
    let tx = client.transaction().await.map_err(Error::Lock)?;
    // Lock before anything else, migrations included: two first-time loads
    // would otherwise both try to create the schema.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
        .await
        .map_err(Error::Lock)?;
    schema::migrate_postgres(&tx).await?;
    // Index builds after the COPY sort whole tables; give them memory.
    ddl(
        &tx,
        "set maintenance_work_mem",
        "SET LOCAL maintenance_work_mem = '512MB'",
    )
    .await?;

    let mut timings = Vec::new();
    for table in TABLES {
        let name = table.name;
        let sql = format!(
            "DROP TABLE IF EXISTS {name}__new; \
             CREATE TABLE {name}__new (LIKE {name} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
        );
        ddl(&tx, &format!("create `{name}__new`"), &sql).await?;
    }
    for table in TABLES {
        let started = Instant::now();
        let rows = copy_table(&tx, report, table).await?;
        timings.push((table.name.to_owned(), started.elapsed()));
        tracing::debug!(
            message = "Copied table.",
            table = table.name,
            rows,
            elapsed_ms = started.elapsed().as_millis() as u64
        );
        injected(opts, table.name)?;
    }

    let started = Instant::now();
    for table in TABLES {
        let name = table.name;
        let sql = format!(
            "ALTER TABLE {name}__new ADD CONSTRAINT {name}__new_pkey PRIMARY KEY ({})",
            table.key.join(", ")
        );
        ddl(&tx, &format!("add the primary key of `{name}`"), &sql).await?;
    }
    timings.push(("primary keys".to_owned(), started.elapsed()));
    let started = Instant::now();
    for table in TABLES {
        if let (Some(fk), Some(fk_name)) = (table.parent, table.fkey_name()) {
            let parent = TABLES
                .iter()
                .find(|p| p.name == fk.parent)
                .map_or(fk.column, |p| p.key[0]);
            let sql = format!(
                "ALTER TABLE {}__new ADD CONSTRAINT {fk_name} \
                 FOREIGN KEY ({}) REFERENCES {}__new ({parent})",
                table.name, fk.column, fk.parent
            );
            ddl(&tx, &format!("add foreign key `{fk_name}`"), &sql).await?;
        }
    }
    timings.push(("foreign keys".to_owned(), started.elapsed()));
    let started = Instant::now();
    // Fresh tables have no statistics until autovacuum gets to them; readers
    // querying right after the swap would get blind plans. ANALYZE samples,
    // so this costs well under a second even at 10M rows.
    let analyze = format!(
        "ANALYZE {}",
        TABLES.map(|t| format!("{}__new", t.name)).join(", ")
    );
    ddl(&tx, "analyze the new tables", &analyze).await?;
    timings.push(("analyze".to_owned(), started.elapsed()));

    let started = Instant::now();
    // One statement drops the old set, so the FKs between old tables go too;
    // no CASCADE: a user's view on a report table makes the load fail loudly
    // instead of silently dropping the view.
    let mut swap = format!("DROP TABLE {};", TABLES.map(|t| t.name).join(", "));
    for table in TABLES.map(|t| t.name) {
        swap.push_str(&format!(
            " ALTER TABLE {table}__new RENAME TO {table};\
              ALTER TABLE {table} RENAME CONSTRAINT {table}__new_pkey TO {table}_pkey;"
        ));
    }
    ddl(&tx, "swap in the new tables", &swap).await?;
    write_history(&tx, report).await?;
    record_run(&tx, report).await?;
    timings.push(("swap".to_owned(), started.elapsed()));
    let started = Instant::now();
    tx.commit().await.map_err(Error::Commit)?;
    timings.push(("commit".to_owned(), started.elapsed()));
    Ok(LoadSummary {
        destination: String::new(),
        rows: report.row_counts(),
        timings,
    })
}

async fn ddl(tx: &Transaction<'_>, step: &str, sql: &str) -> Result<(), Error> {
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
             as_of, seed, k, silhouette, inertia, ari, nmi, row_counts, data_quality) \
         SELECT CASE WHEN n = 0 THEN $1::text ELSE $1::text || '-' || (n + 1) END, $1::text, n + 1, \
             $2::timestamptz, $3::timestamptz, 'succeeded', \
             $4::date, $5::text::numeric, $6::int4, $7::float8, $8::float8, $9::float8, $10::float8, \
             $11::jsonb, $12::jsonb \
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
            (Cell::Month(m), _) => PgValue::Month(m),
        })
    }
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
                use std::fmt::Write;
                write!(out, "{m}")?;
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

/// COPY one table's rows from `report` into `<table>__new`.
async fn copy_table(tx: &Transaction<'_>, report: &Report, table: &Table) -> Result<u64, Error> {
    let name = table.name;
    let copy_err = |source| Error::Copy {
        table: name,
        source,
    };
    let columns: Vec<&str> = table.column_names().collect();
    let types: Vec<Type> = table.columns.iter().map(|c| pg_type(c.kind)).collect();
    let sql = format!(
        "COPY {name}__new ({}) FROM STDIN (FORMAT binary)",
        columns.join(", ")
    );
    let sink = tx.copy_in(&sql).await.map_err(copy_err)?;
    let writer = BinaryCopyInWriter::new(sink, &types);
    pin_mut!(writer);
    let mut cells = Vec::with_capacity(columns.len());
    let mut values = Vec::with_capacity(columns.len());
    for row in 0..(table.len)(report) {
        cells.clear();
        (table.cells)(report, row, &mut cells);
        values.clear();
        for (column, cell) in table.columns.iter().zip(&cells) {
            values.push(PgValue::new(column, *cell).map_err(|reason| Error::Value {
                table: name,
                row,
                reason,
            })?);
        }
        writer
            .as_mut()
            .write_raw(values.iter())
            .await
            .map_err(copy_err)?;
    }
    writer.finish().await.map_err(copy_err)
}
