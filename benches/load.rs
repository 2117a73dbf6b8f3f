//! Load benchmark: a synthetic Report of `BENCH_CUSTOMERS` customers (default
//! 100,000; 10 trend rows and 3 store rows each, customers in input order,
//! not key order, as `transform` leaves them) loaded by `segpipe::load`:
//! - into SQLite: a fresh file, then replacing that full set;
//! - into PostgreSQL, each load mode (`swap`, `in-place`): replacing a full
//!   set in a fresh database;
//! - then (unless `BENCH_BASELINE=0`) the same rows exported as CSV and
//!   `\copy`-ed by psql into empty keyed tables: the bare-COPY baseline.
//!
//! Prints per-step times, rows/s and the ratio. `BENCH_ONLY=sqlite` or
//! `BENCH_ONLY=postgres` runs one sink.
//!
//! Run: `BENCH_CUSTOMERS=1000000 cargo bench --bench load`. The server is
//! `SEGPIPE_TEST_DATABASE_URL` (default postgres://postgres@127.0.0.1:5432/test).

use std::collections::BTreeMap;
use std::error::Error;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::{NaiveDate, TimeZone, Utc};
use segpipe::load::{LoadMode, LoadOpts, LoadSummary, Target, load};
use segpipe::model::{
    CustomerBehavior, CustomerIdx, CustomerSegment, Gender, PurchaseTrend, Quality, Report,
    SegmentMetrics, SegmentModel, StoreSummary, YearMonth,
};
use segpipe::secret::DatabaseUrl;
use tokio_postgres::NoTls;

type Res<T> = Result<T, Box<dyn Error>>;

const TABLES: [(&str, &str); 5] = [
    (
        "segment_metrics",
        "segment, segment_label, num_customers, total_spend, avg_clv, avg_age, avg_income, avg_purchase_count, \
         avg_days_since_last_purchase, avg_purchase_frequency, share_of_customers, share_of_spend",
    ),
    (
        "customer_segments",
        "mobile, name, age, income, gender, clv, avg_purchase_amount, purchase_count, days_since_last_purchase, \
         purchase_frequency, segment, segment_label",
    ),
    (
        "customer_behavior_metrics",
        "mobile, total_spent, avg_transaction_value, max_purchase_amount, min_purchase_amount, purchase_count, \
         first_purchase, last_purchase, days_since_first_purchase, days_since_last_purchase",
    ),
    (
        "customer_store_summary",
        "mobile, store, total_spent, visit_count",
    ),
    (
        "customer_purchase_trends",
        "mobile, month, total_spent, num_purchases",
    ),
];

/// Cheap deterministic pseudo-random numbers (splitmix64).
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn money(seed: u64) -> f64 {
    (mix(seed) % 500_000) as f64 / 100.0
}

fn synthetic(n: u32) -> Report {
    let k = 5u32;
    let as_of = NaiveDate::from_ymd_opt(2026, 3, 1).expect("valid date");
    let mut customers = Vec::with_capacity(n as usize);
    let mut behavior = Vec::with_capacity(n as usize);
    let mut stores = Vec::with_capacity(n as usize * 3);
    let mut trends = Vec::with_capacity(n as usize * 10);
    for i in 0..n {
        let r = mix(u64::from(i));
        let segment = (r % u64::from(k)) as u32;
        let count = (r >> 8) as u32 % 40 + 1;
        let recency = ((r >> 16) % 700) as i32;
        customers.push(CustomerSegment {
            // A bijection of 0..10^10 (the factor is prime to 10): unique
            // mobiles in no particular order, as in a real customers file.
            mobile: format!(
                "91{:010}",
                (u64::from(i) * 7_919_813 + 1_234_567) % 10_000_000_000
            ),
            name: (i % 20 != 0).then(|| format!("Customer Number {i}")),
            age: (i % 10 != 0).then_some(18 + (r >> 24) as u16 % 60),
            income: Some(money(r ^ 1) * 20.0),
            gender: Some([Gender::Male, Gender::Female, Gender::Other][(r >> 32) as usize % 3]),
            clv: money(r ^ 2) * 4.0,
            avg_purchase_amount: Some(money(r ^ 3)),
            purchase_count: count,
            days_since_last_purchase: Some(recency),
            purchase_frequency: Some(f64::from(count) / 24.0),
            segment,
            segment_label: format!("segment {segment}"),
            r_score: Some((r % 5) as u8 + 1),
            f_score: Some((r >> 3) as u8 % 5 + 1),
            m_score: Some((r >> 6) as u8 % 5 + 1),
        });
        let last = as_of - chrono::Days::new(recency as u64);
        behavior.push(CustomerBehavior {
            customer: CustomerIdx::from_index(i as usize),
            total_spent: money(r ^ 2) * 4.0,
            avg_transaction_value: Some(money(r ^ 3)),
            max_purchase_amount: Some(money(r ^ 4)),
            min_purchase_amount: Some(money(r ^ 5) / 10.0),
            purchase_count: count,
            first_purchase: Some(last - chrono::Days::new(60)),
            last_purchase: Some(last),
            days_since_first_purchase: Some(recency + 60),
            days_since_last_purchase: Some(recency),
        });
        for s in 0..3 {
            stores.push(StoreSummary {
                customer: CustomerIdx::from_index(i as usize),
                store: (i + s) % 8,
                total_spent: money(r ^ (10 + u64::from(s))),
                visit_count: s + 1,
            });
        }
        for m in 0..10u32 {
            let month = YearMonth {
                year: 2025,
                month: 1 + m,
            };
            trends.push(PurchaseTrend {
                customer: CustomerIdx::from_index(i as usize),
                month,
                total_spent: money(r ^ (20 + u64::from(m))),
                num_purchases: m % 4 + 1,
            });
        }
    }
    let segments = (0..k)
        .map(|s| SegmentMetrics {
            segment: s,
            segment_label: format!("segment {s}"),
            num_customers: u64::from(n / k),
            total_spend: 1.0e9,
            avg_clv: 1234.5,
            avg_age: Some(40.0),
            avg_income: Some(50_000.0),
            avg_purchase_count: 20.0,
            avg_days_since_last_purchase: Some(300.0),
            avg_purchase_frequency: Some(0.8),
            share_of_customers: 0.2,
            share_of_spend: 0.2,
        })
        .collect();
    Report {
        customers: customers.into(),
        behavior: behavior.into(),
        segments,
        store_names: [
            "DMart",
            "Big Bazaar",
            "Reliance Fresh",
            "More",
            "Spencer's",
            "Star Bazaar",
            "Nature's Basket",
            "unknown",
        ]
        .map(str::to_owned)
        .to_vec(),
        stores: stores.into(),
        trends: trends.into(),
        transitions: Vec::new(),
        model: SegmentModel {
            version: segpipe::model::MODEL_VERSION,
            method: segpipe::model::Method::Kmeans,
            holdout: None,
            run_id: "bench".to_owned(),
            started_at: Utc
                .with_ymd_and_hms(2026, 3, 1, 0, 0, 0)
                .single()
                .expect("valid time"),
            as_of,
            seed: 42,
            k,
            features: vec![],
            centroids: vec![],
            inertia: 1.0,
            silhouette: Some(0.5),
            k_sweep: vec![],
            labels: BTreeMap::new(),
            evaluation: None,
        },
        quality: Quality::default(),
    }
}

fn with_database(url: &str, db: &str) -> String {
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    match url[scheme_end..].find('/') {
        Some(slash) => format!("{}/{db}", &url[..scheme_end + slash]),
        None => format!("{url}/{db}"),
    }
}

fn admin(url: &str, sql: &str) -> Res<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(url, NoTls).await?;
        tokio::spawn(conn);
        client.batch_execute(sql).await?;
        Ok(())
    })
}

fn fresh_db(server: &str, name: &str) -> Res<String> {
    // Separate statements: a multi-statement string runs as one transaction,
    // which DROP/CREATE DATABASE refuse.
    admin(
        server,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    )?;
    admin(server, &format!("CREATE DATABASE {name}"))?;
    Ok(with_database(server, name))
}

fn psql(url: &str, script: &str) -> Res<Duration> {
    let started = Instant::now();
    let out = Command::new("psql")
        .args([url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", script])
        .output()?;
    if !out.status.success() {
        return Err(format!("psql failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(started.elapsed())
}

/// psql `\copy` of every CSV into empty tables of the V1 schema, one
/// `\copy` per table in one session; `with_fks` keeps the foreign keys.
fn bare_copy(server: &str, dir: &Path, with_fks: bool) -> Res<(Duration, Vec<(String, Duration)>)> {
    let url = fresh_db(server, "segpipe_bench_copy")?;
    admin(
        &url,
        include_str!("../migrations/postgres/V1__reporting_schema.sql"),
    )?;
    if !with_fks {
        admin(
            &url,
            "ALTER TABLE customer_segments DROP CONSTRAINT customer_segments_segment_fkey; \
             ALTER TABLE customer_behavior_metrics DROP CONSTRAINT customer_behavior_metrics_mobile_fkey; \
             ALTER TABLE customer_store_summary DROP CONSTRAINT customer_store_summary_mobile_fkey; \
             ALTER TABLE customer_purchase_trends DROP CONSTRAINT customer_purchase_trends_mobile_fkey;",
        )?;
    }
    let mut per_table = Vec::new();
    let mut total = Duration::ZERO;
    for (table, cols) in TABLES {
        let file = dir.join(format!("{table}.csv"));
        let d = psql(
            &url,
            &format!(
                "\\copy {table} ({cols}) FROM '{}' WITH (FORMAT csv, HEADER true)",
                file.display()
            ),
        )?;
        total += d;
        per_table.push((table.to_owned(), d));
    }
    admin(
        server,
        "DROP DATABASE IF EXISTS segpipe_bench_copy WITH (FORCE)",
    )?;
    Ok((total, per_table))
}

/// Print a load's total and per-step times.
fn print_load(
    what: &str,
    summary: &LoadSummary,
    (took, cpu): (Duration, Duration),
    counts: &BTreeMap<String, u64>,
) {
    let total_rows: u64 = counts.values().sum();
    println!(
        "\n{what}: total {:.2}s, {:.0} rows/s, CPU {:.2}s",
        took.as_secs_f64(),
        total_rows as f64 / took.as_secs_f64(),
        cpu.as_secs_f64()
    );
    for (step, d) in &summary.timings {
        match counts.get(step) {
            Some(rows) => println!(
                "  {step:<28} {rows:>10} rows {:>7.2}s {:>10.0} rows/s",
                d.as_secs_f64(),
                *rows as f64 / d.as_secs_f64().max(1e-9)
            ),
            None => println!("  {step:<28} {:>15} {:>7.2}s", "", d.as_secs_f64()),
        }
    }
}

/// This process's CPU time so far (user + system, `/proc/self/stat`, in
/// clock ticks of 10 ms): on a shared machine the wall time of a load
/// swings with the neighbours' work, its CPU time much less.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name: state is field 3,
    // utime 14 and stime 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ').skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((user + system) * 10))
}

/// A load's summary, wall time and CPU time (zero where /proc is missing).
fn timed_load(
    report: &Report,
    target: &Target,
    opts: &LoadOpts,
) -> Res<(LoadSummary, Duration, Duration)> {
    let (started, cpu) = (Instant::now(), cpu_time());
    let summary = load(report, target, opts)?;
    let took = started.elapsed();
    let cpu = match (cpu, cpu_time()) {
        (Some(before), Some(after)) => after.saturating_sub(before),
        _ => Duration::ZERO,
    };
    Ok((summary, took, cpu))
}

fn main() -> Res<()> {
    let n: u32 = std::env::var("BENCH_CUSTOMERS")
        .ok()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(100_000);
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let baseline = std::env::var("BENCH_BASELINE").map_or(true, |v| v != "0");
    let server = std::env::var("SEGPIPE_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let started = Instant::now();
    let report = synthetic(n);
    let counts = report.row_counts();
    let total_rows: u64 = counts.values().sum();
    println!(
        "synthetic report: {n} customers, {total_rows} rows, built in {:.2?}",
        started.elapsed()
    );

    if only != "postgres" {
        let dir = tempfile::tempdir()?;
        let target = Target::Sqlite(dir.path().join("segpipe.db"));
        let (summary, took, cpu) = timed_load(&report, &target, &LoadOpts::default())?;
        print_load("SQLite, fresh file", &summary, (took, cpu), &counts);
        let (summary, took, cpu) = timed_load(&report, &target, &LoadOpts::default())?;
        print_load(
            "SQLite, replacing a full set",
            &summary,
            (took, cpu),
            &counts,
        );
        let size = std::fs::metadata(dir.path().join("segpipe.db"))?.len();
        println!("  file size {:.0} MiB", size as f64 / 1048576.0);
    }
    if only == "sqlite" {
        return Ok(());
    }

    let mut swap_time = Duration::ZERO;
    for mode in [LoadMode::Swap, LoadMode::InPlace] {
        let url = fresh_db(&server, "segpipe_bench_load")?;
        let target = Target::Postgres(DatabaseUrl::new(url));
        let opts = LoadOpts {
            mode,
            ..LoadOpts::default()
        };
        // Warm-up load (creates the schema), then the measured replace of a full set.
        load(&report, &target, &opts)?;
        let (summary, took, cpu) = timed_load(&report, &target, &opts)?;
        print_load(
            &format!(
                "PostgreSQL --load-mode {} (replacing a full set)",
                mode.as_str()
            ),
            &summary,
            (took, cpu),
            &counts,
        );
        if mode == LoadMode::Swap {
            swap_time = took;
        }
        admin(
            &server,
            "DROP DATABASE IF EXISTS segpipe_bench_load WITH (FORCE)",
        )?;
    }
    if !baseline {
        return Ok(());
    }
    let load_time = swap_time;

    let dir = tempfile::tempdir()?;
    let started = Instant::now();
    // The same CSVs `segpipe transform` writes; they carry a header line.
    segpipe::checkpoint::write_report(dir.path(), &report)?;
    println!("\nCSV export {:.2?}", started.elapsed());
    for with_fks in [false, true] {
        let (bare, per_table) = bare_copy(&server, dir.path(), with_fks)?;
        let what = if with_fks {
            "primary + foreign keys"
        } else {
            "primary keys only"
        };
        println!(
            "\npsql \\copy into empty tables with {what}: total {:.2}s, {:.0} rows/s",
            bare.as_secs_f64(),
            total_rows as f64 / bare.as_secs_f64()
        );
        for (table, d) in &per_table {
            let rows = counts.get(table).copied().unwrap_or(0);
            println!(
                "  {table:<28} {rows:>10} rows {:>7.2}s {:>10.0} rows/s",
                d.as_secs_f64(),
                rows as f64 / d.as_secs_f64().max(1e-9)
            );
        }
        println!(
            "  ratio swap load / bare COPY ({what}): {:.2}",
            load_time.as_secs_f64() / bare.as_secs_f64()
        );
    }
    Ok(())
}
