"""Membership inference over a model's members and non-members: the one routine behind the epoch-end callback
and the ``audit`` command.

For each strategy, each rank scores its shard of a seeded subset of the members and of the non-members; the
scores are gathered with their ids (:class:`~privrob.privacy.metrics.ExampleScores`), so that every rank computes
the single-process report: model accuracy on both sets under that strategy (clean, adversarial, ...) and
:func:`~privrob.privacy.functional.membership_report`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Sequence

import torch
from torch import nn

from privrob.privacy.evaluation import score_examples, seeded_subset, shard
from privrob.privacy.functional import membership_report
from privrob.privacy.strategies import Strategy


def evaluate_membership(model: nn.Module, datamodule, strategies: Sequence[Strategy], *,
                        num_points: Optional[int] = None, seed: int = 0, batch_size: Optional[int] = None,
                        device: Optional[torch.device] = None, rank: int = 0,
                        world_size: int = 1) -> dict[str, dict]:
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
    """
    device = device or next(model.parameters()).device
    batch_size = batch_size or datamodule.eval_batch_size
    sets = {"members": datamodule.members(), "nonmembers": datamodule.nonmembers()}
    subsets = {k: seeded_subset(len(d), num_points, seed + i) for i, (k, d) in enumerate(sets.items())}
    results = {}
    for strategy in strategies:
        rows = {k: score_examples(model, sets[k], shard(subsets[k], rank, world_size), strategy, batch_size,
                                  device).compute() for k in sets}
        report = membership_report(rows["members"]["scores"].cpu(), rows["nonmembers"]["scores"].cpu())
        results[strategy.name] = {
            "train_acc": float(rows["members"]["correct"].double().mean()),
            "test_acc": float(rows["nonmembers"]["correct"].double().mean()),
            **report,
            **({"bound": strategy.used} if getattr(strategy, "used", None) else {}),
            "scores": {k: {"ids": rows[k]["ids"].cpu(), "scores": rows[k]["scores"].cpu()} for k in sets},
        }
    return results


REPORT_COLUMNS = ("train_acc", "test_acc", "accuracy", "advantage", "auc", "tpr@0.1%fpr", "tpr@1%fpr", "members",
                  "nonmembers")


def summary(results: dict[str, dict]) -> dict[str, dict[str, float]]:
    """The results without the raw scores (what goes into JSON and tables)."""
    return {name: {k: v for k, v in r.items() if k != "scores"} for name, r in results.items()}


def markdown_table(results: dict[str, dict]) -> str:
    """One row per strategy: accuracies under it and its membership-inference report."""
    head = "| strategy | " + " | ".join(REPORT_COLUMNS) + " |"
    rule = "|---" * (len(REPORT_COLUMNS) + 1) + "|"
    rows = []
    for name, r in results.items():
        cells = [f"{int(r[c])}" if c in ("members", "nonmembers") else f"{r[c]:.4f}" for c in REPORT_COLUMNS]
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
