"""Wong–Kolter, DiffAI and IBP training on Digits; I_V; the ε and κ schedules."""

from types import SimpleNamespace

import pytest
import pytorch_lightning as pl
import torch

import privrob.bounds.zonotope as zonotope
from privrob.data import DigitsDataModule
from privrob.methods import DiffAITraining, IBPTraining, NaturalTraining, WongKolterTraining
from privrob.models import DigitsCNN
from privrob.privacy import Adversarial, Verified, score_examples
from tests.conftest import quiet_trainer

EPS = 0.1
MAKERS = {
    "ibp": lambda: IBPTraining(DigitsCNN(width=2), eps=EPS, warmup_steps=30, ramp_steps=150, lr=3e-3),
    "diffai": lambda: DiffAITraining(DigitsCNN(width=2), eps=EPS, warmup_epochs=1, ramp_epochs=4, lr=3e-3),
    "wong_kolter": lambda: WongKolterTraining(DigitsCNN(width=2), eps=EPS, eps_start=0.001, ramp_epochs=4,
                                              projections=20, lr=3e-3),
}


def _train(model, epochs=10):
    torch.manual_seed(0)
    pl.seed_everything(0, verbose=False)
    dm = DigitsDataModule(batch_size=32, seed=0)
    quiet_trainer(max_epochs=epochs, limit_val_batches=0).fit(model, dm)
    return model.eval(), dm


def _verified_accuracy(model, dm, method):
    rows = score_examples(model, dm.nonmembers(), torch.arange(400), Verified(eps=EPS, methods=(method,)), 200,
                          torch.device("cpu")).compute()
    return float(rows["correct"].double().mean())


@pytest.fixture(scope="module")
def natural():
    return _train(NaturalTraining(DigitsCNN(width=2), lr=3e-3))


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_verifiable_training_certifies_what_natural_cannot(name, natural):
    model, dm = _train(MAKERS[name]())
    method = model.certified_methods[0]
    robust, plain = _verified_accuracy(model, dm, method), _verified_accuracy(natural[0], natural[1], method)
    print(f"{name}: verified accuracy at eps {EPS} ({method}) {robust:.3f}, natural {plain:.3f}")
    assert plain < 0.15 and robust > plain + 0.3


@pytest.mark.parametrize("method", ["ibp", "box", "crown_ibp", "dual", "zonotope"])
def test_verified_score_never_above_attacked_score(method, trained_digits):
    model, dm = trained_digits
    xs, ys = zip(*[dm.members()[i] for i in range(64)])
    x, y = torch.stack(xs), torch.stack(ys)
    s_v, _ = Verified(eps=0.05, methods=(method,))(model, x, y)
    s_a, _ = Adversarial(eps=0.05, steps=20)(model, x, y)
    assert bool((s_v <= s_a + 1e-6).all())


def test_verified_falls_back_when_the_tightest_does_not_fit(trained_digits):
    model, dm = trained_digits
    x, y = dm.members()[0]
    v = Verified(eps=0.05, methods=("dual", "ibp"))
    v(model, x[None], y[None])
    assert v.used == "dual"
    original = zonotope.check_memory
    with pytest.MonkeyPatch.context() as mp:  # a budget nothing fits in
        mp.setattr(zonotope, "check_memory", lambda shapes, layers, batch, budget, what: original(
            shapes, layers, batch, 1e-9, what))
        v(model, x[None], y[None])
    assert v.used == "ibp"


def _at_step(monkeypatch, module, step, batches_per_epoch=1):
    """Make ``module`` believe it is at optimizer step ``step`` of a run with ``batches_per_epoch``."""
    monkeypatch.setattr(type(module), "global_step", property(lambda self: step))
    module._trainer = SimpleNamespace(num_training_batches=batches_per_epoch)
    return module


def test_ibp_schedule(monkeypatch):
    m = IBPTraining(DigitsCNN(width=1), eps=0.1, warmup_steps=500, ramp_steps=6500)
    expected = {0: (0.0, 1.0), 500: (0.0, 1.0), 3750: (0.05, 0.75), 7000: (0.1, 0.5), 20000: (0.1, 0.5)}
    for step, (eps, kappa) in expected.items():
        assert _at_step(monkeypatch, m, step).schedule() == pytest.approx((eps, kappa))


def test_wong_kolter_schedule(monkeypatch):
    # the study's Fashion-MNIST: 0.003 → 0.1 over 20 epochs, per step; 10 steps per epoch here
    m = WongKolterTraining(DigitsCNN(width=1), eps=0.1, eps_start=0.003, ramp_epochs=20)
    for step, eps in ((0, 0.003), (100, 0.0515), (200, 0.1), (5000, 0.1)):
        assert _at_step(monkeypatch, m, step, 10).current_eps() == pytest.approx(eps)


def test_diffai_schedule(monkeypatch):
    # DiffAI: radius ε·min(max(N, s − 20N), 30N)/(30N), N = 10 steps per epoch
    m = DiffAITraining(DigitsCNN(width=1), eps=0.1, warmup_epochs=20, ramp_epochs=30)
    for step, t in ((0, 1 / 30), (210, 1 / 30), (350, 15 / 30), (500, 1.0), (9999, 1.0)):
        assert _at_step(monkeypatch, m, step, 10).current_eps() == pytest.approx(0.1 * t)


@pytest.mark.parametrize("cls,kwargs", [(WongKolterTraining, {"eps": -1.0}), (DiffAITraining, {"domain": "octagon"}),
                                        (IBPTraining, {"kappa_end": 2.0}), (IBPTraining, {"bound": "dual"})])
def test_bad_arguments(cls, kwargs):
    with pytest.raises(ValueError) as e:
        cls(DigitsCNN(width=1), **kwargs)
    assert "\n" not in str(e.value)
