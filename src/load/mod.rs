//! Load: write the report tables to PostgreSQL or SQLite atomically (DESIGN §5).
//!
//! This module owns the public entry point ([`load`]), the sink choice
//! ([`Target`]) and the stage's [`Error`]. The backends live in `postgres`
//! (binary COPY into fresh tables, keys built after the data, swapped in
//! within one transaction) and `sqlite` (one `BEGIN IMMEDIATE` transaction);
//! `schema` runs the embedded migrations for both. Callers are synchronous:
//! the PostgreSQL path builds its own tokio runtime.
//!
//! Two modes ([`LoadMode`], DESIGN §5) decide how PostgreSQL replaces the
//! rows: `swap` (default, fastest) builds fresh tables and swaps them in;
//! `in-place` deletes and re-copies the rows of the live tables so views,
//! grants and snapshot readers keep working. SQLite has one way (one write
//! transaction over the live tables) and treats both modes alike.

mod binary_copy;
mod numeric;
mod postgres;
mod schema;
mod sqlite;
mod staging;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::Report;
use crate::secret::DatabaseUrl;

/// Where the tables go.
#[derive(Clone, Debug)]
pub enum Target {
    Postgres(DatabaseUrl),
    Sqlite(PathBuf),
}

impl Target {
    /// Parse `postgres://…`, `postgresql://…`, a libpq `key=value` string
    /// or `sqlite://PATH`.
    ///
    /// A relative `PATH` (as in the default `sqlite://segpipe.db`) is
    /// relative to the current directory.
    pub fn parse(url: &DatabaseUrl) -> Result<Target, Error> {
        let raw = url.expose();
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") || url.is_conninfo() {
            Ok(Target::Postgres(url.clone()))
        } else if let Some(path) = raw.strip_prefix("sqlite://").filter(|p| !p.is_empty()) {
            Ok(Target::Sqlite(PathBuf::from(path)))
        } else {
            Err(Error::Url { url: url.masked() })
        }
    }

    /// Where the tables went, safe to print (passwords masked).
    pub fn describe(&self) -> String {
        match self {
            Target::Postgres(url) => url.masked(),
            Target::Sqlite(path) => format!("sqlite://{}", path.display()),
        }
    }
}

/// How PostgreSQL replaces the report tables (`--load-mode`, `[load] mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LoadMode {
    /// Build fresh tables, then swap them in under a short exclusive lock,
    /// carrying over the old tables' GRANTs. Fastest. A view on a report
    /// table stops it (dropping the table would drop the view), and a
    /// REPEATABLE READ reader whose snapshot predates the swap sees the new
    /// tables empty.
    #[default]
    Swap,
    /// Delete the live tables' rows and copy the new ones in: views,
    /// grants, indexes and readers holding an older snapshot keep working,
    /// and readers are never blocked. Slower: keys and foreign keys are
    /// checked row by row.
    InPlace,
}

impl LoadMode {
    pub fn as_str(self) -> &'static str {
        match self {
            LoadMode::Swap => "swap",
            LoadMode::InPlace => "in-place",
        }
    }
}

/// The default bound on waiting for readers' locks on the report tables.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(60);

/// Load options beyond the target.
#[derive(Clone, Debug)]
pub struct LoadOpts {
    pub mode: LoadMode,
    /// Longest the PostgreSQL load waits for locks on the report tables
    /// (readers, other sessions' DDL) before giving up. Waiting for another
    /// segpipe load (the advisory lock) is not bounded: loads serialize.
    pub lock_timeout: Duration,
    /// Test seam, set only by tests calling [`load`] directly (never from
    /// configuration or the environment): fail after writing this table,
    /// inside the transaction.
    pub fail_after_table: Option<String>,
}

impl Default for LoadOpts {
    fn default() -> Self {
        LoadOpts {
            mode: LoadMode::default(),
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            fail_after_table: None,
        }
    }
}

/// What a load wrote.
#[derive(Clone, Debug)]
pub struct LoadSummary {
    /// The target, password masked.
    pub destination: String,
    /// Rows written per report table.
    pub rows: BTreeMap<String, u64>,
    /// Wall time per step, in order: one entry per table's data, then the
    /// backend's finishing steps (`keys`, `swap`, `commit`, …).
    pub timings: Vec<(String, Duration)>,
}

/// Why a load failed. Only [`Error::Url`] is a usage error (exit 2); every
/// other variant is a runtime failure (exit 1), and none of them leaves a
/// partly replaced set of tables behind.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "unsupported database url `{url}`, expected postgres://…, host=… dbname=… or sqlite://PATH"
    )]
    Url { url: String },
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error("cannot connect to `{url}`")]
    Connect {
        /// Password masked.
        url: String,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("database `{database}` does not exist at `{url}`; create it with `{command}`")]
    MissingDatabase {
        url: String,
        database: String,
        command: String,
    },
    #[error("cannot take the load lock")]
    Lock(#[source] tokio_postgres::Error),
    #[error("migration V{version}: {reason}")]
    Migrate { version: i32, reason: String },
    #[error("cannot {step}")]
    MigratePostgres {
        step: String,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("cannot {step}")]
    MigrateSqlite {
        step: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot {step}")]
    Ddl {
        step: String,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("copy into `{table}`")]
    Copy {
        table: &'static str,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("`{table}` row {row}: {reason}")]
    Value {
        table: &'static str,
        row: usize,
        reason: String,
    },
    #[error(
        "{views}: `--load-mode swap` replaces the report tables and would have to drop the view; \
         load with `--load-mode in-place` (config `[load] mode = \"in-place\"`) to keep views"
    )]
    DependentView {
        /// Each view and the table it reads, e.g. "view `v` reads `t`".
        views: String,
    },
    #[error(
        "gave up after waiting {waited_ms} ms for a lock on the report tables to {step} \
         (a reader or another session holds it); retry later or raise `[load] lock_timeout_ms` \
         (SEGPIPE_LOAD_LOCK_TIMEOUT_MS)"
    )]
    LockTimeout { step: String, waited_ms: u64 },
    #[error("load failed on purpose after writing `{table}` (fail_after_table)")]
    Injected { table: String },
    #[error("a thread staging the new tables panicked")]
    StagingPanic,
    #[error("cannot record the run in `pipeline_runs`")]
    Record(#[source] tokio_postgres::Error),
    #[error("cannot commit the load")]
    Commit(#[source] tokio_postgres::Error),
    #[error("cannot create directory `{path}`")]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read the spilled rows of `{table}`")]
    Spill {
        table: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("sqlite `{path}`: {step}")]
    Sqlite {
        path: PathBuf,
        step: String,
        #[source]
        source: rusqlite::Error,
    },
}

/// Replace the five report tables with `report`'s rows and append a
/// `pipeline_runs` row, all or nothing.
pub fn load(report: &Report, target: &Target, opts: &LoadOpts) -> Result<LoadSummary, Error> {
    let mut summary = match target {
        Target::Postgres(url) => postgres::load(report, url, opts)?,
        Target::Sqlite(path) => sqlite::load(report, path, opts)?,
    };
    summary.destination = target.describe();
    for (step, took) in &summary.timings {
        tracing::debug!(message = "Load step done.", step = %step, elapsed_ms = took.as_millis() as u64);
    }
    let total: Duration = summary.timings.iter().map(|(_, d)| *d).sum();
    tracing::info!(
        message = "Loaded report tables.",
        destination = %summary.destination,
        rows = summary.rows.values().sum::<u64>(),
        elapsed_ms = total.as_millis() as u64
    );
    Ok(summary)
}

/// Check that the target can be reached before any long work: `run` calls
/// this first, so a wrong URL fails in milliseconds, not after the pipeline.
pub fn preflight(target: &Target) -> Result<(), Error> {
    match target {
        Target::Postgres(url) => postgres::ping(url),
        Target::Sqlite(path) => sqlite::ping(path),
    }
}

/// The `fail_after_table` hook: call right after `table`'s data is written.
fn injected(opts: &LoadOpts, table: &str) -> Result<(), Error> {
    match &opts.fail_after_table {
        Some(t) if t == table => Err(Error::Injected { table: t.clone() }),
        _ => Ok(()),
    }
}

/// `kmeans` or `rfm`, for `pipeline_runs.method`.
fn method_text(report: &Report) -> String {
    serde_json::to_value(report.model.method)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Every criterion per k tried, for `pipeline_runs.k_sweep`.
fn k_sweep_json(report: &Report) -> serde_json::Value {
    serde_json::to_value(&report.model.k_sweep).unwrap_or(serde_json::Value::Null)
}

/// The holdout scores, for `pipeline_runs.holdout` (NULL without one).
fn holdout_json(report: &Report) -> Option<serde_json::Value> {
    report
        .model
        .holdout
        .as_ref()
        .and_then(|h| serde_json::to_value(h).ok())
}

/// `report.quality` as a JSON object rule → rows, for `pipeline_runs.data_quality`.
fn quality_json(report: &Report) -> serde_json::Value {
    serde_json::Value::Object(
        report
            .quality
            .0
            .iter()
            .map(|q| (q.rule.clone(), serde_json::Value::from(q.rows)))
            .collect(),
    )
}

/// `report.row_counts()` as a JSON object, for `pipeline_runs.row_counts`.
fn row_counts_json(report: &Report) -> serde_json::Value {
    serde_json::Value::Object(
        report
            .row_counts()
            .into_iter()
            .map(|(t, n)| (t, serde_json::Value::from(n)))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_parse() {
        let pg = Target::parse(&DatabaseUrl::new("postgres://u:secret@h/db")).expect("pg");
        assert!(matches!(&pg, Target::Postgres(u) if u.expose() == "postgres://u:secret@h/db"));
        assert_eq!(pg.describe(), "postgres://u:***@h/db");
        assert!(matches!(
            Target::parse(&DatabaseUrl::new("postgresql://h/db")).expect("postgresql"),
            Target::Postgres(_)
        ));
        let lite = Target::parse(&DatabaseUrl::new("sqlite://segpipe.db")).expect("relative");
        assert!(matches!(&lite, Target::Sqlite(p) if p == &PathBuf::from("segpipe.db")));
        let abs = Target::parse(&DatabaseUrl::new("sqlite:///tmp/x/s.db")).expect("absolute");
        assert!(matches!(&abs, Target::Sqlite(p) if p == &PathBuf::from("/tmp/x/s.db")));

        for bad in ["mysql://u:secret@h/db", "sqlite://", "segpipe.db", ""] {
            let err = Target::parse(&DatabaseUrl::new(bad)).expect_err(bad);
            assert!(matches!(err, Error::Url { .. }), "{bad}");
            assert!(!err.to_string().contains("secret"), "{err}");
        }
    }

    #[test]
    fn injected_fires_only_for_its_table() {
        let opts = LoadOpts {
            fail_after_table: Some("customer_segments".to_owned()),
            ..LoadOpts::default()
        };
        assert!(injected(&opts, "segment_metrics").is_ok());
        assert!(matches!(
            injected(&opts, "customer_segments"),
            Err(Error::Injected { .. })
        ));
        assert!(injected(&LoadOpts::default(), "customer_segments").is_ok());
    }
}
