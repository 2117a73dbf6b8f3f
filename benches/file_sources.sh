#!/usr/bin/env bash
# Benchmark (issue 9): the same world from three purchase sources, side by
# side in one run, into PostgreSQL: the in-process API, a purchases CSV and
# the same purchases as Parquet. Prints seconds per stage, wall and peak RSS
# of each; asserts nothing.
#
# Customers: BENCH_N (default 1000000). PostgreSQL: BENCH_PG (default
# postgres://postgres@127.0.0.1:5432). Parquet needs pyarrow (`pip install
# pyarrow`) to write the file; without it that row is skipped, said so.
set -euo pipefail
cd "$(dirname "$0")/.."
pg="${BENCH_PG:-postgres://postgres@127.0.0.1:5432}"
n="${BENCH_N:-1000000}"
cargo build --release --locked -q
bin="$PWD/target/release/segpipe"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
db="segpipe_bench_files"
psql "$pg/postgres" -qc "drop database if exists $db" -c "create database $db"

echo "== world: $n customers, purchases written once by the mock API (checkpoint)"
"$bin" run --customers "$n" --as-of 2026-11-24 --checkpoint-dir "$work/ck" \
  --database-url "sqlite://$work/seed.db" --report none > /dev/null
customers="$work/ck/generate/customers.csv"
purchases="$work/ck/extract/purchases_raw.csv"
# The checkpoint keeps each order id's key: use it as the file's order_id.
sed -i '1s/order_key/order_id/' "$purchases"
echo "purchases file: $(($(wc -l < "$purchases") - 1)) rows, $(du -h "$purchases" | cut -f1)"
if python3 -c 'import pyarrow' 2>/dev/null; then
  python3 - "$purchases" "$work/purchases.parquet" <<'EOF'
import sys, pyarrow.csv as pc, pyarrow.parquet as pq
opts = pc.ConvertOptions(column_types={"mobile": "string", "date": "string", "store": "string", "order_id": "string"})
pq.write_table(pc.read_csv(sys.argv[1], convert_options=opts), sys.argv[2], compression="snappy")
EOF
fi

run() {
  local label=$1; shift
  /usr/bin/time -v -o "$work/time.txt" "$bin" run --customers "$customers" --as-of 2026-11-24 \
    --database-url "$pg/$db" --report none "$@" > "$work/run.txt"
  local rss wall
  rss=$(awk -F': ' '/Maximum resident set size/ {print int($2/1024)}' "$work/time.txt")
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$work/time.txt")
  printf '%-8s wall %8s  peak RSS %6s MiB  stages:' "$label" "$wall" "$rss"
  awk '$1 ~ /^(customers|extract|transform|load)$/ {printf " %s %ss", $1, $2}' "$work/run.txt"
  echo
}

echo "== source     wall        peak RSS     seconds per stage"
run api
run csv --purchases "$purchases"
if [ -f "$work/purchases.parquet" ]; then
  run parquet --purchases "$work/purchases.parquet"
else
  echo "parquet  skipped: pyarrow not installed (pip install pyarrow)"
fi
psql "$pg/postgres" -qc "drop database $db"
