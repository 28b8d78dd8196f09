"""The zonotope domain (DiffAI, Mirman, Gehr, Vechev, ICML 2018; ReLU transformer of DeepZ, Singh et al. NeurIPS
2018) and its random-projection estimate (Wong, Schmidt, Metzen, Kolter, NeurIPS 2018, arXiv:1805.12514).

A zonotope is a centre c and generators G: {c + Gᵀe : e ∈ [−1, 1]^k}. Affine layers map both exactly. At an unstable
ReLU (l < 0 < u), with λ = u/(u − l) and μ = −λl/2: c ← λc + μ, G ← λG, and a new generator μ for that neuron;
this is the same relaxation as Wong & Kolter's dual, so its bounds equal the exact dual bound. Its memory grows with
k = input size + unstable neurons, hence ``memory_budget``.

With ``projections=k`` the generators are replaced by k Cauchy random projections of them, and each neuron's radius
‖G_{:,i}‖₁ is estimated by the median of |projections| (a median of |Cauchy| is 1): memory k x neurons. The estimate
is not a certificate; privrob uses it for training only.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn

from privrob.bounds.network import affine, linear_part, relu_relaxation

BYTES = 4


class BoundsMemoryError(ValueError):
    """A bound whose memory would exceed its budget (a caller may fall back to a cheaper method)."""


def check_memory(shapes: Sequence[torch.Size], layers: Sequence[nn.Module], batch: int, budget_gb: float,
                 what: str) -> None:
    """Refuse a zonotope whose generator matrix could exceed ``budget_gb`` (input + all ReLU neurons generators)."""
    generators = shapes[0].numel() + sum(shapes[i].numel() for i, l in enumerate(layers) if isinstance(l, nn.ReLU))
    need = batch * generators * max(s.numel() for s in shapes) * BYTES / 2**30
    if need > budget_gb:
        raise BoundsMemoryError(f"{what} needs up to {need:.1f} GB for this network and batch of {batch} inputs of shape "
                         f"{tuple(shapes[0])} (memory_budget={budget_gb:g} GB); use a smaller batch, the "
                         f"'dual_projected' estimate for training, or 'crown_ibp'/'ibp'")


def propagate(layers: Sequence[nn.Module], lo: torch.Tensor, hi: torch.Tensor, projections: Optional[int] = None,
              generator: Optional[torch.Generator] = None
              ) -> tuple[torch.Tensor, torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
    """Centre (B, *s) and generators (B, k, *s) after ``layers``, and each ReLU's pre-activation (l, u)."""
    batch = lo.shape[0]
    centre, radius = (hi + lo) / 2, (hi - lo) / 2
    if projections is None:
        n = radius[0].numel()
        gens = torch.diag_embed(radius.flatten(1)).view(batch, n, *radius.shape[1:])
    else:
        gens = radius.unsqueeze(1) * _cauchy((batch, projections, *radius.shape[1:]), lo, generator)
    pre: list[tuple[torch.Tensor, torch.Tensor]] = []
    for layer in layers:
        if isinstance(layer, nn.ReLU):
            spread = gens.abs().sum(1) if projections is None else gens.abs().median(dim=1).values
            l, u = centre - spread, centre + spread
            pre.append((l, u))
            _, slope, b_u = relu_relaxation(l, u, adaptive_lower=False)
            mu = b_u / 2
            centre = slope * centre + mu
            gens = slope.unsqueeze(1) * gens
            if projections is None:
                gens = torch.cat([gens, _new_generators(mu)], dim=1)
            else:
                gens = gens + mu.unsqueeze(1) * _cauchy(gens.shape, lo, generator)
        else:
            k = gens.shape[1]
            centre = affine(layer, centre)
            gens = linear_part(layer, gens.flatten(0, 1)).unflatten(0, (batch, k))
    return centre, gens, pre


def _cauchy(shape, like: torch.Tensor, generator: Optional[torch.Generator]) -> torch.Tensor:
    u = torch.rand(shape, generator=generator, dtype=like.dtype, device="cpu").to(like.device)
    return torch.tan(torch.pi * (u - 0.5))


def _new_generators(mu: torch.Tensor) -> torch.Tensor:
    """One generator per neuron that is unstable in some example (μ > 0): (B, m, *shape)."""
    batch = mu.shape[0]
    flat = mu.flatten(1)
    idx = (flat > 0).any(0).nonzero().flatten()
    new = flat.new_zeros(batch, len(idx), flat.shape[1])
    new[:, torch.arange(len(idx), device=mu.device), idx] = flat[:, idx]
    return new.view(batch, len(idx), *mu.shape[1:])


def logit_bounds(layers: Sequence[nn.Module], lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    centre, gens, _ = propagate(layers, lo, hi)
    spread = gens.abs().sum(1)
    return centre - spread, centre + spread


def margin_lower_bounds(layers: Sequence[nn.Module], lo: torch.Tensor, hi: torch.Tensor,
                        spec: torch.Tensor) -> torch.Tensor:
    """Lower bounds (B, S) of spec·z: the spec is affine, so it maps the final zonotope exactly."""
    centre, gens, _ = propagate(layers, lo, hi)
    c = (spec @ centre.unsqueeze(-1)).squeeze(-1)
    g = gens @ spec.transpose(1, 2)  # (B, k, S)
    return c - g.abs().sum(1)
