"""Interval bound propagation (Gowal et al. 2018, "On the effectiveness of interval bound propagation for training
verifiably robust models", arXiv:1810.12715), in centre/radius form: μ' = Wμ + b, r' = |W|r (two passes per
affine layer), and ReLU on the endpoints. The margins fold the last linear layer into the specification
("elision"), as Gowal et al. and the study do. This is also DiffAI's box domain (Mirman et al. 2018) without
elision."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from privrob.bounds.network import affine, linear_part


def propagate(layers: Sequence[nn.Module], lo: torch.Tensor, hi: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
    """Centre and radius after ``layers``, and the pre-activation (l, u) of every ReLU on the way."""
    mu, r = (hi + lo) / 2, (hi - lo) / 2
    pre: list[tuple[torch.Tensor, torch.Tensor]] = []
    for layer in layers:
        if isinstance(layer, nn.ReLU):
            l, u = mu - r, mu + r
            pre.append((l, u))
            l, u = l.clamp(min=0), u.clamp(min=0)
            mu, r = (u + l) / 2, (u - l) / 2
        else:
            mu, r = affine(layer, mu), linear_part(layer, r, absolute=True)
    return mu, r, pre


def logit_bounds(layers: Sequence[nn.Module], lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(lower, upper) of the logits."""
    mu, r, _ = propagate(layers, lo, hi)
    return mu - r, mu + r


def margin_lower_bounds(layers: Sequence[nn.Module], lo: torch.Tensor, hi: torch.Tensor, spec: torch.Tensor,
                        elide: bool = True) -> torch.Tensor:
    """Lower bounds (B, S) of spec·z for spec (B, S, K); with ``elide``, spec·W_last is propagated as one layer."""
    if not elide:
        l, u = logit_bounds(layers, lo, hi)
        # spec rows e_y − e_j: lower bound Σ_k max(c_k, 0)·l_k + min(c_k, 0)·u_k
        return (spec.clamp(min=0) @ l.unsqueeze(-1) + spec.clamp(max=0) @ u.unsqueeze(-1)).squeeze(-1)
    last = layers[-1]
    mu, r, _ = propagate(layers[:-1], lo, hi)
    w = spec @ last.weight  # (B, S, hidden)
    b = spec @ last.bias if last.bias is not None else 0.0
    return (w @ mu.unsqueeze(-1)).squeeze(-1) + b - (w.abs() @ r.unsqueeze(-1)).squeeze(-1)
