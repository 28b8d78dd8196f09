"""Distributional adversarial training, WRM (Sinha, Namkoong, Duchi, ICLR 2018, arXiv:1710.10571)."""

from __future__ import annotations

from typing import Literal, Optional

import torch

from privrob.attacks import BNMode, LagrangianStep, StudyWRMStep, attack_mode, check_bn_mode, run_attack
from privrob.methods.base import RobustTraining


class WRMTraining(RobustTraining):
    r"""Train on x′ ≈ argmax ℓ(x′) − γ‖x′ − x‖², found by gradient ascent.

    ``inner_max="lagrangian"`` is the paper's penalty problem: steps x′ ← x′ + α(∇ℓ − 2γ(x′ − x)), default
    α = 1/(2γ) (stable for any γ), clipped to [0, 1]. ``inner_max="study_code"`` is what the original study's code
    ran (``LinfWRMAttack``; original-study.md §1.2), kept to reproduce its numbers: no ε-ball, g = a·∇ℓ,
    x′ ← clip(x′ + g − mean|g|·sign(x′ + g − x)), the penalty weight being the batch's mean absolute gradient.

    Args:
        gamma: penalty weight γ > 0 (``lagrangian``).
        steps: ascent steps (the study: Yale 10, Fashion-MNIST 8, CIFAR10 10).
        step_size: α for ``lagrangian`` (default 1/(2γ)); the gradient scale a for ``study_code`` (the study:
            Yale 1.5, Fashion-MNIST 1.0, CIFAR10 12/255 in [0, 1] units).
        inner_max: ``lagrangian`` or ``study_code``.
        attack_bn_mode: batch norm during the inner maximisation: ``eval`` (running statistics, untouched) or
            ``train`` (batch statistics, each ascent forward updating the running ones: the study's CIFAR10 code,
            whose attack runs on Madry's ``mode='train'`` graph).
        **kwargs: see :class:`~privrob.methods.base.RobustTraining`.
    """

    def __init__(self, backbone: torch.nn.Module, gamma: float = 1.0, steps: int = 15,
                 step_size: Optional[float] = None, inner_max: Literal["lagrangian", "study_code"] = "lagrangian",
                 attack_bn_mode: BNMode = "eval", **kwargs) -> None:
        super().__init__(backbone, **kwargs)
        check_bn_mode(attack_bn_mode)
        if inner_max not in ("lagrangian", "study_code"):
            raise ValueError(f"`inner_max` can be lagrangian, study_code, got {inner_max!r}")
        if gamma <= 0:
            raise ValueError(f"`gamma` must be positive, got {gamma}")
        if steps < 1:
            raise ValueError(f"`steps` must be at least 1, got {steps}")
        if step_size is not None and step_size <= 0:
            raise ValueError(f"`step_size` must be positive, got {step_size}")
        if inner_max == "study_code" and step_size is None:
            raise ValueError("`inner_max=study_code` needs `step_size`, the gradient scale a (Yale 1.5, FMNIST 1.0)")

    def perturb(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The inner maximisation's last iterate."""
        hp = self.hparams
        with attack_mode(self.backbone, hp.attack_bn_mode):
            x0, y = x.detach().clone(), y.detach().clone()
            if hp.inner_max == "lagrangian":
                step = LagrangianStep(x0, hp.gamma, hp.step_size)
            else:
                step = StudyWRMStep(x0, 0.0, hp.step_size)
            return run_attack(self.backbone, x0, y, step, steps=hp.steps)

    def training_loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x_adv = self.perturb(x, y)
        self.log("train/perturbation_l2", (x_adv - x).flatten(1).norm(dim=1).mean())
        logits = self(x_adv)
        return self.cross_entropy(logits, y), logits
