//! PostgreSQL test helpers: the server URL, a database per test (dropped on
//! drop), and small sync query helpers over tokio-postgres.
//!
//! An unreachable server fails the test with the command that starts it:
//! database tests are never skipped.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};

use segpipe::secret::DatabaseUrl;
use tokio_postgres::{NoTls, SimpleQueryMessage};

const START_HINT: &str = "start it with `pg_ctlcluster --skip-systemctl-redirect 15 main start` \
                          or point SEGPIPE_TEST_DATABASE_URL at a server";

/// The server tests use: `SEGPIPE_TEST_DATABASE_URL`, or the local default.
pub fn pg_url() -> String {
    std::env::var("SEGPIPE_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// `url` with its database name replaced by `db`.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    format!("{base}/{db}{query}")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("test runtime")
}

/// Rows of `sql` (simple protocol: every value as text, NULL as None).
pub fn rows(url: &str, sql: &str) -> Vec<Vec<Option<String>>> {
    runtime().block_on(async {
        let (client, conn) = tokio_postgres::connect(url, NoTls)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL unreachable at {}: {e}; {START_HINT}",
                    DatabaseUrl::new(url)
                )
            });
        tokio::spawn(conn);
        let messages = client
            .simple_query(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
        messages
            .into_iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(r) => {
                    Some((0..r.len()).map(|i| r.get(i).map(str::to_owned)).collect())
                }
                _ => None,
            })
            .collect()
    })
}

/// Run statements, panicking with the error on failure.
pub fn exec(url: &str, sql: &str) {
    rows(url, sql);
}

/// Run statements, returning the database error text on failure.
pub fn try_exec(url: &str, sql: &str) -> Result<(), String> {
    runtime().block_on(async {
        let (client, conn) = tokio_postgres::connect(url, NoTls)
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        client
            .batch_execute(sql)
            .await
            .map_err(|e| format!("{e:?}"))
    })
}

/// The single value of `sql` (first column of the first row), as text.
pub fn scalar(url: &str, sql: &str) -> Option<String> {
    rows(url, sql)
        .into_iter()
        .next()
        .and_then(|r| r.into_iter().next())
        .flatten()
}

/// A freshly created database, dropped (with force) when the guard drops.
pub struct TestDb {
    name: String,
    url: String,
}

impl TestDb {
    pub fn new() -> TestDb {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!(
            "segpipe_test_{}_{}_{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        exec(&pg_url(), &format!("CREATE DATABASE {name}"));
        let url = with_database(&pg_url(), &name);
        TestDb { name, url }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn database_url(&self) -> DatabaseUrl {
        DatabaseUrl::new(self.url.clone())
    }

    pub fn target(&self) -> segpipe::load::Target {
        segpipe::load::Target::Postgres(self.database_url())
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Best effort: a panic here would hide the test's own failure.
        let _ = try_exec(
            &pg_url(),
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

#[test]
fn with_database_replaces_only_the_name() {
    assert_eq!(
        with_database("postgres://u@h:5432/test", "x"),
        "postgres://u@h:5432/x"
    );
    assert_eq!(
        with_database("postgres://u@h/test?sslmode=disable", "x"),
        "postgres://u@h/x?sslmode=disable"
    );
    assert_eq!(with_database("postgres://u@h", "x"), "postgres://u@h/x");
}
