"""The same code on a CUDA device: every method trains under bf16 mixed precision, and the attacks, bounds and
membership scores give the CPU's numbers. Skipped (with the reason) where no CUDA device is present, as in CI;
``bash benchmarks/gpu_check.sh`` runs them on a GPU machine."""

import pytest
import pytorch_lightning as pl
import torch

from privrob.bounds import margin_lower_bounds
from privrob.data import DigitsDataModule
from privrob.methods import (DiffAITraining, IBPTraining, NaturalTraining, NoiseLayerTraining, PGDTraining,
                             TRADESTraining, WongKolterTraining, WRMTraining)
from privrob.models import DigitsCNN
from privrob.privacy import Adversarial, Benign, score_examples
from tests.conftest import quiet_trainer

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (none here)")
CUDA, CPU = torch.device("cuda"), torch.device("cpu")
EPS = 0.1

MAKERS = {
    "natural": lambda: NaturalTraining(DigitsCNN(width=2), lr=3e-3),
    "pgd": lambda: PGDTraining(DigitsCNN(width=2), eps=EPS, steps=5, rel_step_size=0.25, lr=3e-3),
    "trades": lambda: TRADESTraining(DigitsCNN(width=2), eps=EPS, steps=5, step_size=0.025, beta=6.0, lr=3e-3),
    "wrm": lambda: WRMTraining(DigitsCNN(width=2), gamma=1.0, steps=5, lr=3e-3),
    "wong_kolter": lambda: WongKolterTraining(DigitsCNN(width=2), eps=EPS, eps_start=0.001, ramp_epochs=1,
                                              projections=20, lr=3e-3),
    "diffai": lambda: DiffAITraining(DigitsCNN(width=2), eps=EPS, warmup_epochs=0, ramp_epochs=1, lr=3e-3),
    "ibp": lambda: IBPTraining(DigitsCNN(width=2), eps=EPS, warmup_steps=5, ramp_steps=10, lr=3e-3),
    "noise_layer": lambda: NoiseLayerTraining(DigitsCNN(width=2), lr=3e-3),
}


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_every_method_trains_on_cuda_in_bf16_mixed(name):
    pl.seed_everything(0, verbose=False)
    model = MAKERS[name]()
    before = [p.detach().clone() for p in model.parameters()]
    quiet_trainer(accelerator="cuda", precision="bf16-mixed", max_epochs=2, limit_train_batches=10,
                  limit_val_batches=2).fit(model, DigitsDataModule(batch_size=32, seed=0))
    after = list(model.parameters())
    assert all(bool(torch.isfinite(p).all()) for p in after)
    assert any(not torch.equal(a.cpu(), b) for a, b in zip(after, before)), "no parameter moved"


@pytest.fixture
def trained(trained_digits):
    """conftest's natural Digits model (shared by the session), handed back on the CPU whatever the test did."""
    yield trained_digits
    trained_digits[0].cpu()


@pytest.mark.parametrize("method", ["ibp", "box", "crown_ibp", "dual", "zonotope"])
def test_bounds_on_cuda_equal_cpu_and_contain_samples(method, trained):
    model, dm = trained
    xs, ys = zip(*[dm.members()[i] for i in range(32)])
    x, y = torch.stack(xs), torch.stack(ys)
    with torch.no_grad():
        cpu = margin_lower_bounds(model.cpu(), x, y, 0.05, method)
        gpu = margin_lower_bounds(model.to(CUDA), x.to(CUDA), y.to(CUDA), 0.05, method)
        torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-4, rtol=1e-4)
        for _ in range(20):  # every sampled perturbation's margin lies above the bound
            xp = (x.to(CUDA) + torch.empty_like(x, device=CUDA).uniform_(-0.05, 0.05)).clamp(0, 1)
            logits = model(xp)
            margins = logits.gather(1, y.to(CUDA)[:, None]) - logits
            assert bool((margins >= gpu - 1e-4).all())


def test_pgd_and_membership_scores_on_cuda_equal_cpu(trained, monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)  # full float32 convolutions, as on the CPU
    model, dm = trained
    idx = torch.arange(400)
    rows = {}
    for device in (CPU, CUDA):
        model.to(device)
        for strategy in (Benign(), Adversarial(eps=EPS, steps=20, random_start=False)):
            rows[device.type, type(strategy).__name__] = score_examples(model, dm.nonmembers(), idx, strategy, 200,
                                                                        device).compute()
    accuracy = {key: float(r["correct"].double().mean()) for key, r in rows.items()}
    assert accuracy["cuda", "Adversarial"] < accuracy["cuda", "Benign"] - 0.3, accuracy
    # PGD follows the sign of the gradient, so last-bit differences between devices can send a point elsewhere:
    # the attacked accuracy agrees closely, the clean scores exactly up to float32 rounding
    assert abs(accuracy["cuda", "Adversarial"] - accuracy["cpu", "Adversarial"]) <= 0.02, accuracy
    torch.testing.assert_close(rows["cuda", "Benign"]["scores"].cpu(), rows["cpu", "Benign"]["scores"], atol=1e-5,
                               rtol=0)
