"""Certified bounds on a network's outputs over an l_inf ball, privrob's own (no bounds library installs with
current torch: see the README). Works on ``nn.Sequential`` networks of Conv2d, Linear, ReLU, Flatten and ZeroPad2d,
batched, on CPU and GPU, in float32 (or float64).

Methods (``method=``):

* ``ibp``: interval bound propagation, with the last layer elided into the margins (Gowal et al. 2018);
* ``box``: DiffAI's box domain (Mirman et al. 2018), i.e. interval propagation without elision;
* ``zonotope``: DiffAI's zonotope domain with the DeepZ ReLU transformer (Singh et al. 2018);
* ``dual``: the exact Wong–Kolter dual bound (Wong & Kolter 2018);
* ``dual_projected``: its random-projection estimate (Wong et al. 2018), for training only, never a certificate;
* ``crown_ibp``: IBP intermediate bounds and a CROWN backward pass (Zhang et al. 2020).
"""

from __future__ import annotations

from typing import Literal, Optional

import torch
from torch import nn

from privrob.bounds import crown_ibp, dual, interval, zonotope
from privrob.bounds.network import input_box, layers_of, margin_spec, shapes_of
from privrob.bounds.zonotope import BoundsMemoryError

Method = Literal["ibp", "box", "zonotope", "dual", "dual_projected", "crown_ibp"]
METHODS = ("ibp", "box", "zonotope", "dual", "dual_projected", "crown_ibp")
#: methods whose bounds are certificates (``dual_projected`` is an estimate)
CERTIFIED = ("ibp", "box", "zonotope", "dual", "crown_ibp")


def _check(method: str, eps: float) -> None:
    if method not in METHODS:
        raise ValueError(f"`method` can be {', '.join(METHODS)}, got {method!r}")
    if eps < 0:
        raise ValueError(f"`eps` must be non-negative, got {eps}")


def margin_lower_bounds(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, method: Method = "ibp", *,
                        clip: bool = True, elide: bool = True, projections: int = 50,
                        memory_budget: float = 4.0, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Lower bounds on the margins z_y − z_j over the l_inf ball of radius ``eps`` around each input.

    Args:
        model: an ``nn.Sequential`` (or a module whose ``backbone`` is one) of supported layers.
        x: inputs (B, C, H, W) or (B, D).
        y: true labels (B,).
        eps: l_inf radius (≥ 0).
        method: see the module docstring.
        clip: intersect the ball with the input domain [0, 1] (the study's ``bounded_input``).
        elide: ``ibp`` only: fold the last linear layer into the margins.
        projections: ``dual_projected`` only: Cauchy projections per estimate.
        memory_budget: GB that ``dual`` and ``zonotope`` may use for their generator matrices; beyond it they refuse.
        generator: ``dual_projected`` only: the random projections' generator.

    Returns:
        (B, K) lower bounds, exactly 0 at j = y.
    """
    _check(method, eps)
    layers = layers_of(model)
    lo, hi = input_box(x, eps, clip)
    spec = margin_spec(y, layers[-1].out_features).to(x.dtype)
    if method in ("ibp", "box"):
        return interval.margin_lower_bounds(layers, lo, hi, spec, elide=elide and method == "ibp")
    shapes = shapes_of(layers, x)
    if method == "zonotope":
        zonotope.check_memory(shapes, layers, len(x), memory_budget, "the zonotope domain")
        return zonotope.margin_lower_bounds(layers, lo, hi, spec)
    if method == "crown_ibp":
        return crown_ibp.lower_bounds(layers, shapes, lo, hi, spec)
    return dual.bounds(layers, shapes, lo, hi, spec, projections=projections if method == "dual_projected" else None,
                       memory_budget=memory_budget, generator=generator)[0]


def logit_bounds(model: nn.Module, x: torch.Tensor, eps: float, method: Method = "ibp", *, clip: bool = True,
                 projections: int = 50, memory_budget: float = 4.0,
                 generator: Optional[torch.Generator] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(lower, upper) bounds (B, K) on the logits over the l_inf ball of radius ``eps``."""
    _check(method, eps)
    layers = layers_of(model)
    lo, hi = input_box(x, eps, clip)
    if method in ("ibp", "box"):
        return interval.logit_bounds(layers, lo, hi)
    shapes = shapes_of(layers, x)
    if method == "zonotope":
        zonotope.check_memory(shapes, layers, len(x), memory_budget, "the zonotope domain")
        return zonotope.logit_bounds(layers, lo, hi)
    eye = torch.eye(layers[-1].out_features, dtype=x.dtype, device=x.device).expand(len(x), -1, -1)
    if method == "crown_ibp":
        return crown_ibp.lower_bounds(layers, shapes, lo, hi, eye), -crown_ibp.lower_bounds(layers, shapes, lo, hi, -eye)
    return dual.bounds(layers, shapes, lo, hi, eye, projections=projections if method == "dual_projected" else None,
                       memory_budget=memory_budget, upper=True, generator=generator)


def worst_case_logits(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, method: Method = "ibp",
                      **kwargs) -> torch.Tensor:
    """−lb(z_y − z_j): logits that no point of the ball can beat (0 at the true class). Their cross-entropy is the
    verified loss of Wong & Kolter and of Gowal et al.; their softmax at y is the I_V score."""
    return -margin_lower_bounds(model, x, y, eps, method, **kwargs)


__all__ = ["CERTIFIED", "METHODS", "BoundsMemoryError", "layers_of", "logit_bounds", "margin_lower_bounds",
           "worst_case_logits"]
