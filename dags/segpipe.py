"""segpipe as an Airflow DAG: the sharded step subcommands as tasks.

    customers ─► shard[i]: extract ─► features ─► fit ─► assign[i] ─► load
                 (mapped over range(shards))             (mapped)

Every task runs the `segpipe` binary and fails on any non-zero exit code;
the tables are the ones `segpipe run` writes for the same customers, API,
seed and as-of date (DESIGN §8).

Executors: tasks share nothing in process; they hand each other files under
`workdir` (`customers.csv`, `shard-I/{extract,features,assign}`, `fit`). With
the Local executor any directory works. With Celery (or any executor that
spreads tasks over machines) `workdir` must be shared storage mounted at the
same path on every worker (NFS, EFS, a CSI volume), and `segpipe` must be
installed on each worker. On Kubernetes, run the same commands with
KubernetesPodOperator on an image that holds the binary, the work dir on a
ReadWriteMany volume. One run at a time per work dir (max_active_runs=1).

Database: the Airflow Variable `segpipe_database_url` (UI, `airflow variables
set`, a secrets backend, or AIRFLOW_VAR_SEGPIPE_DATABASE_URL), else the
worker's own SEGPIPE_DATABASE_URL / DATABASE_URL. It is never a param: conf
is stored and shown in clear. The load task masks it in Airflow's logs and
hands it to segpipe in the environment, never on the command line.

Trigger (conf keys are the params below):
    airflow dags trigger segpipe -c '{"workdir": "/shared/segpipe",
        "api_url": "http://api:8000", "shards": 8, "as_of": "2026-11-24"}'
"""

from __future__ import annotations

import os
import shlex
from urllib.parse import urlsplit

from airflow.sdk import Param, Variable, dag, task, task_group
from airflow.sdk.log import mask_secret

DATABASE_URL_VARIABLE = "segpipe_database_url"

# Every non-zero exit fails the task: BashOperator would otherwise turn exit
# code 99 into a skip. Task output goes to the log, not to XCom.
BASH = dict(skip_on_exit_code=None, do_xcom_push=False)


def cmd(params: dict, *args: object) -> str:
    """The segpipe command line for `args`, quoted for bash."""
    return shlex.join([params["segpipe"], *map(str, args)])


def workdir(params: dict) -> str:
    w = params["workdir"]
    if not os.path.isabs(w):
        # BashOperator runs each command in its own temp dir.
        raise ValueError(f"workdir must be an absolute path, got {w!r}")
    return w


def shard_dir(params: dict, shard: int, step: str) -> str:
    return f"{workdir(params)}/shard-{shard}/{step}"


def customers_file(params: dict) -> str:
    return params["customers"] or f"{workdir(params)}/customers.csv"


def as_of(params: dict, dag_run) -> str:
    # One date for every task of a run: the param, else the day the run was for.
    return params["as_of"] or dag_run.run_after.date().isoformat()


PARAMS = {
    "segpipe": Param("segpipe", type="string", description="the binary: a path or a name on PATH"),
    "workdir": Param(
        "/tmp/segpipe",
        type="string",
        description="absolute work dir, on storage every worker shares",
    ),
    "customers": Param(
        "", type="string", description="customers CSV; empty: generate into the work dir"
    ),
    "generate_customers": Param(10000, type="integer", minimum=1),
    "api_url": Param("", type="string", description="purchase API base URL (or `purchases`)"),
    "purchases": Param("", type="string", description="purchases file (CSV or Parquet)"),
    "shards": Param(4, type="integer", minimum=1),
    "as_of": Param("", type="string", description="YYYY-MM-DD; empty: the run's date"),
    "seed": Param(42, type="integer"),
    "k": Param("auto", type="string", description="`auto` or a number of segments"),
    "method": Param("kmeans", type="string", enum=["kmeans", "rfm"]),
}


@dag(
    dag_id="segpipe",
    schedule=None,
    catchup=False,
    max_active_runs=1,
    tags=["segpipe"],
    doc_md=__doc__,
    params=PARAMS,
)
def segpipe():
    @task
    def shard_ids(params=None) -> list[int]:
        return list(range(params["shards"]))

    @task.bash(**BASH)
    def customers(params=None) -> str:
        given = params["customers"]
        if given:
            path = shlex.quote(given)
            return f"test -r {path} || {{ echo error: cannot read {path} >&2; exit 2; }}"
        generate = cmd(
            params, "generate", "--customers", params["generate_customers"],
            "--seed", params["seed"], "--out", customers_file(params),
        )
        return f"mkdir -p {shlex.quote(workdir(params))} && {generate}"

    @task.bash(**BASH)
    def extract(shard: int, params=None) -> str:
        if bool(params["api_url"]) == bool(params["purchases"]):
            raise ValueError("give exactly one of the params `api_url` and `purchases`")
        if params["api_url"]:
            source = ["--api-url", params["api_url"]]
        else:
            source = ["--purchases", params["purchases"]]
        return cmd(
            params, "extract", "--customers", customers_file(params), *source,
            "--out", shard_dir(params, shard, "extract"), "--shard", f"{shard}/{params['shards']}",
        )

    @task.bash(**BASH)
    def features(shard: int, params=None, dag_run=None) -> str:
        return cmd(
            params, "features", "--input", shard_dir(params, shard, "extract"),
            "--out", shard_dir(params, shard, "features"), "--as-of", as_of(params, dag_run),
            "--shard", f"{shard}/{params['shards']}",
        )

    @task_group
    def shard(i: int):
        extract(i) >> features(i)

    @task.bash(**BASH)
    def fit(params=None, dag_run=None) -> str:
        inputs = []
        for s in range(params["shards"]):
            inputs += ["--input", shard_dir(params, s, "features")]
        return cmd(
            params, "fit", *inputs, "--out", f"{workdir(params)}/fit",
            "--as-of", as_of(params, dag_run), "--seed", params["seed"],
            "--k", params["k"], "--method", params["method"],
        )

    @task.bash(**BASH)
    def assign(shard: int, params=None) -> str:
        return cmd(
            params, "assign", "--model", f"{workdir(params)}/fit",
            "--input", shard_dir(params, shard, "features"),
            "--out", shard_dir(params, shard, "assign"), "--shard", f"{shard}/{params['shards']}",
        )

    @task.bash(**BASH)
    def load(params=None) -> str:
        url = Variable.get(DATABASE_URL_VARIABLE, default=None)
        if url:
            mask_secret(url)
            if password := urlsplit(url).password:
                mask_secret(password)
            # The environment, not argv: argv shows in `ps` and in the
            # task's rendered command. Each task runs in its own process,
            # so this reaches only this task's segpipe.
            os.environ["SEGPIPE_DATABASE_URL"] = url
        elif not (os.environ.get("SEGPIPE_DATABASE_URL") or os.environ.get("DATABASE_URL")):
            raise ValueError(
                f"no database: set the Airflow Variable `{DATABASE_URL_VARIABLE}` "
                "(or SEGPIPE_DATABASE_URL on the workers)"
            )
        inputs = ["--input", f"{workdir(params)}/fit"]
        for s in range(params["shards"]):
            inputs += ["--input", shard_dir(params, s, "features")]
            inputs += ["--input", shard_dir(params, s, "assign")]
        return cmd(params, "load", *inputs)

    ids = shard_ids()
    customers() >> shard.expand(i=ids) >> fit() >> assign.expand(shard=ids) >> load()


segpipe()
