"""Membership inference over a model's members and non-members: the one routine behind the epoch-end callback
and the ``audit`` command.

For each strategy, each rank scores its shard of a seeded subset of the members and of the non-members; the
scores are gathered with their ids (:class:`~privrob.privacy.metrics.ExampleScores`), so that every rank computes
the single-process report: model accuracy on both sets under that strategy (clean, adversarial, ...) and
:func:`~privrob.privacy.functional.membership_report`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import torch
from torch import nn

from privrob.privacy.evaluation import score_examples, seeded_subset, shard
from privrob.privacy.functional import inference_accuracy, membership_report, roc_auc, roc_curve
from privrob.privacy.strategies import Strategy


def evaluate_membership(model: nn.Module, datamodule, strategies: Sequence[Strategy], *,
                        num_points: Optional[int] = None, seed: int = 0, batch_size: Optional[int] = None,
                        device: Optional[torch.device] = None, rank: int = 0, world_size: int = 1,
                        progress: bool = False, before_batch: Optional[Callable[[], None]] = None) -> dict[str, dict]:
    """Report per strategy: ``train_acc``, ``test_acc``, the membership report, and the gathered ``scores``.

    Args:
        model: maps inputs to logits.
        datamodule: a set-up :class:`~privrob.data.MembershipDataModule`.
        strategies: what to score with.
        num_points: members and non-members evaluated, each (a seeded subset; None: all).
        seed: seed of the subsets (different for members and non-members, fixed across epochs).
        batch_size: evaluation batch size (default: the datamodule's ``eval_batch_size``).
        device: where to run (default: the model's).
        rank, world_size: this process's shard; every rank must call with the same arguments.
        progress: show a progress bar per strategy and set (see :func:`~privrob.privacy.evaluation.score_examples`).
        before_batch: called before every batch (to stop within one batch), as often on every rank: as many
            times as the largest shard has batches.
    """
    device = device or next(model.parameters()).device
    batch_size = batch_size or datamodule.eval_batch_size
    sets = {"members": datamodule.members(), "nonmembers": datamodule.nonmembers()}
    subsets = {k: seeded_subset(len(d), num_points, seed + i) for i, (k, d) in enumerate(sets.items())}
    largest_shard_batches = {k: math.ceil(len(shard(s, 0, world_size)) / batch_size) for k, s in subsets.items()}
    results = {}
    for strategy in strategies:
        rows = {k: score_examples(model, sets[k], shard(subsets[k], rank, world_size), strategy, batch_size, device,
                                  progress=f"{strategy.name} {k}" if progress else None,
                                  before_batch=before_batch, before_batch_calls=largest_shard_batches[k]).compute()
                for k in sets}
        report = membership_report(rows["members"]["scores"].cpu(), rows["nonmembers"]["scores"].cpu())
        results[strategy.name] = {
            "train_acc": float(rows["members"]["correct"].double().mean()),
            "test_acc": float(rows["nonmembers"]["correct"].double().mean()),
            **report,
            **({"bound": strategy.used} if getattr(strategy, "used", None) else {}),
            "scores": {k: {"ids": rows[k]["ids"].cpu(), "scores": rows[k]["scores"].cpu(),
                           "correct": rows[k]["correct"].cpu()} for k in sets},
        }
    return results


REPORT_COLUMNS = ("train_acc", "test_acc", "accuracy", "advantage", "auc", "tpr@0.1%fpr", "tpr@1%fpr",
                  "lowest_fpr", "tpr@lowest_fpr", "members", "nonmembers")


def summary(results: dict[str, dict]) -> dict[str, dict[str, float]]:
    """The results without the raw scores (what goes into JSON and tables)."""
    return {name: {k: v for k, v in r.items() if k != "scores"} for name, r in results.items()}


def markdown_table(results: dict[str, dict]) -> str:
    """One row per strategy or reference attack: accuracies under it (– for an attack on a statistic, not on a
    prediction) and its membership-inference report."""
    head = "| strategy | " + " | ".join(REPORT_COLUMNS) + " |"
    rule = "|---" * (len(REPORT_COLUMNS) + 1) + "|"
    rows = []
    for name, r in results.items():
        cells = [f"{int(r[c])}" if c in ("members", "nonmembers") else "–" if r.get(c) is None else f"{r[c]:.4f}"
                 for c in REPORT_COLUMNS]
        label = f"{name} ({r['bound']})" if "bound" in r else name
        rows.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join([head, rule, *rows])


def write_report(results: dict[str, dict], stem: Path, meta: Optional[dict] = None) -> tuple[Path, Path]:
    """Write ``<stem>.json`` and ``<stem>.md``; returns their paths."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    data = {"meta": meta or {}, "strategies": summary(results)}
    json_path, md_path = stem.parent / f"{stem.name}.json", stem.parent / f"{stem.name}.md"
    json_path.write_text(json.dumps(data, indent=2) + "\n")
    lines = [f"# Membership-inference audit", ""]
    lines += [f"- {k}: {v}" for k, v in (meta or {}).items()]
    md_path.write_text("\n".join(lines + ["", markdown_table(results), ""]))
    return json_path, md_path


def budget_sweep(model: nn.Module, datamodule, eps_values: Sequence[float], *, attack_steps: int = 20,
                 attack_rel_step_size: float = 2.5 / 20, temperature: float = 1.0, **kwargs) -> list[dict]:
    """I_A at every attack budget in ``eps_values`` (the study's appendix, Figures 8 and 9: the attacker does not know
    the training ε). Per budget: membership report, adversarial accuracy on members and non-members, and the
    worst-case accuracy over all swept budgets ≤ ε (an example counts as correct only if no smaller budget fooled
    it either). ``kwargs`` go to :func:`evaluate_membership`."""
    from privrob.privacy.strategies import build_strategy

    rows, still_correct = [], None
    for eps in sorted(eps_values):
        strategy = build_strategy("I_A", eps=eps, attack_steps=attack_steps, attack_rel_step_size=attack_rel_step_size,
                                  temperature=temperature)
        r = evaluate_membership(model, datamodule, [strategy], **kwargs)["I_A"]
        correct = torch.cat([r["scores"]["members"]["correct"], r["scores"]["nonmembers"]["correct"]])
        still_correct = correct if still_correct is None else still_correct & correct
        rows.append({"eps": eps, **{k: r[k] for k in REPORT_COLUMNS}, "threshold": r["threshold"],
                     "worst_case_acc": float(still_correct.double().mean())})
    return rows


def figure_title(run: str, model: nn.Module, strategies: Sequence[str], eps: Union[float, str]) -> str:
    """The title of every figure: the run, the training method (with its training ε, if any), the strategies shown
    and the attack ε."""
    method = type(model).__name__
    training_eps = getattr(model, "hparams", {}).get("eps")
    if training_eps is not None:
        method += f" (training eps {training_eps:g})"
    return f"{run}: {method}; {', '.join(strategies)}; attack eps {eps if isinstance(eps, str) else f'{eps:g}'}"


def save_figure(fig, path: Path) -> Path:
    """Write a figure as PNG and release it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_budget_sweep(rows: list[dict], stem: Path, training_eps: Optional[float] = None,
                       title: Optional[str] = None) -> tuple[Path, Path]:
    """``<stem>.csv`` and a ``<stem>.png`` line plot: attack ε on x, I_A accuracy on y, the training ε marked."""
    import csv

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stem.parent.mkdir(parents=True, exist_ok=True)
    csv_path, png_path = stem.parent / f"{stem.name}.csv", stem.parent / f"{stem.name}.png"
    with open(csv_path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([r["eps"] for r in rows], [r["accuracy"] for r in rows], marker="o", label="I_A")
    if training_eps is not None:
        ax.axvline(training_eps, color="red", ls="--", lw=1, label=f"training eps {training_eps:g}")
    ax.axhline(0.5, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("attack eps (l_inf)")
    ax.set_ylabel("membership inference accuracy")
    ax.set_title(title, fontsize=9)
    ax.legend()
    return csv_path, save_figure(fig, png_path)


def secure_split(results: dict[str, dict], by: str = "I_A") -> dict[str, dict]:
    """The study's secure vs insecure examples (appendix, Figure 7): members and non-members alike split by whether
    ``by``'s prediction is right (classified correctly under the attack, or certified for I_V), and each strategy's
    membership-inference accuracy within each group (None for a group missing members or non-members)."""
    if by not in results:
        raise ValueError(f"the secure split needs strategy {by!r} in the results, got {', '.join(results)}")
    ref = results[by]["scores"]
    for name, r in results.items():
        for part in ("members", "nonmembers"):
            if not torch.equal(r["scores"][part]["ids"], ref[part]["ids"]):
                raise ValueError(f"strategies {name} and {by} scored different examples; use one subset")
    out = {}
    for group, keep in (("secure", True), ("insecure", False)):
        mask = {part: ref[part]["correct"] == keep for part in ("members", "nonmembers")}
        entry: dict = {part: int(m.sum()) for part, m in mask.items()}
        for name, r in results.items():
            m, n = (r["scores"][part]["scores"][mask[part]] for part in ("members", "nonmembers"))
            entry[name] = inference_accuracy(m, n) if len(m) and len(n) else None
        out[group] = entry
    return out


def plot_secure_losses(results: dict[str, dict], path: Path, by: str = "I_A", title: Optional[str] = None) -> Path:
    """Histograms of the prediction loss −log p_y(x) on clean inputs of secure and insecure non-members (the study's
    appendix, Figure 7), over shared log-spaced bins: secure losses can sit orders of magnitude below insecure ones
    (1e-5 against 1), which separate linear bins would draw invisibly thin. A loss of exactly 0 (a saturated
    float32 softmax) is counted in the first bin."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    nonmembers = results["I_B"]["scores"]["nonmembers"]
    loss = (-torch.log(nonmembers["scores"].double().clamp(min=1e-12))).numpy()
    secure = results[by]["scores"]["nonmembers"]["correct"].numpy()
    positive = loss[loss > 0]
    low = positive.min() if len(positive) else 1e-12
    high = max(loss.max(), low * 10)
    edges = np.geomspace(low, high, 31)
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, mask in (("secure", secure), ("insecure", ~secure)):
        if mask.any():
            ax.hist(np.clip(loss[mask], low, high), bins=edges, alpha=0.6, label=f"{name} ({int(mask.sum())})")
    ax.set_xscale("log")
    zeros = "; loss 0 in the first bin" if (loss == 0).any() else ""
    ax.set_xlabel(f"prediction loss on the clean input (non-members{zeros})")
    ax.set_ylabel("examples")
    ax.set_title(title, fontsize=9)
    ax.legend()
    return save_figure(fig, path)


def plot_roc(curves: dict[str, tuple[torch.Tensor, torch.Tensor]], path: Path, title: Optional[str] = None) -> Path:
    """The field's standard figure (Carlini et al. 2022, Figure 1): the ROC of every attack, ``{name: (member
    scores, non-member scores)}``, on log-log axes from the lowest FPR the non-members resolve (1/n) to 1, with
    chance as the diagonal."""
    import textwrap

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    lowest_fpr = min(1 / len(n) for m, n in curves.values())
    lowest_tpr = min(1 / len(m) for m, n in curves.values())
    for name, (m, n) in curves.items():
        fpr, tpr = roc_curve(m, n)
        ax.plot(fpr.clamp(min=lowest_fpr).numpy(), tpr.clamp(min=lowest_tpr).numpy(),
                label=f"{name} (AUC {roc_auc(m, n):.3f})")
    ax.plot([lowest_fpr, 1], [lowest_fpr, 1], color="grey", lw=0.8, ls=":", label="chance")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lowest_fpr, 1)
    ax.set_ylim(lowest_tpr, 1)
    ax.set_xlabel(f"false positive rate (lowest resolved: 1/{round(1 / lowest_fpr)})")
    ax.set_ylabel("true positive rate")
    ax.set_title(textwrap.fill(title, 70) if title else None, fontsize=9)
    ax.legend(fontsize=8)
    return save_figure(fig, path)
