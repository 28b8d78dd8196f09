"""The Madry et al. CIFAR10 network (cifar10_challenge; original-study.md §1.7 C).

Per-image standardisation inside the model, conv 16, three stages of five pre-activation residual units
(160/320/640 channels at ``width=10``, strides 1/2/2), batch norm, leaky ReLU 0.1, global average pool, FC 10.
Inputs stay in [0, 1]; per-image standardisation makes that equivalent to the study's 0–255 scale.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class PerImageStandardization(nn.Module):
    """``tf.image.per_image_standardization``: (x − mean) / max(std, 1/sqrt(numel)) per image."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(1)
        mean = flat.mean(dim=1, keepdim=True)
        std = flat.std(dim=1, unbiased=False, keepdim=True)
        std = torch.clamp(std, min=1.0 / math.sqrt(flat.shape[1]))
        return ((flat - mean) / std).view_as(x)


def _activation(leaky: bool) -> nn.Module:
    return nn.LeakyReLU(0.1) if leaky else nn.ReLU()


class PreActUnit(nn.Module):
    """Pre-activation residual unit (He et al. 2016) as in Madry's model: BN-act-conv3x3(s)-BN-act-conv3x3."""

    def __init__(self, c_in: int, c_out: int, stride: int, leaky: bool, activate_before_residual: bool) -> None:
        super().__init__()
        self.bn1, self.act1 = nn.BatchNorm2d(c_in, momentum=0.1), _activation(leaky)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn2, self.act2 = nn.BatchNorm2d(c_out, momentum=0.1), _activation(leaky)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.activate_before_residual = activate_before_residual
        self.shortcut = None if (c_in == c_out and stride == 1) else nn.Conv2d(c_in, c_out, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.act1(self.bn1(x))
        residual = pre if self.activate_before_residual else x
        out = self.conv2(self.act2(self.bn2(self.conv1(pre))))
        return out + (residual if self.shortcut is None else self.shortcut(residual))


class CifarResNet(nn.Module):
    """Madry et al.'s CIFAR10 wide ResNet: filters [16, 16w, 32w, 64w] (w = ``width``, 10 in the study).

    Input: (N, 3, 32, 32) in [0, 1].
    """

    def __init__(self, width: int = 10, num_classes: int = 10, units_per_stage: int = 5, leaky_relu: bool = True):
        super().__init__()
        if not isinstance(width, int) or width < 1:
            raise ValueError(f"`width` must be a positive integer, got {width!r}")
        filters = [16, 16 * width, 32 * width, 64 * width]
        self.standardize = PerImageStandardization()
        self.stem = nn.Conv2d(3, filters[0], 3, padding=1, bias=False)
        units: list[nn.Module] = []
        for stage, stride in enumerate((1, 2, 2)):
            for i in range(units_per_stage):
                c_in = filters[stage] if i == 0 else filters[stage + 1]
                units.append(PreActUnit(c_in, filters[stage + 1], stride if i == 0 else 1, leaky_relu, i == 0))
        self.units = nn.Sequential(*units)
        self.bn, self.act = nn.BatchNorm2d(filters[3]), _activation(leaky_relu)
        self.pool, self.flatten = nn.AdaptiveAvgPool2d(1), nn.Flatten()
        self.fc = nn.Linear(filters[3], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.units(self.stem(self.standardize(x)))
        return self.fc(self.flatten(self.pool(self.act(self.bn(x)))))
