"""Random crop and horizontal flip of a whole batch, one draw per example, from a given generator (the CIFAR10
augmentation of the study: each image zero-padded, cropped back to its size at a random offset, flipped with
probability ½).

Written here rather than taken from torchvision: its ``v2.RandomCrop`` and ``v2.RandomHorizontalFlip`` draw one
crop and one flip per call, for a whole batch at once, and take no generator (they draw from the global one), so
per-example draws from a generator of the data module's own would need a Python loop over the batch (a few kernels
per image on a GPU) around a swap of the global generator's state."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def random_crop_and_flip(x: torch.Tensor, padding: int, generator: torch.Generator, rank: int = 0,
                         world_size: int = 1) -> torch.Tensor:
    """``x`` (N, C, H, W): each image zero-padded by ``padding`` per side, cropped to (H, W) at an offset drawn
    uniformly from {0, ..., 2·padding} in each direction, and mirrored left-right with probability ½. The offsets
    and flips are drawn on the CPU from ``generator``, so the draws do not depend on the device; on ``world_size``
    devices every rank draws all ranks' (its batch size each) from the same stream and takes its own, so that one
    generator state, saved by any rank, serves every rank."""
    n, _, h, w = x.shape
    offsets = torch.randint(0, 2 * padding + 1, (world_size, 2, n), generator=generator)[rank].to(x.device)
    flips = (torch.rand(world_size, n, generator=generator)[rank] < 0.5).to(x.device)
    rows = offsets[0, :, None] + torch.arange(h, device=x.device)  # (N, H): rows of the padded image
    cols = offsets[1, :, None] + torch.arange(w, device=x.device)  # (N, W)
    cols = torch.where(flips[:, None], cols.flip(1), cols)  # a mirrored crop reads its columns backwards
    padded = F.pad(x, (padding,) * 4)
    batch = torch.arange(n, device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()
