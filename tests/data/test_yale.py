import pytest
import torch

from privrob.data import YaleDataModule


@pytest.fixture(scope="module")
def yale(yale_root):
    dm = YaleDataModule(root=str(yale_root))
    dm.setup()
    return dm


def test_counts_and_split(yale):
    assert yale.images.shape == (2414, 1, 192, 168)
    assert yale.labels.unique().tolist() == list(range(38))
    assert len(yale.member_indices) == 1900 and len(yale.nonmember_indices) == 514
    assert torch.bincount(yale.labels[yale.member_indices], minlength=38).tolist() == [50] * 38
    assert not set(yale.member_indices.tolist()) & set(yale.nonmember_indices.tolist())
    assert yale.member_indices.dtype == torch.int64


def test_class_sizes_match_the_study(yale):
    # original-study.md §2: 64 per subject except yaleB11..B18 (labels 10..16)
    sizes = torch.bincount(yale.labels).tolist()
    assert sizes[10:17] == [60, 59, 60, 63, 62, 63, 63]
    assert sizes[:10] == [64] * 10 and sizes[17:] == [64] * 21


def test_images_in_unit_range(yale):
    x, y = yale.members()[0]
    assert x.shape == (1, 192, 168) and x.dtype == torch.float32
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0 and float(x.max()) > 0.5


def test_same_seed_same_split_other_seed_other_split(yale, yale_root):
    again = YaleDataModule(root=str(yale_root), seed=0)
    again.setup()
    assert torch.equal(again.member_indices, yale.member_indices)
    other_m, _ = yale.draw_split(1)
    assert not torch.equal(other_m, yale.member_indices)


def test_pad_to_192(yale, yale_root):
    padded = YaleDataModule(root=str(yale_root), pad_to=192)
    padded.setup()
    assert padded.images.shape == (2414, 1, 192, 192)
    assert padded.input_shape == (1, 192, 192)
    assert torch.equal(padded.images[:, :, :, 12:180], yale.images)
    assert int(padded.images[:, :, :, :12].abs().sum()) == 0 and int(padded.images[:, :, :, 180:].abs().sum()) == 0


def test_split_saved_and_restored(yale, yale_root):
    state = yale.state_dict()
    assert all(v.dtype == torch.int64 for v in state.values())
    other = YaleDataModule(root=str(yale_root), seed=5)
    other.load_state_dict(state)
    other.setup()
    assert torch.equal(other.member_indices, yale.member_indices)
