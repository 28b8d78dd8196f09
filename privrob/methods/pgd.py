"""PGD adversarial training (Madry, Makelov, Schmidt, Tsipras, Vladu, ICLR 2018, arXiv:1706.06083)."""

from __future__ import annotations

from typing import Literal, Optional

import torch

from privrob.attacks import BNMode, check_attack_args, check_bn_mode, pgd
from privrob.methods.base import RobustTraining


class PGDTraining(RobustTraining):
    """Minimise the loss on PGD adversarial examples (l_inf or l_2, random start).

    Args:
        eps: the attack budget (the study's l_inf: Yale 0.0314, Fashion-MNIST 0.1, CIFAR10 8/255).
        steps: PGD steps per batch.
        step_size: absolute step size; or
        rel_step_size: step size as a multiple of the *current* ε (the study's Yale: 2/k of the ramped ε).
        norm: ``linf`` or ``l2``.
        random_start: start from a uniform point of the ball (the study: yes).
        eps_ramp_steps: ε grows linearly from 0 over this many optimizer steps (the study's Yale: 1,000).
        clean_weight: w in (1 − w)·CE(adversarial) + w·CE(clean); the study trains on adversarial examples only.
        attack_bn_mode: batch norm during the attack: ``eval`` (running statistics, untouched) or ``train`` (batch
            statistics, each attack forward updating the running ones: the study's CIFAR10 code, whose attack runs on
            Madry's ``mode='train'`` graph).
        **kwargs: see :class:`~privrob.methods.base.RobustTraining`.
    """

    def __init__(self, backbone: torch.nn.Module, eps: float = 0.0314, steps: int = 10,
                 step_size: Optional[float] = None, rel_step_size: Optional[float] = None,
                 norm: Literal["linf", "l2"] = "linf", random_start: bool = True, eps_ramp_steps: int = 0,
                 clean_weight: float = 0.0, attack_bn_mode: BNMode = "eval", **kwargs) -> None:
        super().__init__(backbone, **kwargs)
        check_attack_args(eps, steps, step_size, rel_step_size, norm)
        check_bn_mode(attack_bn_mode)
        if eps_ramp_steps < 0:
            raise ValueError(f"`eps_ramp_steps` must be non-negative, got {eps_ramp_steps}")
        if not 0.0 <= clean_weight <= 1.0:
            raise ValueError(f"`clean_weight` must be in [0, 1], got {clean_weight}")

    def current_eps(self) -> float:
        """ε at the current optimizer step (after the ramp: ``eps``)."""
        return self.ramped_eps()

    def training_loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hp = self.hparams
        eps = self.current_eps()
        x_adv = pgd(self.backbone, x, y, eps=eps, steps=hp.steps, step_size=hp.step_size,
                    rel_step_size=hp.rel_step_size, norm=hp.norm, random_start=hp.random_start,
                    bn_mode=hp.attack_bn_mode)
        self.log("train/eps", eps)
        logits = self(x_adv)
        loss = self.cross_entropy(logits, y)
        if hp.clean_weight > 0:
            loss = (1 - hp.clean_weight) * loss + hp.clean_weight * self.cross_entropy(self(x), y)
        return loss, logits
