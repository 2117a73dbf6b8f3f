//! The Airflow DAG of dags/segpipe.py under a real Airflow: it imports
//! cleanly with every task (DESIGN §8).
//!
//! Airflow comes from `bash .ci/airflow` (a pinned venv under target/, as
//! .ci/run does): `SEGPIPE_TEST_AIRFLOW` names its `airflow`, else
//! target/airflow-venv/bin/airflow is used. Without either these tests fail,
//! naming the fix; like the browser and database tests, they never skip.

use std::path::{Path, PathBuf};
use std::process::Command;

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
