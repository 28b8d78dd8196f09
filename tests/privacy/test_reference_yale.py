"""The seven published Yale models: privrob's metric code gives every number of the study (reference README), which
are the published values of ``results/published.csv``."""

import csv

import numpy as np
import pytest
import torch

from privrob.privacy import inference_accuracy, true_label_confidence
from tests.conftest import ROOT

# method: (train acc, test acc, adv train acc, adv test acc, I_B, I_A), the values RESULTS.md shows as published
with open(ROOT / "results" / "published.csv") as f:
    PUBLISHED = {r["method"]: tuple(float(r[k]) for k in ("train_acc", "test_acc", "adv_train_acc", "adv_test_acc",
                                                            "I_B", "I_A"))
                 for r in csv.DictReader(f) if r["dataset"] == "yale"}


def _accuracy(outputs, labels) -> float:
    return float((outputs.argmax(dim=1) == labels).double().mean())


def test_all_seven_models_listed():
    assert sorted(PUBLISHED) == ["diffai", "dual", "ibp", "natural", "pgd", "trades", "wrm"]


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_yale_numbers(reference_dir, name):
    d = {k: torch.from_numpy(v) for k, v in np.load(reference_dir / f"{name}.npz").items()}
    ym, yn = d["train_label"], d["test_label"]
    assert len(ym) == 1900 and len(yn) == 514
    got = (
        _accuracy(d["output_train_benign"], ym), _accuracy(d["output_test_benign"], yn),
        _accuracy(d["output_train_adversarial"], ym), _accuracy(d["output_test_adversarial"], yn),
        inference_accuracy(true_label_confidence(d["output_train_benign"], ym),
                           true_label_confidence(d["output_test_benign"], yn)),
        inference_accuracy(true_label_confidence(d["output_train_adversarial"], ym),
                           true_label_confidence(d["output_test_adversarial"], yn)),
    )
    for g, p in zip(got, PUBLISHED[name]):
        assert abs(g - p) <= 1e-9, (name, got, PUBLISHED[name])
