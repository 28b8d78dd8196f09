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

from privrob.bounds.network import affine, layer_range, linear_part, relu_relaxation

BYTES = 4


class BoundsMemoryError(ValueError):
    """A bound whose memory would exceed its budget (a caller may fall back to a cheaper method)."""


def check_memory(shapes: Sequence[torch.Size], layers: Sequence[nn.Module], batch: int, budget_gb: float,
                 what: str) -> None:
    """Refuse a zonotope whose generators could exceed ``budget_gb`` (worst case: one generator per input and per
    ReLU neuron, at the widest layer)."""
    generators = shapes[0].numel() + sum(shapes[i].numel() for i, l in enumerate(layers) if isinstance(l, nn.ReLU))
    need = batch * generators * max(s.numel() for s in shapes) * BYTES / 2**30
    if need > budget_gb:
        raise BoundsMemoryError(f"{what} needs up to {need:.1f} GB for this network and batch of {batch} inputs of shape "
                         f"{tuple(shapes[0])} (memory_budget={budget_gb:g} GB); use a smaller batch, the "
                         f"'dual_projected' estimate for training, or 'crown_ibp'/'ibp'")


class Zonotope:
    """Generators as rows (R, *shape) with the example each belongs to (``owner``, (R,)), so that an example
    carries only its own unstable neurons' generators; or, with projections, k projected rows per example."""

    def __init__(self, centre: torch.Tensor, rows: torch.Tensor, owner: torch.Tensor, projections: Optional[int]):
        self.centre, self.rows, self.owner, self.projections = centre, rows, owner, projections

    def spread(self) -> torch.Tensor:
        """Σ|G| per example and neuron (the exact radius), or the median estimate of it from the projections."""
        batch = self.centre.shape[0]
        if self.projections is not None:
            return self.rows.abs().view(batch, self.projections, *self.rows.shape[1:]).median(dim=1).values
        flat = self.rows.abs().flatten(1)
        return flat.new_zeros(batch, flat.shape[1]).index_add_(0, self.owner, flat).view_as(self.centre)


def propagate(layers: Sequence[nn.Module], lo: torch.Tensor, hi: torch.Tensor, projections: Optional[int] = None,
              generator: Optional[torch.Generator] = None, bounds_only: bool = False
              ) -> tuple[Zonotope, list[tuple[torch.Tensor, torch.Tensor]]]:
    """The zonotope after ``layers`` and each ReLU's pre-activation (l, u); with ``bounds_only`` stop at the last
    ReLU's bounds."""
    batch = lo.shape[0]
    centre, radius = (hi + lo) / 2, (hi - lo) / 2
    if projections is None:
        n = radius[0].numel()
        rows = torch.diag_embed(radius.flatten(1)).view(batch * n, *radius.shape[1:])
        owner = torch.arange(batch, device=lo.device).repeat_interleave(n)
    else:
        rows = _cauchy((batch, projections, *radius.shape[1:]), lo, generator).mul_(radius.unsqueeze(1)).flatten(0, 1)
        owner = torch.arange(batch, device=lo.device).repeat_interleave(projections)
    z = Zonotope(centre, rows, owner, projections)
    pre: list[tuple[torch.Tensor, torch.Tensor]] = []
    last_relu = max((i for i, l in enumerate(layers) if isinstance(l, nn.ReLU)), default=-1)
    for i, layer in enumerate(layers):
        with layer_range(i, layer):
            if isinstance(layer, nn.ReLU):
                spread = z.spread()
                l, u = z.centre - spread, z.centre + spread
                pre.append((l, u))
                if bounds_only and i == last_relu:
                    break
                _, slope, b_u = relu_relaxation(l, u, adaptive_lower=False)
                mu = b_u / 2
                z.centre = slope * z.centre + mu
                if projections is None:
                    new_rows, new_owner = _new_generators(mu)
                    z.rows, z.owner = torch.cat([slope[z.owner] * z.rows, new_rows]), torch.cat([z.owner, new_owner])
                else:  # each example's k rows broadcast against its slope and μ: no (B·k)-row copies of them
                    rows = z.rows.view(batch, projections, *z.rows.shape[1:])
                    new = mu.unsqueeze(1) * _cauchy(rows.shape, lo, generator)
                    z.rows = torch.addcmul(new, rows, slope.unsqueeze(1)).flatten(0, 1)
            else:
                z.centre, z.rows = affine(layer, z.centre), linear_part(layer, z.rows)
    return z, pre


def _cauchy(shape, like: torch.Tensor, generator: Optional[torch.Generator]) -> torch.Tensor:
    """Standard Cauchy draws tan(π(u − ½)), u uniform from ``generator`` on the CPU (the same u on any device), the
    rest computed in place on ``like``'s device: these are the largest tensors of the projected bound."""
    u = torch.rand(shape, generator=generator, dtype=like.dtype, device="cpu").to(like.device)
    return u.sub_(0.5).mul_(torch.pi).tan_()


def _new_generators(mu: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One generator row per (example, unstable neuron) pair (μ > 0) and the example it belongs to."""
    flat = mu.flatten(1)
    owner, neuron = (flat > 0).nonzero(as_tuple=True)
    rows = flat.new_zeros(len(owner), flat.shape[1])
    rows[torch.arange(len(owner), device=mu.device), neuron] = flat[owner, neuron]
    return rows.view(len(owner), *mu.shape[1:]), owner


def logit_bounds(layers: Sequence[nn.Module], lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    z, _ = propagate(layers, lo, hi)
    spread = z.spread()
    return z.centre - spread, z.centre + spread


def margin_lower_bounds(layers: Sequence[nn.Module], lo: torch.Tensor, hi: torch.Tensor,
                        spec: torch.Tensor) -> torch.Tensor:
    """Lower bounds (B, S) of spec·z: the spec is affine, so it maps the final zonotope exactly."""
    z, _ = propagate(layers, lo, hi)
    c = (spec @ z.centre.unsqueeze(-1)).squeeze(-1)
    g = (spec[z.owner] @ z.rows.unsqueeze(-1)).squeeze(-1).abs()  # (R, S): each row through its example's spec
    return c - g.new_zeros(c.shape).index_add_(0, z.owner, g)
