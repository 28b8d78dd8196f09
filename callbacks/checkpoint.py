"""``ModelCheckpoint`` that writes to ``<default_root_dir>/checkpoints`` whatever the logger, so that moving a run
(``--trainer.default_root_dir``, as ``sbatch/fit.sbatch`` does per job) moves its checkpoints too, and whose
``last.ckpt`` is always the model at the end of fit."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint
from typing_extensions import override


class RunCheckpoint(ModelCheckpoint):
    """:class:`~pytorch_lightning.callbacks.ModelCheckpoint` with ``dirpath`` defaulting to
    ``<trainer.default_root_dir>/checkpoints`` (Lightning's default depends on the logger's folder and run id).

    With ``save_last``, ``last.ckpt`` is written once more at the end of fit unless the final step is already saved:
    Lightning writes it only beside a periodic save, so with ``every_n_epochs=5`` a 7-epoch run kept epoch 5's
    model as ``last.ckpt`` and that model was audited.
    """

    @override
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self.dirpath is None:
            self.dirpath = str(Path(trainer.default_root_dir) / "checkpoints")
        super().setup(trainer, pl_module, stage)

    @override
    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.save_last and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
