"""Membership-inference strategies of Song et al. 2019 (§3): what score an example gets.

* ``I_B``: true-label confidence on the clean input (benign).
* ``I_A``: true-label confidence on a PGD adversarial input (the study's evaluation attack by default: 20 steps
  of 2.5·ε/20 from the clean input, last iterate).
* ``I_V`` (verified worst case) is a strategy of the same shape over certified bounds; it comes with the
  bounds module.

A strategy maps a batch to (scores, correct): the score of each example and whether the model's prediction on
the same (clean, adversarial or worst-case) logits is right, so one pass yields privacy and accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass
import torch
from torch import nn

from privrob.attacks import check_attack_args, pgd
from privrob.privacy.functional import true_label_confidence


class Strategy:
    """Scores a batch. Subclasses set ``name`` and implement ``logits``."""

    name: str = ""

    def logits(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.logits(model, x, y)
        return true_label_confidence(logits, y, from_logits=True), logits.argmax(dim=1) == y


@dataclass
class Benign(Strategy):
    """I_B: the clean input."""

    name: str = "I_B"

    def logits(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return model(x).float()


@dataclass
class Adversarial(Strategy):
    """I_A: the PGD input (defaults: the study's evaluation attack)."""

    eps: float = 0.0
    steps: int = 20
    rel_step_size: float = 2.5 / 20
    norm: str = "linf"
    random_start: bool = False
    name: str = "I_A"

    def __post_init__(self) -> None:
        check_attack_args(self.eps, self.steps, None, self.rel_step_size, self.norm)

    def logits(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x_adv = pgd(model, x, y, eps=self.eps, steps=self.steps, rel_step_size=self.rel_step_size,
                    norm=self.norm, random_start=self.random_start)
        with torch.no_grad():
            return model(x_adv).float()



STRATEGY_NAMES = ("I_B", "I_A")


def build_strategy(name: str, *, eps: float, attack_steps: int = 20, attack_rel_step_size: float = 2.5 / 20,
                   norm: str = "linf") -> Strategy:
    """The strategy called ``name`` with the given evaluation-attack settings."""
    if name == "I_B":
        return Benign()
    if name == "I_A":
        return Adversarial(eps=eps, steps=attack_steps, rel_step_size=attack_rel_step_size, norm=norm)
    raise ValueError(f"unknown membership-inference strategy {name!r}; known: {', '.join(STRATEGY_NAMES)}")
