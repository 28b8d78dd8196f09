"""Cost of the membership-inference callback on the Yale network and the real Yale inputs.

Prints (1) ``efficiency``: the time of one I_A evaluation divided by points × (steps + 1) × one training-style
forward+backward per point (target ≤ 0.8, issue 18); (2) ``ratio``: the callback's time at its default schedule (I_B
every epoch, I_A every 10 epochs, up to 1,000 points per set), amortised per epoch, as a fraction of one PGD-training
epoch of the study's Yale setting (10 steps, batch 20, 1,900 members) (target ≤ 0.15); each the median of
``--repeat`` runs (default 3). Network, training and the training-style forward+backward in ``--memory-format`` (a
method's ``memory_format``), the callback's passes in ``--scoring-memory-format`` (a method's
``scoring_memory_format``; ``auto``, the default, is channels_last on the CPU). With ``--sweep``, first an attack step's
cost per point on each network in each memory format and evaluation batch, then the I_A cost per point on 256 Yale
points in each scoring memory format and evaluation batch size, and the best of them (issue 18).

Usage: python benchmarks/callback_overhead.py [--train-batches N] [--memory-format channels_last]
           [--scoring-memory-format contiguous] [--eval-batch-size B] [--repeat R] [--sweep] [--device cuda]
(the PGD epoch is extrapolated from N batches)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import (add_device_option, best_time, fwd_bwd_per_point, synchronize,  # noqa: E402
                                yale_datamodule)
from privrob.methods import PGDTraining  # noqa: E402
from privrob.memory_format import MEMORY_FORMATS, SCORING_MEMORY_FORMATS, parameters_in  # noqa: E402
from privrob.models import CifarResNet, FashionMNISTCNN, YaleCNN  # noqa: E402
from privrob.privacy import Adversarial, Benign  # noqa: E402
from privrob.privacy.audit import evaluate_membership  # noqa: E402


#: each network of the study (CIFAR10's at width 1 here), its input, classes and its data module's evaluation batch
NETWORKS = {"Yale CNN, width 2": (lambda: YaleCNN(), (1, 192, 168), 38, 32),
            "Fashion-MNIST CNN, width 2": (lambda: FashionMNISTCNN(width=2), (1, 28, 28), 10, 256),
            "Fashion-MNIST CNN, width 16": (lambda: FashionMNISTCNN(width=16), (1, 28, 28), 10, 256),
            "CIFAR10 ResNet, width 1": (lambda: CifarResNet(width=1), (3, 32, 32), 10, 500)}


def network_sweep(device: torch.device) -> None:
    """An input-gradient pass (what an attack step costs) per point for each network, scoring memory format and
    evaluation batch: the measurements behind ``scoring_memory_format: auto`` and each data module's batch."""
    for name, (build, shape, classes, default) in NETWORKS.items():
        torch.manual_seed(0)
        model = build().eval().to(device).requires_grad_(False)
        cost = {}
        for fmt, memory_format in MEMORY_FORMATS.items():
            for batch in sorted({32, 128, default}):
                x = torch.rand(batch, *shape, device=device)
                y = torch.randint(0, classes, (batch,), device=device)

                def attack_step():
                    x_ = x.detach().requires_grad_(True)
                    torch.autograd.grad(torch.nn.functional.cross_entropy(model(x_), y), x_)

                with parameters_in(model, memory_format):
                    cost[fmt, batch] = best_time(attack_step, 2) / batch
        (best_fmt, best), best_cost = min(cost.items(), key=lambda item: item[1])
        print(f"{name}: ms per point " + ", ".join(f"{f} {b} {c * 1e3:.2f}" for (f, b), c in cost.items())
              + f"; channels_last / contiguous at batch {default} "
              f"{cost['channels_last', default] / cost['contiguous', default]:.2f}; best {best_fmt} at batch {best}, "
              f"channels_last at batch {default} {cost['channels_last', default] / best_cost:.2f}x its cost",
              flush=True)


def sweep(dm, device: torch.device, eps: float, steps: int) -> None:
    """I_A's seconds per point on 128 members + 128 non-members of a contiguous network, per scoring memory format and
    evaluation batch size (the data module's own evaluation batch size restored after)."""
    rows, default_batch = [], dm.eval_batch_size
    model = YaleCNN().eval().to(device)
    for fmt in MEMORY_FORMATS:
        model.scoring_memory_format = fmt
        for batch in (16, 32, 64, 128):
            dm.eval_batch_size = batch
            evaluate_membership(model, dm, [Adversarial(eps=eps, steps=1)], num_points=batch)  # warm-up
            synchronize()
            t = time.perf_counter()
            r = evaluate_membership(model, dm, [Adversarial(eps=eps, steps=steps)], num_points=128)
            synchronize()
            rows.append((fmt, batch, (time.perf_counter() - t) / (r["I_A"]["members"] + r["I_A"]["nonmembers"])))
            print(f"sweep {fmt:<14} eval batch {batch:<4} I_A {rows[-1][2] * 1e3:7.2f} ms per point", flush=True)
    dm.eval_batch_size = default_batch
    fmt, batch, _ = min(rows, key=lambda row: row[2])
    print(f"best configuration: scoring_memory_format {fmt}, eval_batch_size {batch}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-batches", type=int, default=20, help="PGD-training batches timed (of 95)")
    parser.add_argument("--eval-batch-size", type=int, default=None, help="default: the Yale data module's")
    parser.add_argument("--memory-format", choices=list(MEMORY_FORMATS), default="contiguous",
                        help="the network's and training's (a method's memory_format)")
    parser.add_argument("--scoring-memory-format", choices=SCORING_MEMORY_FORMATS, default="auto",
                        help="the callback's (a method's scoring_memory_format)")
    parser.add_argument("--repeat", type=int, default=3, help="runs; the medians are printed last (issue 18: 3)")
    parser.add_argument("--sweep", action="store_true", help="first, I_A's cost per memory format and batch size")
    add_device_option(parser)
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error(f"--repeat must be at least 1, got {args.repeat}")
    device = args.device
    torch.manual_seed(0)
    dm = yale_datamodule(**({"eval_batch_size": args.eval_batch_size} if args.eval_batch_size else {}))
    eps, steps = 0.0314, 20
    if args.sweep:
        network_sweep(device)
        sweep(dm, device, eps, steps)
    runs = [measure(dm, device, args, eps, steps) for _ in range(args.repeat)]
    for i, run in enumerate(runs):
        print(f"run {i + 1}: efficiency {run['efficiency']:.3f}, ratio {run['ratio']:.3f}")
    med = {k: statistics.median(run[k] for run in runs) for k in runs[0]}
    print(f"memory format            {args.memory_format} (training), scoring {args.scoring_memory_format}")
    print(f"fwd+bwd per point        {med['per_point'] * 1e3:.3f} ms (batch {dm.eval_batch_size}, parameter gradients)")
    print(f"I_A evaluation           {med['t_ia']:.1f} s ({med['points']:.0f} points, {steps} steps)")
    print(f"I_B evaluation           {med['t_ib']:.1f} s")
    print(f"PGD-training epoch       {med['t_epoch']:.1f} s "
          f"(from {args.train_batches} of {med['batches']:.0f} batches)")
    print(f"callback per epoch       {med['amortised']:.1f} s (I_B + I_A / 10)")
    print(f"medians of {args.repeat} run(s):")
    print(f"efficiency {med['efficiency']:.3f}")
    print(f"ratio {med['ratio']:.3f}")


def measure(dm, device: torch.device, args, eps: float, steps: int) -> dict[str, float]:
    """One run of (1) and (2): the times, efficiency and ratio."""
    model = YaleCNN().eval().to(device, memory_format=MEMORY_FORMATS[args.memory_format])
    model.scoring_memory_format = args.scoring_memory_format
    xs, ys = zip(*[dm.members()[i] for i in range(dm.eval_batch_size)])
    x, y = torch.stack(xs).to(device), torch.stack(ys).to(device)
    before = fwd_bwd_per_point(model, x, y)

    # (1) one I_A evaluation at the default size: 1,000 members, all 514 non-members
    synchronize()
    t = time.perf_counter()
    r = evaluate_membership(model, dm, [Adversarial(eps=eps, steps=steps)], num_points=1000)
    synchronize()
    t_ia = time.perf_counter() - t
    points = r["I_A"]["members"] + r["I_A"]["nonmembers"]
    per_point = (before + fwd_bwd_per_point(model, x, y)) / 2  # the training pass timed on both sides of it

    t = time.perf_counter()
    evaluate_membership(model, dm, [Benign()], num_points=1000)
    synchronize()
    t_ib = time.perf_counter() - t

    # (2) a PGD-training epoch of the study's Yale setting, extrapolated from --train-batches batches
    method = PGDTraining(YaleCNN(), eps=eps, steps=10, rel_step_size=0.2, lr=1e-4, loss_reduction="sum",
                         memory_format=args.memory_format).to(device)
    opt = torch.optim.Adam(method.parameters(), lr=1e-4)
    loader = dm.train_dataloader()
    batches = iter(loader)
    method.train()
    synchronize()
    t = time.perf_counter()
    for _ in range(args.train_batches):
        x, y = (v.to(device, non_blocking=True) for v in next(batches))
        opt.zero_grad(set_to_none=True)
        method.training_loss(x, y)[0].backward()
        opt.step()
    synchronize()
    t_epoch = (time.perf_counter() - t) / args.train_batches * len(loader)
    amortised = t_ib + t_ia / 10
    return {"per_point": per_point, "t_ia": t_ia, "points": points, "t_ib": t_ib, "t_epoch": t_epoch,
            "batches": len(loader), "amortised": amortised,
            "efficiency": t_ia / (points * (steps + 1) * per_point), "ratio": amortised / t_epoch}


if __name__ == "__main__":
    main()
