# What results/run.sh, results/references.sh and results/gpu_full.sh share (sourced by each, so their audits and their
# commit records agree).

# The audit options of a run by its config's name (configs/cpu/NAME.yaml, or yale_NAME on the GPU): how many points
# (all Yale points; a seeded 2,000 + 2,000 on Fashion-MNIST, all 1,000 members and as many non-members for
# fmnist_1k_*) and, for IBP and DiffAI, the certified method the study used (dual runs certify by
# their method's own order: the exact dual where it fits the memory budget, else CROWN-IBP).
audit_options() {   # sets the array audit_args for run name $1
    audit_args=()
    case $1 in
        fmnist_1k_*) audit_args+=(--num_points 1000);;   # the configs of 1,000 members
        fmnist_*) audit_args+=(--num_points 2000);;
    esac
    case $1 in
        yale_ibp) audit_args+=(--bound_methods "[ibp]" --eps 0.03137254901960784);;  # by IBP at 8/255, as the study
        *_ibp) audit_args+=(--bound_methods "[ibp]");;   # the study certified its IBP models by IBP
        *_diffai) audit_args+=(--bound_methods "[box]");;   # and DiffAI's by its box (Top.domRes)
    esac
}

code_state() {   # the commit, and "+changes" if the package, callbacks or configs differ from it (untracked too)
    echo "$(git rev-parse --short HEAD)$([ -z "$(git status --porcelain -- privrob callbacks configs)" ] || echo +changes)"
}
