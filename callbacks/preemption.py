"""Preemption that resumes exactly: save at a batch boundary on SIGUSR1, requeue the SLURM job, and exit."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Any, Optional

import pytorch_lightning as pl
from lightning_fabric.plugins.environments import SLURMEnvironment
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.utilities import rank_zero_info, rank_zero_warn
from typing_extensions import override


SIGNALS = {"SIGUSR1": signal.SIGUSR1, "SIGUSR2": signal.SIGUSR2, "SIGTERM": signal.SIGTERM}


class Preempted(SystemExit):
    """Ends the process after the preemption checkpoint is saved (exit status 0: the job was requeued)."""


class RequeueOnSignal(Callback):
    r"""Save a resumable checkpoint when SLURM announces the end of a job, requeue the job, and exit.

    Lightning's own SLURM handler saves inside the signal handler, possibly in the middle of an optimizer step, and
    its checkpoint holds no random-number state, so a run cannot resume exactly from it. This callback turns that
    handler off (``SLURMEnvironment.auto_requeue = False``) and instead: the signal (``SIGUSR1``, which
    ``#SBATCH --signal=SIGUSR1@90`` sends to the ``srun`` step) only sets a flag; at the next training-batch end (at
    an epoch's last batch: at the epoch's end, after its validation and membership inference), once any rank has seen
    it, every rank joins in saving ``<dirpath>/preempt.ckpt`` (weights, optimizer, scheduler, loop and data-loader
    position, the member/non-member split, and the python, numpy, torch and CUDA generators that
    :class:`~privrob.methods.RobustTraining` saves in every checkpoint), rank 0 runs ``scontrol requeue
    $SLURM_JOB_ID`` (when inside a job), and the process exits 0.
    ``sbatch/fit.sbatch`` resumes from that file when it exists.

    The generators are restored at the start of the first batch after resuming, so an uninterrupted run and a
    preempted one draw the same numbers (exactly when loading a batch draws nothing: without random augmentation).

    Args:
        dirpath: folder of ``preempt.ckpt`` (default: ``<default_root_dir>/checkpoints``).
        signal_name: the signal to act on (``SIGUSR1``).
        requeue: run ``scontrol requeue`` inside a SLURM job.
    """

    def __init__(self, dirpath: Optional[str] = None, signal_name: str = "SIGUSR1", requeue: bool = True) -> None:
        if signal_name not in SIGNALS:
            raise ValueError(f"`signal_name` can be {', '.join(SIGNALS)}, got {signal_name!r}")
        self.dirpath, self.signal_name, self.requeue = dirpath, signal_name, requeue
        self.requested = False

    def checkpoint_path(self, trainer: pl.Trainer) -> Path:
        return Path(self.dirpath or Path(trainer.default_root_dir) / "checkpoints") / "preempt.ckpt"

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.requested = True  # act at the next batch boundary, never inside an optimizer step

    @override
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        # the environment the Trainer resolved; Lightning's signal connector reads the same attribute
        environment = trainer._accelerator_connector.cluster_environment
        if isinstance(environment, SLURMEnvironment):
            environment.auto_requeue = False
        signal.signal(SIGNALS[self.signal_name], self._on_signal)

    @override
    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if not trainer.fit_loop.epoch_loop.batch_progress.is_last_batch:
            self._preempt_if_requested(trainer)

    @override
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # after the last batch the epoch's end (validation, membership inference) comes first, then the save: a
        # checkpoint at an epoch boundary, which resumes at the next epoch
        self._preempt_if_requested(trainer)

    def _preempt_if_requested(self, trainer: pl.Trainer) -> None:
        # stop every process if any process was signalled
        if not trainer.strategy.reduce_boolean_decision(self.requested, all=False):
            return
        path = self.checkpoint_path(trainer)
        trainer.save_checkpoint(path)
        job = os.environ.get("SLURM_JOB_ID")  # an array task has its own job id too
        if trainer.is_global_zero:
            rank_zero_info(f"{self.signal_name}: saved {path} at epoch {trainer.current_epoch}, step "
                           f"{trainer.global_step}")
            if self.requeue and job:
                result = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True)
                if result.returncode != 0:
                    rank_zero_warn(f"scontrol requeue {job} failed: {result.stderr.strip()}")
        raise Preempted(0)
