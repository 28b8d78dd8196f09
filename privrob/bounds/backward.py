"""One backward pass of linear bounds from a specification to the input (the dual network of Wong & Kolter 2018,
arXiv:1711.00851; CROWN's backward pass, Zhang et al. 2018, arXiv:1811.00866).

Coefficients Λ on a layer's output become Λ·W on its input; at a ReLU with relaxation a_L·z ≤ ReLU(z) ≤ a_U·z + b_U
the lower bound takes a_L where Λ ≥ 0 and a_U (plus Λ·b_U) where Λ < 0. At the input box [lo, hi] the bound is
Λ·centre ∓ |Λ|·radius. When a_L = a_U (Wong & Kolter's relaxation) the coefficients do not depend on the sign, so
one pass gives the lower and the upper bound.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn

from privrob.bounds.network import bias_term, layer_range, transpose


def backward_bounds(layers: Sequence[nn.Module], shapes: Sequence[torch.Size], spec: torch.Tensor,
                    relaxations: dict[int, tuple[torch.Tensor, ...]], lo: torch.Tensor, hi: torch.Tensor,
                    upper: bool = False) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Bounds of spec·f(x) for x in the box [lo, hi], f = ``layers``.

    Args:
        layers: the network up to the layer whose output ``spec`` weighs.
        shapes: per-example input shape of each layer (``shapes_of``).
        spec: (B, S, *output shape) coefficients.
        relaxations: layer index of each ReLU → (a_L, a_U, b_U), each (B, *shape).
        lo, hi: the input box, (B, *input shape).
        upper: also return the upper bound (needs a_L is a_U for every ReLU).

    Returns:
        lower (B, S), and upper (B, S) or None.
    """
    batch, n_spec = spec.shape[:2]
    lam = spec.reshape(batch * n_spec, *spec.shape[2:])
    low = lam.new_zeros(batch * n_spec)
    high = lam.new_zeros(batch * n_spec) if upper else None

    def per_example(t: torch.Tensor) -> torch.Tensor:  # (B, *s) → (B·S, *s)
        return t.unsqueeze(1).expand(batch, n_spec, *t.shape[1:]).reshape(batch * n_spec, *t.shape[1:])

    for i in range(len(layers) - 1, -1, -1):
        with layer_range(i, layers[i], ", back"):
            layer = layers[i]
            if isinstance(layer, nn.ReLU):
                a_l, a_u, b_u = (per_example(t) for t in relaxations[i])
                pos, neg = lam.clamp(min=0), lam.clamp(max=0)
                low = low + (neg * b_u).flatten(1).sum(1)
                if upper:
                    assert relaxations[i][0] is relaxations[i][1], "one pass gives both bounds only for a_L = a_U"
                    high = high + (pos * b_u).flatten(1).sum(1)
                    lam = lam * a_u
                else:
                    lam = pos * a_l + neg * a_u
            else:
                b = bias_term(layer, lam)
                low = low + b
                if upper:
                    high = high + b
                lam = transpose(layer, lam, shapes[i])
    centre, radius = per_example((hi + lo) / 2).flatten(1), per_example((hi - lo) / 2).flatten(1)
    lam = lam.flatten(1)
    dot, spread = (lam * centre).sum(1), (lam.abs() * radius).sum(1)
    lower = (low + dot - spread).view(batch, n_spec)
    return lower, None if high is None else (high + dot + spread).view(batch, n_spec)
