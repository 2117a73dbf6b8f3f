//! The HTML report as a user sees it: written by `run` and by `report`,
//! opened in a real headless Chromium, every chart drawn, no console errors,
//! and a screenshot kept under target/ for CI.
//!
//! Chromium comes from the distribution (`apt-get install -y chromium`;
//! .ci/run installs it). Without it these tests fail, naming the fix.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{Workdir, ok};

const AS_OF: &str = "2026-11-24";

/// The browser: `SEGPIPE_TEST_CHROMIUM`, else chromium on the PATH.
fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("SEGPIPE_TEST_CHROMIUM") {
        return PathBuf::from(p);
    }
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .chain([PathBuf::from("/usr/bin")])
    {
        for name in ["chromium", "chromium-browser"] {
            let p = dir.join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!(
        "chromium not found: the report tests open the page in a real browser. \
         Install it with `apt-get update && apt-get install -y chromium` (as .ci/run does) \
         or set SEGPIPE_TEST_CHROMIUM to its path"
    );
}

/// Run headless Chromium on `page` with `extra` flags; returns (stdout, stderr).
fn browse(page: &Path, extra: &[&str]) -> (String, String) {
    let profile = tempfile::tempdir().expect("chromium profile dir");
    let page = page.canonicalize().expect("page path");
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("spawn chromium");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "chromium failed:\n{stderr}");
    (stdout, stderr)
}

/// Console messages Chromium logged (`…:CONSOLE…] "message", source: …`).
/// The page runs no script, so any console message is a fault (a failed
/// resource load, a parse error, …).
fn console_messages(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.contains(":CONSOLE")).collect()
}

/// Each `<svg data-chart="NAME">` in the rendered DOM, with its mark count.
fn charts(dom: &str) -> Vec<(String, usize)> {
    dom.split("<svg data-chart=\"")
        .skip(1)
        .map(|rest| {
            let name = rest.split('"').next().unwrap_or_default().to_owned();
            let body = rest.split("</svg>").next().unwrap_or_default();
            (name, body.matches("class=\"mark").count())
        })
        .collect()
}

#[test]
fn run_writes_a_report_that_renders_in_chromium_with_every_chart_drawn() {
    let w = Workdir::new();
    let out = ok(w.run(&[
        "run",
        "--customers",
        "2000",
        "--as-of",
        AS_OF,
        "--checkpoint-dir",
        "ck",
    ]));
    assert!(
        out.contains("report written to segpipe-report.html"),
        "{out}"
    );
    let page = w.join("segpipe-report.html");
    let html = w.read("segpipe-report.html");
    // Self-contained: no script, nothing fetched from anywhere.
    assert!(!html.contains("<script"), "the page runs no script");
    for needle in ["http://", "https://", "src=", "<link", "@import", "url("] {
        assert!(!html.contains(needle), "the page references `{needle}`");
    }

    let (dom, stderr) = browse(&page, &["--dump-dom"]);
    assert_eq!(
        console_messages(&stderr),
        Vec::<&str>::new(),
        "console errors"
    );
    let found = charts(&dom);
    for want in segpipe::report::CHARTS {
        assert!(
            found.iter().any(|(n, _)| n == want),
            "chart {want} missing from the rendered page: {found:?}"
        );
    }
    for (name, marks) in &found {
        assert!(*marks > 0, "chart {name} has nothing drawn");
    }
    let scatter = found.iter().find(|(n, _)| n == "scatter").map(|c| c.1);
    assert!(scatter.is_some_and(|n| n > 500), "{scatter:?}");
    // Plain-language notes beside the figures: what ARI means, why this k.
    for text in ["adjusted Rand index", "Why k = "] {
        assert!(dom.contains(text), "no explanation `{text}`");
    }

    // The screenshot CI keeps: a laptop-sized first screen.
    let shot = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/target/report-screenshot.png"
    ));
    let _ = std::fs::remove_file(&shot);
    browse(
        &page,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1366,900",
            "--hide-scrollbars",
        ],
    );
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    assert!(png.len() > 20_000, "suspiciously small screenshot");
}

#[test]
fn console_errors_are_caught() {
    // The check above must be able to fail: a page that logs an error.
    let w = Workdir::new();
    let page = w.write(
        "bad.html",
        "<html><body><script>console.error('boom')</script></body></html>",
    );
    let (_, stderr) = browse(&page, &["--dump-dom"]);
    let msgs = console_messages(&stderr);
    assert!(msgs.iter().any(|m| m.contains("boom")), "{stderr}");
}

#[test]
fn report_subcommand_reads_a_transform_checkpoint_and_run_obeys_report_none_and_a_path() {
    let w = Workdir::new();
    let base = [
        "run",
        "--customers",
        "600",
        "--as-of",
        AS_OF,
        "--checkpoint-dir",
        "ck",
    ];
    let out = ok(w.run(&[&base[..], &["--report", "none"]].concat()));
    assert!(!out.contains("report written"), "{out}");
    assert!(!w.join("segpipe-report.html").exists());

    let out = ok(w.run(&["report", "--input", "ck/transform", "--out", "r/a.html"]));
    assert!(out.starts_with("wrote r/a.html"), "{out}");
    let a = w.read("r/a.html");
    ok(w.run(&["report", "--input", "ck/transform", "--out", "r/b.html"]));
    assert_eq!(a, w.read("r/b.html"), "same checkpoint, same page");
    assert!(a.contains("source: transform checkpoint ck/transform"));

    // --report FILE and the config key.
    ok(w.run(&[&base[..], &["--report", "x/run.html"]].concat()));
    assert!(w.join("x/run.html").exists());
    w.write("segpipe.toml", "[run]\nreport = \"y/cfg.html\"\n");
    ok(w.run(&base));
    assert!(w.join("y/cfg.html").exists());

    // The report of a missing checkpoint is an input error naming it.
    let out = w.run(&["report", "--input", "nope"]);
    let (code, err) = crate::util::fail(out);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("nope"), "{err}");
}

#[test]
fn json_results_on_stdout_and_in_the_checkpoint_dir() {
    let w = Workdir::new();
    let out = ok(w.run(&[
        "run",
        "--customers",
        "600",
        "--as-of",
        AS_OF,
        "--checkpoint-dir",
        "ck",
        "--json",
    ]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let stages: Vec<&str> = v["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .filter_map(|s| s["stage"].as_str())
        .collect();
    assert_eq!(stages, ["generate", "extract", "transform", "load"]);
    assert!(v["stages"][0]["seconds"].is_number());
    assert!(v["stages"][1]["rows"].as_u64().is_some_and(|n| n > 0));
    assert!(v["k"].as_u64().is_some_and(|k| k >= 2), "{v}");
    assert_eq!(
        v["rule_based_segments"],
        serde_json::json!(["no purchases"])
    );
    assert!(v["criteria"][0]["silhouette"].is_number(), "{v}");
    assert!(
        v["segments"]
            .as_array()
            .is_some_and(|s| s.len() as u64 == v["k"].as_u64().unwrap_or(0) + 1)
    );
    assert_eq!(v["destination"], "sqlite://segpipe.db");
    assert_eq!(v["report_path"], "segpipe-report.html");
    assert!(v["evaluation"]["ari"].is_number());
    let saved: serde_json::Value =
        serde_json::from_str(&w.read("ck/run_results.json")).expect("run_results.json");
    assert_eq!(saved, v);

    // The step subcommands speak JSON too.
    let t = ok(w.run(&[
        "transform",
        "--input",
        "ck/extract",
        "--out",
        "t",
        "--as-of",
        AS_OF,
        "--json",
    ]));
    let t: serde_json::Value = serde_json::from_str(&t).expect("transform json");
    assert_eq!(t["stage"], "transform");
    assert_eq!(t["report"]["k"], v["k"]);
    let l = ok(w.run(&[
        "load",
        "--input",
        "t",
        "--database-url",
        "sqlite://t.db",
        "--json",
    ]));
    let l: serde_json::Value = serde_json::from_str(&l).expect("load json");
    assert_eq!(l["destination"], "sqlite://t.db");
    assert!(
        l["tables"]["customer_segments"]
            .as_u64()
            .is_some_and(|n| n > 500)
    );
}

#[test]
fn extract_json_counts_rows_customers_and_purchases() {
    let w = Workdir::new();
    let server = crate::strict_server::StrictServer::start();
    let out = ok(w.run(&[
        "extract",
        "--customers",
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/customers_messy.csv"
        ),
        "--api-url",
        &server.url(),
        "--out",
        "x",
        "--json",
    ]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(v["stage"], "extract");
    assert_eq!(
        (
            &v["rows_read"],
            &v["customers"],
            &v["rejected"],
            &v["duplicates_dropped"]
        ),
        (
            &serde_json::json!(12),
            &serde_json::json!(5),
            &serde_json::json!(6),
            &serde_json::json!(1)
        )
    );
    assert!(v["purchases"].as_u64().is_some_and(|n| n > 0), "{v}");
    assert_eq!(v["out"], "x");
}

#[test]
fn summary_speaks_plain_words() {
    let w = Workdir::new();
    let out = ok(w.run(&["run", "--customers", "600", "--as-of", AS_OF]));
    let k = out
        .lines()
        .find(|l| l.starts_with("k = "))
        .unwrap_or_else(|| panic!("no k line:\n{out}"));
    assert!(
        k.ends_with("clusters + 1 rule-based segment (no purchases)"),
        "{k}"
    );
    assert!(
        out.contains("sqlite3 segpipe.db 'select * from segment_metrics'"),
        "{out}"
    );
    // Money with thousands separators and cents, no currency sign.
    let money = out
        .lines()
        .find(|l| l.contains("high-value"))
        .unwrap_or_else(|| panic!("no high-value segment:\n{out}"));
    assert!(
        money
            .split_whitespace()
            .any(|t| t.contains(',') && t.split('.').nth(1).is_some_and(|c| c.len() == 2)),
        "{money}"
    );
}
