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
//! Not owned here: what the tables look like (migrations/postgres).

use std::time::Instant;

use chrono::Utc;
use futures_util::pin_mut;
use postgres_types::{IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::{NoTls, Transaction};

use super::numeric::Cents;
use super::{Error, LoadOpts, LoadSummary, TABLES, injected, mobile, schema, store};
use crate::config::DatabaseUrl;
use crate::model::{Report, YearMonth};

/// Advisory lock key shared by every segpipe load ("segpipe" in ASCII).
const LOCK_KEY: i64 = 0x0073_6567_7069_7065;

/// Keys of each report table, mirroring migrations/postgres (names included,
/// so the swapped-in tables are indistinguishable from migrated ones):
/// (table, primary key columns, [(fk name, columns, referenced table, columns)]).
type Keys = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str, &'static str, &'static str)],
);
const KEYS: [Keys; 5] = [
    ("segment_metrics", "segment", &[]),
    (
        "customer_segments",
        "mobile",
        &[(
            "customer_segments_segment_fkey",
            "segment",
            "segment_metrics",
            "segment",
        )],
    ),
    (
        "customer_behavior_metrics",
        "mobile",
        &[(
            "customer_behavior_metrics_mobile_fkey",
            "mobile",
            "customer_segments",
            "mobile",
        )],
    ),
    (
        "customer_store_summary",
        "mobile, store",
        &[(
            "customer_store_summary_mobile_fkey",
            "mobile",
            "customer_segments",
            "mobile",
        )],
    ),
    (
        "customer_purchase_trends",
        "mobile, month",
        &[(
            "customer_purchase_trends_mobile_fkey",
            "mobile",
            "customer_segments",
            "mobile",
        )],
    ),
];

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
        let connect = |source| Error::Connect {
            url: url.masked(),
            source,
        };
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

async fn load_async(
    report: &Report,
    url: &DatabaseUrl,
    opts: &LoadOpts,
) -> Result<LoadSummary, Error> {
    let (mut client, connection) =
        tokio_postgres::connect(url.expose(), NoTls)
            .await
            .map_err(|source| Error::Connect {
                url: url.masked(),
                source,
            })?;
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
        let sql = format!(
            "DROP TABLE IF EXISTS {table}__new; \
             CREATE TABLE {table}__new (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
        );
        ddl(&tx, &format!("create `{table}__new`"), &sql).await?;
    }
    for table in TABLES {
        let started = Instant::now();
        let rows = copy_table(&tx, report, table).await?;
        timings.push((table.to_owned(), started.elapsed()));
        tracing::debug!(
            message = "Copied table.",
            table,
            rows,
            elapsed_ms = started.elapsed().as_millis() as u64
        );
        injected(opts, table)?;
    }

    let started = Instant::now();
    for (table, pkey, _) in KEYS {
        let sql = format!(
            "ALTER TABLE {table}__new ADD CONSTRAINT {table}__new_pkey PRIMARY KEY ({pkey})"
        );
        ddl(&tx, &format!("add the primary key of `{table}`"), &sql).await?;
    }
    timings.push(("primary keys".to_owned(), started.elapsed()));
    let started = Instant::now();
    for (table, _, fkeys) in KEYS {
        for (name, cols, parent, parent_cols) in fkeys {
            let sql = format!(
                "ALTER TABLE {table}__new ADD CONSTRAINT {name} \
                 FOREIGN KEY ({cols}) REFERENCES {parent}__new ({parent_cols})"
            );
            ddl(&tx, &format!("add foreign key `{name}`"), &sql).await?;
        }
    }
    timings.push(("foreign keys".to_owned(), started.elapsed()));
    let started = Instant::now();
    // Fresh tables have no statistics until autovacuum gets to them; readers
    // querying right after the swap would get blind plans. ANALYZE samples,
    // so this costs well under a second even at 10M rows.
    let analyze = format!("ANALYZE {}", TABLES.map(|t| format!("{t}__new")).join(", "));
    ddl(&tx, "analyze the new tables", &analyze).await?;
    timings.push(("analyze".to_owned(), started.elapsed()));

    let started = Instant::now();
    // One statement drops the old set, so the FKs between old tables go too;
    // no CASCADE: a user's view on a report table makes the load fail loudly
    // instead of silently dropping the view.
    let mut swap = format!("DROP TABLE {};", TABLES.join(", "));
    for table in TABLES {
        swap.push_str(&format!(
            " ALTER TABLE {table}__new RENAME TO {table};\
              ALTER TABLE {table} RENAME CONSTRAINT {table}__new_pkey TO {table}_pkey;"
        ));
    }
    ddl(&tx, "swap in the new tables", &swap).await?;
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

/// `YYYY-MM` written straight into the COPY buffer: no String per row.
#[derive(Debug)]
struct MonthText(YearMonth);

impl ToSql for MonthText {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        use std::fmt::Write;
        write!(out, "{}", self.0)?;
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::TEXT
    }

    to_sql_checked!();
}

fn money(table: &'static str, row: usize, column: &str, x: f64) -> Result<Cents, Error> {
    Cents::from_f64(x).ok_or_else(|| Error::Value {
        table,
        row,
        reason: format!("`{column}` is {x}, not money"),
    })
}

fn int(
    table: &'static str,
    row: usize,
    column: &str,
    n: impl Into<u64> + Copy,
) -> Result<i32, Error> {
    let wide: u64 = n.into();
    i32::try_from(wide).map_err(|_| Error::Value {
        table,
        row,
        reason: format!("`{column}` = {wide} does not fit INTEGER"),
    })
}

/// COPY one table's rows from `report` into `<table>__new`.
async fn copy_table(
    tx: &Transaction<'_>,
    report: &Report,
    table: &'static str,
) -> Result<u64, Error> {
    use Type as T;
    let copy_err = |source| Error::Copy { table, source };
    let start = |columns: &str, types: &[Type]| {
        let sql = format!("COPY {table}__new ({columns}) FROM STDIN (FORMAT binary)");
        let types = types.to_vec();
        async move {
            let sink = tx.copy_in(&sql).await.map_err(copy_err)?;
            Ok::<_, Error>(BinaryCopyInWriter::new(sink, &types))
        }
    };
    match table {
        "segment_metrics" => {
            let writer = start(
                "segment, segment_label, num_customers, total_spend, avg_clv, avg_age, avg_income, \
                 avg_purchase_count, avg_days_since_last_purchase, avg_purchase_frequency, \
                 share_of_customers, share_of_spend",
                &[
                    T::INT4,
                    T::TEXT,
                    T::INT8,
                    T::NUMERIC,
                    T::NUMERIC,
                    T::FLOAT8,
                    T::NUMERIC,
                    T::FLOAT8,
                    T::FLOAT8,
                    T::FLOAT8,
                    T::FLOAT8,
                    T::FLOAT8,
                ],
            )
            .await?;
            pin_mut!(writer);
            for (i, s) in report.segments.iter().enumerate() {
                let segment = int(table, i, "segment", s.segment)?;
                let num = i64::try_from(s.num_customers).map_err(|_| Error::Value {
                    table,
                    row: i,
                    reason: format!("`num_customers` = {} does not fit BIGINT", s.num_customers),
                })?;
                let total = money(table, i, "total_spend", s.total_spend)?;
                let clv = money(table, i, "avg_clv", s.avg_clv)?;
                let income = money(table, i, "avg_income", s.avg_income)?;
                writer
                    .as_mut()
                    .write(&[
                        &segment,
                        &s.segment_label,
                        &num,
                        &total,
                        &clv,
                        &s.avg_age,
                        &income,
                        &s.avg_purchase_count,
                        &s.avg_days_since_last_purchase,
                        &s.avg_purchase_frequency,
                        &s.share_of_customers,
                        &s.share_of_spend,
                    ])
                    .await
                    .map_err(copy_err)?;
            }
            writer.finish().await.map_err(copy_err)
        }
        "customer_segments" => {
            let writer = start(
                "mobile, name, age, income, gender, clv, avg_purchase_amount, purchase_count, \
                 days_since_last_purchase, purchase_frequency, segment, segment_label",
                &[
                    T::TEXT,
                    T::TEXT,
                    T::INT4,
                    T::NUMERIC,
                    T::TEXT,
                    T::NUMERIC,
                    T::NUMERIC,
                    T::INT4,
                    T::INT4,
                    T::FLOAT8,
                    T::INT4,
                    T::TEXT,
                ],
            )
            .await?;
            pin_mut!(writer);
            for (i, c) in report.customers.iter().enumerate() {
                let age = c.age.map(i32::from);
                let income = c.income.map(|x| money(table, i, "income", x)).transpose()?;
                let gender = c.gender.map(|g| g.as_str());
                let clv = money(table, i, "clv", c.clv)?;
                let avg = money(table, i, "avg_purchase_amount", c.avg_purchase_amount)?;
                let count = int(table, i, "purchase_count", c.purchase_count)?;
                let segment = int(table, i, "segment", c.segment)?;
                writer
                    .as_mut()
                    .write(&[
                        &c.mobile,
                        &c.name,
                        &age,
                        &income,
                        &gender,
                        &clv,
                        &avg,
                        &count,
                        &c.days_since_last_purchase,
                        &c.purchase_frequency,
                        &segment,
                        &c.segment_label,
                    ])
                    .await
                    .map_err(copy_err)?;
            }
            writer.finish().await.map_err(copy_err)
        }
        "customer_behavior_metrics" => {
            let writer = start(
                "mobile, total_spent, avg_transaction_value, max_purchase_amount, min_purchase_amount, \
                 purchase_count, first_purchase, last_purchase, days_since_first_purchase, \
                 days_since_last_purchase",
                &[
                    T::TEXT, T::NUMERIC, T::NUMERIC, T::NUMERIC, T::NUMERIC, T::INT4, T::DATE, T::DATE,
                    T::INT4, T::INT4,
                ],
            )
            .await?;
            pin_mut!(writer);
            for (i, b) in report.behavior.iter().enumerate() {
                let mobile = mobile(report, table, i, b.customer)?;
                let total = money(table, i, "total_spent", b.total_spent)?;
                let avg = money(table, i, "avg_transaction_value", b.avg_transaction_value)?;
                let max = money(table, i, "max_purchase_amount", b.max_purchase_amount)?;
                let min = money(table, i, "min_purchase_amount", b.min_purchase_amount)?;
                let count = int(table, i, "purchase_count", b.purchase_count)?;
                writer
                    .as_mut()
                    .write(&[
                        &mobile,
                        &total,
                        &avg,
                        &max,
                        &min,
                        &count,
                        &b.first_purchase,
                        &b.last_purchase,
                        &b.days_since_first_purchase,
                        &b.days_since_last_purchase,
                    ])
                    .await
                    .map_err(copy_err)?;
            }
            writer.finish().await.map_err(copy_err)
        }
        "customer_store_summary" => {
            let writer = start(
                "mobile, store, total_spent, visit_count",
                &[T::TEXT, T::TEXT, T::NUMERIC, T::INT4],
            )
            .await?;
            pin_mut!(writer);
            for (i, s) in report.stores.iter().enumerate() {
                let mobile = mobile(report, table, i, s.customer)?;
                let name = store(report, table, i, s.store)?;
                let total = money(table, i, "total_spent", s.total_spent)?;
                let visits = int(table, i, "visit_count", s.visit_count)?;
                writer
                    .as_mut()
                    .write(&[&mobile, &name, &total, &visits])
                    .await
                    .map_err(copy_err)?;
            }
            writer.finish().await.map_err(copy_err)
        }
        "customer_purchase_trends" => {
            let writer = start(
                "mobile, month, total_spent, num_purchases",
                &[T::TEXT, T::TEXT, T::NUMERIC, T::INT4],
            )
            .await?;
            pin_mut!(writer);
            for (i, t) in report.trends.iter().enumerate() {
                let mobile = mobile(report, table, i, t.customer)?;
                let month = MonthText(t.month);
                let total = money(table, i, "total_spent", t.total_spent)?;
                let count = int(table, i, "num_purchases", t.num_purchases)?;
                writer
                    .as_mut()
                    .write(&[&mobile, &month, &total, &count])
                    .await
                    .map_err(copy_err)?;
            }
            writer.finish().await.map_err(copy_err)
        }
        other => unreachable!("`{other}` is not in TABLES"),
    }
}
