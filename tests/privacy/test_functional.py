import itertools

import pytest
import torch
from sklearn.metrics import roc_auc_score

from privrob.privacy import (calibrate_threshold, inference_accuracy, membership_report, roc_auc,
                             threshold_accuracy, tpr_at_fpr, true_label_confidence)


def brute_force(m: torch.Tensor, n: torch.Tensor) -> float:
    """The study's O(n²) sweep (inference_utils.py::inference_via_confidence)."""
    best = 0.5
    for t in torch.cat([m, n]).tolist():
        best = max(best, 0.5 * (float((m >= t).double().mean()) + 1 - float((n >= t).double().mean())))
    return best


def test_perfect_separation():
    assert inference_accuracy(torch.tensor([0.9, 0.8, 0.95]), torch.tensor([0.1, 0.2])) == 1.0


def test_identical_multisets_give_the_floor():
    s = torch.tensor([0.3, 0.3, 0.7, 0.9, 0.1])
    assert inference_accuracy(s, s[torch.randperm(5)]) == 0.5


def test_ties_count_as_members():
    # with t = 0.5 both members (≥ t) are in and the tied non-member is called a member too
    acc, t = inference_accuracy(torch.tensor([0.5, 0.5]), torch.tensor([0.5, 0.1]), return_threshold=True)
    assert t == 0.5 and acc == pytest.approx(0.5 * (1.0 + 0.5))


@pytest.mark.parametrize("seed", range(5))
def test_sort_based_equals_brute_force(seed):
    g = torch.Generator().manual_seed(seed)
    m = torch.randint(0, 20, (137,), generator=g).float() / 20  # many ties
    n = torch.randint(0, 20, (61,), generator=g).float() / 23
    assert inference_accuracy(m, n) == pytest.approx(brute_force(m, n), abs=1e-12)


def test_auc_equals_pairwise_count_and_sklearn():
    g = torch.Generator().manual_seed(0)
    m, n = torch.randint(0, 10, (80,), generator=g).double(), torch.randint(0, 8, (50,), generator=g).double()
    pairwise = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a, b in itertools.product(m.tolist(), n.tolist()))
    assert roc_auc(m, n) == pytest.approx(pairwise / (80 * 50), abs=1e-6)
    ref = roc_auc_score([1] * 80 + [0] * 50, torch.cat([m, n]).numpy())
    assert roc_auc(m, n) == pytest.approx(ref, abs=1e-6)


def test_tpr_at_fpr():
    m = torch.tensor([0.9, 0.8, 0.7, 0.2])
    n = torch.cat([torch.linspace(0, 0.65, 99), torch.tensor([0.75])])  # one non-member above 0.7
    assert tpr_at_fpr(m, n, 0.0) == 0.5       # t = 0.8: 2 of 4 members, no non-member
    assert tpr_at_fpr(m, n, 0.01) == 0.75     # one false positive allowed


def test_report_fields():
    r = membership_report(torch.tensor([0.9, 0.8]), torch.tensor([0.1, 0.85]))
    assert r["advantage"] == pytest.approx(2 * r["accuracy"] - 1)
    assert r["members"] == 2 and r["nonmembers"] == 2 and 0 <= r["auc"] <= 1


def test_true_label_confidence_from_logits_is_float32_softmax():
    logits = torch.tensor([[30.0, 0.0, -5.0], [0.0, 1.0, 2.0]], dtype=torch.float64)
    conf = true_label_confidence(logits, torch.tensor([0, 2]), from_logits=True)
    assert conf.dtype == torch.float32 and conf[0] == 1.0  # saturates in float32, as the study's numpy softmax
    assert conf[1] == pytest.approx(torch.softmax(logits[1], 0)[2].item(), rel=1e-6)


def test_calibrated_threshold_never_beats_the_oracle():
    g = torch.Generator().manual_seed(1)
    shadow_m, shadow_n = torch.rand(300, generator=g) ** 0.5, torch.rand(300, generator=g)
    target_m, target_n = torch.rand(200, generator=g) ** 0.6, torch.rand(200, generator=g)
    t = calibrate_threshold(shadow_m, shadow_n)
    assert threshold_accuracy(target_m, target_n, t) <= inference_accuracy(target_m, target_n) + 1e-12
    labels_m, labels_n = torch.randint(0, 3, (300,), generator=g), torch.randint(0, 3, (300,), generator=g)
    per_class = calibrate_threshold(shadow_m, shadow_n, labels_m, labels_n)
    assert set(per_class) == {0, 1, 2}
    acc = threshold_accuracy(shadow_m, shadow_n, per_class, labels_m, labels_n)
    assert 0.5 <= acc <= 1.0


def test_bad_scores():
    with pytest.raises(ValueError, match="non-empty 1-d"):
        inference_accuracy(torch.tensor([]), torch.tensor([0.1]))
    with pytest.raises(ValueError, match="non-finite"):
        inference_accuracy(torch.tensor([float("nan")]), torch.tensor([0.1]))


def test_example_scores_of_nothing_are_empty():
    from privrob.privacy.metrics import ExampleScores

    rows = ExampleScores().compute()
    assert rows["ids"].dtype == torch.int64 and all(len(v) == 0 for v in rows.values())
