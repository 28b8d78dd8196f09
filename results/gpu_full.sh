#!/usr/bin/env bash
# The study's own Yale schedules on one GPU (issue 16, item 5): each config of configs/yale_NAME.yaml fits in its own
# process, all at once on the one GPU, then each is audited on its last checkpoint as results/run.sh audits a CPU
# run (all 1,900 + 514 points; IBP by IBP at 8/255), and the small files go to $OUT/yale_NAME/{audit.json, audit.md,
# privacy_curve.csv, run.json}:
#   DATA=<folder holding CroppedYale/> bash results/gpu_full.sh [NAME...]
# (NAME: natural ibp diffai pgd trades wrm, the default all six)
# Natural, IBP and DiffAI run their full schedules (20,001 steps; 99 epochs). PGD, TRADES and WRM take about 11
# network passes a step (14-18 minutes each on an H200 at full length): they run the first PRIVROB_GPU_FRACTION
# (default 0.4) of theirs, the study's model at that step (its learning-rate drops at steps 10,000 and 15,000 come
# later). The dual method does not fit. Every fit also stops at PRIVROB_GPU_MINUTES (default 9, Lightning's
# max_time), so fits and audits end within 12 minutes; run.json records the step reached and the fraction of the
# study's schedule that is.
# OUT (default results/gpu): where the small files go; checkpoints stay in RUNS (default runs/gpu)/yale_NAME.
# PRIVROB_GPU_TINY=1: the same on the CPU at a tiny size (3 steps each on 40 members, 16 + 16 audited points), to try
# the script (tests/test_results.py does).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
: "${DATA:?set DATA to the folder holding CroppedYale/}"
out=${OUT:-results/gpu} runs=${RUNS:-runs/gpu} fraction=${PRIVROB_GPU_FRACTION:-0.4} minutes=${PRIVROB_GPU_MINUTES:-9}
names=("$@")
[ $# -gt 0 ] || names=(natural ibp diffai pgd trades wrm)
for name in "${names[@]}"; do
    case $name in natural|ibp|diffai|pgd|trades|wrm) ;;
        *) echo "privrob: error: results/gpu_full.sh: no GPU schedule for '$name'" \
                "(natural ibp diffai pgd trades wrm)" >&2
           exit 2;;
    esac
done
"$PY" -c "import sys; f = float(sys.argv[1]); assert 0 < f <= 1" "$fraction" 2>/dev/null ||
    { echo "privrob: error: PRIVROB_GPU_FRACTION must be in (0, 1], got '$fraction'" >&2; exit 2; }
[[ $minutes =~ ^[1-9][0-9]?$ ]] ||
    { echo "privrob: error: PRIVROB_GPU_MINUTES must be whole minutes below 100, got '$minutes'" >&2; exit 2; }
max_time=$(printf "00:%02d:%02d:00" $((minutes / 60)) $((minutes % 60)))   # Lightning's DD:HH:MM:SS
if [ "${PRIVROB_GPU_TINY:-0}" = 1 ]; then
    device=(--trainer.accelerator cpu --trainer.devices 1) points=(--num_points 16)
    tiny=(--data.init_args.num_members 40 --data.init_args.num_nonmembers 40)
else
    device=(--trainer.accelerator gpu --trainer.devices 1) points=() tiny=()
fi
export WANDB_MODE=offline PYTHONUNBUFFERED=1
commit=$(git rev-parse --short HEAD)$([ -z "$(git status --porcelain -- privrob callbacks configs)" ] || echo +changes)

# the study's length of each schedule, and the part of it trained here: "max_steps N" or "max_epochs N"
length() {
    "$PY" - "configs/yale_$1.yaml" <<'PYEOF'
import sys, yaml
trainer = yaml.safe_load(open(sys.argv[1]))["trainer"]
steps = trainer.get("max_steps", -1)
print(f"max_steps {steps}" if steps > 0 else f"max_epochs {trainer['max_epochs']}")
PYEOF
}
machine=$("$PY" -c "import sys, torch
print(torch.cuda.get_device_name(0) if sys.argv[1] == 'gpu' else 'CPU (tiny try)')" "${device[1]}")
declare -A pids start schedule audit_start
for name in "${names[@]}"; do
    run=$runs/yale_$name
    read -r unit full < <(length "$name")
    part=$full
    case $name in pgd|trades|wrm)
        part=$("$PY" -c "import sys; print(max(1, round(int(sys.argv[1]) * float(sys.argv[2]))))" "$full" "$fraction");;
    esac
    [ "${PRIVROB_GPU_TINY:-0}" != 1 ] || { unit=max_steps part=3; }
    limits=(--trainer."$unit" "$part")
    [ "$unit" = max_steps ] && limits+=(--trainer.max_epochs -1) || limits+=(--trainer.max_steps -1)
    mkdir -p "$run"
    schedule[$name]="$unit $full $part"
    start[$name]=$(date +%s.%N)
    rm -f "$run.fit_end" "$run.audit_end"
    # each process stamps its own end (a wait in order would stamp a later one's)
    ("$PY" -m privrob fit --config "configs/yale_$name.yaml" --overwrite true --data.init_args.root "$DATA" \
        "${tiny[@]}" "${device[@]}" "${limits[@]}" --trainer.max_time "$max_time" --trainer.default_root_dir "$run" \
        --trainer.enable_progress_bar false > "$run.fit.log" 2>&1 && date +%s.%N > "$run.fit_end") &
    pids[$name]=$!
done
failed=0
for name in "${names[@]}"; do
    run=$runs/yale_$name
    wait "${pids[$name]}" || { echo "yale_$name: fit failed: $(tail -n 1 "$run.fit.log")" >&2; failed=1; }
done
for name in "${names[@]}"; do   # the audits, in parallel too
    run=$runs/yale_$name
    [ -f "$run.fit_end" ] || continue
    eps=() bounds=()
    [ "$name" != ibp ] || { eps=(--eps 0.03137254901960784); bounds=(--bound_methods "[ibp]"); }
    mkdir -p "$out/yale_$name"
    audit_start[$name]=$(date +%s.%N)
    ("$PY" -m privrob audit --config "$run/config.yaml" --ckpt_path "$run/checkpoints/last.ckpt" \
        --output "$out/yale_$name/audit" "${device[@]}" "${points[@]}" "${eps[@]}" "${bounds[@]}" \
        > "$run.audit.log" 2>&1 && date +%s.%N > "$run.audit_end") &
    pids[$name]=$!
done
for name in "${names[@]}"; do
    run=$runs/yale_$name
    [ -f "$run.fit_end" ] || continue
    wait "${pids[$name]}" || { echo "yale_$name: audit failed: $(tail -n 1 "$run.audit.log")" >&2; failed=1; continue; }
    cp "$run/privacy_curve.csv" "$out/yale_$name/"
    "$PY" - "$out/yale_$name" "${start[$name]}" "$(cat "$run.fit_end")" "${audit_start[$name]}" \
        "$(cat "$run.audit_end")" "$commit" \
        ${schedule[$name]} "$machine" <<'PYEOF'
import datetime, json, sys
from pathlib import Path
folder, t0, t1, t2, t3, commit, unit, full, part, machine = sys.argv[1:]
folder, t0, t1, t2, t3 = Path(folder), float(t0), float(t1), float(t2), float(t3)
meta = json.loads((folder / "audit.json").read_text())["meta"]
step = meta["global_step"]
# the study's schedule in steps: 95 batches of 20 an epoch (1,900 members)
full_steps = int(full) if unit == "max_steps" else int(full) * 95
json.dump({"schedule": f"{unit} {full}", "asked": f"{unit} {part}", "final_step": step,
           "fraction": round(step / full_steps, 4), "fit_seconds": round(t1 - t0, 1),
           "audit_seconds": round(t3 - t2, 1), "machine": machine, "commit": commit,
           "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")},
          open(folder / "run.json", "w"), indent=1)
print(f"{folder}: step {step} of {full_steps} ({step / full_steps:.1%}), fit {t1 - t0:.0f} s, audit {t3 - t2:.0f} s")
PYEOF
done
exit $failed
