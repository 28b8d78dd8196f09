"""Cost of privrob's bounds.

Prints (1) ``ibp_ratio``: IBP margin bounds time / plain forward time on the study's Fashion-MNIST network at width 1
and on the Yale network (the larger; target ≤ 2.5); (2) ``dual_ratio``: privrob's exact Wong–Kolter bound time /
``convex_adversarial``'s (``RobustBounds``) on networks small enough for both, after checking the bounds are equal
(target ≤ 1.0, i.e. faster than the reference). Also the mean margin bound of every method on one batch, since no
ordering of tightness holds in general. (3) ``projected_dual_ratio``: one training step (forward + backward) of
``dual_projected`` (50 projections) on the study's Yale dual network at batch 8 / the same step with
``convex_adversarial.robust_loss(proj=50, norm_type='l1_median')`` (target ≤ 0.5), with its ratio to a plain training
step, the cost model that explains it and the step's time per layer of the bound (profiler ranges), and the
estimate's mean and spread over 20 seeds, examples in groups (privrob's CPU path) against the whole batch at once.

With ``--compile MODE``, (1) also prints the IBP training bound compiled as ``compile: MODE`` runs it against eager.

Usage: python benchmarks/bounds_cost.py [--device cuda] [--skip-projected] [--compile reduce-overhead]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import add_device_option, best_time  # noqa: E402
from privrob.bounds import METHODS, dual, layers_of, margin_lower_bounds, worst_case_logits  # noqa: E402
from privrob.bounds.network import LAYER_LABEL, shapes_of  # noqa: E402
from privrob.methods.base import COMPILE_MODES, compiled_bound  # noqa: E402
from privrob.models import DigitsCNN, FashionMNISTCNN, YaleCNN  # noqa: E402


def ibp_ratio(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        fwd = best_time(lambda: model(x), 20)
        ibp = best_time(lambda: margin_lower_bounds(model, x, y, 0.01, "ibp"), 20)
    return ibp / fwd


def compiled_ibp_ratio(model: nn.Module, x: torch.Tensor, y: torch.Tensor, mode: str) -> float:
    """A training step's IBP bound (forward + backward) compiled in ``mode``, the very function ``compile`` runs
    (:func:`privrob.methods.base.compiled_bound`), / eager."""
    compiled = compiled_bound(mode)

    def step(bound):
        return lambda: nn.functional.cross_entropy(bound(model, x, y, 0.01, "ibp"), y).backward()

    step(compiled)()  # the compilation itself is not timed
    return best_time(step(compiled), 20) / best_time(step(worst_case_logits), 20)


def dual_ratio(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float) -> float:
    from convex_adversarial import RobustBounds

    with torch.no_grad():
        ours = margin_lower_bounds(model, x, y, eps, "dual", memory_budget=16)
        ref = -RobustBounds(model, eps, bounded_input=True)(x, y)
        assert torch.allclose(ours, ref, atol=1e-4), f"bounds differ by {(ours - ref).abs().max():.2e}"
        t_ours = best_time(lambda: margin_lower_bounds(model, x, y, eps, "dual", memory_budget=16), 3)
        t_ref = best_time(lambda: RobustBounds(model, eps, bounded_input=True)(x, y), 3)
    return t_ours / t_ref


def projected_dual_step(device: torch.device, batch: int = 8, projections: int = 50, eps: float = 0.06275) -> float:
    """The study's Yale dual training step: privrob's against convex_adversarial's, and the cost model."""
    from convex_adversarial import robust_loss

    torch.manual_seed(0)
    model = YaleCNN(stride2_kernel=4, input_size=(192, 192), padding="one", conv_bias=True, init="dual").to(device)
    x, y = torch.rand(batch, 1, 192, 192, device=device), torch.randint(0, 38, (batch,), device=device)
    generator = torch.Generator().manual_seed(0)

    def ours():
        logits = worst_case_logits(model, x, y, eps, "dual_projected", projections=projections, clip=False,
                                   generator=generator)
        nn.functional.cross_entropy(logits, y).backward()

    def peer():
        robust_loss(model, eps, x, y, proj=projections, norm_type="l1_median", bounded_input=False)[0].backward()

    plain = best_time(lambda: nn.functional.cross_entropy(model(x), y).backward(), 5)
    t_ours, t_peer = best_time(ours, 1), best_time(peer, 1)
    spec = 38  # margin_spec's rows: one per class, the true class's zero row included
    print(f"projected dual step, Yale dual network, batch {batch}, {projections} projections: privrob {t_ours:.1f} s, "
          f"convex_adversarial {t_peer:.1f} s, plain step {plain * 1e3:.0f} ms; privrob / plain {t_ours / plain:.0f}x")
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        ours()
    events = prof.key_averages()
    kinds = {"convolutions": 0.0, "medians": 0.0, "elementwise and copies": 0.0, "python between them": 0.0}
    for event in events:
        key = event.key.lower()
        kind = ("python between them" if key.startswith(LAYER_LABEL) else  # a layer range's own time
                "convolutions" if "conv" in key or key in ("aten::mm", "aten::addmm") else
                "medians" if "median" in key else "elementwise and copies")
        kinds[kind] += event.self_cpu_time_total
    total = sum(kinds.values())
    print(f"  cost model per example: {projections} projected rows through every layer up to the last ReLU and {spec} "
          f"margin rows back through the dual network, {projections + spec} network passes (each again in the "
          f"backward): about {projections + spec}x a plain step in convolutions if they ran as fast per row as the "
          f"plain step's; then a median of {projections} values at every ReLU neuron, and the relaxation's "
          f"elementwise work on tensors {projections}x a layer's size, all memory-bound. Measured (profiler, self "
          "time): " + ", ".join(f"{k} {v / total:.0%}" for k, v in kinds.items()))
    if device.type == "cpu":  # the profiler records CPU activity only: on a GPU it would time the launches
        per_layer(model, x, events, total, batch)
    return t_ours / t_peer


def per_layer(model: nn.Module, x: torch.Tensor, events, total_us: float, batch: int) -> None:
    """The profiled step's time in each layer of the bound (its ``LAYER_LABEL`` ranges): the projected rows going
    forward, the margin rows coming back; the rest is autograd's backward of both and the loss."""
    times = {event.key: event.cpu_time_total for event in events if event.key.startswith(LAYER_LABEL)}
    layers, rows = layers_of(model), []
    for i, (layer, shape) in enumerate(zip(layers, shapes_of(layers, x)[1:])):  # each layer's output shape
        name = f"{LAYER_LABEL} {i}: {type(layer).__name__}"
        rows.append((i, type(layer).__name__, "x".join(map(str, shape)), times.get(name, 0.0),
                     times.get(f"{name}, back", 0.0)))
    print("  per layer, seconds per example (forward: the projected rows through it; back: the margin rows):")
    for i, kind, out, forward, back in rows:
        print(f"    {i:>2} {kind:<10} {out:<12} forward {forward / 1e6 / batch:6.3f}  "
              f"back {back / 1e6 / batch:6.3f}")
    layered = sum(r[3] + r[4] for r in rows)
    print(f"    layers {layered / 1e6 / batch:.2f} s of {total_us / 1e6 / batch:.2f} s; the rest is autograd's "
          "backward of them (not split by layer) and the loss")


def grouped_distribution(batch: int = 256, seeds: int = 20) -> None:
    """Mean and spread over ``seeds`` of the projected estimate, in groups against the whole batch at once."""
    torch.manual_seed(0)
    net = DigitsCNN(width=2, stride2_kernel=4, padding="one", conv_bias=True, init="dual").eval()
    x, y = torch.rand(batch, 1, 8, 8), torch.randint(0, 10, (batch,))
    mask = torch.ones(batch, 10, dtype=torch.bool)
    mask[torch.arange(batch), y] = False
    stats, default = {}, dual.CPU_GROUP_BYTES
    try:
        for name, group_bytes in (("whole batch", 2**62), ("groups of 4", 4 * 50 * 16 * 8 * 8 * 4)):
            dual.CPU_GROUP_BYTES = group_bytes
            with torch.no_grad():
                e = torch.stack([margin_lower_bounds(net, x, y, 0.05, "dual_projected", projections=50,
                                                     generator=torch.Generator().manual_seed(s))
                                 for s in range(seeds)])
            stats[name] = (float(e.mean(0)[mask].mean()), float(e.std(0)[mask].mean()))
    finally:
        dual.CPU_GROUP_BYTES = default
    (m0, s0), (m1, s1) = stats.values()
    print(f"projected estimate over {seeds} seeds, Digits dual network, {batch} examples: mean {m0:.5f} (whole batch) "
          f"vs {m1:.5f} (groups), ratio {m1 / m0:.3f}; spread {s0:.5f} vs {s1:.5f}, ratio {s1 / s0:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_device_option(parser)
    parser.add_argument("--skip-projected", action="store_true", help="leave out (3), minutes on a CPU")
    parser.add_argument("--compile", default=None, choices=COMPILE_MODES,
                        help="(1) also times the IBP training bound compiled in this mode against eager")
    args = parser.parse_args()
    device = args.device
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
        if args.compile:
            c = compiled_ibp_ratio(model, x.to(device), torch.randint(0, k, (len(x),), device=device), args.compile)
            print(f"IBP training bound compiled ({args.compile}) / eager, {name}: {c:.2f}")

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
    if not args.skip_projected:
        grouped_distribution()
        projected = projected_dual_step(device)
    print(f"ibp_ratio {max(ibp_ratios):.3f}")
    print(f"dual_ratio {max(dual_ratios):.3f}")
    if not args.skip_projected:
        print(f"projected_dual_ratio {projected:.3f}")


if __name__ == "__main__":
    main()
