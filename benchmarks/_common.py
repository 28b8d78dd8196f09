"""Helpers shared by the benchmark scripts: timing, the device option and the real Yale data (``$PRIVROB_DATA``,
default ``../shared/data`` beside the checkout)."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Callable

import torch

SHARED_DATA = Path(os.environ.get("PRIVROB_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")


def add_device_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", type=torch.device, default=torch.device("cpu"), help="cpu (default) or cuda")


def synchronize() -> None:
    """Wait for queued CUDA work, so that wall times cover it (nothing to wait for on the CPU)."""
    if torch.cuda.is_initialized():
        torch.cuda.synchronize()


def best_time(fn: Callable[[], object], repeat: int = 3) -> float:
    """Smallest wall time of ``repeat`` calls after one warm-up call (seconds)."""
    fn()
    times = []
    for _ in range(repeat):
        synchronize()
        t = time.perf_counter()
        fn()
        synchronize()
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
