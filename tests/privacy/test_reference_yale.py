"""The seven published Yale models: privrob's metric code gives every number of the study (reference README)."""

import numpy as np
import pytest
import torch

from privrob.privacy import inference_accuracy, true_label_confidence

# file: (train acc, test acc, adv train acc, adv test acc, I_B, I_A), from ../shared/data/reference/README.md
PUBLISHED = {
    "natural": (1.0, 0.9824902723735408, 0.045263157894736845, 0.029182879377431907, 0.5585306164243293, 0.5427329510546794),
    "pgd": (0.9989473684210526, 0.9669260700389105, 0.99, 0.7762645914396887, 0.6168687282408356, 0.6882561949621135),
    "wrm": (0.9957894736842106, 0.9377431906614786, 0.8326315789473684, 0.5505836575875487, 0.6223202949006759, 0.6406952693016588),
    "trades": (0.9952631578947368, 0.9377431906614786, 0.9942105263157894, 0.8385214007782101, 0.5805519148064715, 0.6558775343026828),
    "dual": (0.9889473684210527, 0.9280155642023347, 0.9852631578947368, 0.8365758754863813, 0.5589913987302887, 0.6039596559492116),
    "diffai": (0.9926315789473684, 0.8326848249027238, 0.8568421052631578, 0.5038910505836576, 0.6510567274216671, 0.6563721073110793),
    "ibp": (0.991578947368421, 0.857976653696498, 0.9442105263157895, 0.6867704280155642, 0.6045054269916035, 0.6627769813639157),
}


def _accuracy(outputs, labels) -> float:
    return float((outputs.argmax(dim=1) == labels).double().mean())


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
