"""The study's analyses that live in the audit: attack-budget sweeps and temperature scaling."""

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
