"""The references folder: which pool examples each reference trains on, reuse, and refusals."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from privrob.privacy.lira import lira_scores
from privrob.privacy.realistic import calibrated_accuracy
from privrob.privacy.references import (check_design, check_options, load_folder, open_folder, reference_masks,
                                        reference_path, save_atomically)
from privrob.privacy.rmia import choose_offline_a, rmia_scores

OPTIONS = {"num_reference": 4, "training_set": "half", "seed": 0, "method": "NaturalTraining",
           "training": {"max_epochs": "3"}}


def test_halves_are_complementary_pairs_of_seeded_halves():
    inside = reference_masks(101, 4, "half", 80, seed=3)
    assert inside.shape == (4, 101) and inside.dtype == torch.bool
    assert torch.equal(inside[1], ~inside[0]) and torch.equal(inside[3], ~inside[2])
    assert inside[0].sum() == 50 and not torch.equal(inside[0], inside[2])
    assert torch.equal(inside, reference_masks(101, 4, "half", 80, seed=3))
    assert not torch.equal(inside, reference_masks(101, 4, "half", 80, seed=4))


@pytest.mark.parametrize("k,expected_m", [(8, 6), (16, 13)])
def test_target_size_sets_put_each_example_in_round_k_p_references(k, expected_m):
    # Yale: 1,900 members of a 2,414-image pool, p = 0.787
    inside = reference_masks(2414, k, "target_size", 1900, seed=0)
    assert (inside.sum(0) == expected_m).all()  # every example in m and out of k - m >= 2
    assert not torch.equal(inside[0], inside[1])  # chosen per example, not one shared part
    # and the attacks run on them: LiRA fits both sides, RMIA's offline a lets each reference play the target
    phi = torch.randn(k, 2414, dtype=torch.float64) + inside
    target = torch.randn(2414, dtype=torch.float64)
    assert lira_scores(target, phi, inside)["online"].isfinite().all()
    a = choose_offline_a(F.logsigmoid(phi), inside)
    assert rmia_scores(F.logsigmoid(target), F.logsigmoid(phi), inside, torch.arange(1900, 2414), offline_a=a)[
        "offline"].isfinite().all()


def test_a_target_size_design_without_two_references_on_each_side_is_refused_with_the_smallest_k():
    for k in (3, 4, 5, 6, 7):  # Yale: round(k * 0.787) leaves each example out of at most one reference
        with pytest.raises(ValueError, match="use `num_reference` 8 or more"):
            check_design(k, "target_size", 2414, 1900)
    check_design(8, "target_size", 2414, 1900)
    check_design(3, "half", 2414, 1900)
    with pytest.raises(ValueError, match="in 1 of them"):  # a small target: each example in too few
        check_design(4, "target_size", 1000, 300)


def test_a_folder_is_reused_for_the_same_options_and_refused_for_others(tmp_path):
    pool = torch.arange(50)
    inside = open_folder(tmp_path, pool, 30, OPTIONS)
    assert torch.equal(open_folder(tmp_path, pool, 30, dict(OPTIONS)), inside)
    assert (tmp_path / "references.json").is_file() and not list(tmp_path.glob(".*tmp"))
    for change, reason in (({"num_reference": 5}, "num_reference 4"), ({"seed": 1}, "seed 0"),
                           ({"training_set": "target_size"}, "training_set 'half'"),
                           ({"method": "PGDTraining"}, "method 'NaturalTraining'"),
                           ({"training": {"max_epochs": "4"}}, "training {'max_epochs': '3'}")):
        with pytest.raises(ValueError, match=reason):
            open_folder(tmp_path, pool, 30, {**OPTIONS, **change})
    with pytest.raises(ValueError, match="another member/non-member split"):
        open_folder(tmp_path, pool.flip(0), 30, OPTIONS)


def test_a_failed_write_leaves_neither_the_file_nor_a_temporary(tmp_path):
    def fail(path):
        path.write_text("half")
        raise RuntimeError("killed")
    with pytest.raises(RuntimeError):
        save_atomically(fail, tmp_path / "references.pt")
    assert list(tmp_path.iterdir()) == []


def test_shadow_thresholds_are_calibrated_on_the_shadow_and_applied_to_the_target():
    # the shadow's best threshold is 2 (score >= 2: member); on the target it takes 1 of 2 members and rejects both
    # non-members
    report = calibrated_accuracy(torch.tensor([2.0, 3.0]), torch.tensor([0.0, 1.0]), torch.tensor([2.5, 1.8]),
                                 torch.tensor([0.5, 1.0]))
    assert report["threshold"] == 2.0 and report["calibrated_accuracy"] == pytest.approx(0.5 * (1 / 2 + 1))
    assert report["oracle_accuracy"] == 1.0  # the target's own best threshold (1.8) separates them
    # per class: class 0's shadow threshold is 3, class 1's is 1; labels follow their scores
    report = calibrated_accuracy(torch.tensor([3.0, 1.0]), torch.tensor([2.0, 0.0]), torch.tensor([3.2, 1.1]),
                                 torch.tensor([2.2, 0.2]), torch.tensor([0, 1]), torch.tensor([0, 1]),
                                 torch.tensor([0, 1]), torch.tensor([0, 1]))
    assert report["per_class_calibrated_accuracy"] == 1.0
    assert report["calibrated_accuracy"] < 1.0  # one global threshold cannot separate both classes


def test_load_folder_names_what_is_missing(tmp_path):
    pool = torch.arange(20)
    with pytest.raises(FileNotFoundError, match="privrob references"):
        load_folder(tmp_path, pool)
    open_folder(tmp_path, pool, 10, {**OPTIONS, "num_reference": 3})
    reference_path(tmp_path, 1).write_bytes(b"")
    with pytest.raises(ValueError, match=r"1 of its 3 references trained \(missing: 0, 2\)"):
        load_folder(tmp_path, pool)
    with pytest.raises(ValueError, match="another member/non-member split"):
        load_folder(tmp_path, pool + 1)


def test_bad_options():
    for args, reason in (((2, "half"), "at least 3"), ((4, "quarter"), "half or target_size"),
                         ((4, "half", 4), r"\[0, 3\]"), ((4, "half", None, 0), "at least 1")):
        with pytest.raises(ValueError, match=reason):
            check_options(*args)


def test_reference_attacks_score_examples_whose_probability_underflows():
    """Models whose true-label probability underflows to 0 in float32 on some examples (as on the Fashion-MNIST
    natural model of RESULTS.md, where RMIA once stopped with "a marginal probability of 0") still get every score."""
    from privrob.privacy.references import reference_attacks
    from privrob.privacy.strategies import Benign

    def model(seed):
        torch.manual_seed(seed)
        net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
        with torch.no_grad():
            net[1].weight.mul_(500)  # logit gaps of hundreds: softmax probabilities of 0 in float32
        return net

    images, labels = torch.rand(12, 1, 2, 2), torch.arange(12) % 3
    inside = reference_masks(12, 4, "half", 6, seed=0)
    scores, _ = reference_attacks(model(0), [model(k) for k in range(1, 5)], images, labels, inside,
                                  torch.arange(12) < 6, {"clean": Benign()})
    assert all(torch.isfinite(s).all() for s in scores.values())
