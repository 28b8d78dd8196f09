"""Abstract-interpretation training, DiffAI (Mirman, Gehr, Vechev, ICML 2018), as the study's ``main.py`` runs it."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrizations

from privrob.methods.base import RobustTraining


class DiffAITraining(RobustTraining):
    """(w·softplus(max(−1, max_{j≠y} ub(z_j − z_y))) + CE(f(x), y)) / (w + 1) over a box (or zonotope) of radius
    ε_t.

    The −1 is DiffAI's ``preDomRes``: it adds the one-hot label to the margins, so the true class enters the max
    at −1 and the robust term stops pushing once every margin is certified by 1. The box is not clipped to [0, 1]
    (``Box.box``). Plain cross-entropy for the first W = ``warmup_epochs`` epochs; then the radius is ε·t with
    t = min(max(N, c − (W + 1)·N), R·N) / (R·N), N the optimizer steps per epoch, R ``ramp_epochs`` and
    c = s + 1 + (e + 1)·E the study's counter ``count`` at optimizer step s (from 0) of epoch e (from 0): it also
    advances once per batch of the two test passes that run before each epoch's training, E batches in all. The
    study's epochs count from 1, so its ``epoch < 20`` is W = 19 warm-up epochs against a counter offset of 20·N.

    Args:
        eps: the box radius (the study: Yale 0.0314, Fashion-MNIST 0.1).
        domain: ``box`` (the study's) or ``zonotope``.
        robust_weight: w (``--tot-weight``, the study's 0.2).
        warmup_epochs: W, epochs of plain cross-entropy (the study's 19).
        ramp_epochs: R, epochs of training steps over which t grows (30).
        eval_batches_per_epoch: E (the study's test passes over 500 training and 500 test images: Yale 25 + 25
            batches of 20, Fashion-MNIST 50 + 50 of 100; 0 counts optimizer steps only).
        clip_input: intersect the box with [0, 1] (the study does not).
        weight_norm: train every convolution and linear layer in DiffAI's weight-norm parametrisation
            w = g·v/‖v‖ (one scalar g per layer, ``nn.utils.weight_norm(dim=None)`` in its ``components.py``,
            applied before the optimizer is built), so that Adam and the gradient clipping act on (g, v, bias), and
            clamp g to ±``max_weight_norm`` after every step (``--max-norm``, 10,000), as the study's ``clip_norm``.
        max_weight_norm: that bound on g.
        **kwargs: see :class:`~privrob.methods.base.RobustTraining`.
    """

    certified_methods = ("zonotope", "crown_ibp", "box")

    def __init__(self, backbone: torch.nn.Module, eps: float = 0.1, domain: Literal["box", "zonotope"] = "box",
                 robust_weight: float = 0.2, warmup_epochs: int = 19, ramp_epochs: int = 30,
                 eval_batches_per_epoch: int = 0, clip_input: bool = False, weight_norm: bool = True,
                 max_weight_norm: float = 10000.0, **kwargs) -> None:
        super().__init__(backbone, **kwargs)
        if max_weight_norm <= 0:
            raise ValueError(f"`max_weight_norm` must be positive, got {max_weight_norm}")
        if weight_norm:
            for layer in backbone.modules():
                if isinstance(layer, (nn.Conv2d, nn.Linear)):
                    if not layer.weight.any():
                        raise ValueError("`weight_norm` needs non-zero initial weights (w = g·v/‖v‖); this "
                                         "backbone's initialisation zeroes a layer (init: trades?)")
                    parametrizations.weight_norm(layer, dim=None)
        if eps < 0 or robust_weight < 0:
            raise ValueError(f"`eps` and `robust_weight` must be non-negative, got {eps} and {robust_weight}")
        if domain not in ("box", "zonotope"):
            raise ValueError(f"`domain` can be box, zonotope, got {domain!r}")
        if warmup_epochs < 0 or ramp_epochs < 1 or eval_batches_per_epoch < 0:
            raise ValueError(f"`warmup_epochs` and `eval_batches_per_epoch` must be ≥ 0 and `ramp_epochs` ≥ 1, got "
                             f"{warmup_epochs}, {eval_batches_per_epoch}, {ramp_epochs}")

    def current_eps(self) -> float:
        hp = self.hparams
        n, ramp = self.steps_per_epoch(), hp.ramp_epochs * self.steps_per_epoch()
        count = self.global_step + 1 + (self.current_epoch + 1) * hp.eval_batches_per_epoch
        return hp.eps * min(max(n, count - (hp.warmup_epochs + 1) * n), ramp) / ramp

    def training_loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hp = self.hparams
        logits = self(x)
        clean = self.cross_entropy(logits, y)
        if self.current_epoch < hp.warmup_epochs:
            return clean, logits
        eps = self.current_eps()
        self.log("train/eps", eps)
        robust = F.softplus(self.worst_margin(x, y, eps))
        robust = robust.sum() if hp.loss_reduction == "sum" else robust.mean()
        return (hp.robust_weight * robust + clean) / (hp.robust_weight + 1), logits

    def worst_margin(self, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
        """(B,) max(−1, max_{j≠y} ub(z_j − z_y)) over the domain of radius ``eps``: the study's ``preDomRes`` keeps
        the true class at −1."""
        worst = self.training_bound(x, y, eps, self.hparams.domain, clip=self.hparams.clip_input)  # 0 at y
        return worst.masked_fill(F.one_hot(y, worst.shape[1]).bool(), -1.0).amax(dim=1)

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        if self.hparams.weight_norm:
            bound = self.hparams.max_weight_norm
            with torch.no_grad():
                for module in self.backbone.modules():
                    if hasattr(module, "parametrizations"):
                        module.parametrizations.weight.original0.clamp_(-bound, bound)
