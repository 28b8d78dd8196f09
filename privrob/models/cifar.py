"""The Madry et al. CIFAR10 network (cifar10_challenge's ``model.py``; original-study.md §1.7 C and §8).

Per-image standardisation inside the model, conv 16, three stages of five pre-activation residual units
(160/320/640 channels at ``width=10``, strides 1/2/2), batch norm, leaky ReLU 0.1, then BN-act, global average pool,
FC 10: 45,901,914 trainable parameters at ``width=10``, as the TF model. As TF builds it: convolutions have no bias
and TF's ``SAME`` padding (0 before, 1 after on the stride-2 ones), shortcuts have no parameters (average pooling
with the stride, zero channels), batch norm has ε 1e-3 and decay 0.9 (momentum 0.1), and the initialisation is the
study's (He fan-out normal convolutions, uniform unit scaling logit layer, zero bias). Inputs stay in [0, 1];
standardising 255·x makes that the same as the study's 0–255 pixels.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from privrob.models.convnets import tf_same_padding
from privrob.models.init import tf_init_


class PerImageStandardization(nn.Module):
    """``tf.image.per_image_standardization`` of ``scale``·x: (x − mean) / max(std, 1/(scale·sqrt(numel))) per image.

    ``scale=255`` on [0, 1] inputs is exactly TF's on 0–255 pixels (the floor acts on near-constant images only).
    """

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(1)
        mean = flat.mean(dim=1, keepdim=True)
        std = flat.std(dim=1, unbiased=False, keepdim=True)
        std = torch.clamp(std, min=1.0 / (self.scale * math.sqrt(flat.shape[1])))
        return ((flat - mean) / std).view_as(x)


class SameConv2d(nn.Conv2d):
    """Bias-free ``Conv2d`` padded as TF's ``padding='SAME'`` for the size of each input (Madry's ``_conv``)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1) -> None:
        super().__init__(c_in, c_out, kernel, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom = tf_same_padding(x.shape[-2], self.kernel_size[0], self.stride[0])
        left, right = tf_same_padding(x.shape[-1], self.kernel_size[1], self.stride[1])
        return super().forward(F.pad(x, (left, right, top, bottom)))


class PoolPadShortcut(nn.Module):
    """Madry's parameter-free shortcut: 'VALID' average pooling of size and stride ``stride``, then (c_out − c_in)/2
    zero channels before and as many after."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.stride, self.pad = stride, (c_out - c_in) // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = F.avg_pool2d(x, self.stride)
        return F.pad(x, (0, 0, 0, 0, self.pad, self.pad))


def _activation(leaky: bool) -> nn.Module:
    return nn.LeakyReLU(0.1) if leaky else nn.ReLU()


def _batch_norm(channels: int) -> nn.BatchNorm2d:
    """``tf.contrib.layers.batch_norm`` with decay 0.9 and its default ε 1e-3."""
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.1)


class PreActUnit(nn.Module):
    """Pre-activation residual unit (He et al. 2016) as Madry's ``_residual``: BN-act-conv3x3(s)-BN-act-conv3x3 plus
    the shortcut, which takes the BN-act input with ``activate_before_residual`` and the raw input otherwise."""

    def __init__(self, c_in: int, c_out: int, stride: int, leaky: bool, activate_before_residual: bool) -> None:
        super().__init__()
        self.bn1, self.act1 = _batch_norm(c_in), _activation(leaky)
        self.conv1 = SameConv2d(c_in, c_out, 3, stride)
        self.bn2, self.act2 = _batch_norm(c_out), _activation(leaky)
        self.conv2 = SameConv2d(c_out, c_out, 3)
        self.activate_before_residual = activate_before_residual
        self.shortcut = PoolPadShortcut(c_in, c_out, stride) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.act1(self.bn1(x))
        residual = pre if self.activate_before_residual else x
        return self.conv2(self.act2(self.bn2(self.conv1(pre)))) + self.shortcut(residual)


class CifarResNet(nn.Module):
    """Madry et al.'s CIFAR10 wide ResNet: filters [16, 16w, 32w, 64w] (w = ``width``, 10 in the study);
    ``activate_before_residual`` for the first unit of stage 1 only; ``leaky_relu=False``: plain ReLU (the study's
    WRM model).

    Input: (N, 3, 32, 32) in [0, 1].
    """

    def __init__(self, width: int = 10, num_classes: int = 10, units_per_stage: int = 5, leaky_relu: bool = True):
        super().__init__()
        if not isinstance(width, int) or width < 1:
            raise ValueError(f"`width` must be a positive integer, got {width!r}")
        filters = [16, 16 * width, 32 * width, 64 * width]
        self.standardize = PerImageStandardization(scale=255.0)
        self.stem = SameConv2d(3, filters[0], 3)
        units: list[nn.Module] = []
        for stage, stride in enumerate((1, 2, 2)):
            for i in range(units_per_stage):
                c_in = filters[stage] if i == 0 else filters[stage + 1]
                units.append(PreActUnit(c_in, filters[stage + 1], stride if i == 0 else 1, leaky_relu,
                                        activate_before_residual=(stage, i) == (0, 0)))
        self.units = nn.Sequential(*units)
        self.bn, self.act = _batch_norm(filters[3]), _activation(leaky_relu)
        self.pool, self.flatten = nn.AdaptiveAvgPool2d(1), nn.Flatten()
        self.fc = nn.Linear(filters[3], num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Madry's initialisation (``tf``), fresh batch-norm parameters and statistics."""
        for module in self.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.reset_parameters()
        tf_init_(list(self.modules()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.units(self.stem(self.standardize(x)))
        return self.fc(self.flatten(self.pool(self.act(self.bn(x)))))
