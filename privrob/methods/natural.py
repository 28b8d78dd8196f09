"""Natural (undefended) training: empirical risk minimisation, the study's baseline."""

from __future__ import annotations

import torch

from privrob.methods.base import RobustTraining


class NaturalTraining(RobustTraining):
    """Cross-entropy on clean batches (the study's ``train_natural.py``)."""

    def training_loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self(x)
        return self.cross_entropy(logits, y), logits
