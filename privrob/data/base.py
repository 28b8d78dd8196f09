"""The member/non-member split shared by every dataset.

The training set is the *members*, the held-out set the *non-members* (Song et al. 2019, §3). The split is
drawn once from ``seed`` and saved in the checkpoint as int64 index tensors (``state_dict``), so that a resumed
run or an audit of a checkpoint sees exactly the same members.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable, Optional

import pytorch_lightning as pl
import torch
import torch.distributed as dist
from pytorch_lightning.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, Dataset
from torchdata.stateful_dataloader import StatefulDataLoader


class ImageTensorDataset(Dataset):
    """(image, label) pairs from an in-memory integer tensor (N, C, H, W), divided by ``pixel_max`` on access."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, indices: torch.Tensor,
                 pixel_max: float = 255.0) -> None:
        self.images, self.labels, self.indices, self.pixel_max = images, labels, indices, pixel_max

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        j = self.indices[i]
        return self.images[j].float().div_(self.pixel_max), self.labels[j]


class MembershipDataModule(pl.LightningDataModule):
    """Base DataModule: an image pool, a seeded member/non-member split, and the loaders Lightning asks for.

    Subclasses implement ``_load_pool`` (all images as uint8 (N, C, H, W) and int64 labels) and ``_split``
    (member and non-member indices into the pool). ``train_dataloader`` serves the members (training batches
    augmented by ``augment_batch`` where the subclass sets ``augment``), ``val_dataloader`` and ``test_dataloader``
    the non-members, and ``members()``/``nonmembers()`` both sets unaugmented for membership inference.

    Args:
        root: folder that holds the dataset's own folder (as torchvision's ``root``).
        batch_size: training batch size **per device** (a run on N devices uses N x batch_size per step; the
            study's settings in ``configs/`` are for one device).
        eval_batch_size: batch size of validation, test and membership-inference passes.
        num_workers: loader worker processes.
        seed: seed of the member/non-member split.
        download: fetch the dataset in ``prepare_data`` when it is missing.
        num_members: if set, a seeded subset of this many members (the rest of the training pool is unused).
        num_nonmembers: if set, a seeded subset of this many non-members.
    """

    num_classes: int
    input_shape: tuple[int, int, int]
    #: the study's l_inf budget for this dataset's evaluation attack (original-study.md §3.1)
    default_eps: float
    #: whether training batches go through :meth:`augment_batch`
    augment: bool = False
    #: the stored integer pixel value that means 1.0
    pixel_max: float = 255.0

    def __init__(self, root: str = "data", batch_size: int = 64, eval_batch_size: int = 256, num_workers: int = 0,
                 seed: int = 0, download: bool = False, num_members: Optional[int] = None,
                 num_nonmembers: Optional[int] = None) -> None:
        super().__init__()
        for name, value in (("batch_size", batch_size), ("eval_batch_size", eval_batch_size)):
            if value < 1:
                raise ValueError(f"`{name}` must be at least 1, got {value}")
        for name, value in (("num_members", num_members), ("num_nonmembers", num_nonmembers)):
            if value is not None and value < 1:
                raise ValueError(f"`{name}` must be at least 1 or null, got {value}")
        self.root = Path(root).expanduser()
        self.batch_size, self.eval_batch_size, self.num_workers = batch_size, eval_batch_size, num_workers
        self.seed, self.download = seed, download
        self.num_members, self.num_nonmembers = num_members, num_nonmembers
        self.images: Optional[torch.Tensor] = None
        self.labels: Optional[torch.Tensor] = None
        self.member_indices: Optional[torch.Tensor] = None
        self.nonmember_indices: Optional[torch.Tensor] = None
        self._shuffle_generator: Optional[torch.Generator] = None
        self._augment_generator: Optional[torch.Generator] = None

    # -- what a dataset provides ---------------------------------------------------------------------------
    def _load_pool(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All images (integers up to ``pixel_max``, (N, C, H, W)) and labels (int64, (N,)) of the dataset."""
        raise NotImplementedError

    def _split(self, labels: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Member and non-member indices into the pool."""
        raise NotImplementedError

    def augment_batch(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A random augmentation of a training batch (on its device), drawn from ``generator`` only (where
        ``augment`` is set). On N devices every rank shares the generator's stream (a checkpoint holds rank 0's
        state, which every rank restores): each draws all ranks' parameters and uses its own."""
        raise NotImplementedError

    def _download(self, fetch: Callable[[], object], folder: Path) -> None:
        """Run ``fetch``, which downloads into ``root`` (the dataset's files under ``folder``). If it fails, remove
        what it created (folders up to ``root``, new entries of ``root``, new files under ``folder``; nothing that
        existed before) and raise a one-line error naming ``folder``."""
        created = next((p for p in reversed([self.root, *self.root.parents]) if not p.exists()), None)
        before = {*self.root.glob("*"), *folder.rglob("*")}
        try:
            fetch()
        except (OSError, RuntimeError) as err:  # urllib's URLError is an OSError; torchvision raises RuntimeError
            new = [created] if created else sorted({*self.root.glob("*"), *folder.rglob("*")} - before, reverse=True)
            for path in new:
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink(missing_ok=True)
            raise FileNotFoundError(f"download into {folder} failed: {' '.join(str(err).split())}") from None

    # -- Lightning hooks ------------------------------------------------------------------------------------
    def setup(self, stage: Optional[str] = None) -> None:
        if self.images is None:
            self.images, self.labels = self._load_pool()
        if self.member_indices is None:
            self.member_indices, self.nonmember_indices = self.draw_split(self.seed)

    def draw_split(self, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The member and non-member indices that ``seed`` gives (int64)."""
        assert self.labels is not None, "call setup() first"
        generator = torch.Generator().manual_seed(seed)
        members, nonmembers = self._split(self.labels, generator)
        members = self._subsample(members, self.num_members, "num_members", generator)
        nonmembers = self._subsample(nonmembers, self.num_nonmembers, "num_nonmembers", generator)
        return members.long(), nonmembers.long()

    @staticmethod
    def _subsample(indices: torch.Tensor, n: Optional[int], name: str, generator: torch.Generator) -> torch.Tensor:
        if n is None:
            return indices
        if n > len(indices):
            raise ValueError(f"`{name}`={n} asks for more examples than the split has ({len(indices)})")
        return indices[torch.randperm(len(indices), generator=generator)[:n]].sort().values

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The split, as int64 tensors, and the shuffling and augmentation generators' states once training has
        begun (loadable with ``torch.load(weights_only=True)``)."""
        if self.member_indices is None:
            return {}
        state = {"member_indices": self.member_indices.clone(), "nonmember_indices": self.nonmember_indices.clone(),
                 "seed": torch.tensor(self.seed, dtype=torch.int64)}
        if self._shuffle_generator is not None:
            state["shuffle_generator"] = self._shuffle_generator.get_state()
        if self._augment_generator is not None:
            state["augment_generator"] = self._augment_generator.get_state()
        return state

    def load_state_dict(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Use the split (and the shuffling and augmentation generators) saved in a checkpoint instead of drawing
        them."""
        if "member_indices" not in state_dict:
            return
        self.member_indices = state_dict["member_indices"].long()
        self.nonmember_indices = state_dict["nonmember_indices"].long()
        self.seed = int(state_dict["seed"])
        if "shuffle_generator" in state_dict:
            self._shuffle_generator = torch.Generator()
            self._shuffle_generator.set_state(state_dict["shuffle_generator"])
        if "augment_generator" in state_dict:
            self._augment_generator = torch.Generator()
            self._augment_generator.set_state(state_dict["augment_generator"])

    # -- datasets and loaders -------------------------------------------------------------------------------
    def _dataset(self, indices: Optional[torch.Tensor]) -> ImageTensorDataset:
        if indices is None or self.images is None:
            raise RuntimeError(f"{type(self).__name__}: call setup() before asking for data")
        return ImageTensorDataset(self.images, self.labels, indices, self.pixel_max)

    def members(self) -> ImageTensorDataset:
        """The training set, unaugmented."""
        return self._dataset(self.member_indices)

    def nonmembers(self) -> ImageTensorDataset:
        """The held-out set, unaugmented."""
        return self._dataset(self.nonmember_indices)

    def _loader(self, dataset: Dataset, batch_size: int) -> DataLoader:
        """An evaluation loader. On many devices each rank gets a disjoint shard without the padding that
        ``DistributedSampler`` adds (it would count repeated examples), so accuracies are exact.

        Its own (unused) generator: a DataLoader without one draws its workers' base seed from the global torch
        generator when an iterator is made (every pass without persistent workers), so Lightning's validation
        passes would shift every later random start, noise draw and shuffle of training with how often a run
        validates (Lightning isolates only its sanity check)."""
        sampler = UnrepeatedDistributedSampler(dataset, shuffle=False) if dist.is_available() and \
            dist.is_initialized() and dist.get_world_size() > 1 else None
        return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=self.num_workers,
                          persistent_workers=self.num_workers > 0, generator=torch.Generator())

    def train_dataloader(self) -> StatefulDataLoader:
        """The members, shuffled, through torchdata's ``StatefulDataLoader``: Lightning saves its position in the
        checkpoint, so a run resumed mid-epoch sees the rest of the same epoch's order.

        The shuffling generator (torchdata's sampler seeds its own from one draw of the global generator when the
        first loader is built) is kept across loaders and saved in :meth:`state_dict`: a run resumed from a
        checkpoint taken at an epoch end, whose loader Lightning builds afresh, draws the next epoch's order from
        where the uninterrupted run's generator stood, and rebuilding it draws nothing from the global generators.
        The first build also seeds the augmentation generator (where ``augment`` is set) from one global draw.
        """
        dataset = self._dataset(self.member_indices)
        with torch.random.fork_rng(devices=[], enabled=self._shuffle_generator is not None):  # its seed is unused
            loader = StatefulDataLoader(dataset, batch_size=self.batch_size, shuffle=True,
                                        num_workers=self.num_workers, persistent_workers=self.num_workers > 0)
        if self._shuffle_generator is None:
            self._shuffle_generator = loader.sampler.generator
        loader.sampler.generator = self._shuffle_generator
        if self.augment and self._augment_generator is None:  # one more draw of the global generator (the same
            # on every rank, as seed_everything leaves them): one stream for all ranks, see augment_batch
            self._augment_generator = torch.Generator().manual_seed(
                int(torch.empty((), dtype=torch.int64).random_(2 ** 62)))
        return loader

    def forget_generators(self) -> None:
        """Draw the shuffling and augmentation generators afresh (from the global generator) at the next loader
        build, e.g. for a model trained on another split."""
        self._shuffle_generator = self._augment_generator = None

    def _rank_and_world_size(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        """Training batches are augmented here, on their device, in the main process, when the step takes them
        (not one batch ahead in the loader, nor in its workers) and from the data module's own generator, which
        :meth:`state_dict` saves: a run resumed from any checkpoint draws the uninterrupted run's augmentation.
        (Lightning calls this hook of the data module instead of the LightningModule's, where both define it.)"""
        if self.augment and self.trainer is not None and self.trainer.training:
            x, y = batch
            return [self.augment_batch(x, self._augment_generator), y]
        return batch

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.nonmembers(), self.eval_batch_size)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.nonmembers(), self.eval_batch_size)

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.nonmembers(), self.eval_batch_size)


def per_class_split(labels: torch.Tensor, per_class: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``per_class`` random examples of every class as members, the rest as non-members (the study's Yale split).

    Raises:
        ValueError: a class has fewer than ``per_class`` + 1 examples.
    """
    members, nonmembers = [], []
    for c in labels.unique(sorted=True).tolist():
        idx = (labels == c).nonzero().flatten()
        if len(idx) <= per_class:
            raise ValueError(f"class {c} has {len(idx)} examples; a split of {per_class} members per class "
                             f"needs at least {per_class + 1}")
        idx = idx[torch.randperm(len(idx), generator=generator)]
        members.append(idx[:per_class])
        nonmembers.append(idx[per_class:])
    return torch.cat(members).sort().values, torch.cat(nonmembers).sort().values


class StandardSplitDataModule(MembershipDataModule):
    """A dataset with a published train/test split: the train set is the members, the test set the non-members
    (optionally seeded subsets of them, ``num_members``/``num_nonmembers``). ``_load_pool`` returns the train
    images first and sets ``self.num_train``."""

    num_train: int = 0

    def _split(self, labels: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.arange(self.num_train), torch.arange(self.num_train, len(labels))
