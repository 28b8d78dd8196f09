"""Projected gradient descent (Madry et al., ICLR 2018, arXiv:1706.06083): one loop for every threat model.

The loop works from any Lightning hook: it runs with the model in eval mode (restored afterwards, so batch-norm
statistics are untouched), inside ``torch.inference_mode(False)`` and ``torch.enable_grad()``, on a clone of the
inputs, and takes gradients with ``torch.autograd.grad`` with respect to the input only, so no parameter's
``.grad`` is touched. A training attack may run in train mode instead (``bn_mode="train"``): batch statistics, each
forward updating the running ones, as Madry's attacks on the ``mode='train'`` graph of cifar10_challenge.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator, Literal, Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

from privrob.attacks.steps import STEPS, AttackStep
from privrob.modes import modes_kept

LossName = Literal["ce", "kl"]
BNMode = Literal["eval", "train"]


def check_bn_mode(bn_mode: str) -> None:
    """One-line error for a batch-norm mode of the attack other than ``eval`` and ``train``."""
    if bn_mode not in ("eval", "train"):
        raise ValueError(f"`attack_bn_mode` can be eval or train, got {bn_mode!r}")


@contextlib.contextmanager
def attack_mode(model: nn.Module, bn_mode: BNMode = "eval") -> Iterator[None]:
    """Eval mode (train mode with ``bn_mode="train"``), gradients on, inference mode off, for the duration; each
    module's mode is restored after."""
    check_bn_mode(bn_mode)
    with modes_kept(model), torch.inference_mode(False), torch.enable_grad():
        model.train(bn_mode == "train")
        yield


def _loss_fn(model: nn.Module, x0: torch.Tensor, loss: Union[LossName, Callable]) -> Callable:
    """Per-batch loss of the attack, summed over examples so that each example's gradient is its own."""
    if callable(loss):
        return loss
    if loss == "ce":
        return lambda logits, y: F.cross_entropy(logits, y, reduction="sum")
    if loss == "kl":  # TRADES: KL(p(x0) || p(x)), the clean distribution fixed
        with torch.no_grad():
            target = F.softmax(model(x0), dim=1)
        return lambda logits, y: F.kl_div(F.log_softmax(logits, dim=1), target, reduction="sum")
    raise ValueError(f"`loss` can be 'ce', 'kl' or a callable, got {loss!r}")


def run_attack(model: nn.Module, x0: torch.Tensor, y: torch.Tensor, step: AttackStep, *, steps: int,
               loss: Union[LossName, Callable] = "ce", random_start: bool = False,
               start: Optional[torch.Tensor] = None) -> torch.Tensor:
    """The ascent loop: ``steps`` times, x ← project(step(x, ∇ₓ loss)). Returns the last iterate.

    Call inside :func:`attack_mode` with ``x0`` a normal (non-inference) tensor.
    """
    loss_fn = _loss_fn(model, x0, loss)
    if start is not None:
        x = step.project(start.detach())
    elif random_start:
        x = step.random_perturb(x0)
    else:
        x = x0.clone()
    for _ in range(steps):
        x.requires_grad_(True)
        grad, = torch.autograd.grad(loss_fn(model(x), y), [x])
        with torch.no_grad():
            x = step.project(step.step(x, grad))
    return x.detach()


def check_attack_args(eps: float, steps: int, step_size: Optional[float], rel_step_size: Optional[float],
                      norm: str) -> None:
    """One-line errors for an impossible attack configuration."""
    if eps < 0:
        raise ValueError(f"`eps` must be non-negative, got {eps}")
    if steps < 1:
        raise ValueError(f"`steps` must be at least 1, got {steps}")
    if norm not in STEPS:
        raise ValueError(f"`norm` can be {', '.join(STEPS)}, got {norm!r}")
    if (step_size is None) == (rel_step_size is None):
        raise ValueError("give exactly one of `step_size` (absolute) and `rel_step_size` (a multiple of eps)")
    if (step_size if step_size is not None else rel_step_size) < 0:
        raise ValueError(f"the step size must be non-negative, got {step_size if step_size is not None else rel_step_size}")


def pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, steps: int,
        step_size: Optional[float] = None, rel_step_size: Optional[float] = None,
        norm: Literal["linf", "l2"] = "linf", random_start: bool = False,
        loss: Union[LossName, Callable] = "ce", start: Optional[torch.Tensor] = None,
        bounds: tuple[float, float] = (0.0, 1.0), bn_mode: BNMode = "eval") -> torch.Tensor:
    """Untargeted PGD in the ``norm`` ball of radius ``eps`` around ``x``, clipped to ``bounds``.

    Args:
        model: maps (N, C, H, W) inputs to (N, classes) logits.
        x: clean inputs (N, C, H, W) in ``bounds``.
        y: true labels (N,), int64.
        eps: radius of the ball (≥ 0).
        steps: ascent steps (≥ 1).
        step_size: absolute step size; or
        rel_step_size: step size as a multiple of ``eps`` (the study's evaluation: 2.5 / 20).
        norm: ``"linf"`` (signed gradient) or ``"l2"`` (normalised gradient).
        random_start: start from a random point of the ball instead of ``x`` (the study evaluates from ``x``).
        loss: ``"ce"`` (cross-entropy of ``y``), ``"kl"`` (KL divergence from the clean prediction, as TRADES), or
            a callable ``(logits, y) -> scalar``.
        start: an explicit starting point (projected first); overrides ``random_start``.
        bounds: the input domain.
        bn_mode: ``eval`` (running batch-norm statistics, left untouched: every evaluation attack) or ``train``
            (batch statistics, every forward updating the running ones: Madry's training attacks).

    Returns:
        The last iterate, (N, C, H, W), detached, within ``eps`` of ``x`` and within ``bounds``.
    """
    check_attack_args(eps, steps, step_size, rel_step_size, norm)
    size = step_size if step_size is not None else rel_step_size * eps
    with attack_mode(model, bn_mode):
        x0, y = x.detach().clone(), y.detach().clone()
        step = STEPS[norm](x0, eps, size, bounds)
        return run_attack(model, x0, y, step, steps=steps, loss=loss, random_start=random_start,
                          start=None if start is None else start.detach().clone())
