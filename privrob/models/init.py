"""The initialisations of the study's networks, one per code base it ran (original-study.md §1.7, §8).

Each scheme takes a network's layers in order and initialises its ``Conv2d`` and ``Linear`` layers in place:

* ``tf``: the TF models (natural, PGD, WRM; Madry's): convolutions N(0, 2/(k·k·c_out)) (He, fan-out), linear
  layers uniform unit scaling (variance 1/fan_in), biases zero (``model.py`` of those folders).
* ``trades``: the TRADES VGG (``difference-based adversarial training/*/model.py``): convolutions Kaiming normal
  fan-in (variance 2/fan_in), zero biases; the hidden linear layer PyTorch's default; the last layer zero.
* ``dual``: Wong and Kolter's models (``duality-based verification/*/model.py``): convolutions N(0, 2/(k·k·c_out)),
  zero biases; linear layers PyTorch's default.
* ``ibp``: the IBP DNN (sonnet, ``interval_bound_propagation/src/model.py``): orthogonal weights, zero biases.
* ``diffai``: DiffAI's ``components.py``: weights and biases uniform in ±1/sqrt(fan_in), which is exactly
  PyTorch's default distribution (Kaiming uniform with a = sqrt(5), the same bias bound), so it is ``pytorch``.
* ``pytorch``: PyTorch's default (``reset_parameters``).
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
from torch import nn
from torch.nn.utils import parametrize

Layers = Sequence[nn.Module]


def _weighted(layers: Layers) -> list[nn.Module]:
    return [layer for layer in layers if isinstance(layer, (nn.Conv2d, nn.Linear))]


def _fill(layer: nn.Module, name: str, fill: Callable[[torch.Tensor], object]) -> None:
    """``fill`` (an in-place ``nn.init`` function) on ``layer.<name>``; through the parametrization when the tensor has
    one (DiffAI's weight norm): a new value is drawn, then assigned, which sets the parametrization's originals."""
    if parametrize.is_parametrized(layer, name):
        value = torch.empty_like(getattr(layer, name))
        fill(value)
        with torch.no_grad():
            setattr(layer, name, value)
    else:
        fill(getattr(layer, name))


def _zero_bias(layer: nn.Module) -> None:
    if layer.bias is not None:
        _fill(layer, "bias", nn.init.zeros_)


def _pytorch_default(layer: nn.Module) -> None:
    """``Conv2d``/``Linear.reset_parameters`` (the same draws), also through a parametrization."""
    _fill(layer, "weight", lambda w: nn.init.kaiming_uniform_(w, a=math.sqrt(5)))
    if layer.bias is not None:
        bound = 1 / math.sqrt(layer.weight[0].numel())
        _fill(layer, "bias", lambda b: nn.init.uniform_(b, -bound, bound))


def tf_init_(layers: Layers) -> None:
    """He fan-out normal convolutions, unit-scaling uniform linear layers, zero biases (TF ``model.py``)."""
    for layer in _weighted(layers):
        if isinstance(layer, nn.Conv2d):
            _fill(layer, "weight", lambda w: nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu"))
        else:
            _fill(layer, "weight", lambda w: nn.init.kaiming_uniform_(w, nonlinearity="linear"))
        _zero_bias(layer)


def trades_init_(layers: Layers) -> None:
    """Kaiming fan-in normal convolutions with zero biases, the last layer zero (TRADES' ``VGG``)."""
    weighted = _weighted(layers)
    for layer in weighted:
        if isinstance(layer, nn.Conv2d):
            _fill(layer, "weight", nn.init.kaiming_normal_)
            _zero_bias(layer)
        else:
            _pytorch_default(layer)
    _fill(weighted[-1], "weight", nn.init.zeros_)
    _zero_bias(weighted[-1])


def dual_init_(layers: Layers) -> None:
    """N(0, 2/(k·k·c_out)) convolutions with zero biases, PyTorch's default linear layers (Wong and Kolter)."""
    for layer in _weighted(layers):
        if isinstance(layer, nn.Conv2d):
            _fill(layer, "weight", lambda w: nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu"))
            _zero_bias(layer)
        else:
            _pytorch_default(layer)


def ibp_init_(layers: Layers) -> None:
    """Orthogonal weights, zero biases (sonnet's defaults in the IBP code)."""
    for layer in _weighted(layers):
        _fill(layer, "weight", nn.init.orthogonal_)
        _zero_bias(layer)


def pytorch_init_(layers: Layers) -> None:
    """PyTorch's default initialisation."""
    for layer in _weighted(layers):
        _pytorch_default(layer)


INITIALISATIONS: dict[str, Callable[[Layers], None]] = {
    "tf": tf_init_, "trades": trades_init_, "dual": dual_init_, "ibp": ibp_init_, "diffai": pytorch_init_,
    "pytorch": pytorch_init_,
}
