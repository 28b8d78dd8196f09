#!/usr/bin/env bash
# Runs CPU-budgeted configs (configs/cpu/NAME.yaml) one after another and keeps their small results files:
#   bash results/run.sh NAME [NAME...]          e.g.  bash results/run.sh yale_natural yale_pgd
# For each NAME: `fit` on one CPU thread with W&B offline, then `audit` of the last checkpoint (all Yale points; a
# seeded 2,000 + 2,000 for Fashion-MNIST), then results/cpu/NAME/{privacy_curve.csv, audit.json, audit.md, run.json}
# (run.json: the commands, their wall times, the thread count, the commit of the code that ran, "+changes" if the
# package, callbacks or configs differed from it). Checkpoints and W&B files stay in runs/cpu/NAME.
# Set PRIVROB_THREADS (default 1) to give each run more threads; two queues of one thread use both cores here.
# A run longer than a session: PRIVROB_RESUME=1 continues runs/cpu/NAME from its checkpoints/last.ckpt (exact resume)
# when it holds one. Each start of the fit is a segment (runs/cpu/NAME/segments.tsv: start time, commit); a segment
# that was killed counts up to its last checkpoint (the work the next segment builds on), so run.json's fit_seconds
# is the wall time of the training the final checkpoint holds, and its commit names every segment's code.
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
    last=$run/checkpoints/last.ckpt
    if [ "${PRIVROB_RESUME:-0}" = 1 ] && [ -f "$last" ] && [ ! -f "$run/segments.tsv" ]; then
        echo "results/run.sh: $run has a checkpoint but no segments.tsv (its start was not timed): not resumed" >&2
        exit 2
    fi
    if [ "${PRIVROB_RESUME:-0}" = 1 ] && [ -f "$last" ]; then
        fit=("$PY" -m privrob fit --config "configs/cpu/$name.yaml" --ckpt_path "$last")
        # the segment killed before this one counts up to its last checkpoint
        read -r start _ < <(tail -n 1 "$run/segments.tsv")
        awk -v s="$start" -v e="$(stat -c %Y "$last")" 'BEGIN {printf "%.1f\n", (e > s ? e - s : 0)}' \
            >> "$run/segment_seconds"
    else
        rm -f "$run/segments.tsv" "$run/segment_seconds" "$run/fit.log"   # --overwrite starts the run again
    fi
    audit=("$PY" -m privrob audit --config "$run/config.yaml" --ckpt_path "$run/checkpoints/last.ckpt"
           --output "$out/audit" "${audit_args[@]}")
    trained=$(code_state)
    t0=$(date +%s.%N)
    printf '%s\t%s\n' "${t0%.*}" "$trained" >> "$run/segments.tsv"
    # every segment logs to the same offline W&B run, named by the first segment's start
    export OMP_NUM_THREADS=$threads WANDB_MODE=offline WANDB_RESUME=allow \
        WANDB_RUN_ID="cpu-$name-$(head -n 1 "$run/segments.tsv" | cut -f1)"
    "${fit[@]}" >> "$run/fit.log" 2>&1; t1=$(date +%s.%N)
    prior=0
    [ ! -f "$run/segment_seconds" ] || prior=$(awk '{s += $1} END {printf "%.1f", s}' "$run/segment_seconds")
    # "c1" or, over several segments, "c1 (resumed on c2, c3)"
    commit=$(cut -f2 "$run/segments.tsv" | uniq | paste -sd, | sed 's/,/ (resumed on /; s/,/, /g; /(/s/$/)/')
    mkdir -p "$out"   # only once the fit succeeded: a failed run leaves nothing in results/
    audited=$(code_state)
    [ "$audited" = "$trained" ] || commit="$commit (audit: $audited)"   # the code changed while it trained
    "${audit[@]}" > "$run/audit.log" 2>&1; t2=$(date +%s.%N)
    cp "$run/privacy_curve.csv" "$out/"
    "$PY" - "$out/run.json" "$t0" "$t1" "$t2" "$threads" "${fit[*]}" "${audit[*]}" "$commit" "$prior" \
        "$(wc -l < "$run/segments.tsv")" <<'PYEOF'
import json, sys, platform, datetime
path, t0, t1, t2, threads, fit, audit, commit, prior, segments = sys.argv[1:]
t0, t1, t2, prior = float(t0), float(t1), float(t2), float(prior)
json.dump({"fit_command": fit, "audit_command": audit, "fit_segments": int(segments),
           "fit_seconds": round(prior + t1 - t0, 1), "audit_seconds": round(t2 - t1, 1), "threads": int(threads),
           "machine": f"{platform.machine()} CPU, {threads} thread(s) per run", "commit": commit,
           "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")},
          open(path, "w"), indent=1)
print(f"{path}: fit {prior + t1 - t0:.0f} s in {segments} segment(s), audit {t2 - t1:.0f} s")
PYEOF
done
