"""Score a fixed set of examples with a strategy, sharded over devices without duplicates.

DistributedSampler pads the last shard with repeated examples, which biases any per-example statistic; here
rank r of w takes ``indices[r::w]`` instead (uneven shards are fine) and :class:`ExampleScores` gathers.

Every score is taken in evaluation mode, as the study's released outputs were (PyTorch ``.eval()``, TF
``mode='eval'``): :func:`evaluation_mode` is the one place that sets it.
"""

from __future__ import annotations

import contextlib
import random
import sys
from typing import Callable, Iterator, Optional

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm import tqdm

from privrob.memory_format import parameters_in, scoring_memory_format
from privrob.modes import modes_kept
from privrob.privacy.metrics import ExampleScores


#: seconds an evaluation runs before its progress bar appears
PROGRESS_DELAY = 3.0


@contextlib.contextmanager
def evaluation_mode(model: nn.Module) -> Iterator[None]:
    """Every module of ``model`` in eval mode for the duration, each module's own mode restored after, and the global
    random streams (python, numpy, torch, and the CUDA generator of the model's device, by ``torch.random.fork_rng``)
    left exactly as they were found.

    Eval mode makes a score a function of its example alone: batch norm uses its running statistics (and does not
    overwrite them with evaluation data), and a noise layer averages its seeded draws. Restoring the random streams
    makes an evaluation invisible to training: even an unshuffled ``DataLoader`` draws its base seed from the
    global torch generator, which would shift every later random start, augmentation and noise draw.

    The parameters are frozen for the duration (``requires_grad`` off, each one's flag restored after): an attack's
    backward then records and computes input gradients only, no weight-gradient graph; and the convolution kernels
    are in the model's scoring memory format (:func:`~privrob.memory_format.scoring_memory_format`: channels_last on
    the CPU by default, where an attack step is up to 2.4x faster), the very tensors they were put back after
    (issue 18).
    """
    devices = [p.device for p in model.parameters() if p.device.type == "cuda"][:1]  # only the model's own GPU
    numpy_state, python_state = np.random.get_state(), random.getstate()
    trainable = [p for p in model.parameters() if p.requires_grad]
    try:
        with modes_kept(model), torch.random.fork_rng(devices=devices), \
                parameters_in(model, scoring_memory_format(model)):
            model.eval()
            for p in trainable:
                p.requires_grad_(False)
            yield
    finally:
        for p in trainable:
            p.requires_grad_(True)
        np.random.set_state(numpy_state)
        random.setstate(python_state)


def seeded_subset(n: int, size: Optional[int], seed: int) -> torch.Tensor:
    """``size`` indices of range(n) drawn with ``seed`` (all of them, sorted, when ``size`` is None or ≥ n)."""
    if size is None or size >= n:
        return torch.arange(n)
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:size].sort().values


def shard(indices: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """This rank's disjoint part of ``indices``."""
    return indices[rank::world_size]


def score_examples(model: nn.Module, dataset: Dataset, indices: torch.Tensor,
                   strategy: Callable[[nn.Module, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
                   batch_size: int, device: torch.device, collector: Optional[ExampleScores] = None,
                   progress: Optional[str] = None, before_batch: Optional[Callable[[], None]] = None,
                   before_batch_calls: int = 0) -> ExampleScores:
    """Run ``strategy`` over ``dataset[indices]`` in batches, in :func:`evaluation_mode`, and add the rows to
    ``collector`` (a new one if None).

    ``progress``: a label; with it, a progress bar (points done, rate) on stderr once scoring has taken
    :data:`PROGRESS_DELAY` seconds. ``before_batch``: called before every batch, e.g. to raise when a stop was
    requested, so that an evaluation stops within one batch; and again after the last batch until it has been
    called ``before_batch_calls`` times, so that ranks with uneven shards call it (and any collective in it) equally
    often.
    """
    collector = collector if collector is not None else ExampleScores()
    collector = collector.to(device)
    loader = DataLoader(Subset(dataset, indices.tolist()), batch_size=batch_size, shuffle=False)
    start = 0
    # tqdm, as Lightning's own progress bar; in a log file (not a terminal) a line every 30 s, not every update
    bar = tqdm(total=len(indices), desc=progress, unit="pt", delay=PROGRESS_DELAY, disable=progress is None,
               mininterval=0.1 if sys.stderr.isatty() else 30, leave=False, dynamic_ncols=True)
    with evaluation_mode(model), bar:
        for x, y in loader:
            if before_batch is not None:
                before_batch()
            ids = indices[start:start + len(y)]
            start += len(y)
            scores, correct = strategy(model, x.to(device), y.to(device))
            collector.update(ids.to(device), scores.detach(), correct.detach())
            bar.update(len(y))
    if before_batch is not None:
        for _ in range(before_batch_calls - len(loader)):
            before_batch()
    return collector
