"""``python -m privrob fit|validate|test|predict|audit|references|lira --config X.yaml``: a LightningCLI.

The config picks the training method (``model: class_path: PGDTraining``) and the data
(``data: class_path: YaleDataModule``) by class path; short names work because the classes are imported here.
Bad input (a missing file, a negative ε, a checkpoint of another architecture, ...) ends with one line,
``privrob: error: <reason>``, and exit status 2; set ``PRIVROB_DEBUG=1`` for the traceback.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import pytorch_lightning as pl
from jsonargparse import ArgumentError
from pytorch_lightning.cli import LightningCLI, SaveConfigCallback
from pytorch_lightning.utilities import rank_zero_info
from pytorch_lightning.utilities.exceptions import MisconfigurationException

import callbacks  # noqa: F401  (registers the callbacks' short names)
import privrob.data  # noqa: F401
import privrob.methods  # noqa: F401
from privrob.data import MembershipDataModule
from privrob.errors import one_line
from privrob.methods import RobustTraining
from privrob.methods.base import EXECUTION_SETTINGS
from privrob.run_folder import loggers_into, refuse_or_replace, remove_run
from privrob.trainer import PrivrobTrainer, load_checkpoint
from privrob.wandb_mode import choose_wandb_mode


class LogConfigCallback(SaveConfigCallback):
    """Saves a fit's config to ``<default_root_dir>/config.yaml`` (wherever the loggers write; other subcommands leave
    the run's config alone) and logs the whole resolved config (backbone, data, callbacks, trainer) to the run's
    loggers, beside the method's arguments that Lightning logs. Used with ``save_to_log_dir=False``."""

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if trainer.fit_loop.max_epochs != 0 and trainer.max_steps != 0:  # a fit that trains nothing writes nothing
            super().setup(trainer, pl_module, stage)

    def save_config(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit":  # rank 0 only (Lightning's setup calls this there)
            root = Path(trainer.default_root_dir)
            root.mkdir(parents=True, exist_ok=True)
            self.parser.save(self.config, str(root / self.config_filename), skip_none=False, overwrite=True,
                             multifile=self.multifile)
        for logger in trainer.loggers:
            logger.log_hyperparams(self.config.as_dict())


class PrivrobCLI(LightningCLI):
    """LightningCLI with the ``audit``, ``references`` and ``lira`` subcommands, one run per folder (a new fit into a
    folder that holds a run is refused unless ``--overwrite true``, which removes that run's files first), and the
    loggers' files under ``default_root_dir`` unless a logger's ``save_dir`` is given."""

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        ours = ("audit", "references", "lira")
        return {**LightningCLI.subcommands(), **{name: {"model", "datamodule"} for name in ours}}

    def _parse_ckpt_path(self) -> None:
        # Lightning reads the checkpoint's hyperparameters here, over the config and the command line; check the file
        # first for a one-line error, and keep the config's execution settings: how to run the model, not what it is
        subcommand = self.config.get("subcommand")
        path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if path is None:
            return super()._parse_ckpt_path()
        load_checkpoint(path)
        keys = [f"{subcommand}.model.init_args.{name}" for name in EXECUTION_SETTINGS]
        kept = {key: self.config[key] for key in keys if key in self.config}
        super()._parse_ckpt_path()
        for key, value in kept.items():
            self.config[key] = value

    def add_arguments_to_parser(self, parser) -> None:
        parser.add_argument("--overwrite", type=bool, default=False,
                            help="fit: remove the run already in default_root_dir first (other subcommands ignore it)")

    def before_instantiate_classes(self) -> None:
        if self.subcommand not in LightningCLI.subcommands():
            return
        config = self.config[self.subcommand]
        root = config.trainer.default_root_dir or "."
        loggers_into(config.trainer.logger, root)  # the loggers' files (and config.yaml) follow the run's folder
        if self.subcommand == "fit" and (config.trainer.max_epochs == 0 or config.trainer.max_steps == 0):
            config.trainer.logger = False  # a fit that trains nothing writes nothing
            return
        if self.subcommand == "fit" and _starts_a_run(config):
            refuse_or_replace(Path(root), config.overwrite)  # refused now, before any work; removed in before_fit
        # before the logger exists: wandb.init must neither prompt for a key nor wait on an unreachable server
        choose_wandb_mode(config.trainer.logger)

    def before_fit(self) -> None:
        # every option has been checked by building the classes: only now remove an old run (rank 0 alone)
        config = self.config["fit"]
        if config.overwrite and _starts_a_run(config) and self.trainer.is_global_zero:
            removed = remove_run(Path(self.trainer.default_root_dir))
            if removed:
                rank_zero_info(f"--overwrite: removed {', '.join(str(p) for p in removed)}")


def _starts_a_run(fit_config) -> bool:
    """A fit that writes a new run into its folder: not a resume, not a ``fast_dev_run`` (which writes nothing)."""
    return fit_config.ckpt_path is None and not fit_config.trainer.fast_dev_run


def main(args: Optional[list[str]] = None) -> None:
    """Entry point (``python -m privrob`` and the ``privrob`` script)."""
    # parse errors raise ArgumentError instead of printing the usage (which --help still prints)
    raise_on_error = {"exit_on_error": False, **{name: {"exit_on_error": False} for name in PrivrobCLI.subcommands()}}
    try:
        PrivrobCLI(RobustTraining, MembershipDataModule, subclass_mode_model=True, subclass_mode_data=True,
                   trainer_class=PrivrobTrainer, save_config_callback=LogConfigCallback,
                   save_config_kwargs={"overwrite": True, "save_to_log_dir": False}, args=args,
                   auto_configure_optimizers=False, parser_kwargs=raise_on_error)
    except (ArgumentError, ValueError, FileNotFoundError, MisconfigurationException) as err:
        if os.environ.get("PRIVROB_DEBUG"):
            raise
        print(f"privrob: error: {one_line(str(err))}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:  # an audit or lira (a fit shuts down through Lightning); reports are written last
        print("privrob: interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main(sys.argv[1:])
