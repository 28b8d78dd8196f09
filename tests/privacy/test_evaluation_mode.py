"""Every score is taken in evaluation mode, and scoring leaves the model and the random streams as it found them.

On a batch-norm network (Madry's CIFAR10 ResNet at small width) scoring in training mode would use the batch's
statistics (scores depending on what else is in the batch) and overwrite the running statistics with member,
non-member and adversarial data; an evaluation that draws from the global generators would shift training.
"""

import random

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning import Callback

from callbacks import MembershipInference
from privrob.data import CIFAR10DataModule, DigitsDataModule
from privrob.methods import NoiseLayerTraining, PGDTraining
from privrob.models import CifarResNet, DigitsCNN
from privrob.privacy import Benign, score_examples, true_label_confidence
from privrob.privacy.audit import evaluate_membership
from privrob.privacy.lira import statistics
from privrob.privacy.strategies import build_strategy
from privrob.trainer import PrivrobTrainer
from tests.conftest import quiet_trainer, write_cifar10

EPS = 8 / 255
STRATEGIES = [build_strategy("I_B", eps=EPS), build_strategy("I_A", eps=EPS, attack_steps=3)]


def small_resnet(**kwargs) -> PGDTraining:
    return PGDTraining(CifarResNet(width=1, units_per_stage=1), eps=EPS, steps=2, rel_step_size=0.5,
                       random_start=True, lr=0.05, optimizer="sgd", **kwargs)


@pytest.fixture
def cifar(tmp_path) -> CIFAR10DataModule:
    dm = CIFAR10DataModule(root=str(write_cifar10(tmp_path, per_batch=16)), batch_size=16, eval_batch_size=16)
    dm.setup("fit")
    return dm


def trained(dm, epochs: int = 1) -> PGDTraining:
    """A small ResNet after a little training, so that its running statistics are not the initial ones."""
    pl.seed_everything(0, verbose=False)
    model = small_resnet()
    quiet_trainer(max_epochs=epochs, limit_val_batches=0).fit(model, dm)
    return model.train()


def streams() -> tuple:
    return torch.get_rng_state(), np.random.get_state(), random.getstate()


def same_streams(a: tuple, b: tuple) -> bool:
    return (torch.equal(a[0], b[0]) and a[1][0] == b[1][0] and np.array_equal(a[1][1], b[1][1])
            and a[1][2:] == b[1][2:] and a[2] == b[2])


def snapshot(model: torch.nn.Module) -> dict:
    return {k: v.clone() for k, v in model.state_dict().items()}


def identical(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_scoring_runs_in_eval_mode_and_restores_every_modules_mode(cifar):
    model = trained(cifar)
    model.backbone.units[0].bn1.eval()  # a mixed state, e.g. a frozen batch norm in a training model
    before = [m.training for m in model.modules()]
    seen = []

    def probe(m, x, y):
        seen.append([mod.training for mod in m.modules()])
        return Benign()(m, x, y)

    score_examples(model, cifar.members(), torch.arange(20), probe, 8, torch.device("cpu"))
    assert seen and all(not any(modes) for modes in seen)  # every module in eval mode while scoring
    assert [m.training for m in model.modules()] == before
    model.eval()
    score_examples(model, cifar.members(), torch.arange(4), probe, 8, torch.device("cpu"))
    assert not model.training


@pytest.mark.parametrize("name", ["I_B", "I_A"])
def test_a_score_does_not_depend_on_batch_size_or_composition(cifar, name):
    model = trained(cifar)
    strategy = STRATEGIES[0] if name == "I_B" else STRATEGIES[1]
    members = cifar.members()
    ids = torch.arange(16)

    def scores(indices, batch_size):
        rows = score_examples(model, members, indices, strategy, batch_size, torch.device("cpu")).compute()
        return dict(zip(rows["ids"].tolist(), rows["scores"].tolist()))

    reference = scores(ids, 16)
    for other in (scores(ids, 4), scores(ids, 3), scores(torch.tensor([5, 40, 3, 70, 9, 60]), 6)):
        for i, s in other.items():
            if i in reference:
                assert s == pytest.approx(reference[i], abs=1e-6), (name, i)


def test_scoring_leaves_parameters_buffers_and_random_streams_untouched(cifar):
    model = trained(cifar)
    torch.manual_seed(123)
    np.random.seed(123)
    random.seed(123)
    images = torch.rand(6, 3, 32, 32)
    state, rngs = snapshot(model), streams()
    evaluate_membership(model, cifar, STRATEGIES, num_points=20, batch_size=8)
    statistics(model, images, torch.arange(6))  # LiRA's reference scoring
    assert identical(snapshot(model), state)  # running statistics and parameters bit-identical
    assert same_streams(streams(), rngs)
    assert model.training


class Snapshot(Callback):
    """Records the module's state at the end of every training epoch (placed before and after the callback)."""

    def __init__(self):
        self.states = []

    def on_train_epoch_end(self, trainer, pl_module):
        self.states.append((snapshot(pl_module), streams(), pl_module.training))


def _fit(root, callbacks, adv_eval_size=0, **trainer_kwargs) -> PGDTraining:
    pl.seed_everything(0, verbose=False)
    dm = CIFAR10DataModule(root=str(root), batch_size=16, eval_batch_size=16, augment=True)  # random crop + flip
    model = small_resnet(adv_eval_size=adv_eval_size)
    quiet_trainer(**{"max_epochs": 3, "limit_val_batches": 0, "callbacks": callbacks, **trainer_kwargs}).fit(model, dm)
    return model


def test_training_with_the_callback_equals_training_without_it(tmp_path):
    root = write_cifar10(tmp_path, per_batch=16)
    before, after = Snapshot(), Snapshot()
    mi = MembershipInference(strategies=["I_B", "I_A"], every_n_epochs={"I_A": 1}, num_points=24, eps=EPS,
                             attack_steps=3, dirpath=str(tmp_path / "mi"))
    with_callback = snapshot(_fit(root, [before, mi, after]))
    without = snapshot(_fit(root, []))
    assert len(mi.last_results) == 2
    assert identical(with_callback, without)  # weights and batch-norm buffers, after 3 epochs with random starts
    for (s_b, r_b, mode_b), (s_a, r_a, mode_a) in zip(before.states, after.states):
        assert identical(s_b, s_a) and same_streams(r_b, r_a) and mode_b and mode_a


def test_training_with_validation_equals_training_without_it(tmp_path):
    """Lightning's validation passes (after every epoch, with val/adv_acc) draw nothing from the global generators:
    how often a run validates does not change what it trains, nor the random streams it leaves."""
    root = write_cifar10(tmp_path, per_batch=16)
    validated = _fit(root, [], adv_eval_size=4, limit_val_batches=2, num_sanity_val_steps=2)
    validated_streams = streams()
    assert "val/adv_acc" in validated.trainer.callback_metrics
    unvalidated = _fit(root, [])
    assert identical(snapshot(validated), snapshot(unvalidated))
    assert same_streams(validated_streams, streams())


def test_an_audit_leaves_the_loaded_model_untouched(tmp_path, cifar):
    model = trained(cifar)
    trainer = quiet_trainer(max_epochs=1, limit_train_batches=1, limit_val_batches=0)
    trainer.fit(model, cifar)
    trainer.save_checkpoint(tmp_path / "model.ckpt")
    saved = torch.load(tmp_path / "model.ckpt", weights_only=True)["state_dict"]
    fresh = small_resnet()  # the audit builds a fresh module: training mode
    PrivrobTrainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False).audit(
        fresh, cifar, ckpt_path=str(tmp_path / "model.ckpt"), num_points=12, attack_steps=2,
        output=str(tmp_path / "audit"))
    assert identical(snapshot(fresh), saved)


def test_pixeldp_scores_are_the_seeded_average_whatever_the_batch(trained_digits):
    _, dm = trained_digits
    torch.manual_seed(0)
    model = NoiseLayerTraining(DigitsCNN(width=1), eval_draws=5, noise_seed=3).train()
    members = dm.members()
    x = torch.stack([members[i][0] for i in range(10)])
    y = torch.tensor([members[i][1] for i in range(10)])
    # the seeded average written out: draw k of the noise generator, added after the first layer, for every example
    generator, first = torch.Generator().manual_seed(3), model.first_layer[0]
    layers = list(model.backbone)
    probs = 0
    with torch.no_grad():
        for _ in range(5):
            h = F.conv2d(x, first.weight, first.bias, first.stride, first.padding)  # without the layer's noise hook
            h = h + model.scale * torch.randn((1, *h.shape[1:]), generator=generator)
            for layer in layers[layers.index(first) + 1:]:
                h = layer(h)
            probs = probs + torch.softmax(h, dim=1)
    average = (probs / 5).gather(1, y[:, None]).squeeze(1)
    for batch_size in (10, 3):
        got = score_examples(model, members, torch.arange(10), Benign(), batch_size, torch.device("cpu")).compute()
        assert torch.allclose(got["scores"].float(), average, atol=1e-5), batch_size
    one_draw = true_label_confidence(model(x), y, from_logits=True)  # training mode: one unseeded draw
    assert not torch.allclose(one_draw, average, atol=1e-3)
