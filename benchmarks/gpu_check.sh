#!/usr/bin/env bash
# The checks that need a CUDA device, in one go, for a GPU machine (CI has none; these skip or cannot run there):
#   1. tests/scale/test_cuda.py: every method trains under bf16 mixed precision; bounds, PGD and membership scores
#      on the GPU equal the CPU's;
#   2. the benchmarks on the GPU (benchmarks/run_all.sh with BENCH_DEVICE=cuda; train_throughput on the CIFAR10
#      network at width 10, batch 128, float32 and bf16, eager, compiled and CUDA graphs) -> $OUT_DIR/benchmarks/;
#   3. one real epoch of the study's Yale PGD setting (configs/yale_pgd.yaml, callbacks on) at 32-true and at
#      bf16-mixed: wall time of `fit` and the validation metrics -> $OUT_DIR/epoch_<precision>/.
# Usage: DATA=<folder holding CroppedYale/> OUT_DIR=<folder> bash benchmarks/gpu_check.sh [tests] [benchmarks] [epoch]
# (no names: all three)
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
: "${DATA:?set DATA to the folder holding CroppedYale/}" "${OUT_DIR:?set OUT_DIR}"
mkdir -p "$OUT_DIR"
steps=" ${*:-tests benchmarks epoch} "
export WANDB_MODE=disabled PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
"$PY" -c "import torch, pytorch_lightning as pl; print('torch', torch.__version__, 'lightning', pl.__version__)"

if [[ $steps == *" tests "* ]]; then
    echo "== 1. CUDA tests"
    "$PY" -m pytest -q -p no:cacheprovider tests/scale/test_cuda.py > "$OUT_DIR/cuda_tests.log" 2>&1
    grep -E "^(E  |FAILED|ERROR)|passed|failed" "$OUT_DIR/cuda_tests.log" | head -n 40
fi
if [[ $steps == *" benchmarks "* ]]; then
    echo "== 2. benchmarks on the GPU"
    PRIVROB_DATA=$DATA BENCH_DEVICE=cuda BENCH_DIR="$OUT_DIR/benchmarks" bash benchmarks/run_all.sh
fi
if [[ $steps == *" epoch "* ]]; then
    echo "== 3. one real epoch of configs/yale_pgd.yaml"
    for precision in 32-true bf16-mixed; do
        dir=$OUT_DIR/epoch_$precision
        start=$(date +%s.%N)
        "$PY" -m privrob fit --config configs/yale_pgd.yaml --data.init_args.root "$DATA" \
            --trainer.accelerator gpu --trainer.devices 1 --trainer.precision "$precision" \
            --trainer.max_steps -1 --trainer.max_epochs 1 --trainer.enable_progress_bar false \
            --trainer.default_root_dir "$dir" --trainer.logger pytorch_lightning.loggers.CSVLogger \
            --trainer.logger.save_dir "$dir" > "$dir.log" 2>&1 || { echo "$precision: fit failed"; tail -n 20 "$dir.log"; }
        end=$(date +%s.%N)
        "$PY" - "$precision" "$start" "$end" "$dir" <<'PYEOF'
import csv, sys
from pathlib import Path
precision, start, end, folder = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), Path(sys.argv[4])
values = {}
for path in folder.glob("**/metrics.csv"):
    for row in csv.DictReader(path.open()):
        values.update({k: v for k, v in row.items() if v and k.startswith(("val/", "train/acc", "privacy/"))})
print(f"{precision}: fit of one epoch (data setup, validation and callbacks included) {end - start:.1f} s; "
      + ", ".join(f"{k} {float(v):.4f}" for k, v in sorted(values.items())))
PYEOF
    done
fi
