"""One small step object per threat model, in the style of MadryLab's ``robustness`` (``attack_steps.py``).

Each step knows its feasible set ``S`` and implements ``project`` (onto S), ``step`` (one ascent step from a
gradient) and ``random_perturb`` (a random point of S). The one loop in :mod:`privrob.attacks.pgd` uses them.
All sets are intersected with the input range ``bounds`` (``[0, 1]`` by default).
"""

from __future__ import annotations

import torch


def _per_example_norm(t: torch.Tensor) -> torch.Tensor:
    """l_2 norm of each example, shaped to broadcast against ``t``."""
    return t.flatten(1).norm(dim=1).view(-1, *([1] * (t.dim() - 1)))


class AttackStep:
    """Base step around the clean input ``orig_input`` (N, ...).

    Args:
        orig_input: the clean batch x_0.
        eps: radius of the feasible set.
        step_size: absolute step size.
        bounds: (low, high) of the input domain.
    """

    def __init__(self, orig_input: torch.Tensor, eps: float, step_size: float,
                 bounds: tuple[float, float] = (0.0, 1.0)) -> None:
        self.orig_input, self.eps, self.step_size, self.bounds = orig_input, eps, step_size, bounds

    def clip(self, x: torch.Tensor) -> torch.Tensor:
        return x.clamp(*self.bounds)

    def project(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def step(self, x: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def random_perturb(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class LinfStep(AttackStep):
    r"""l_inf ball: :math:`S = \{x \mid \|x - x_0\|_\infty \le \epsilon\} \cap [lo, hi]^d`; signed-gradient steps."""

    def project(self, x: torch.Tensor) -> torch.Tensor:
        diff = (x - self.orig_input).clamp(-self.eps, self.eps)
        return self.clip(self.orig_input + diff)

    def step(self, x: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        return x + self.step_size * grad.sign()

    def random_perturb(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(x + torch.empty_like(x).uniform_(-self.eps, self.eps))


class L2Step(AttackStep):
    r"""l_2 ball: :math:`S = \{x \mid \|x - x_0\|_2 \le \epsilon\} \cap [lo, hi]^d`; normalised-gradient steps."""

    def project(self, x: torch.Tensor) -> torch.Tensor:
        diff = x - self.orig_input
        scale = torch.clamp(self.eps / (_per_example_norm(diff) + 1e-12), max=1.0)
        return self.clip(self.orig_input + diff * scale)

    def step(self, x: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        return x + self.step_size * grad / (_per_example_norm(grad) + 1e-12)

    def random_perturb(self, x: torch.Tensor) -> torch.Tensor:
        direction = torch.randn_like(x)
        direction = direction / (_per_example_norm(direction) + 1e-12)
        radius = self.eps * torch.rand(x.shape[0], *([1] * (x.dim() - 1)), device=x.device, dtype=x.dtype)
        return self.project(x + direction * radius)


class LagrangianStep(AttackStep):
    r"""Sinha et al. 2018 (WRM): gradient ascent on :math:`\ell(x) - \gamma \|x - x_0\|_2^2` over
    :math:`S = [lo, hi]^d` (no ball; the penalty keeps :math:`x` near :math:`x_0`).

    One step is :math:`x + \alpha (\nabla \ell - 2\gamma (x - x_0))`; the default :math:`\alpha = 1/(2\gamma)`
    gives :math:`x_0 + \nabla\ell / (2\gamma)`, stable for any :math:`\gamma > 0`. ``eps`` is unused.
    """

    def __init__(self, orig_input: torch.Tensor, gamma: float, step_size: float | None = None,
                 bounds: tuple[float, float] = (0.0, 1.0)) -> None:
        super().__init__(orig_input, 0.0, 1.0 / (2 * gamma) if step_size is None else step_size, bounds)
        self.gamma = gamma

    def project(self, x: torch.Tensor) -> torch.Tensor:
        return self.clip(x)

    def step(self, x: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        return x + self.step_size * (grad - 2 * self.gamma * (x - self.orig_input))

    def random_perturb(self, x: torch.Tensor) -> torch.Tensor:
        return self.clip(x)


class StudyWRMStep(AttackStep):
    r"""The WRM inner step the original study's code ran (``LinfWRMAttack``; original-study.md §1.2), kept so its
    numbers can be reproduced: :math:`g = a \nabla \ell`,
    :math:`x \leftarrow \mathrm{clip}(x + g - \overline{|g|}\,\mathrm{sign}(x + g - x_0))`, with the penalty
    weight :math:`\overline{|g|}` the batch's mean absolute gradient. No ball: ``eps`` is unused."""

    def project(self, x: torch.Tensor) -> torch.Tensor:
        return self.clip(x)

    def step(self, x: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        g = self.step_size * grad
        moved = x + g
        return moved - g.abs().mean() * (moved - self.orig_input).sign()

    def random_perturb(self, x: torch.Tensor) -> torch.Tensor:
        return self.clip(x)


STEPS: dict[str, type[AttackStep]] = {"linf": LinfStep, "l2": L2Step}
