"""Preemption at a batch boundary and exact resume (no SLURM needed: the test signals itself)."""

import os
import signal

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback

from callbacks import Preempted, RequeueOnSignal
from privrob.data import DigitsDataModule
from privrob.methods import PGDTraining
from privrob.models import DigitsCNN
from tests.conftest import quiet_trainer


class SignalAt(Callback):
    """Sends SIGUSR1 to this process after global step ``step``."""

    def __init__(self, step):
        self.step = step

    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGUSR1)


def _run(tmp_path, callbacks, ckpt_path=None):
    pl.seed_everything(0, verbose=False)
    # PGD with a random start draws from the global generator every step: resuming must restore it
    model = PGDTraining(DigitsCNN(width=1), eps=0.1, steps=2, rel_step_size=0.5, lr=3e-3)
    trainer = quiet_trainer(max_epochs=3, limit_val_batches=2, default_root_dir=str(tmp_path),
                            callbacks=callbacks)
    trainer.fit(model, DigitsDataModule(batch_size=64, seed=0), ckpt_path=ckpt_path)
    return model, trainer


@pytest.mark.parametrize("signal_step, saved_step, at_epoch_end", [
    (20, 21, False),  # saved at the next batch end: step 21, mid epoch 1
    (14, 15, True),  # at epoch 0's last batch: saved at the epoch's end, after validation, as an epoch-end checkpoint
], ids=["mid-epoch", "last-batch"])
def test_preempted_run_resumes_to_the_same_weights(tmp_path, signal_step, saved_step, at_epoch_end):
    reference, ref_trainer = _run(tmp_path / "straight", [RequeueOnSignal()])
    cb = RequeueOnSignal()
    with pytest.raises(Preempted):
        _run(tmp_path / "cut", [cb, SignalAt(signal_step)])
    ckpt = tmp_path / "cut" / "checkpoints" / "preempt.ckpt"
    assert ckpt.is_file()
    state = torch.load(ckpt, weights_only=True)  # RNG and loader state are plain tensors and numbers
    assert state["global_step"] == saved_step and state["rng"]["at_epoch_end"] == at_epoch_end
    resumed, trainer = _run(tmp_path / "cut", [RequeueOnSignal()], ckpt_path=str(ckpt))
    assert trainer.global_step == ref_trainer.global_step == 45
    for (name, a), b in zip(reference.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    assert float(trainer.callback_metrics["val/acc"]) == float(ref_trainer.callback_metrics["val/acc"])


def test_bad_signal_name():
    with pytest.raises(ValueError, match="signal_name"):
        RequeueOnSignal(signal_name="SIGKILL")
