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


def propagate(layers: Sequence[nn.Module], lo: torch.Tensor, hi: torch.Tensor, keep_bounds: bool = False
              ) -> tuple[torch.Tensor, torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
    """Centre and radius after ``layers`` and, with ``keep_bounds``, the pre-activation (l, u) of every ReLU."""
    mu, r = (hi + lo) / 2, (hi - lo) / 2  # new tensors: the in-place steps below never touch the caller's
    pre: list[tuple[torch.Tensor, torch.Tensor]] = []
    for layer in layers:
        if isinstance(layer, nn.ReLU):
            if keep_bounds:
                pre.append((mu - r, mu + r))
            # [l, u] = ReLU([μ − r, μ + r]), in place on this layer's own centre and radius where autograd allows
            u = torch.add(mu, r).relu_()
            l = mu.sub_(r).relu_()
            if torch.is_grad_enabled() and (u.requires_grad or l.requires_grad):
                mu, r = (u + l).mul_(0.5), (u - l).mul_(0.5)
            else:
                r = torch.sub(u, l, out=r).mul_(0.5)
                mu = u.add_(l).mul_(0.5)
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
