"""The study's analyses that live in the audit: attack-budget sweeps and temperature scaling."""

import math

import pytest
import torch

from privrob.privacy.audit import budget_sweep, evaluate_membership, write_budget_sweep
from privrob.privacy.strategies import build_strategy


def test_budget_sweep_starts_at_i_b_and_worst_case_accuracy_never_rises(trained_digits, tmp_path):
    model, dm = trained_digits
    rows = budget_sweep(model, dm, [0.0, 0.02, 0.05, 0.1], attack_steps=10, num_points=300)
    benign = evaluate_membership(model, dm, [build_strategy("I_B", eps=0.0)], num_points=300)["I_B"]
    assert rows[0]["eps"] == 0.0
    for key in ("accuracy", "auc", "train_acc", "test_acc"):
        assert rows[0][key] == pytest.approx(benign[key], abs=1e-12), key
    worst = [r["worst_case_acc"] for r in rows]
    assert all(a >= b for a, b in zip(worst, worst[1:])) and worst[-1] < worst[0]
    csv_path, png_path = write_budget_sweep(rows, tmp_path / "audit.budget", training_eps=0.05)
    assert csv_path.read_text().count("\n") == 5 and png_path.stat().st_size > 1000


def test_temperature_keeps_accuracy_and_changes_confidences(trained_digits):
    model, dm = trained_digits
    plain = evaluate_membership(model, dm, [build_strategy("I_B", eps=0.0)], num_points=200)["I_B"]
    hot = evaluate_membership(model, dm, [build_strategy("I_B", eps=0.0, temperature=5.0)], num_points=200)["I_B"]
    assert hot["train_acc"] == plain["train_acc"] and hot["test_acc"] == plain["test_acc"]
    a, b = plain["scores"]["members"]["scores"], hot["scores"]["members"]["scores"]
    assert not torch.allclose(a, b) and float(b.max()) < float(a.max())  # softer: no confidence near 1
    with pytest.raises(ValueError, match="temperature"):
        build_strategy("I_B", eps=0.0, temperature=0.0)


def test_secure_and_insecure_groups_partition_the_examples(trained_digits, tmp_path):
    from privrob.privacy.audit import plot_secure_losses, secure_split

    model, dm = trained_digits
    results = evaluate_membership(model, dm, [build_strategy("I_B", eps=0.1),
                                              build_strategy("I_A", eps=0.1, attack_steps=10)], num_points=300)
    split = secure_split(results, by="I_A")
    correct = results["I_A"]["scores"]["nonmembers"]["correct"]
    assert split["secure"]["nonmembers"] == int(correct.sum())
    assert split["secure"]["members"] + split["insecure"]["members"] == 300
    assert split["secure"]["nonmembers"] + split["insecure"]["nonmembers"] == 300
    for group in ("secure", "insecure"):
        for name in ("I_B", "I_A"):
            assert 0.5 <= split[group][name] <= 1.0
    assert plot_secure_losses(results, tmp_path / "secure.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="needs strategy"):
        secure_split(results, by="I_V")


def test_calibrated_threshold_never_beats_the_oracle_and_risk_ranks_members(trained_digits):
    from privrob.privacy import roc_auc
    from privrob.privacy.realistic import realistic_report, risk_scores

    model, dm = trained_digits  # trained to 100% on its members: it overfits
    r = evaluate_membership(model, dm, [build_strategy("I_B", eps=0.0)])["I_B"]
    m, n = r["scores"]["members"]["scores"], r["scores"]["nonmembers"]["scores"]
    labels_m = dm.labels[dm.member_indices][r["scores"]["members"]["ids"]]
    labels_n = dm.labels[dm.nonmember_indices][r["scores"]["nonmembers"]["ids"]]
    report = realistic_report(m, n, member_labels=labels_m, nonmember_labels=labels_n)
    assert report["calibrated_accuracy"] <= report["oracle_accuracy"] + 1e-12
    assert 0.5 <= report["per_class_calibrated_accuracy"] <= 1.0
    risk_m, risk_n = risk_scores(m[:400], n[:400], m[400:]), risk_scores(m[:400], n[:400], n[400:])
    assert float(torch.cat([risk_m, risk_n]).min()) >= 0 and float(torch.cat([risk_m, risk_n]).max()) <= 1
    assert roc_auc(risk_m, risk_n) > 0.5 and report["risk"]["mean_members"] > report["risk"]["mean_nonmembers"]


def test_lira_scores_follow_the_gaussians():
    from privrob.privacy.functional import membership_report
    from privrob.privacy.lira import lira_scores, logit_confidence

    logits = torch.tensor([[40.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    phi = logit_confidence(logits, torch.tensor([0, 1]))
    assert phi[0] == pytest.approx(40.0 - torch.log(torch.tensor(2.0)).item())  # no saturation at p = 1
    g = torch.Generator().manual_seed(0)
    inside = torch.rand(16, 200, generator=g) < 0.5
    reference = torch.randn(16, 200, generator=g) + 2.0 * inside  # in-models see φ 2 higher
    is_member = torch.arange(200) < 100
    target = torch.randn(200, generator=g) + 2.0 * is_member
    for scores in lira_scores(target, reference, inside).values():
        assert membership_report(scores[is_member], scores[~is_member])["auc"] > 0.8
    with pytest.raises(ValueError, match="at least one reference model"):
        lira_scores(target, reference, torch.ones_like(inside))


def test_lira_scores_known_answers():
    """Example 0: in-models at φ 5 ± 0.1, out-models at 0 ± 0.1; example 1: both at 5 ± 0.1; target φ 5 for both.
    Each side's pooled variance is unbiased: (4 · 0.1²) / (2 examples · (2 − 1)) = 0.02, so example 0's online score
    is 5² / (2 · 0.02) = 625 and example 1's 0; offline, log Φ(5/√0.02) beats log Φ(0) = log ½; and members beyond
    Φ's rounding to 1 (8.3σ) keep their order offline."""
    from privrob.privacy.lira import lira_scores

    inside = torch.tensor([[True, True], [True, True], [False, False], [False, False]])
    reference = torch.tensor([[4.9, 4.9], [5.1, 5.1], [-0.1, 4.9], [0.1, 5.1]], dtype=torch.float64)
    scores = lira_scores(torch.tensor([5.0, 5.0]), reference, inside)
    assert scores["online"].tolist() == pytest.approx([625.0, 0.0])
    assert scores["offline"][1] == pytest.approx(math.log(0.5)) and scores["offline"][0] > scores["offline"][1]
    far = lira_scores(torch.tensor([9 * 0.02 ** 0.5, 12 * 0.02 ** 0.5]), reference[:, [0, 0]], inside)["offline"]
    assert far[0] < far[1] < 0   # log Φ(9) < log Φ(12) < 0, where Φ is 1.0 for both
    with pytest.raises(ValueError, match="no variance to pool"):   # each example seen by one in-model
        lira_scores(torch.tensor([5.0, 5.0]), reference[1:], inside[1:])


def _capture_figures(monkeypatch) -> list:
    from matplotlib.figure import Figure

    saved = []
    monkeypatch.setattr(Figure, "savefig", lambda fig, *args, **kwargs: saved.append(fig))
    return saved


def test_secure_loss_histograms_share_log_bins_and_both_show(tmp_path, monkeypatch):
    from privrob.privacy.audit import plot_secure_losses

    saved = _capture_figures(monkeypatch)
    generator = torch.Generator().manual_seed(0)
    # as on the quickstart: secure losses in [0, 2e-5] (one saturated at exactly 0), insecure ones around 1
    secure_loss = torch.cat([torch.zeros(1), torch.rand(99, generator=generator) * 2e-5])
    insecure_loss = 0.1 + 3 * torch.rand(50, generator=generator)
    scores = torch.exp(-torch.cat([secure_loss, insecure_loss]))
    correct = torch.arange(150) < 100
    results = {"I_B": {"scores": {"nonmembers": {"scores": scores, "correct": torch.ones(150, dtype=torch.bool)}}},
               "I_A": {"scores": {"nonmembers": {"scores": scores, "correct": correct}}}}
    plot_secure_losses(results, tmp_path / "secure.png", title="run: NaturalTraining; I_A; attack eps 0.1")
    (ax,) = saved[-1].axes
    secure, insecure = ax.containers
    assert [p.get_x() for p in secure.patches] == [p.get_x() for p in insecure.patches]  # shared bins
    assert sum(p.get_height() for p in secure.patches) == 100
    assert sum(p.get_height() for p in insecure.patches) == 50
    low, high = ax.get_xlim()
    for bar in (p for p in secure.patches if p.get_height() > 0):
        (x0, _), (x1, _) = ax.transData.transform([(bar.get_x(), 0), (bar.get_x() + bar.get_width(), 0)])
        assert x1 - x0 >= 1 and low <= bar.get_x() < high  # at least a pixel wide, inside the axis
    assert ax.get_title() == "run: NaturalTraining; I_A; attack eps 0.1"


def test_audit_figures_name_run_method_strategy_and_eps(trained_digits, tmp_path, monkeypatch):
    from privrob.trainer import PrivrobTrainer

    model, dm = trained_digits
    ckpt = tmp_path / "model.ckpt"
    torch.save({"state_dict": model.state_dict(), type(dm).__qualname__: dm.state_dict()}, ckpt)
    saved = _capture_figures(monkeypatch)
    trainer = PrivrobTrainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                             default_root_dir=str(tmp_path / "audit_run"))
    trainer.audit(model, dm, ckpt_path=str(ckpt), strategies=["I_B", "I_A"], eps=0.1, attack_steps=5,
                  num_points=100, secure_by="I_A", attack_eps=[0.0, 0.1])
    titles = [fig.axes[0].get_title() for fig in saved]
    assert len(titles) == 3  # every attack's ROC, the secure/insecure losses, the budget sweep
    assert "I_B, I_A" in titles[0]
    for title, eps in zip(titles, ("attack eps 0.1", "attack eps 0.1", "attack eps 0 to 0.1")):
        assert "audit_run" in title and "NaturalTraining" in title and "I_A" in title and eps in title, title
