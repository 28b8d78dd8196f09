"""The references folder: which pool examples each reference trains on, reuse, and refusals."""

import pytest
import torch

from privrob.privacy.references import check_options, load_folder, open_folder, reference_masks, reference_path


def test_halves_are_complementary_pairs_of_seeded_halves():
    inside = reference_masks(101, 4, "half", 80, seed=3)
    assert inside.shape == (4, 101) and inside.dtype == torch.bool
    assert torch.equal(inside[1], ~inside[0]) and torch.equal(inside[3], ~inside[2])
    assert inside[0].sum() == 50 and not torch.equal(inside[0], inside[2])
    assert torch.equal(inside, reference_masks(101, 4, "half", 80, seed=3))
    assert not torch.equal(inside, reference_masks(101, 4, "half", 80, seed=4))


@pytest.mark.parametrize("k,expected_m", [(4, 3), (8, 6), (3, 2)])
def test_target_size_sets_put_each_example_in_round_k_p_references(k, expected_m):
    # Yale: 1,900 members of a 2,414-image pool, p = 0.787
    inside = reference_masks(2414, k, "target_size", 1900, seed=0)
    assert (inside.sum(0) == expected_m).all()  # every example in m and out of k - m >= 1
    sizes = inside.sum(1).double()
    assert torch.allclose(sizes.mean(), torch.tensor(2414 * expected_m / k, dtype=torch.float64))
    assert (sizes - 2414 * expected_m / k).abs().max() < 60  # each reference near the design's size


def test_target_size_keeps_an_example_out_of_one_reference_at_least():
    assert (reference_masks(100, 3, "target_size", 99, seed=0).sum(0) == 2).all()  # round(2.97) = 3, kept at K - 1


def test_a_folder_is_reused_for_the_same_options_and_refused_for_others(tmp_path):
    pool = torch.arange(50)
    inside = open_folder(tmp_path, pool, 30, 4, "half", 0, None)
    assert torch.equal(open_folder(tmp_path, pool, 30, 4, "half", 0, None), inside)
    assert (tmp_path / "references.json").is_file() and not list(tmp_path.glob(".*tmp"))
    for args, reason in (((pool, 30, 5, "half", 0, None), "num_reference 4"),
                         ((pool, 30, 4, "target_size", 0, None), "training_set 'half'"),
                         ((pool, 30, 4, "half", 1, None), "seed 0"),
                         ((pool, 30, 4, "half", 0, 3), "reference_epochs None"),
                         ((pool.flip(0), 30, 4, "half", 0, None), "another member/non-member split")):
        with pytest.raises(ValueError, match=reason):
            open_folder(tmp_path, *args)


def test_load_folder_names_what_is_missing(tmp_path):
    pool = torch.arange(20)
    with pytest.raises(FileNotFoundError, match="privrob references"):
        load_folder(tmp_path, pool)
    open_folder(tmp_path, pool, 10, 3, "half", 0, None)
    reference_path(tmp_path, 1).write_bytes(b"")
    with pytest.raises(ValueError, match=r"1 of its 3 references trained \(missing: 0, 2\)"):
        load_folder(tmp_path, pool)
    with pytest.raises(ValueError, match="another member/non-member split"):
        load_folder(tmp_path, pool + 1)


def test_bad_options():
    for args, reason in (((2, "half"), "at least 3"), ((4, "quarter"), "half or target_size"),
                         ((4, "half", 4), r"\[0, 3\]")):
        with pytest.raises(ValueError, match=reason):
            check_options(*args)
