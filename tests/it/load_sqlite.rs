//! `segpipe::load` into SQLite: the same guarantees as PostgreSQL, checked
//! by opening the file with rusqlite.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use segpipe::load::{Error, LoadOpts, Target, load};
use segpipe::model::{CustomerIdx, Report};
use segpipe::secret::DatabaseUrl;

use crate::load_postgres::{TABLES, report};
use crate::util::{Workdir, ok};

fn open(path: &Path) -> Connection {
    Connection::open(path).expect("open sqlite file")
}

fn q(path: &Path, sql: &str) -> String {
    open(path)
        .query_row(sql, [], |r| r.get::<_, rusqlite::types::Value>(0))
        .map(|v| match v {
            rusqlite::types::Value::Null => "NULL".to_owned(),
            rusqlite::types::Value::Integer(i) => i.to_string(),
            rusqlite::types::Value::Real(x) => x.to_string(),
            rusqlite::types::Value::Text(t) => t,
            rusqlite::types::Value::Blob(b) => format!("{b:?}"),
        })
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Every row of every report table, as text, in key order.
fn fingerprint(path: &Path) -> Vec<String> {
    let conn = open(path);
    TABLES
        .iter()
        .flat_map(|t| {
            let mut stmt = conn
                .prepare(&format!("SELECT * FROM {t} ORDER BY 1, 2"))
                .expect("prepare");
            let n = stmt.column_count();
            stmt.query_map([], |r| {
                let cells: Vec<String> = (0..n)
                    .map(|i| format!("{:?}", r.get::<_, rusqlite::types::Value>(i).expect("cell")))
                    .collect();
                Ok(format!("{t}:{}", cells.join("|")))
            })
            .expect("query")
            .collect::<Result<Vec<_>, _>>()
            .expect("rows")
        })
        .collect()
}

fn target(path: &Path) -> Target {
    Target::Sqlite(path.to_owned())
}

fn load_ok(path: &Path, r: &Report) {
    let summary = load(r, &target(path), &LoadOpts::default()).expect("load");
    assert_eq!(summary.rows, r.row_counts());
}

fn db(dir: &Workdir) -> PathBuf {
    // A missing parent directory is created by the load.
    dir.join("nested/dir/segpipe.db")
}

#[test]
fn sqlite_tables_and_values_round_trip() {
    let dir = Workdir::new();
    let path = db(&dir);
    let r = report(50, 1);
    load_ok(&path, &r);
    for (table, n) in r.row_counts() {
        assert_eq!(
            q(&path, &format!("SELECT count(*) FROM {table}")),
            n.to_string(),
            "{table}"
        );
    }
    assert_eq!(
        q(
            &path,
            "SELECT clv FROM customer_segments WHERE mobile = '919876500000'"
        ),
        "1.3"
    );
    assert_eq!(
        q(
            &path,
            "SELECT avg_purchase_amount FROM customer_segments WHERE mobile = '919876500001'"
        ),
        "101"
    );
    assert_eq!(
        q(
            &path,
            "SELECT total_spend FROM segment_metrics WHERE segment = 2"
        ),
        "3000001.38"
    );
    let want: f64 = r
        .customers
        .iter()
        .map(|c| (c.clv * 100.0).round())
        .sum::<f64>()
        / 100.0;
    assert_eq!(
        q(
            &path,
            "SELECT printf('%.2f', sum(clv)) FROM customer_segments"
        ),
        format!("{want:.2}")
    );
    // Money is stored rounded to cents.
    assert_eq!(
        q(
            &path,
            "SELECT count(*) FROM customer_purchase_trends WHERE round(total_spent, 2) <> total_spent"
        ),
        "0"
    );
    assert_eq!(
        q(
            &path,
            "SELECT count(*) FROM customer_segments WHERE name IS NULL"
        ),
        "8"
    );
    assert_eq!(
        q(
            &path,
            "SELECT count(*) FROM customer_segments WHERE age IS NULL"
        ),
        "5"
    );
    assert_eq!(
        q(
            &path,
            "SELECT count(*) FROM customer_segments WHERE income IS NULL"
        ),
        "6"
    );
    assert_eq!(
        q(
            &path,
            "SELECT count(*) FROM customer_segments WHERE gender IS NULL"
        ),
        "12"
    );
    assert_eq!(
        q(
            &path,
            "SELECT count(*) FROM customer_behavior_metrics WHERE first_purchase IS NULL"
        ),
        "5"
    );
    assert_eq!(
        q(
            &path,
            "SELECT first_purchase || ' ' || last_purchase FROM customer_behavior_metrics WHERE mobile = '919876500001'"
        ),
        "2026-01-27 2026-02-26"
    );
    assert_eq!(
        q(
            &path,
            "SELECT group_concat(month, ',') FROM (SELECT month FROM customer_purchase_trends WHERE mobile = '919876500003' ORDER BY month)"
        ),
        "2025-11,2025-12,2026-01"
    );
    assert_eq!(
        q(
            &path,
            "SELECT group_concat(store || ':' || total_spent || ':' || visit_count, ',') FROM (SELECT * FROM customer_store_summary WHERE mobile = '919876500002' ORDER BY store)"
        ),
        "DMart:5.5:3,unknown:4.0:2"
    );
    assert_eq!(
        q(
            &path,
            "SELECT run_id || ' ' || load_number || ' ' || status || ' ' || as_of || ' ' || seed || ' ' || k || ' ' \
                  || silhouette || ' ' || ari || ' ' || (row_counts ->> '$.customer_purchase_trends') || ' ' \
                  || (data_quality ->> '$.null_date') FROM pipeline_runs"
        ),
        "run-1 1 succeeded 2026-03-01 18446744073709551614 2 0.61 0.8 150 7"
    );
    assert_eq!(
        q(
            &path,
            "SELECT group_concat(version || ':' || name) FROM segpipe_schema_migrations"
        ),
        "1:reporting_schema,2:honest_nulls_rfm_transitions"
    );
    assert_eq!(q(&path, "PRAGMA journal_mode"), "wal");
}

#[test]
fn sqlite_relative_url_is_relative_to_the_current_directory() {
    let Target::Sqlite(path) =
        Target::parse(&DatabaseUrl::new("sqlite://segpipe.db")).expect("parse")
    else {
        panic!("not sqlite");
    };
    assert!(path.is_relative());
    assert_eq!(path, PathBuf::from("segpipe.db"));
}

#[test]
fn sqlite_loading_twice_keeps_the_rows_and_appends_a_run() {
    let dir = Workdir::new();
    let path = db(&dir);
    let r = report(50, 1);
    load_ok(&path, &r);
    let first = fingerprint(&path);
    load_ok(&path, &r);
    assert_eq!(fingerprint(&path), first);
    assert_eq!(
        q(
            &path,
            "SELECT group_concat(run_id || '#' || load_number) FROM (SELECT * FROM pipeline_runs ORDER BY load_number)"
        ),
        "run-1#1,run-1-2#2"
    );
}

#[test]
fn sqlite_failed_load_leaves_the_previous_tables() {
    let dir = Workdir::new();
    let path = db(&dir);
    load_ok(&path, &report(50, 1));
    let before = fingerprint(&path);
    let b = report(40, 2);
    for table in TABLES {
        let opts = LoadOpts {
            fail_after_table: Some(table.to_owned()),
            ..LoadOpts::default()
        };
        let err = load(&b, &target(&path), &opts).expect_err("injected failure");
        assert!(
            matches!(&err, Error::Injected { table: t } if t == table),
            "{err}"
        );
        assert_eq!(fingerprint(&path), before, "after failing at {table}");
    }
    assert_eq!(q(&path, "SELECT count(*) FROM pipeline_runs"), "1");
    load_ok(&path, &b);
    assert_ne!(fingerprint(&path), before);
}

#[test]
fn sqlite_concurrent_loads_serialize() {
    let dir = Workdir::new();
    let (a, b) = (report(2000, 1), report(1500, 2));
    let fp = |name: &str, r: &Report| {
        let p = dir.join(name);
        load_ok(&p, r);
        fingerprint(&p)
    };
    let (want_a, want_b) = (fp("a.db", &a), fp("b.db", &b));
    let path = db(&dir);
    std::thread::scope(|s| {
        let ta = s.spawn(|| load(&a, &target(&path), &LoadOpts::default()));
        let tb = s.spawn(|| load(&b, &target(&path), &LoadOpts::default()));
        ta.join().expect("thread a").expect("load a");
        tb.join().expect("thread b").expect("load b");
    });
    let got = fingerprint(&path);
    assert!(got == want_a || got == want_b, "final tables are a mix");
    assert_eq!(q(&path, "SELECT count(*) FROM pipeline_runs"), "2");
}

#[test]
fn sqlite_foreign_keys_hold() {
    let dir = Workdir::new();
    let path = db(&dir);
    load_ok(&path, &report(30, 1));
    let before = fingerprint(&path);
    let mut bad = report(30, 2);
    let mut rows = bad.customers.to_vec();
    rows[5].segment = 99;
    bad.customers = rows.into();
    let err = load(&bad, &target(&path), &LoadOpts::default()).expect_err("fk");
    assert_eq!(
        err.to_string(),
        "`customer_segments` row 5: `segment` = 99 is not a key of `segment_metrics` \
         (FOREIGN KEY constraint `customer_segments_segment_fkey`)"
    );
    assert_eq!(fingerprint(&path), before);
    let conn = open(&path);
    conn.pragma_update(None, "foreign_keys", "ON")
        .expect("fk on");
    for sql in [
        "INSERT INTO customer_purchase_trends VALUES ('000', '2026-01', 1.0, 1)",
        "DELETE FROM segment_metrics",
        "INSERT INTO customer_purchase_trends VALUES ('919876500001', '2026-13', 1.0, 1)",
        "INSERT INTO customer_store_summary VALUES ('919876500001', 'x', 'lots', 1)",
    ] {
        assert!(conn.execute_batch(sql).is_err(), "{sql}");
    }
}

#[test]
fn sqlite_edited_migration_is_refused() {
    let dir = Workdir::new();
    let path = db(&dir);
    load_ok(&path, &report(5, 1));
    open(&path)
        .execute_batch("UPDATE segpipe_schema_migrations SET checksum = 'x'")
        .expect("tamper");
    let err = load(&report(5, 2), &target(&path), &LoadOpts::default()).expect_err("checksum");
    assert!(matches!(err, Error::Migrate { version: 1, .. }), "{err}");
}

/// Rows go in by key, whatever the report's order (issue 12 item 5 sorts
/// them): a shuffled report gives exactly the same tables.
#[test]
fn sqlite_rows_in_any_order_give_the_same_tables() {
    let dir = Workdir::new();
    let r = report(60, 1);
    let mut shuffled = r.clone();
    // Customers reversed, children pointed at the moved customers and
    // reversed too: the same tables, in the opposite row order.
    let n = r.customers.len();
    let mut rows = shuffled.customers.to_vec();
    rows.reverse();
    shuffled.customers = rows.into();
    let moved = |c: CustomerIdx| CustomerIdx::from_index(n - 1 - c.index());
    for b in shuffled.behavior.to_mut().expect("in memory") {
        b.customer = moved(b.customer);
    }
    for s in shuffled.stores.to_mut().expect("in memory") {
        s.customer = moved(s.customer);
    }
    for t in shuffled.trends.to_mut().expect("in memory") {
        t.customer = moved(t.customer);
    }
    shuffled.behavior.to_mut().expect("in memory").reverse();
    shuffled.stores.to_mut().expect("in memory").reverse();
    shuffled.trends.to_mut().expect("in memory").reverse();
    shuffled.segments.reverse();
    let (a, b) = (dir.join("a.db"), dir.join("b.db"));
    load_ok(&a, &r);
    load_ok(&b, &shuffled);
    assert_eq!(fingerprint(&a), fingerprint(&b));
}

/// Whether a writer holds `path` (a probe `BEGIN IMMEDIATE` finds it busy).
fn write_locked(path: &Path) -> bool {
    let conn = open(path);
    // rusqlite waits 5 s for a busy database by default; a probe must not.
    conn.busy_timeout(Duration::ZERO).expect("busy timeout");
    match conn.execute_batch("BEGIN IMMEDIATE; ROLLBACK;") {
        Ok(()) => false,
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::DatabaseBusy =>
        {
            true
        }
        Err(e) => panic!("probe: {e}"),
    }
}

#[test]
fn issue_8_sqlite_kill_9_mid_load_leaves_the_old_tables() {
    // See: issue 8 ("keep what held", the SQLite half)
    let dir = Workdir::new();
    let path = dir.join("segpipe.db");
    load_ok(&path, &report(50, 1));
    let before = fingerprint(&path);
    let big = report(200_000, 2);
    segpipe::checkpoint::write_report(&dir.join("big"), &big).expect("checkpoint");
    let url = format!("sqlite://{}", path.display());
    let mut child = dir
        .segpipe()
        .args(["load", "--input", "big", "--database-url", &url])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn segpipe load");
    // Kill once the load holds the write lock, i.e. is inside its transaction.
    let started = Instant::now();
    let deadline = started + Duration::from_secs(60);
    let mut probes = 0;
    while !write_locked(&path) {
        probes += 1;
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!(
                "the load ended ({status}) before it took the write lock ({probes} probes in {:?})",
                started.elapsed()
            );
        }
        assert!(Instant::now() < deadline, "the load never took the lock");
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().expect("SIGKILL");
    let status = child.wait().expect("wait");
    assert!(!status.success(), "{status}");
    assert_eq!(fingerprint(&path), before);
    assert_eq!(q(&path, "SELECT count(*) FROM pipeline_runs"), "1");
    ok(dir.run(&["load", "--input", "big", "--database-url", &url]));
    assert_eq!(q(&path, "SELECT count(*) FROM customer_segments"), "200000");
    assert_eq!(
        q(&path, "SELECT count(*) FROM pragma_foreign_key_check"),
        "0"
    );
}

#[test]
fn issue_12_sqlite_kill_9_while_filling_an_empty_file_leaves_it_empty() {
    // See: issue 12 (an empty file is filled through a rollback journal, not WAL)
    let dir = Workdir::new();
    let path = dir.join("segpipe.db");
    let big = report(200_000, 2);
    segpipe::checkpoint::write_report(&dir.join("big"), &big).expect("checkpoint");
    // An empty file, as `run`'s preflight leaves it.
    std::fs::File::create(&path).expect("create empty file");
    let url = format!("sqlite://{}", path.display());
    let mut child = dir
        .segpipe()
        .args(["load", "--input", "big", "--database-url", &url])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn segpipe load");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !write_locked(&path) {
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!("the load ended ({status}) before it took the write lock");
        }
        assert!(Instant::now() < deadline, "the load never took the lock");
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().expect("SIGKILL");
    assert!(!child.wait().expect("wait").success());
    // Opening the file rolls the hot journal back: no tables, not a part.
    assert_eq!(q(&path, "PRAGMA integrity_check"), "ok");
    assert_eq!(
        q(
            &path,
            "SELECT count(*) FROM sqlite_schema WHERE name = 'customer_segments'"
        ),
        "0"
    );
    ok(dir.run(&["load", "--input", "big", "--database-url", &url]));
    assert_eq!(q(&path, "SELECT count(*) FROM customer_segments"), "200000");
    assert_eq!(q(&path, "PRAGMA journal_mode"), "wal");
    assert_eq!(q(&path, "PRAGMA page_size"), "16384");
}
