"""TRADES (Zhang, Yu, Jiao, Xing, El Ghaoui, Jordan, ICML 2019, arXiv:1901.08573)."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from privrob.attacks import BNMode, check_attack_args, check_bn_mode, pgd
from privrob.methods.base import RobustTraining


class TRADESTraining(RobustTraining):
    """CE(f(x), y) + β·KL(p(x) ‖ p(x′)), x′ maximising the same KL in the l_inf ball.

    The inner maximisation starts from x + 0.001·N(0, 1) and takes signed steps on the summed KL, projected to the
    ε-ball and [0, 1], with the model in eval mode (the authors' ``trades.py``). The outer KL is
    ``kl_div(log_softmax(f(x′)), softmax(f(x)), reduction="sum") / batch``, computed from log-probabilities
    (``log_target``) so that a saturated softmax cannot give NaN gradients. The study's code detaches p(x) in it
    (``model(x_natural).detach()``, all three datasets), so the KL pulls p(x′) towards p(x) and only the
    cross-entropy moves p(x); ``detach_clean=False`` back-propagates through p(x) as well, as the TRADES
    authors' own code does.

    Args:
        eps: l_inf budget (the study: Yale 0.0314, Fashion-MNIST 0.1, CIFAR10 0.0314).
        steps: inner steps (10, 8, 10).
        step_size: absolute step (0.0078, 0.02, 0.007); or
        rel_step_size: the step as a multiple of ε.
        beta: weight of the robustness term (the study: 1.0).
        eps_ramp_steps: ε grows linearly from 0 over this many optimizer steps (the study: none; privrob's short CPU
            runs need one to leave chance level).
        detach_clean: no gradient through p(x) in the KL term (the study's code; False: the TRADES authors').
        attack_bn_mode: batch norm during the inner maximisation: ``eval`` (running statistics, untouched; the
            study's ``trades.py``) or ``train`` (batch statistics, each attack forward updating the running ones).
        **kwargs: see :class:`~privrob.methods.base.RobustTraining`.
    """

    def __init__(self, backbone: torch.nn.Module, eps: float = 0.0314, steps: int = 10,
                 step_size: Optional[float] = 0.0078, rel_step_size: Optional[float] = None, beta: float = 1.0,
                 eps_ramp_steps: int = 0, detach_clean: bool = True, attack_bn_mode: BNMode = "eval",
                 **kwargs) -> None:
        super().__init__(backbone, **kwargs)
        check_attack_args(eps, steps, step_size, rel_step_size, "linf")
        check_bn_mode(attack_bn_mode)
        if beta < 0:
            raise ValueError(f"`beta` must be non-negative, got {beta}")
        if eps_ramp_steps < 0:
            raise ValueError(f"`eps_ramp_steps` must be non-negative, got {eps_ramp_steps}")

    def training_loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hp = self.hparams
        eps = self.ramped_eps()
        self.log("train/eps", eps)
        x_adv = pgd(self.backbone, x, y, eps=eps, steps=hp.steps, step_size=hp.step_size,
                    rel_step_size=hp.rel_step_size, loss="kl", start=x + 0.001 * torch.randn_like(x),
                    bn_mode=hp.attack_bn_mode)
        logits = self(x)
        target = logits.detach() if hp.detach_clean else logits
        # log_target: the same KL as the authors' kl_div(log p(x'), p(x)), but its gradient through p(x) stays finite
        # where float32's softmax underflows to 0 (d(p log p)/dp = log p + 1 is -inf there: NaN weights after it)
        robust = F.kl_div(F.log_softmax(self(x_adv), dim=1), F.log_softmax(target, dim=1), reduction="sum",
                          log_target=True) / len(x)
        self.log("train/kl", robust)
        return self.cross_entropy(logits, y) + hp.beta * robust, logits
