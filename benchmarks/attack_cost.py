"""Cost of privrob's PGD loop against the model's own forward+backward.

For the Yale and the Fashion-MNIST networks of the study, prints the time of one PGD-k attack divided by
k × the time of one training-style forward+backward pass of the same model and batch (target ≤ 1.10). The loop
adds projection, a sign and a clone per step; the ratio says how much that costs. The last line is
``ratio <number>``, the larger of the two.

Usage: python benchmarks/attack_cost.py [--steps K] [--fmnist-width W] [--device cuda]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import add_device_option, best_time, fwd_bwd_per_point  # noqa: E402
from privrob.attacks import pgd  # noqa: E402
from privrob.models import FashionMNISTCNN, YaleCNN  # noqa: E402


def attack_ratio(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, steps: int) -> float:
    per_pass = fwd_bwd_per_point(model, x, y, repeat=5) * len(x)
    attack = best_time(lambda: pgd(model, x, y, eps=eps, steps=steps, rel_step_size=2.5 / steps,
                                   random_start=True), repeat=3)
    return attack / (steps * per_pass)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--fmnist-width", type=int, default=16, help="the study's width is 16")
    add_device_option(parser)
    args = parser.parse_args()
    torch.manual_seed(0)
    cases = {
        "yale (width 2, batch 20, 192x168)": (YaleCNN().eval(), torch.rand(20, 1, 192, 168), 38, 0.0314),
        f"fmnist (width {args.fmnist_width}, batch 100)": (FashionMNISTCNN(width=args.fmnist_width).eval(),
                                                          torch.rand(100, 1, 28, 28), 10, 0.1),
    }
    ratios = []
    for name, (model, x, classes, eps) in cases.items():
        y = torch.randint(0, classes, (len(x),))
        model, x, y = model.to(args.device), x.to(args.device), y.to(args.device)
        r = attack_ratio(model, x, y, eps, args.steps)
        ratios.append(r)
        print(f"{name}: PGD-{args.steps} / ({args.steps} x fwd+bwd) = {r:.3f}")
    print(f"ratio {max(ratios):.3f}")


if __name__ == "__main__":
    main()
