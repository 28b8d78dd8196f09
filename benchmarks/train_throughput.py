"""Throughput of PGD-10 training on the CIFAR10 network (Madry's wide ResNet, issue 18): one training step under
privrob's ``fit`` (``PGDTraining``: 10 steps of 2/255 from a random start in the 8/255 ball, attack in eval mode, SGD
with momentum) against a bare PyTorch loop of the same model, attack and optimizer, in each configuration of memory
format (``contiguous``, ``channels_last``), precision (``32``, ``bf16-mixed``) and compilation (eager, ``default``,
``reduce-overhead``: CUDA graphs on a GPU). Inputs are random tensors of CIFAR10's shape (the step's cost does not
depend on their values). Each time is the median of ``--steps`` steps after ``--warmup`` steps (compilation
included in the warm-up).

Prints one line per configuration (privrob and bare seconds per step, their ratio, and privrob's speed-up over the
first configuration), then ``ratio`` (privrob / bare in the first configuration) and ``best_speedup`` (the first
configuration's privrob step over the fastest privrob configuration's) last.

Usage: python benchmarks/train_throughput.py [--device cpu|cuda] [--network cifar|yale] [--width 1] [--batch 32]
           [--formats contiguous,channels_last] [--precisions 32] [--compile none]
On a GPU: --device cuda --width 10 --batch 128 --precisions 32,bf16-mixed --compile none,default,reduce-overhead
The study's Yale network (``--network yale --width 2 --batch 20``) is what the CPU reproduction trains.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import add_device_option, synchronize  # noqa: E402
from privrob.methods import PGDTraining  # noqa: E402
from privrob.memory_format import MEMORY_FORMATS  # noqa: E402
from privrob.methods.base import COMPILE_MODES  # noqa: E402
from privrob.models import CifarResNet, YaleCNN  # noqa: E402

EPS, STEP, STEPS, LR = 8 / 255, 2 / 255, 10, 0.1
#: the network and its input shape and classes: the CIFAR10 ResNet at ``--width``, or the study's Yale network
NETWORKS = {"cifar": (lambda width: CifarResNet(width=width), (3, 32, 32), 10),
            "yale": (lambda width: YaleCNN(width=width), (1, 192, 168), 38)}


class StepTimer(pl.Callback):
    """Wall time of every training step: the attack, forward, backward, optimizer (the batch is on the device)."""

    def __init__(self):
        self.times = []

    def on_train_batch_start(self, *args):
        synchronize()
        self.start = time.perf_counter()

    def on_train_batch_end(self, *args):
        synchronize()
        self.times.append(time.perf_counter() - self.start)


def data(args) -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    n = args.batch * (args.warmup + args.steps)
    _, shape, classes = NETWORKS[args.network]
    return TensorDataset(torch.rand(n, *shape, generator=g), torch.randint(0, classes, (n,), generator=g))


def privrob_step(args, fmt: str, precision: str, compile_mode: str) -> float:
    torch.manual_seed(0)
    model = PGDTraining(NETWORKS[args.network][0](args.width), eps=EPS, steps=STEPS, step_size=STEP, random_start=True,
                        optimizer="sgd", lr=LR, momentum=0.9, memory_format=fmt,
                        compile=None if compile_mode == "none" else compile_mode)
    timer = StepTimer()
    trainer = pl.Trainer(accelerator=args.device.type, devices=1, max_epochs=1, precision=precision, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         limit_val_batches=0, num_sanity_val_steps=0, callbacks=[timer])
    trainer.fit(model, DataLoader(data(args), batch_size=args.batch))
    return statistics.median(timer.times[args.warmup:])


def bare_step(args, fmt: str, precision: str, compile_mode: str) -> float:
    """The same step written directly in PyTorch: no Lightning, no logging, no metric."""
    torch.manual_seed(0)
    device = args.device
    model = NETWORKS[args.network][0](args.width).to(device, memory_format=MEMORY_FORMATS[fmt])
    if compile_mode != "none":
        model.compile(mode=compile_mode)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16-mixed")
    times = []
    for x, y in DataLoader(data(args), batch_size=args.batch):
        x, y = x.to(device), y.to(device)  # before the timer, as Lightning moves a batch before its step's hooks
        synchronize()
        start = time.perf_counter()
        model.eval()
        x_adv = (x + torch.empty_like(x).uniform_(-EPS, EPS)).clamp(0, 1)
        for _ in range(STEPS):
            x_adv.requires_grad_(True)
            with autocast:
                loss = F.cross_entropy(model(x_adv), y, reduction="sum")
            grad, = torch.autograd.grad(loss, [x_adv])
            with torch.no_grad():
                x_adv = torch.min(torch.max(x_adv + STEP * grad.sign(), x - EPS), x + EPS).clamp(0, 1)
        model.train()
        opt.zero_grad(set_to_none=True)
        with autocast:
            loss = F.cross_entropy(model(x_adv.detach()), y)
        loss.backward()
        opt.step()
        synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times[args.warmup:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--network", choices=list(NETWORKS), default="cifar")
    parser.add_argument("--width", type=int, default=1, help="the network's width (the study's: 10 CIFAR10, 2 Yale)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per configuration")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (compilation)")
    parser.add_argument("--formats", default="contiguous,channels_last")
    parser.add_argument("--precisions", default="32")
    parser.add_argument("--compile", default="none", help="none, default, reduce-overhead (comma-separated)")
    add_device_option(parser)
    args = parser.parse_args()
    configs = list(itertools.product(args.formats.split(","), args.precisions.split(","), args.compile.split(",")))
    for fmt, precision, compile_mode in configs:
        if fmt not in MEMORY_FORMATS or precision not in ("32", "bf16-mixed") or compile_mode not in (
                "none", *COMPILE_MODES):
            parser.error(f"unknown configuration {fmt}, {precision}, {compile_mode}")
    print(f"PGD-{STEPS} training step, {args.network} network width {args.width}, batch {args.batch}, {args.device}, "
          f"{torch.get_num_threads()} threads; median of {args.steps} steps after {args.warmup}")
    first = ratio = best = None
    for fmt, precision, compile_mode in configs:
        ours, bare = privrob_step(args, fmt, precision, compile_mode), bare_step(args, fmt, precision, compile_mode)
        first = first or ours
        ratio = ratio or ours / bare
        best = min(best or ours, ours)
        print(f"{fmt:<14} {precision:<10} compile {compile_mode:<16} privrob {ours:8.4f} s  bare {bare:8.4f} s  "
              f"ratio {ours / bare:.3f}  speed-up {first / ours:.2f}x", flush=True)
    print(f"ratio {ratio:.3f}")
    print(f"best_speedup {first / best:.3f}")


if __name__ == "__main__":
    main()
