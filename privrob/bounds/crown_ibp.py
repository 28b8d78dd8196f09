"""CROWN-IBP (Zhang, Chen, Xiao, Gowal, Stanforth, Li, Boning, Hsieh, ICLR 2020, arXiv:1906.06316): intermediate
bounds by interval propagation, the final specification by one backward CROWN pass with the adaptive lower slope
(1 where u ≥ −l, else 0) for unstable ReLUs."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from privrob.bounds import interval
from privrob.bounds.backward import backward_bounds
from privrob.bounds.network import relu_relaxation


def lower_bounds(layers: Sequence[nn.Module], shapes: Sequence[torch.Size], lo: torch.Tensor, hi: torch.Tensor,
                 spec: torch.Tensor) -> torch.Tensor:
    """Lower bounds (B, S) of spec·z for spec (B, S, K)."""
    _, _, pre = interval.propagate(layers[:-1], lo, hi, keep_bounds=True)
    relu_idx = [i for i, l in enumerate(layers) if isinstance(l, nn.ReLU)]
    relax = {i: relu_relaxation(l, u, adaptive_lower=True) for i, (l, u) in zip(relu_idx, pre)}
    return backward_bounds(layers, shapes, spec, relax, lo, hi)[0]
