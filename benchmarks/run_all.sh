#!/usr/bin/env bash
# Runs the four benchmark scripts one after another on $BENCH_DEVICE (default cpu) and keeps what each printed in
# $BENCH_DIR/<name>.txt (default results/benchmarks), after a first line saying the device, the torch thread count
# and what else ran (RESULTS.md's performance tables are read from there):
#   bash benchmarks/run_all.sh                                   # on an otherwise idle machine
#   OMP_NUM_THREADS=1 BENCH_NOTE="two training runs on the other core" bash benchmarks/run_all.sh
#   BENCH_DEVICE=cuda BENCH_DIR=results/benchmarks/gpu bash benchmarks/run_all.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
device=${BENCH_DEVICE:-cpu}
out=${BENCH_DIR:-results/benchmarks}
mkdir -p "$out"
name_of_device=$("$PY" -c "import sys, torch; d = torch.device(sys.argv[1])
print(torch.cuda.get_device_name(d) if d.type == 'cuda' else 'CPU')" "$device")
for name in callback_overhead attack_cost bounds_cost loop_overhead; do
    threads=$("$PY" -c "import torch; print(torch.get_num_threads())")
    echo "# device: $name_of_device; torch threads: $threads; alongside: ${BENCH_NOTE:-nothing}; $(date -u +%FT%TZ)" \
        > "$out/$name.txt.part"
    "$PY" "benchmarks/$name.py" --device "$device" >> "$out/$name.txt.part"
    mv "$out/$name.txt.part" "$out/$name.txt"
    echo "$name: $(tail -n 1 "$out/$name.txt")"
done
