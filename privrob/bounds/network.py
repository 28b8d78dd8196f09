"""The network as bound propagation sees it: a list of layers, their shapes, and each affine layer's linear part,
absolute linear part and transpose. Supported: ``Conv2d``, ``Linear``, ``ReLU``, ``Flatten``, ``ZeroPad2d``."""

from __future__ import annotations

import contextlib
from typing import ContextManager, Sequence

import torch
import torch.nn.functional as F
from torch import nn

SUPPORTED = (nn.Conv2d, nn.Linear, nn.ReLU, nn.Flatten, nn.ZeroPad2d)
#: the profiler's name of each layer's work (``benchmarks/bounds_cost.py`` prints the cost per layer from it)
LAYER_LABEL = "bounds layer"


def layer_range(i: int, layer: nn.Module, part: str = "") -> ContextManager:
    """A profiler range named for layer ``i`` (and ``part``) while a profiler records, else nothing: an unrecorded
    ``record_function`` still costs about 8 us, per layer and call, on a training step of CROWN-IBP or DiffAI."""
    if not torch.autograd._profiler_enabled():
        return contextlib.nullcontext()
    return torch.profiler.record_function(f"{LAYER_LABEL} {i}: {type(layer).__name__}{part}")


def layers_of(model: nn.Module) -> list[nn.Module]:
    """The model's layers in order (nested ``nn.Sequential`` flattened).

    Raises:
        ValueError: a layer the bounds do not support, named with its position.
    """
    if not isinstance(model, nn.Sequential):
        for attr in ("backbone",):  # a RobustTraining module: bound its network
            if isinstance(getattr(model, attr, None), nn.Sequential):
                return layers_of(getattr(model, attr))
        raise ValueError(f"bounds need an nn.Sequential of {', '.join(t.__name__ for t in SUPPORTED)}; "
                         f"got {type(model).__name__}")
    out: list[nn.Module] = []
    for i, layer in enumerate(model):
        if isinstance(layer, nn.Sequential):
            out += layers_of(layer)
            continue
        bad = not isinstance(layer, SUPPORTED) or (isinstance(layer, nn.Conv2d) and (
            layer.groups != 1 or layer.dilation != (1, 1) or layer.padding_mode != "zeros"
            or isinstance(layer.padding, str)))
        if bad:
            raise ValueError(f"bounds support {', '.join(t.__name__ for t in SUPPORTED)} (plain convolutions); "
                             f"layer {i} is {layer!r}")
        out.append(layer)
    if not out or not isinstance(out[-1], nn.Linear):
        raise ValueError("bounds need a network that ends with an nn.Linear layer (the logits)")
    return out


def shapes_of(layers: Sequence[nn.Module], x: torch.Tensor) -> list[torch.Size]:
    """Per-example input shape of every layer, and the output shape last."""
    shapes = [x.shape[1:]]
    with torch.no_grad():
        t = x[:1]
        for layer in layers:
            t = layer(t)
            shapes.append(t.shape[1:])
    return shapes


def linear_part(layer: nn.Module, t: torch.Tensor, absolute: bool = False) -> torch.Tensor:
    """The layer without its bias (``absolute``: with |W|), applied to a batch ``t``; ReLU is not affine."""
    if isinstance(layer, nn.Linear):
        return F.linear(t, layer.weight.abs() if absolute else layer.weight)
    if isinstance(layer, nn.Conv2d):
        w = layer.weight.abs() if absolute else layer.weight
        return F.conv2d(t, w, None, layer.stride, layer.padding)
    return layer(t)  # Flatten, ZeroPad2d: linear, no parameters


def affine(layer: nn.Module, t: torch.Tensor) -> torch.Tensor:
    """The layer with its bias."""
    return layer(t)


def transpose(layer: nn.Module, lam: torch.Tensor, in_shape: torch.Size) -> torch.Tensor:
    """Λ·W for coefficients ``lam`` (N, *out_shape) on the layer's output: coefficients (N, *in_shape) on its input."""
    if isinstance(layer, nn.Linear):
        return lam @ layer.weight
    if isinstance(layer, nn.Conv2d):
        out_h, out_w = lam.shape[-2:]
        extra = [in_shape[1 + d] - ((o - 1) * layer.stride[d] - 2 * layer.padding[d] + layer.kernel_size[d])
                 for d, o in enumerate((out_h, out_w))]
        return F.conv_transpose2d(lam, layer.weight, None, layer.stride, layer.padding, output_padding=tuple(extra))
    if isinstance(layer, nn.Flatten):
        return lam.reshape(lam.shape[0], *in_shape)
    if isinstance(layer, nn.ZeroPad2d):
        left, right, top, bottom = layer.padding
        h, w = lam.shape[-2:]
        return lam[..., top:h - bottom, left:w - right]
    raise AssertionError(f"not affine: {layer!r}")


def bias_term(layer: nn.Module, lam: torch.Tensor) -> torch.Tensor:
    """Λ·b per row of ``lam`` (N, *out_shape): the bias's contribution, shape (N,)."""
    if isinstance(layer, nn.Linear) and layer.bias is not None:
        return lam @ layer.bias
    if isinstance(layer, nn.Conv2d) and layer.bias is not None:
        return lam.sum(dim=(-2, -1)) @ layer.bias
    return lam.new_zeros(lam.shape[0])


def input_box(x: torch.Tensor, eps: float, clip: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The l_inf ball around ``x`` as a box (lower, upper), intersected with [0, 1] when ``clip``."""
    if eps < 0:
        raise ValueError(f"`eps` must be non-negative, got {eps}")
    lo, hi = x - eps, x + eps
    return (lo.clamp(min=0.0), hi.clamp(max=1.0)) if clip else (lo, hi)


def margin_spec(y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """C with C[b, j] = e_{y_b} − e_j, shape (B, K, K): the margins z_y − z_j (row y is zero)."""
    eye = torch.eye(num_classes, device=y.device)
    return eye[y].unsqueeze(1) - eye.unsqueeze(0)


def relu_relaxation(l: torch.Tensor, u: torch.Tensor, adaptive_lower: bool) -> tuple[torch.Tensor, ...]:
    """Linear bounds a_L·z ≤ ReLU(z) ≤ a_U·z + b_U for z ∈ [l, u] (Wong & Kolter 2018; Zhang et al. 2018).

    Stable neurons are exact; an unstable one (l < 0 < u) gets the chord a_U = u / (u − l), b_U = −a_U·l, and the
    lower slope a_L = a_U (Wong & Kolter's dual) or, with ``adaptive_lower``, CROWN's 1 where u ≥ −l, else 0.
    """
    active, unstable = l >= 0, (l < 0) & (u > 0)
    chord = u / (u - l).clamp(min=1e-12)
    a_u = torch.where(unstable, chord, active.to(l.dtype))
    b_u = torch.where(unstable, -chord * l, torch.zeros_like(l))
    if adaptive_lower:
        a_l = torch.where(unstable, (u >= -l).to(l.dtype), active.to(l.dtype))
    else:
        a_l = a_u
    return a_l, a_u, b_u
