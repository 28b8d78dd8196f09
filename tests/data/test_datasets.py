import pickle
from pathlib import Path

import pytest
import torch

from privrob.data import CIFAR10DataModule, DigitsDataModule, FashionMNISTDataModule, YaleDataModule


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


def test_cifar10_augments_training_only(cifar_root):
    dm = CIFAR10DataModule(root=str(cifar_root))
    dm.setup()
    torch.manual_seed(0)
    train_x = torch.stack([dm.train_dataloader().dataset[0][0] for _ in range(8)])
    assert not all(torch.equal(train_x[0], t) for t in train_x)  # random crop/flip changes the image
    assert torch.equal(dm.members()[0][0], dm.members()[0][0])


@pytest.mark.parametrize("padding", [2, 4])
def test_cifar10_crop_padding(cifar_root, padding):
    """The study's TF runs crop from the image padded to 36x36 (2 per side), its TRADES run from 40x40 (4)."""
    dm = CIFAR10DataModule(root=str(cifar_root), crop_padding=padding)
    torch.manual_seed(0)
    shifts = set()
    for _ in range(200):
        crop = dm.train_transform(torch.ones(3, 32, 32))
        rows, cols = crop[0].sum(1) == 0, crop[0].sum(0) == 0
        shifts.add(max(int(rows.sum()), int(cols.sum())))
    assert max(shifts) == padding


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
