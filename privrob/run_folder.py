"""One run per folder: everything a fit writes lives under its ``default_root_dir``, and a new fit never writes
beside the files of an earlier one (Lightning would add ``last-v1.ckpt`` beside the old ``last.ckpt`` and replace
``config.yaml``, so that an audit would pair the old model with the new config)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from jsonargparse import Namespace

#: what a privrob fit writes in its folder: the saved config, checkpoints (and audits beside them), the privacy
#: curve, the privacy-bounded checkpoint, and the loggers' folders
RUN_FILES = ("config.yaml", "checkpoints", "privacy_curve.csv", "privacy_curve.png", "best_privacy_tradeoff.ckpt",
             "wandb", "lightning_logs")


def loggers_into(logger_config: Any, root: str) -> None:
    """Point every configured logger whose ``save_dir`` is unset or the default (``.``: wherever the command runs) at
    ``root``, in place."""
    for entry in logger_config if isinstance(logger_config, list) else [logger_config]:
        if isinstance(entry, Namespace) and entry.get("class_path"):
            if entry.get("init_args") is None:
                entry["init_args"] = Namespace()
            if entry["init_args"].get("save_dir") in (None, "."):
                entry["init_args"]["save_dir"] = root


def run_files(root: Path) -> list[Path]:
    """The files and folders of an earlier run in ``root``."""
    return [root / name for name in RUN_FILES if (root / name).exists()]


def refuse_or_replace(root: Path, overwrite: bool) -> None:
    """Refuse a new fit into ``root`` when it holds a run, unless ``overwrite`` (then :func:`remove_run` removes it
    once every option has been checked).

    Raises:
        ValueError: ``root`` holds a run and ``overwrite`` is off.
    """
    found = run_files(root)
    if found and not overwrite:
        last = root / "checkpoints" / "last.ckpt"
        resume = f"resume it with --ckpt_path {last}" if last.is_file() else "resume it with --ckpt_path <checkpoint>"
        raise ValueError(f"{root} already holds a run ({', '.join(p.name for p in found)}); {resume}, start this "
                         f"one elsewhere (--trainer.default_root_dir), or replace it with --overwrite true")


def remove_run(root: Path) -> list[Path]:
    """Remove the files of the run in ``root`` (only those, see :data:`RUN_FILES`); returns what was removed."""
    found = run_files(root)
    for path in found:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return found
