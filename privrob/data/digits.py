"""scikit-learn's 8x8 handwritten digits (1,797 images, shipped inside scikit-learn): the offline quickstart."""

from __future__ import annotations

import torch

from privrob.data.base import MembershipDataModule


class DigitsDataModule(MembershipDataModule):
    """Digits, scaled to [0, 1], split half/half into members and non-members by ``seed``.

    Needs no download; ``root`` and ``download`` are accepted and unused, so one config layout serves all data.
    """

    num_classes = 10
    input_shape = (1, 8, 8)
    default_eps = 0.1
    pixel_max = 16.0

    def _load_pool(self) -> tuple[torch.Tensor, torch.Tensor]:
        from sklearn.datasets import load_digits

        digits = load_digits()
        images = torch.as_tensor(digits.images, dtype=torch.uint8).unsqueeze(1)
        return images, torch.as_tensor(digits.target, dtype=torch.int64)

    def _split(self, labels: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        perm = torch.randperm(len(labels), generator=generator)
        half = len(labels) // 2
        return perm[:half].sort().values, perm[half:].sort().values
