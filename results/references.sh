#!/usr/bin/env bash
# Strong attacks on a run of results/run.sh (issue 17): trains K reference models of runs/cpu/NAME by its config
# (`privrob references`), then audits its last checkpoint with them: I_B and I_A beside online and offline LiRA and
# RMIA on the clean and the adversarial signal, and the shadow-model threshold of reference 0.
#   bash results/run.sh NAME && bash results/references.sh NAME
# PRIVROB_REFERENCES: K (default 4); PRIVROB_REFERENCE_EPOCHS: epochs of each reference (default: the config's);
# PRIVROB_REFERENCE_FORMAT=channels_last: train them with that memory format (the config's model to float32 rounding,
# 2.3x faster a PGD step on this CPU: benchmarks/train_throughput.py); PRIVROB_THREADS: threads (default 1);
# PRIVROB_REFERENCE_JOBS=J: J references train at a time (one `--index k` process each, PRIVROB_THREADS threads each),
# and the audit then runs on J x PRIVROB_THREADS threads. References stay in runs/cpu/NAME/references (reused when
# there); the small files go to results/cpu/NAME/references/{audit.json, audit.md, audit.roc.png, audit.shadow.json,
# run.json} (run.json also records the target's memory format, which may differ from the table row's run; when every
# reference was already there, the references' time is the folder's, from its manifest to its last reference).
set -euo pipefail
[ $# -eq 1 ] || {
    echo "privrob: error: usage: bash results/references.sh NAME  (after bash results/run.sh NAME)" >&2; exit 2; }
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
name=$1 threads=${PRIVROB_THREADS:-1} k=${PRIVROB_REFERENCES:-4} jobs=${PRIVROB_REFERENCE_JOBS:-1}
for value in "$threads" "$k" "$jobs"; do
    [[ $value =~ ^[1-9][0-9]*$ ]] || {
        echo "privrob: error: PRIVROB_THREADS, PRIVROB_REFERENCES and PRIVROB_REFERENCE_JOBS must be positive" \
             "integers, got '$value'" >&2; exit 2; }
done
run=runs/cpu/$name out=results/cpu/$name/references
last=$run/checkpoints/last.ckpt
[ -f "$last" ] && [ -f "results/cpu/$name/run.json" ] || {
    echo "privrob: error: no finished run $run (run bash results/run.sh $name first)" >&2; exit 2; }
options=()   # the references' own
[ -z "${PRIVROB_REFERENCE_EPOCHS:-}" ] || options=(--reference_epochs "$PRIVROB_REFERENCE_EPOCHS")
[ -z "${PRIVROB_REFERENCE_FORMAT:-}" ] || options+=(--model.init_args.memory_format "$PRIVROB_REFERENCE_FORMAT")
source results/common.sh
audit_options "$name"
train=("$PY" -m privrob references --config "$run/config.yaml" --ckpt_path "$last" --num_reference "$k"
       --output_dir "$run/references" "${options[@]}")
audit=("$PY" -m privrob audit --config "$run/config.yaml" --ckpt_path "$last" --output "$out/audit"
       --references "$run/references" --signals "[clean, adversarial]" --shadow 0 "${audit_args[@]}")
export OMP_NUM_THREADS=$threads WANDB_MODE=offline
commit=$(code_state)
reused=1   # every reference already trained (by an earlier call): its time is then read from the folder
for ((i = 0; i < k; i++)); do [ -f "$run/references/reference_$i.ckpt" ] || reused=0; done
t0=$(date +%s.%N)
if [ "$jobs" -gt 1 ]; then   # J at a time; the call after them trains whatever one of them left (none if all ran)
    seq 0 $((k - 1)) | xargs -P "$jobs" -I{} "${train[@]}" --index {} >> "$run/references.log" 2>&1 || true
fi
"${train[@]}" >> "$run/references.log" 2>&1 || {
    echo "privrob: error: privrob references failed: $(tail -n 1 "$run/references.log")" >&2; exit 2; }
t1=$(date +%s.%N)
mkdir -p "$out"   # only once the references trained
OMP_NUM_THREADS=$((jobs * threads)) "${audit[@]}" > "$run/references_audit.log" 2>&1 || {
    echo "privrob: error: privrob audit failed: $(tail -n 1 "$run/references_audit.log")" >&2; exit 2; }
t2=$(date +%s.%N)
[ "$(code_state)" = "$commit" ] || commit="$commit (audit: $(code_state))"
# the commands as one shell line each (quoted where needed), then the rest
"$PY" - "$out/run.json" "$t0" "$t1" "$t2" "$threads" "$jobs" "$commit" "$run/config.yaml" "$reused" \
    "$run/references" "${#train[@]}" "${train[@]}" "${audit[@]}" <<'PYEOF'
import json, shlex, sys, platform, datetime
from pathlib import Path
import yaml
path, t0, t1, t2, threads, jobs, commit, config, reused, folder, n, *commands = sys.argv[1:]
t0, t1, t2, threads, jobs = float(t0), float(t1), float(t2), int(threads), int(jobs)
train, audit = shlex.join(commands[:int(n)]), shlex.join(commands[int(n):])
seconds = t1 - t0
if reused == "1":   # trained by an earlier call: from the folder's manifest to its last reference
    last = max(p.stat().st_mtime for p in Path(folder).glob("reference_*.ckpt"))
    seconds = last - (Path(folder) / "references.json").stat().st_mtime
    seconds = seconds if seconds >= 0 else None   # a manifest rewritten after its references: no time to give
seconds = None if seconds is None else round(seconds, 1)
model = yaml.safe_load(open(config))["model"]["init_args"]
machine = f"{platform.machine()} CPU, {threads} thread(s)" + (
    f" per reference, {jobs} at a time; the audit on {jobs * threads}" if jobs > 1 else "")
json.dump({"references_command": train, "audit_command": audit, "references_seconds": seconds,
           "audit_seconds": round(t2 - t1, 1), "threads": threads, "reference_jobs": jobs,
           "references_reused": reused == "1",
           "target_memory_format": model.get("memory_format", "contiguous"), "machine": machine, "commit": commit,
           "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")},
          open(path, "w"), indent=1)
print(f"{path}: references {seconds} s{' (trained earlier)' if reused == '1' else ''}, audit {t2 - t1:.0f} s")
PYEOF
