import csv
import os
import signal

import pytest
import torch
from pytorch_lightning import Callback

from callbacks import MembershipInference
from privrob.data import DigitsDataModule
from privrob.methods import NaturalTraining
from privrob.models import DigitsCNN
from privrob.privacy import membership_report, seeded_subset
from privrob.privacy.audit import evaluate_membership
from privrob.privacy.strategies import build_strategy
from tests.conftest import quiet_trainer

NUM_POINTS = 101  # odd: the two ranks get shards of 51 and 50


class RecordingMI(MembershipInference):
    """Writes what each rank gathered, so the test can look inside the spawned processes."""

    def __init__(self, out_dir, **kwargs):
        super().__init__(**kwargs)
        self.out_dir = out_dir

    def on_train_epoch_end(self, trainer, pl_module):
        super().on_train_epoch_end(trainer, pl_module)
        torch.save({name: r["scores"] for name, r in self.last_results.items()},
                   f"{self.out_dir}/rank{trainer.global_rank}.pt")


def _callback(tmp_path, cls=MembershipInference, **kwargs):
    return cls(strategies=["I_B", "I_A"], num_points=NUM_POINTS, eps=0.1, attack_steps=5, dirpath=str(tmp_path),
               quick_when_limited=False, **kwargs)  # limited epochs, all NUM_POINTS scored


def test_two_processes_give_the_single_process_numbers(tmp_path):
    torch.manual_seed(0)
    dm = DigitsDataModule(batch_size=32, seed=0)
    model = NaturalTraining(DigitsCNN(width=1), lr=3e-3)
    trainer = quiet_trainer(max_epochs=1, limit_train_batches=4, limit_val_batches=0, devices=2,
                            strategy="ddp_spawn", callbacks=[_callback(tmp_path, RecordingMI, out_dir=tmp_path)])
    trainer.fit(model, dm)
    logged = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("privacy/")}

    dm.setup()
    expected_ids = {"members": seeded_subset(len(dm.members()), NUM_POINTS, 0),
                    "nonmembers": seeded_subset(len(dm.nonmembers()), NUM_POINTS, 1)}
    single = evaluate_membership(model.eval(), dm, [build_strategy("I_B", eps=0.1),
                                                    build_strategy("I_A", eps=0.1, attack_steps=5)],
                                 num_points=NUM_POINTS, seed=0)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    for name in ("I_B", "I_A"):
        for part in ("members", "nonmembers"):
            for gathered in ranks:  # every rank holds the full set exactly once
                ids = gathered[name][part]["ids"]
                assert torch.equal(ids, expected_ids[part]), (name, part)
                assert torch.allclose(gathered[name][part]["scores"], single[name]["scores"][part]["scores"],
                                      atol=1e-6)
        g = ranks[0][name]
        report = membership_report(g["members"]["scores"], g["nonmembers"]["scores"])
        for key in ("accuracy", "advantage", "auc", "tpr@1%fpr"):
            assert logged[f"privacy/{name}/{key}"] == pytest.approx(report[key], abs=1e-6)
    assert (tmp_path / "privacy_curve.csv").is_file() and (tmp_path / "privacy_curve.png").is_file()


def test_curve_schedule_mode_and_gradients(tmp_path):
    torch.manual_seed(0)
    dm = DigitsDataModule(batch_size=64, seed=0)
    model = NaturalTraining(DigitsCNN(width=1), lr=3e-3)
    seen = {}

    class Probe(Callback):
        def __init__(self, when):
            self.when = when

        def on_train_epoch_end(self, trainer, pl_module):
            seen[(trainer.current_epoch, self.when)] = (
                pl_module.training, [None if p.grad is None else p.grad.clone() for p in pl_module.parameters()])

    cb = _callback(tmp_path, every_n_epochs={"I_A": 2})
    quiet_trainer(max_epochs=3, limit_train_batches=3, callbacks=[Probe("before"), cb, Probe("after")]).fit(model, dm)
    rows = list(csv.DictReader(open(tmp_path / "privacy_curve.csv")))
    assert [(r["epoch"], r["strategy"]) for r in rows] == [
        ("0", "I_B"), ("1", "I_B"), ("1", "I_A"), ("2", "I_B"), ("2", "I_A")]
    for epoch in range(3):
        (mode_b, grads_b), (mode_a, grads_a) = seen[(epoch, "before")], seen[(epoch, "after")]
        assert mode_b and mode_a  # the model's mode is left as it was
        assert all((a is None and b is None) or torch.equal(a, b) for a, b in zip(grads_a, grads_b))


def test_resume_drops_rows_at_or_after_the_checkpoint(tmp_path):
    torch.manual_seed(0)
    dm = DigitsDataModule(batch_size=64, seed=0)
    model = NaturalTraining(DigitsCNN(width=1), lr=3e-3)
    cb = MembershipInference(strategies=["I_B"], num_points=50, dirpath=str(tmp_path),
                             quick_when_limited=False)
    trainer = quiet_trainer(max_epochs=4, limit_train_batches=2, enable_checkpointing=True,
                            default_root_dir=str(tmp_path), callbacks=[cb])
    trainer.fit(model, dm)
    trainer.save_checkpoint(tmp_path / "at_epoch_4.ckpt")
    # pretend epoch 4 had been logged after the checkpoint, then resume from it: that row must go
    rows = list(csv.DictReader(open(tmp_path / "privacy_curve.csv")))
    assert [r["epoch"] for r in rows] == ["0", "1", "2", "3"]
    extra = dict(rows[-1], epoch="4")
    cb._write_rows(trainer, rows + [extra])
    model2 = NaturalTraining(DigitsCNN(width=1), lr=3e-3)
    cb2 = MembershipInference(strategies=["I_B"], num_points=50, dirpath=str(tmp_path),
                             quick_when_limited=False)
    quiet_trainer(max_epochs=6, limit_train_batches=2, callbacks=[cb2]).fit(
        model2, DigitsDataModule(batch_size=64, seed=0), ckpt_path=str(tmp_path / "at_epoch_4.ckpt"))
    rows = list(csv.DictReader(open(tmp_path / "privacy_curve.csv")))
    assert [r["epoch"] for r in rows] == ["0", "1", "2", "3", "4", "5"]


def test_fast_dev_run_uses_a_handful_of_points_and_leaves_the_folders_curve(tmp_path):
    (tmp_path / "privacy_curve.csv").write_text("a run's curve\n")  # a real run's curve in the same folder
    cb = MembershipInference(strategies=["I_B", "I_A"], num_points=None, fast_dev_points=5, dirpath=str(tmp_path))
    quiet_trainer(fast_dev_run=1, callbacks=[cb]).fit(NaturalTraining(DigitsCNN(width=1)), DigitsDataModule())
    assert cb.last_results["I_B"]["members"] == 5 and cb.last_results["I_A"]["nonmembers"] == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["privacy_curve.csv"]
    assert (tmp_path / "privacy_curve.csv").read_text() == "a run's curve\n"


def test_a_run_with_limited_epochs_scores_a_handful_of_points_unless_told_otherwise(tmp_path, caplog):
    quick = MembershipInference(strategies=["I_B"], num_points=None, fast_dev_points=6, dirpath=str(tmp_path / "a"))
    full = MembershipInference(strategies=["I_B"], num_points=40, dirpath=str(tmp_path / "b"), quick_when_limited=False)
    as_batches = MembershipInference(strategies=["I_B"], num_points=40, dirpath=str(tmp_path / "c"))
    all_batches = MembershipInference(strategies=["I_B"], num_points=40, dirpath=str(tmp_path / "d"))
    for cb, limit in ((quick, 0.1), (full, 0.1), (as_batches, 2), (all_batches, 1000)):
        quiet_trainer(max_epochs=1, limit_train_batches=limit, limit_val_batches=0, callbacks=[cb]).fit(
            NaturalTraining(DigitsCNN(width=1)), DigitsDataModule(batch_size=32))
    assert quick.last_results["I_B"]["members"] == quick.last_results["I_B"]["nonmembers"] == 6
    assert full.last_results["I_B"]["members"] == full.last_results["I_B"]["nonmembers"] == 40
    assert as_batches.last_results["I_B"]["members"] == 8  # an int limit is a number of batches: a quick run too
    assert all_batches.last_results["I_B"]["members"] == 40  # ... unless it is every batch of the epoch
    assert "quick_when_limited=false" in caplog.text


class TerminateDuringEvaluation(Callback):
    """Counts the model's evaluation-mode forward passes after epoch 0 and sends SIGTERM to this process during the
    second one, as `timeout` or SLURM would."""

    def __init__(self):
        self.after_signal = None

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == 1:
            self.count = 0
            pl_module.register_forward_hook(self.forward)

    def forward(self, module, args, out):
        if module.training:
            return
        self.count += 1
        if self.count == 2:
            os.kill(os.getpid(), signal.SIGTERM)
            self.after_signal = 0
        elif self.after_signal is not None:
            self.after_signal += 1


def test_sigterm_stops_an_evaluation_within_one_batch_and_writes_no_row(tmp_path):
    torch.manual_seed(0)
    probe = TerminateDuringEvaluation()
    cb = MembershipInference(strategies=["I_B"], num_points=None, batch_size=16, dirpath=str(tmp_path),
                             quick_when_limited=False)
    trainer = quiet_trainer(max_epochs=3, limit_train_batches=2, limit_val_batches=0, callbacks=[probe, cb])
    with pytest.raises(SystemExit):  # Lightning's SIGTERMException
        trainer.fit(NaturalTraining(DigitsCNN(width=1)), DigitsDataModule(batch_size=32))
    assert probe.after_signal == 0  # the batch being scored finished; no later batch started
    rows = list(csv.DictReader(open(tmp_path / "privacy_curve.csv")))
    assert [r["epoch"] for r in rows] == ["0"] and rows[0]["members"] == "898"  # epoch 0 intact, no epoch 1 row


def test_an_evaluation_shows_its_progress_when_the_trainer_shows_bars(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("privrob.privacy.evaluation.PROGRESS_DELAY", 0.0)
    for bars in (True, False):
        cb = MembershipInference(strategies=["I_B"], num_points=64, dirpath=str(tmp_path), quick_when_limited=False)
        quiet_trainer(max_epochs=1, limit_train_batches=1, limit_val_batches=0, enable_progress_bar=bars,
                      callbacks=[cb]).fit(NaturalTraining(DigitsCNN(width=1)), DigitsDataModule(batch_size=32))
        err = capsys.readouterr().err
        assert ("I_B members" in err and "I_B nonmembers" in err and "/64" in err and "pt" in err) == bars


def test_bad_arguments():
    with pytest.raises(ValueError, match="`strategies` can be"):
        MembershipInference(strategies=["I_X"])
    with pytest.raises(ValueError, match="every_n_epochs"):
        MembershipInference(every_n_epochs={"I_B": 0})
    with pytest.raises(ValueError, match="non-negative"):
        MembershipInference(eps=-1.0)


def test_early_stopping_by_privacy_keeps_the_best_tradeoff(tmp_path):
    torch.manual_seed(0)
    model = NaturalTraining(DigitsCNN(width=1), lr=3e-3)
    cb = MembershipInference(strategies=["I_B"], num_points=200, dirpath=str(tmp_path), keep_best="val/acc",
                             max_inference_accuracy={"I_B": 0.99}, quick_when_limited=False)
    quiet_trainer(max_epochs=3, limit_train_batches=5, callbacks=[cb]).fit(model, DigitsDataModule(batch_size=32))
    saved = torch.load(tmp_path / "best_privacy_tradeoff.ckpt", weights_only=True)
    rows = list(csv.DictReader(open(tmp_path / "privacy_curve.csv")))
    assert all(float(r["accuracy"]) <= 0.99 for r in rows) and cb.best is not None
    assert saved["callbacks"]["MembershipInference"]["best"] == cb.best  # saved when the best was reached
    strict = MembershipInference(strategies=["I_B"], num_points=200, dirpath=str(tmp_path / "strict"),
                                 keep_best="val/acc", max_inference_accuracy={"I_B": 0.5 - 1e-9},
                                 quick_when_limited=False)
    quiet_trainer(max_epochs=1, limit_train_batches=5, callbacks=[strict]).fit(
        NaturalTraining(DigitsCNN(width=1)), DigitsDataModule(batch_size=32))
    assert not (tmp_path / "strict" / "best_privacy_tradeoff.ckpt").exists()  # no epoch met the bound
    with pytest.raises(ValueError, match="keep_best"):
        MembershipInference(max_inference_accuracy={"I_A": 0.6})


def test_privacy_curve_is_titled_and_has_integer_epoch_ticks(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    saved = []
    monkeypatch.setattr(Figure, "savefig", lambda fig, *args, **kwargs: saved.append(fig))
    torch.manual_seed(0)
    root = tmp_path / "curve_run"
    quiet_trainer(max_epochs=3, limit_train_batches=2, default_root_dir=str(root),
                  callbacks=[_callback(root)]).fit(NaturalTraining(DigitsCNN(width=1)), DigitsDataModule(seed=0))
    (ax,) = saved[-1].axes
    title = ax.get_title()
    for part in ("curve_run", "NaturalTraining", "I_B", "I_A", "eps 0.1"):
        assert part in title, title
    low, high = ax.get_xlim()
    ticks = [t for t in ax.get_xticks() if low <= t <= high]
    assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks), ticks
