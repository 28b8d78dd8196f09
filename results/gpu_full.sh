#!/usr/bin/env bash
# The study's own Yale schedules on one GPU (issue 16, item 5): each config of configs/yale_NAME.yaml fits in its own
# process, all at once on the one GPU, then each is audited on its last checkpoint as results/run.sh audits a CPU
# run (all 1,900 + 514 points; IBP by IBP at 8/255, DiffAI by its box: results/common.sh), and the small files go to
# $OUT/yale_NAME/{audit.json, audit.md, audit.roc.png, privacy_curve.csv, run.json}, each folder replaced whole once
# it is complete:
#   DATA=<folder holding CroppedYale/> bash results/gpu_full.sh [NAME...]
# (NAME: natural ibp diffai pgd trades wrm, the default all six; the dual method does not fit.)
# Natural, IBP and DiffAI have the shortest schedules (20,001 steps; 99 epochs); PGD, TRADES and WRM take about 11
# network passes a step (14-18 minutes each on an H200 at full length) and train the first PRIVROB_GPU_FRACTION
# (default 0.4) of theirs: the study's model at that step (its learning-rate drops at steps 10,000 and 15,000 come
# later). Every fit also stops at PRIVROB_GPU_MINUTES (default 6, Lightning's max_time), so that fits and audits
# end within one 10-minute command of a lent GPU; run.json records the step reached and the fraction of the study's
# schedule it is. The data travel with the command (CroppedYale is 85 MB: e.g. an archive unpacked there).
# OUT (default results/gpu): where the small files go; checkpoints stay in RUNS (default runs/gpu)/yale_NAME.
# PRIVROB_GPU_TINY=1: the same on the CPU at a tiny size (3 steps each on 40 members, 16 + 16 audited points), to try
# the script (tests/test_results.py does); make_results refuses its output as a GPU row.
set -euo pipefail
error() { echo "privrob: error: results/gpu_full.sh: $*" >&2; exit 2; }
[ -n "${DATA:-}" ] || error "set DATA to the folder holding CroppedYale/"
[ -d "$DATA/CroppedYale" ] || error "no folder $DATA/CroppedYale (DATA must hold the Yale Face data)"
DATA=$(cd "$DATA" && pwd)   # before the cd below
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
out=${OUT:-results/gpu} runs=${RUNS:-runs/gpu} fraction=${PRIVROB_GPU_FRACTION:-0.4} minutes=${PRIVROB_GPU_MINUTES:-6}
tiny=${PRIVROB_GPU_TINY:-0}
names=("$@")
[ $# -gt 0 ] || names=(natural ibp diffai pgd trades wrm)
declare -A seen
for name in "${names[@]}"; do
    case $name in natural|ibp|diffai|pgd|trades|wrm) ;;
        *) error "no GPU schedule for '$name' (natural ibp diffai pgd trades wrm)";;
    esac
    [ -z "${seen[$name]:-}" ] || error "'$name' named twice"
    seen[$name]=1
done
"$PY" -c "import sys; f = float(sys.argv[1]); assert 0 < f <= 1" "$fraction" 2>/dev/null ||
    error "PRIVROB_GPU_FRACTION must be in (0, 1], got '$fraction'"
[[ $minutes =~ ^[1-9][0-9]?$ ]] || error "PRIVROB_GPU_MINUTES must be whole minutes below 100, got '$minutes'"
case $tiny in 0|1) ;; *) error "PRIVROB_GPU_TINY must be 0 or 1, got '$tiny'";; esac
max_time=$(printf "00:%02d:%02d:00" $((minutes / 60)) $((minutes % 60)))   # Lightning's DD:HH:MM:SS
if [ "$tiny" = 1 ]; then
    device=(--trainer.accelerator cpu --trainer.devices 1) points=(--num_points 16) machine="CPU (tiny try)"
    small=(--data.init_args.num_members 40 --data.init_args.num_nonmembers 40)
else
    machine=$("$PY" -c "import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')")
    [ -n "$machine" ] || error "no CUDA device (PRIVROB_GPU_TINY=1 tries the script on the CPU)"
    device=(--trainer.accelerator gpu --trainer.devices 1) points=() small=()
fi
git rev-parse --git-dir > /dev/null 2>&1 || error "not in a git checkout: run.json must name the commit"
source results/common.sh
commit=$(code_state)
export WANDB_MODE=offline PYTHONUNBUFFERED=1

# the study's length of each schedule: "max_steps N" or "max_epochs N"
length() {
    "$PY" - "configs/yale_$1.yaml" <<'PYEOF'
import sys, yaml
trainer = yaml.safe_load(open(sys.argv[1]))["trainer"]
steps = trainer.get("max_steps", -1)
print(f"max_steps {steps}" if steps > 0 else f"max_epochs {trainer['max_epochs']}")
PYEOF
}
declare -A pids start schedule audit_start fit_command audit_command
for name in "${names[@]}"; do
    run=$runs/yale_$name
    read -r unit full < <(length "$name")
    part=$full
    case $name in pgd|trades|wrm)
        part=$("$PY" -c "import sys; print(max(1, round(int(sys.argv[1]) * float(sys.argv[2]))))" "$full" "$fraction");;
    esac
    limits=(--trainer."$unit" "$part")
    [ "$tiny" = 0 ] || limits=(--trainer.max_steps 3)
    case ${limits[0]} in *max_steps) limits+=(--trainer.max_epochs -1);; *) limits+=(--trainer.max_steps -1);; esac
    schedule[$name]="$unit $full ${limits[0]#--trainer.} ${limits[1]}"
    mkdir -p "$run"
    rm -rf "$run.fit_end" "$run.audit_end" "$run.result"
    cmd=("$PY" -m privrob fit --config "configs/yale_$name.yaml" --overwrite true --data.init_args.root "$DATA"
         "${small[@]}" "${device[@]}" "${limits[@]}" --trainer.max_time "$max_time" --trainer.default_root_dir "$run"
         --trainer.enable_progress_bar false)
    fit_command[$name]="${cmd[*]}"
    start[$name]=$(date +%s.%N)
    ("${cmd[@]}" > "$run.fit.log" 2>&1 && date +%s.%N > "$run.fit_end") &   # each process stamps its own end
    pids[$name]=$!
done
failed=0
for name in "${names[@]}"; do
    wait "${pids[$name]}" || { echo "yale_$name: fit failed: $(tail -n 1 "$runs/yale_$name.fit.log")" >&2; failed=1; }
done
for name in "${names[@]}"; do   # the audits, in parallel too, each into a folder of its own until complete
    run=$runs/yale_$name
    [ -f "$run.fit_end" ] || continue
    audit_options "yale_$name"   # sets audit_args
    mkdir -p "$run.result"
    cmd=("$PY" -m privrob audit --config "$run/config.yaml" --ckpt_path "$run/checkpoints/last.ckpt"
         --output "$run.result/audit" "${device[@]}" "${points[@]}" "${audit_args[@]}")
    audit_command[$name]="${cmd[*]}"
    audit_start[$name]=$(date +%s.%N)
    ("${cmd[@]}" > "$run.audit.log" 2>&1 && date +%s.%N > "$run.audit_end") &
    pids[$name]=$!
done
for name in "${names[@]}"; do
    run=$runs/yale_$name
    [ -f "$run.fit_end" ] || continue
    wait "${pids[$name]}" || { echo "yale_$name: audit failed: $(tail -n 1 "$run.audit.log")" >&2; failed=1; continue; }
    cp "$run/privacy_curve.csv" "$run.result/"
    "$PY" - "$run.result" "${start[$name]}" "$(cat "$run.fit_end")" "${audit_start[$name]}" "$(cat "$run.audit_end")" \
        "$commit" "$machine" "${fit_command[$name]}" "${audit_command[$name]}" ${schedule[$name]} <<'PYEOF'
import datetime, json, sys
from pathlib import Path
folder, t0, t1, t2, t3, commit, machine, fit, audit, unit, full, asked, part = sys.argv[1:]
folder, (t0, t1, t2, t3) = Path(folder), map(float, (t0, t1, t2, t3))
step = json.loads((folder / "audit.json").read_text())["meta"]["global_step"]
full_steps = int(full) if unit == "max_steps" else int(full) * 95   # the study's epoch: 1,900 members, batches of 20
json.dump({"fit_command": fit, "audit_command": audit, "schedule": f"{unit} {full}", "asked": f"{asked} {part}",
           "final_step": step, "fraction": round(step / full_steps, 4), "fit_seconds": round(t1 - t0, 1),
           "audit_seconds": round(t3 - t2, 1), "machine": machine, "commit": commit,
           "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")},
          open(folder / "run.json", "w"), indent=1)
print(f"{folder}: step {step} of {full_steps} ({step / full_steps:.1%}), fit {t1 - t0:.0f} s, audit {t3 - t2:.0f} s")
PYEOF
    mkdir -p "$out"
    rm -rf "$out/yale_$name" && mv "$run.result" "$out/yale_$name"   # the old folder goes only for a complete one
done
exit $failed
