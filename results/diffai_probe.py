"""What a DiffAI checkpoint's first robust step faces (Mirman et al. 2018; the study's Yale DiffAI run): on one batch
of members, the logits' spread, DiffAI's robust term max(−1, max_j ub(z_j − z_y)) over the config's domain (the
study's: the unclipped box) of radius ``--eps`` beside the cross-entropy, and the share of each ReLU layer's units
active on the clean batch. The measurement behind ``results/yale_diffai_collapse_cpu.txt``: run it on the checkpoint
at the end of the warm-up (and after the collapse) of ``configs/cpu/yale_diffai.yaml``.

Usage: python results/diffai_probe.py CKPT [--config CONFIG] [--data ROOT] [--eps EPS] [--batch N]
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from privrob.data import YaleDataModule  # noqa: E402
from privrob.methods import DiffAITraining  # noqa: E402
from privrob.trainer import load_model_weights  # noqa: E402


def model_of(config: Path) -> DiffAITraining:
    """The config's DiffAI module, freshly built (its backbone from the config's class path)."""
    init_args = dict(yaml.safe_load(config.read_text())["model"]["init_args"])
    backbone = init_args.pop("backbone")
    module, name = backbone["class_path"].rsplit(".", 1)
    return DiffAITraining(getattr(importlib.import_module(module), name)(**backbone["init_args"]), **init_args)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ckpt", type=Path)
    parser.add_argument("--config", type=Path, default=Path("configs/cpu/yale_diffai.yaml"),
                        help="the config that trained the checkpoint")
    parser.add_argument("--data", default="../shared/data", help="the folder holding CroppedYale/")
    parser.add_argument("--eps", type=float, default=0.0314 * 906 / 2850, help="the box radius (default: the "
                        "study's at its first robust step, 0.0100)")
    parser.add_argument("--batch", type=int, default=20)
    args = parser.parse_args(argv)
    for path in (args.ckpt, args.config):
        if not path.is_file():
            parser.error(f"no file {path}")
    torch.manual_seed(0)
    checkpoint = torch.load(args.ckpt, map_location="cpu", weights_only=False)
    model = model_of(args.config)
    load_model_weights(model, checkpoint["state_dict"], str(args.ckpt))
    model.eval()
    data = YaleDataModule(root=args.data, batch_size=args.batch, seed=0)
    data.setup("fit")
    x, y = next(iter(torch.utils.data.DataLoader(data.members(), batch_size=args.batch)))
    active = []
    hooks = [m.register_forward_hook(lambda m, i, out: active.append((out > 0).float().mean().item()))
             for m in model.backbone.modules() if isinstance(m, torch.nn.ReLU)]
    with torch.no_grad():
        logits = model(x)
        for hook in hooks:
            hook.remove()
        robust = model.worst_margin(x, y, args.eps)
    print(f"checkpoint: epoch {checkpoint['epoch']}, step {checkpoint['global_step']}; {len(x)} members, "
          f"box radius {args.eps:.4f}")
    print(f"logits: standard deviation {logits.std().item():.4g}, over the batch per class "
          f"{logits.std(dim=0).mean().item():.4g}; batch accuracy {(logits.argmax(1) == y).float().mean().item():.2f}")
    print(f"cross-entropy {F.cross_entropy(logits, y).item():.4g}; robust term max(-1, max_j ub(z_j - z_y)): "
          f"median {robust.median().item():.4g}, min {robust.min().item():.4g}, max {robust.max().item():.4g}")
    print("active ReLU units per layer:", ", ".join(f"{a:.3f}" for a in active))
    return 0


if __name__ == "__main__":
    sys.exit(main())
