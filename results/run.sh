#!/usr/bin/env bash
# Runs CPU-budgeted configs (configs/cpu/NAME.yaml) one after another and keeps their small results files:
#   bash results/run.sh NAME [NAME...]          e.g.  bash results/run.sh yale_natural yale_pgd
# For each NAME: `fit` on one CPU thread with W&B offline, then `audit` of the last checkpoint (all Yale points; a
# seeded 2,000 + 2,000 for Fashion-MNIST, 1,000 + 1,000 for fmnist_1k_*), then
# results/cpu/NAME/{privacy_curve.csv, audit.json, audit.md, run.json}
# (run.json: the commands, their wall times, the thread count, the seed offset, the commit of the code that ran,
# "+changes" if the package, callbacks or configs differed from it). Checkpoints and W&B files stay in runs/cpu/NAME.
# Set PRIVROB_THREADS (default 1) to give each run more threads; two queues of one thread use both cores here.
# A run longer than a session: PRIVROB_RESUME=1 continues runs/cpu/NAME from its checkpoints/last.ckpt (exact resume)
# when it holds one, on the thread count it was trained on. Each start of the fit is a segment (runs/cpu/NAME/
# segments.tsv: start time, commit, threads); a segment that was killed counts up to its last checkpoint (the work the
# next segment builds on), so run.json's fit_seconds is the wall time of the training the final checkpoint holds, and
# its commit names every segment's code.
# Seeds (issue 16): PRIVROB_SEED=S (S >= 1) runs each config once more with its seed_everything and its data module's
# seed both shifted by S (the split and the initialisation change together), in runs/cpu/NAME_seedS (W&B name
# cpu_NAME_seedS), with its small files in results/cpu/NAME/seeds/S/; make_results reports mean ± sd over the config's
# run and these.
# PRIVROB_DRY_RUN=1 prints each run's fit and audit commands and runs nothing.
set -euo pipefail
fail() { echo "privrob: error: $*" >&2; exit 2; }
[ $# -ge 1 ] || fail "usage: bash results/run.sh NAME [NAME...]  (configs/cpu/NAME.yaml)"
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
threads=${PRIVROB_THREADS:-1} seed=${PRIVROB_SEED:-0} resume=${PRIVROB_RESUME:-0} dry=${PRIVROB_DRY_RUN:-0}
[[ $threads =~ ^[1-9][0-9]*$ ]] || fail "PRIVROB_THREADS must be a positive integer, got '$threads'"
[[ $seed =~ ^(0|[1-9][0-9]*)$ ]] || fail "PRIVROB_SEED must be a non-negative integer, got '$seed'"
[[ $resume =~ ^[01]$ ]] || fail "PRIVROB_RESUME must be 0 or 1, got '$resume'"
[[ $dry =~ ^[01]$ ]] || fail "PRIVROB_DRY_RUN must be 0 or 1, got '$dry'"
for name in "$@"; do
    [ -f "configs/cpu/$name.yaml" ] || fail "no config configs/cpu/$name.yaml"
done
source results/common.sh
quoted() { "$PY" -c 'import shlex, sys; print(shlex.join(sys.argv[1:]))' "$@"; }   # one shell line
folders() {   # "RUN OUT" of name $1 under PRIVROB_SEED
    if [ "$seed" = 0 ]; then echo "runs/cpu/$1 results/cpu/$1"
    else echo "runs/cpu/$1_seed$seed results/cpu/$1/seeds/$seed"; fi
}
logger_name() { echo "cpu_$1_seed$seed"; }   # a seed run's W&B name
declare -A seeds_of   # per name, under PRIVROB_SEED: the config's "SEED_EVERYTHING DATA_SEED"
for name in "$@"; do   # every name checked before any work
    read -r run _ < <(folders "$name")
    if [ "$resume" = 1 ] && [ -f "$run/checkpoints/last.ckpt" ]; then
        [ -f "$run/segments.tsv" ] || fail "$run has a checkpoint but no segments.tsv (its start was not timed): not resumed"
        [ -s "$run/segments.tsv" ] || fail "$run/segments.tsv is empty (its start was not timed): not resumed"
        # a thread count changes the floating-point order of the CPU kernels: a resume keeps the run's
        before=$(tail -n 1 "$run/segments.tsv" | cut -s -f3)
        [ -z "$before" ] || [ "$before" = "$threads" ] ||
            fail "$run was trained on $before thread(s): resume it with PRIVROB_THREADS=$before, not $threads"
    fi
    [ "$seed" = 0 ] && continue
    # the config's seeds as the command line resolves them (defaults included), the W&B name override checked alike
    seeds=$("$PY" -m privrob fit --config "configs/cpu/$name.yaml" \
            --trainer.logger.init_args.name "$(logger_name "$name")" --print_config 2> /dev/null |
            "$PY" -c 'import sys, yaml
c = yaml.safe_load(sys.stdin)
print(c["seed_everything"], c["data"]["init_args"]["seed"])' 2> /dev/null) &&
        [[ $seeds =~ ^[0-9]+\ [0-9]+$ ]] ||
        fail "configs/cpu/$name.yaml: PRIVROB_SEED needs integer seed_everything and data seed and a W&B logger"
    seeds_of[$name]=$seeds
done
for name in "$@"; do
    read -r run out < <(folders "$name")
    options=()
    if [ "$seed" != 0 ]; then
        read -r init split <<< "${seeds_of[$name]}"
        options=(--seed_everything $((init + seed)) --data.init_args.seed $((split + seed))
                 --trainer.default_root_dir "$run" --trainer.logger.init_args.name "$(logger_name "$name")")
    fi
    audit_options "$name"
    last=$run/checkpoints/last.ckpt resumed=0
    if [ "$resume" = 1 ] && [ -f "$last" ]; then resumed=1; fi
    fit=("$PY" -m privrob fit --config "configs/cpu/$name.yaml" "${options[@]}")
    if [ $resumed = 1 ]; then fit+=(--ckpt_path "$last"); else fit+=(--overwrite true); fi  # a re-run replaces the last
    audit=("$PY" -m privrob audit --config "$run/config.yaml" --ckpt_path "$last" --output "$out/audit"
           "${audit_args[@]}")
    if [ "$dry" = 1 ]; then
        quoted "${fit[@]}"; quoted "${audit[@]}"
        continue
    fi
    mkdir -p "$run"
    if [ $resumed = 1 ]; then
        # the segment killed before this one counts up to its last checkpoint
        start=$(tail -n 1 "$run/segments.tsv" | cut -f1)
        awk -v s="$start" -v e="$(stat -c %Y "$last")" 'BEGIN {printf "%.1f\n", (e > s ? e - s : 0)}' \
            >> "$run/segment_seconds"
    else
        rm -f "$run/segments.tsv" "$run/segment_seconds" "$run/fit.log"   # --overwrite starts the run again
    fi
    trained=$(code_state)
    t0=$(date +%s.%N)
    printf '%s\t%s\t%s\n' "${t0%.*}" "$trained" "$threads" >> "$run/segments.tsv"
    # every segment logs to the same offline W&B run, named by the first segment's start
    export OMP_NUM_THREADS=$threads WANDB_MODE=offline WANDB_RESUME=allow \
        WANDB_RUN_ID="cpu-${run#runs/cpu/}-$(head -n 1 "$run/segments.tsv" | cut -f1)"
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
    "$PY" - "$out/run.json" "$t0" "$t1" "$t2" "$threads" "$commit" "$prior" "$(wc -l < "$run/segments.tsv")" \
        "$seed" "$(quoted "${fit[@]}")" "$(quoted "${audit[@]}")" <<'PYEOF'
import json, sys, platform, datetime
path, t0, t1, t2, threads, commit, prior, segments, seed, fit, audit = sys.argv[1:]
t0, t1, t2, prior = float(t0), float(t1), float(t2), float(prior)
json.dump({"fit_command": fit, "audit_command": audit, "seed": int(seed), "fit_segments": int(segments),
           "fit_seconds": round(prior + t1 - t0, 1), "audit_seconds": round(t2 - t1, 1), "threads": int(threads),
           "machine": f"{platform.machine()} CPU, {threads} thread(s) per run", "commit": commit,
           "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")},
          open(path, "w"), indent=1)
print(f"{path}: fit {prior + t1 - t0:.0f} s in {segments} segment(s), audit {t2 - t1:.0f} s")
PYEOF
done
