//! `segpipe::load` into PostgreSQL: round trip, reload, injected failure,
//! concurrent loads, foreign keys, masked errors, the two load modes and
//! their readers (issue 8), a killed loader. Also holds `report()`, the
//! small hand-made Report both load test files use.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use chrono::{NaiveDate, TimeZone, Utc};
use segpipe::load::{Error, LoadMode, LoadOpts, Target, load};
use segpipe::model::{
    CustomerBehavior, CustomerIdx, CustomerSegment, Evaluation, Gender, PurchaseTrend, Quality,
    QualityCount, Report, SegmentMetrics, SegmentModel, StoreSummary, Transition, YearMonth,
};

use crate::pg::{TestDb, exec, pg_url, rows, scalar, try_exec};
use crate::util::{Workdir, fail, ok};

/// The report tables, parents first.
pub const TABLES: [&str; 5] = [
    "segment_metrics",
    "customer_segments",
    "customer_behavior_metrics",
    "customer_store_summary",
    "customer_purchase_trends",
];

/// A small report: 3 segments, `n` customers, 2 stores and 3 months each.
/// `variant` shifts every amount so two reports are told apart.
/// Every 7th customer has no name, every 10th no age, every 9th no income,
/// every 4th no gender; every 11th never bought (no dates).
pub fn report(n: u32, variant: u32) -> Report {
    let v = f64::from(variant);
    let labels = ["champions", "regulars", "no purchases"];
    let customers: Vec<CustomerSegment> = (0..n)
        .map(|i| CustomerSegment {
            mobile: format!("9198765{i:05}"),
            name: (i % 7 != 0).then(|| format!("Customer {i}")),
            age: (i % 10 != 0).then_some(20 + (i % 50) as u16),
            income: (i % 9 != 0).then_some(30_000.0 + f64::from(i) * 1.25),
            gender: [
                Some(Gender::Male),
                Some(Gender::Female),
                Some(Gender::Other),
                None,
            ][(i % 4) as usize],
            clv: f64::from(i) * 10.25 + v + 0.1 + 0.2,
            avg_purchase_amount: (i % 11 != 0).then_some(99.999 + v),
            purchase_count: if i % 11 == 0 { 0 } else { i % 13 + 1 },
            days_since_last_purchase: (i % 11 != 0).then_some((i * 3 % 700) as i32),
            purchase_frequency: (i % 11 != 0).then_some(f64::from(i % 5) / 3.0),
            segment: i % 3,
            segment_label: labels[(i % 3) as usize].into(),
            r_score: (i % 11 != 0).then_some((i % 5 + 1) as u8),
            f_score: (i % 11 != 0).then_some(((i + 1) % 5 + 1) as u8),
            m_score: (i % 11 != 0).then_some(((i + 2) % 5 + 1) as u8),
        })
        .collect();
    let behavior = (0..n)
        .map(|i| {
            let bought = i % 11 != 0;
            let last = NaiveDate::from_ymd_opt(2026, 3, 1).expect("date")
                - chrono::Days::new(u64::from(i * 3 % 700));
            CustomerBehavior {
                customer: CustomerIdx::from_index(i as usize),
                total_spent: f64::from(i) * 10.25 + v,
                avg_transaction_value: bought.then_some(12.345 + v),
                max_purchase_amount: bought.then_some(50.0 + v),
                min_purchase_amount: bought.then_some(0.01),
                purchase_count: if bought { i % 13 + 1 } else { 0 },
                first_purchase: bought.then(|| last - chrono::Days::new(30)),
                last_purchase: bought.then_some(last),
                days_since_first_purchase: bought.then_some((i * 3 % 700 + 30) as i32),
                days_since_last_purchase: bought.then_some((i * 3 % 700) as i32),
            }
        })
        .collect();
    let stores = (0..n)
        .flat_map(|i| {
            (0..2).map(move |s| StoreSummary {
                customer: CustomerIdx::from_index(i as usize),
                store: (i + s) % 3,
                total_spent: f64::from(i + s) * 1.5 + v,
                visit_count: i % 4 + s,
            })
        })
        .collect();
    let trends = (0..n)
        .flat_map(|i| {
            [(2025, 11), (2025, 12), (2026, 1)]
                .into_iter()
                .map(move |(year, month)| PurchaseTrend {
                    customer: CustomerIdx::from_index(i as usize),
                    month: YearMonth { year, month },
                    total_spent: f64::from(i) + f64::from(month) / 100.0 + v,
                    num_purchases: month % 3,
                })
        })
        .collect();
    let segments = (0..3u32)
        .map(|s| SegmentMetrics {
            segment: s,
            segment_label: labels[s as usize].to_owned(),
            num_customers: u64::from((0..n).filter(|i| i % 3 == s).count() as u32),
            total_spend: 1_000_000.125 * f64::from(s + 1) + v,
            avg_clv: 123.456,
            avg_age: Some(40.5),
            avg_income: Some(45_000.0),
            avg_purchase_count: 3.25,
            avg_days_since_last_purchase: (s != 2).then_some(100.0 / 3.0),
            avg_purchase_frequency: (s != 2).then_some(0.5),
            share_of_customers: 1.0 / 3.0,
            share_of_spend: 0.25 * f64::from(s + 1),
        })
        .collect();
    Report {
        customers: customers.into(),
        behavior,
        segments,
        store_names: vec![
            "DMart".to_owned(),
            "Big Bazaar".to_owned(),
            "unknown".to_owned(),
        ],
        stores,
        trends,
        transitions: vec![
            Transition {
                from_segment: 0,
                to_segment: 1,
                customers: u64::from(n / 3),
            },
            Transition {
                from_segment: 1,
                to_segment: 1,
                customers: u64::from(n / 2),
            },
        ],
        model: SegmentModel {
            version: segpipe::model::MODEL_VERSION,
            method: segpipe::model::Method::Kmeans,
            holdout: None,
            run_id: format!("run-{variant}"),
            started_at: Utc
                .with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
                .single()
                .expect("time"),
            as_of: NaiveDate::from_ymd_opt(2026, 3, 1).expect("date"),
            seed: u64::MAX - u64::from(variant),
            k: 2,
            features: vec![],
            centroids: vec![],
            inertia: 12.5,
            silhouette: Some(0.61),
            k_sweep: vec![],
            labels: BTreeMap::new(),
            evaluation: Some(Evaluation {
                ari: 0.8,
                nmi: 0.75,
                labelled: u64::from(n),
            }),
        },
        quality: Quality(vec![
            QualityCount {
                rule: "null_date".to_owned(),
                rows: 7,
            },
            QualityCount {
                rule: "null_amount".to_owned(),
                rows: 3,
            },
        ]),
    }
}

/// Count and a hash of every row of every report table: equal fingerprints
/// mean equal table contents.
fn fingerprint(url: &str) -> Vec<Vec<Option<String>>> {
    TABLES
        .iter()
        .flat_map(|t| {
            rows(url, &format!("SELECT '{t}', count(*), md5(string_agg(x::text, '|' ORDER BY x::text)) FROM {t} x"))
        })
        .collect()
}

fn load_ok(db: &TestDb, report: &Report) {
    let summary = load(report, &db.target(), &LoadOpts::default()).expect("load");
    assert_eq!(summary.rows, report.row_counts());
}

#[test]
fn tables_and_values_round_trip() {
    let db = TestDb::new();
    let r = report(50, 1);
    load_ok(&db, &r);
    let url = db.url();
    for (table, n) in r.row_counts() {
        assert_eq!(
            scalar(url, &format!("SELECT count(*) FROM {table}")),
            Some(n.to_string()),
            "{table}"
        );
    }
    // Money keeps exactly two decimals, rounded half away from zero.
    let q = |sql: &str| scalar(url, sql).expect(sql);
    assert_eq!(
        q("SELECT clv FROM customer_segments WHERE mobile = '919876500000'"),
        "1.30"
    );
    assert_eq!(
        q("SELECT avg_purchase_amount FROM customer_segments WHERE mobile = '919876500001'"),
        "101.00"
    );
    assert_eq!(
        q("SELECT total_spend FROM segment_metrics WHERE segment = 2"),
        "3000001.38"
    );
    let want: f64 = r
        .customers
        .iter()
        .map(|c| (c.clv * 100.0).round())
        .sum::<f64>()
        / 100.0;
    assert_eq!(
        q("SELECT sum(clv) FROM customer_segments"),
        format!("{want:.2}")
    );
    assert_eq!(
        q(
            "SELECT string_agg(DISTINCT numeric_scale::text || '/' || numeric_precision::text, ',') \
           FROM information_schema.columns WHERE table_schema = 'public' AND data_type = 'numeric' \
           AND column_name NOT IN ('seed', 'total_spend')"
        ),
        "2/14"
    );
    // NULLs stay NULL.
    assert_eq!(
        q("SELECT count(*) FROM customer_segments WHERE name IS NULL"),
        "8"
    );
    assert_eq!(
        q("SELECT count(*) FROM customer_segments WHERE age IS NULL"),
        "5"
    );
    assert_eq!(
        q("SELECT count(*) FROM customer_segments WHERE income IS NULL"),
        "6"
    );
    assert_eq!(
        q("SELECT count(*) FROM customer_segments WHERE gender IS NULL"),
        "12"
    );
    assert_eq!(
        q("SELECT count(*) FROM customer_behavior_metrics WHERE first_purchase IS NULL"),
        "5"
    );
    assert_eq!(
        q("SELECT income FROM customer_segments WHERE mobile = '919876500001'"),
        "30001.25"
    );
    // Dates are DATE; months are YYYY-MM text.
    assert_eq!(
        q("SELECT data_type FROM information_schema.columns WHERE column_name = 'last_purchase'"),
        "date"
    );
    assert_eq!(
        q(
            "SELECT first_purchase || ' ' || last_purchase FROM customer_behavior_metrics WHERE mobile = '919876500001'"
        ),
        "2026-01-27 2026-02-26"
    );
    assert_eq!(
        q(
            "SELECT string_agg(month, ',' ORDER BY month) FROM customer_purchase_trends WHERE mobile = '919876500003'"
        ),
        "2025-11,2025-12,2026-01"
    );
    assert_eq!(
        q("SELECT count(*) FROM customer_purchase_trends WHERE month !~ '^\\d{4}-\\d{2}$'"),
        "0"
    );
    assert_eq!(
        q(
            "SELECT string_agg(store || ':' || total_spent || ':' || visit_count, ',' ORDER BY store) \
           FROM customer_store_summary WHERE mobile = '919876500002'"
        ),
        "DMart:5.50:3,unknown:4.00:2"
    );
    assert_eq!(
        q("SELECT segment_label FROM customer_segments WHERE mobile = '919876500004'"),
        "regulars"
    );
    // The run is recorded.
    let run = &rows(
        url,
        "SELECT run_id, load_number, status, as_of, seed, k, silhouette, inertia, ari, nmi, \
                row_counts->>'customer_purchase_trends', data_quality->>'null_date', \
                started_at = '2026-03-01 12:00:00+00', finished_at > started_at \
         FROM pipeline_runs",
    )[0];
    let want: Vec<Option<String>> = [
        "run-1",
        "1",
        "succeeded",
        "2026-03-01",
        "18446744073709551614",
        "2",
        "0.61",
        "12.5",
        "0.8",
        "0.75",
        "150",
        "7",
        "t",
        "t",
    ]
    .iter()
    .map(|s| Some((*s).to_owned()))
    .collect();
    assert_eq!(run, &want);
    assert_eq!(
        q("SELECT string_agg(version || ':' || name, ',') FROM segpipe_schema_migrations"),
        "1:reporting_schema,2:honest_nulls_rfm_transitions"
    );
}

/// The swapped-in tables carry the same keys, under the same names, as the
/// migration created: guards `KEYS` in src/load/postgres.rs against drift.
#[test]
fn keys_after_load_match_the_migration() {
    let db = TestDb::new();
    let keys = |url: &str| {
        rows(
            url,
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint \
             WHERE connamespace = 'public'::regnamespace \
             AND conrelid::regclass::text <> 'segpipe_schema_migrations' ORDER BY 1, 2",
        )
    };
    // An empty report applies the migration and swaps in empty tables.
    let mut empty = report(0, 0);
    empty.segments.clear();
    load_ok(&db, &empty);
    let after_first = keys(db.url());
    let fresh = TestDb::new();
    for migration in [
        include_str!("../../migrations/postgres/V1__reporting_schema.sql"),
        include_str!("../../migrations/postgres/V2__honest_nulls_rfm_transitions.sql"),
    ] {
        try_exec(fresh.url(), migration).expect("migrate");
    }
    // The swap declares the month CHECK `NOT VALID` (src/load/staging.rs,
    // `DEFERRED_CHECKS`): the same check, not re-run on segpipe's rows.
    let migrated: Vec<Vec<Option<String>>> = keys(fresh.url())
        .into_iter()
        .map(|mut r| {
            if r[1].as_deref() == Some("customer_purchase_trends_month_check") {
                r[2] = r[2].take().map(|def| format!("{def} NOT VALID"));
            }
            r
        })
        .collect();
    assert!(
        migrated
            .iter()
            .any(|r| r[2].as_deref().is_some_and(|d| d.ends_with(") NOT VALID"))),
        "{migrated:?}"
    );
    assert_eq!(after_first, migrated);
    load_ok(&db, &report(20, 1));
    assert_eq!(keys(db.url()), after_first);
    let names: Vec<String> = after_first.iter().filter_map(|r| r[1].clone()).collect();
    assert!(
        names.contains(&"customer_segments_segment_fkey".to_owned()),
        "{names:?}"
    );
    assert!(names.iter().all(|n| !n.contains("__new")), "{names:?}");
    // What segpipe wrote passes the deferred CHECK when it is run.
    exec(
        db.url(),
        "ALTER TABLE customer_purchase_trends VALIDATE CONSTRAINT customer_purchase_trends_month_check",
    );
}

#[test]
fn loading_twice_keeps_the_rows_and_appends_a_run() {
    let db = TestDb::new();
    let r = report(50, 1);
    load_ok(&db, &r);
    let first = fingerprint(db.url());
    load_ok(&db, &r);
    assert_eq!(fingerprint(db.url()), first);
    assert_eq!(
        scalar(
            db.url(),
            "SELECT string_agg(run_id || '#' || load_number, ',' ORDER BY load_number) FROM pipeline_runs"
        ),
        Some("run-1#1,run-1-2#2".to_owned())
    );
}

#[test]
fn a_failed_load_leaves_the_previous_tables() {
    let db = TestDb::new();
    load_ok(&db, &report(50, 1));
    let before = fingerprint(db.url());
    let b = report(40, 2);
    for mode in [LoadMode::Swap, LoadMode::InPlace] {
        for table in TABLES {
            let opts = LoadOpts {
                mode,
                fail_after_table: Some(table.to_owned()),
                ..LoadOpts::default()
            };
            let err = load(&b, &db.target(), &opts).expect_err("injected failure");
            assert!(
                matches!(&err, Error::Injected { table: t } if t == table),
                "{err}"
            );
            assert_eq!(
                fingerprint(db.url()),
                before,
                "{mode:?}: after failing at {table}"
            );
        }
    }
    assert_eq!(
        scalar(db.url(), "SELECT count(*) FROM pipeline_runs"),
        Some("1".to_owned())
    );
    assert_eq!(
        scalar(
            db.url(),
            "SELECT count(*) FROM pg_tables WHERE tablename LIKE '%\\_\\_new'"
        ),
        Some("0".to_owned())
    );
    // And the next good load still works.
    load_ok(&db, &b);
    assert_ne!(fingerprint(db.url()), before);
}

#[test]
fn concurrent_loads_serialize() {
    let db = TestDb::new();
    let (a, b) = (report(300, 1), report(200, 2));
    let fp = |r: &Report| {
        let other = TestDb::new();
        load_ok(&other, r);
        fingerprint(other.url())
    };
    let (want_a, want_b) = (fp(&a), fp(&b));
    std::thread::scope(|s| {
        let ta = s.spawn(|| load(&a, &db.target(), &LoadOpts::default()));
        let tb = s.spawn(|| load(&b, &db.target(), &LoadOpts::default()));
        ta.join().expect("thread a").expect("load a");
        tb.join().expect("thread b").expect("load b");
    });
    let got = fingerprint(db.url());
    assert!(
        got == want_a || got == want_b,
        "final tables are a mix: {got:?}"
    );
    assert_eq!(
        scalar(db.url(), "SELECT count(*) FROM pipeline_runs"),
        Some("2".to_owned())
    );
}

#[test]
fn foreign_keys_hold() {
    let db = TestDb::new();
    let good = report(30, 1);
    load_ok(&db, &good);
    let before = fingerprint(db.url());
    // A customer in a segment that segment_metrics lacks: the load fails whole.
    let mut bad = report(30, 2);
    let mut rows = bad.customers.to_vec();
    rows[5].segment = 99;
    bad.customers = rows.into();
    let err = load(&bad, &db.target(), &LoadOpts::default()).expect_err("fk");
    let chain = segpipe::error::chain(&err);
    assert!(matches!(err, Error::Ddl { .. }), "{chain}");
    assert!(chain.contains("customer_segments_segment_fkey"), "{chain}");
    assert_eq!(fingerprint(db.url()), before);
    // The live tables reject orphans too.
    for sql in [
        "INSERT INTO customer_purchase_trends VALUES ('000', '2026-01', 1, 1)",
        "INSERT INTO customer_segments (mobile, clv, avg_purchase_amount, purchase_count, \
         days_since_last_purchase, purchase_frequency, segment, segment_label) VALUES ('1', 0, 0, 0, 0, 0, 42, 'x')",
        "DELETE FROM segment_metrics",
        "INSERT INTO customer_purchase_trends VALUES ('919876500001', '2026-13', 1, 1)",
    ] {
        assert!(try_exec(db.url(), sql).is_err(), "{sql}");
    }
}

#[test]
fn bad_values_name_table_and_row() {
    let db = TestDb::new();
    let mut r = report(10, 1);
    r.trends.to_mut().expect("in memory")[4].customer = CustomerIdx::from_index(999);
    let err = load(&r, &db.target(), &LoadOpts::default()).expect_err("dangling");
    assert_eq!(
        err.to_string(),
        "`customer_purchase_trends` row 4: customer index 999 out of range (10 customers)"
    );
    // The month CHECK is not re-run by PostgreSQL on a swap; segpipe
    // refuses the row itself, before anything is written.
    let mut r = report(10, 1);
    r.trends.to_mut().expect("in memory")[3].month = YearMonth {
        year: 10_000,
        month: 1,
    };
    for mode in [LoadMode::Swap, LoadMode::InPlace] {
        let err = load(&r, &db.target(), &opts(mode)).expect_err("five-digit year");
        assert_eq!(
            err.to_string(),
            "`customer_purchase_trends` row 3: `month` = 10000-01 is not a month `YYYY-MM`"
        );
    }
    let mut r = report(10, 1);
    let mut rows = r.customers.to_vec();
    rows[2].clv = f64::NAN;
    r.customers = rows.into();
    let err = load(&r, &db.target(), &LoadOpts::default()).expect_err("nan");
    assert_eq!(
        err.to_string(),
        "`customer_segments` row 2: `clv` is NaN, not money"
    );
    let mut r = report(10, 1);
    r.behavior.to_mut().expect("in memory")[0].total_spent = 1e13;
    let err = load(&r, &db.target(), &LoadOpts::default()).expect_err("overflow");
    assert!(
        matches!(
            err,
            Error::Copy {
                table: "customer_behavior_metrics",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        segpipe::error::chain(&err).contains("numeric field overflow"),
        "{}",
        segpipe::error::chain(&err)
    );
}

#[test]
fn connect_error_masks_the_password() {
    let url = segpipe::secret::DatabaseUrl::new("postgres://postgres:hunter2@127.0.0.1:1/nowhere");
    let err =
        load(&report(3, 1), &Target::Postgres(url), &LoadOpts::default()).expect_err("refused");
    let chain = segpipe::error::chain(&err);
    assert!(matches!(err, Error::Connect { .. }), "{chain}");
    assert!(
        chain.starts_with("cannot connect to `postgres://postgres:***@127.0.0.1:1/nowhere`"),
        "{chain}"
    );
    assert!(
        !chain.contains("hunter2") && !format!("{err:?}").contains("hunter2"),
        "{chain}"
    );
}

#[test]
fn an_edited_migration_is_refused() {
    let db = TestDb::new();
    load_ok(&db, &report(5, 1));
    try_exec(
        db.url(),
        "UPDATE segpipe_schema_migrations SET checksum = 'x' WHERE version = 1",
    )
    .expect("tamper");
    let err = load(&report(5, 2), &db.target(), &LoadOpts::default()).expect_err("checksum");
    assert!(matches!(err, Error::Migrate { version: 1, .. }), "{err}");
    assert!(err.to_string().contains("checksum mismatch"), "{err}");
}

// ------------------------------------------------------------ issue 8: readers and load modes

fn opts(mode: LoadMode) -> LoadOpts {
    LoadOpts {
        mode,
        ..LoadOpts::default()
    }
}

/// One open connection that keeps its transaction between calls: a reader
/// holding a snapshot or locks while a load runs.
struct Session {
    runtime: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
}

impl Session {
    fn new(url: &str) -> Session {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let client = runtime.block_on(async {
            let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .expect("connect reader");
            tokio::spawn(conn);
            client
        });
        Session { runtime, client }
    }

    /// First value of the last row `sql` returns, or the database error.
    fn try_query(&self, sql: &str) -> Result<Option<String>, String> {
        self.runtime.block_on(async {
            let messages = self
                .client
                .simple_query(sql)
                .await
                .map_err(|e| format!("{e:?}"))?;
            Ok(messages
                .into_iter()
                .filter_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
                    _ => None,
                })
                .last())
        })
    }

    fn query(&self, sql: &str) -> Option<String> {
        self.try_query(sql).unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

/// Poll `done` until it holds; panics after a minute (a hung test fails).
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting until {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Whether some session waits for a lock on `table` in `url`'s database.
fn someone_waits_for(url: &str, table: &str) -> bool {
    scalar(
        url,
        &format!(
            "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation \
             WHERE NOT l.granted AND c.relname = '{table}' \
             AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ),
    )
    .as_deref()
        != Some("0")
}

fn count(url: &str, table: &str) -> String {
    scalar(url, &format!("SELECT count(*) FROM {table}")).expect("count")
}

#[test]
fn issue_8_in_place_keeps_rows_visible_to_an_older_snapshot() {
    // See: issue 8
    let db = TestDb::new();
    load_ok(&db, &report(50, 1));
    let reader = Session::new(db.url());
    reader.query("BEGIN ISOLATION LEVEL REPEATABLE READ");
    // The snapshot is taken here, before the load; no report table touched.
    assert_eq!(
        reader
            .query("SELECT count(*) FROM pipeline_runs")
            .as_deref(),
        Some("1")
    );
    let b = report(40, 2);
    // In place, the load never waits for this reader.
    load(&b, &db.target(), &opts(LoadMode::InPlace)).expect("in-place load");
    for (table, n) in report(50, 1).row_counts() {
        assert_eq!(
            reader.query(&format!("SELECT count(*) FROM {table}")),
            Some(n.to_string()),
            "the older snapshot lost `{table}`"
        );
    }
    reader.query("COMMIT");
    for (table, n) in b.row_counts() {
        assert_eq!(count(db.url(), &table), n.to_string(), "{table}");
    }
}

/// A role that exists for one test, dropped (after the test's database,
/// which holds its grants) on drop.
struct Role(String);

impl Role {
    fn new() -> Role {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!("segpipe_reader_{}_{nanos}", std::process::id());
        exec(&pg_url(), &format!("CREATE ROLE {name}"));
        Role(name)
    }
}

impl Drop for Role {
    fn drop(&mut self) {
        let _ = try_exec(&pg_url(), &format!("DROP ROLE IF EXISTS {}", self.0));
    }
}

/// Every table- and column-level privilege on the report tables.
fn grants(url: &str) -> Vec<Vec<Option<String>>> {
    rows(
        url,
        "SELECT c.relname, '', a.grantee::regrole::text, a.privilege_type, a.is_grantable::text \
         FROM pg_class c, aclexplode(c.relacl) a \
         WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' \
         UNION ALL \
         SELECT c.relname, att.attname, a.grantee::regrole::text, a.privilege_type, a.is_grantable::text \
         FROM pg_class c JOIN pg_attribute att ON att.attrelid = c.oid, aclexplode(att.attacl) a \
         WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' \
         ORDER BY 1, 2, 3, 4",
    )
}

#[test]
fn issue_8_swap_carries_grants_over() {
    // See: issue 8
    let role = Role::new();
    let db = TestDb::new();
    load_ok(&db, &report(30, 1));
    let r = &role.0;
    exec(
        db.url(),
        &format!(
            "GRANT SELECT ON customer_segments, segment_metrics TO {r}; \
             GRANT SELECT, INSERT ON customer_store_summary TO {r} WITH GRANT OPTION; \
             GRANT SELECT (mobile, month) ON customer_purchase_trends TO {r}; \
             GRANT SELECT ON customer_behavior_metrics TO PUBLIC"
        ),
    );
    let before = grants(db.url());
    assert!(before.len() >= 6, "{before:?}");
    load(&report(20, 2), &db.target(), &opts(LoadMode::Swap)).expect("swap");
    assert_eq!(grants(db.url()), before);
    // And the role can still read what it was granted, and only that.
    let reader = Session::new(db.url());
    reader.query(&format!("SET ROLE {r}"));
    assert_eq!(
        reader
            .query("SELECT count(*) FROM customer_segments")
            .as_deref(),
        Some("20")
    );
    assert!(
        reader
            .try_query("SELECT total_spent FROM customer_purchase_trends LIMIT 1")
            .is_err()
    );
    assert_eq!(
        reader
            .query("SELECT count(mobile) FROM customer_purchase_trends")
            .as_deref(),
        Some("60")
    );
    drop(reader);
    drop(db);
}

#[test]
fn issue_8_a_view_stops_swap_by_name_and_in_place_keeps_it() {
    // See: issue 8
    let db = TestDb::new();
    load_ok(&db, &report(50, 1));
    exec(
        db.url(),
        "CREATE VIEW top_customers AS SELECT mobile, clv FROM customer_segments WHERE clv > 100",
    );
    let before = fingerprint(db.url());
    let b = report(40, 2);
    let err = load(&b, &db.target(), &opts(LoadMode::Swap)).expect_err("view");
    assert!(matches!(err, Error::DependentView { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.starts_with("view `top_customers` reads `customer_segments`:"),
        "{message}"
    );
    assert!(message.contains("`--load-mode in-place`"), "{message}");
    assert_eq!(fingerprint(db.url()), before);

    // The same through the binary: exit 1, one line; then in place it loads.
    let dir = Workdir::new();
    segpipe::checkpoint::write_report(&dir.join("report"), &b).expect("checkpoint");
    let (code, stderr) = fail(dir.run(&["load", "--input", "report", "--database-url", db.url()]));
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("view `top_customers`"), "{stderr}");
    assert_eq!(fingerprint(db.url()), before);
    ok(dir.run(&[
        "load",
        "--input",
        "report",
        "--database-url",
        db.url(),
        "--load-mode",
        "in-place",
    ]));
    assert_eq!(count(db.url(), "customer_segments"), "40");
    let want = b.customers.iter().filter(|c| c.clv > 100.0).count();
    assert_eq!(count(db.url(), "top_customers"), want.to_string());
}

#[test]
fn issue_8_a_two_table_reader_does_not_deadlock_the_swap() {
    // See: issue 8
    let db = TestDb::new();
    load_ok(&db, &report(50, 1));
    let reader = Session::new(db.url());
    reader.query("BEGIN");
    reader.query("SELECT count(*) FROM customer_purchase_trends");
    let b = report(40, 2);
    std::thread::scope(|s| {
        let loading = s.spawn(|| load(&b, &db.target(), &opts(LoadMode::Swap)));
        // The swap now waits for the reader's table...
        wait_until("the swap waits for the reader", || {
            someone_waits_for(db.url(), "customer_purchase_trends") || loading.is_finished()
        });
        // ...and the reader goes on to a second table without a deadlock.
        assert_eq!(
            reader.try_query("SELECT count(*) FROM segment_metrics"),
            Ok(Some("3".to_owned()))
        );
        reader.query("COMMIT");
        loading
            .join()
            .expect("load thread")
            .expect("the swap completes");
    });
    assert_eq!(count(db.url(), "customer_segments"), "40");
}

#[test]
fn issue_8_lock_wait_is_bounded_with_a_clear_error() {
    // See: issue 8
    let db = TestDb::new();
    load_ok(&db, &report(30, 1));
    let before = fingerprint(db.url());
    let b = report(20, 2);
    // What blocks each mode: any reader blocks the swap; in place only a
    // lock that conflicts with writers does.
    for (mode, hold) in [
        (
            LoadMode::Swap,
            "SELECT count(*) FROM customer_store_summary",
        ),
        (
            LoadMode::InPlace,
            "LOCK TABLE customer_store_summary IN SHARE MODE",
        ),
    ] {
        let holder = Session::new(db.url());
        holder.query("BEGIN");
        holder.query(hold);
        let opts = LoadOpts {
            mode,
            lock_timeout: Duration::from_millis(300),
            ..LoadOpts::default()
        };
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::scope(|s| {
            s.spawn(|| tx.send(load(&b, &db.target(), &opts)));
            // Without a bound the load would wait for the holder forever:
            // release it after a generous while so such a test fails, not hangs.
            let result = rx.recv_timeout(Duration::from_secs(30));
            holder.query("COMMIT");
            let result = result.or_else(|_| rx.recv()).expect("load result");
            let err = result.expect_err("the load must give up");
            assert!(matches!(err, Error::LockTimeout { .. }), "{mode:?}: {err}");
            let message = segpipe::error::chain(&err);
            assert!(
                message.starts_with("gave up after waiting 300 ms for a lock on the report tables")
                    && message.contains("`[load] lock_timeout_ms`"),
                "{mode:?}: {message}"
            );
        });
        assert_eq!(fingerprint(db.url()), before, "{mode:?}");
    }
}

#[test]
fn both_modes_give_the_same_tables() {
    let (swap, in_place) = (TestDb::new(), TestDb::new());
    for (db, mode) in [(&swap, LoadMode::Swap), (&in_place, LoadMode::InPlace)] {
        load(&report(30, 1), &db.target(), &opts(mode)).expect("first");
        load(&report(25, 2), &db.target(), &opts(mode)).expect("second");
    }
    assert_eq!(fingerprint(swap.url()), fingerprint(in_place.url()));
    assert_eq!(count(in_place.url(), "customer_segments"), "25");
}

// ------------------------------------------------------------ kill -9 mid-load

/// Whether a COPY runs in `url`'s database right now.
fn copy_running(url: &str) -> bool {
    scalar(
        url,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
         AND state = 'active' AND query ILIKE 'COPY %'",
    )
    .as_deref()
        != Some("0")
}

#[test]
fn issue_8_kill_9_during_copy_leaves_the_old_tables() {
    // See: issue 8 ("keep what held": atomicity against a killed process,
    // not only injected failures)
    let db = TestDb::new();
    load_ok(&db, &report(50, 1));
    let before = fingerprint(db.url());
    let dir = Workdir::new();
    // Big enough that COPY runs for a while (1.2M rows).
    let big = report(200_000, 2);
    segpipe::checkpoint::write_report(&dir.join("big"), &big).expect("checkpoint");
    for mode in ["swap", "in-place"] {
        let mut child = dir
            .segpipe()
            .args([
                "load",
                "--input",
                "big",
                "--database-url",
                db.url(),
                "--load-mode",
                mode,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn segpipe load");
        wait_until("COPY runs", || {
            if let Some(status) = child.try_wait().expect("try_wait") {
                panic!("{mode}: the load ended ({status}) before a COPY was seen");
            }
            copy_running(db.url())
        });
        child.kill().expect("SIGKILL");
        let status = child.wait().expect("wait");
        assert!(!status.success(), "{mode}: {status}");
        assert_eq!(fingerprint(db.url()), before, "{mode}: killed mid-COPY");
        assert_eq!(
            scalar(db.url(), "SELECT count(*) FROM pipeline_runs").as_deref(),
            Some("1")
        );
    }
    // The next load runs fine (it waits for the dead backends' locks to go).
    ok(dir.run(&["load", "--input", "big", "--database-url", db.url()]));
    assert_eq!(count(db.url(), "customer_segments"), "200000");
    assert_eq!(count(db.url(), "customer_purchase_trends"), "600000");
    assert_eq!(
        scalar(
            db.url(),
            "SELECT count(*) FROM pg_tables WHERE tablename LIKE '%\\_\\_new'"
        )
        .as_deref(),
        Some("0")
    );
}
