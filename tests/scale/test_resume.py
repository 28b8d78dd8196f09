"""Preemption at a batch boundary and exact resume (no SLURM needed: the test signals itself), in the middle of an
epoch and at its last batch, with a batch-norm network, PGD's random starts and random crop and flip on."""

import os
import signal

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback

from callbacks import Preempted, RequeueOnSignal
from privrob.data import CIFAR10DataModule
from privrob.methods import PGDTraining
from privrob.models import CifarResNet
from tests.conftest import quiet_trainer, write_cifar10


class SignalAt(Callback):
    """Sends SIGUSR1 to this process after global step ``step``."""

    def __init__(self, step):
        self.step = step

    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGUSR1)


def _run(tmp_path, data, callbacks, ckpt_path=None):
    pl.seed_everything(0, verbose=False)
    # PGD with a random start and the crop and flip draw every step: resuming must restore both streams
    model = PGDTraining(CifarResNet(width=1, units_per_stage=1), eps=8 / 255, steps=2, rel_step_size=0.5,
                        random_start=True, lr=0.05, optimizer="sgd")
    trainer = quiet_trainer(max_epochs=3, limit_val_batches=2, default_root_dir=str(tmp_path),
                            callbacks=callbacks)
    trainer.fit(model, CIFAR10DataModule(root=str(data), batch_size=16, eval_batch_size=16), ckpt_path=ckpt_path)
    return model, trainer


@pytest.mark.parametrize("signal_step, saved_step, at_epoch_end", [
    (7, 8, False),  # saved at the next batch end: step 8, the third of epoch 1's five batches
    (4, 5, True),  # at epoch 0's last batch: saved at the epoch's end, after validation, as an epoch-end checkpoint
], ids=["mid-epoch", "last-batch"])
def test_preempted_run_resumes_to_the_same_weights(tmp_path, signal_step, saved_step, at_epoch_end):
    data = write_cifar10(tmp_path / "data", per_batch=16)  # 80 members: 5 batches an epoch
    reference, ref_trainer = _run(tmp_path / "straight", data, [RequeueOnSignal()])
    cb = RequeueOnSignal()
    with pytest.raises(Preempted):
        _run(tmp_path / "cut", data, [cb, SignalAt(signal_step)])
    ckpt = tmp_path / "cut" / "checkpoints" / "preempt.ckpt"
    assert ckpt.is_file()
    state = torch.load(ckpt, weights_only=True)  # RNG and loader state are plain tensors and numbers
    assert state["global_step"] == saved_step and state["rng"]["at_epoch_end"] == at_epoch_end
    assert "augment_generator" in state["CIFAR10DataModule"]
    resumed, trainer = _run(tmp_path / "cut", data, [RequeueOnSignal()], ckpt_path=str(ckpt))
    assert trainer.global_step == ref_trainer.global_step == 15
    for (name, a), b in zip(reference.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name  # weights and batch-norm running statistics
    assert float(trainer.callback_metrics["val/acc"]) == float(ref_trainer.callback_metrics["val/acc"])


def test_bad_signal_name():
    with pytest.raises(ValueError, match="signal_name"):
        RequeueOnSignal(signal_name="SIGKILL")
