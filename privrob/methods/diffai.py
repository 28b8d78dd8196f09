"""Abstract-interpretation training, DiffAI (Mirman, Gehr, Vechev, ICML 2018)."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from privrob.bounds import worst_case_logits
from privrob.methods.base import RobustTraining


class DiffAITraining(RobustTraining):
    """(w·softplus(max_{j≠y} ub(z_j − z_y)) + CE(f(x), y)) / (w + 1) over a box (or zonotope) of radius ε_t.

    Plain cross-entropy for the first ``warmup_epochs``; then the radius is ε·t with
    t = min(max(N, s − W·N), R·N) / (R·N), s the optimizer step, N steps per epoch, W ``warmup_epochs`` and R
    ``ramp_epochs`` (DiffAI's ``main.py``).

    Args:
        eps: the box radius (the study: Yale 0.0314, Fashion-MNIST 0.1).
        domain: ``box`` (the study's) or ``zonotope``.
        robust_weight: w (``--tot-weight``, the study's 0.2).
        warmup_epochs: epochs of plain cross-entropy (20).
        ramp_epochs: epochs of the radius ramp (30).
        **kwargs: see :class:`~privrob.methods.base.RobustTraining`.
    """

    certified_methods = ("zonotope", "crown_ibp", "box")

    def __init__(self, backbone: torch.nn.Module, eps: float = 0.1, domain: Literal["box", "zonotope"] = "box",
                 robust_weight: float = 0.2, warmup_epochs: int = 20, ramp_epochs: int = 30, **kwargs) -> None:
        super().__init__(backbone, **kwargs)
        if eps < 0 or robust_weight < 0:
            raise ValueError(f"`eps` and `robust_weight` must be non-negative, got {eps} and {robust_weight}")
        if domain not in ("box", "zonotope"):
            raise ValueError(f"`domain` can be box, zonotope, got {domain!r}")
        if warmup_epochs < 0 or ramp_epochs < 1:
            raise ValueError(f"`warmup_epochs` must be ≥ 0 and `ramp_epochs` ≥ 1, got {warmup_epochs}, {ramp_epochs}")

    def current_eps(self) -> float:
        hp = self.hparams
        n = self.steps_per_epoch()
        t = min(max(n, self.global_step - hp.warmup_epochs * n), hp.ramp_epochs * n) / (hp.ramp_epochs * n)
        return hp.eps * t

    def training_loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hp = self.hparams
        logits = self(x)
        clean = self.cross_entropy(logits, y)
        if self.current_epoch < hp.warmup_epochs:
            return clean, logits
        eps = self.current_eps()
        self.log("train/eps", eps)
        worst = worst_case_logits(self.backbone, x, y, eps, hp.domain)  # ub(z_j − z_y), 0 at y
        worst = worst.masked_fill(F.one_hot(y, worst.shape[1]).bool(), float("-inf")).amax(dim=1)
        robust = F.softplus(worst)
        robust = robust.sum() if hp.loss_reduction == "sum" else robust.mean()
        return (hp.robust_weight * robust + clean) / (hp.robust_weight + 1), logits
