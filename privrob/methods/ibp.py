"""Interval bound propagation training (Gowal et al. 2018, arXiv:1810.12715); CROWN-IBP bounds as an option
(Zhang et al., ICLR 2020)."""

from __future__ import annotations

from typing import Literal

import torch

from privrob.methods.base import RobustTraining
from privrob.methods.schedules import linear_ramp


class IBPTraining(RobustTraining):
    """κ·CE(f(x), y) + (1 − κ)·CE(worst-case logits, y).

    During the first ``warmup_steps`` optimizer steps ε = 0 and κ = 1; over the next ``ramp_steps`` ε grows linearly
    to ``eps`` and κ falls linearly to ``kappa_end`` (the study: Yale 500/6500, Fashion-MNIST 8000/30000, κ 1 → 0.5).

    Args:
        eps: l_inf budget (the study: Yale 8/255, Fashion-MNIST 0.1).
        warmup_steps, ramp_steps: the schedule, in optimizer steps.
        kappa_end: κ after the ramp.
        bound: ``ibp`` (last layer elided) or ``crown_ibp``.
        **kwargs: see :class:`~privrob.methods.base.RobustTraining`.
    """

    certified_methods = ("crown_ibp", "ibp")

    def __init__(self, backbone: torch.nn.Module, eps: float = 0.1, warmup_steps: int = 0, ramp_steps: int = 0,
                 kappa_end: float = 0.5, bound: Literal["ibp", "crown_ibp"] = "ibp", **kwargs) -> None:
        super().__init__(backbone, **kwargs)
        if eps < 0:
            raise ValueError(f"`eps` must be non-negative, got {eps}")
        if warmup_steps < 0 or ramp_steps < 0:
            raise ValueError(f"`warmup_steps` and `ramp_steps` must be non-negative, got {warmup_steps}, {ramp_steps}")
        if not 0.0 <= kappa_end <= 1.0:
            raise ValueError(f"`kappa_end` must be in [0, 1], got {kappa_end}")
        if bound not in ("ibp", "crown_ibp"):
            raise ValueError(f"`bound` can be ibp, crown_ibp, got {bound!r}")

    def schedule(self) -> tuple[float, float]:
        """(ε, κ) at the current optimizer step."""
        hp = self.hparams
        eps = linear_ramp(self.global_step, hp.warmup_steps, hp.ramp_steps, 0.0, hp.eps)
        kappa = linear_ramp(self.global_step, hp.warmup_steps, hp.ramp_steps, 1.0, hp.kappa_end)
        return eps, kappa

    def training_loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        eps, kappa = self.schedule()
        self.log_dict({"train/eps": eps, "train/kappa": kappa})
        logits = self(x)
        loss = kappa * self.cross_entropy(logits, y)
        if kappa < 1.0:
            worst = self.training_bound(x, y, eps, self.hparams.bound)
            loss = loss + (1 - kappa) * self.cross_entropy(worst, y)
        return loss, logits
