#!/usr/bin/env bash
# Runs the four benchmark scripts one after another and keeps what each printed in results/benchmarks/<name>.txt,
# after a first line saying the torch thread count and what else ran (RESULTS.md's performance table is read from there):
#   bash benchmarks/run_all.sh                                   # on an otherwise idle machine
#   OMP_NUM_THREADS=1 BENCH_NOTE="two training runs on the other core" bash benchmarks/run_all.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
mkdir -p results/benchmarks
for name in callback_overhead attack_cost bounds_cost loop_overhead; do
    threads=$("$PY" -c "import torch; print(torch.get_num_threads())")
    echo "# torch threads: $threads; alongside: ${BENCH_NOTE:-nothing}; $(date -u +%FT%TZ)" > "results/benchmarks/$name.txt.part"
    "$PY" "benchmarks/$name.py" >> "results/benchmarks/$name.txt.part"
    mv "results/benchmarks/$name.txt.part" "results/benchmarks/$name.txt"
    echo "$name: $(tail -n 1 "results/benchmarks/$name.txt")"
done
