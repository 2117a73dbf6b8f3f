#!/usr/bin/env bash
# Benchmark (issue 11): BENCH_N customers (default 1000000) in BENCH_SHARDS
# shards (default 4) through the step subcommands one after another, beside
# one `segpipe run` of the same customers and API, both into PostgreSQL.
# Prints seconds and peak RSS of every process and the totals; checks that
# both give the same tables (row counts and a checksum of sorted rows).
set -euo pipefail
cd "$(dirname "$0")/.."
pg="${BENCH_PG:-postgres://postgres@127.0.0.1:5432}"
n="${BENCH_N:-1000000}"
shards="${BENCH_SHARDS:-4}"
as_of=2026-11-24
cargo build --release --locked -q
bin="$PWD/target/release/segpipe"
work=$(mktemp -d)
api_pid=""
trap '[ -n "$api_pid" ] && kill "$api_pid" 2>/dev/null; rm -rf "$work"' EXIT
"$bin" generate --customers "$n" --seed 42 --out "$work/customers.csv" > /dev/null
"$bin" serve-api --bind 127.0.0.1:0 --seed 42 --as-of "$as_of" > "$work/api.txt" 2>&1 &
api_pid=$!
for _ in $(seq 1 50); do grep -q listening "$work/api.txt" && break; sleep 0.1; done
api=$(grep -o 'http://[0-9.:]*' "$work/api.txt" | head -n1)

timed() { # label, command...: prints "label seconds peakMiB"
  local label=$1; shift
  /usr/bin/time -f '%e %M' -o "$work/t.txt" "$@" > "$work/out.txt"
  read -r secs kib < "$work/t.txt"
  printf '%-22s %8.2f s %8d MiB\n' "$label" "$secs" $((kib / 1024))
  echo "$secs" >> "$work/total.txt"
}
total() { awk '{s += $1} END {printf "%.2f", s}' "$work/total.txt"; rm -f "$work/total.txt"; }

for db in segpipe_bench_one segpipe_bench_sharded; do
  psql "$pg/postgres" -qc "drop database if exists $db" -c "create database $db"
done
echo "== one process: run --customers FILE --api-url (in-process spool, $n customers)"
timed "run" "$bin" run --customers "$work/customers.csv" --api-url "$api" --as-of "$as_of" \
  --database-url "$pg/segpipe_bench_one" --report none
echo "total $(total) s"

echo "== $shards shards, one process after another"
fit=(fit --out "$work/fit" --as-of "$as_of")
load=(load --input "$work/fit" --database-url "$pg/segpipe_bench_sharded")
for i in $(seq 0 $((shards - 1))); do
  s="$work/s$i"
  timed "extract $i/$shards" "$bin" extract --customers "$work/customers.csv" --api-url "$api" \
    --out "$s/extract" --shard "$i/$shards"
  timed "features $i/$shards" "$bin" features --input "$s/extract" --out "$s/features" --as-of "$as_of"
  fit+=(--input "$s/features")
  load+=(--input "$s/features" --input "$s/assign")
done
timed "fit" "$bin" "${fit[@]}"
for i in $(seq 0 $((shards - 1))); do
  timed "assign $i/$shards" "$bin" assign --model "$work/fit" --input "$work/s$i/features" --out "$work/s$i/assign"
done
timed "load" "$bin" "${load[@]}"
echo "total $(total) s (serial; shards run in parallel on separate machines)"

for t in segment_metrics customer_segments customer_behavior_metrics customer_store_summary customer_purchase_trends; do
  a=$(psql "$pg/segpipe_bench_one" -tAc "select count(*), md5(string_agg(x, '' order by x)) from (select $t::text x from $t) q")
  b=$(psql "$pg/segpipe_bench_sharded" -tAc "select count(*), md5(string_agg(x, '' order by x)) from (select $t::text x from $t) q")
  printf '%-28s %s %s\n' "$t" "$a" "$([ "$a" = "$b" ] && echo same || echo "DIFFERS: $b")"
done
