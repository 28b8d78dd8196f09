import pytest
import torch

from privrob.attacks import pgd


def _accuracy(model, x, y):
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def test_pgd_lowers_accuracy_and_respects_constraints(trained_digits):
    model, dm = trained_digits
    xs, ys = zip(*[dm.nonmembers()[i] for i in range(300)])
    x, y = torch.stack(xs), torch.stack(ys)
    clean = _accuracy(model, x, y)
    for norm, eps in (("linf", 0.1), ("l2", 1.0)):
        x_adv = pgd(model, x, y, eps=eps, steps=20, rel_step_size=2.5 / 20, norm=norm)
        adv = _accuracy(model, x_adv, y)
        assert clean > 0.9 and adv < clean - 0.4, (norm, clean, adv)
        p = float("inf") if norm == "linf" else 2
        assert bool(((x_adv - x).flatten(1).norm(p=p, dim=1) <= eps + 1e-5).all())
        assert float(x_adv.min()) >= 0 and float(x_adv.max()) <= 1
    assert all(p.grad is None for p in model.parameters())


def test_pgd_restores_mode_and_works_under_inference_mode(trained_digits):
    model, dm = trained_digits
    x, y = dm.nonmembers()[0]
    model.train()
    with torch.inference_mode():
        x_adv = pgd(model, x[None], y[None], eps=0.1, steps=3, step_size=0.05, random_start=True)
    assert model.training and not x_adv.is_inference()
    model.eval()


def test_pgd_bad_arguments(trained_digits):
    model, _ = trained_digits
    x, y = torch.rand(1, 1, 8, 8), torch.tensor([0])
    with pytest.raises(ValueError, match="non-negative"):
        pgd(model, x, y, eps=-0.1, steps=1, step_size=0.1)
    with pytest.raises(ValueError, match="at least 1"):
        pgd(model, x, y, eps=0.1, steps=0, step_size=0.1)
    with pytest.raises(ValueError, match="`norm` can be"):
        pgd(model, x, y, eps=0.1, steps=1, step_size=0.1, norm="l7")
    with pytest.raises(ValueError, match="exactly one"):
        pgd(model, x, y, eps=0.1, steps=1)


def test_an_attack_restores_each_modules_own_mode():
    from privrob.models import CifarResNet

    model = CifarResNet(width=1, units_per_stage=1).train()
    model.units[0].bn1.eval()  # a frozen batch norm inside a training model
    before = [m.training for m in model.modules()]
    x, y = torch.rand(4, 3, 32, 32), torch.randint(0, 10, (4,))
    for bn_mode in ("eval", "train"):
        pgd(model, x, y, eps=0.03, steps=1, rel_step_size=1.0, bn_mode=bn_mode)
        assert [m.training for m in model.modules()] == before
