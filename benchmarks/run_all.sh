#!/usr/bin/env bash
# Runs the benchmark scripts one after another on $BENCH_DEVICE (default cpu) and keeps what each printed in
# $BENCH_DIR/<name>.txt (default results/benchmarks), after a first line saying the device, the torch thread count
# and what else ran (RESULTS.md's performance tables are read from there):
#   bash benchmarks/run_all.sh                                   # on an otherwise idle machine
#   OMP_NUM_THREADS=1 BENCH_NOTE="two training runs on the other core" bash benchmarks/run_all.sh
#   BENCH_DEVICE=cuda BENCH_DIR=results/benchmarks/gpu bash benchmarks/run_all.sh
#   bash benchmarks/run_all.sh train_throughput                 # only the benchmarks named
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
device=${BENCH_DEVICE:-cpu}
out=${BENCH_DIR:-results/benchmarks}
mkdir -p "$out"
name_of_device=$("$PY" -c "import sys, torch; d = torch.device(sys.argv[1])
print(torch.cuda.get_device_name(d) if d.type == 'cuda' else 'CPU')" "$device")
names=("$@")
[ $# -gt 0 ] || names=(callback_overhead attack_cost bounds_cost loop_overhead train_throughput)
for name in "${names[@]}"; do
    threads=$("$PY" -c "import torch; print(torch.get_num_threads())")
    echo "# device: $name_of_device; torch threads: $threads; alongside: ${BENCH_NOTE:-nothing}; $(date -u +%FT%TZ)" \
        > "$out/$name.txt.part"
    args=(--device "$device")
    if [ "$name" = train_throughput ] && [ "$device" = cuda ]; then   # the study's CIFAR10 network, issue 18's grid
        args+=(--width 10 --batch 128 --precisions 32,bf16-mixed --compile none,default,reduce-overhead --warmup 3)
    fi
    [ "$name" != bounds_cost ] || [ "$device" != cuda ] || args+=(--compile reduce-overhead)   # launch-bound there
    "$PY" "benchmarks/$name.py" "${args[@]}" >> "$out/$name.txt.part"
    mv "$out/$name.txt.part" "$out/$name.txt"
    echo "$name: $(tail -n 1 "$out/$name.txt")"
done
