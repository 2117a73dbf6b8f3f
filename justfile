# segpipe tasks. `just` is optional (cargo install just); every recipe is
# a plain command you can copy. CI runs `bash .ci/run`, which runs `ci`'s checks.

set shell := ["bash", "-euo", "pipefail", "-c"]

seed := "42"
as_of := "2026-11-24"

# List recipes
default:
    @just --list

# Everything CI checks, in order
ci: fmt-check clippy forbid test doc

# Run the whole pipeline (embedded SQLite default)
run *ARGS:
    cargo run --release -- run {{ARGS}}

# Write data/customers.csv (+ data/customers.truth.csv)
generate customers="10000":
    cargo run --release -- generate --customers {{customers}} --seed {{seed}} --out data/customers.csv

# Serve the mock purchase API on 127.0.0.1:8000
serve-api *ARGS:
    cargo run --release -- serve-api --seed {{seed}} --as-of {{as_of}} {{ARGS}}

# Extract against a running API into out/extract
extract api="http://127.0.0.1:8000":
    cargo run --release -- extract --customers data/customers.csv --api-url {{api}} --out out/extract

# Transform out/extract into out/transform
transform:
    cargo run --release -- transform --input out/extract --out out/transform --as-of {{as_of}} --seed {{seed}}

# Load out/transform (default sqlite://segpipe.db; pass a URL for PostgreSQL)
load url="sqlite://segpipe.db":
    cargo run --release -- load --input out/transform --database-url {{url}}

# Unit + integration tests (needs the local PostgreSQL, Chromium and `just airflow`)
test:
    cargo test

# Install the pinned Airflow (target/airflow-venv) that the DAG tests run
airflow:
    bash .ci/airflow

fmt:
    cargo fmt --all

fmt-check:
    cargo fmt --all --check

clippy:
    cargo clippy --all-targets -- -D warnings

doc:
    RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --document-private-items

forbid:
    bash .ci/forbid

# Benchmarks with printed figures (release builds; PostgreSQL for load/run)
bench:
    cargo bench --bench api_throughput
    cargo bench --bench kmeans
    cargo bench --bench load
    bash benches/small_run.sh
    bash benches/run_pipeline.sh
    bash benches/file_sources.sh
    bash benches/shards.sh
    bash benches/build_time.sh

# 10,000,000 customers end to end into PostgreSQL (minutes; issue 11)
bench-10m:
    BENCH_SIZES=10000000 BENCH_BARE=0 bash benches/run_pipeline.sh
