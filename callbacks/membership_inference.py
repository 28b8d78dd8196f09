"""Epoch-end membership inference (Song, Shokri, Mittal, CCS 2019): privacy curves while a model trains."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Optional

import pytorch_lightning as pl
from lightning_fabric.utilities.data import sized_len
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.loggers import WandbLogger
from pytorch_lightning.utilities import rank_zero_info
from pytorch_lightning.utilities.exceptions import SIGTERMException
from typing_extensions import override

from privrob.privacy.audit import evaluate_membership, figure_title, markdown_table, save_figure
from privrob.privacy.functional import roc_curve
from privrob.privacy.strategies import STRATEGY_NAMES, bound_methods_of, build_strategy, default_strategies

LOGGED = ("accuracy", "advantage", "auc", "tpr@0.1%fpr", "tpr@1%fpr", "train_acc", "test_acc", "threshold")
CSV_FIELDS = ("epoch", "step", "strategy", *LOGGED, "members", "nonmembers")
DEFAULT_EVERY = {"I_B": 1, "I_A": 10, "I_V": 10}


class MembershipInference(Callback):
    r"""Run membership-inference strategies at the end of training epochs and log privacy curves.

    Each strategy runs on its own schedule (``every_n_epochs``; defaults: I_B every epoch, I_A and I_V every 10)
    and always after the last epoch, on fixed seeded subsets of ``num_points`` members and non-members, with a progress
    bar (when the trainer shows one) once an evaluation takes a few seconds; a SIGTERM stops it within one batch
    and writes no row for that epoch. On many
    devices each rank scores a disjoint shard and the scores are gathered with their ids, so every rank computes
    exactly the single-process numbers; only rank 0 writes files, and a ``fast_dev_run`` none. The model's mode, its batch-norm statistics and
    its parameters' gradients are left as they were.

    Logged through the Lightning logger: ``privacy/<strategy>/{accuracy, advantage, auc, tpr@0.1%fpr, tpr@1%fpr,
    train_acc, test_acc, threshold}`` (``threshold``: the score at or above which the attack calls a point a
    member); with a :class:`~pytorch_lightning.loggers.WandbLogger` also member and non-member
    confidence histograms and the ROC curve. The curve is written to ``<dirpath>/privacy_curve.csv`` every time
    and plotted to ``privacy_curve.png`` at the end of fit; a resumed run drops the rows at or after the epoch it
    resumes from and appends.

    Args:
        strategies: names among ``I_B``, ``I_A``, ``I_V`` (I_V for a model the bounds module supports); default
            I_B and I_A, plus I_V for the verifiable methods.
        every_n_epochs: per-strategy period in epochs, merged over the defaults.
        num_points: members and non-members evaluated, each (None: all).
        eps: l_inf budget of I_A's attack (default: the datamodule's ``default_eps``, the study's).
        attack_steps: PGD steps of I_A's attack.
        attack_rel_step_size: PGD step as a multiple of ``eps`` (the study's 2.5 / 20).
        seed: seed of the evaluation subsets.
        batch_size: evaluation batch size (default: the datamodule's ``eval_batch_size``).
        dirpath: folder of the CSV and PNG (default: ``trainer.default_root_dir``).
        fast_dev_points: points per set in a quick run: under ``fast_dev_run``, and when ``limit_train_batches`` limits
            the epoch (unless ``quick_when_limited`` is false).
        quick_when_limited: a run whose training epochs are cut short by ``limit_train_batches`` (a smoke test)
            scores at most ``fast_dev_points`` per set; false scores ``num_points`` whatever the limits.
        bound_methods: certified methods for I_V, tried in order until one fits its memory budget (default: the
            model's ``certified_methods``, else dual, crown_ibp, ibp).
        keep_best: early stopping by privacy: a logged metric to maximise (e.g. ``val/adv_acc``); whenever it is
            the best so far at an epoch where every strategy of ``max_inference_accuracy`` was evaluated and stayed
            within its bound, the callback saves ``<dirpath>/best_privacy_tradeoff.ckpt``.
        max_inference_accuracy: per strategy, the highest membership-inference accuracy tolerated, e.g.
            ``{"I_A": 0.6}`` (with ``keep_best``).

    Example::

        >>> MembershipInference(strategies=["I_B", "I_A"], every_n_epochs={"I_A": 5})  # doctest: +ELLIPSIS
        <...MembershipInference object at ...>
    """

    def __init__(self, strategies: Optional[list[str]] = None, every_n_epochs: Optional[dict[str, int]] = None,
                 num_points: Optional[int] = 1000, eps: Optional[float] = None, attack_steps: int = 20,
                 attack_rel_step_size: float = 2.5 / 20, seed: int = 0, batch_size: Optional[int] = None,
                 dirpath: Optional[str] = None, fast_dev_points: int = 8, quick_when_limited: bool = True,
                 bound_methods: Optional[list[str]] = None, keep_best: Optional[str] = None,
                 max_inference_accuracy: Optional[dict[str, float]] = None) -> None:
        unknown = [s for s in strategies or [] if s not in STRATEGY_NAMES]
        if unknown or strategies == []:
            raise ValueError(f"`strategies` can be {', '.join(STRATEGY_NAMES)}, got {strategies}")
        self.every = {**DEFAULT_EVERY, **(every_n_epochs or {})}
        if any(v < 1 for v in self.every.values()):
            raise ValueError(f"`every_n_epochs` values must be at least 1, got {every_n_epochs}")
        if num_points is not None and num_points < 1:
            raise ValueError(f"`num_points` must be at least 1 or null, got {num_points}")
        if eps is not None and eps < 0:
            raise ValueError(f"`eps` must be non-negative, got {eps}")
        if attack_steps < 1:
            raise ValueError(f"`attack_steps` must be at least 1, got {attack_steps}")
        self.strategies, self.num_points, self.eps = strategies, num_points, eps
        self.bound_methods = tuple(bound_methods) if bound_methods else None
        self.attack_steps, self.attack_rel_step_size = attack_steps, attack_rel_step_size
        if fast_dev_points < 1:
            raise ValueError(f"`fast_dev_points` must be at least 1, got {fast_dev_points}")
        self.seed, self.batch_size, self.dirpath, self.fast_dev_points = seed, batch_size, dirpath, fast_dev_points
        self.quick_when_limited = quick_when_limited
        if max_inference_accuracy and not keep_best:
            raise ValueError("`max_inference_accuracy` needs `keep_best`, the metric to maximise under it")
        self.keep_best, self.max_inference_accuracy = keep_best, dict(max_inference_accuracy or {})
        self.best: Optional[float] = None
        self.last_results: dict = {}

    # -- files -------------------------------------------------------------------------------------------------
    def csv_path(self, trainer: pl.Trainer) -> Path:
        return Path(self.dirpath or trainer.default_root_dir) / "privacy_curve.csv"

    def _read_rows(self, trainer: pl.Trainer) -> list[dict]:
        path = self.csv_path(trainer)
        if not path.is_file():
            return []
        with open(path, newline="") as f:
            return list(csv.DictReader(f))

    def _write_rows(self, trainer: pl.Trainer, rows: list[dict]) -> None:
        path = self.csv_path(trainer)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".csv.tmp")
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
            writer.writeheader()
            writer.writerows(rows)
        tmp.replace(path)

    def points(self, trainer: pl.Trainer) -> Optional[int]:
        """Members and non-members scored per set in this run: ``fast_dev_points`` in a quick run, else
        ``num_points``."""
        limit = trainer.limit_train_batches  # an int is a number of batches (Lightning's rule), a float a fraction
        batches = sized_len(trainer.train_dataloader) if isinstance(limit, int) else None
        limited = (batches is None or limit < batches) if isinstance(limit, int) else limit < 1.0
        if trainer.fast_dev_run or (self.quick_when_limited and limited):
            return min(self.fast_dev_points, self.num_points or self.fast_dev_points)
        return self.num_points

    # -- hooks -------------------------------------------------------------------------------------------------
    @override
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.points(trainer) != self.num_points and not trainer.fast_dev_run:
            rank_zero_info(f"MembershipInference: limit_train_batches={trainer.limit_train_batches} makes this a quick "
                           f"run, scoring {self.points(trainer)} points per set (quick_when_limited=false scores "
                           f"num_points={self.num_points})")
        # a fresh run starts a fresh curve; a resumed one keeps the epochs before the checkpoint
        if self._writes_files(trainer):
            kept = [r for r in self._read_rows(trainer) if int(r["epoch"]) < trainer.current_epoch]
            self._write_rows(trainer, kept)

    @staticmethod
    def _writes_files(trainer: pl.Trainer) -> bool:
        """Only rank 0 writes, and a ``fast_dev_run`` (a smoke test, which Lightning also keeps from logging and
        checkpointing) writes nothing: it would replace the curve of a run in the same folder."""
        return trainer.is_global_zero and not trainer.fast_dev_run

    def _due(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> list[str]:
        epoch = trainer.current_epoch
        last = bool(trainer.fast_dev_run) or trainer.should_stop or (
            trainer.max_epochs is not None and trainer.max_epochs > 0 and epoch + 1 >= trainer.max_epochs) or (
            trainer.max_steps > 0 and trainer.global_step >= trainer.max_steps)
        names = self.strategies or default_strategies(pl_module)
        return [s for s in names if last or (epoch + 1) % self.every[s] == 0]

    @override
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        due = self._due(trainer, pl_module)
        if not due:
            return
        datamodule = trainer.datamodule
        eps = self.eps if self.eps is not None else datamodule.default_eps
        strategies = [build_strategy(s, eps=eps, attack_steps=self.attack_steps,
                                     attack_rel_step_size=self.attack_rel_step_size,
                                     bound_methods=self.bound_methods or bound_methods_of(pl_module)) for s in due]
        results = evaluate_membership(
            pl_module, datamodule, strategies, num_points=self.points(trainer), seed=self.seed,
            batch_size=self.batch_size, device=pl_module.device, rank=trainer.global_rank,
            world_size=trainer.world_size,
            progress=trainer.is_global_zero and trainer.progress_bar_callback is not None,
            before_batch=lambda: _stop_if_terminated(trainer))
        self.last_results = results
        for name, r in results.items():
            for key in LOGGED:
                # the value is the same on every rank; sync_dist averages identical numbers
                pl_module.log(f"privacy/{name}/{key}", float(r[key]), sync_dist=True)
        self._keep_if_best(trainer, results)
        if self._writes_files(trainer):
            rows = self._read_rows(trainer)
            rows += [{"epoch": trainer.current_epoch, "step": trainer.global_step, "strategy": name,
                      **{k: r[k] for k in CSV_FIELDS if k in r}} for name, r in results.items()]
            self._write_rows(trainer, rows)
            self._log_wandb(trainer, results)

    def best_checkpoint_path(self, trainer: pl.Trainer) -> Path:
        return Path(self.dirpath or trainer.default_root_dir) / "best_privacy_tradeoff.ckpt"

    def _keep_if_best(self, trainer: pl.Trainer, results: dict) -> None:
        if not self.keep_best:
            return
        bounded = self.max_inference_accuracy
        if any(name not in results for name in bounded):
            return  # not every bounded strategy was evaluated this epoch
        if any(results[name]["accuracy"] > limit for name, limit in bounded.items()):
            return
        if self.keep_best not in trainer.callback_metrics:
            raise ValueError(f"`keep_best`={self.keep_best!r} is not logged; logged: "
                             f"{', '.join(sorted(trainer.callback_metrics))}")
        value = float(trainer.callback_metrics[self.keep_best])
        if self.best is None or value > self.best:
            self.best = value
            trainer.save_checkpoint(self.best_checkpoint_path(trainer))  # every rank joins; rank 0 writes

    @override
    def state_dict(self) -> dict:
        return {"best": self.best}

    @override
    def load_state_dict(self, state_dict: dict) -> None:
        self.best = state_dict.get("best")

    def _log_wandb(self, trainer: pl.Trainer, results: dict) -> None:
        loggers = [lg for lg in trainer.loggers if isinstance(lg, WandbLogger)]
        if not loggers:
            return
        import wandb

        payload = {"trainer/global_step": trainer.global_step}
        for name, r in results.items():
            m, n = r["scores"]["members"]["scores"], r["scores"]["nonmembers"]["scores"]
            payload[f"privacy/{name}/member_confidence"] = wandb.Histogram(m.numpy())
            payload[f"privacy/{name}/nonmember_confidence"] = wandb.Histogram(n.numpy())
            fpr, tpr = roc_curve(m, n)
            table = wandb.Table(data=[[float(a), float(b)] for a, b in zip(fpr, tpr)], columns=["fpr", "tpr"])
            payload[f"privacy/{name}/roc"] = wandb.plot.line(table, "fpr", "tpr", title=f"{name} ROC")
        for lg in loggers:
            lg.experiment.log(payload)

    @override
    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        rows = self._read_rows(trainer) if self._writes_files(trainer) else []
        if rows:
            eps = self.eps if self.eps is not None else trainer.datamodule.default_eps
            strategies = sorted({r["strategy"] for r in rows})
            title = figure_title(Path(trainer.default_root_dir).resolve().name, pl_module, strategies, eps)
            plot_curve(rows, self.csv_path(trainer).with_suffix(".png"), title)
        if self.last_results:
            rank_zero_info(f"Membership inference after epoch {trainer.current_epoch - 1}:\n"
                           f"{markdown_table(self.last_results)}")


def _stop_if_terminated(trainer: pl.Trainer) -> None:
    """Lightning notes a SIGTERM and stops its own loops at their next check; an evaluation checks before each batch.
    The ranks agree (a rank that has noted the signal stops every rank at the same batch), so that a rank that notes
    it later, or has finished its shard, is not left waiting in the gather of the scores for one that stopped. (A
    signal that reaches one rank other than 0 alone can still hang: Lightning's own handler broadcasts from rank 0
    inside the signal handler. SLURM and torchrun signal every rank; Lightning forwards rank 0's to the others.)"""
    if trainer.strategy.reduce_boolean_decision(trainer.received_sigterm, all=False):
        raise SIGTERMException


def plot_curve(rows: list[dict], path: Path, title: Optional[str] = None) -> Path:
    """Membership-inference accuracy against epoch, one line per strategy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(6, 4))
    for name in sorted({r["strategy"] for r in rows}):
        pts = [(int(r["epoch"]), float(r["accuracy"])) for r in rows if r["strategy"] == name]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=name)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("membership inference accuracy")
    ax.set_title(title, fontsize=9)
    ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax.legend()
    return save_figure(fig, path)
