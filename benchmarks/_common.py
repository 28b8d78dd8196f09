"""Helpers shared by the benchmark scripts: timing and the Yale data (real when ../shared/data is there)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import torch

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def best_time(fn: Callable[[], object], repeat: int = 3) -> float:
    """Smallest wall time of ``repeat`` calls after one warm-up call (seconds)."""
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def fwd_bwd_per_point(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, repeat: int = 3) -> float:
    """Seconds of one forward+backward (parameter gradients, as in training) per example of the batch."""
    def step():
        model.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()

    return best_time(step, repeat) / len(x)


def yale_datamodule(**kwargs):
    """The real Yale Face data module, set up (raises with the path when the data are absent)."""
    from privrob.data import YaleDataModule

    dm = YaleDataModule(root=str(SHARED_DATA), **kwargs)
    dm.setup()
    return dm
