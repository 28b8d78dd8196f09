"""Duality-based verifiable training (Wong & Kolter, ICML 2018, arXiv:1711.00851; projections from Wong, Schmidt,
Metzen, Kolter, NeurIPS 2018, arXiv:1805.12514)."""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from privrob.bounds import worst_case_logits
from privrob.methods.base import RobustTraining
from privrob.methods.schedules import linear_ramp


class WongKolterTraining(RobustTraining):
    """Robust cross-entropy on the dual bound's worst-case logits −lb(z_y − z_j); no clean term (the study).

    ε ramps from ``eps_start`` to ``eps`` over R = ``ramp_epochs`` epochs, then stays at ``eps``: constant within an
    epoch, ``linspace(eps_start, eps, R)[e]`` in the ramp's epoch e (the study's ``eps_schedule``, ``train_Yale.py``),
    or with ``ramp_unit="step"`` raised linearly at every optimizer step, from ``eps_start`` at the ramp's first step
    to ``eps`` at its last (R·N steps, N an epoch's; a one-step ramp trains at ``eps``). With W = ``warmup_epochs``
    (the study: 0) the first W epochs train at ε = 0, where the bound's worst-case logits are the exact margins
    z_j − z_y and so its loss the logits' cross-entropy (computed without the bound; ``train/acc`` is then the clean
    accuracy, the robust one from epoch W), and the ramp starts at epoch W. Gradient-norm clipping is the Trainer's
    ``gradient_clip_val`` (the study: 1). NaN gradient entries are zeroed (infinities kept), as the study's
    ``trainer.train_robust``; its Yale trainer then clips that step, its Fashion-MNIST one steps unclipped
    (``clip_nan_steps``). The study reports the epoch of lowest robust error on 110 non-members:
    :class:`callbacks.BestRobustCheckpoint`.

    Args:
        eps: l_inf training budget (the study: Yale 0.06275 ≈ 16/255 on 192x192 padded input, Fashion-MNIST 0.1).
        eps_start: ε in the ramp's first epoch (or step), from epoch ``warmup_epochs`` (Yale 0.0001, Fashion-MNIST
            0.003).
        ramp_epochs: length of the ε ramp in epochs, the last of which (or its last step) trains at ``eps`` (Yale 80,
            Fashion-MNIST 20).
        warmup_epochs: epochs of plain cross-entropy before the ramp (the study: 0; for a budget whose cut ramp would
            raise ε before the network leaves its initial plateau, ``configs/cpu/yale_dual.yaml``; DiffAI warms up so).
        ramp_unit: ``epoch`` (the study) or ``step``: the ramp without its per-epoch jumps, for a budget that cuts it
            to a few epochs (``configs/cpu/yale_dual.yaml``).
        bound: ``dual_projected`` (the study's ``--proj``, an estimate for training) or ``dual`` (exact; small nets).
        projections: Cauchy projections of ``dual_projected`` (Yale 50, Fashion-MNIST 20).
        clip_input: intersect the ball with [0, 1] (the study's ``bounded_input``: False on Yale, True on FMNIST).
        memory_budget: GB the exact dual may use.
        clip_nan_steps: clip a step whose NaN gradients were zeroed (the study's Yale trainer) or take it unclipped
            (its Fashion-MNIST trainer). As the study only without gradient accumulation (the NaN is zeroed in the
            sum) and outside ``16-mixed`` precision (whose GradScaler skips any step with a NaN before this hook).
        **kwargs: see :class:`~privrob.methods.base.RobustTraining`.
    """

    certified_methods = ("dual", "crown_ibp", "ibp")

    def __init__(self, backbone: torch.nn.Module, eps: float = 0.1, eps_start: float = 0.001, ramp_epochs: int = 20,
                 warmup_epochs: int = 0, ramp_unit: Literal["epoch", "step"] = "epoch",
                 bound: Literal["dual_projected", "dual"] = "dual_projected", projections: int = 50,
                 clip_input: bool = True, memory_budget: float = 4.0, clip_nan_steps: bool = True, **kwargs) -> None:
        super().__init__(backbone, **kwargs)
        if eps < 0 or eps_start < 0:
            raise ValueError(f"`eps` and `eps_start` must be non-negative, got {eps} and {eps_start}")
        if bound not in ("dual_projected", "dual"):
            raise ValueError(f"`bound` can be dual_projected, dual, got {bound!r}")
        if ramp_unit not in ("epoch", "step"):
            raise ValueError(f"`ramp_unit` can be epoch, step, got {ramp_unit!r}")
        if projections < 1 or ramp_epochs < 0 or warmup_epochs < 0:
            raise ValueError(f"`projections` must be ≥ 1, `ramp_epochs` and `warmup_epochs` ≥ 0, got "
                             f"{projections}, {ramp_epochs}, {warmup_epochs}")
        self._nan_step = False   # whether this step's gradients held a NaN (set before clipping, read by it)

    def current_eps(self) -> float:
        hp = self.hparams
        epoch = self.current_epoch - hp.warmup_epochs
        if epoch < 0:
            return 0.0
        if hp.ramp_unit == "step":
            n = self.steps_per_epoch()
            return linear_ramp(self.global_step, hp.warmup_epochs * n, hp.ramp_epochs * n - 1, hp.eps_start, hp.eps)
        if epoch < hp.ramp_epochs:
            return float(np.linspace(hp.eps_start, hp.eps, hp.ramp_epochs)[epoch])
        return hp.eps

    def training_loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hp = self.hparams
        eps = self.current_eps()
        self.log("train/eps", eps)
        if self.current_epoch < hp.warmup_epochs:
            logits = self(x)
            return self.cross_entropy(logits, y), logits
        # eager even with `compile`: compiled, the projections would draw other numbers than eager's
        worst = worst_case_logits(self.backbone, x, y, eps, hp.bound, clip=hp.clip_input,
                                  projections=hp.projections, memory_budget=hp.memory_budget)
        return self.cross_entropy(worst, y), worst

    def on_before_optimizer_step(self, optimizer) -> None:
        grads = [p.grad for p in self.parameters() if p.grad is not None]
        nans = [torch.isnan(g) for g in grads]
        if not self.hparams.clip_nan_steps and grads:   # one host sync a step, only where the flag is read
            self._nan_step = bool(torch.stack([n.any() for n in nans]).any())
        for g, n in zip(grads, nans):
            g.masked_fill_(n, 0.0)

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None) -> None:
        # Lightning calls this after on_before_optimizer_step
        if self.hparams.clip_nan_steps or not self._nan_step:
            self.clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm)
