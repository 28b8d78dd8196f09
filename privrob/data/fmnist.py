"""Fashion-MNIST (Xiao et al. 2017) through torchvision: 60,000 members, 10,000 non-members (the study's split)."""

from __future__ import annotations

import torch

from privrob.data.base import StandardSplitDataModule


class FashionMNISTDataModule(StandardSplitDataModule):
    """Fashion-MNIST in torchvision's layout (``root/FashionMNIST/raw/*-ubyte``), (1, 28, 28) in [0, 1]."""

    num_classes = 10
    input_shape = (1, 28, 28)
    default_eps = 0.1

    def prepare_data(self) -> None:
        if self.download:
            from torchvision.datasets import FashionMNIST

            self._download(lambda: (FashionMNIST(str(self.root), train=True, download=True),
                                    FashionMNIST(str(self.root), train=False, download=True)),
                           self.root / "FashionMNIST")

    def _load_pool(self) -> tuple[torch.Tensor, torch.Tensor]:
        from torchvision.datasets import FashionMNIST

        try:
            train = FashionMNIST(str(self.root), train=True, download=False)
            test = FashionMNIST(str(self.root), train=False, download=False)
        except RuntimeError as err:
            raise FileNotFoundError(
                f"Fashion-MNIST not found in {self.root / 'FashionMNIST' / 'raw'} (torchvision's layout: "
                f"train-images-idx3-ubyte, ...; {err}); pass download=True (--data.init_args.download true) "
                f"or point --data.init_args.root at the folder that holds FashionMNIST/") from None
        self.num_train = len(train.data)
        images = torch.cat([train.data, test.data]).unsqueeze(1)
        return images, torch.cat([train.targets, test.targets]).long()
