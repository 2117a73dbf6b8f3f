#!/usr/bin/env bash
# Fresh-clone build time of the README's test command (issue 12): for each
# revision in BENCH_REVS (default HEAD), clone it into a scratch directory,
# fetch the crates (network time is not build time), then time
# `cargo test --no-run --locked` from an empty target directory.
# Revisions run one after another in the same invocation, so compare them
# here rather than across runs: this 2-core machine is shared and noisy.
# Prints wall, user and system seconds and the slowest compile units.
set -euo pipefail
cd "$(dirname "$0")/.."
revs="${BENCH_REVS:-HEAD}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for rev in $revs; do
  sha=$(git rev-parse --short "$rev")
  dir="$work/$sha"
  git clone -q . "$dir"
  git -C "$dir" checkout -q "$sha"
  (cd "$dir" && cargo fetch --locked -q)
  echo "== fresh clone of $rev ($sha): cargo test --no-run --locked"
  (cd "$dir" && /usr/bin/time -f '%e %U %S' -o "$work/time.txt" \
    cargo test --no-run --locked --timings -q >/dev/null 2>"$work/build.err") \
    || { cat "$work/build.err"; exit 1; }
  read -r wall user sys < "$work/time.txt"
  printf '   wall %s s, user %s s, system %s s (%s cores)\n' "$wall" "$user" "$sys" "$(nproc)"
  python3 - "$dir"/target/cargo-timings/cargo-timing.html <<'PY'
import json, re, sys
units = json.loads(re.search(r"const UNIT_DATA = (\[.*?\]);\n", open(sys.argv[1]).read(), re.S).group(1))
print(f"   {len(units)} units, {sum(u['duration'] for u in units):.0f} unit-seconds; slowest:")
for u in sorted(units, key=lambda u: -u["duration"])[:8]:
    print(f"     {u['duration']:6.1f} s  {u['name']} {u.get('target', '').strip()}")
PY
  rm -rf "$dir"
done
