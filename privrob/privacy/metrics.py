"""torchmetrics ``Metric`` that gathers per-example scores across devices, exactly once each.

Each rank scores a disjoint shard of an evaluation set and ``update``s this metric with the example ids; the
``cat`` reduction gathers every rank's rows (torchmetrics pads and trims uneven shards), and ``compute`` returns
them sorted by id, so every rank holds the full set once and computes the single-process numbers.
"""

from __future__ import annotations

import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat


class ExampleScores(Metric):
    """Per-example (id, score, correct) rows, gathered with ``dist_reduce_fx="cat"``. Memory: O(n_examples)."""

    full_state_update = False
    higher_is_better = None

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("ids", default=[], dist_reduce_fx="cat")
        self.add_state("scores", default=[], dist_reduce_fx="cat")
        self.add_state("correct", default=[], dist_reduce_fx="cat")

    def update(self, ids: torch.Tensor, scores: torch.Tensor, correct: torch.Tensor) -> None:
        """Add rows: ``ids`` (N,) int64, ``scores`` (N,) float, ``correct`` (N,) bool (argmax == label)."""
        if not ids.shape == scores.shape == correct.shape:
            raise ValueError(f"ids, scores and correct must have one shape, got {ids.shape}, {scores.shape}, "
                             f"{correct.shape}")
        self.ids.append(ids.long())
        self.scores.append(scores.double())
        self.correct.append(correct.to(torch.int64))

    def compute(self) -> dict[str, torch.Tensor]:
        """``ids``, ``scores`` and ``correct`` of every example seen on any rank, sorted by id.

        Raises:
            RuntimeError: an id arrived twice (the shards overlapped).
        """
        if isinstance(self.ids, list) and not self.ids:  # nothing seen (after a sync the states are tensors)
            return {"ids": torch.empty(0, dtype=torch.int64), "scores": torch.empty(0, dtype=torch.float64),
                    "correct": torch.empty(0, dtype=torch.bool)}
        ids = dim_zero_cat(self.ids)
        order = torch.argsort(ids)
        ids = ids[order]
        if len(ids) > 1 and bool((ids[1:] == ids[:-1]).any()):
            raise RuntimeError("ExampleScores received an example twice: the evaluation shards overlap")
        return {"ids": ids, "scores": dim_zero_cat(self.scores)[order],
                "correct": dim_zero_cat(self.correct)[order].bool()}
