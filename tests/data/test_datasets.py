import pickle
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torchvision.transforms import v2

from privrob.data import CIFAR10DataModule, DigitsDataModule, FashionMNISTDataModule, YaleDataModule
from privrob.data.augmentation import random_crop_and_flip


def test_fashion_mnist(fmnist_root):
    dm = FashionMNISTDataModule(root=str(fmnist_root))
    dm.setup()
    assert len(dm.members()) == 60000 and len(dm.nonmembers()) == 10000
    x, y = dm.nonmembers()[0]
    assert x.shape == (1, 28, 28) and 0 <= float(x.min()) <= float(x.max()) <= 1
    assert dm.labels.unique().tolist() == list(range(10))


def test_fashion_mnist_member_subset_is_seeded(fmnist_root):
    a = FashionMNISTDataModule(root=str(fmnist_root), num_members=500, seed=3)
    b = FashionMNISTDataModule(root=str(fmnist_root), num_members=500, seed=3)
    a.setup(), b.setup()
    assert len(a.members()) == 500 and torch.equal(a.member_indices, b.member_indices)
    assert int(a.member_indices.max()) < 60000


def test_cifar10_from_pickles(cifar_root):
    dm = CIFAR10DataModule(root=str(cifar_root))
    dm.setup()
    assert len(dm.members()) == 100 and len(dm.nonmembers()) == 20
    with open(cifar_root / "cifar-10-batches-py" / "test_batch", "rb") as f:
        raw = pickle.load(f, encoding="latin1")
    x, y = dm.nonmembers()[3]
    assert torch.allclose(x, torch.as_tensor(raw["data"][3], dtype=torch.float32).view(3, 32, 32) / 255)
    assert int(y) == raw["labels"][3]


def test_cifar10_augments_training_batches_only(cifar_root):
    """The training step's batches are augmented (by the data module's own generator, not the global one); the
    loader's images, validation batches and membership inference are not."""
    dm = CIFAR10DataModule(root=str(cifar_root), batch_size=8)
    dm.setup()
    x, y = next(iter(dm.train_dataloader()))
    dm.trainer = SimpleNamespace(training=True, global_rank=0, world_size=1)
    state = torch.get_rng_state()
    augmented, labels = dm.on_after_batch_transfer([x, y], 0)
    assert torch.equal(torch.get_rng_state(), state)  # the global generator is not drawn
    assert torch.equal(labels, y) and augmented.shape == x.shape and not torch.equal(augmented, x)
    dm.trainer = SimpleNamespace(training=False, global_rank=0, world_size=1)  # validation, sanity checking
    assert dm.on_after_batch_transfer([x, y], 0)[0] is x
    assert torch.equal(dm.members()[0][0], dm.train_dataloader().dataset[0][0])
    assert CIFAR10DataModule(root=str(cifar_root), augment=False).on_after_batch_transfer([x, y], 0)[0] is x


def test_cifar10_crops_from_the_image_padded_by_crop_padding(cifar_root):
    generator = torch.Generator().manual_seed(0)
    for padding in (2, 4):
        out = CIFAR10DataModule(root=str(cifar_root), crop_padding=padding).augment_batch(
            torch.ones(400, 3, 32, 32), generator)
        zero_rows = (out[:, 0].sum(2) == 0).sum(1)  # rows of padding in each crop
        assert int(zero_rows.max()) == padding


def test_every_rank_draws_from_one_stream_and_takes_its_own_part():
    """On N devices one generator state serves every rank: each advances it alike and uses its own slice."""
    x = torch.rand(8, 3, 32, 32)
    outs, states = [], []
    for rank in range(3):
        generator = torch.Generator().manual_seed(0)
        outs.append(random_crop_and_flip(x, 4, generator, rank, 3))
        states.append(generator.get_state())
    assert all(torch.equal(s, states[0]) for s in states)
    assert not torch.equal(outs[0], outs[1]) and not torch.equal(outs[1], outs[2])
    generator = torch.Generator().manual_seed(0)
    offsets = torch.randint(0, 9, (3, 2, 8), generator=generator)
    flips = torch.rand(3, 8, generator=generator) < 0.5
    for rank in range(3):
        for i in range(8):
            top, left = int(offsets[rank, 0, i]), int(offsets[rank, 1, i])
            crop = v2.functional.crop(v2.functional.pad(x[i], [4]), top, left, 32, 32)
            assert torch.equal(outs[rank][i], v2.functional.horizontal_flip(crop) if flips[rank, i] else crop)


@pytest.mark.parametrize("padding", [0, 2, 4])
def test_random_crop_and_flip_is_torchvisions_crop_and_flip_per_example(padding):
    """Each example is torchvision's zero-padded crop at its own offset, flipped or not; every offset in
    {0, ..., 2·padding} and both flips occur (the study's TF runs pad by 2, its TRADES run by 4)."""
    x = torch.rand(400, 3, 32, 32)
    generator = torch.Generator().manual_seed(0)
    out = random_crop_and_flip(x, padding, generator)
    generator.manual_seed(0)
    offsets = torch.randint(0, 2 * padding + 1, (2, 400), generator=generator)
    flips = torch.rand(400, generator=generator) < 0.5
    for i in range(400):
        top, left = int(offsets[0, i]), int(offsets[1, i])
        crop = v2.functional.crop(v2.functional.pad(x[i], [padding]), top, left, 32, 32)
        assert torch.equal(out[i], v2.functional.horizontal_flip(crop) if flips[i] else crop), i
    assert set(offsets.flatten().tolist()) == set(range(2 * padding + 1)) and 0 < int(flips.sum()) < 400


def test_digits_half_split():
    dm = DigitsDataModule(seed=0)
    dm.setup()
    assert len(dm.members()) + len(dm.nonmembers()) == 1797
    assert abs(len(dm.members()) - len(dm.nonmembers())) <= 1
    x, _ = dm.members()[0]
    assert x.shape == (1, 8, 8) and float(x.max()) <= 1.0


# -- bad input: one line that says what is wrong ------------------------------------------------------------
def _one_line(excinfo) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg, msg
    return msg


def test_missing_yale_folder(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        YaleDataModule(root=str(tmp_path)).setup()
    msg = _one_line(e)
    assert str(tmp_path / "CroppedYale") in msg and "yaleBxx_P00A*.pgm" in msg and "download" in msg
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_wrong_yale_layout(tmp_path):
    (tmp_path / "CroppedYale" / "faces").mkdir(parents=True)
    with pytest.raises(FileNotFoundError) as e:
        YaleDataModule(root=str(tmp_path)).setup()
    assert "wrong layout" in _one_line(e)


def test_unreadable_yale_image_is_named(tmp_path):
    folder = tmp_path / "CroppedYale" / "yaleB01"
    folder.mkdir(parents=True)
    bad = folder / "yaleB01_P00A+000E+00.pgm"
    bad.write_bytes(b"not an image")
    with pytest.raises(ValueError) as e:
        YaleDataModule(root=str(tmp_path)).setup()
    assert str(bad) in _one_line(e)


def test_split_asking_for_too_many(yale_root):
    with pytest.raises(ValueError) as e:
        YaleDataModule(root=str(yale_root), members_per_class=60).setup()
    assert "60 members per class" in _one_line(e)


def test_missing_fmnist(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        FashionMNISTDataModule(root=str(tmp_path)).setup()
    assert str(tmp_path / "FashionMNIST" / "raw") in _one_line(e)


def test_missing_and_corrupt_cifar(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        CIFAR10DataModule(root=str(tmp_path)).setup()
    assert "cifar-10-batches-py" in _one_line(e)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (folder / name).write_bytes(b"garbage")
    with pytest.raises(ValueError) as e:
        CIFAR10DataModule(root=str(tmp_path)).setup()
    assert "data_batch_1" in _one_line(e)


def test_too_many_members_requested():
    with pytest.raises(ValueError) as e:
        DigitsDataModule(num_members=5000).setup()
    assert "num_members" in _one_line(e)


def test_a_failed_download_is_one_line_and_removes_what_it_created(tmp_path, monkeypatch):
    from torchvision.datasets import FashionMNIST

    monkeypatch.setattr(FashionMNIST, "mirrors", ["http://127.0.0.1:9/"])  # the real download code, refused at once
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "keep.txt").write_text("untouched")
    for root in (tmp_path / "new" / "data", tmp_path / "old"):
        with pytest.raises(FileNotFoundError) as err:
            FashionMNISTDataModule(root=str(root), download=True).prepare_data()
        assert "\n" not in str(err.value) and f"download into {root / 'FashionMNIST'} failed" in str(err.value)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == [Path("old"), Path("old/keep.txt")]
    assert (tmp_path / "old" / "keep.txt").read_text() == "untouched"
