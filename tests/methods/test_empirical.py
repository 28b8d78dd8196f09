"""PGD, TRADES and WRM training on Digits: each buys robustness that natural training lacks."""

import copy

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from privrob.data import DigitsDataModule
from privrob.methods import NaturalTraining, PGDTraining, TRADESTraining, WRMTraining, linear_ramp
from privrob.models import CifarResNet, DigitsCNN
from privrob.attacks import pgd
from privrob.privacy import Adversarial, score_examples
from tests.conftest import quiet_trainer

EPS = 0.1


def _train(model, epochs=12):
    pl.seed_everything(0, verbose=False)
    dm = DigitsDataModule(batch_size=32, seed=0)
    quiet_trainer(max_epochs=epochs, limit_val_batches=0).fit(model, dm)
    return model.eval(), dm


def _pgd_accuracy(model, dm):
    attack = Adversarial(eps=EPS, steps=20)  # the study's evaluation attack, same for every model
    rows = score_examples(model, dm.nonmembers(), torch.arange(400), attack, 200, torch.device("cpu")).compute()
    return float(rows["correct"].double().mean())


@pytest.fixture(scope="module")
def natural_pgd_accuracy():
    torch.manual_seed(0)
    return _pgd_accuracy(*_train(NaturalTraining(DigitsCNN(width=2), lr=3e-3)))


@pytest.mark.parametrize("make", [
    lambda: PGDTraining(DigitsCNN(width=2), eps=EPS, steps=5, rel_step_size=0.25, lr=3e-3),
    lambda: TRADESTraining(DigitsCNN(width=2), eps=EPS, steps=5, step_size=0.025, beta=6.0, lr=3e-3),
], ids=["pgd", "trades"])
def test_robust_training_beats_natural_under_pgd(make, natural_pgd_accuracy):
    torch.manual_seed(0)
    robust = _pgd_accuracy(*_train(make()))
    print(f"PGD accuracy: robust {robust:.3f}, natural {natural_pgd_accuracy:.3f}")
    assert robust > natural_pgd_accuracy + 0.2, (robust, natural_pgd_accuracy)


def test_trades_with_beta_zero_is_natural_loss():
    torch.manual_seed(0)
    backbone = DigitsCNN(width=1)
    x, y = torch.rand(16, 1, 8, 8), torch.randint(0, 10, (16,))
    trades = TRADESTraining(backbone, eps=0.1, steps=3, step_size=0.03, beta=0.0)
    natural = NaturalTraining(backbone)
    assert torch.equal(trades.training_loss(x, y)[0], natural.training_loss(x, y)[0])


def test_wrm_perturbation_shrinks_as_gamma_grows():
    torch.manual_seed(0)
    backbone = DigitsCNN(width=1)
    x, y = torch.rand(32, 1, 8, 8) * 0.5 + 0.25, torch.randint(0, 10, (32,))
    norms = [float((WRMTraining(backbone, gamma=g, steps=5).perturb(x, y) - x).flatten(1).norm(dim=1).mean())
             for g in (0.5, 2.0, 8.0)]
    assert norms[0] > norms[1] > norms[2] > 0


def test_wrm_study_code_variant_ignores_any_ball():
    torch.manual_seed(0)
    m = WRMTraining(DigitsCNN(width=1), steps=10, step_size=1.5, inner_max="study_code")
    x, y = torch.rand(8, 1, 8, 8), torch.randint(0, 10, (8,))
    x_adv = m.perturb(x, y)
    assert float(x_adv.min()) >= 0 and float(x_adv.max()) <= 1 and not torch.equal(x_adv, x)


def test_eps_ramp():
    m = PGDTraining(DigitsCNN(width=1), eps=0.0314, eps_ramp_steps=1000, rel_step_size=0.2)
    assert [linear_ramp(t, 0, 1000, 0.0, 0.0314) for t in (0, 500, 1000, 5000)] == pytest.approx(
        [0.0, 0.0157, 0.0314, 0.0314])
    assert m.current_eps() == 0.0  # global_step 0, before any optimizer step


def test_adversarial_examples_respect_eps_and_range():
    torch.manual_seed(0)
    from privrob.attacks import pgd

    m = PGDTraining(DigitsCNN(width=1), eps=0.1, steps=3, rel_step_size=0.5)
    x, y = torch.rand(16, 1, 8, 8), torch.randint(0, 10, (16,))
    x_adv = pgd(m.backbone, x, y, eps=0.1, steps=3, rel_step_size=0.5, random_start=True)
    assert float((x_adv - x).abs().max()) <= 0.1 + 1e-6 and 0 <= float(x_adv.min()) <= float(x_adv.max()) <= 1


def test_attack_leaves_batch_norm_statistics_alone():
    torch.manual_seed(0)
    m = PGDTraining(CifarResNet(width=1, units_per_stage=1), eps=8 / 255, steps=2, step_size=2 / 255)
    m.train()
    before = {k: v.clone() for k, v in m.state_dict().items() if "running" in k}
    from privrob.attacks import pgd

    x, y = torch.rand(4, 3, 32, 32), torch.randint(0, 10, (4,))
    pgd(m.backbone, x, y, eps=8 / 255, steps=2, step_size=2 / 255, random_start=True)
    after = {k: v for k, v in m.state_dict().items() if "running" in k}
    assert all(torch.equal(before[k], after[k]) for k in before) and m.training


@pytest.mark.parametrize("kwargs,match", [
    (dict(cls=PGDTraining, eps=-0.1, rel_step_size=0.1), "eps"),
    (dict(cls=PGDTraining, steps=0, rel_step_size=0.1), "steps"),
    (dict(cls=PGDTraining, norm="l3", rel_step_size=0.1), "norm"),
    (dict(cls=TRADESTraining, beta=-1.0), "beta"),
    (dict(cls=WRMTraining, gamma=0.0), "gamma"),
])
def test_bad_arguments(kwargs, match):
    cls = kwargs.pop("cls")
    with pytest.raises(ValueError, match=match) as e:
        cls(DigitsCNN(width=1), **kwargs)
    assert "\n" not in str(e.value)


def test_trades_eps_ramp_starts_from_the_clean_loss():
    torch.manual_seed(0)
    x, y = torch.rand(16, 1, 8, 8), torch.randint(0, 10, (16,))
    ramped = TRADESTraining(DigitsCNN(width=1), eps=0.1, steps=3, step_size=0.02, eps_ramp_steps=100)
    full = TRADESTraining(DigitsCNN(width=1), eps=0.1, steps=3, step_size=0.02)
    full.load_state_dict(ramped.state_dict())
    assert ramped.ramped_eps() == 0.0 and full.ramped_eps() == 0.1
    clean = ramped.cross_entropy(ramped(x), y)
    assert float(ramped.training_loss(x, y)[0]) == pytest.approx(float(clean), abs=1e-6)  # KL(p(x) ‖ p(x)) = 0
    assert float(full.training_loss(x, y)[0]) > float(clean) + 1e-5  # KL > 0 (small: the TF init's flat outputs)
    with pytest.raises(ValueError, match="eps_ramp_steps"):
        TRADESTraining(DigitsCNN(width=1), eps_ramp_steps=-1)


def test_trades_loss_has_finite_gradients_at_saturated_softmax():
    """Margins beyond float32's softmax range (p = 0 exactly) must not turn the KL term's gradient into NaN."""
    torch.manual_seed(0)
    m = TRADESTraining(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10)), eps=0.1, steps=2,
                       step_size=0.05)
    with torch.no_grad():
        m.backbone[1].weight.mul_(2000.0)
    x, y = torch.rand(8, 1, 8, 8), torch.randint(0, 10, (8,))
    assert (F.softmax(m(x), dim=1) == 0).any()  # the regime that broke a Yale run
    loss, _ = m.training_loss(x, y)
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(p.grad).all() for p in m.parameters())


@pytest.mark.parametrize("detach_clean", [True, False])
def test_trades_outer_kl_detaches_the_clean_distribution_as_the_study(detach_clean):
    """The study's trades.py: CE(f(x), y) + β/B·KL_sum(log_softmax(f(x′)), softmax(f(x).detach())). Its gradient
    differs from the undetached form's, which stays available as ``detach_clean=False``."""
    torch.manual_seed(0)
    m = TRADESTraining(DigitsCNN(width=1), eps=0.1, steps=3, step_size=0.03, beta=2.0, detach_clean=detach_clean)
    x, y = torch.rand(16, 1, 8, 8), torch.randint(0, 10, (16,))
    params = [p for p in m.parameters()]
    torch.manual_seed(1)
    got = torch.autograd.grad(m.training_loss(x, y)[0], params)
    torch.manual_seed(1)
    start = x + 0.001 * torch.randn_like(x)
    x_adv = pgd(m.backbone, x, y, eps=0.1, steps=3, step_size=0.03, loss="kl", start=start)
    logits = m(x)
    study = F.cross_entropy(logits, y) + 2.0 * F.kl_div(
        F.log_softmax(m(x_adv), dim=1), F.softmax(logits.detach(), dim=1), reduction="sum") / len(x)
    expected = torch.autograd.grad(study, params)
    same = all(torch.allclose(g, e, atol=1e-6, rtol=1e-5) for g, e in zip(got, expected))
    assert same == detach_clean


def _small_resnet_method(cls, bn_mode):
    kwargs = {PGDTraining: dict(eps=8 / 255, steps=2, step_size=2 / 255),
              TRADESTraining: dict(eps=8 / 255, steps=2, step_size=2 / 255),
              WRMTraining: dict(steps=2, step_size=12 / 255, inner_max="study_code")}[cls]
    return cls(CifarResNet(width=1, units_per_stage=1), attack_bn_mode=bn_mode, **kwargs)


@pytest.mark.parametrize("bn_mode", ["eval", "train"])
@pytest.mark.parametrize("cls,attack_forwards,training_forwards", [
    (PGDTraining, 2, 1), (TRADESTraining, 3, 2), (WRMTraining, 2, 1),  # TRADES: the clean target, then 2 steps
], ids=["pgd", "trades", "wrm"])
def test_training_attack_batch_norm_mode(cls, attack_forwards, training_forwards, bn_mode):
    """``attack_bn_mode="train"``: every attack forward runs in train mode (batch statistics, running statistics
    updated, as Madry's ``mode='train'`` graph); ``"eval"``: in eval mode. The running statistics after a training
    loss are exactly those of replaying its forwards in those modes; the model is in train mode again after."""
    torch.manual_seed(0)
    m = _small_resnet_method(cls, bn_mode).train()
    replay = copy.deepcopy(m.backbone)
    calls = []
    m.backbone.register_forward_pre_hook(lambda module, args: calls.append((module.training, args[0].detach())))
    m.training_loss(torch.rand(4, 3, 32, 32), torch.randint(0, 10, (4,)))
    assert m.training and all(module.training for module in m.modules())
    assert [training for training, _ in calls] == [bn_mode == "train"] * attack_forwards + [True] * training_forwards
    with torch.no_grad():
        for training, x in calls:
            replay.train(training)(x)
    assert all(torch.equal(a, b) for a, b in zip(m.backbone.buffers(), replay.buffers()))


@pytest.mark.parametrize("cls", [PGDTraining, TRADESTraining, WRMTraining], ids=["pgd", "trades", "wrm"])
@pytest.mark.parametrize("bn_mode", ["eval", "train"])
@pytest.mark.parametrize("was_training", [False, True])
def test_training_attack_alone_updates_batch_norm_only_in_train_mode(cls, bn_mode, was_training):
    """The attack itself (``pgd`` as the method calls it, or WRM's ``perturb``): with ``"train"`` it moves the running
    statistics (one update per forward), with ``"eval"`` it leaves them bit-identical; the mode is restored."""
    torch.manual_seed(0)
    m = _small_resnet_method(cls, bn_mode).train(was_training)
    before = [b.clone() for b in m.backbone.buffers()]
    x, y = torch.rand(4, 3, 32, 32), torch.randint(0, 10, (4,))
    if cls is WRMTraining:
        m.perturb(x, y)
    else:
        kl = dict(loss="kl", start=x) if cls is TRADESTraining else dict(random_start=True)
        pgd(m.backbone, x, y, eps=8 / 255, steps=2, step_size=2 / 255, bn_mode=bn_mode, **kl)
    after = list(m.backbone.buffers())
    assert m.backbone.training == was_training
    tracked = [a - b for a, b in zip(after, before) if a.dtype == torch.long]  # num_batches_tracked
    if bn_mode == "train":
        assert all(int(t) == (3 if cls is TRADESTraining else 2) for t in tracked)
        assert not any(torch.equal(a, b) for a, b in zip(after, before) if a.is_floating_point())
    else:
        assert all(torch.equal(a, b) for a, b in zip(after, before))


def test_attack_bn_mode_is_checked():
    for cls, kwargs in ((PGDTraining, dict(rel_step_size=0.25)), (TRADESTraining, {}), (WRMTraining, {})):
        with pytest.raises(ValueError, match="attack_bn_mode") as e:
            cls(DigitsCNN(width=1), attack_bn_mode="batch", **kwargs)
        assert "\n" not in str(e.value)
