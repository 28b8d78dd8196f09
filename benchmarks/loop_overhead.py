"""Framework overhead: one natural-training epoch of the Yale network at batch 20 under privrob's ``fit``
(validation, checkpoints, logger, progress bar and callbacks off) divided by the same epoch in a bare PyTorch loop
over the same data loader, model and optimizer (target ≤ 1.05). Each is timed after a warm-up epoch; the best of
``--repeat`` epochs is kept. The last line is ``ratio <number>``.

Usage: python benchmarks/loop_overhead.py [--repeat N] [--device cuda]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import add_device_option, synchronize, yale_datamodule  # noqa: E402
from privrob.methods import NaturalTraining  # noqa: E402
from privrob.models import YaleCNN  # noqa: E402


class EpochTimer(pl.Callback):
    def __init__(self):
        self.times = []

    def on_train_epoch_start(self, *args):
        synchronize()
        self.start = time.perf_counter()

    def on_train_epoch_end(self, *args):
        synchronize()
        self.times.append(time.perf_counter() - self.start)


def bare_epochs(dm, n: int, device: torch.device) -> list[float]:
    torch.manual_seed(0)
    model = YaleCNN().to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    loader = dm.train_dataloader()
    times = []
    for _ in range(n):
        synchronize()
        start = time.perf_counter()
        model.train()
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            opt.step()
        synchronize()
        times.append(time.perf_counter() - start)
    return times


def privrob_epochs(dm, n: int, device: torch.device) -> list[float]:
    torch.manual_seed(0)
    timer = EpochTimer()
    trainer = pl.Trainer(accelerator=device.type, devices=1, max_epochs=n, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                         num_sanity_val_steps=0, callbacks=[timer])
    trainer.fit(NaturalTraining(YaleCNN(), lr=1e-4), dm)
    return timer.times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2, help="timed epochs after one warm-up epoch")
    add_device_option(parser)
    args = parser.parse_args()
    dm = yale_datamodule(batch_size=20)
    bare = min(bare_epochs(dm, args.repeat + 1, args.device)[1:])
    ours = min(privrob_epochs(dm, args.repeat + 1, args.device)[1:])
    print(f"bare PyTorch epoch   {bare:.2f} s")
    print(f"privrob fit epoch    {ours:.2f} s")
    print(f"ratio {ours / bare:.3f}")


if __name__ == "__main__":
    main()
