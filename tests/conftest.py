"""Shared fixtures: the real data in ../shared/data (skipped with a reason when absent), a clean environment."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Optional

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    """No SLURM variables (Lightning would think it runs inside a job), W&B offline, never interactive."""
    for key in list(os.environ):
        if key.startswith("SLURM_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real data not available: {path} is missing (tests use ../shared/data beside the checkout)")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``, the folder holding CroppedYale/ and FashionMNIST/."""
    return _require(SHARED_DATA)


@pytest.fixture(scope="session")
def yale_root() -> Path:
    _require(SHARED_DATA / "CroppedYale")
    return SHARED_DATA


@pytest.fixture(scope="session")
def fmnist_root() -> Path:
    _require(SHARED_DATA / "FashionMNIST" / "raw")
    return SHARED_DATA


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    return _require(SHARED_DATA / "reference" / "yale")


def write_cifar10(root: Path, per_batch: int = 20, seed: int = 0) -> Path:
    """A small CIFAR10 folder in the real ``cifar-10-batches-py`` pickle format."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {"batch_label": name, "data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
                 "labels": rng.integers(0, 10, per_batch).tolist(),
                 "filenames": [f"{name}_{i}.png" for i in range(per_batch)]}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)
    return root


@pytest.fixture
def cifar_root(tmp_path) -> Path:
    return write_cifar10(tmp_path)


def run_cli(*args: str, cwd: Path = ROOT, timeout: int = 600,
            env_overrides: Optional[dict[str, Optional[str]]] = None) -> subprocess.CompletedProcess:
    """``python -m privrob ARGS`` in a subprocess, W&B offline (unless ``env_overrides`` sets or, with None,
    unsets variables), no progress bars in the log."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env.update(WANDB_MODE="offline", WANDB_SILENT="true", PYTHONPATH=str(ROOT))
    for key, value in (env_overrides or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return subprocess.run([sys.executable, "-m", "privrob", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def quiet_trainer(**kwargs):
    """A CPU Trainer without logger, checkpoints or progress bars."""
    import pytorch_lightning as pl

    defaults = dict(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                    enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
    defaults.update(kwargs)
    return pl.Trainer(**defaults)


@pytest.fixture(scope="session")
def trained_digits():
    """A natural DigitsCNN trained for 15 epochs on the digits members (about 5 s), and its data."""
    import pytorch_lightning as pl

    from privrob.data import DigitsDataModule
    from privrob.methods import NaturalTraining
    from privrob.models import DigitsCNN

    pl.seed_everything(0, verbose=False)
    dm = DigitsDataModule(batch_size=32, seed=0)
    model = NaturalTraining(DigitsCNN(width=2), lr=3e-3)
    quiet_trainer(max_epochs=15).fit(model, dm)
    return model.eval(), dm
