"""``python -m privrob fit|validate|test|predict|audit|lira --config X.yaml``: a LightningCLI.

The config picks the training method (``model: class_path: PGDTraining``) and the data
(``data: class_path: YaleDataModule``) by class path; short names work because the classes are imported here.
Bad input (a missing file, a negative ε, a checkpoint of another architecture, ...) ends with one line,
``privrob: error: <reason>``, and exit status 2; set ``PRIVROB_DEBUG=1`` for the traceback.
"""

from __future__ import annotations

import os
import sys
from typing import Optional

import pytorch_lightning as pl
from jsonargparse import ArgumentError
from pytorch_lightning.cli import LightningCLI, SaveConfigCallback
from pytorch_lightning.utilities.exceptions import MisconfigurationException

import callbacks  # noqa: F401  (registers the callbacks' short names)
import privrob.data  # noqa: F401
import privrob.methods  # noqa: F401
from privrob.data import MembershipDataModule
from privrob.errors import one_line
from privrob.methods import RobustTraining
from privrob.trainer import PrivrobTrainer, load_checkpoint
from privrob.wandb_mode import choose_wandb_mode


class LogConfigCallback(SaveConfigCallback):
    """Saves the run's config to ``<default_root_dir>/config.yaml`` and logs the whole resolved config (backbone,
    data, callbacks, trainer) to the run's loggers, beside the method's arguments that Lightning logs."""

    def save_config(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        for logger in trainer.loggers:
            logger.log_hyperparams(self.config.as_dict())


class PrivrobCLI(LightningCLI):
    """LightningCLI with the ``audit`` and ``lira`` subcommands and the run's config saved (overwritten on
    re-runs)."""

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        return {**LightningCLI.subcommands(), "audit": {"model", "datamodule"}, "lira": {"model", "datamodule"}}

    def _parse_ckpt_path(self) -> None:
        # Lightning reads the checkpoint's hyperparameters here; check the file first for a one-line error
        subcommand = self.config.get("subcommand")
        path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if path is not None:
            load_checkpoint(path)
        super()._parse_ckpt_path()

    def before_instantiate_classes(self) -> None:
        # before the logger exists: wandb.init must neither prompt for a key nor wait on an unreachable server
        if self.subcommand in LightningCLI.subcommands():
            choose_wandb_mode(self.config[self.subcommand].trainer.logger)


def main(args: Optional[list[str]] = None) -> None:
    """Entry point (``python -m privrob`` and the ``privrob`` script)."""
    # parse errors raise ArgumentError instead of printing the usage (which --help still prints)
    raise_on_error = {"exit_on_error": False, **{name: {"exit_on_error": False} for name in PrivrobCLI.subcommands()}}
    try:
        PrivrobCLI(RobustTraining, MembershipDataModule, subclass_mode_model=True, subclass_mode_data=True,
                   trainer_class=PrivrobTrainer, save_config_callback=LogConfigCallback,
                   save_config_kwargs={"overwrite": True}, args=args,
                   auto_configure_optimizers=False, parser_kwargs=raise_on_error)
    except (ArgumentError, ValueError, FileNotFoundError, MisconfigurationException) as err:
        if os.environ.get("PRIVROB_DEBUG"):
            raise
        print(f"privrob: error: {one_line(str(err))}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main(sys.argv[1:])
