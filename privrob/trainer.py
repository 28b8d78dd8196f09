"""privrob's Trainer: Lightning's, plus an ``audit`` method that LightningCLI exposes as a subcommand."""

from __future__ import annotations

import copy
import json
import re
import zipfile
from pathlib import Path
from typing import Optional

import pytorch_lightning as pl
import torch
from pytorch_lightning.loops.fit_loop import _FitLoop
from pytorch_lightning.loops.loop import _Loop
from pytorch_lightning.utilities import rank_zero_info

from privrob.methods.base import EXECUTION_SETTINGS
from privrob.privacy.audit import (budget_sweep, evaluate_membership, figure_title, markdown_table, plot_roc,
                                  plot_secure_losses, secure_split, write_budget_sweep, write_report)
from privrob.privacy.functional import membership_report
from privrob.privacy.lira import SIGNALS
from privrob.privacy.realistic import calibrated_accuracy, check_fraction, realistic_report
from privrob.privacy.strategies import bound_methods_of, build_strategy, default_strategies


def load_checkpoint(path: str, weights_only: bool = True) -> dict:
    """``torch.load`` (``weights_only=True`` by default) of a Lightning checkpoint, with one-line errors for a missing
    file, a file that is not one, and a checkpoint holding objects that safe loading refuses."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"checkpoint not found: {p}")
    try:
        checkpoint = torch.load(p, map_location="cpu", weights_only=weights_only)
    except Exception as err:  # torch.load raises many types for a file it cannot read
        refused = re.search(r"WeightsUnpickler error: (.*)", str(err))
        reason = (f"it holds objects that weights_only loading refuses ({refused[1].strip()})" if refused
                  and zipfile.is_zipfile(p) else "not a file written by torch.save")
        raise ValueError(f"cannot load checkpoint {p}: {reason}") from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ValueError(f"{p} is not a Lightning checkpoint (no 'state_dict')")
    return checkpoint


def load_model_weights(model: torch.nn.Module, state_dict: dict, path: str) -> None:
    """Load ``state_dict`` into ``model``; a checkpoint of another architecture gives a one-line error."""
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    mismatched = [k for k in own if k in state_dict and own[k].shape != state_dict[k].shape]
    if missing or unexpected or mismatched:
        first = (mismatched or missing or unexpected)[0]
        raise ValueError(f"checkpoint {path} holds another architecture than the configured model "
                         f"({len(mismatched)} tensors of other shapes, {len(missing)} missing, {len(unexpected)} "
                         f"unexpected; first: {first})")
    model.load_state_dict(state_dict)


def check_audit_args(num_points: Optional[int], attack_eps: Optional[list[float]], secure_by: Optional[str],
                     strategies: list[str], calibration_fraction: Optional[float]) -> None:
    """Refuse bad audit options before any scoring: their uses come after the whole audit has run."""
    if num_points is not None and num_points < 1:
        raise ValueError(f"`num_points` must be at least 1 or null (all), got {num_points}")
    bad = [e for e in attack_eps or [] if not e >= 0]
    if bad:
        raise ValueError(f"`attack_eps` values must be non-negative, got {bad[0]}")
    if secure_by is not None and secure_by not in strategies:
        raise ValueError(f"`secure_by` can be one of the audited strategies, {', '.join(strategies)}; "
                         f"got {secure_by!r}")
    if calibration_fraction is not None:
        check_fraction(calibration_fraction, "calibration_fraction")


def restore_split(datamodule, checkpoint: dict) -> torch.Tensor:
    """Set ``datamodule`` up with the member/non-member split saved in ``checkpoint`` (its own seed's split if the
    checkpoint holds none); returns the pool: the members' indices, then the non-members'."""
    state = checkpoint.get(type(datamodule).__qualname__)
    if state:
        datamodule.load_state_dict(state)
    datamodule.setup("test")
    return torch.cat([datamodule.member_indices, datamodule.nonmember_indices])


def scored_labels(datamodule, result: dict, part: str) -> torch.Tensor:
    """The labels of the ``members`` or ``nonmembers`` a strategy scored, in the order of its scores."""
    indices = datamodule.member_indices if part == "members" else datamodule.nonmember_indices
    return datamodule.labels[indices][result["scores"][part]["ids"]]


def check_signals(signals: Optional[list[str]]) -> list[str]:
    """The reference attacks' signals (default ``[clean]``), refused unless distinct values of :data:`SIGNALS`."""
    signals = list(signals) if signals is not None else ["clean"]
    if not signals or len(set(signals)) != len(signals) or not set(signals) <= set(SIGNALS):
        raise ValueError(f"`signals` can be distinct values of {', '.join(SIGNALS)}, got {signals}")
    return signals


class _EpochEndResumingFitLoop(_FitLoop):
    """Lightning's fit loop, except that a checkpoint taken once an epoch's batches were all processed (a periodic or
    final ``last.ckpt``) resumes at the next epoch under ``max_steps`` too. Lightning 2.x counts every resume of
    step-based training as a restart: it reloads the finished epoch's exhausted loader, trains an empty epoch that
    counts as one, and runs that epoch's end again (another membership-inference row, another save)."""

    @_Loop.restarting.setter
    def restarting(self, restarting: bool) -> None:
        progress = self.epoch_progress.current  # Lightning's test, without its `or self._iteration_based_training()`
        epoch_unfinished = any(v != progress.processed for v in (progress.ready, progress.started))
        _Loop.restarting.fset(self, restarting and epoch_unfinished)


class PrivrobTrainer(pl.Trainer):
    """:class:`pytorch_lightning.Trainer` with :meth:`audit`, and exact resume from epoch-end checkpoints also in
    step-based training (:class:`_EpochEndResumingFitLoop`)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        epoch_loop = self.fit_loop.epoch_loop
        self.fit_loop = _EpochEndResumingFitLoop(self, min_epochs=self.fit_loop.min_epochs,
                                                 max_epochs=self.fit_loop.max_epochs)
        self.fit_loop.epoch_loop = epoch_loop

    def audit(self, model: pl.LightningModule, datamodule: pl.LightningDataModule,
              ckpt_path: Optional[str] = None, strategies: Optional[list[str]] = None,
              eps: Optional[float] = None, attack_steps: int = 20, attack_rel_step_size: float = 2.5 / 20,
              num_points: Optional[int] = None, seed: int = 0, output: Optional[str] = None,
              weights_only: Optional[bool] = None, bound_methods: Optional[list[str]] = None,
              temperature: float = 1.0, attack_eps: Optional[list[float]] = None,
              secure_by: Optional[str] = None, calibration_fraction: Optional[float] = None,
              references: Optional[str] = None, signals: Optional[list[str]] = None,
              shadow: Optional[int] = None) -> dict:
        """Membership-inference audit of a finished model (Song, Shokri, Mittal, CCS 2019).

        Loads ``ckpt_path`` (weights and the member/non-member split saved with it), scores the members and
        non-members with each strategy (and, with ``references``, with LiRA and RMIA), prints a table, and writes it
        as JSON and Markdown next to the checkpoint (``<ckpt>.audit.json``/``.md``, or ``output``), with every
        attack's ROC on log-log axes (``<stem>.roc.png``).

        Args:
            model: the run's model, as its config builds it.
            datamodule: the run's data, as its config builds it.
            ckpt_path: the checkpoint to audit (required).
            strategies: membership-inference strategies (default I_B, I_A, and I_V for verifiable methods).
            eps: l_inf budget of I_A's attack (default: the datamodule's, the study's).
            attack_steps: PGD steps of I_A's attack (the study's 20).
            attack_rel_step_size: PGD step as a multiple of eps (the study's 2.5 / 20).
            num_points: members and non-members evaluated, each (None: all, as the study).
            seed: seed of those subsets.
            output: path stem of the report files.
            weights_only: ``torch.load``'s; None means True (a saved fit config carries this key).
            bound_methods: certified methods for I_V, tried in order until one fits (default: the model's).
            temperature: score softmax(logits / T), the released confidences under temperature scaling.
            attack_eps: also sweep I_A over these attack budgets (``<stem>.budget.csv`` and ``.png``).
            secure_by: also split examples into secure and insecure by this strategy's correctness (``I_A``, or
                ``I_V`` for certified), with each strategy's accuracy per group (``<stem>.secure.json``) and the
                loss histograms of secure and insecure non-members (``<stem>.secure.png``).
            calibration_fraction: also report a realistic attacker: thresholds (global and per class) calibrated on
                this seeded fraction of the evaluated members and non-members, their accuracy on the rest beside the
                oracle's, and Song & Mittal's risk scores (``<stem>.realistic.json``).
            references: a folder of reference models of this checkpoint (``privrob references``): also online and
                offline LiRA and RMIA, and the threshold on their statistic φ, on each signal, as rows of the table
                (at temperature 1: φ and RMIA's Pr(x|θ) = sigmoid(φ) are the model's own).
            signals: the inputs of those attacks, ``clean`` and ``adversarial`` (I_A's attack, with this audit's
                ``eps``, ``attack_steps`` and ``attack_rel_step_size``, against each scored model: the target and
                every reference); default ``[clean]``.
            shadow: also a shadow-model attacker: the strategies' thresholds (global and per class) calibrated on
                reference ``shadow``'s own members and non-members, scored by it, and applied to the target's, beside
                the oracle's (``<stem>.shadow.json``).

        Returns:
            The report per strategy (without raw scores).
        """
        from privrob.privacy.references import load_folder

        if ckpt_path is None:
            raise ValueError("audit needs --ckpt_path, the checkpoint to audit")
        eps = eps if eps is not None else datamodule.default_eps
        built = [build_strategy(s, eps=eps, attack_steps=attack_steps, attack_rel_step_size=attack_rel_step_size,
                                bound_methods=tuple(bound_methods or bound_methods_of(model)), temperature=temperature)
                 for s in strategies or default_strategies(model)]
        check_audit_args(num_points, attack_eps, secure_by, [s.name for s in built], calibration_fraction)
        signals = check_signals(signals)
        if (signals != ["clean"] or shadow is not None) and references is None:
            raise ValueError("`signals` and `shadow` need `references`, a folder of reference models")
        checkpoint = load_checkpoint(ckpt_path, weights_only=weights_only is not False)
        load_model_weights(model, checkpoint["state_dict"], ckpt_path)
        pool = restore_split(datamodule, checkpoint)
        saved = load_folder(Path(references), pool) if references is not None else None
        if shadow is not None and not 0 <= shadow < saved["num_reference"]:
            raise ValueError(f"`shadow` is the index of a reference in {references}, 0 to "
                             f"{saved['num_reference'] - 1}; got {shadow}")
        device = self.strategy.root_device
        # every reference loaded (and checked against the config) before any scoring
        reference_models = [self._load_reference(model, path, device, weights_only) for path in
                            saved["paths"]] if saved is not None else []
        model.to(device)
        results = evaluate_membership(model, datamodule, built, num_points=num_points, seed=seed, device=device,
                                      progress=self.progress_bar_callback is not None)
        stem = Path(output) if output else Path(ckpt_path).with_suffix(".audit")
        meta = {"checkpoint": str(ckpt_path), "model": type(model).__name__, "data": type(datamodule).__name__,
                "eps": eps, "attack": f"PGD-{attack_steps}, step {attack_rel_step_size:g}*eps, from the clean input",
                "temperature": temperature, "epoch": checkpoint.get("epoch"),
                "global_step": checkpoint.get("global_step")}
        curves = {name: (r["scores"]["members"]["scores"], r["scores"]["nonmembers"]["scores"])
                  for name, r in results.items()}
        table = dict(results)
        if saved is not None:
            rows, reference_curves, reference_meta = self._reference_attacks(
                model, reference_models, datamodule, pool, saved, results, signals, eps=eps,
                attack_steps=attack_steps, attack_rel_step_size=attack_rel_step_size)
            table.update(rows)
            curves.update(reference_curves)
            meta.update({"references": str(references), **reference_meta})
        shadow_report = None if shadow is None else self._shadow_report(
            reference_models[shadow], datamodule, pool, saved["inside"][shadow], shadow, built, results,
            num_points=num_points, seed=seed, device=device)  # before any report is written
        json_path, md_path = write_report(table, stem, meta)
        run = Path(self.default_root_dir).resolve().name
        roc_path = plot_roc(curves, stem.parent / f"{stem.name}.roc.png",
                            figure_title(run, model, [*results, *(["LiRA", "RMIA"] if saved else [])], eps))
        rank_zero_info(f"Membership-inference audit of {ckpt_path} (eps={eps:g}):\n{markdown_table(table)}\n"
                       f"written to {json_path}, {md_path} and {roc_path}")
        out = {name: {k: v for k, v in r.items() if k != "scores"} for name, r in table.items()}
        if shadow_report is not None:
            out["shadow"] = shadow_report
            (stem.parent / f"{stem.name}.shadow.json").write_text(json.dumps(shadow_report, indent=2) + "\n")
            rank_zero_info(f"shadow-model attacker (reference {shadow}): " + ", ".join(
                f"{name} {v['calibrated_accuracy']:.4f} (oracle {v['oracle_accuracy']:.4f})"
                for name, v in out["shadow"].items() if name != "shadow"))
        if secure_by:
            split = secure_split(results, by=secure_by)
            (stem.parent / f"{stem.name}.secure.json").write_text(json.dumps(split, indent=2) + "\n")
            plot_secure_losses(results, stem.parent / f"{stem.name}.secure.png", by=secure_by,
                               title=figure_title(run, model, [secure_by], eps))
            rank_zero_info(f"secure vs insecure by {secure_by}: {json.dumps(split)}")
            out["secure_vs_insecure"] = split
        if calibration_fraction is not None:
            realistic = {}
            for name, r in results.items():
                labels = {part: scored_labels(datamodule, r, part) for part in ("members", "nonmembers")}
                realistic[name] = realistic_report(
                    r["scores"]["members"]["scores"], r["scores"]["nonmembers"]["scores"], fraction=calibration_fraction,
                    seed=seed, member_labels=labels["members"], nonmember_labels=labels["nonmembers"])
            (stem.parent / f"{stem.name}.realistic.json").write_text(json.dumps(realistic, indent=2) + "\n")
            rank_zero_info("realistic attacker (calibrated on held-out data): " + ", ".join(
                f"{name} {v['calibrated_accuracy']:.4f} (oracle {v['oracle_accuracy']:.4f})"
                for name, v in realistic.items()))
            out["realistic"] = realistic
        if attack_eps:
            rows = budget_sweep(model, datamodule, attack_eps, attack_steps=attack_steps,
                                attack_rel_step_size=attack_rel_step_size, temperature=temperature,
                                num_points=num_points, seed=seed, device=device)
            sweep_csv, sweep_png = write_budget_sweep(
                rows, stem.parent / f"{stem.name}.budget", getattr(model, "hparams", {}).get("eps"),
                figure_title(run, model, ["I_A"], f"{min(attack_eps):g} to {max(attack_eps):g}"))
            rank_zero_info("I_A by attack budget:\n" + "\n".join(
                f"  eps {r['eps']:g}: accuracy {r['accuracy']:.4f}, adversarial test accuracy {r['test_acc']:.4f}"
                for r in rows) + f"\nwritten to {sweep_csv} and {sweep_png}")
            out["budget_sweep"] = rows
        return out

    @staticmethod
    def _reference_attacks(model: pl.LightningModule, references: list[pl.LightningModule],
                           datamodule: pl.LightningDataModule, pool: torch.Tensor, saved: dict, results: dict,
                           signals: list[str], eps: float, attack_steps: int, attack_rel_step_size: float
                           ) -> tuple[dict, dict, dict]:
        """The rows, ROC curves and meta of LiRA, RMIA and the threshold on φ per signal, on the examples the audit's
        strategies scored (the clean signal: the input as given; the adversarial one: I_A's attack)."""
        from privrob.privacy.references import reference_attacks

        inputs = {"clean": build_strategy("I_B", eps=eps),
                  "adversarial": build_strategy("I_A", eps=eps, attack_steps=attack_steps,
                                                attack_rel_step_size=attack_rel_step_size)}
        scored = next(iter(results.values()))["scores"]
        # the evaluated members and non-members, as positions in the pool (members first)
        positions = torch.cat([scored["members"]["ids"],
                               len(datamodule.member_indices) + scored["nonmembers"]["ids"]])
        is_member = torch.arange(len(positions)) < len(scored["members"]["ids"])
        dataset = datamodule._dataset(pool[positions])
        images = torch.stack([dataset[i][0] for i in range(len(dataset))])
        scores, offline_a = reference_attacks(model, references, images, datamodule.labels[pool[positions]],
                                              saved["inside"][:, positions], is_member,
                                              {name: inputs[name] for name in signals})
        rows = {name: {"train_acc": None, "test_acc": None, **membership_report(s[is_member], s[~is_member])}
                for name, s in scores.items()}
        curves = {name: (s[is_member], s[~is_member]) for name, s in scores.items()}
        meta = {"num_reference": saved["num_reference"], "reference_training_set": saved["training_set"],
                "reference_seed": saved["seed"], "reference_training": saved["training"],
                "reference_in_fraction": float(saved["inside"].double().mean()),
                "reference_sizes": saved["inside"].sum(1).tolist(), "signals": signals, "rmia_offline_a": offline_a,
                "lira_offline_score": "log_ndtr"}   # log Φ (privrob.privacy.lira; Φ itself before commit 1989431)
        return rows, curves, meta

    @staticmethod
    def _load_reference(model: pl.LightningModule, path: Path, device: torch.device,
                        weights_only: Optional[bool]) -> pl.LightningModule:
        reference = copy.deepcopy(model)
        load_model_weights(reference, load_checkpoint(str(path), weights_only is not False)["state_dict"], str(path))
        return reference.to(device)

    @staticmethod
    def _shadow_report(shadow_model: pl.LightningModule, datamodule: pl.LightningDataModule, pool: torch.Tensor,
                       inside: torch.Tensor, shadow: int, strategies: list, results: dict, **kwargs) -> dict:
        """Each strategy's thresholds (global and per class) calibrated on reference ``shadow``'s own members and
        non-members (``inside``; as many of each as the target's audit, seeded alike), scored by that model, and
        their accuracy on the target's audited scores beside the oracle's."""
        shadow_data = copy.copy(datamodule)
        shadow_data.member_indices, shadow_data.nonmember_indices = pool[inside], pool[~inside]
        calibration = evaluate_membership(shadow_model, shadow_data, strategies, **kwargs)
        report = {"shadow": {"reference": shadow, "members": int(inside.sum()), "nonmembers": int((~inside).sum())}}
        parts = ("members", "nonmembers")
        for name, r in results.items():
            c = calibration[name]
            report[name] = calibrated_accuracy(
                *(c["scores"][p]["scores"] for p in parts), *(r["scores"][p]["scores"] for p in parts),
                *(scored_labels(shadow_data, c, p) for p in parts), *(scored_labels(datamodule, r, p) for p in parts))
        return report

    def references(self, model: pl.LightningModule, datamodule: pl.LightningDataModule,
                   ckpt_path: Optional[str] = None, output_dir: Optional[str] = None, num_reference: int = 4,
                   training_set: str = "half", reference_epochs: Optional[int] = None, seed: int = 0,
                   index: Optional[int] = None, weights_only: Optional[bool] = None) -> str:
        """Train the reference models of LiRA, RMIA and the shadow threshold for the target ``ckpt_path``: K models by
        the run's config (its method and network, freshly initialised, its epochs unless ``reference_epochs``), each on
        a seeded part of the target's pool (members and non-members), saved with the masks in ``output_dir``
        (:mod:`privrob.privacy.references`). Resumable: a reference already saved there is reused, never trained
        again. ``index`` trains that one reference only (a task of ``sbatch/references.sh``'s SLURM array).

        Args:
            ckpt_path: the target checkpoint (its member/non-member split is the pool; required).
            output_dir: the references folder (default: ``<ckpt>.references`` beside the checkpoint).
            num_reference: K, at least 3.
            training_set: ``half`` (complementary seeded halves of the pool) or ``target_size`` (each example in
                round(K·members/pool) of the K references: training sets of about the target's size).
            reference_epochs: epochs of each reference (default: the config's ``max_epochs`` and ``max_steps``).
            seed: seed of the masks; reference k is initialised and trained under seed + k.
            index: train only reference ``index``.
            weights_only: ``torch.load``'s; None means True.

        Returns:
            The references folder.
        """
        from privrob.privacy.references import (check_design, check_options, open_folder, reference_path,
                                                save_atomically)

        if ckpt_path is None:
            raise ValueError("references needs --ckpt_path, the target checkpoint whose split is the pool")
        check_options(num_reference, training_set, index, reference_epochs)
        if self.num_devices > 1:
            raise ValueError("references trains each model on one device (a SLURM array trains them in parallel): "
                             "run it with --trainer.devices 1, and the target's batch size if it trained on several")
        checkpoint = load_checkpoint(ckpt_path, weights_only=weights_only is not False)
        template = copy.deepcopy(model).cpu()
        load_model_weights(copy.deepcopy(template), checkpoint["state_dict"], ckpt_path)  # the config is the target's
        pool = restore_split(datamodule, checkpoint)
        check_design(num_reference, training_set, len(pool), len(datamodule.member_indices))
        limits = ({"max_epochs": reference_epochs} if reference_epochs is not None else
                  {"max_epochs": self.fit_loop.max_epochs, "max_steps": self.max_steps})
        settings = {"precision": self.precision, "accumulate_grad_batches": self.accumulate_grad_batches,
                    "gradient_clip_val": self.gradient_clip_val,
                    "gradient_clip_algorithm": self.gradient_clip_algorithm}
        folder = Path(output_dir) if output_dir else Path(ckpt_path).with_suffix(".references")
        options = {"num_reference": num_reference, "training_set": training_set, "seed": seed,
                   "method": type(model).__name__, "network": type(model.backbone).__name__,
                   "hparams": {k: repr(v) for k, v in model.hparams.items() if k not in EXECUTION_SETTINGS},
                   "shapes": {k: list(v.shape) for k, v in template.state_dict().items()},
                   "training": {k: repr(v) for k, v in {**limits, **settings}.items()}}
        inside = open_folder(folder, pool, len(datamodule.member_indices), options)
        for k in [index] if index is not None else range(num_reference):
            path = reference_path(folder, k)
            if path.exists():
                rank_zero_info(f"reference {k}: reusing {path}")
                continue
            pl.seed_everything(seed + k, verbose=False)
            ref = copy.deepcopy(template)
            ref.reset_backbone()  # a fresh draw of the config's initialisation scheme
            ref_data = copy.copy(datamodule)
            ref_data.member_indices, ref_data.nonmember_indices = pool[inside[k]], pool[~inside[k]]
            ref_data.forget_generators()  # its own shuffling and augmentation, seeded by seed + k
            trainer = pl.Trainer(accelerator=self.strategy.root_device.type, devices=1, **limits, **settings,
                                 logger=False, enable_checkpointing=False, enable_progress_bar=False,
                                 enable_model_summary=False, limit_val_batches=0, num_sanity_val_steps=0)
            trainer.fit(ref, ref_data)
            save_atomically(trainer.save_checkpoint, path)
            rank_zero_info(f"reference {k}: trained on {int(inside[k].sum())} of {len(pool)} examples, saved {path}")
        return str(folder)

    def lira(self, model: pl.LightningModule, datamodule: pl.LightningDataModule, ckpt_path: Optional[str] = None,
             num_reference: int = 4, training_set: str = "half", reference_epochs: Optional[int] = None,
             seed: int = 0, output: Optional[str] = None, signals: Optional[list[str]] = None,
             eps: Optional[float] = None, attack_steps: int = 20, weights_only: Optional[bool] = None,
             output_dir: Optional[str] = None) -> dict:
        """LiRA and RMIA in one call: :meth:`references` (into ``output_dir``, default ``<ckpt>.references``, reused
        when there) then :meth:`audit` with ``--references``, strategy I_B beside them, the adversarial signal's PGD
        step 2.5·ε/``attack_steps`` (report ``<ckpt>.lira.json``, ``.md``, ``.roc.png``). Arguments as theirs."""
        if ckpt_path is None:
            raise ValueError("lira needs --ckpt_path, the target checkpoint")
        if attack_steps < 1:
            raise ValueError(f"`attack_steps` must be at least 1, got {attack_steps}")
        check_signals(signals)
        # the adversarial signal's options, refused now rather than after the references have trained
        build_strategy("I_A", eps=eps if eps is not None else datamodule.default_eps, attack_steps=attack_steps,
                       attack_rel_step_size=2.5 / attack_steps)
        stem = Path(output) if output else Path(ckpt_path).with_suffix(".lira")
        folder = self.references(copy.deepcopy(model), datamodule, ckpt_path=ckpt_path, output_dir=output_dir,
                                 num_reference=num_reference, training_set=training_set,
                                 reference_epochs=reference_epochs, seed=seed, weights_only=weights_only)
        return self.audit(model, datamodule, ckpt_path=ckpt_path, strategies=["I_B"], eps=eps,
                          attack_steps=attack_steps, attack_rel_step_size=2.5 / attack_steps, seed=seed,
                          output=str(stem), weights_only=weights_only, references=folder, signals=signals)
