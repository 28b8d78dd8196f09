"""``ModelCheckpoint`` that writes to ``<default_root_dir>/checkpoints`` whatever the logger, so that moving a run
(``--trainer.default_root_dir``, as ``sbatch/fit.sbatch`` does per job) moves its checkpoints too."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint
from typing_extensions import override


class RunCheckpoint(ModelCheckpoint):
    """:class:`~pytorch_lightning.callbacks.ModelCheckpoint` with ``dirpath`` defaulting to
    ``<trainer.default_root_dir>/checkpoints`` (Lightning's default depends on the logger's folder and run id)."""

    @override
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self.dirpath is None:
            self.dirpath = str(Path(trainer.default_root_dir) / "checkpoints")
        super().setup(trainer, pl_module, stage)
