"""The Wong–Kolter dual bound (Wong & Kolter, ICML 2018, "Provable defenses against adversarial examples via the
convex outer adversarial polytope", arXiv:1711.00851) and its projected estimate (Wong, Schmidt, Metzen, Kolter,
NeurIPS 2018, "Scaling provable adversarial defenses", arXiv:1805.12514).

Intermediate bounds: ``exact`` computes them in closed form with every earlier layer's dual (the forward form,
as ``convex_adversarial`` does, which is the zonotope of the same relaxation); ``projected`` estimates their l1
terms with random Cauchy projections (median estimator). The final margins always come from one exact backward
pass of the dual network over the specification, given those intermediate bounds.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn

from privrob.bounds import zonotope
from privrob.bounds.backward import backward_bounds
from privrob.bounds.network import relu_relaxation


def relaxations(layers: Sequence[nn.Module], shapes: Sequence[torch.Size], lo: torch.Tensor, hi: torch.Tensor,
                projections: Optional[int], memory_budget: float, generator: Optional[torch.Generator] = None
                ) -> dict[int, tuple[torch.Tensor, ...]]:
    """Each ReLU's Wong–Kolter relaxation (a, a, b) from exact or projected intermediate bounds."""
    if projections is None:
        zonotope.check_memory(shapes, layers, lo.shape[0], memory_budget, "the exact dual bound")
    _, pre = zonotope.propagate(layers, lo, hi, projections, generator, bounds_only=True)
    relu_idx = [i for i, l in enumerate(layers) if isinstance(l, nn.ReLU)]
    out = {}
    for i, (l, u) in zip(relu_idx, pre):
        _, a, b = relu_relaxation(l, u, adaptive_lower=False)
        out[i] = (a, a, b)
    return out


#: on the CPU, the projected estimate runs on groups of examples whose k projected rows of the widest layer take at
#: most this many bytes (one example on the Yale dual network): every example's estimate is independent of the
#: others', and one call on a whole batch cost more per example the larger the batch, because glibc serves every
#: tensor above 32 MiB as fresh pages and a larger call holds more of them (measured on the Yale dual network, 50
#: projections, forward and backward: 6.5, 6.7 and 11.0 s and 2.3, 3.5 and 5.1 GiB of fresh pages per example at
#: batches 1, 2 and 4; in groups 5.4, 5.3 and 5.6 s and 2.1, 1.7 and 1.6 GiB)
CPU_GROUP_BYTES = 64 * 2**20


def group_size(shapes: Sequence[torch.Size], lo: torch.Tensor, projections: Optional[int]) -> int:
    """Examples per call: :data:`CPU_GROUP_BYTES` worth for the projected estimate on the CPU, else the batch."""
    if projections is None or lo.device.type != "cpu":
        return len(lo)
    return max(1, CPU_GROUP_BYTES // (projections * max(s.numel() for s in shapes) * lo.element_size()))


def bounds(layers: Sequence[nn.Module], shapes: Sequence[torch.Size], lo: torch.Tensor, hi: torch.Tensor,
           spec: torch.Tensor, projections: Optional[int] = None, memory_budget: float = 4.0,
           upper: bool = False, generator: Optional[torch.Generator] = None):
    """Lower (and upper) bounds of spec·z, spec (B, S, K), through the dual network. The projected estimate runs on
    the CPU in groups of examples (:func:`group_size`), each drawing its projections in turn from ``generator``:
    the same distribution as one call on the batch, other draws (on a GPU the batch runs at once)."""
    group = group_size(shapes, lo, projections)
    if group < len(lo):
        parts = [bounds(layers, shapes, lo[i:i + group], hi[i:i + group], spec[i:i + group], projections,
                        memory_budget, upper, generator) for i in range(0, len(lo), group)]
        return torch.cat([p[0] for p in parts]), (torch.cat([p[1] for p in parts]) if upper else None)
    relax = relaxations(layers[:-1], shapes, lo, hi, projections, memory_budget, generator)
    return backward_bounds(layers, shapes, spec, relax, lo, hi, upper=upper)
