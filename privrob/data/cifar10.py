"""CIFAR10 (Krizhevsky 2009): 50,000 members, 10,000 non-members (the study's split).

``prepare_data`` downloads with torchvision, which verifies the archive's checksum right after the download.
Loading reads the standard ``cifar-10-batches-py`` pickles directly and does not checksum them again on every
run (torchvision's ``CIFAR10`` class does), so a small folder in the same format also loads.
"""

from __future__ import annotations

import pickle
from typing import Optional

import numpy as np
import torch

from privrob.data.augmentation import random_crop_and_flip
from privrob.data.base import StandardSplitDataModule

TRAIN_FILES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_FILES = ["test_batch"]


class CIFAR10DataModule(StandardSplitDataModule):
    """CIFAR10, (3, 32, 32) in [0, 1]. Training batches get, per example, a random 32x32 crop of the image
    zero-padded by ``crop_padding`` on each side and a horizontal flip, as in the study (``augment=True``; drawn by
    :func:`~privrob.data.augmentation.random_crop_and_flip`); membership inference and evaluation never augment.
    The study's TF runs (natural, PGD, WRM: cifar10_challenge's ``resize_image_with_crop_or_pad`` to 36x36) pad by
    2, its TRADES run (``RandomCrop(32, padding=4)``) by 4."""

    num_classes = 10
    input_shape = (3, 32, 32)
    default_eps = 8 / 255

    def __init__(self, root: str = "data", augment: bool = True, batch_size: int = 128, eval_batch_size: int = 500,
                 num_workers: int = 0, seed: int = 0, download: bool = False, num_members: Optional[int] = None,
                 num_nonmembers: Optional[int] = None, crop_padding: int = 4) -> None:
        super().__init__(root, batch_size, eval_batch_size, num_workers, seed, download, num_members, num_nonmembers)
        if crop_padding < 0:
            raise ValueError(f"`crop_padding` must be non-negative, got {crop_padding}")
        self.augment, self.crop_padding = augment, crop_padding

    def augment_batch(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return random_crop_and_flip(x, self.crop_padding, generator, *self._rank_and_world_size())

    def prepare_data(self) -> None:
        if self.download and not (self.root / "cifar-10-batches-py").is_dir():
            from torchvision.datasets import CIFAR10

            self._download(lambda: CIFAR10(str(self.root), train=True, download=True),
                           self.root / "cifar-10-batches-py")

    def _read(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        path = self.root / "cifar-10-batches-py" / name
        if not path.is_file():
            raise FileNotFoundError(f"CIFAR10 not found: no file {path} (the standard cifar-10-batches-py layout); "
                                    f"pass download=True (--data.init_args.download true) or point "
                                    f"--data.init_args.root at the folder that holds cifar-10-batches-py/")
        try:
            with open(path, "rb") as f:
                batch = pickle.load(f, encoding="latin1")
            data = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            labels = np.asarray(batch["labels"], dtype=np.int64)
        except Exception as err:  # a truncated or foreign pickle raises many types
            raise ValueError(f"cannot read CIFAR10 batch {path}: {type(err).__name__}: {err}") from None
        return data, labels

    def _load_pool(self) -> tuple[torch.Tensor, torch.Tensor]:
        train = [self._read(n) for n in TRAIN_FILES]
        test = [self._read(n) for n in TEST_FILES]
        self.num_train = sum(len(l) for _, l in train)
        images = np.concatenate([d for d, _ in train + test])
        labels = np.concatenate([l for _, l in train + test])
        return torch.from_numpy(images), torch.from_numpy(labels)
