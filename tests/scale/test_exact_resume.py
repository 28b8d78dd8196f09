"""Resuming from any checkpoint privrob writes is exact: a periodic ``last.ckpt`` taken at an epoch end continues
to the same weights, batch-norm buffers and privacy curve as the uninterrupted run, with PGD's random starts and
random crop and flip on (each draws from the global generators every batch), in epoch-based and in step-based
(``max_steps``) training."""

import csv

import pytest
import pytorch_lightning as pl
import torch

from callbacks import MembershipInference, RunCheckpoint
from privrob.data import CIFAR10DataModule
from privrob.methods import PGDTraining
from privrob.models import CifarResNet
from privrob.trainer import PrivrobTrainer
from tests.conftest import write_cifar10

EPS = 8 / 255


def _fit(root, data, epochs: int, max_steps: int, ckpt_path=None):
    pl.seed_everything(0, verbose=False)
    model = PGDTraining(CifarResNet(width=1, units_per_stage=1), eps=EPS, steps=2, rel_step_size=0.5,
                        random_start=True, lr=0.05, optimizer="sgd")
    dm = CIFAR10DataModule(root=str(data), batch_size=16, eval_batch_size=16)
    trainer = PrivrobTrainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                             enable_model_summary=False, max_epochs=epochs, max_steps=max_steps, limit_val_batches=2,
                             num_sanity_val_steps=2, default_root_dir=str(root), callbacks=[
                                RunCheckpoint(save_last=True, every_n_epochs=2),
                                MembershipInference(strategies=["I_B", "I_A"], every_n_epochs={"I_A": 1},
                                                    num_points=12, attack_steps=2, eps=EPS)])
    trainer.fit(model, dm, ckpt_path=ckpt_path)
    rows = list(csv.DictReader(open(root / "privacy_curve.csv")))
    return model, trainer, rows


@pytest.mark.parametrize("max_steps", [-1, 10**6], ids=["epochs", "steps"])  # step-based: every study config
def test_resuming_from_a_periodic_last_ckpt_is_exact(tmp_path, max_steps):
    data = write_cifar10(tmp_path / "data", per_batch=16)
    straight, straight_trainer, straight_rows = _fit(tmp_path / "straight", data, 4, max_steps)
    _fit(tmp_path / "cut", data, 2, max_steps)  # last.ckpt: the end of epoch 1, the second periodic save
    ckpt = tmp_path / "cut" / "checkpoints" / "last.ckpt"
    assert torch.load(ckpt, weights_only=True)["epoch"] == 1
    resumed, trainer, rows = _fit(tmp_path / "cut", data, 4, max_steps, ckpt_path=str(ckpt))
    assert trainer.global_step == straight_trainer.global_step == 20
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name  # weights and batch-norm running statistics
    assert rows == straight_rows  # every epoch's I_B and I_A, to the last digit
