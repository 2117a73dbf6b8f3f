//! Sharded steps (issue 11, DESIGN §8): `extract --shard`, `features`, `fit`,
//! `assign` and a `load` of every directory give exactly `run`'s tables; a
//! damaged or missing shard file stops the step naming it.

use std::path::Path;

use crate::pg::{TestDb, rows};
use crate::util::{Workdir, fail, ok};

const AS_OF: &str = "2026-11-24";
const TABLES: [&str; 5] = [
    "segment_metrics",
    "customer_segments",
    "customer_behavior_metrics",
    "customer_store_summary",
    "customer_purchase_trends",
];

/// Every row of the report tables as text, sorted, per table.
fn tables(db: &Path) -> Vec<(String, Vec<String>)> {
    let conn = rusqlite::Connection::open(db).expect("open sqlite");
    TABLES
        .iter()
        .map(|t| {
            let mut stmt = conn.prepare(&format!("SELECT * FROM {t}")).expect("select");
            let width = stmt.column_count();
            let mut rows: Vec<String> = stmt
                .query_map([], |r| {
                    (0..width)
                        .map(|i| {
                            r.get::<_, rusqlite::types::Value>(i)
                                .map(|v| format!("{v:?}"))
                        })
                        .collect::<Result<Vec<_>, _>>()
                        .map(|v| v.join("|"))
                })
                .expect("query")
                .collect::<Result<_, _>>()
                .expect("rows");
            rows.sort();
            ((*t).to_owned(), rows)
        })
        .collect()
}

/// A customers file (with truth) and a purchases file with order ids, from
/// a small checkpointed run: real files, as a user would bring them.
fn inputs(customers: &str) -> Workdir {
    let w = Workdir::new();
    ok(w.run(&[
        "run",
        "--customers",
        customers,
        "--as-of",
        AS_OF,
        "--checkpoint-dir",
        "ck",
        "--database-url",
        "sqlite://seed.db",
        "--report",
        "none",
    ]));
    for f in ["customers.csv", "customers.truth.csv"] {
        std::fs::copy(w.join("ck/generate").join(f), w.join(f)).expect("copy");
    }
    let purchases = w
        .read("ck/extract/purchases_raw.csv")
        .replacen("order_key", "order_id", 1);
    w.write("purchases.csv", &purchases);
    w
}

/// Run `n` shards through the step subcommands into `db`.
fn sharded(w: &Workdir, n: u32, db: &str) {
    let mut fit: Vec<String> = vec!["fit".into()];
    for i in 0..n {
        let s = format!("s{i}");
        ok(w.run(&[
            "extract",
            "--customers",
            "customers.csv",
            "--purchases",
            "purchases.csv",
            "--out",
            &format!("{s}/extract"),
            "--shard",
            &format!("{i}/{n}"),
        ]));
        ok(w.run(&[
            "features",
            "--input",
            &format!("{s}/extract"),
            "--out",
            &format!("{s}/features"),
            "--as-of",
            AS_OF,
        ]));
        fit.extend(["--input".into(), format!("{s}/features")]);
    }
    fit.extend(["--out", "fit", "--as-of", AS_OF].map(String::from));
    ok(w.run(&fit.iter().map(String::as_str).collect::<Vec<_>>()));
    let mut load: Vec<String> = ["load", "--input", "fit", "--database-url", db]
        .map(String::from)
        .to_vec();
    for i in 0..n {
        let s = format!("s{i}");
        ok(w.run(&[
            "assign",
            "--model",
            "fit",
            "--input",
            &format!("{s}/features"),
            "--out",
            &format!("{s}/assign"),
            "--shard",
            &format!("{i}/{n}"),
        ]));
        load.extend([
            "--input".into(),
            format!("{s}/features"),
            "--input".into(),
            format!("{s}/assign"),
        ]);
    }
    ok(w.run(&load.iter().map(String::as_str).collect::<Vec<_>>()));
}

#[test]
fn four_shards_through_the_steps_give_runs_tables_row_for_row() {
    let w = inputs("3000");
    ok(w.run(&[
        "run",
        "--customers",
        "customers.csv",
        "--purchases",
        "purchases.csv",
        "--as-of",
        AS_OF,
        "--database-url",
        "sqlite://one.db",
        "--report",
        "none",
    ]));
    sharded(&w, 4, "sqlite://sharded.db");
    let (one, four) = (tables(&w.join("one.db")), tables(&w.join("sharded.db")));
    for ((name, a), (_, b)) in one.iter().zip(&four) {
        assert!(!a.is_empty(), "{name} is empty");
        assert_eq!(a.len(), b.len(), "{name}: row counts");
        assert!(a == b, "{name}: rows differ");
    }
    // Each shard holds only its customers: the shards' counts add up.
    let customers: usize = (0..4)
        .map(|i| {
            w.read(&format!("s{i}/extract/customers_clean.csv"))
                .lines()
                .count()
                - 1
        })
        .sum();
    assert_eq!(customers, one[1].1.len());
}

#[test]
fn a_truncated_or_foreign_shard_file_stops_fit_naming_it() {
    let w = inputs("200");
    sharded(&w, 2, "sqlite://sharded.db");
    let fit = |w: &Workdir| {
        fail(w.run(&[
            "fit",
            "--input",
            "s0/features",
            "--input",
            "s1/features",
            "--out",
            "fit2",
            "--as-of",
            AS_OF,
        ]))
    };
    // Truncated: half the bytes of shard 1's features.
    let path = w.join("s1/features/features.parquet");
    let bytes = std::fs::read(&path).expect("read");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).expect("truncate");
    let (code, err) = fit(&w);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("s1/features/features.parquet") && err.contains("truncated"),
        "{err}"
    );
    // Another schema: the fit's assignments where features belong.
    std::fs::copy(w.join("fit/assignments-1-of-2.parquet"), &path).expect("copy");
    let (code, err) = fit(&w);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("schema mismatch"), "{err}");
}

#[test]
fn a_missing_or_repeated_shard_is_refused_by_fit() {
    let w = inputs("200");
    sharded(&w, 2, "sqlite://sharded.db");
    let (code, err) = fail(w.run(&[
        "fit",
        "--input",
        "s0/features",
        "--out",
        "f",
        "--as-of",
        AS_OF,
    ]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("shard 1/2 is missing"), "{err}");
    let (code, err) = fail(w.run(&[
        "fit",
        "--input",
        "s0/features",
        "--input",
        "s0/features",
        "--out",
        "f",
        "--as-of",
        AS_OF,
    ]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("given twice"), "{err}");
    // assign checks the shard it is told against the file's.
    let (code, err) = fail(w.run(&[
        "assign",
        "--model",
        "fit",
        "--input",
        "s0/features",
        "--out",
        "a",
        "--shard",
        "1/2",
    ]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("holds shard 0/2, not --shard 1/2"), "{err}");
}

#[test]
fn a_load_missing_a_shard_fails_and_keeps_the_previous_tables() {
    let w = inputs("200");
    sharded(&w, 2, "sqlite://sharded.db");
    let before = tables(&w.join("sharded.db"));
    let (code, err) = fail(w.run(&[
        "load",
        "--input",
        "fit",
        "--input",
        "s0/features",
        "--input",
        "s0/assign",
        "--database-url",
        "sqlite://sharded.db",
    ]));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("every shard's features and assign directories"),
        "{err}"
    );
    assert_eq!(tables(&w.join("sharded.db")), before);
}

/// Each shard's store and trend rows are in key order, one shard's after
/// another's are not: the sharded load merges them, so PostgreSQL gets a
/// sorted heap (its key build is one pass, its foreign keys a merge).
#[test]
fn issue_11_sharded_load_copies_store_and_trend_rows_in_key_order() {
    let w = inputs("600");
    let db = TestDb::new();
    sharded(&w, 3, db.url());
    for (table, second) in [
        ("customer_store_summary", "store"),
        ("customer_purchase_trends", "month"),
    ] {
        // A fresh table's heap is the COPY's order.
        let keys: Vec<(String, String)> = rows(
            db.url(),
            &format!("SELECT mobile, {second} FROM {table} ORDER BY ctid"),
        )
        .into_iter()
        .map(|r| {
            let text = |i: usize| r[i].clone().unwrap_or_default();
            (text(0), text(1))
        })
        .collect();
        assert!(keys.len() > 600, "{table}: {} rows", keys.len());
        let disorder = keys.windows(2).position(|k| k[0] >= k[1]);
        assert_eq!(disorder, None, "{table} not copied in key order");
    }
}
