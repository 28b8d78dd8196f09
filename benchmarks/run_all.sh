#!/usr/bin/env bash
# Runs the four benchmark scripts one after another on an otherwise idle machine and keeps what each printed in
# results/benchmarks/<name>.txt (RESULTS.md's performance table is read from there):
#   bash benchmarks/run_all.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
mkdir -p results/benchmarks
for name in callback_overhead attack_cost bounds_cost loop_overhead; do
    "$PY" "benchmarks/$name.py" > "results/benchmarks/$name.txt.part"
    mv "results/benchmarks/$name.txt.part" "results/benchmarks/$name.txt"
    echo "$name: $(tail -n 1 "results/benchmarks/$name.txt")"
done
