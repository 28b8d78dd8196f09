"""The noise-layer defence of Lecuyer, Atlidakis, Geambasu, Hsu, Jana (PixelDP, IEEE S&P 2019, arXiv:1802.03471).

A noise layer follows the network's first (convolution or linear) layer, whose sensitivity Δ is bounded by 1 by
normalising its weights; the noise makes the network's output (ε, δ)-differentially private with respect to
l_2 (Gaussian) or l_1 (Laplace) input changes of size L. Predictions average the softmax over noise draws.
"""

from __future__ import annotations

import math
from typing import Literal, Optional

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from privrob.methods.base import RobustTraining


def noise_scale(mechanism: str, dp_eps: float, delta: float, attack_bound: float, sensitivity: float = 1.0) -> float:
    """Gaussian σ = sqrt(2·ln(1.25/δ))·Δ₂·L/ε, or Laplace b = Δ₁·L/ε (Lecuyer et al. 2019, §3)."""
    if dp_eps <= 0 or attack_bound < 0 or sensitivity < 0:
        raise ValueError(f"need dp_eps > 0, attack_bound ≥ 0, sensitivity ≥ 0; got {dp_eps}, {attack_bound}, "
                         f"{sensitivity}")
    if mechanism == "gaussian":
        if not 0 < delta < 1:
            raise ValueError(f"`delta` must be in (0, 1), got {delta}")
        return math.sqrt(2 * math.log(1.25 / delta)) * sensitivity * attack_bound / dp_eps
    if mechanism == "laplace":
        return sensitivity * attack_bound / dp_eps
    raise ValueError(f"`mechanism` can be gaussian, laplace, got {mechanism!r}")


def sensitivity(weight: torch.Tensor, norm: Literal[1, 2]) -> torch.Tensor:
    """An upper bound on the layer's operator norm ‖·‖_p→p (stride and padding can only lower it): the largest
    column l1 norm Δ₁ = max over inputs of Σ|W|; for p = 2, sqrt(Δ₁·Δ_∞) (Schur's test), Δ_∞ the largest row sum."""
    w = weight.abs().flatten(2) if weight.dim() > 2 else weight.abs().unsqueeze(-1)  # (out, in, taps)
    d1 = w.sum(dim=(0, 2)).max()   # each input channel's total reach
    if norm == 1:
        return d1
    d_inf = w.sum(dim=(1, 2)).max()  # each output's total weight
    return torch.sqrt(d1 * d_inf)


class SensitivityNormalization(nn.Module):
    """Weight parametrisation W ↦ W / max(1, Δ_p(W)), so that the layer's sensitivity is at most 1."""

    def __init__(self, norm: Literal[1, 2]) -> None:
        super().__init__()
        self.norm = norm

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight / sensitivity(weight, self.norm).clamp(min=1.0)

    def right_inverse(self, weight: torch.Tensor) -> torch.Tensor:
        """Assigning a weight stores it as drawn, as at construction (a re-initialisation goes through here)."""
        return weight


class NoiseLayerTraining(RobustTraining):
    """PixelDP: cross-entropy of the noisy network; predictions (eval mode) average softmax over ``eval_draws`` noise
    draws from a generator seeded with ``noise_seed`` at every call (deterministic; each draw shared by every example
    of the batch, so a prediction does not depend on the batch), returned as log-probabilities, so membership
    inference scores the averaged prediction.

    Args:
        mechanism: ``gaussian`` (l_2 attacks) or ``laplace`` (l_1 attacks).
        dp_eps, delta: the (ε, δ) of the noise layer (Lecuyer et al.: 1.0 and 0.05).
        attack_bound: L, the l_2 (or l_1) attack size the noise protects against (the study's appendix: 0.1).
        eval_draws: noise draws averaged per prediction.
        noise_seed: seed of the evaluation noise.
        **kwargs: see :class:`~privrob.methods.base.RobustTraining`.
    """

    def __init__(self, backbone: nn.Module, mechanism: Literal["gaussian", "laplace"] = "gaussian",
                 dp_eps: float = 1.0, delta: float = 0.05, attack_bound: float = 0.1, eval_draws: int = 20,
                 noise_seed: int = 0, **kwargs) -> None:
        super().__init__(backbone, **kwargs)
        self.scale = noise_scale(mechanism, dp_eps, delta, attack_bound)
        if eval_draws < 1:
            raise ValueError(f"`eval_draws` must be at least 1, got {eval_draws}")
        first = next((m for m in backbone.modules() if isinstance(m, (nn.Conv2d, nn.Linear))), None)
        if first is None:
            raise ValueError("the noise layer follows the first Conv2d or Linear layer; the backbone has none")
        parametrize.register_parametrization(first, "weight", SensitivityNormalization(2 if mechanism == "gaussian" else 1))
        first.register_forward_hook(self._add_noise)
        self.first_layer = [first]  # a list: not registered twice as a submodule
        self._generator: Optional[torch.Generator] = None

    def _add_noise(self, module: nn.Module, inputs, output: torch.Tensor) -> torch.Tensor:
        # evaluation: one seeded draw shared by the batch, so that an example's prediction does not depend on its
        # place in the batch or on the batch's size
        shape = output.shape if self._generator is None else (1, *output.shape[1:])
        if self.hparams.mechanism == "gaussian":
            noise = torch.randn(shape, generator=self._generator, device="cpu", dtype=output.dtype)
        else:
            u = torch.rand(shape, generator=self._generator, device="cpu", dtype=output.dtype) - 0.5
            noise = -torch.sign(u) * torch.log1p(-2 * u.abs())  # Laplace(0, 1) by inversion
        return output + self.scale * noise.to(output.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return self.backbone(x)  # noise from the global generator (saved with the checkpoint's RNG state)
        self._generator = torch.Generator().manual_seed(self.hparams.noise_seed)
        try:
            probs = sum(F.softmax(self.backbone(x).float(), dim=1) for _ in range(self.hparams.eval_draws))
        finally:
            self._generator = None
        return torch.log(probs / self.hparams.eval_draws)

    def training_loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self(x)
        return self.cross_entropy(logits, y), logits
