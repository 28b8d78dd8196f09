"""Membership-inference strategies of Song et al. 2019 (§3): what score an example gets.

* ``I_B``: true-label confidence on the clean input (benign).
* ``I_A``: true-label confidence on a PGD adversarial input (the study's evaluation attack by default: 20 steps
  of 2.5·ε/20 from the clean input, last iterate).
* ``I_V``: true-label confidence on the verified worst-case logits −lb(z_y − z_j) from certified bounds
  (``privrob.bounds``): 1 / (1 + Σ_{j≠y} exp(−lb_j)). Its "correct" is "certified".

A strategy maps a batch to (scores, correct): the score of each example and whether the model's prediction on
the same (clean, adversarial or worst-case) logits is right, so one pass yields privacy and accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional
import torch
from torch import nn

from privrob.attacks import check_attack_args, pgd
from privrob.privacy.functional import true_label_confidence


class Strategy:
    """Scores a batch. Subclasses set ``name`` and implement ``logits``.

    ``temperature`` T scores softmax(logits / T), the released confidences of a model that applies temperature
    scaling (a countermeasure the study discusses); the argmax, hence accuracy, does not change.
    """

    name: str = ""
    temperature: float = 1.0

    def logits(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.logits(model, x, y)
        return true_label_confidence(logits / self.temperature, y, from_logits=True), logits.argmax(dim=1) == y


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



#: certified methods tried in order for I_V when none is named: the tightest first, falling back on memory
DEFAULT_BOUNDS = ("dual", "crown_ibp", "ibp")


@dataclass
class Verified(Strategy):
    """I_V: the worst-case logits certified by the first of ``methods`` that fits its memory budget (the one used
    is kept in ``used``). The ball is intersected with [0, 1]."""

    eps: float = 0.0
    methods: tuple[str, ...] = DEFAULT_BOUNDS
    name: str = "I_V"
    used: Optional[str] = field(default=None, compare=False)

    def __post_init__(self) -> None:
        from privrob.bounds import CERTIFIED

        if self.eps < 0:
            raise ValueError(f"`eps` must be non-negative, got {self.eps}")
        bad = [m for m in self.methods if m not in CERTIFIED]
        if bad or not self.methods:
            raise ValueError(f"I_V needs certified bound methods among {', '.join(CERTIFIED)}, got {list(self.methods)}")

    def logits(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        from privrob.bounds import BoundsMemoryError, worst_case_logits

        with torch.no_grad():
            for method in self.methods[:-1]:
                try:
                    logits = worst_case_logits(model, x, y, self.eps, method)
                except BoundsMemoryError:
                    continue
                self.used = method
                return logits.float()
            self.used = self.methods[-1]
            return worst_case_logits(model, x, y, self.eps, self.used).float()


STRATEGY_NAMES = ("I_B", "I_A", "I_V")


def default_strategies(model: nn.Module) -> list[str]:
    """I_B and I_A, and I_V for a model trained by a verifiable method (one with ``certified_methods``)."""
    return ["I_B", "I_A"] + (["I_V"] if getattr(model, "certified_methods", ()) else [])


def bound_methods_of(model: nn.Module) -> tuple[str, ...]:
    """The certified methods a model reports with (its ``certified_methods``, else the default order)."""
    return tuple(getattr(model, "certified_methods", ()) or DEFAULT_BOUNDS)


def build_strategy(name: str, *, eps: float, attack_steps: int = 20, attack_rel_step_size: float = 2.5 / 20,
                   norm: str = "linf", bound_methods: Optional[tuple[str, ...]] = None,
                   temperature: float = 1.0) -> Strategy:
    """The strategy called ``name`` with the given evaluation-attack (I_A), bound (I_V) and softmax settings."""
    if temperature <= 0:
        raise ValueError(f"`temperature` must be positive, got {temperature}")
    if name == "I_B":
        strategy: Strategy = Benign()
    elif name == "I_A":
        strategy = Adversarial(eps=eps, steps=attack_steps, rel_step_size=attack_rel_step_size, norm=norm)
    elif name == "I_V":
        strategy = Verified(eps=eps, methods=tuple(bound_methods or DEFAULT_BOUNDS))
    else:
        raise ValueError(f"unknown membership-inference strategy {name!r}; known: {', '.join(STRATEGY_NAMES)}")
    strategy.temperature = temperature
    return strategy
