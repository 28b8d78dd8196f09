"""Cost of privrob's bounds.

Prints (1) ``ibp_ratio``: IBP margin bounds time / plain forward time on the study's Fashion-MNIST network at width 1
and on the Yale network (the larger; target ≤ 2.5); (2) ``dual_ratio``: privrob's exact Wong–Kolter bound time /
``convex_adversarial``'s (``RobustBounds``) on networks small enough for both, after checking the bounds are equal
(target ≤ 1.0, i.e. faster than the reference). Also the mean margin bound of every method on one batch, since no
ordering of tightness holds in general.

Usage: python benchmarks/bounds_cost.py [--device cuda]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import add_device_option, best_time  # noqa: E402
from privrob.bounds import METHODS, margin_lower_bounds  # noqa: E402
from privrob.models import DigitsCNN, FashionMNISTCNN, YaleCNN  # noqa: E402


def ibp_ratio(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        fwd = best_time(lambda: model(x), 20)
        ibp = best_time(lambda: margin_lower_bounds(model, x, y, 0.01, "ibp"), 20)
    return ibp / fwd


def dual_ratio(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float) -> float:
    from convex_adversarial import RobustBounds

    with torch.no_grad():
        ours = margin_lower_bounds(model, x, y, eps, "dual", memory_budget=16)
        ref = -RobustBounds(model, eps, bounded_input=True)(x, y)
        assert torch.allclose(ours, ref, atol=1e-4), f"bounds differ by {(ours - ref).abs().max():.2e}"
        t_ours = best_time(lambda: margin_lower_bounds(model, x, y, eps, "dual", memory_budget=16), 3)
        t_ref = best_time(lambda: RobustBounds(model, eps, bounded_input=True)(x, y), 3)
    return t_ours / t_ref


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_device_option(parser)
    device = parser.parse_args().device
    torch.backends.cudnn.allow_tf32 = False  # full float32 on a GPU too, so the two dual bounds compare to 1e-4
    torch.manual_seed(0)
    ibp = {
        "fmnist width 1, batch 100": (FashionMNISTCNN(width=1).eval(), torch.rand(100, 1, 28, 28), 10),
        "yale width 2, batch 20": (YaleCNN().eval(), torch.rand(20, 1, 192, 168), 38),
    }
    ibp_ratios = []
    for name, (model, x, k) in ibp.items():
        r = ibp_ratio(model.to(device), x.to(device), torch.randint(0, k, (len(x),), device=device))
        ibp_ratios.append(r)
        print(f"IBP / forward, {name}: {r:.2f}")

    # the study's dual models (4x4 stride-2 convolutions, padding 1): convex_adversarial's transposed convolution
    # cannot restore an even size after a 3x3 stride-2 one
    as_dual = dict(stride2_kernel=4, padding="one", conv_bias=True, init="dual")
    dual = {
        "digits CNN width 2, batch 32": (DigitsCNN(width=2, **as_dual).eval(), torch.rand(32, 1, 8, 8), 10, 0.05),
        "fmnist width 1, batch 4": (FashionMNISTCNN(width=1, **as_dual).eval(), torch.rand(4, 1, 28, 28), 10, 0.02),
    }
    dual_ratios = []
    for name, (model, x, k, eps) in dual.items():
        r = dual_ratio(model.to(device), x.to(device), torch.randint(0, k, (len(x),), device=device), eps)
        dual_ratios.append(r)
        print(f"dual / convex_adversarial, {name} (bounds equal to 1e-4): {r:.2f}")

    model, x, k, eps = dual["digits CNN width 2, batch 32"]
    x, y = x.to(device), torch.randint(0, k, (len(x),), device=device)
    with torch.no_grad():
        gaps = {m: float(margin_lower_bounds(model, x, y, eps, m).sum(1).mean() / (k - 1)) for m in METHODS}
    print("mean margin lower bound (digits CNN, eps 0.05): " + ", ".join(f"{m} {v:.4f}" for m, v in gaps.items()))
    print(f"ibp_ratio {max(ibp_ratios):.3f}")
    print(f"dual_ratio {max(dual_ratios):.3f}")


if __name__ == "__main__":
    main()
