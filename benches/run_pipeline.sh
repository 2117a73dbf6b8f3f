#!/usr/bin/env bash
# Benchmark of `segpipe run` into PostgreSQL, with a bare-COPY baseline.
#
# For each size: per-stage seconds and peak RSS of `segpipe run`, then the
# same five tables exported to CSV and `\copy`-ed by psql into empty keyed
# tables of the same schema; prints load time / bare COPY time.
# Sizes: BENCH_SIZES (default "100000 1000000"). PostgreSQL: BENCH_PG
# (default postgres://postgres@127.0.0.1:5432). Prints figures; asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
pg="${BENCH_PG:-postgres://postgres@127.0.0.1:5432}"
sizes="${BENCH_SIZES:-100000 1000000}"
cargo build --release --locked -q
bin="$PWD/target/release/segpipe"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tables_in_fk_order="segment_metrics customer_segments customer_behavior_metrics customer_store_summary customer_purchase_trends"

for n in $sizes; do
  db="segpipe_bench_$n"; bare="segpipe_bare_$n"
  psql "$pg/postgres" -qc "drop database if exists $db" -c "create database $db"
  echo "== segpipe run --customers $n into PostgreSQL"
  /usr/bin/time -v -o "$work/time.txt" "$bin" run --customers "$n" --as-of 2026-11-24 \
    --database-url "$pg/$db" --report "$work/report-$n.html" | tee "$work/run.txt"
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$work/time.txt")
  load_s=$(awk '$1 == "load" {print $2}' "$work/run.txt")
  rows=$(awk '$1 == "load" {print $3}' "$work/run.txt")
  printf '   wall %s, peak RSS %d MiB\n' "$wall" $((rss / 1024))
  # BENCH_BARE=0 skips the bare-COPY baselines (the 10M recipe: minutes each).
  if [ "${BENCH_BARE:-1}" = 0 ]; then
    psql "$pg/postgres" -qc "drop database $db"
    continue
  fi

  for t in $tables_in_fk_order; do
    psql "$pg/$db" -qc "\\copy (select * from $t) to '$work/$t.csv' csv"
  done
  # Baseline 1: the issue's "same keys" = primary keys only (FKs dropped).
  # Baseline 2: the full schema, foreign keys included (checked per row).
  copy_into() {
    local target="$1" keep_fk="$2"
    psql "$pg/postgres" -qc "drop database if exists $target" -c "create database $target"
    for f in migrations/postgres/*.sql; do psql "$pg/$target" -q -v ON_ERROR_STOP=1 -f "$f" >/dev/null; done
    if [ "$keep_fk" = no ]; then
      psql "$pg/$target" -qAt -c "select format('alter table %I drop constraint %I;', conrelid::regclass, conname) from pg_constraint where contype = 'f'" \
        | psql "$pg/$target" -q >/dev/null
    fi
    local start end
    start=$(date +%s.%N)
    for t in $tables_in_fk_order; do
      psql "$pg/$target" -qc "\\copy $t from '$work/$t.csv' csv"
    done
    end=$(date +%s.%N)
    psql "$pg/postgres" -qc "drop database $target"
    awk -v a="$start" -v b="$end" 'BEGIN {print b - a}'
  }
  pk_s=$(copy_into "$bare" no)
  fk_s=$(copy_into "$bare" yes)
  printf '\n== %s customers: wall %s, peak RSS %.0f MiB, load %.2fs for %s rows\n' \
    "$n" "$wall" "$(awk -v r="$rss" 'BEGIN {print r / 1024}')" "$load_s" "$rows"
  printf '   bare \\copy into primary-keyed tables %.2fs -> ratio load/bare %.2f\n' "$pk_s" "$(awk -v l="$load_s" -v c="$pk_s" 'BEGIN {print l / c}')"
  printf '   bare \\copy into the full schema (PK + FK) %.2fs -> ratio %.2f\n\n' "$fk_s" "$(awk -v l="$load_s" -v c="$fk_s" 'BEGIN {print l / c}')"
  psql "$pg/postgres" -qc "drop database $db"
done
