"""The initialisations of the study's networks, one per code base it ran (original-study.md §1.7, §8).

Each scheme takes a network's layers in order and initialises its ``Conv2d`` and ``Linear`` layers in place:

* ``tf``: the TF models (natural, PGD, WRM; Madry's): convolutions N(0, 2/(k·k·c_out)) (He, fan-out), linear
  layers uniform unit scaling (variance 1/fan_in), biases zero (``model.py`` of those folders).
* ``trades``: the TRADES VGG (``difference-based adversarial training/*/model.py``): convolutions Kaiming normal
  fan-in (variance 2/fan_in), zero biases; the hidden linear layer PyTorch's default; the last layer zero.
* ``dual``: Wong and Kolter's models (``duality-based verification/*/model.py``): convolutions N(0, 2/(k·k·c_out)),
  zero biases; linear layers PyTorch's default.
* ``ibp``: the IBP DNN (sonnet, ``interval_bound_propagation/src/model.py``): orthogonal weights, zero biases.
* ``diffai``: DiffAI's ``components.py``: weights and biases uniform in ±1/sqrt(fan_in).
* ``pytorch``: PyTorch's default (``reset_parameters``).
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

from torch import nn

Layers = Sequence[nn.Module]


def _weighted(layers: Layers) -> list[nn.Module]:
    return [layer for layer in layers if isinstance(layer, (nn.Conv2d, nn.Linear))]


def _zero_bias(layer: nn.Module) -> None:
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


def tf_init_(layers: Layers) -> None:
    """He fan-out normal convolutions, unit-scaling uniform linear layers, zero biases (TF ``model.py``)."""
    for layer in _weighted(layers):
        if isinstance(layer, nn.Conv2d):
            nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
        else:
            nn.init.kaiming_uniform_(layer.weight, nonlinearity="linear")
        _zero_bias(layer)


def trades_init_(layers: Layers) -> None:
    """Kaiming fan-in normal convolutions with zero biases, the last layer zero (TRADES' ``VGG``)."""
    weighted = _weighted(layers)
    for layer in weighted:
        if isinstance(layer, nn.Conv2d):
            nn.init.kaiming_normal_(layer.weight)
            _zero_bias(layer)
        else:
            layer.reset_parameters()
    nn.init.zeros_(weighted[-1].weight)
    _zero_bias(weighted[-1])


def dual_init_(layers: Layers) -> None:
    """N(0, 2/(k·k·c_out)) convolutions with zero biases, PyTorch's default linear layers (Wong and Kolter)."""
    for layer in _weighted(layers):
        if isinstance(layer, nn.Conv2d):
            nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
            _zero_bias(layer)
        else:
            layer.reset_parameters()


def ibp_init_(layers: Layers) -> None:
    """Orthogonal weights, zero biases (sonnet's defaults in the IBP code)."""
    for layer in _weighted(layers):
        nn.init.orthogonal_(layer.weight)
        _zero_bias(layer)


def diffai_init_(layers: Layers) -> None:
    """Weights and biases uniform in ±1/sqrt(fan_in) (DiffAI's ``InferModule.reset_parameters``)."""
    for layer in _weighted(layers):
        bound = 1.0 / math.sqrt(layer.weight[0].numel())
        nn.init.uniform_(layer.weight, -bound, bound)
        if layer.bias is not None:
            nn.init.uniform_(layer.bias, -bound, bound)


def pytorch_init_(layers: Layers) -> None:
    """PyTorch's default initialisation."""
    for layer in _weighted(layers):
        layer.reset_parameters()


INITIALISATIONS: dict[str, Callable[[Layers], None]] = {
    "tf": tf_init_, "trades": trades_init_, "dual": dual_init_, "ibp": ibp_init_, "diffai": diffai_init_,
    "pytorch": pytorch_init_,
}
