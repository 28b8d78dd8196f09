#!/usr/bin/env bash
# Train the reference models of a target checkpoint (LiRA, RMIA, shadow thresholds) as a SLURM job array: task k runs
# `privrob references --index k`, so the K models train in parallel into one folder (default <ckpt>.references).
# The masks are drawn from the seed, the same in every task, and a reference already saved there is not trained again,
# so a failed or preempted task is simply submitted again.
#
# usage: sbatch/references.sh [--num_reference K] [--dry-run] CONFIG.yaml TARGET.ckpt [-- extra `privrob references`
#                             arguments, e.g. --training_set target_size --reference_epochs 30 --output_dir DIR]
#   --num_reference  K reference models (default 4; at least 3)
#   --dry-run        print the sbatch command without submitting it
# Extra sbatch options go in $SBATCH_OPTS, e.g. SBATCH_OPTS="--gpus-per-node=1 --time=12:00:00".
# Then:  python -m privrob audit --config CONFIG.yaml --ckpt_path TARGET.ckpt --references <ckpt>.references
#
#SBATCH --job-name=references
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --output=slurm-%x-%A_%a.out
set -euo pipefail

usage="usage: sbatch/references.sh [--num_reference K] [--dry-run] CONFIG.yaml TARGET.ckpt [-- extra arguments]"
if [[ "${1:-}" == --array-task ]]; then   # one task of the array this script submitted: train reference k
    srun "${PRIVROB_PYTHON:-python}" -m privrob references --config "$2" --ckpt_path "$3" \
        --num_reference "$4" --index "$SLURM_ARRAY_TASK_ID" "${@:5}"
    exit
fi
k=4 dry=0 positional=() extra=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --num_reference) [[ $# -ge 2 ]] || { echo "$usage" >&2; exit 2; }; k=$2; shift 2 ;;
        --dry-run) dry=1; shift ;;
        --) shift; extra=("$@"); break ;;
        -h|--help) echo "$usage"; exit 0 ;;
        *) positional+=("$1"); shift ;;
    esac
done
[[ ${#positional[@]} -eq 2 ]] || { echo "$usage" >&2; exit 2; }
[[ "$k" =~ ^[0-9]+$ && $k -ge 3 ]] || {
    echo "references.sh: --num_reference must be an integer of at least 3, got $k" >&2; exit 2; }
config=${positional[0]} ckpt=${positional[1]}
[[ -f "$config" ]] || { echo "references.sh: config not found: $config" >&2; exit 2; }
[[ -f "$ckpt" ]] || { echo "references.sh: checkpoint not found: $ckpt" >&2; exit 2; }
for a in "${extra[@]}"; do   # the array sets these: one task per index of K
    case "$a" in --num_reference*|--index*)
        echo "references.sh: give K as --num_reference before --, not $a among the extra arguments" >&2; exit 2;;
    esac
done
cmd=(sbatch --array="0-$((k - 1))" ${SBATCH_OPTS:-} "$(cd "$(dirname "$0")" && pwd)/references.sh"
     --array-task "$config" "$ckpt" "$k" "${extra[@]}")
if [[ $dry -eq 1 ]]; then
    printf '%q ' "${cmd[@]}"; echo
else
    "${cmd[@]}"
fi
