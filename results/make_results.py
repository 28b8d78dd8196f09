"""Write RESULTS.md from the results files, so that no number in it is typed by hand (issue 9).

    python results/make_results.py            # rewrites RESULTS.md, results/{yale,fmnist}_privacy_curves.png
                                              # and results/summary_ia_vs_adv_gap.png
    python results/make_results.py --check    # exit 1 if RESULTS.md differs from what the files give

Inputs: ``results/cpu/<run>/{audit.json, run.json, privacy_curve.csv}`` (written by ``results/run.sh``), the study's
published values ``results/published.csv`` (checked against the study's own outputs and reference table by
``tests/test_results.py``), the benchmark outputs ``results/benchmarks/<name>.txt`` (``benchmarks/run_all.sh``) and
the hand-written reading ``results/reading.md``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import statistics
import sys
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
#: the study's own schedules run on a GPU (``results/gpu_full.sh``), beside the CPU-budget rows
GPU = RESULTS / "gpu"

DATASETS = {"yale": "Yale Face (Extended Yale B, cropped)", "fmnist": "Fashion-MNIST"}
METHODS = {"natural": "natural", "pgd": "PGD (Madry)", "wrm": "WRM (Sinha)", "trades": "TRADES (Zhang)",
           "dual": "dual (Wong & Kolter)", "diffai": "DiffAI (Mirman)", "ibp": "IBP (Gowal)"}
COLUMNS = ("train_acc", "test_acc", "adv_train_acc", "adv_test_acc", "I_B", "I_A", "I_V",
           "auc_I_B", "auc_I_A", "tpr1_I_B", "tpr1_I_A")
HEADER = ("| method | source | train acc | test acc | adv train acc | adv test acc | I_B | I_A | I_V "
          "| AUC I_B | AUC I_A | TPR@1%FPR I_B | TPR@1%FPR I_A | fit + audit time | code |")
#: audits of the runs measured before issue 14's fixes (evaluation mode, final checkpoint, the study's losses and
#: networks), kept to show what those fixes moved
BEFORE = RESULTS / "before_issue14"
MOVED = (("train_acc", "train acc"), ("test_acc", "test acc"), ("adv_train_acc", "adv train acc"),
         ("adv_test_acc", "adv test acc"), ("I_B", "I_B"), ("I_A", "I_A"))
#: runs whose budget changed beside the fixes (their configs' headers say why): their before → after is not one config's
CHANGED_WITH_FIXES = {"yale_ibp": "width 2 → 4; audited at ε 0.0314 → 8/255"}
#: members a config trains on (one device): num_members, else Yale's members_per_class (50) of each of 38 people and
#: Fashion-MNIST's 60,000
MEMBERS = {"yale": lambda data: data.get("num_members") or 38 * data.get("members_per_class", 50),
           "fmnist": lambda data: data.get("num_members") or 60000}
#: the study's regime measured on fewer members trained longer (issue 16, item 3): per dataset, the run prefix of
#: configs/cpu/<prefix>_{natural,pgd,trades}.yaml, where the robust models fit their own adversarial examples
REGIME = {"fmnist": "fmnist_1k"}
#: what the study's models reached there: train accuracy of natural training, adversarial train accuracy of the rest
REGIME_TRAIN_ACC, REGIME_ADV_TRAIN_ACC = 0.99, 0.9
#: the study's evaluation budgets: 0.0314 on Yale, 0.1 on Fashion-MNIST, 8/255 for IBP on Yale (original-study.md §3.1)
EVAL_EPS = {"yale": 0.0314, "fmnist": 0.1, ("yale", "ibp"): 8 / 255}
#: chance accuracy per dataset (38 people, 10 classes); a model under twice it on its own members learned nothing
CHANCE = {"yale": 1 / 38, "fmnist": 1 / 10}
# benchmark file -> (command, [(printed key, target)])
BENCHMARKS = {
    "callback_overhead": ("python benchmarks/callback_overhead.py", [("efficiency", "≤ 0.8"), ("ratio", "≤ 0.15")]),
    "attack_cost": ("python benchmarks/attack_cost.py", [("ratio", "≤ 1.10")]),
    "bounds_cost": ("python benchmarks/bounds_cost.py", [("ibp_ratio", "≤ 2.5"), ("dual_ratio", "≤ 1.0"),
                                                       ("projected_dual_ratio", "≤ 0.5")]),
    "loop_overhead": ("python benchmarks/loop_overhead.py", [("ratio", "≤ 1.05")]),
    "train_throughput": ("python benchmarks/train_throughput.py", [("ratio", "≤ 1.05")]),
}


def fmt(value) -> str:
    return "–" if value is None else f"{value:.4f}"


def method_of(run: str) -> str:
    """The METHODS key a run name ends in (``yale_pgd``, ``fmnist_1k_pgd``: ``pgd``)."""
    return run.rsplit("_", 1)[1]


def dataset_of(run: str) -> str:
    """The DATASETS key a run name starts with (``fmnist_1k_pgd``: ``fmnist``)."""
    return run.split("_", 1)[0]


def runs(dataset: str, prefix: str | None = None) -> list[str]:
    """Finished runs ``<prefix>_<method>`` (``prefix``: the dataset's CPU-budget rows by default, or a REGIME's), in
    the order of METHODS, each checked by :func:`check_audited`."""
    prefix = prefix or dataset
    done = {p.name for p in (RESULTS / "cpu").glob(f"{prefix}_*") if (p / "audit.json").exists()}
    found = [f"{prefix}_{m}" for m in METHODS if f"{prefix}_{m}" in done]
    for run in found:
        check_audited(run)
    return found


def regime_runs(dataset: str) -> list[str]:
    """The finished runs of ``dataset``'s REGIME (none where it has no regime)."""
    return runs(dataset, REGIME[dataset]) if dataset in REGIME else []


@lru_cache(maxsize=None)
def audit_file(run: str) -> dict:
    return json.loads((RESULTS / "cpu" / run / "audit.json").read_text())


def audit(run: str) -> dict:
    """A run's audit report per strategy (read once: the tables, budget and gaps all use it)."""
    return audit_file(run)["strategies"]


@lru_cache(maxsize=None)
def cpu_config(run: str) -> dict:
    """``configs/cpu/<run>.yaml``, read once."""
    return config_file(ROOT / "configs" / "cpu" / f"{run}.yaml")


@lru_cache(maxsize=None)
def study_config(name: str) -> dict:
    """The study's setting, ``configs/<name>.yaml``, read once."""
    return config_file(ROOT / "configs" / f"{name}.yaml")


def config_file(path: Path) -> dict:
    import yaml

    return yaml.safe_load(path.read_text())


def final_step(run: str) -> int:
    """The last optimizer step of ``configs/cpu/<run>.yaml``, from the config alone: its ``max_steps``, or its
    ``max_epochs`` times the batches of an epoch (members / batch size, the last batch partial)."""
    config = cpu_config(run)
    trainer, data = config["trainer"], config["data"]["init_args"]
    if trainer.get("max_steps", -1) > 0:
        return trainer["max_steps"]
    return trainer["max_epochs"] * math.ceil(members_of(run)[0] / data["batch_size"])


def check_audited(run: str) -> None:
    """Refuse a row whose audit is not of its config's final model, or not at the study's evaluation budget, or
    whose run.json names no commit of the code that measured it."""
    check_audit(run, audit_file(run)["meta"], run_info(run), f"results/cpu/{run}", f"bash results/run.sh {run}")


def check_audit(run: str, meta: dict, info: dict, where: str, rerun: str, final: int | None = None,
                source: str | None = None) -> None:
    """The checks of :func:`check_audited` on one audit's meta and its run.json (``where``: the folder, ``rerun``:
    the command that measures it again; ``final``: the step the audit must be of, by default the last of
    ``configs/cpu/<run>.yaml``, ``source``)."""
    if not info.get("commit"):
        raise ValueError(f"{where}/run.json names no commit (measured before results/run.sh recorded one, "
                         f"before the fixes of issue 14); re-run {rerun}")
    dataset, method = dataset_of(run), method_of(run)
    final, source = (final_step(run), f"configs/cpu/{run}.yaml") if final is None else (final, source)
    if meta.get("global_step") != final:
        raise ValueError(f"{where}: the audited checkpoint is at step {meta.get('global_step')}, not at the "
                         f"final step {final} of {source}; re-run {rerun}")
    eps = EVAL_EPS.get((dataset, method), EVAL_EPS[dataset])
    if abs(meta["eps"] - eps) > 1e-12:
        raise ValueError(f"{where}: audited at eps {meta['eps']}, the study evaluated at {eps}")


def at_chance(run: str, strategies: dict | None = None) -> bool:
    """Whether ``run``'s model (or the one ``strategies`` audits: another seed's) classifies its own members at chance
    (under twice it): its row measures a collapse, not the cost of robustness, and the tables and figure say so."""
    return measured(run, strategies)["train_acc"] < 2 * CHANCE[dataset_of(run)]


def not_robust(run: str, strategies: dict | None = None) -> bool:
    """Whether a robust method's model, trained out of chance, classifies its own members' adversarial examples at
    chance (under twice it): it trained to no robustness, so its gaps measure no cost of robustness either."""
    return (method_of(run) != "natural" and not at_chance(run, strategies)
            and measured(run, strategies)["adv_train_acc"] < 2 * CHANCE[dataset_of(run)])


def row_mark(run: str, strategies: dict | None = None) -> str:
    """``at chance`` or ``not robust`` where the row measures a collapse or no robustness (no cost of robustness
    either way), else empty."""
    return "at chance" if at_chance(run, strategies) else "not robust" if not_robust(run, strategies) else ""


def row_label(run: str, strategies: dict | None = None) -> str:
    """The method's name, with the row's mark (:func:`row_mark`)."""
    mark = row_mark(run, strategies)
    return METHODS[method_of(run)] + (f", {mark}" if mark else "")


def row_cells(m: dict) -> str:
    """A measured row's COLUMNS, I_V with the certified bound that computed it (the method's own, or the next one
    its audit fell back to)."""
    return " | ".join(fmt(m[c]) + (f" ({m['I_V_bound']})" if c == "I_V" and m["I_V_bound"] else "") for c in COLUMNS)


def measured(run: str, strategies: dict | None = None) -> dict:
    """A run's table values from its audit (or ``strategies``, another audit of it): accuracies under I_B (clean) and
    I_A (adversarial), inference accuracies."""
    strategies = strategies or audit(run)
    b, a, v = strategies["I_B"], strategies["I_A"], strategies.get("I_V")
    return {"train_acc": b["train_acc"], "test_acc": b["test_acc"], "adv_train_acc": a["train_acc"],
            "adv_test_acc": a["test_acc"], "I_B": b["accuracy"], "I_A": a["accuracy"],
            "I_V": v["accuracy"] if v else None, "I_V_bound": v.get("bound") if v else None, "auc_I_B": b["auc"],
            "auc_I_A": a["auc"], "tpr1_I_B": b["tpr@1%fpr"], "tpr1_I_A": a["tpr@1%fpr"]}


def published() -> dict[tuple[str, str], dict]:
    with open(RESULTS / "published.csv") as f:
        return {(r["dataset"], r["method"]): {k: float(v) for k, v in r.items() if k not in ("dataset", "method")}
                for r in csv.DictReader(f)}


def run_info(run: str) -> dict:
    return json.loads((RESULTS / "cpu" / run / "run.json").read_text())


def minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def table(dataset: str, prefix: str | None = None) -> list[str]:
    """Per method, the published row, then privrob's CPU-budget row and GPU row; with ``prefix`` (a REGIME's runs),
    only that regime's methods, its row after the CPU-budget one and no GPU row."""
    pub, gpu = published(), gpu_runs(dataset) if prefix is None else []
    cpu = runs(dataset) + (runs(dataset, prefix) if prefix else [])
    lines = [HEADER, "|---" * (HEADER.count("|") - 1) + "|"]
    for method in METHODS:
        run, regime = f"{dataset}_{method}", f"{prefix}_{method}"
        if (run not in cpu and run not in gpu) if prefix is None else regime not in cpu:
            continue
        p = pub.get((dataset, method), {})
        cells = [fmt(p.get(c)) for c in COLUMNS]
        lines.append(f"| {METHODS[method]} | published | " + " | ".join(cells) + " | | |")
        for row in [run] + ([regime] if prefix else []):
            if row not in cpu:
                continue
            m, info = measured(row), run_info(row)
            source = f"privrob `configs/cpu/{row}.yaml` `results/cpu/{row}/audit.json`"
            time = f"{minutes(info['fit_seconds'])} + {minutes(info['audit_seconds'])}"
            lines.append(f"| {row_label(row)} | {source} | {row_cells(m)} | {time} | {code(row)} |")
        if run in gpu:
            report, info = gpu_run(run)
            m = measured(run, report["strategies"])
            source = (f"privrob GPU `configs/{run}.yaml` `results/gpu/{run}/audit.json` ({info['machine']}, "
                      f"{info['fraction']:.1%} of the schedule: step {info['final_step']:,})")
            time = f"{minutes(info['fit_seconds'])} + {minutes(info['audit_seconds'])}"
            lines.append(f"| {row_label(run, report['strategies'])} | {source} | {row_cells(m)} | {time} | "
                         f"commit {info['commit']} |")
    return lines


def gpu_runs(dataset: str, folder: Path = GPU) -> list[str]:
    """Runs of ``dataset`` on the study's schedules in ``folder`` (``results/gpu_full.sh``), each checked."""
    found = sorted(p.name for p in folder.glob(f"{dataset}_*") if (p / "run.json").exists())
    for run in found:
        gpu_run(run, folder)
    return found


def gpu_run(run: str, folder: Path = GPU) -> tuple[dict, dict]:
    """A GPU run's audit and run.json, refused unless the audit is of the step its fit ended at, at the study's ε,
    on every point, with its commit named (so never the script's tiny try on the CPU)."""
    report = json.loads((folder / run / "audit.json").read_text())
    info = json.loads((folder / run / "run.json").read_text())
    where = f"{folder.relative_to(ROOT) if folder.is_relative_to(ROOT) else folder}/{run}"
    check_audit(run, report["meta"], info, where, "results/gpu_full.sh", info.get("final_step"), "its fit")
    counts = report["strategies"]["I_B"]
    if info["machine"].startswith("CPU") or (counts["members"], counts["nonmembers"]) != (1900, 514):
        raise ValueError(f"{where}: a tiny try of results/gpu_full.sh ({info['machine']}, "
                         f"{int(counts['members'])} + {int(counts['nonmembers'])} points), not a GPU row")
    return report, info


def code(run: str) -> str:
    """The commit whose code measured ``run`` (run.json)."""
    return f"commit {run_info(run)['commit']}"


def moved(dataset: str) -> list[str]:
    """Each re-measured run's numbers before and after issue 14's fixes, from the kept audits."""
    pairs = [run for run in runs(dataset) if (BEFORE / run / "audit.json").exists()]
    if not pairs:
        return []
    lines = ["| run | " + " | ".join(label for _, label in MOVED) + " |", "|---" * (len(MOVED) + 1) + "|"]
    for run in pairs:
        old = measured(run, json.loads((BEFORE / run / "audit.json").read_text())["strategies"])
        new = measured(run)
        label = f"{run} ({CHANGED_WITH_FIXES[run]})" if run in CHANGED_WITH_FIXES else run
        lines.append(f"| {label} | " + " | ".join(f"{old[k]:.4f} → {new[k]:.4f} ({new[k] - old[k]:+.4f})"
                                                  for k, _ in MOVED) + " |")
    return lines


def members_of(run: str) -> tuple[int, int]:
    """Which members ``configs/cpu/<run>.yaml`` trains on: their number and the data module's seed (default 0)."""
    data = cpu_config(run)["data"]["init_args"]
    return MEMBERS[dataset_of(run)](data), data.get("seed", 0)


def natural_of(run: str, dataset: str) -> str | None:
    """The finished natural run (the CPU budget's or the REGIME's) trained on the same members as ``run``: a gap to
    one trained on other members would add the effect of their number to the cost of robustness."""
    naturals = [r for r in runs(dataset) + regime_runs(dataset) if method_of(r) == "natural"]
    return next((r for r in naturals if members_of(r) == members_of(run)), None)


def gaps(dataset: str, prefix: str | None = None) -> list[str]:
    """Robust minus natural I_A (and I_B), privrob's beside the study's, whether the I_A gaps share their sign and
    privrob's as a multiple of the study's, and each robust model's adversarial generalisation gap (what I_A feeds
    on, the study's Section 4 explanation); of a REGIME's runs with ``prefix``. Each robust run is measured against
    the natural run on its own members (:func:`natural_of`, named in the last column), and left out without one."""
    pub = published()
    rows = []
    for run in runs(dataset, prefix):
        method, natural = method_of(run), natural_of(run, dataset)
        if method == "natural" or natural is None:
            continue
        m, nat, p, pn = measured(run), measured(natural), pub[(dataset, method)], pub[(dataset, "natural")]
        study, ours = p["I_A"] - pn["I_A"], m["I_A"] - nat["I_A"]
        agree = "yes" if study * ours > 0 else "no"
        ratio = f"{ours / study:.2f}" if study else "–"
        if row_mark(run):   # a collapse or no robustness measures no cost of robustness: not compared
            agree, ratio = "–", "–"
        cells = [p["I_B"] - pn["I_B"], m["I_B"] - nat["I_B"],
                 p["adv_train_acc"] - p["adv_test_acc"], m["adv_train_acc"] - m["adv_test_acc"]]
        rows.append(f"| {row_label(run)} | {study:+.4f} | {ours:+.4f} | {agree} | {ratio} | "
                    + " | ".join(f"{c:+.4f}" for c in cells) + f" | `{natural}` |")
    if not rows:
        return []
    return ["| method | I_A − natural I_A, published | I_A − natural I_A, privrob | same sign "
            "| privrob / published | I_B − natural I_B, published | I_B − natural I_B, privrob "
            "| adv train − adv test acc, published | adv train − adv test acc, privrob | privrob's natural run |",
            "|---|---|---|---|---|---|---|---|---|---|", *rows]


def regime_check(dataset: str) -> list[str]:
    """Whether each run of the dataset's REGIME reached the study's regime (natural training: train accuracy ≥
    REGIME_TRAIN_ACC; a robust method: adversarial train accuracy ≥ REGIME_ADV_TRAIN_ACC), beside the published
    model's and the CPU-budget row's value of the same measure."""
    pub, budget_rows = published(), runs(dataset)
    lines = ["| method | measure | published | CPU budget | fewer members trained longer | in the study's regime |",
             "|---|---|---|---|---|---|"]
    for run in regime_runs(dataset):
        method = method_of(run)
        key, floor = ("train_acc", REGIME_TRAIN_ACC) if method == "natural" else ("adv_train_acc", REGIME_ADV_TRAIN_ACC)
        value, row = measured(run)[key], f"{dataset}_{method}"
        budget_value = fmt(measured(row)[key]) if row in budget_rows else "–"
        lines.append(f"| {METHODS[method]} | {key.replace('_', ' ')} ≥ {floor} | {fmt(pub[(dataset, method)][key])} "
                     f"| {budget_value} | {fmt(value)} | {'yes' if value >= floor else 'no'} |")
    return lines


def seed_folders(run: str) -> list[Path]:
    """``results/cpu/<run>/seeds/S/`` of every finished seed run (run.json is written last), by S."""
    found = (RESULTS / "cpu" / run / "seeds").glob("[0-9]*/run.json")
    return sorted((p.parent for p in found), key=lambda p: int(p.name))


def seed_run(run: str, folder: Path) -> tuple[dict, dict]:
    """The audit and run.json of one seed folder of ``run``, refused unless both are of that seed's own run (its
    checkpoint, its seed), at the config's final step and budget, with its commit named."""
    seed, info = int(folder.name), json.loads((folder / "run.json").read_text())
    report = json.loads((folder / "audit.json").read_text())
    where, rerun = folder.relative_to(RESULTS.parent), f"PRIVROB_SEED={seed} bash results/run.sh {run}"
    if seed == 0:
        raise ValueError(f"{where}: seed 0 is the config's own run, results/cpu/{run}, not a seed folder")
    if info.get("seed") != seed:
        raise ValueError(f"{where}: its run.json is of seed {info.get('seed')}, not {seed}; re-run {rerun}")
    checkpoint = f"runs/cpu/{run}_seed{seed}/checkpoints/last.ckpt"
    if report["meta"].get("checkpoint") != checkpoint:
        raise ValueError(f"{where}: audits {report['meta'].get('checkpoint')}, not {checkpoint}; re-run {rerun}")
    check_audit(run, report["meta"], info, str(where), rerun)
    return report, info


def seed_runs(run: str) -> dict[int, dict]:
    """``run``'s audits per seed offset: 0 is the config's own (the table's row), S >= 1 the run of
    ``PRIVROB_SEED=S bash results/run.sh <run>`` (``results/cpu/<run>/seeds/S/``, :func:`seed_run`)."""
    return {0: audit(run), **{int(f.name): seed_run(run, f)[0]["strategies"] for f in seed_folders(run)}}


def spread(values: list[float]) -> str:
    """Mean ± sample standard deviation (none of one value)."""
    sd = f"{statistics.stdev(values):.4f}" if len(values) > 1 else "–"
    return f"{statistics.mean(values):.4f} ± {sd}"


def seeds_table(dataset: str) -> list[str]:
    """Mean ± sd over the seeds of every run measured under several, then each robust run's gap to natural training on
    its members (:func:`natural_of`) paired by seed (the same seed offset, so the same split where the two configs'
    data seeds are equal, as in every CPU config), with every seed's gap and whether their signs agree. A seed whose
    model is at chance (:func:`at_chance`) is named and left out of both: its numbers measure a collapse."""
    by_run = {run: found for run in runs(dataset) if len(found := seed_runs(run)) > 1}
    if not by_run:
        return []
    lines = ["| run | seeds | at chance, left out | " + " | ".join(label for _, label in MOVED) + " |",
             "|---" * (len(MOVED) + 3) + "|"]
    values, chance = {}, {}
    for run, found in by_run.items():
        chance[run] = [seed for seed, s in found.items() if at_chance(run, s)]
        values[run] = {seed: measured(run, s) for seed, s in found.items() if seed not in chance[run]}
    for run, per_seed in values.items():
        cells = [spread([v[k] for v in per_seed.values()]) if per_seed else "–" for k, _ in MOVED]
        lines.append(f"| {run} | {', '.join(map(str, per_seed)) or '–'} | {', '.join(map(str, chance[run])) or '–'} | "
                     + " | ".join(cells) + " |")
    paired, unpaired = [], []   # (run, its natural run's values per seed, the seeds both trained); (run, those seeds)
    for run, per_seed in values.items():
        natural = values.get(natural_of(run, dataset)) if method_of(run) != "natural" else None
        if natural and len(seeds := sorted(set(natural) & set(per_seed))) > 1:
            paired.append((run, natural, seeds))
        elif natural:
            unpaired.append((run, seeds))
    if paired:
        lines += ["", "| run − natural, paired by seed | seeds | I_A gap | I_A gap per seed | I_B gap "
                  "| I_B gap per seed | sign the same for every seed (a zero gap has none) |",
                  "|---|---|---|---|---|---|---|"]
    for run, natural, seeds in paired:
        cells, signs = [], []
        for key in ("I_A", "I_B"):
            gap = [values[run][s][key] - natural[s][key] for s in seeds]
            cells += [spread(gap), ", ".join(f"{g:+.4f}" for g in gap)]
            same = all(g > 0 for g in gap) or all(g < 0 for g in gap)
            signs.append(f"{key}: {'yes' if same else 'no'}")
        lines.append(f"| {run} | {', '.join(map(str, seeds))} | " + " | ".join(cells) + f" | {'; '.join(signs)} |")
    for run, seeds in unpaired:
        lines += ["", f"No paired gap for {run}: fewer than two seeds trained out of chance beside its natural run's "
                      f"(both trained: {', '.join(map(str, seeds)) or 'none'})."]
    return lines


def curves(dataset: str, prefix: str | None = None) -> list[dict]:
    rows = []
    for run in runs(dataset, prefix):
        with open(RESULTS / "cpu" / run / "privacy_curve.csv") as f:
            rows += [{**r, "run": run} for r in csv.DictReader(f)]
    return rows


def plot_path(dataset: str, prefix: str | None = None) -> Path:
    return RESULTS / f"{prefix or dataset}_privacy_curves.png"


def method_colours() -> dict[str, tuple]:
    """One colour per method, the same in every figure."""
    import matplotlib.pyplot as plt

    return dict(zip(METHODS, plt.get_cmap("tab10").colors))


def plot(dataset: str, prefix: str | None = None) -> None:
    """I_A (left) and I_B (right) inference accuracy over epochs, one line per method, from the privacy curves (of a
    REGIME's runs with ``prefix``)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, colours = curves(dataset, prefix), method_colours()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for ax, strategy in zip(axes, ("I_A", "I_B")):
        for run in runs(dataset, prefix):
            pts = [(int(r["epoch"]) + 1, float(r["accuracy"])) for r in rows if r["run"] == run and r["strategy"] == strategy]
            ax.plot(*zip(*pts), marker="o", label=METHODS[method_of(run)], color=colours[method_of(run)])
        where = "" if prefix is None else ", fewer members trained longer"
        ax.set(title=f"{strategy} on {DATASETS[dataset]}{where}", xlabel="epochs trained", ylabel="inference accuracy")
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(plot_path(dataset, prefix), dpi=110)
    plt.close(fig)


def mechanism_points(dataset: str) -> list[tuple[str, str, float, float]]:
    """(method, source, adversarial generalisation gap = adv train − adv test accuracy, I_A) of every published model
    of ``dataset`` and every measured row (source ``published``, ``CPU`` or ``GPU``): the study's Section 4
    mechanism, I_A growing with the gap a robust model leaves between its members' and non-members' adversarial
    accuracy."""
    points = [(method, "published", p["adv_train_acc"] - p["adv_test_acc"], p["I_A"])
              for (d, method), p in published().items() if d == dataset]
    measured_runs = [("CPU", run, audit(run)) for run in runs(dataset)]
    measured_runs += [(SEED_AT_CHANCE_SOURCE if at_chance(run, strategies) else "CPU, other seed", run,
                       strategies) for run in runs(dataset) for seed, strategies in seed_runs(run).items() if seed]
    measured_runs += [("GPU", run, gpu_run(run)[0]["strategies"]) for run in gpu_runs(dataset)]
    measured_runs += [(REGIME_SOURCE, run, audit(run)) for run in regime_runs(dataset)]
    for source, run, strategies in measured_runs:
        m = measured(run, strategies)
        points.append((method_of(run), source, m["adv_train_acc"] - m["adv_test_acc"], m["I_A"]))
    return points


SUMMARY_PLOT = RESULTS / "summary_ia_vs_adv_gap.png"
#: the summary's source label of a REGIME's runs
REGIME_SOURCE = "CPU, the study's regime"
#: the summary's source label of another seed's model at chance (drawn as a small cross)
SEED_AT_CHANCE_SOURCE = "CPU, other seed, at chance"


def summary_plot() -> None:
    """One panel per dataset: I_A against the adversarial generalisation gap, the published models as larger rings on
    top, privrob's filled (small: its other seeds; a square on a GPU; a cross, with no line, for a model at chance),
    a dotted line from each published model to privrob's measurement of it, chance dashed."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = method_colours()
    markers = {"published": ("o", 90), "CPU": ("o", 45), "CPU, other seed": ("o", 15), "GPU": ("s", 45),
               REGIME_SOURCE: ("^", 45)}
    fig, axes = plt.subplots(1, len(DATASETS), figsize=(10, 4.2))
    present = set()   # the sources drawn, for the legend
    for ax, dataset in zip(axes, DATASETS):
        points = mechanism_points(dataset)
        present |= {source for _, source, _, _ in points}
        where = {(method, source): (gap, ia) for method, source, gap, ia in points}
        chance = {method_of(run) for run in runs(dataset) if at_chance(run)}   # CPU-budget rows at chance
        for method, source, gap, ia in points:
            if (source == "CPU" and method in chance) or source == SEED_AT_CHANCE_SOURCE:
                # a cross (small: another seed), no line to the published model it did not reach
                ax.scatter(gap, ia, s=60 if source == "CPU" else 20, marker="x", color=colours[method], zorder=2)
                continue
            marker, size = markers[source]
            ring = source == "published"   # a larger ring drawn on top: visible over privrob's point
            ax.scatter(gap, ia, s=size, marker=marker, edgecolors=colours[method], alpha=0.8,
                       facecolors="none" if ring else colours[method], zorder=3 if ring else 2)
            if source in ("CPU", "GPU", REGIME_SOURCE) and (method, "published") in where:
                (x0, y0) = where[(method, "published")]
                ax.plot([x0, gap], [y0, ia], ":", color=colours[method], lw=1)
        ax.axhline(0.5, color="grey", lw=0.8, ls="--")   # chance
        ax.set(title=DATASETS[dataset], xlabel="adv train acc − adv test acc", ylabel="I_A inference accuracy")
        ax.grid(alpha=0.3)
    handles = [plt.Line2D([], [], ls="", marker="o", color=colours[m], label=label) for m, label in METHODS.items()]
    present |= {"at chance"} if any(at_chance(run) for dataset in DATASETS for run in runs(dataset)) or (
        SEED_AT_CHANCE_SOURCE in present) else set()
    legend = {"published": dict(marker="o", mfc="none", ms=8, label="published"),
              "CPU": dict(marker="o", label="privrob, CPU budget"),
              "CPU, other seed": dict(marker="o", ms=4, label="privrob, CPU, other seeds"),
              "GPU": dict(marker="s", label="privrob, GPU"),
              REGIME_SOURCE: dict(marker="^", label="privrob, CPU, fewer members\ntrained longer"),
              "at chance": dict(marker="x", label="privrob, CPU, at chance\n(collapsed in training)")}
    handles += [plt.Line2D([], [], ls="", color="grey", **style) for source, style in legend.items()
                if source in present]
    fig.legend(handles=handles, loc="center right", fontsize=8)
    fig.tight_layout(rect=(0, 0, 0.82, 1))
    fig.savefig(SUMMARY_PLOT, dpi=110)
    plt.close(fig)


def benchmark_values(path: Path) -> dict[str, float]:
    """The ``key number`` lines a benchmark script printed."""
    return {k: float(v) for k, v in re.findall(r"^(\w+) (-?[0-9.]+)$", path.read_text(), flags=re.M)}


def benchmark_table(folder: Path, options: str = "") -> list[str]:
    """One row per printed ratio of the outputs in ``folder`` (``benchmarks/run_all.sh``'s BENCH_DIR)."""
    lines = ["| benchmark | command | printed | value | target | met | output | conditions |",
             "|---|---|---|---|---|---|---|---|"]
    for name, (command, keys) in BENCHMARKS.items():
        path = folder / f"{name}.txt"
        if not path.exists():
            continue
        values = benchmark_values(path)
        conditions = path.read_text().splitlines()[0].lstrip("# ")
        for key, target in keys:
            if key not in values and folder.name == "gpu":
                continue  # the GPU run predates section (3) of bounds_cost
            met = "yes" if values[key] <= float(target.lstrip("≤ ")) else "no"
            lines.append(f"| {name} | `{command}{options}` | `{key}` | {values[key]:.3f} | {target} | {met} "
                         f"| `{path.relative_to(ROOT)}` | {conditions} |")
    return lines


def budget(dataset: str) -> list[str]:
    """What each budgeted config keeps of the study's (configs/<run>.yaml), read from both configs and the audit."""
    lines = ["| run | trained | the study's | width (study's) | members trained | Adam lr (study's) "
             "| audited members + non-members |", "|---|---|---|---|---|---|---|"]
    for run in runs(dataset):
        cpu, study = cpu_config(run), study_config(run)
        steps = study["trainer"].get("max_steps", -1)
        full = f"{steps:,} steps" if steps and steps > 0 else f"{study['trainer']['max_epochs']} epochs"
        width = [c["model"]["init_args"]["backbone"]["init_args"]["width"] for c in (cpu, study)]
        lr = [c["model"]["init_args"]["lr"] for c in (cpu, study)]
        counts = audit(run)["I_B"]
        members = cpu["data"]["init_args"].get("num_members") or f"all {int(counts['members'])}"
        lines.append(f"| {run} | {cpu['trainer']['max_epochs']} epochs (step {final_step(run):,}) | {full} "
                     f"| {width[0]} ({width[1]}) "
                     f"| {members} | {lr[0]:g} ({lr[1]:g}) | {int(counts['members'])} + {int(counts['nonmembers'])} |")
    return lines


def fit_commands(info: dict) -> str:
    """The fit as run.sh ran it: one command, or a first segment and the exact resumes that continued it."""
    segments = info.get("fit_segments", 1)
    if segments == 1:
        return f"`{info['fit_command']}`"
    first = re.sub(r"--ckpt_path \S+$", "--overwrite true", info["fit_command"])
    return (f"`{first}`, continued in {segments - 1} more segment(s) from its last checkpoint "
            f"(`PRIVROB_RESUME=1`) by `{info['fit_command']}`")


def commands(dataset: str, prefix: str | None = None) -> list[str]:
    out = []
    for run in runs(dataset, prefix):
        info = run_info(run)
        out += [f"- `{run}` ({info['machine']}, finished {info['finished']}, {code(run)}):",
                f"  {fit_commands(info)}, then `{info['audit_command']}`"]
        for folder in seed_folders(run):
            info = seed_run(run, folder)[1]
            out += [f"  - seed {folder.name} ({info['machine']}, finished {info['finished']}, commit {info['commit']}; "
                    f"{minutes(info['fit_seconds'])} + {minutes(info['audit_seconds'])}): {fit_commands(info)}, "
                    f"then `{info['audit_command']}`"]
    return out


#: rows of a references audit (results/references.sh), in the table's order: (row in audit.json, attack, signal)
STRONG = (("I_B", "I_B (threshold on confidence)", "clean"), ("I_A", "I_A (threshold on confidence)", "adversarial"),
          *((f"{attack} {variant} ({signal})", f"{attack} {variant}", signal) for signal in ("clean", "adversarial")
            for attack, variant in (("LiRA", "online"), ("LiRA", "offline"), ("RMIA", "online"),
                                    ("RMIA", "offline"))))


#: marks the offline LiRA rows of an audit that scored them by Φ (tied beyond 8.3σ; privrob.privacy.lira)
TIED = " ‡"


def strong_runs() -> list[str]:
    """Runs audited with reference models (results/cpu/<run>/references/audit.json), in the tables' order."""
    return [run for dataset in DATASETS for run in runs(dataset)
            if (RESULTS / "cpu" / run / "references" / "audit.json").exists()]


def strong_attacks(run: str) -> list[str]:
    """One run's reference attacks beside the study's: AUC and TPR at low FPR per attack and signal, the references
    used, and the shadow-model attacker's accuracy beside the oracle threshold's."""
    folder = RESULTS / "cpu" / run / "references"
    report = json.loads((folder / "audit.json").read_text())
    meta, rows = report["meta"], report["strategies"]
    info = json.loads((folder / "run.json").read_text())
    check_audit(run, meta, info, str(folder.relative_to(RESULTS.parent)), f"bash results/references.sh {run}")
    training = meta["reference_training"]
    length = (f"{int(training['max_steps']):,} steps" if int(training.get("max_steps", -1)) > 0 else
              f"{training['max_epochs']} epochs")
    sizes = [f"{n:,}" for n in sorted({min(meta["reference_sizes"]), max(meta["reference_sizes"])})]
    lowest = rows["I_B"]["lowest_fpr"]
    row_format = cpu_config(run)["model"]["init_args"].get("memory_format", "contiguous")
    target_format = info.get("target_memory_format", row_format)
    retrained = ("" if target_format == row_format else
                 f"The target was trained again in the {target_format} memory format (the table's row: {row_format}; "
                 "the same config and seeds, float32 rounding apart), so its I_B and I_A here are that model's. ")
    lines = [f"### `{run}`", "",
             retrained + f"{meta['num_reference']} reference models "
             f"(`{meta['reference_training_set']}` training sets of "
             f"{' to '.join(sizes)} examples, {length} each); "
             f"{int(rows['I_B']['members'])} members + {int(rows['I_B']['nonmembers'])} non-members audited; "
             f"adversarial signal: {meta['attack']} at ε {meta['eps']:g}; RMIA offline a: "
             + ", ".join(f"{k} {v:g}" for k, v in meta["rmia_offline_a"].items()) + ".", "",
             f"| attack | signal | accuracy | AUC | TPR@0.1%FPR | TPR@1%FPR | TPR@{100 * lowest:.2g}%FPR (lowest) |",
             "|---|---|---|---|---|---|---|"]
    tied = meta.get("lira_offline_score") != "log_ndtr"   # an audit of the code that scored offline LiRA by Φ
    for key, attack, signal in STRONG:
        r = rows[key]
        attack += TIED if tied and attack == "LiRA offline" else ""
        lines.append(f"| {attack} | {signal} | {fmt(r['accuracy'])} | {fmt(r['auc'])} | {fmt(r['tpr@0.1%fpr'])} "
                     f"| {fmt(r['tpr@1%fpr'])} | {fmt(r['tpr@lowest_fpr'])} |")
    if tied:
        lines += ["", f"{TIED.strip()} Measured by the code before commit 1989431, which scored offline LiRA by Φ "
                  "itself: Φ rounds to 1 beyond 8.3σ and ties the strongest members, so these rows' TPR at low FPR may "
                  f"be understated; `bash results/references.sh {run}` measures them again (reusing the references "
                  f"while runs/cpu/{run}/references holds them)."]
    shadow = json.loads((folder / "audit.shadow.json").read_text())
    # references trained by an earlier call: their time is the folder's, the machine named the audit's
    reused = " (trained by an earlier call: the folder's times)" if info.get("references_reused") else ""
    machine = f"the audit on {info['machine']}" if reused else info["machine"]
    lines += ["", "Shadow-model attacker (thresholds calibrated on reference 0's own members and non-members): "
              + "; ".join(f"{name} {v['calibrated_accuracy']:.4f} global, "
                          f"{fmt(v.get('per_class_calibrated_accuracy'))} per class (oracle {v['oracle_accuracy']:.4f})"
                          for name, v in shadow.items() if isinstance(v, dict) and "calibrated_accuracy" in v) + ".",
              "", f"![ROC of every attack, log-log]({(folder / 'audit.roc.png').relative_to(RESULTS.parent)})", "",
              f"Commands ({machine}, finished {info['finished']}, code {info['commit']}; references "
              f"{'time unknown' if info['references_seconds'] is None else minutes(info['references_seconds'])}"
              f"{reused}, audit {minutes(info['audit_seconds'])}): "
              f"`{info['references_command']}`, then `{info['audit_command']}`", ""]
    return lines


def regime_section(dataset: str, title: str) -> list[str]:
    """The dataset's REGIME runs: whether they reached the study's regime, their rows beside the published and the
    CPU-budget ones, the privacy cost there, their curves and commands; every number read from the configs (the
    study's PGD config for its passes over the members), the audits and published.csv."""
    prefix, pub = REGIME[dataset], published()
    done = regime_runs(dataset)
    config = cpu_config(done[0])
    data, trained = config["data"]["init_args"], final_step(done[0])
    members, width = MEMBERS[dataset](data), config["model"]["init_args"]["backbone"]["init_args"]["width"]
    study = study_config(f"{dataset}_pgd")
    study_members, study_steps = MEMBERS[dataset](study["data"]["init_args"]), study["trainer"]["max_steps"]
    counts = audit(done[0])["I_B"]
    budget_rows = [run for run in runs(dataset) if method_of(run) in ("pgd", "trades")]
    gap = gaps(dataset, prefix)
    return [f"### {title} with fewer members trained longer, toward the study's regime", "",
            "At the CPU budget above the robust models do not fit their own adversarial examples (adversarial train "
            "accuracy " + ", ".join(f"{measured(run)['adv_train_acc']:.2f} for {METHODS[method_of(run)]}"
                                    for run in budget_rows) + "), so their members' and non-members' adversarial "
            "accuracies stay close and I_A has little to find; the study's PGD and TRADES models fit them "
            f"({pub[(dataset, 'pgd')]['adv_train_acc']:.3f} and {pub[(dataset, 'trades')]['adv_train_acc']:.3f}). "
            f"The rows below (`configs/cpu/{prefix}_<method>.yaml`) train the same width-{width} networks on a seeded "
            f"{members:,} members for {trained:,} steps of {data['batch_size']}, each member seen "
            f"{trained * data['batch_size'] / members:.0f} times (the study's PGD: about "
            f"{study_steps * study['data']['init_args']['batch_size'] / study_members:.0f} times, {study_steps:,} "
            f"steps over {study_members:,} members); `configs/cpu/{prefix}_pgd.yaml`'s header gives the probe that "
            f"chose this knob. The study's regime is read as natural training's train accuracy ≥ {REGIME_TRAIN_ACC} "
            f"and a robust model's adversarial train accuracy ≥ {REGIME_ADV_TRAIN_ACC} (issue 16). Audited on "
            f"{int(counts['members']):,} members and {int(counts['nonmembers']):,} seeded non-members.", "",
            *regime_check(dataset), "", *table(dataset, prefix), "",
            *(["Robust minus natural, fewer members trained longer:", "", *gap, ""] if gap else []),
            f"![privacy curves]({plot_path(dataset, prefix).relative_to(RESULTS.parent)})", "",
            "Commands:", "", *commands(dataset, prefix), ""]


def render() -> str:
    parts = [(RESULTS / "header.md").read_text().rstrip(), ""]
    for dataset, title in DATASETS.items():
        if not runs(dataset) and not gpu_runs(dataset):
            continue
        parts += [f"## {title}", "", *table(dataset), ""]
        if dataset == "yale" and not gpu_runs(dataset):
            parts += ["No GPU rows: the sessions since `results/gpu_full.sh` was written had no GPU (`results/gpu/` "
                      "holds none). `DATA=<folder holding CroppedYale/> bash "
                      "results/gpu_full.sh` runs the study's own Yale schedules (natural, IBP and DiffAI in full, PGD, "
                      "TRADES and WRM to a stated fraction) in parallel on one GPU, audits each and writes "
                      "`results/gpu/<run>/`; this table then shows each beside its CPU-budget row (issue 16).", ""]
        parts += ["Budget (each config's header says what was cut and why):",
                  "", *budget(dataset), ""]
        gap = gaps(dataset)
        if gap:
            parts += ["Robust minus natural (the privacy cost of robustness):", "", *gap, ""]
        across = seeds_table(dataset)
        if across:
            parts += ["Across seeds (mean ± sample standard deviation; seed 0 is the row above, seed S shifts the "
                      "config's `seed_everything` and its data module's `seed` by S, so the split and the "
                      "initialisation change together: `PRIVROB_SEED=S bash results/run.sh <run>`; a seed whose "
                      "model stayed at chance, train accuracy under twice chance, is named and left out of the mean "
                      "and of the gaps):", "",
                      *across, ""]
        move = moved(dataset)
        if move:
            parts += ["What the fixes of issue 14 moved (the same config measured before them, "
                      "`results/before_issue14/<run>/audit.json`, → after; a run whose budget changed too says how):",
                      "", *move, ""]
        withdrawn = sorted(p.name for p in BEFORE.glob(f"{dataset}_*") if p.name not in runs(dataset))
        if withdrawn:
            parts += ["Measured before the fixes of issue 14 and withdrawn until re-measured (their audits were not of "
                      "the final step or not at the study's ε, or their code changed): "
                      + ", ".join(f"`{run}`" for run in withdrawn) + ".", ""]
        parts += [f"![privacy curves]({plot_path(dataset).relative_to(ROOT)})", "",
                  "The curves are the membership-inference callback's, on the seeded subsets of each config's "
                  "`num_points` (so they are noisier than the table, whose numbers come from the final audit).", "",
                  "Commands (each with W&B offline, on the CPU threads listed; `bash results/run.sh <run>` runs both):", "",
                  *commands(dataset), ""]
        if regime_runs(dataset):
            parts += regime_section(dataset, title)
    parts += ["## The mechanism at a glance", "",
              "I_A against each model's adversarial generalisation gap (adv train − adv test accuracy), the "
              "published models beside privrob's measurements: the study explains robust models' leakage by this gap "
              "(Section 4). Rings: published; filled: privrob on the CPU budget (small: its other seeds; a cross: a model "
              "at chance, whose training collapsed); squares: "
              "privrob on a GPU; triangles: privrob with fewer members trained longer; dashed: chance.", "",
              f"![I_A against the adversarial generalisation gap]({SUMMARY_PLOT.relative_to(ROOT)})", ""]
    strong = strong_runs()
    if strong:
        parts += ["## Strong attacks: LiRA and RMIA on the clean and the adversarial signal", "",
                  "Reference models of each run's config (`bash results/references.sh <run>`, after `results/run.sh`), "
                  "audited on the same members and non-members as the study's attacks. TPR at a low FPR is the "
                  "field's measure (Carlini et al. 2022); the lowest FPR is 1 / non-members.", ""]
        for run in strong:
            parts += strong_attacks(run)
    parts += ["## Performance", "", "Each script prints its ratios last; every ratio is measured within one run of "
              "the script (absolute times are this 2-core machine's only).", "",
              *benchmark_table(RESULTS / "benchmarks"), ""]
    if (RESULTS / "benchmarks" / "gpu").is_dir():
        parts += ["The same scripts on a GPU (`bash benchmarks/gpu_check.sh`, which also runs the CUDA tests and one "
                  "real epoch in float32 and in bf16 mixed precision: `results/gpu_check_h200.txt`):", "",
                  *benchmark_table(RESULTS / "benchmarks" / "gpu", " --device cuda"), ""]
    parts += [
              (RESULTS / "reading.md").read_text().rstrip(), ""]
    return "\n".join(parts)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if RESULTS.md is not what the files give")
    args = parser.parse_args(argv)
    text, path = render(), ROOT / "RESULTS.md"
    if args.check:
        if not path.exists() or path.read_text() != text:
            print("RESULTS.md is out of date: run python results/make_results.py", file=sys.stderr)
            return 1
        return 0
    path.write_text(text)
    for dataset in DATASETS:
        if runs(dataset):
            plot(dataset)
        if regime_runs(dataset):
            plot(dataset, REGIME[dataset])
    summary_plot()
    print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
