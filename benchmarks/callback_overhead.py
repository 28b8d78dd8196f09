"""Cost of the membership-inference callback on the Yale network and the real Yale inputs.

Prints (1) ``efficiency``: the time of one I_A evaluation divided by points × (steps + 1) × one training-style
forward+backward per point (target ≤ 0.8, issue 18); (2) ``ratio``: the callback's time at its default schedule (I_B
every epoch, I_A every 10 epochs, up to 1,000 points per set), amortised per epoch, as a fraction of one PGD-training
epoch of the study's Yale setting (10 steps, batch 20, 1,900 members) (target ≤ 0.15); each the median of
``--repeat`` runs (default 3). Network, training and the training-style forward+backward in ``--memory-format`` (a
method's ``memory_format``), the callback's passes in ``--scoring-memory-format`` (a method's
``scoring_memory_format``; ``auto``, the default, is channels_last on the CPU). With ``--sweep``, first the I_A cost
per point on 256 points in each scoring memory format and evaluation batch size, and the best of them (issue 18).

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
from benchmarks._common import add_device_option, fwd_bwd_per_point, synchronize, yale_datamodule  # noqa: E402
from privrob.methods import PGDTraining  # noqa: E402
from privrob.memory_format import MEMORY_FORMATS, SCORING_MEMORY_FORMATS  # noqa: E402
from privrob.models import YaleCNN  # noqa: E402
from privrob.privacy import Adversarial, Benign  # noqa: E402
from privrob.privacy.audit import evaluate_membership  # noqa: E402


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
        sweep(dm, device, eps, steps)
    runs = [measure(dm, device, args, eps, steps) for _ in range(args.repeat)]
    for i, run in enumerate(runs):
        print(f"run {i + 1}: efficiency {run['efficiency']:.3f}, ratio {run['ratio']:.3f}")
    med = {k: statistics.median(run[k] for run in runs) for k in runs[0]}
    print(f"memory format            {args.memory_format} (training), scoring {args.scoring_memory_format}")
    print(f"fwd+bwd per point        {med['per_point'] * 1e3:.3f} ms (batch {dm.eval_batch_size}, parameter gradients)")
    print(f"I_A evaluation           {med['t_ia']:.1f} s ({med['points']:.0f} points, {steps} steps)")
    print(f"I_B evaluation           {med['t_ib']:.1f} s")
    print(f"PGD-training epoch       {med['t_epoch']:.1f} s (from {args.train_batches} of {med['batches']:.0f} batches)")
    print(f"callback per epoch       {med['amortised']:.1f} s (I_B + I_A / 10)")
    print(f"medians of {args.repeat} run(s):")
    print(f"efficiency {med['efficiency']:.3f}")
    print(f"ratio {med['ratio']:.3f}")


def measure(dm, device: torch.device, args, eps: float, steps: int) -> dict[str, float]:
    """One run of (1) and (2): the times, efficiency and ratio."""
    model = YaleCNN().eval().to(device, memory_format=MEMORY_FORMATS[args.memory_format])
    model.scoring_memory_format = args.scoring_memory_format
    xs, ys = zip(*[dm.members()[i] for i in range(dm.eval_batch_size)])
    per_point = fwd_bwd_per_point(model, torch.stack(xs).to(device), torch.stack(ys).to(device))

    # (1) one I_A evaluation at the default size: 1,000 members, all 514 non-members
    synchronize()
    t = time.perf_counter()
    r = evaluate_membership(model, dm, [Adversarial(eps=eps, steps=steps)], num_points=1000)
    synchronize()
    t_ia = time.perf_counter() - t
    points = r["I_A"]["members"] + r["I_A"]["nonmembers"]

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
