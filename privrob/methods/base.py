"""The shared base of every training method: network, optimizer, schedule, losses, evaluation and logging.

A method subclasses :class:`RobustTraining` and overrides only :meth:`RobustTraining.training_loss`.
"""

from __future__ import annotations

import functools
from typing import Literal, Optional, get_args

import pytorch_lightning as pl
from pytorch_lightning.trainer.states import TrainerFn
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanMetric

from privrob import rng
from privrob.bounds import worst_case_logits
from privrob.memory_format import MEMORY_FORMATS, SCORING_MEMORY_FORMATS, MemoryFormat, ScoringMemoryFormat
from privrob.methods.schedules import linear_ramp
from privrob.privacy.evaluation import score_examples, seeded_subset, shard
from privrob.privacy.strategies import Adversarial, Strategy, Verified, bound_methods_of


def piecewise_constant(schedule: list[tuple[int, float]], base_lr: float):
    """LambdaLR factor for a piecewise-constant schedule: ``base_lr`` before the first milestone, then the
    learning rate of the last milestone reached (the study's schedules, with unequal drops)."""
    milestones = [int(m) for m, _ in schedule]
    if milestones != sorted(milestones) or any(m < 0 for m in milestones):
        raise ValueError(f"`lr_schedule` milestones must be non-negative and increasing, got {milestones}")
    if any(lr <= 0 for _, lr in schedule) or base_lr <= 0:
        raise ValueError(f"learning rates must be positive, got lr={base_lr} and schedule {schedule}")

    def factor(t: int) -> float:
        lr = base_lr
        for milestone, value in schedule:
            if t >= milestone:
                lr = value
        return lr / base_lr

    return factor


CompileMode = Literal["default", "reduce-overhead", "max-autotune"]
COMPILE_MODES = get_args(CompileMode)
#: the settings of how a method runs, not of the model it trains: a run's config or command line sets them, never its
#: checkpoint's saved hyperparameters (privrob.cli), and a references folder does not compare them (privrob.trainer)
EXECUTION_SETTINGS = ("memory_format", "scoring_memory_format", "compile")


@functools.lru_cache(maxsize=None)
def compiled_bound(mode: str):
    """``worst_case_logits`` compiled once per mode for the process (a module attribute would not pickle)."""
    return torch.compile(worst_case_logits, mode=mode)


class RobustTraining(pl.LightningModule):
    """Base LightningModule of privrob's training methods (Song, Shokri, Mittal, CCS 2019 compare six).

    Validation data are the non-members, as in the study. Logs ``train/loss``, ``train/acc`` (on the inputs the
    method trains on), ``val/loss``, ``val/acc`` and, with ``adv_eval_size`` > 0, ``val/adv_acc`` (the study's
    evaluation PGD on a seeded subset of the non-members) and with ``verified_eval_size`` > 0 ``val/verified_acc``
    (certified by the first of ``certified_methods`` that fits in memory, on the same kind of subset).

    Verifiable methods set the class attribute ``certified_methods``; the membership-inference callback then adds
    I_V by default.

    Every checkpoint of it, whoever writes it (``RunCheckpoint``, the preemption callback, ``trainer.save_checkpoint``),
    carries the python, numpy, torch and CUDA generators (``checkpoint["rng"]``), and a fit resumed from it restores
    them where the uninterrupted run stood: on loading a checkpoint taken once an epoch's batches were all processed
    (before the next epoch's loader draws its base seed), else at the next batch's start. The data module saves
    its own shuffling and augmentation generators. Exact from any checkpoint on one device (tested), except with
    loader worker processes (measured).

    Args:
        backbone: the network, (N, C, H, W) in [0, 1] → (N, classes) logits.
        optimizer: ``adam`` or ``sgd`` (momentum ``momentum``).
        lr: initial learning rate.
        momentum: SGD momentum.
        weight_decay: the optimizer's coupled weight decay (PyTorch code of the study: TRADES, dual, DiffAI).
        l2_penalty: coefficient c of c·Σ ½‖W‖² over weight matrices and kernels only, no biases (the study's TF
            models: ``2e-4 * Σ tf.nn.l2_loss(W)``).
        lr_schedule: ``[[milestone, lr], ...]``, piecewise constant, counted in ``schedule_unit``.
        schedule_unit: ``step`` (optimizer steps) or ``epoch``.
        loss_reduction: ``mean`` or ``sum`` of the per-example cross-entropy (the study's Yale/FMNIST TF models sum).
        adv_eval_size: non-members attacked for ``val/adv_acc`` each validation (0: off; 8 at most under
            ``fast_dev_run``, as ``verified_eval_size``).
        adv_eval_eps: l_inf budget of that attack and of the verified accuracy (default: the datamodule's
            ``default_eps``).
        adv_eval_steps: PGD steps of that attack (step 2.5·ε/steps, from the clean input, as the study).
        verified_eval_size: non-members certified for ``val/verified_acc`` each validation (0: off).
        eval_seed: seed of the evaluated subsets.
        memory_format: the backbone's weights (and so its activations) as ``contiguous`` (NCHW) or
            ``channels_last`` (NHWC): the same model, its sums in another order (logits equal to float32 rounding);
            measured in ``benchmarks/train_throughput.py`` and ``benchmarks/callback_overhead.py``.
        scoring_memory_format: the format every scoring pass runs the backbone in (the callback, the audit, the
            references' statistics, ``val/adv_acc`` and ``val/verified_acc``, ``BestRobustCheckpoint``): ``auto``
            (channels_last on the CPU, where it makes an attack step up to 2.4x faster,
            :func:`privrob.memory_format.scoring_memory_format`; the training format elsewhere), ``contiguous`` or
            ``channels_last``. Scores equal to float32 rounding in either (tested). On a GPU with ``compile:
            reduce-overhead``, a format other than the training one re-records the CUDA graphs at every scoring.
        compile: ``torch.compile`` the backbone's forward in this mode (``nn.Module.compile``: the parameters keep
            their names, so checkpoints load either way): the training forward, every attack step and scoring pass
            (``reduce-overhead``: CUDA graphs on a GPU), and IBP's and DiffAI's box training bound as one compiled
            function (:meth:`training_bound`); the zonotope, the dual and certified scoring stay eager. None: eager.
    """

    #: certified bound methods this method reports with, tightest first (empty: not a verifiable method)
    certified_methods: tuple[str, ...] = ()

    def __init__(self, backbone: nn.Module, optimizer: Literal["adam", "sgd"] = "adam", lr: float = 1e-3,
                 momentum: float = 0.9, weight_decay: float = 0.0, l2_penalty: float = 0.0,
                 lr_schedule: Optional[list[tuple[int, float]]] = None,
                 schedule_unit: Literal["step", "epoch"] = "epoch", loss_reduction: Literal["mean", "sum"] = "mean",
                 adv_eval_size: int = 0, adv_eval_eps: Optional[float] = None, adv_eval_steps: int = 20,
                 verified_eval_size: int = 0, eval_seed: int = 0, memory_format: MemoryFormat = "contiguous",
                 scoring_memory_format: ScoringMemoryFormat = "auto", compile: Optional[CompileMode] = None) -> None:
        super().__init__()
        if optimizer not in ("adam", "sgd"):
            raise ValueError(f"`optimizer` can be adam, sgd, got {optimizer!r}")
        if loss_reduction not in ("mean", "sum"):
            raise ValueError(f"`loss_reduction` can be mean, sum, got {loss_reduction!r}")
        if schedule_unit not in ("step", "epoch"):
            raise ValueError(f"`schedule_unit` can be step, epoch, got {schedule_unit!r}")
        for name, value in (("weight_decay", weight_decay), ("l2_penalty", l2_penalty),
                            ("adv_eval_size", adv_eval_size), ("verified_eval_size", verified_eval_size)):
            if value < 0:
                raise ValueError(f"`{name}` must be non-negative, got {value}")
        if memory_format not in MEMORY_FORMATS:
            raise ValueError(f"`memory_format` can be {', '.join(MEMORY_FORMATS)}, got {memory_format!r}")
        if scoring_memory_format not in SCORING_MEMORY_FORMATS:
            raise ValueError(f"`scoring_memory_format` can be {', '.join(SCORING_MEMORY_FORMATS)}, "
                             f"got {scoring_memory_format!r}")
        if compile is not None and compile not in COMPILE_MODES:
            raise ValueError(f"`compile` can be {', '.join(COMPILE_MODES)} or null, got {compile!r}")
        if adv_eval_eps is not None and adv_eval_eps < 0:
            raise ValueError(f"`adv_eval_eps` must be non-negative, got {adv_eval_eps}")
        if lr_schedule:
            piecewise_constant(lr_schedule, lr)
        self.save_hyperparameters(ignore=["backbone"])
        self.backbone = backbone.to(memory_format=MEMORY_FORMATS[memory_format])
        self.scoring_memory_format = scoring_memory_format  # read by privrob.privacy.evaluation.evaluation_mode
        if compile is not None:
            self.backbone.compile(mode=compile)
        self.train_acc, self.val_acc, self.test_acc = MeanMetric(), MeanMetric(), MeanMetric()
        self._pending_rng: Optional[dict] = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)

    # -- what a method overrides ----------------------------------------------------------------------------
    def training_loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The method's loss on a batch and the logits it was computed from (for ``train/acc``)."""
        raise NotImplementedError

    def reset_backbone(self) -> None:
        """A fresh draw of the backbone's initialisation scheme: the draws of the contiguous network in either memory
        format (an ``nn.init`` function fills a tensor in memory order), then the configured format again."""
        self.backbone.to(memory_format=torch.contiguous_format)
        self.backbone.reset_parameters()
        self.backbone.to(memory_format=MEMORY_FORMATS[self.hparams.memory_format])

    # -- shared pieces --------------------------------------------------------------------------------------
    def steps_per_epoch(self) -> int:
        """Optimizer steps per epoch of the running fit (1 outside a Trainer), for schedules given in epochs: its
        batches over ``accumulate_grad_batches``, rounded up (Lightning steps at an epoch's last batch)."""
        if self._trainer is None:
            return 1
        return max(1, -(-int(self.trainer.num_training_batches) // self.trainer.accumulate_grad_batches))

    def ramped_eps(self) -> float:
        """The training ε at the current optimizer step: 0 growing linearly to ``eps`` over ``eps_ramp_steps``
        (the study's Yale PGD ramp; 0 steps: ``eps`` from the start)."""
        return linear_ramp(self.global_step, 0, self.hparams.eps_ramp_steps, 0.0, self.hparams.eps)

    def training_bound(self, x: torch.Tensor, y: torch.Tensor, eps: float, method: str, **kwargs) -> torch.Tensor:
        """The backbone's worst-case logits for a training loss (:func:`privrob.bounds.worst_case_logits`), compiled
        in the ``compile`` mode when one is set for the interval bounds (``ibp``, ``box``, ``crown_ibp``), whose
        layer-by-layer passes are launch-bound on a GPU; the zonotope's generator count changes with the data, so it
        stays eager."""
        compiled = self.hparams.compile is not None and method in ("ibp", "box", "crown_ibp")  # data-independent shapes
        bound = compiled_bound(self.hparams.compile) if compiled else worst_case_logits
        return bound(self.backbone, x, y, eps, method, **kwargs)

    def cross_entropy(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Cross-entropy with the configured reduction."""
        return F.cross_entropy(logits, y, reduction=self.hparams.loss_reduction)

    def weight_penalty(self) -> torch.Tensor:
        """c·Σ ½‖W‖² over the backbone's weight tensors of dimension ≥ 2 (no biases, no batch-norm scales)."""
        c = self.hparams.l2_penalty
        if c == 0:
            return torch.zeros((), device=self.device)
        return c * sum(0.5 * p.pow(2).sum() for p in self.backbone.parameters() if p.dim() > 1)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss, logits = self.training_loss(x, y)
        self.train_acc.update((logits.argmax(dim=1) == y).float())
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, prog_bar=True)
        return loss + self.weight_penalty()

    def _evaluate(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str, metric: MeanMetric) -> None:
        x, y = batch
        logits = self(x)
        metric.update((logits.argmax(dim=1) == y).float())
        self.log(f"{stage}/loss", F.cross_entropy(logits, y), sync_dist=True)
        self.log(f"{stage}/acc", metric, on_step=False, on_epoch=True, prog_bar=stage == "val")

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val", self.val_acc)

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test", self.test_acc)

    def predict_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return F.softmax(self(batch[0]).float(), dim=1)

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            return
        hp = self.hparams
        eps = hp.adv_eval_eps if hp.adv_eval_eps is not None else self.trainer.datamodule.default_eps
        if hp.adv_eval_size:
            attack = Adversarial(eps=eps, steps=hp.adv_eval_steps, rel_step_size=2.5 / hp.adv_eval_steps)
            self.log("val/adv_acc", self._subset_accuracy(attack, hp.adv_eval_size), sync_dist=True, prog_bar=True)
        if hp.verified_eval_size:
            verified = Verified(eps=eps, methods=bound_methods_of(self))
            self.log("val/verified_acc", self._subset_accuracy(verified, hp.verified_eval_size), sync_dist=True,
                     prog_bar=True)

    def _subset_accuracy(self, strategy: Strategy, size: int) -> torch.Tensor:
        """Accuracy under ``strategy`` on a seeded subset of the non-members, exact over all devices."""
        datamodule = self.trainer.datamodule
        nonmembers = datamodule.nonmembers()
        size = min(size, 8) if self.trainer.fast_dev_run else size
        subset = seeded_subset(len(nonmembers), size, self.hparams.eval_seed)
        rows = score_examples(self, nonmembers, shard(subset, self.global_rank, self.trainer.world_size), strategy,
                              datamodule.eval_batch_size, self.device).compute()
        return rows["correct"].double().mean().float()

    # -- exact resume ---------------------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # once the epoch's batches are all processed (its end hooks, the end of fit), not at its last batch's end
        progress = None if self._trainer is None else self.trainer.fit_loop.epoch_progress.current
        at_epoch_end = progress is None or progress.processed == progress.started
        checkpoint["rng"] = {"state": rng.capture(), "at_epoch_end": bool(at_epoch_end)}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        saved = checkpoint.get("rng")
        if saved is None or self._trainer is None or self.trainer.state.fn != TrainerFn.FITTING:
            return  # weights loaded outside a resumed fit leave the generators alone
        if saved["at_epoch_end"]:
            rng.restore(saved["state"])  # before the next epoch's loader is built and draws
        else:
            self._pending_rng = saved["state"]  # the loader is rebuilt at the saved position: restore after it

    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        if self._pending_rng is not None:
            rng.restore(self._pending_rng)
            self._pending_rng = None

    def configure_optimizers(self):
        hp = self.hparams
        if hp.optimizer == "adam":
            opt = torch.optim.Adam(self.parameters(), lr=hp.lr, weight_decay=hp.weight_decay)
        else:
            opt = torch.optim.SGD(self.parameters(), lr=hp.lr, momentum=hp.momentum, weight_decay=hp.weight_decay)
        if not hp.lr_schedule:
            return opt
        scheduler = torch.optim.lr_scheduler.LambdaLR(opt, piecewise_constant(hp.lr_schedule, hp.lr))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": scheduler, "interval": hp.schedule_unit}}
