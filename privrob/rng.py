"""Capture and restore every random number generator a run draws from (python, numpy, torch, CUDA), as tensors and
numbers only, so that checkpoints holding them still load with ``torch.load(weights_only=True)``."""

from __future__ import annotations

import random

import numpy as np
import torch


def capture() -> dict:
    """The current state of the python, numpy, torch and (if present) CUDA generators."""
    version, state, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    out = {
        "python": {"version": version, "state": torch.tensor(state, dtype=torch.int64),
                   "gauss": -1.0 if gauss is None else float(gauss), "has_gauss": gauss is not None},
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos), "has_gauss": int(has_gauss),
                  "cached": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def restore(state: dict) -> None:
    """Set every generator to ``state`` (from :func:`capture`)."""
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"]),
                     py["gauss"] if py["has_gauss"] else None))
    npy = state["numpy"]
    np.random.set_state(("MT19937", npy["keys"].numpy().astype(np.uint32), npy["pos"], npy["has_gauss"],
                         npy["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
