//! Extract and run against an upstream that breaks the contract: every
//! failure must be loud, counted truthfully, and must never replace good
//! tables.

use crate::hostile_upstream::{Answer, Hostile, ok_body};
use crate::pg::{self, TestDb};
use crate::util::{Workdir, fail, ok};

const CUSTOMERS: &str = "name,age,income,mobile,gender\n\
                         Asha,34,55000,+919876543210,female\n\
                         Ravi,41,72000,+919876543211,male\n";

/// `segpipe extract` of `CUSTOMERS` against `url`, into `x/`.
fn extract_command(w: &Workdir, url: &str) -> std::process::Command {
    w.write("customers.csv", CUSTOMERS);
    let mut cmd = w.segpipe();
    cmd.args([
        "extract",
        "--customers",
        "customers.csv",
        "--api-url",
        url,
        "--out",
        "x",
    ]);
    cmd
}

fn extract(w: &Workdir, url: &str, extra: &[&str]) -> std::process::Output {
    extract_command(w, url)
        .args(extra)
        .output()
        .expect("spawn extract")
}

// See: issue 7
#[test]
fn issue_7_a_bad_200_is_retried_inside_the_retry_loop() {
    let w = Workdir::new();
    let server = Hostile::start(vec![
        ok_body(r#"{"purchases": [{"mobile": "+9198"#),
        Answer::Good,
    ]);
    let out = ok(extract(&w, &server.url(), &[]));
    assert!(out.contains("; 4 purchases;"), "{out}");
    assert_eq!(server.posts.load(std::sync::atomic::Ordering::SeqCst), 2);
}

// See: issue 8
#[test]
fn issue_8_a_200_that_is_not_the_contract_fails_with_the_true_attempt_count() {
    for body in [
        r#"{"purchases": [{"mobile": "+9198"#,
        "<html>\n<body>\n<h1>Maintenance</h1>\n</body>\n</html>",
        r#"{"purchases": null}"#,
        r#"{"purchases": [{"mobile": "+919876543210", "amount": "12.5"}]}"#,
        r#"{"data": []}"#,
    ] {
        let w = Workdir::new();
        let server = Hostile::start(vec![ok_body(body)]);
        let (code, stderr) = fail(extract(&w, &server.url(), &["--max-attempts", "3"]));
        assert_eq!(code, 1, "{body}: {stderr}");
        let errors: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("error: "))
            .collect();
        assert_eq!(errors.len(), 1, "{stderr}");
        let err = errors[0];
        assert!(
            err.starts_with(&format!(
                "error: batch 0 (2 mobiles from `+919876543210`) failed after 3 attempts at {}/purchase-history: HTTP 200 but the body is not the purchase-history JSON: ",
                server.url()
            )),
            "{body}: {err}"
        );
        assert_eq!(server.posts.load(std::sync::atomic::Ordering::SeqCst), 3);
        assert!(!w.join("x/purchases_raw.csv").exists());
    }
}

fn moved() -> Answer {
    Answer::Raw(
        301,
        vec![("Location".to_owned(), "/moved".to_owned())],
        String::new(),
    )
}

// See: issue 8
#[test]
fn issue_8_a_redirected_post_fails_naming_batch_and_location() {
    let w = Workdir::new();
    let server = Hostile::start(vec![moved()]);
    let (code, err) = fail(extract(&w, &server.url(), &[]));
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        err,
        format!(
            "error: batch 0 (2 mobiles from `+919876543210`) failed after 1 attempts at {}/purchase-history: HTTP 301 redirect to `/moved`, not followed for a POST\n",
            server.url()
        )
    );
    assert_eq!(server.posts.load(std::sync::atomic::Ordering::SeqCst), 1);
}

/// A database holding a good run's tables, and those tables' rows.
fn good_postgres_tables() -> (TestDb, Workdir, Vec<Vec<Option<String>>>) {
    let db = TestDb::new();
    let w = Workdir::new();
    ok(w.run(&[
        "run",
        "--customers",
        "300",
        "--as-of",
        "2026-11-24",
        "--database-url",
        db.url(),
    ]));
    let before = segments(&db);
    (db, w, before)
}

fn segments(db: &TestDb) -> Vec<Vec<Option<String>>> {
    pg::rows(
        db.url(),
        "SELECT mobile, clv, segment FROM customer_segments ORDER BY mobile",
    )
}

// See: issue 8
#[test]
fn issue_8_a_redirecting_upstream_never_replaces_good_postgres_tables() {
    let (db, w, before) = good_postgres_tables();
    let bad = Hostile::start(vec![moved()]);
    let (code, err) = fail(w.run(&[
        "run",
        "--customers",
        "300",
        "--as-of",
        "2026-11-24",
        "--api-url",
        &bad.url(),
        "--database-url",
        db.url(),
    ]));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("redirect to `/moved`"), "{err}");
    assert_eq!(segments(&db), before);
}

// See: issue 8
#[test]
fn issue_8_a_silent_upstream_fails_at_the_batch_deadline() {
    let w = Workdir::new();
    let server = Hostile::start(vec![Answer::Silent]);
    let out = extract_command(&w, &server.url())
        .env("SEGPIPE_EXTRACT_BATCH_DEADLINE_MS", "1500")
        .output()
        .expect("spawn extract");
    let (code, err) = fail(out);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.starts_with("error: batch 0 (2 mobiles from `+919876543210`) failed after 1 attempts"),
        "{err}"
    );
    assert!(
        err.contains("timeout") || err.contains("timed out"),
        "{err}"
    );
}

// See: issue 12
#[test]
fn issue_12_retry_warnings_name_batch_status_and_attempt() {
    let w = Workdir::new();
    let server = Hostile::start(vec![
        Answer::Raw(503, Vec::new(), "<html>\n<h1>down</h1>\n</html>".to_owned()),
        Answer::Good,
    ]);
    let out = extract_command(&w, &server.url())
        .output()
        .expect("spawn extract");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    ok(out);
    let warning = err
        .lines()
        .find(|l| l.contains("Retrying batch 0"))
        .unwrap_or_else(|| panic!("no retry warning in {err}"));
    assert!(
        warning.contains("Retrying batch 0: attempt 1 of 8 failed (HTTP 503), next try in"),
        "{warning}"
    );
    assert!(!err.contains("<h1>down</h1>\n"), "{err}");
}

// See: issue 8
#[test]
fn issue_8_an_upstream_answering_no_purchases_for_everyone_trips_the_gate() {
    let (db, w, before) = good_postgres_tables();
    let empty = Hostile::start(vec![ok_body(r#"{"purchases": []}"#)]);
    let (code, err) = fail(w.run(&[
        "run",
        "--customers",
        "300",
        "--as-of",
        "2026-11-24",
        "--api-url",
        &empty.url(),
        "--database-url",
        db.url(),
    ]));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(
            "data-quality gate `max_no_purchases` tripped: 100.0% is over the 90.0% allowed"
        ),
        "{err}"
    );
    assert_eq!(segments(&db), before);
}
