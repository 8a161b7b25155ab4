#!/usr/bin/env bash
# Runs every benchmark in turn and prints its figures (make bench). Each script measures its own
# baseline in the same run; none of them asserts anything.
set -u
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
for b in bench_dgcnn bench_knn bench_io bench_render bench_viewer bench_analysis bench_pretrain bench_pipeline bench_gui_stall; do
  [ -f "benchmarks/$b.py" ] || continue
  echo "=== $b"
  "$PY" "benchmarks/$b.py" || echo "($b failed with exit code $?)"
done
