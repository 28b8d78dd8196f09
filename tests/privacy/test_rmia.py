"""RMIA (Zarifzadeh, Liu, Shokri 2024) on hand-made probabilities with known answers (given as logarithms)."""

import pytest
import torch
import torch.nn.functional as F

from privrob.privacy.functional import membership_report
from privrob.privacy.lira import logit_confidence
from privrob.privacy.rmia import (choose_offline_a, likelihood_ratio, log_marginal_probability, rmia_score,
                                  rmia_scores, true_label_log_probability)


def _random(n=60, k=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    inside = torch.stack([torch.rand(n, generator=g) < 0.5 for _ in range(k // 2)])
    inside = torch.cat([inside, ~inside])  # complementary pairs: every example in and out of some reference
    reference = torch.rand(k, n, generator=g, dtype=torch.float64) * 0.9 + 0.05
    target = torch.rand(n, generator=g, dtype=torch.float64) * 0.9 + 0.05
    return target.log(), reference.log(), inside


@pytest.mark.parametrize("gamma", [0.5, 1.0, 2.0])
def test_score_is_the_fraction_of_the_population_it_beats(gamma):
    target, reference, inside = _random()
    population = torch.arange(20, 60)  # x in 20..59 is in its own population and not compared with itself
    marginal = log_marginal_probability(reference, inside, offline_a=0.3)
    lr = likelihood_ratio(target, marginal, target[population], marginal[population])
    beats = (lr >= gamma).double()
    beats[torch.arange(20, 60), torch.arange(40)] = 0
    expected = beats.sum(1) / torch.where(torch.arange(60) >= 20, 39.0, 40.0).double()
    assert torch.allclose(rmia_score(target, marginal, population, gamma), expected, atol=0, rtol=1e-12)


def test_a_member_whose_references_find_it_hard_scores_above_an_easy_non_member():
    # x0 (member): the target gives 0.9, models that did not train on it 0.2; x1 (non-member): 0.9 and 0.9;
    # the other non-members around them, one (x6) that the target finds easier than the references do
    target = torch.tensor([0.9, 0.9, 0.5, 0.6, 0.7, 0.8, 0.95], dtype=torch.float64).log()
    reference = torch.tensor([[0.2, 0.9, 0.4, 0.7, 0.6, 0.9, 0.5]] * 4, dtype=torch.float64).log()
    inside = torch.zeros(4, 7, dtype=torch.bool)
    for name, score in rmia_scores(target, reference, inside, torch.arange(1, 7)).items():
        assert score[0] > score[1], name
        assert score[0] == 1.0  # its ratio beats every population example's


def test_the_score_is_non_increasing_in_gamma():
    target, reference, inside = _random(seed=1)
    marginal = log_marginal_probability(reference, inside)
    scores = torch.stack([rmia_score(target, marginal, torch.arange(30), g) for g in (0.25, 0.5, 1, 1.5, 2, 4)])
    assert (scores[1:] <= scores[:-1]).all() and scores[0].sum() > scores[-1].sum()


def test_marginals():
    target, reference, inside = _random(seed=2)
    out = (~inside).double()
    pr_out = (reference.exp() * out).sum(0) / out.sum(0)
    marginal = lambda a=None: log_marginal_probability(reference, inside, offline_a=a).exp()  # noqa: E731
    assert torch.allclose(marginal(1.0), pr_out)  # a = 1: Pr_OUT
    assert torch.allclose(marginal(0.0), 0.5 * (pr_out + 1))
    assert torch.allclose(marginal(0.3), 0.5 * (1.3 * pr_out + 0.7))
    assert torch.allclose(marginal(), reference.exp().mean(0))  # online: every reference
    lr = likelihood_ratio(target, pr_out.log(), target, pr_out.log())
    assert torch.allclose(lr.diagonal(), torch.ones(60, dtype=torch.float64))  # z identical to x: LR = 1


def test_probabilities_that_underflow_still_score():
    """A confidently wrong example (log Pr(x|θ) 800 lower under the target and every reference: Pr = 0 in float32
    and in float64) keeps a finite score, online the same as before (Pr(x|θ)/Pr(x) is unchanged)."""
    target, reference, inside = _random(seed=4)
    scores = rmia_scores(target, reference, inside, torch.arange(30, 60))
    shifted = rmia_scores(target - torch.where(torch.arange(60) == 0, 800.0, 0.0).double(),
                          reference - torch.where(torch.arange(60) == 0, 800.0, 0.0).double(), inside,
                          torch.arange(30, 60))
    assert torch.isfinite(shifted["offline"]).all()
    assert torch.equal(shifted["online"], scores["online"])


def test_true_label_log_probability_is_the_log_sigmoid_of_lira_statistic():
    logits, labels = torch.randn(50, 10, generator=torch.Generator().manual_seed(0)), torch.arange(50) % 10
    log_p = true_label_log_probability(logits * 100, labels)
    assert torch.isfinite(log_p).all() and log_p.min() < -200  # where the probability itself is 0
    assert torch.allclose(log_p, F.logsigmoid(logit_confidence(logits.double() * 100, labels)))
    flat = true_label_log_probability(logits, labels, temperature=1e6).exp()
    assert torch.allclose(flat, torch.full_like(flat, 0.1), atol=1e-5)


def test_offline_a_is_chosen_on_the_references():
    # in-models are more confident than out-models: Pr_IN = 0.3 + 0.7·h against Pr_OUT = h, so that the paper's
    # linear form ½((1 + a)·Pr_OUT + 1 − a) is the mean of both at a = 0.7, and small a flattens the marginal
    g = torch.Generator().manual_seed(3)
    n, k = 400, 8
    inside = torch.stack([torch.rand(n, generator=g) < 0.5 for _ in range(k // 2)])
    inside = torch.cat([inside, ~inside])
    hardness = torch.rand(n, generator=g, dtype=torch.float64) * 0.8 + 0.1
    pr_in, pr_out = 0.3 + 0.7 * hardness, hardness
    reference = torch.where(inside, pr_in, pr_out).log()
    assert torch.allclose(log_marginal_probability(reference, inside, offline_a=0.7).exp(), (pr_in + pr_out) / 2)
    a = choose_offline_a(reference, inside)
    target_in = torch.rand(n, generator=g) < 0.5
    target = torch.where(target_in, pr_in, pr_out).log()
    nonmembers = torch.nonzero(~target_in).squeeze(1)

    def offline_auc(a):
        s = rmia_scores(target, reference, inside, nonmembers, offline_a=a)["offline"]
        return membership_report(s[target_in], s[~target_in])["auc"]
    assert a >= 0.3 and offline_auc(a) > offline_auc(0.0) + 0.02 and offline_auc(a) > 0.95


def test_membership_report_reads_the_lowest_resolved_fpr_and_ignores_the_score_scale():
    members, nonmembers = torch.tensor([12.0, 10.0]), torch.cat([torch.tensor([11.0]), torch.zeros(499)])
    for shift in (0.0, 50.0):  # scores above ~37 are not squashed together (torchmetrics' sigmoid on logits)
        r = membership_report(members + shift, nonmembers + shift)
        assert r["lowest_fpr"] == 1 / 500 and r["tpr@lowest_fpr"] == 1.0  # threshold 10: one false positive
        assert r["tpr@0.1%fpr"] == 0.5  # 0.1% < 1/500: no false positive allowed, threshold 12
        assert r["auc"] == pytest.approx((499 + 499 + 1) / 1000)  # 12 above all; 10 above all but 11
        assert r["accuracy"] == pytest.approx(0.5 * (1 + 499 / 500))


def test_bad_arguments():
    target, reference, inside = _random()
    with pytest.raises(ValueError, match="gamma"):
        rmia_score(target, target, torch.arange(5), gamma=0)
    with pytest.raises(ValueError, match="offline_a"):
        log_marginal_probability(reference, inside, offline_a=1.5)
    with pytest.raises(ValueError, match="did not train on it"):
        log_marginal_probability(reference, torch.ones_like(inside), offline_a=0.3)
    with pytest.raises(ValueError, match="3 or more reference models"):
        choose_offline_a(reference[:2], torch.stack([inside[0], ~inside[0]]))
    with pytest.raises(ValueError, match="distinct integer"):
        rmia_score(target, target, torch.tensor([1, 1, 2]))
    with pytest.raises(ValueError, match="distinct integer"):
        rmia_score(target, target, torch.arange(60) < 30)
    with pytest.raises(ValueError, match="not finite"):
        rmia_score(torch.tensor([-float("inf"), -0.5, -0.5]), torch.tensor([-1.0, -0.5, -0.5]), torch.arange(3))
    with pytest.raises(ValueError, match="temperature"):
        true_label_log_probability(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), temperature=0)


def test_roc_figure_is_log_log_from_the_lowest_resolved_fpr(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    from privrob.privacy.audit import plot_roc

    saved = []
    monkeypatch.setattr(Figure, "savefig", lambda fig, *args, **kwargs: saved.append(fig))
    g = torch.Generator().manual_seed(0)
    curves = {"strong": (torch.randn(300, generator=g) + 2, torch.randn(200, generator=g)),
              "weak": (torch.randn(300, generator=g) + 0.2, torch.randn(200, generator=g))}
    plot_roc(curves, tmp_path / "roc.png", "run: title")
    (ax,) = saved[0].axes
    assert ax.get_xscale() == ax.get_yscale() == "log" and ax.get_xlim() == pytest.approx((1 / 200, 1))
    assert ax.get_ylim() == pytest.approx((1 / 300, 1))  # a TPR of 0 sits at the bottom edge
    first = ax.get_lines()[0].get_xydata()[0]
    assert first[0] == pytest.approx(1 / 200) and first[1] == pytest.approx(1 / 300)  # FPR 0, TPR 0 at the corner
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels[0].startswith("strong (AUC 0.9") and labels[1].startswith("weak (AUC 0.5") and labels[2] == "chance"
    assert ax.get_title() == "run: title"


def test_the_adversarial_signal_works_under_inference_mode_and_lowers_phi(trained_digits):
    from privrob.privacy.lira import statistics
    from privrob.privacy.strategies import Adversarial

    model, dm = trained_digits
    images = torch.stack([dm.members()[i][0] for i in range(64)])
    labels = dm.labels[dm.member_indices[:64]]
    with torch.inference_mode():  # as an evaluation loop calls it
        clean = statistics(model, images, labels)
        adversarial = statistics(model, images, labels, signal=Adversarial(eps=0.1, steps=10, rel_step_size=0.25))
    assert adversarial.shape == clean.shape and (adversarial < clean).double().mean() > 0.9
