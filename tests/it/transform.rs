//! `transform` and `run` with saved models, RFM segments and holdout
//! validation, through the real binary.

use crate::util::{Workdir, fail, ok};

const AS_OF: &str = "2026-11-24";

/// `run` 2,000 customers with checkpoints under `ck`, plus `extra` flags.
fn run_with_checkpoints(w: &Workdir, extra: &[&str]) -> String {
    let mut args = vec![
        "run",
        "--customers",
        "2000",
        "--as-of",
        AS_OF,
        "--checkpoint-dir",
        "ck",
        "--database-url",
        "sqlite://segpipe.db",
    ];
    args.extend_from_slice(extra);
    ok(w.run(&args))
}

fn transform(w: &Workdir, out: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "transform",
        "--input",
        "ck/extract",
        "--out",
        out,
        "--as-of",
        AS_OF,
    ];
    args.extend_from_slice(extra);
    w.run(&args)
}

#[test]
fn a_saved_model_reproduces_the_segments_and_a_misfit_model_exits_2() {
    let w = Workdir::new();
    run_with_checkpoints(&w, &[]);
    let model = "ck/transform/segment_model.json";
    // Another seed would refit differently; with --model nothing is fitted.
    ok(transform(&w, "applied", &["--model", model, "--seed", "9"]));
    assert_eq!(
        w.read("applied/customer_segments.csv"),
        w.read("ck/transform/customer_segments.csv")
    );
    assert_eq!(
        w.read("applied/segment_metrics.csv"),
        w.read("ck/transform/segment_metrics.csv")
    );

    let json = w.read(model).replace("\"version\": 1", "\"version\": 7");
    w.write("future.json", &json);
    let (code, stderr) = fail(transform(&w, "x", &["--model", "future.json"]));
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(
        stderr.trim(),
        "error: model `future.json` does not fit: model version 7, this segpipe reads version 1"
    );
    w.write("garbage.json", "{\"k\": 3}");
    let (code, stderr) = fail(transform(&w, "x", &["--model", "garbage.json"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.starts_with("error: `garbage.json` is not a segment model: missing field"),
        "{stderr}"
    );
}

#[test]
fn previous_model_keeps_ids_and_writes_the_transitions() {
    let w = Workdir::new();
    run_with_checkpoints(&w, &[]);
    let out = ok(transform(
        &w,
        "refit",
        &[
            "--previous-model",
            "ck/transform/segment_model.json",
            "--seed",
            "7",
        ],
    ));
    assert!(
        out.contains("since the previous model: "),
        "the summary prints the moves:\n{out}"
    );
    let before = w.read("ck/transform/segment_metrics.csv");
    let after = w.read("refit/segment_metrics.csv");
    let ids_labels = |csv: &str| -> Vec<String> {
        csv.lines()
            .map(|l| l.split(',').take(2).collect::<Vec<_>>().join(","))
            .collect()
    };
    assert_eq!(ids_labels(&after), ids_labels(&before));
    let transitions = w.read("refit/segment_transitions.csv");
    let rows = transitions.lines().count() - 1;
    assert!(rows > 0, "{transitions}");
    // And they load.
    ok(w.run(&[
        "load",
        "--input",
        "refit",
        "--database-url",
        "sqlite://t.db",
    ]));
    let db = rusqlite::Connection::open(w.join("t.db")).expect("open sqlite");
    let (n, customers): (i64, i64) = db
        .query_row(
            "SELECT count(*), sum(customers) FROM segment_transitions",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("query");
    let valid: i64 = db
        .query_row("SELECT count(*) FROM customer_segments", [], |r| r.get(0))
        .expect("query");
    assert_eq!((n as usize, customers), (rows, valid));
}

#[test]
fn run_with_rfm_and_holdout_prints_the_named_segments_and_the_holdout() {
    let w = Workdir::new();
    let out = run_with_checkpoints(&w, &["--method", "rfm", "--holdout-from", "2026-08-24"]);
    assert!(out.contains("named RFM segments"), "{out}");
    assert!(out.contains("champions"), "{out}");
    assert!(
        out.contains("holdout 2026-08-24 to 2026-11-24: segments explain"),
        "{out}"
    );
    let model = w.read("ck/transform/segment_model.json");
    assert!(model.contains("\"method\": \"rfm\""), "{model}");
    assert!(model.contains("\"rfm_grid_eta2\""), "{model}");
    let (code, stderr) = fail(w.run(&["run", "--customers", "100", "--method", "nope"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("transform.method"), "{stderr}");
}
