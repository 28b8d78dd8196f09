"""Plain convolutional networks of the study (Song et al. 2019, Table 13; original-study.md §1.7 A, B, D–I).

Each is an ``nn.Sequential`` of 3x3 convolutions (stride-2 ones optionally 4x4, as the Wong–Kolter models use),
``ReLU``, ``Flatten`` and two ``Linear`` layers (and ``ZeroPad2d`` where TF's ``SAME`` padding is asymmetric), so
that interval and dual bounds can walk it. One layout, built as each of the study's code bases built it:

=========================  ============  =========  ==========
models (study folder)      padding       conv bias  ``init``
=========================  ============  =========  ==========
natural, PGD, WRM (TF)     ``tf_same``   no         ``tf``
IBP (TF + sonnet)          ``tf_same``   yes        ``ibp``
TRADES (PyTorch)           ``one``       yes        ``trades``
dual (PyTorch, 4x4 s2)     ``one``       yes        ``dual``
DiffAI (PyTorch)           ``one``       yes        ``diffai``
=========================  ============  =========  ==========

The defaults are the TF models', the study's natural baseline.
"""

from __future__ import annotations

from typing import Literal, Sequence

import torch
from torch import nn

from privrob.models.init import INITIALISATIONS

_KERNELS = {3: 3, 4: 4}
Padding = Literal["tf_same", "one"]


def tf_same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) zero padding of TF's ``padding='SAME'`` along one axis: ceil(size / stride) outputs, the odd
    pixel after (3x3 stride 2 on an even size: (0, 1); stride 1: (1, 1))."""
    total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def conv_stack(
    in_channels: int,
    input_size: tuple[int, int],
    channels: Sequence[tuple[int, int]],
    hidden: int,
    num_classes: int,
    stride2_kernel: Literal[3, 4] = 3,
    pad_to: int | None = None,
    padding: Padding = "tf_same",
    conv_bias: bool = False,
    init: str = "tf",
) -> list[nn.Module]:
    """Layers of conv+ReLU blocks, then Flatten, FC ``hidden`` + ReLU, FC ``num_classes``.

    Args:
        in_channels: input channels.
        input_size: (H, W) of the input, used to size the padding and the first linear layer.
        channels: (out_channels, stride) per convolution.
        hidden: width of the hidden fully connected layer.
        num_classes: outputs.
        stride2_kernel: kernel size of the stride-2 convolutions (3, or 4 as in Wong & Kolter's models).
        pad_to: if set, a ``ZeroPad2d`` first pads the width (and height) symmetrically to ``pad_to``.
        padding: ``tf_same`` (TF's ``SAME``: ceil(size / stride) outputs, the odd pixel padded after, as a
            ``ZeroPad2d`` before the convolution where the two sides differ) or ``one`` (PyTorch's ``padding=1``).
        conv_bias: whether convolutions have biases (the TF models of natural, PGD and WRM have none).
        init: the initialisation scheme, a key of :data:`privrob.models.init.INITIALISATIONS`.
    """
    if stride2_kernel not in _KERNELS:
        raise ValueError(f"`stride2_kernel` can be 3 or 4, got {stride2_kernel}")
    if padding not in ("tf_same", "one"):
        raise ValueError(f"`padding` can be tf_same, one, got {padding!r}")
    if init not in INITIALISATIONS:
        raise ValueError(f"`init` can be {', '.join(INITIALISATIONS)}, got {init!r}")
    layers: list[nn.Module] = []
    h, w = input_size
    if pad_to is not None:
        if pad_to < max(h, w):
            raise ValueError(f"`pad_to`={pad_to} is smaller than the input size {input_size}")
        left, top = (pad_to - w) // 2, (pad_to - h) // 2
        layers.append(nn.ZeroPad2d((left, pad_to - w - left, top, pad_to - h - top)))
        h = w = pad_to
    c_in = in_channels
    for c_out, stride in channels:
        k = stride2_kernel if stride == 2 else 3
        if padding == "one":
            pads = (1, 1), (1, 1)
        else:
            pads = tf_same_padding(h, k, stride), tf_same_padding(w, k, stride)
        (top, bottom), (left, right) = pads
        if (top, left) != (bottom, right):
            layers.append(nn.ZeroPad2d((left, right, top, bottom)))
            top = left = 0
        layers += [nn.Conv2d(c_in, c_out, k, stride=stride, padding=(top, left), bias=conv_bias), nn.ReLU()]
        h, w = (h + sum(pads[0]) - k) // stride + 1, (w + sum(pads[1]) - k) // stride + 1
        c_in = c_out
    layers += [nn.Flatten(), nn.Linear(c_in * h * w, hidden), nn.ReLU(), nn.Linear(hidden, num_classes)]
    INITIALISATIONS[init](layers)
    return layers


class ConvStack(nn.Sequential):
    """The layers of :func:`conv_stack`, remembering their initialisation scheme so that
    :meth:`reset_parameters` draws a fresh network as its config builds it (LiRA's reference models)."""

    def __init__(self, layers: list[nn.Module], init: str) -> None:
        super().__init__(*layers)
        self.init = init

    def reset_parameters(self) -> None:
        INITIALISATIONS[self.init](list(self))


def _check_width(width: int) -> None:
    if not isinstance(width, int) or width < 1:
        raise ValueError(f"`width` must be a positive integer, got {width!r}")


class YaleCNN(ConvStack):
    """Yale Face network (§1.7 A/A′/F/H; D with ``stride2_kernel=4``): convs 4w, 4w(s2), 8w, 8w(s2), 16w, 16w(s2),
    32w, 32w(s2), then FC 200 and FC 38. ``width=2`` (the study's) gives channels 8, 8, 16, 16, 32, 32, 64, 64.

    Input: (N, 1, 192, 168) in [0, 1], or (N, 1, 192, 192) with ``input_size=(192, 192)``. ``padding``,
    ``conv_bias``, ``init``: as :func:`conv_stack` (default: the TF model of natural, PGD and WRM training).
    """

    def __init__(
        self,
        width: int = 2,
        num_classes: int = 38,
        input_size: tuple[int, int] = (192, 168),
        stride2_kernel: Literal[3, 4] = 3,
        padding: Padding = "tf_same",
        conv_bias: bool = False,
        init: str = "tf",
    ) -> None:
        _check_width(width)
        spec = [(4 * width, 1), (4 * width, 2), (8 * width, 1), (8 * width, 2),
                (16 * width, 1), (16 * width, 2), (32 * width, 1), (32 * width, 2)]
        super().__init__(conv_stack(1, tuple(input_size), spec, 200, num_classes, stride2_kernel, padding=padding,
                                    conv_bias=conv_bias, init=init), init)


class FashionMNISTCNN(ConvStack):
    """Fashion-MNIST network (§1.7 B/B′/E/G/I): convs 16w, 16w, 16w(s2), 32w, 32w, 32w(s2), FC 200, FC 10.
    ``width=16`` (the study's) gives 256, 256, 256, 512, 512, 512. Input: (N, 1, 28, 28) in [0, 1]."""

    def __init__(self, width: int = 16, num_classes: int = 10, stride2_kernel: Literal[3, 4] = 3,
                 padding: Padding = "tf_same", conv_bias: bool = False, init: str = "tf") -> None:
        _check_width(width)
        spec = [(16 * width, 1), (16 * width, 1), (16 * width, 2), (32 * width, 1), (32 * width, 1), (32 * width, 2)]
        super().__init__(conv_stack(1, (28, 28), spec, 200, num_classes, stride2_kernel, padding=padding,
                                    conv_bias=conv_bias, init=init), init)


class DigitsCNN(ConvStack):
    """Small CNN for scikit-learn's 8x8 digits (the quickstart): convs 8w, 16w(s2), FC 64, FC 10.
    Input: (N, 1, 8, 8) in [0, 1]."""

    def __init__(self, width: int = 2, num_classes: int = 10, stride2_kernel: Literal[3, 4] = 3,
                 padding: Padding = "tf_same", conv_bias: bool = False, init: str = "tf") -> None:
        _check_width(width)
        layers = conv_stack(1, (8, 8), [(8 * width, 1), (16 * width, 2)], 64, num_classes, stride2_kernel,
                            padding=padding, conv_bias=conv_bias, init=init)
        super().__init__(layers, init)


def output_shape(model: nn.Module, input_shape: Sequence[int]) -> torch.Size:
    """Shape of ``model``'s output for one input of ``input_shape`` (C, H, W)."""
    with torch.no_grad():
        return model(torch.zeros(1, *input_shape)).shape
