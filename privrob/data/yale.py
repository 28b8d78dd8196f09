"""Extended Yale Face Database B, cropped (Georghiades et al. 2001; Lee et al. 2005): 2,414 images of 38 people.

Reads the official ``CroppedYale`` layout (``root/CroppedYale/yaleBxx/yaleBxx_P00A*.pgm``), skipping the
``*_Ambient.pgm`` frames and the ``*.pgm.bad`` files the dataset's authors marked as bad, as the study's
``YALEBXF.mat`` did (original-study.md §2). Labels follow sorted subject order (yaleB01 = 0, ..., yaleB39 = 37).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from privrob.data.base import MembershipDataModule, per_class_split

URL = "http://vision.ucsd.edu/extyaleb/CroppedYaleBZip/CroppedYale.zip"
HEIGHT, WIDTH = 192, 168


class YaleDataModule(MembershipDataModule):
    """Yale Face: 192 (H) x 168 (W), one channel, in [0, 1]; ``members_per_class`` (50) per person as members.

    Args:
        members_per_class: members per person (the study's 50 gives 1,900 members and 514 non-members).
        pad_to: zero-pad the width symmetrically (and the height, if smaller) to ``pad_to`` (the study's dual
            method uses 192, i.e. 12 zero columns on each side).
        **kwargs: see :class:`~privrob.data.base.MembershipDataModule`.
    """

    num_classes = 38
    default_eps = 0.0314

    def __init__(self, root: str = "data", members_per_class: int = 50, pad_to: Optional[int] = None,
                 batch_size: int = 20, eval_batch_size: int = 32, num_workers: int = 0, seed: int = 0,
                 download: bool = False, num_members: Optional[int] = None,
                 num_nonmembers: Optional[int] = None) -> None:
        super().__init__(root, batch_size, eval_batch_size, num_workers, seed, download, num_members, num_nonmembers)
        if members_per_class < 1:
            raise ValueError(f"`members_per_class` must be at least 1, got {members_per_class}")
        if pad_to is not None and pad_to < HEIGHT:
            raise ValueError(f"`pad_to` must be at least {HEIGHT} (the image height), got {pad_to}")
        self.members_per_class, self.pad_to = members_per_class, pad_to
        side = pad_to or HEIGHT
        self.input_shape = (1, max(HEIGHT, side), max(WIDTH, side))

    @property
    def folder(self) -> Path:
        return self.root / "CroppedYale"

    def prepare_data(self) -> None:
        if self.download and not self.folder.is_dir():
            from torchvision.datasets.utils import download_and_extract_archive

            self._download(lambda: download_and_extract_archive(URL, download_root=str(self.root)), self.folder)

    def _image_files(self) -> list[list[Path]]:
        how = (f"expected the official layout {self.folder}/yaleBxx/yaleBxx_P00A*.pgm; pass download=True "
               f"(--data.init_args.download true) or unpack CroppedYale.zip into {self.root}")
        if not self.folder.is_dir():
            raise FileNotFoundError(f"Yale Face data not found: no folder {self.folder}; {how}")
        subjects = sorted(p for p in self.folder.glob("yaleB*") if p.is_dir())
        files = [sorted(f for f in s.glob("*_P00A*.pgm") if "Ambient" not in f.name) for s in subjects]
        if not subjects or not all(files):
            empty = next((s.name for s, f in zip(subjects, files) if not f), None)
            raise FileNotFoundError(f"Yale Face data in {self.folder} has the wrong layout "
                                    f"({'no yaleBxx folders' if not subjects else f'no images in {empty}'}); {how}")
        return files

    def _load_pool(self) -> tuple[torch.Tensor, torch.Tensor]:
        from PIL import Image

        files = self._image_files()
        images = np.empty((sum(map(len, files)), 1, HEIGHT, WIDTH), dtype=np.uint8)
        labels = np.concatenate([np.full(len(f), label, dtype=np.int64) for label, f in enumerate(files)])
        for i, path in enumerate(p for subject in files for p in subject):
            try:
                with Image.open(path) as img:
                    pixels = np.asarray(img.convert("L"))
            except Exception as err:  # PIL raises several types for a broken file
                raise ValueError(f"cannot read Yale image {path}: {err}") from None
            if pixels.shape != (HEIGHT, WIDTH):
                raise ValueError(f"Yale image {path} is {pixels.shape[1]}x{pixels.shape[0]}, expected {WIDTH}x{HEIGHT}")
            images[i, 0] = pixels
        pool = torch.from_numpy(images)
        if self.pad_to is not None:
            left = (self.pad_to - WIDTH) // 2
            top = (self.pad_to - HEIGHT) // 2
            pool = F.pad(pool, (left, self.pad_to - WIDTH - left, top, self.pad_to - HEIGHT - top))
        if len(files) != self.num_classes:
            raise ValueError(f"Yale Face data in {self.folder} has {len(files)} subjects, expected {self.num_classes}")
        return pool, torch.from_numpy(labels)

    def _split(self, labels: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        return per_class_split(labels, self.members_per_class, generator)
