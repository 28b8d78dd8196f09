"""Two CPU processes (ddp_spawn, gloo) train the quickstart; an audit of the checkpoint on one process gives the
numbers the two processes logged at their last epoch."""

import pytest
import pytorch_lightning as pl
import torch

from callbacks import MembershipInference, RunCheckpoint
from privrob.data import DigitsDataModule
from privrob.methods import NaturalTraining
from privrob.models import DigitsCNN
from privrob.trainer import PrivrobTrainer


def test_audit_equals_what_two_processes_logged(tmp_path):
    pl.seed_everything(0, verbose=False)
    dm = DigitsDataModule(batch_size=32, seed=0)
    model = NaturalTraining(DigitsCNN(width=2), lr=3e-3)
    mi = MembershipInference(num_points=None, eps=0.1, attack_steps=5, dirpath=str(tmp_path))
    trainer = PrivrobTrainer(accelerator="cpu", devices=2, strategy="ddp_spawn", max_epochs=2, logger=False,
                             enable_progress_bar=False, enable_model_summary=False, default_root_dir=str(tmp_path),
                             callbacks=[mi, RunCheckpoint(save_last=True)])
    trainer.fit(model, dm)
    logged = {k: float(v) for k, v in trainer.callback_metrics.items()}

    audit = PrivrobTrainer(accelerator="cpu", devices=1, logger=False).audit(
        NaturalTraining(DigitsCNN(width=2)), DigitsDataModule(seed=0), ckpt_path=str(tmp_path / "checkpoints/last.ckpt"),
        eps=0.1, attack_steps=5)
    for name in ("I_B", "I_A"):
        for key in ("accuracy", "auc", "advantage", "tpr@1%fpr", "train_acc", "test_acc"):
            assert audit[name][key] == pytest.approx(logged[f"privacy/{name}/{key}"], abs=1e-6), (name, key)
        assert audit[name]["members"] + audit[name]["nonmembers"] == 1797
    # clean validation accuracy over the non-members, exact on two processes (no sampler padding)
    assert audit["I_B"]["test_acc"] == pytest.approx(logged["val/acc"], abs=1e-6)
