import pytest
import torch

from privrob.attacks import L2Step, LagrangianStep, LinfStep


@pytest.mark.parametrize("cls,norm", [(LinfStep, float("inf")), (L2Step, 2)])
def test_projection_stays_in_ball_and_range_and_is_idempotent(cls, norm):
    torch.manual_seed(0)
    x0 = torch.rand(16, 1, 6, 6)
    step = cls(x0, eps=0.3, step_size=0.1)
    x = step.project(x0 + torch.randn_like(x0))
    dist = (x - x0).flatten(1).norm(p=norm, dim=1)
    assert bool((dist <= 0.3 + 1e-6).all()) and float(x.min()) >= 0 and float(x.max()) <= 1
    assert torch.allclose(step.project(x), x, atol=1e-7)
    r = step.random_perturb(x0)
    assert bool(((r - x0).flatten(1).norm(p=norm, dim=1) <= 0.3 + 1e-6).all())


def test_linf_step_moves_by_step_size():
    x0 = torch.full((2, 4), 0.5)
    step = LinfStep(x0, eps=1.0, step_size=0.1)
    assert torch.allclose(step.step(x0, torch.tensor([[1.0, -2.0, 0.5, -0.1]] * 2)),
                          torch.tensor([[0.6, 0.4, 0.6, 0.4]] * 2))


def test_lagrangian_default_step_jumps_to_grad_over_2gamma():
    x0 = torch.full((1, 3), 0.5)
    step = LagrangianStep(x0, gamma=2.0)
    g = torch.tensor([[0.4, -0.4, 0.0]])
    x = torch.full((1, 3), 0.9)  # wherever it stands, one step lands at x0 + g / (2γ)
    assert torch.allclose(step.step(x, g), x0 + g / 4)
