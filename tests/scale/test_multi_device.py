"""Two CPU processes (ddp_spawn, gloo) train the quickstart; an audit of the checkpoint on one process gives the
numbers the two processes logged at their last epoch."""

import json
import os
import signal
import subprocess
import sys

import pytest
import pytorch_lightning as pl
import torch

from callbacks import MembershipInference, RunCheckpoint
from privrob.data import DigitsDataModule
from privrob.methods import NaturalTraining
from privrob.models import DigitsCNN
from privrob.trainer import PrivrobTrainer
from tests.conftest import ROOT


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


ONE_RANK_TERMINATED = '''
import json, sys
import pytorch_lightning as pl
from pytorch_lightning import Callback
from callbacks import MembershipInference
from privrob.data import DigitsDataModule
from privrob.methods import NaturalTraining
from privrob.models import DigitsCNN
from privrob.trainer import PrivrobTrainer


class SigtermOnRankOne(Callback):
    """From epoch 1, counts evaluation forward passes; rank 1 notes a SIGTERM at its second, before rank 0 has (as
    when the signal reaches the ranks at different batches, or one rank only)."""

    def on_train_epoch_start(self, trainer, pl_module):
        self.count = 0
        if trainer.current_epoch == 1:
            pl_module.register_forward_hook(lambda module, args, out: self.forward(trainer, module))

    def forward(self, trainer, module):
        if not module.training:
            self.count += 1
            if self.count == 2 and trainer.global_rank == 1:
                trainer._signal_connector.received_sigterm = True  # what Lightning's handler sets

    def on_exception(self, trainer, pl_module, exception):
        with open(f"{sys.argv[1]}/rank{trainer.global_rank}.json", "w") as f:
            json.dump({"exception": type(exception).__name__, "forwards": self.count}, f)


pl.seed_everything(0, verbose=False)
# 33 points in batches of 16: shards of 17 and 16 points, 2 batches on rank 0 and 1 on rank 1
mi = MembershipInference(strategies=["I_B"], num_points=33, batch_size=16, quick_when_limited=False)
trainer = PrivrobTrainer(accelerator="cpu", devices=2, strategy="ddp", max_epochs=3, limit_train_batches=2,
                         limit_val_batches=0, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=sys.argv[1], callbacks=[SigtermOnRankOne(), mi])
trainer.fit(NaturalTraining(DigitsCNN(width=1)), DigitsDataModule(batch_size=32, seed=0))
'''


def test_a_sigterm_noted_by_one_rank_stops_every_rank_at_the_same_evaluation_batch(tmp_path):
    """Two processes (ddp, gloo) with uneven evaluation shards; during epoch 1's evaluation rank 1 notes a SIGTERM
    that rank 0 has not. Both stop before the next batch with Lightning's SIGTERMException, none waits in the
    gather."""
    script = tmp_path / "one_rank_terminated.py"
    script.write_text(ONE_RANK_TERMINATED)
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path)], cwd=ROOT, start_new_session=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("a rank was left waiting: " + proc.communicate()[0][-3000:])
    ranks = {r: json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)
             if (tmp_path / f"rank{r}.json").exists()}
    assert set(ranks) == {0, 1}, out[-3000:]
    assert ranks[0]["exception"] == ranks[1]["exception"] == "SIGTERMException", (ranks, out[-3000:])
    # rank 1: its member batch, its first non-member batch (where it noted the signal); rank 0 stopped at the
    # same check: its two member batches and its first non-member batch, not its second
    assert ranks[1]["forwards"] == 2 and ranks[0]["forwards"] == 3, ranks
