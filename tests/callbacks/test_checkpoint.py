"""``last.ckpt`` is the model at the end of fit, whether or not the checkpoint period divides the run."""

import json

import pytest
import pytorch_lightning as pl
import torch

from callbacks import RunCheckpoint
from privrob.data import CIFAR10DataModule
from privrob.methods import NaturalTraining
from privrob.models import CifarResNet
from privrob.trainer import PrivrobTrainer
from tests.conftest import quiet_trainer, write_cifar10


@pytest.mark.parametrize("period, stop", [
    (dict(every_n_epochs=2), dict(max_epochs=4)),        # the period divides the run
    (dict(every_n_epochs=5), dict(max_epochs=7)),        # it does not (a 7-epoch run kept epoch 5's model)
    (dict(every_n_train_steps=4), dict(max_steps=11)),   # step-based, ending mid-epoch
])
def test_last_checkpoint_holds_the_end_of_fit(tmp_path, period, stop):
    pl.seed_everything(0, verbose=False)
    dm = CIFAR10DataModule(root=str(write_cifar10(tmp_path, per_batch=8)), batch_size=16, augment=False)
    model = NaturalTraining(CifarResNet(width=1, units_per_stage=1), lr=0.05, optimizer="sgd")
    trainer = quiet_trainer(enable_checkpointing=True, default_root_dir=str(tmp_path), limit_val_batches=0,
                            callbacks=[RunCheckpoint(save_last=True, **period)], **stop)
    trainer.fit(model, dm)
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == trainer.global_step == stop.get("max_steps", 3 * stop.get("max_epochs", 0))
    final = model.state_dict()
    assert all(torch.equal(last["state_dict"][k], final[k]) for k in final)  # weights and batch-norm buffers
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir() if p.name.startswith("last")) == ["last.ckpt"]
    audit = PrivrobTrainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False).audit(
        NaturalTraining(CifarResNet(width=1, units_per_stage=1)), dm, ckpt_path=str(tmp_path / "checkpoints/last.ckpt"),
        strategies=["I_B"], output=str(tmp_path / "audit"))
    assert json.loads((tmp_path / "audit.json").read_text())["meta"]["global_step"] == trainer.global_step
    assert audit["I_B"]["members"] == 40
