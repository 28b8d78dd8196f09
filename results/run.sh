#!/usr/bin/env bash
# Runs CPU-budgeted configs (configs/cpu/NAME.yaml) one after another and keeps their small results files:
#   bash results/run.sh NAME [NAME...]          e.g.  bash results/run.sh yale_natural yale_pgd
# For each NAME: `fit` on one CPU thread with W&B offline, then `audit` of the last checkpoint (all Yale points; a
# seeded 2,000 + 2,000 for Fashion-MNIST), then results/cpu/NAME/{privacy_curve.csv, audit.json, audit.md, run.json}
# (run.json: the commands, their wall times, the thread count, the commit of the code that ran, "+changes" if the
# package, callbacks or configs differed from it). Checkpoints and W&B files stay in runs/cpu/NAME.
# Set PRIVROB_THREADS (default 1) to give each run more threads; two queues of one thread use both cores here.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: bash results/run.sh NAME [NAME...]  (configs/cpu/NAME.yaml)" >&2; exit 2; }
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
threads=${PRIVROB_THREADS:-1}
for name in "$@"; do
    [ -f "configs/cpu/$name.yaml" ] || { echo "results/run.sh: no config configs/cpu/$name.yaml" >&2; exit 2; }
done
code_state() {   # the commit, and "+changes" if the package, callbacks or configs differ from it (untracked too)
    echo "$(git rev-parse --short HEAD)$([ -z "$(git status --porcelain -- privrob callbacks configs)" ] || echo +changes)"
}
for name in "$@"; do
    run=runs/cpu/$name out=results/cpu/$name
    mkdir -p "$run"
    audit_args=()
    case $name in
        fmnist_*) audit_args=(--num_points 2000);;
        yale_ibp) audit_args=(--bound_methods "[ibp]" --eps 0.03137254901960784);;  # by IBP at 8/255, as the study
        *_ibp) audit_args=(--bound_methods "[ibp]");;   # the study certified its IBP models by IBP
    esac
    fit=("$PY" -m privrob fit --config "configs/cpu/$name.yaml" --overwrite true)   # a re-run replaces the last
    audit=("$PY" -m privrob audit --config "$run/config.yaml" --ckpt_path "$run/checkpoints/last.ckpt"
           --output "$out/audit" "${audit_args[@]}")
    export OMP_NUM_THREADS=$threads WANDB_MODE=offline
    commit=$(code_state)
    t0=$(date +%s.%N); "${fit[@]}" > "$run/fit.log" 2>&1; t1=$(date +%s.%N)
    mkdir -p "$out"   # only once the fit succeeded: a failed run leaves nothing in results/
    audited=$(code_state)
    [ "$audited" = "$commit" ] || commit="$commit (audit: $audited)"   # the code changed while it trained
    "${audit[@]}" > "$run/audit.log" 2>&1; t2=$(date +%s.%N)
    cp "$run/privacy_curve.csv" "$out/"
    "$PY" - "$out/run.json" "$t0" "$t1" "$t2" "$threads" "${fit[*]}" "${audit[*]}" "$commit" <<'PYEOF'
import json, sys, platform, datetime
path, t0, t1, t2, threads, fit, audit, commit = sys.argv[1:]
t0, t1, t2 = float(t0), float(t1), float(t2)
json.dump({"fit_command": fit, "audit_command": audit,
           "fit_seconds": round(t1 - t0, 1), "audit_seconds": round(t2 - t1, 1), "threads": int(threads),
           "machine": f"{platform.machine()} CPU, {threads} thread(s) per run", "commit": commit,
           "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")},
          open(path, "w"), indent=1)
print(f"{path}: fit {t1 - t0:.0f} s, audit {t2 - t1:.0f} s")
PYEOF
done
