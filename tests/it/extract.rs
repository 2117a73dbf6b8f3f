//! `segpipe extract` against hand-made files and a hand-written server.

use std::collections::BTreeMap;

use crate::strict_server::{StrictServer, purchase_count};
use crate::util::{Workdir, fail, ok};

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn csv_rows(text: &str) -> Vec<Vec<String>> {
    let mut r = csv::Reader::from_reader(text.as_bytes());
    r.records()
        .map(|x| x.expect("csv row").iter().map(str::to_owned).collect())
        .collect()
}

#[test]
fn messy_file_against_a_strict_server() {
    let w = Workdir::new();
    let server = StrictServer::start();
    let out = ok(w.run(&[
        "extract",
        "--customers",
        &fixture("customers_messy.csv"),
        "--api-url",
        &server.url(),
        "--out",
        "x",
    ]));
    assert!(
        out.starts_with("read 12 rows: 5 customers, 6 rejected, 1 duplicates dropped;"),
        "{out}"
    );

    let customers = csv_rows(&w.read("x/customers_clean.csv"));
    let mobiles: Vec<&str> = customers.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(
        mobiles,
        [
            "919876543210",
            "919876543211",
            "919876543212",
            "919876543213",
            "919876543217"
        ]
    );
    // mobile,name,age,income,gender: nulls stay empty, numbers are parsed.
    assert_eq!(
        customers[0],
        ["919876543210", "Asha Rao", "34", "55000", "female"]
    );
    assert_eq!(customers[3], ["919876543213", "", "", "", "female"]);
    assert_eq!(
        customers[4],
        ["919876543217", "Quoted, Name", "29", "38000", "male"]
    );

    let rejects = w.read("x/rejects_customers.csv");
    let rejects = csv_rows(&rejects);
    let got: Vec<(&str, &str)> = rejects
        .iter()
        .map(|r| (r[0].as_str(), r[1].as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("7", "invalid mobile: 5 digits, expected 10 to 15: `12345`"),
            (
                "8",
                "invalid mobile: unexpected character `O`: `+91987654321O`"
            ),
            ("9", "unknown gender `Robot`"),
            ("10", "unparseable income `lots`"),
            ("11", "unparseable age `abc`"),
            ("12", "missing mobile"),
        ]
    );
    // The original fields follow line and reason, under the original header.
    assert!(
        w.read("x/rejects_customers.csv")
            .starts_with("line,reason,Customer_ID,MOBILE,Gender,Income,Age,Name,signup_channel\n")
    );
    assert_eq!(
        rejects[0][2..],
        ["6", "12345", "Male", "40000", "30", "Too Short", "web"]
    );

    // Every purchase joined although the server echoes another mobile format.
    let purchases = csv_rows(&w.read("x/purchases_raw.csv"));
    let want: usize = mobiles.iter().map(|m| purchase_count(m)).sum();
    assert_eq!(purchases.len(), want);
    let mut per_mobile: BTreeMap<&str, usize> = BTreeMap::new();
    for p in &purchases {
        *per_mobile.entry(p[0].as_str()).or_default() += 1;
    }
    for m in &mobiles {
        assert_eq!(per_mobile.get(m).copied(), Some(purchase_count(m)), "{m}");
    }
}

#[test]
fn a_413_splits_batches_until_the_server_accepts_them() {
    let w = Workdir::new();
    ok(w.run(&["generate", "--customers", "450", "--out", "c.csv"]));
    let server = StrictServer::start();
    ok(w.run(&[
        "extract",
        "--customers",
        "c.csv",
        "--api-url",
        &server.url(),
        "--out",
        "x",
        "--batch-size",
        "1000",
    ]));
    let customers = csv_rows(&w.read("x/customers_clean.csv"));
    let purchases = csv_rows(&w.read("x/purchases_raw.csv"));
    let want: usize = customers.iter().map(|c| purchase_count(&c[0])).sum();
    assert!(customers.len() > 400);
    assert_eq!(purchases.len(), want);
    // 1000 → 413 → halves until ≤ 100: more requests than batches.
    assert!(server.requests.load(std::sync::atomic::Ordering::SeqCst) >= 8);
}

#[test]
fn structural_errors_exit_2_naming_file_and_line() {
    let w = Workdir::new();
    let server = StrictServer::start();
    let url = server.url();
    let cases = [
        (
            fixture("customers_no_mobile.csv"),
            ":1: missing required column `mobile` (header: name,age,income,gender)",
        ),
        (fixture("customers_not_utf8.csv"), ":3: not valid UTF-8"),
    ];
    for (path, want) in cases {
        let (code, err) = fail(w.run(&[
            "extract",
            "--customers",
            &path,
            "--api-url",
            &url,
            "--out",
            "x",
        ]));
        assert_eq!(code, 2, "{err}");
        assert_eq!(err, format!("error: {path}{want}\n"));
    }
    w.write("empty.csv", "");
    let (code, err) = fail(w.run(&[
        "extract",
        "--customers",
        "empty.csv",
        "--api-url",
        &url,
        "--out",
        "x",
    ]));
    assert_eq!(
        (code, err.as_str()),
        (2, "error: empty.csv:1: no header row\n")
    );
    let (code, err) = fail(w.run(&[
        "extract",
        "--customers",
        "missing.csv",
        "--api-url",
        &url,
        "--out",
        "x",
    ]));
    assert_eq!(code, 2);
    assert!(
        err.starts_with("error: cannot open `missing.csv`: "),
        "{err}"
    );
}

#[test]
fn an_unreachable_api_fails_with_exit_1_naming_the_batch() {
    let w = Workdir::new();
    let port = crate::util::closed_port();
    let url = format!("http://127.0.0.1:{port}");
    let out = w
        .segpipe()
        .args([
            "extract",
            "--customers",
            &fixture("customers_messy.csv"),
            "--api-url",
            &url,
            "--out",
            "x",
            "--max-attempts",
            "2",
        ])
        .output()
        .expect("spawn");
    let (code, err) = fail(out);
    assert_eq!(code, 1, "{err}");
    // Retry warnings come first; the error is one last line.
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with(&format!("error: batch 0 (5 mobiles from `+919876543210`) failed after 2 attempts at {url}/purchase-history: request failed")),
        "{err}"
    );
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{err}"
    );
    // Rejects are kept even though the fetch failed; no purchases were written.
    assert!(w.join("x/rejects_customers.csv").exists());
    assert!(!w.join("x/purchases_raw.csv").exists());
}
