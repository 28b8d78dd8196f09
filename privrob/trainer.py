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

from privrob.privacy.audit import (budget_sweep, evaluate_membership, figure_title, markdown_table, plot_roc,
                                  plot_secure_losses, secure_split, write_budget_sweep, write_report)
from privrob.privacy.realistic import check_fraction, realistic_report
from privrob.privacy.lira import SIGNALS
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
              secure_by: Optional[str] = None, calibration_fraction: Optional[float] = None) -> dict:
        """Membership-inference audit of a finished model (Song, Shokri, Mittal, CCS 2019).

        Loads ``ckpt_path`` (weights and the member/non-member split saved with it), scores the members and
        non-members with each strategy, prints a table, and writes it as JSON and Markdown next to the
        checkpoint (``<ckpt>.audit.json``/``.md``, or ``output``).

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

        Returns:
            The report per strategy (without raw scores).
        """
        if ckpt_path is None:
            raise ValueError("audit needs --ckpt_path, the checkpoint to audit")
        eps = eps if eps is not None else datamodule.default_eps
        built = [build_strategy(s, eps=eps, attack_steps=attack_steps, attack_rel_step_size=attack_rel_step_size,
                                bound_methods=tuple(bound_methods or bound_methods_of(model)), temperature=temperature)
                 for s in strategies or default_strategies(model)]
        check_audit_args(num_points, attack_eps, secure_by, [s.name for s in built], calibration_fraction)
        checkpoint = load_checkpoint(ckpt_path, weights_only=weights_only is not False)
        load_model_weights(model, checkpoint["state_dict"], ckpt_path)
        dm_state = checkpoint.get(type(datamodule).__qualname__)
        if dm_state:
            datamodule.load_state_dict(dm_state)
        datamodule.setup("test")
        device = self.strategy.root_device
        model.to(device)
        results = evaluate_membership(model, datamodule, built, num_points=num_points, seed=seed, device=device,
                                      progress=self.progress_bar_callback is not None)
        stem = Path(output) if output else Path(ckpt_path).with_suffix(".audit")
        meta = {"checkpoint": str(ckpt_path), "model": type(model).__name__, "data": type(datamodule).__name__,
                "eps": eps, "attack": f"PGD-{attack_steps}, step {attack_rel_step_size:g}*eps, from the clean input",
                "temperature": temperature, "epoch": checkpoint.get("epoch"),
                "global_step": checkpoint.get("global_step")}
        json_path, md_path = write_report(results, stem, meta)
        rank_zero_info(f"Membership-inference audit of {ckpt_path} (eps={eps:g}):\n{markdown_table(results)}\n"
                       f"written to {json_path} and {md_path}")
        out = {name: {k: v for k, v in r.items() if k != "scores"} for name, r in results.items()}
        run = Path(self.default_root_dir).resolve().name
        if secure_by:
            split = secure_split(results, by=secure_by)
            (stem.parent / f"{stem.name}.secure.json").write_text(json.dumps(split, indent=2) + "\n")
            plot_secure_losses(results, stem.parent / f"{stem.name}.secure.png", by=secure_by,
                               title=figure_title(run, model, [secure_by], eps))
            rank_zero_info(f"secure vs insecure by {secure_by}: {json.dumps(split)}")
            out["secure_vs_insecure"] = split
        if calibration_fraction is not None:
            realistic = {}
            pool = {"members": datamodule.member_indices, "nonmembers": datamodule.nonmember_indices}
            for name, r in results.items():
                labels = {part: datamodule.labels[pool[part]][r["scores"][part]["ids"]] for part in pool}
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

    def lira(self, model: pl.LightningModule, datamodule: pl.LightningDataModule, ckpt_path: Optional[str] = None,
             num_reference: int = 4, reference_epochs: int = 10, seed: int = 0, output: Optional[str] = None,
             signals: Optional[list[str]] = None, eps: Optional[float] = None, attack_steps: int = 20,
             weights_only: Optional[bool] = None) -> dict:
        """LiRA (Carlini et al. 2022) and RMIA (Zarifzadeh et al. 2024) against a finished model: trains
        ``num_reference`` reference models by the same method (the config's model, freshly initialised) on random
        halves of the target's data pool (its members and non-members), then reports online and offline LiRA and
        RMIA on the target's members vs non-members (:func:`~privrob.privacy.functional.attack_report`: AUC, TPR at
        0.1%, 1% and the lowest resolved FPR, balanced accuracy) beside the study's threshold attack on the same
        statistic φ (``threshold phi``: I_B's or I_A's order of examples, without the float32 softmax's ties at 1),
        per signal, written to ``<ckpt>.lira.json``, with their ROC curves on log-log axes in ``<ckpt>.lira.png``.
        Pr(x|θ) of RMIA is the softmax probability of the true label at temperature 1, sigmoid(φ); its population is
        the target's non-members, its offline a chosen on the references. In practice the reference runs are a SLURM
        array.

        Args:
            model: the run's model, as its config builds it.
            datamodule: the run's data, as its config builds it.
            ckpt_path: the target checkpoint (required).
            num_reference: K reference models, in complementary pairs of halves (each example is in K/2 of them
                for even K).
            reference_epochs: epochs of each reference run.
            seed: seed of the halves and of the reference initialisations.
            output: path stem of the report (default: next to the checkpoint).
            signals: the inputs φ is measured on: ``clean``, and ``adversarial`` (the study's evaluation attack,
                PGD-``attack_steps`` at ``eps``, against each model scored: the target and every reference); default
                ``[clean]``.
            eps: the adversarial signal's l_inf budget (default: the datamodule's ``default_eps``).
            attack_steps: its PGD steps (step 2.5·ε/steps, from the clean input, as the study).
            weights_only: ``torch.load``'s; None means True.
        """
        from privrob.privacy.functional import attack_report
        from privrob.privacy.lira import lira_scores, statistics
        from privrob.privacy.rmia import choose_offline_a, rmia_scores

        signals = list(signals or ["clean"])
        if ckpt_path is None:
            raise ValueError("lira needs --ckpt_path, the target checkpoint")
        if num_reference < 3:
            raise ValueError(f"`num_reference` must be at least 3 (RMIA's offline a is chosen by letting each "
                             f"reference play the target against the others), got {num_reference}")
        if not signals or len(set(signals)) != len(signals) or not set(signals) <= set(SIGNALS):
            raise ValueError(f"`signals` can be distinct values of {', '.join(SIGNALS)}, got {signals}")
        eps = eps if eps is not None else datamodule.default_eps
        inputs = {"clean": build_strategy("I_B", eps=eps),
                  "adversarial": build_strategy("I_A", eps=eps, attack_steps=attack_steps,
                                                attack_rel_step_size=2.5 / attack_steps)}
        template = copy.deepcopy(model).cpu()
        checkpoint = load_checkpoint(ckpt_path, weights_only=weights_only is not False)
        load_model_weights(model, checkpoint["state_dict"], ckpt_path)
        if checkpoint.get(type(datamodule).__qualname__):
            datamodule.load_state_dict(checkpoint[type(datamodule).__qualname__])
        datamodule.setup("fit")
        pool = torch.cat([datamodule.member_indices, datamodule.nonmember_indices])
        is_member = torch.arange(len(pool)) < len(datamodule.member_indices)
        images = torch.stack([datamodule._dataset(pool)[i][0] for i in range(len(pool))])
        labels = datamodule.labels[pool]
        # halves in complementary pairs, so that each example is in about half of the models, and in and out of
        # at least one each
        generator = torch.Generator().manual_seed(seed)
        halves = []
        for k in range(num_reference):
            halves.append(~halves[-1] if k % 2 else torch.randperm(len(pool), generator=generator) < len(pool) // 2)
        inside = torch.stack(halves)
        reference = {signal: [] for signal in signals}
        for k in range(num_reference):
            torch.manual_seed(seed + k)
            ref = copy.deepcopy(template)
            ref.backbone.reset_parameters()  # a fresh draw of the config's initialisation scheme
            ref_data = copy.copy(datamodule)
            ref_data.member_indices, ref_data.nonmember_indices = pool[inside[k]], pool[~inside[k]]
            ref_data.forget_generators()  # its own shuffling and augmentation, seeded by seed + k
            pl.Trainer(accelerator=self.strategy.root_device.type, devices=1, max_epochs=reference_epochs,
                       gradient_clip_val=self.gradient_clip_val, gradient_clip_algorithm=self.gradient_clip_algorithm,
                       logger=False, enable_checkpointing=False, enable_progress_bar=False,
                       enable_model_summary=False, limit_val_batches=0, num_sanity_val_steps=0).fit(ref, ref_data)
            for signal in signals:
                reference[signal].append(statistics(ref, images, labels, signal=inputs[signal]))
        model.to(self.strategy.root_device)
        scores, offline_a = {}, {}
        for signal in signals:
            target, ref_phi = statistics(model, images, labels, signal=inputs[signal]), torch.stack(reference[signal])
            # φ = log(p / (1 − p)) of the true label: RMIA's Pr(x|θ) at temperature 1 is its sigmoid
            offline_a[signal] = choose_offline_a(ref_phi.sigmoid(), inside)
            scores[signal] = {
                "lira": lira_scores(target, ref_phi, inside),
                "rmia": rmia_scores(target.sigmoid(), ref_phi.sigmoid(), inside, torch.nonzero(~is_member).squeeze(1),
                                    offline_a=offline_a[signal]),
                "threshold": {"phi": target}}  # the study's attack on φ: Pr(x|θ)'s order, without float32 ties
        report = {signal: {attack: {name: attack_report(s[is_member], s[~is_member]) for name, s in variants.items()}
                           for attack, variants in attacks.items()} for signal, attacks in scores.items()}
        stem = Path(output) if output else Path(ckpt_path).with_suffix("")
        path = stem.parent / f"{stem.name}.lira.json"
        curves = {f"{signal} {attack} {name}": (s[is_member], s[~is_member]) for signal, attacks in scores.items()
                  for attack, variants in attacks.items() for name, s in variants.items()}
        plot_roc(curves, stem.parent / f"{stem.name}.lira.png", figure_title(
            Path(ckpt_path).resolve().parent.parent.name, model, ["LiRA", "RMIA", "threshold"],
            f"{eps:g} ({', '.join(signals)} signal)" if "adversarial" in signals else "none (clean signal)"))
        path.write_text(json.dumps({"checkpoint": str(ckpt_path), "num_reference": num_reference,
                                    "reference_epochs": reference_epochs, "eps": eps, "attack_steps": attack_steps,
                                    "rmia_offline_a": offline_a, **report}, indent=2) + "\n")
        rank_zero_info(f"LiRA and RMIA with {num_reference} reference models: " + "; ".join(
            f"{signal} {attack} {name} AUC {r['auc']:.4f}, TPR@1%FPR {r['tpr@1%fpr']:.4f}"
            for signal, attacks in report.items() for attack, variants in attacks.items()
            for name, r in variants.items()) + f"; written to {path}")
        return report
