"""The memory formats a network runs in (PyTorch's memory-format tutorial): ``contiguous`` (NCHW) or ``channels_last``
(NHWC), the same model with its sums in another order, and the format a scoring pass runs in."""

from __future__ import annotations

import contextlib
from typing import Iterator, Literal, Optional, get_args

import torch
from torch import nn

MemoryFormat = Literal["contiguous", "channels_last"]
#: channels_last runs the oneDNN convolutions of the CPU and the tensor cores of a GPU without layout conversions
MEMORY_FORMATS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}
ScoringMemoryFormat = Literal["auto", "contiguous", "channels_last"]
SCORING_MEMORY_FORMATS = get_args(ScoringMemoryFormat)


def scoring_memory_format(model: nn.Module) -> Optional[torch.memory_format]:
    """The format ``model`` is scored in: its ``scoring_memory_format`` attribute (a method's setting; ``auto`` where
    it has none), None for the format it already has.

    ``auto`` is channels_last on the CPU and the model's own format elsewhere. Measured on this project's CPU
    (``benchmarks/callback_overhead.py --sweep``), an input-gradient pass, which is what an attack step costs, is
    2.3-2.9x faster in channels_last on the Yale network, where in NCHW oneDNN's backward-data kernel for its one-
    and eight-channel first convolutions takes 5x its NHWC time, and 1.2-1.3x faster on the Fashion-MNIST and CIFAR10
    networks (0.93x in one run under heavy load).
    """
    choice = getattr(model, "scoring_memory_format", "auto")
    if choice == "auto":
        return torch.channels_last if all(p.device.type == "cpu" for p in model.parameters()) else None
    return MEMORY_FORMATS[choice]


@contextlib.contextmanager
def parameters_in(model: nn.Module, memory_format: Optional[torch.memory_format]) -> Iterator[None]:
    """Every convolution kernel (4-D parameter) of ``model`` in ``memory_format`` for the duration (None: as they
    are), and the very tensors it had put back after: values, strides and optimizer state untouched, so training
    after a scoring pass is bit-identical to training without it."""
    kept = []
    try:
        # normal tensors even under a caller's inference_mode: an attack inside takes gradients through them
        with torch.inference_mode(False):
            for p in model.parameters() if memory_format is not None else ():
                if p.dim() == 4:
                    kept.append((p, p.data))
                    p.data = p.data.to(memory_format=memory_format)
        yield
    finally:
        for p, data in kept:
            p.data = data
