#!/usr/bin/env bash
# Submit a SLURM job array of privrob runs (or run them here, one after another): every config x every seed x every
# epsilon x every width given.
#
# usage: sbatch/sweep.sh [--seeds 0,1,2] [--eps 0.01,0.03] [--widths 1,2,4] [--local] [--dry-run] CONFIG.yaml...
#                        [-- extra fit arguments]
#   --seeds   values for --seed_everything (default: each config's own)
#   --eps     values for the method's training budget --model.init_args.eps (default: each config's own)
#   --widths  values for the architecture's width multiplier (the capacity study; default: each config's own)
#   --local   run each in sequence with python -m privrob fit (run folders runs/sweep-<n>) instead of sbatch
#   --dry-run print the runs and the command without running anything
# Extra sbatch options go in $SBATCH_OPTS, e.g. SBATCH_OPTS="--gpus-per-node=1 --time=24:00:00".
# Example (every Fashion-MNIST method, 3 seeds): sbatch/sweep.sh --seeds 0,1,2 configs/fmnist_*.yaml
set -euo pipefail

usage="usage: sbatch/sweep.sh [--seeds S,...] [--eps E,...] [--widths W,...] [--local] [--dry-run] CONFIG.yaml... [-- extra fit arguments]"
seeds="" eps="" widths="" local=0 dry=0 configs=() extra=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --seeds) seeds=$2; shift 2 ;;
        --eps) eps=$2; shift 2 ;;
        --widths) widths=$2; shift 2 ;;
        --local) local=1; shift ;;
        --dry-run) dry=1; shift ;;
        --) shift; extra=("$@"); break ;;
        -h|--help) echo "$usage"; exit 0 ;;
        *) configs+=("$1"); shift ;;
    esac
done
[[ ${#configs[@]} -ge 1 ]] || { echo "$usage" >&2; exit 2; }
for c in "${configs[@]}"; do
    [[ -f "$c" ]] || { echo "sweep.sh: config not found: $c" >&2; exit 2; }
done

here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "${RUN_ROOT:-runs}"
sweep_file=$(mktemp "${RUN_ROOT:-runs}/sweep-XXXXXX.txt")
IFS=, read -r -a seed_list <<< "${seeds:-}"
IFS=, read -r -a eps_list <<< "${eps:-}"
IFS=, read -r -a width_list <<< "${widths:-}"
[[ ${#seed_list[@]} -gt 0 ]] || seed_list=("")
[[ ${#eps_list[@]} -gt 0 ]] || eps_list=("")
[[ ${#width_list[@]} -gt 0 ]] || width_list=("")
for c in "${configs[@]}"; do
    for s in "${seed_list[@]}"; do
        for e in "${eps_list[@]}"; do
            for w in "${width_list[@]}"; do
                args=("$c")
                [[ -n "$s" ]] && args+=(--seed_everything "$s")
                [[ -n "$e" ]] && args+=(--model.init_args.eps "$e")
                [[ -n "$w" ]] && args+=(--model.init_args.backbone.init_args.width "$w")
                args+=("${extra[@]}")
                printf '%q ' "${args[@]}" >> "$sweep_file"
                echo >> "$sweep_file"
            done
        done
    done
done
n=$(wc -l < "$sweep_file")
echo "sweep.sh: $n runs listed in $sweep_file"
if [[ $local -eq 1 ]]; then
    i=0
    while IFS= read -r line; do
        eval "set -- $line"
        config=$1; shift
        cmd=("${PRIVROB_PYTHON:-python}" -m privrob fit --config "$config" "$@"
             --trainer.default_root_dir "${RUN_ROOT:-runs}/sweep-$i")
        echo "${cmd[*]}"
        [[ $dry -eq 1 ]] || "${cmd[@]}"
        i=$((i + 1))
    done < "$sweep_file"
    exit 0
fi
cmd=(sbatch --array="0-$((n - 1))" --export="ALL,SWEEP_FILE=$sweep_file" ${SBATCH_OPTS:-} "$here/fit.sbatch")
if [[ $dry -eq 1 ]]; then
    cat "$sweep_file"
    echo "${cmd[*]}"
else
    "${cmd[@]}"
fi
