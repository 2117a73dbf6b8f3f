//! The Airflow DAG of dags/segpipe.py run by a real Airflow: it imports
//! cleanly, and a run with sharded, mapped tasks writes the same tables
//! into PostgreSQL as `segpipe run` (DESIGN §8).
//!
//! Airflow comes from `bash .ci/airflow` (a pinned venv under target/, as
//! .ci/run does): `SEGPIPE_TEST_AIRFLOW` names its `airflow`, else
//! target/airflow-venv/bin/airflow is used. Without either these tests fail,
//! naming the fix; like the browser and database tests, they never skip.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use segpipe::report_tables::TABLES;

use crate::pg::{self, TestDb};
use crate::util::{Workdir, ok};

const AS_OF: &str = "2026-11-24";
const SEED: &str = "42";

/// The DAG's tasks, mapped ones once (task groups prefix their tasks).
const TASKS: [&str; 7] = [
    "assign",
    "customers",
    "fit",
    "load",
    "shard.extract",
    "shard.features",
    "shard_ids",
];

/// The `airflow` executable: `SEGPIPE_TEST_AIRFLOW`, else the venv that
/// `bash .ci/airflow` makes.
fn airflow() -> PathBuf {
    if let Some(p) = std::env::var_os("SEGPIPE_TEST_AIRFLOW") {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "SEGPIPE_TEST_AIRFLOW={} is not a file; run `bash .ci/airflow`",
            p.display()
        );
        return p;
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/airflow-venv/bin/airflow");
    if venv.is_file() {
        return venv;
    }
    panic!(
        "airflow not found: the DAG tests run a real Airflow. Install the pinned one with \
         `bash .ci/airflow` (as .ci/run does; it makes target/airflow-venv) or set \
         SEGPIPE_TEST_AIRFLOW to an `airflow` executable"
    );
}

/// A scratch AIRFLOW_HOME (SQLite metadata, no examples) that reads the
/// repository's dags/ and nothing from the caller's Airflow or segpipe env.
struct AirflowHome {
    home: tempfile::TempDir,
}

impl AirflowHome {
    fn new() -> AirflowHome {
        AirflowHome {
            home: tempfile::tempdir().expect("create AIRFLOW_HOME"),
        }
    }

    fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        for (k, _) in std::env::vars() {
            if k.starts_with("AIRFLOW")
                || k.starts_with("SEGPIPE_")
                || k == "DATABASE_URL"
                || k == "RUST_LOG"
            {
                cmd.env_remove(k);
            }
        }
        let dags = Path::new(env!("CARGO_MANIFEST_DIR")).join("dags");
        cmd.env("AIRFLOW_HOME", self.home.path())
            .env("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
            .env("AIRFLOW__CORE__DAGS_FOLDER", dags)
            // Importing the DAG must not leave __pycache__ in the repository.
            .env("PYTHONDONTWRITEBYTECODE", "1");
        cmd
    }

    /// Run `airflow args`, its output (stdout and stderr) in `log`; panics
    /// with the end of the log on failure. Returns the log's text.
    fn run(&self, args: &[&str], extra_env: &[(&str, &str)], log: &Path) -> String {
        let out = File::create(log).expect("create airflow log");
        let err = out.try_clone().expect("clone log handle");
        let started = Instant::now();
        let status = self
            .command(&airflow())
            .args(args)
            .envs(extra_env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .status()
            .expect("spawn airflow");
        let text = std::fs::read_to_string(log).unwrap_or_default();
        eprintln!(
            "airflow {}: {:.1} s",
            args.first().copied().unwrap_or_default(),
            started.elapsed().as_secs_f64()
        );
        assert!(
            status.success(),
            "airflow {args:?} failed ({status}); last lines of {}:\n{}",
            log.display(),
            tail(&text, 80)
        );
        text
    }
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[test]
fn dag_imports_without_errors_with_every_task() {
    let home = AirflowHome::new();
    // DagBag is what the scheduler's parser runs; the CLI's import-error
    // listing needs a migrated database and prints warnings on stdout.
    let script = r#"
import json
from airflow.dag_processing.dagbag import DagBag
bag = DagBag()
print("DAGBAG " + json.dumps({
    "errors": bag.import_errors,
    "dags": {d: sorted(t.task_id for t in dag.tasks) for d, dag in bag.dags.items()},
}))
"#;
    let python = airflow().with_file_name("python");
    let out = home
        .command(&python)
        .args(["-c", script])
        .output()
        .expect("spawn the venv's python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "DagBag failed:\n{stdout}\n{stderr}");
    let json = stdout
        .lines()
        .find_map(|l| l.strip_prefix("DAGBAG "))
        .unwrap_or_else(|| panic!("no DAGBAG line:\n{stdout}\n{stderr}"));
    let bag: serde_json::Value = serde_json::from_str(json).expect("DagBag json");
    assert_eq!(bag["errors"], serde_json::json!({}), "import errors");
    assert_eq!(
        bag["dags"],
        serde_json::json!({ "segpipe": TASKS }),
        "the dags/ folder holds exactly the segpipe DAG with these tasks"
    );
}

/// A `segpipe serve-api` child on an ephemeral loopback port, killed on drop.
struct Api {
    child: Child,
    url: String,
}

impl Api {
    fn start(w: &Workdir) -> Api {
        let mut child = w
            .segpipe()
            .args(["serve-api", "--bind", "127.0.0.1:0"])
            .args(["--seed", SEED, "--as-of", AS_OF])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn serve-api");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the listening line");
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected serve-api line: {line:?}"))
            .to_owned();
        Api { child, url }
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every row of every report table, as `table|cell|cell…` in key order.
fn dump(url: &str) -> Vec<String> {
    let mut out = Vec::new();
    for t in TABLES {
        let sql = format!("SELECT * FROM {} ORDER BY {}", t.name, t.key.join(", "));
        out.extend(pg::rows(url, &sql).into_iter().map(|r| {
            let cells: Vec<String> = r
                .into_iter()
                .map(|c| c.unwrap_or_else(|| "NULL".to_owned()))
                .collect();
            format!("{}|{}", t.name, cells.join("|"))
        }));
    }
    out
}

/// Equal dumps, or a panic naming the first rows that differ (a full diff
/// of 60,000 rows would bury them).
fn assert_same_rows(dag: &[String], run: &[String]) {
    if dag == run {
        return;
    }
    let count = |d: &[String], t: &str| d.iter().filter(|r| r.split('|').next() == Some(t)).count();
    let counts: Vec<String> = TABLES
        .iter()
        .map(|t| {
            format!(
                "{}: dag {} run {}",
                t.name,
                count(dag, t.name),
                count(run, t.name)
            )
        })
        .collect();
    let first: Vec<String> = dag
        .iter()
        .zip(run)
        .filter(|(a, b)| a != b)
        .take(5)
        .map(|(a, b)| format!("dag: {a}\nrun: {b}"))
        .collect();
    panic!(
        "the DAG's tables differ from `segpipe run`'s\nrows: {}\nfirst differing rows:\n{}",
        counts.join(", "),
        first.join("\n")
    );
}

/// What `pipeline_runs` records about the model and the data; not the
/// run's own identity, times and source, which differ by design.
const RUN_FACTS: [&str; 10] = [
    "status",
    "as_of",
    "seed",
    "k",
    "method",
    "silhouette",
    "inertia",
    "row_counts",
    "data_quality",
    "k_sweep",
];

fn run_facts(url: &str) -> Vec<(&'static str, Option<String>)> {
    let cols: Vec<String> = RUN_FACTS.iter().map(|c| format!("{c}::text")).collect();
    let sql = format!("SELECT {} FROM pipeline_runs", cols.join(", "));
    let mut rows = pg::rows(url, &sql);
    assert_eq!(rows.len(), 1, "one pipeline_runs row per fresh database");
    RUN_FACTS.into_iter().zip(rows.remove(0)).collect()
}

/// `url` with a password added: trust auth ignores it, and the test can
/// then look for it in Airflow's output.
fn with_password(url: &str) -> (String, String) {
    let mut u = url::Url::parse(url).expect("SEGPIPE_TEST_DATABASE_URL is a URL");
    if u.password().is_none() {
        u.set_password(Some("airflow-dag-secret"))
            .expect("the URL takes a password");
    }
    let password = u.password().unwrap_or_default().to_owned();
    (u.to_string(), password)
}

#[test]
fn dag_run_with_two_shards_writes_the_tables_segpipe_run_writes() {
    let w = Workdir::new();
    let api = Api::start(&w);
    let (dag_db, run_db) = (TestDb::new(), TestDb::new());
    let (dag_url, password) = with_password(dag_db.url());
    let home = AirflowHome::new();
    let work = w.join("airflow-work");

    home.run(&["db", "migrate"], &[], &w.join("migrate.log"));
    let conf = serde_json::json!({
        "segpipe": env!("CARGO_BIN_EXE_segpipe"),
        "workdir": work,
        "generate_customers": 10_000,
        "api_url": api.url,
        "shards": 2,
        "as_of": AS_OF,
        "seed": 42,
    });
    let log = home.run(
        &["dags", "test", "segpipe", "-c", &conf.to_string()],
        &[("AIRFLOW_VAR_SEGPIPE_DATABASE_URL", &dag_url)],
        &w.join("dags-test.log"),
    );
    assert!(
        !log.contains(&password),
        "the database password shows in Airflow's output (dags-test.log)"
    );
    // The mapped tasks ran once per shard, each into its own directory.
    for shard in 0..2 {
        for step in ["extract", "features", "assign"] {
            let dir = work.join(format!("shard-{shard}/{step}"));
            assert!(dir.is_dir(), "{} missing", dir.display());
        }
    }

    let customers = work.join("customers.csv");
    let customers = customers.to_str().expect("utf-8 path");
    ok(w.run(&[
        "run",
        "--customers",
        customers,
        "--api-url",
        &api.url,
        "--as-of",
        AS_OF,
        "--seed",
        SEED,
        "--database-url",
        run_db.url(),
        "--report",
        "none",
    ]));

    let (dag, run) = (dump(dag_db.url()), dump(run_db.url()));
    assert!(
        run.iter()
            .filter(|r| r.starts_with("customer_segments|"))
            .count()
            > 9_000,
        "run wrote too few customers"
    );
    assert_same_rows(&dag, &run);
    let differ: Vec<String> = run_facts(dag_db.url())
        .into_iter()
        .zip(run_facts(run_db.url()))
        .filter(|(a, b)| a != b)
        .map(|((col, a), (_, b))| format!("{col}:\n  dag: {a:?}\n  run: {b:?}"))
        .collect();
    assert!(
        differ.is_empty(),
        "pipeline_runs differs from `segpipe run`'s:\n{}",
        differ.join("\n")
    );
}
