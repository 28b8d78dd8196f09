"""The study's model selection for duality-based training (Song, Shokri, Mittal, CCS 2019, ``train_Yale.py``): keep
the epoch of lowest robust error on the first 110 non-members, its ``_best.pth``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback
from torch.utils.data import DataLoader, Subset
from typing_extensions import override

from privrob.bounds import worst_case_logits
from privrob.privacy.evaluation import evaluation_mode, seeded_subset


class BestRobustCheckpoint(Callback):
    r"""After every training epoch, measure a :class:`~privrob.methods.WongKolterTraining` model's robust error on
    ``num_points`` non-members and save ``<dirpath>/best_robust.ckpt`` when it is strictly below every earlier
    epoch's and below 1 (the study's ``best_err`` starts at 1; a tie keeps the earlier epoch).

    The robust error is the study's ``evaluate_robust``: the fraction of those non-members whose worst-case logits
    (the module's ``bound``, i.e. the projected dual bound with its ``projections``, and its ``clip_input``) at the
    full training ``eps``, not the ramped one, have their maximum off the true class; the model in evaluation mode,
    the non-members in their order, in batches of ``batch_size``. It is logged as ``val/robust_error``. The
    projections are random, so the selection is too; they come from a generator seeded with ``seed`` + epoch, and
    the evaluation runs in :func:`~privrob.privacy.evaluation.evaluation_mode`, so training's random streams are
    left as they were.

    Selecting on non-members leaks them into the choice of model: see the README.

    Args:
        num_points: non-members evaluated (the study's 110: 22 batches of 5).
        batch_size: evaluation batch size (the study's 5).
        shuffle: a seeded random ``num_points`` of the non-members instead of the first ones (the study permuted
            its Yale test set once, so its first 110 are a random draw; Fashion-MNIST's are the test set's first).
        seed: seed of that draw and of the projections.
        dirpath: folder of the checkpoint (default: ``<default_root_dir>/checkpoints``).
    """

    def __init__(self, num_points: int = 110, batch_size: int = 5, shuffle: bool = False, seed: int = 0,
                 dirpath: Optional[str] = None) -> None:
        if num_points < 1 or batch_size < 1:
            raise ValueError(f"`num_points` and `batch_size` must be at least 1, got {num_points}, {batch_size}")
        self.num_points, self.batch_size, self.shuffle, self.seed = num_points, batch_size, shuffle, seed
        self.dirpath = dirpath
        self.best = 1.0

    def checkpoint_path(self, trainer: pl.Trainer) -> Path:
        return Path(self.dirpath or Path(trainer.default_root_dir) / "checkpoints") / "best_robust.ckpt"

    def robust_error(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> float:
        """The fraction of the evaluated non-members that the bound does not certify at ``eps``."""
        hp = pl_module.hparams
        nonmembers = trainer.datamodule.nonmembers()
        n = min(self.num_points, len(nonmembers))
        indices = seeded_subset(len(nonmembers), n, self.seed) if self.shuffle else torch.arange(n)
        generator = torch.Generator().manual_seed(self.seed + trainer.current_epoch)
        wrong = 0
        with evaluation_mode(pl_module), torch.no_grad():
            for x, y in DataLoader(Subset(nonmembers, indices.tolist()), batch_size=self.batch_size):
                x, y = x.to(pl_module.device), y.to(pl_module.device)
                worst = worst_case_logits(pl_module, x, y, hp.eps, hp.bound, clip=hp.clip_input,
                                          projections=hp.projections, memory_budget=hp.memory_budget,
                                          generator=generator)
                wrong += int((worst.argmax(dim=1) != y).sum())
        return wrong / n

    @override
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        error = trainer.strategy.broadcast(self.robust_error(trainer, pl_module))  # one decision for every rank
        pl_module.log("val/robust_error", error, sync_dist=True)
        if error < self.best:
            self.best = error  # first, so that the checkpoint holds it
            trainer.save_checkpoint(self.checkpoint_path(trainer))  # every rank joins; rank 0 writes

    @override
    def state_dict(self) -> dict:
        return {"best": self.best}

    @override
    def load_state_dict(self, state_dict: dict) -> None:
        self.best = state_dict.get("best", 1.0)
