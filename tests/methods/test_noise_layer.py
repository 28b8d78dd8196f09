"""The PixelDP noise layer (Lecuyer et al. 2019)."""

import math

import pytest
import pytorch_lightning as pl
import torch
from torch import nn

from privrob.data import DigitsDataModule
from privrob.methods import NoiseLayerTraining
from privrob.methods.noise_layer import noise_scale, sensitivity
from privrob.models import DigitsCNN
from tests.conftest import quiet_trainer


def test_noise_scale_matches_the_formula():
    assert noise_scale("gaussian", 1.0, 0.05, 0.1) == pytest.approx(math.sqrt(2 * math.log(1.25 / 0.05)) * 0.1)
    assert noise_scale("gaussian", 0.5, 1e-5, 0.3, sensitivity=2.0) == pytest.approx(
        math.sqrt(2 * math.log(1.25e5)) * 2.0 * 0.3 / 0.5)
    assert noise_scale("laplace", 2.0, 0.05, 0.1, sensitivity=3.0) == pytest.approx(3.0 * 0.1 / 2.0)
    with pytest.raises(ValueError, match="mechanism"):
        noise_scale("cauchy", 1.0, 0.05, 0.1)


@pytest.mark.parametrize("norm", [1, 2])
def test_sensitivity_bound_is_sound_and_normalisation_bounds_it(norm):
    torch.manual_seed(0)
    layer = nn.Linear(30, 20)
    exact = torch.linalg.matrix_norm(layer.weight, ord=norm)  # the operator norm of a matrix
    assert float(sensitivity(layer.weight, norm)) >= float(exact) - 1e-6
    conv = nn.Conv2d(1, 8, 3, padding=1)
    x = torch.randn(64, 1, 8, 8)
    gain = (conv(x) - conv(torch.zeros_like(x))).flatten(1).norm(p=norm, dim=1) / x.flatten(1).norm(p=norm, dim=1)
    assert float(gain.max()) <= float(sensitivity(conv.weight, norm)) + 1e-5
    model = NoiseLayerTraining(DigitsCNN(width=1), mechanism="gaussian" if norm == 2 else "laplace")
    assert float(sensitivity(model.backbone[0].weight, norm)) <= 1.0 + 1e-6


def test_averaged_predictions_are_deterministic_for_a_seed():
    torch.manual_seed(0)
    model = NoiseLayerTraining(DigitsCNN(width=1), eval_draws=8).eval()
    x = torch.rand(5, 1, 8, 8)
    a, b = model(x), model(x)
    assert torch.equal(a, b) and torch.allclose(a.exp().sum(1), torch.ones(5), atol=1e-5)
    other = NoiseLayerTraining(DigitsCNN(width=1), eval_draws=8, noise_seed=1)
    other.load_state_dict(model.state_dict())
    assert not torch.equal(other.eval()(x), a)
    model.train()
    assert not torch.equal(model(x), model(x))  # training draws fresh noise


def test_trains_on_digits():
    torch.manual_seed(0)
    pl.seed_everything(0, verbose=False)
    model = NoiseLayerTraining(DigitsCNN(width=2), attack_bound=0.05, eval_draws=4, lr=3e-3)
    trainer = quiet_trainer(max_epochs=5)
    trainer.fit(model, DigitsDataModule(batch_size=32))
    assert float(trainer.callback_metrics["val/acc"]) > 0.5  # chance is 0.1


def test_a_pixeldp_backbone_can_be_drawn_again():
    """LiRA's reference models re-initialise the backbone through the first layer's normalisation."""
    torch.manual_seed(0)
    m = NoiseLayerTraining(DigitsCNN(width=1))
    first = m.first_layer[0]
    before = first.parametrizations.weight.original.clone()
    m.backbone.reset_parameters()
    after = first.parametrizations.weight.original
    assert not torch.equal(before, after) and float(sensitivity(first.weight, 2)) <= 1.0 + 1e-5
