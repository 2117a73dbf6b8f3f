#!/usr/bin/env bash
# The first-hour run (issue 12): `segpipe run` at 10,000 customers into the
# default SQLite sink, release build, BENCH_RUNS runs (default 5) after one
# warm-up, with and without the HTML report. Prints every wall time and the
# median. Target: <= 0.5 s, 10x the seed's Python pipeline (5.4 s).
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${BENCH_RUNS:-5}"
n="${BENCH_N:-10000}"
cargo build --release --locked -q
bin="$PWD/target/release/segpipe"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

for report in none segpipe-report.html; do
  "$bin" run --customers "$n" --as-of 2026-11-24 --report "$report" >/dev/null
  times=()
  for _ in $(seq "$runs"); do
    rm -f segpipe.db segpipe-report.html
    /usr/bin/time -f '%e' -o t.txt "$bin" run --customers "$n" --as-of 2026-11-24 --report "$report" >/dev/null
    times+=("$(cat t.txt)")
  done
  median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  printf '== run --customers %s --report %s: wall %s s (median of %s: %s)\n' \
    "$n" "$report" "$median" "$runs" "${times[*]}"
done
