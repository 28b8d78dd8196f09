"""Membership-inference metrics as pure functions: scores in, numbers out.

The study's metric (Song, Shokri, Mittal, CCS 2019, §3; ``inference_utils.py::inference_via_confidence``) is the
balanced accuracy of the best global threshold: a point is called a member iff its score ≥ t, t ranges over every
observed score, and the result is max(0.5, max_t ½·(TPR(t) + TNR(t))). Here it is computed by one sort,
O(n log n), instead of the original O(n²) sweep.
"""

from __future__ import annotations

from typing import Optional, Union

import torch
import torch.nn.functional as F
from torchmetrics.functional.classification import binary_auroc, binary_roc


def _as_1d(name: str, t: torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(t)
    if t.dim() != 1 or t.numel() == 0:
        raise ValueError(f"`{name}` must be a non-empty 1-d tensor of scores, got shape {tuple(t.shape)}")
    if not torch.isfinite(t.double()).all():
        raise ValueError(f"`{name}` holds non-finite scores")
    return t


def true_label_confidence(outputs: torch.Tensor, labels: torch.Tensor, from_logits: bool = False) -> torch.Tensor:
    """The probability each example gives its true label (the study's score).

    Args:
        outputs: (N, C) softmax vectors, or logits with ``from_logits=True`` (softmax taken in float32, as the
            study's numpy ``softmax_by_row``; float32 saturation to exactly 1.0 matters for the published numbers).
        labels: (N,) int64 true labels.

    Returns:
        (N,) confidences, in the dtype of the probabilities.
    """
    outputs, labels = torch.as_tensor(outputs), torch.as_tensor(labels).long()
    if outputs.dim() != 2 or labels.shape != outputs.shape[:1]:
        raise ValueError(f"`outputs` must be (N, C) and `labels` (N,), got {tuple(outputs.shape)} and "
                         f"{tuple(labels.shape)}")
    probs = F.softmax(outputs.float(), dim=1) if from_logits else outputs
    return probs.gather(1, labels.unsqueeze(1)).squeeze(1)


def _sweep(member_scores: torch.Tensor, nonmember_scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Distinct thresholds (descending) and the member and non-member counts with score ≥ each."""
    scores = torch.cat([member_scores, nonmember_scores]).double()
    is_member = torch.cat([torch.ones(len(member_scores), dtype=torch.int64),
                           torch.zeros(len(nonmember_scores), dtype=torch.int64)]).to(scores.device)
    sorted_scores, order = torch.sort(scores, descending=True, stable=True)
    members_above = torch.cumsum(is_member[order], 0)
    nonmembers_above = torch.arange(1, len(scores) + 1, device=scores.device) - members_above
    last_of_tie = torch.ones_like(sorted_scores, dtype=torch.bool)
    last_of_tie[:-1] = sorted_scores[1:] != sorted_scores[:-1]
    return sorted_scores[last_of_tie], members_above[last_of_tie], nonmembers_above[last_of_tie]


def inference_accuracy(member_scores: torch.Tensor, nonmember_scores: torch.Tensor,
                       return_threshold: bool = False) -> Union[float, tuple[float, float]]:
    """The study's membership-inference accuracy: max(0.5, max_t ½·(TPR(t) + TNR(t))), member iff score ≥ t.

    Args:
        member_scores: (N_m,) scores of members (training examples).
        nonmember_scores: (N_n,) scores of non-members.
        return_threshold: also return the best threshold t.

    Example::

        >>> inference_accuracy(torch.tensor([0.9, 0.8]), torch.tensor([0.1, 0.2]))
        1.0
    """
    member_scores = _as_1d("member_scores", member_scores)
    nonmember_scores = _as_1d("nonmember_scores", nonmember_scores)
    thresholds, tp, fp = _sweep(member_scores, nonmember_scores)
    acc = 0.5 * (tp.double() / len(member_scores) + 1 - fp.double() / len(nonmember_scores))
    best = int(torch.argmax(acc))
    value = max(0.5, float(acc[best]))
    return (value, float(thresholds[best])) if return_threshold else value


def _per_class(scores: torch.Tensor, labels: Optional[torch.Tensor], classes: list) -> dict:
    return {c: scores[labels == c] for c in classes}


def calibrate_threshold(member_scores: torch.Tensor, nonmember_scores: torch.Tensor,
                        member_labels: Optional[torch.Tensor] = None,
                        nonmember_labels: Optional[torch.Tensor] = None) -> Union[float, dict[int, float]]:
    """The best threshold on calibration scores (shadow or held-out data), to be applied to a target without
    looking at its membership (the study's "adversary's prior knowledge"). With labels, one threshold per class
    (classes missing from either side fall back to the global threshold)."""
    _, global_t = inference_accuracy(member_scores, nonmember_scores, return_threshold=True)
    if member_labels is None:
        return global_t
    out = {}
    for c in torch.cat([member_labels, nonmember_labels]).unique().tolist():
        m, n = member_scores[member_labels == c], nonmember_scores[nonmember_labels == c]
        out[int(c)] = inference_accuracy(m, n, return_threshold=True)[1] if len(m) and len(n) else global_t
    return out


def threshold_accuracy(member_scores: torch.Tensor, nonmember_scores: torch.Tensor,
                       threshold: Union[float, dict[int, float]], member_labels: Optional[torch.Tensor] = None,
                       nonmember_labels: Optional[torch.Tensor] = None) -> float:
    """Balanced accuracy ½·(TPR + TNR) of a fixed threshold (or per-class thresholds with labels)."""
    member_scores = _as_1d("member_scores", member_scores)
    nonmember_scores = _as_1d("nonmember_scores", nonmember_scores)
    if isinstance(threshold, dict):
        if member_labels is None or nonmember_labels is None:
            raise ValueError("per-class thresholds need `member_labels` and `nonmember_labels`")
        t_m = torch.tensor([threshold[int(c)] for c in member_labels], dtype=torch.float64)
        t_n = torch.tensor([threshold[int(c)] for c in nonmember_labels], dtype=torch.float64)
    else:
        t_m = t_n = torch.tensor(float(threshold), dtype=torch.float64)
    tpr = (member_scores.double() >= t_m).double().mean()
    tnr = (nonmember_scores.double() < t_n).double().mean()
    return float(0.5 * (tpr + tnr))


def roc_curve(member_scores: torch.Tensor, nonmember_scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """False- and true-positive rates of the score as a membership detector, one point per distinct threshold."""
    fprs, tprs, _ = binary_roc(*_preds_target(member_scores, nonmember_scores), thresholds=None)
    return fprs, tprs


def tpr_at_fpr(member_scores: torch.Tensor, nonmember_scores: torch.Tensor, fpr: float) -> float:
    """Highest true-positive rate over thresholds whose false-positive rate is at most ``fpr``."""
    if not 0 <= fpr <= 1:
        raise ValueError(f"`fpr` must be in [0, 1], got {fpr}")
    fprs, tprs = roc_curve(member_scores, nonmember_scores)
    ok = fprs <= fpr + 1e-12
    return float(tprs[ok].max()) if ok.any() else 0.0


def _preds_target(member_scores: torch.Tensor, nonmember_scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Predictions for torchmetrics' ROC: the scores' dense ranks scaled into [0, 1] (same order, same ties).
    torchmetrics passes predictions outside [0, 1] through a sigmoid, which in float64 ties every score above
    about 37 (LiRA's log-likelihood ratios, logit statistics) at 1.0."""
    member_scores = _as_1d("member_scores", member_scores)
    nonmember_scores = _as_1d("nonmember_scores", nonmember_scores)
    distinct, rank = torch.cat([member_scores, nonmember_scores]).double().cpu().unique(return_inverse=True)
    preds = rank.double() / max(len(distinct) - 1, 1)
    target = torch.cat([torch.ones(len(member_scores)), torch.zeros(len(nonmember_scores))]).long()
    return preds, target


def roc_auc(member_scores: torch.Tensor, nonmember_scores: torch.Tensor) -> float:
    """Area under the ROC curve of the score as a membership detector (ties count one half)."""
    return float(binary_auroc(*_preds_target(member_scores, nonmember_scores)))


def membership_report(member_scores: torch.Tensor, nonmember_scores: torch.Tensor) -> dict[str, float]:
    """Everything one set of scores says about membership: the study's reading (the oracle threshold) and the field's
    low-FPR one (Carlini et al. 2022).

    Returns:
        ``accuracy`` (the study's: the balanced accuracy of the best threshold), ``threshold`` (its best t),
        ``advantage`` (2·accuracy − 1), ``auc``, ``tpr@0.1%fpr``, ``tpr@1%fpr``, ``lowest_fpr`` (1 / non-members,
        the smallest FPR the sample resolves) and ``tpr@lowest_fpr``, ``members`` and ``nonmembers`` (counts).
    """
    accuracy, threshold = inference_accuracy(member_scores, nonmember_scores, return_threshold=True)
    lowest = 1 / len(nonmember_scores)
    return {
        "accuracy": accuracy,
        "threshold": threshold,
        "advantage": 2 * accuracy - 1,
        "auc": roc_auc(member_scores, nonmember_scores),
        "tpr@0.1%fpr": tpr_at_fpr(member_scores, nonmember_scores, 0.001),
        "tpr@1%fpr": tpr_at_fpr(member_scores, nonmember_scores, 0.01),
        "lowest_fpr": lowest,
        "tpr@lowest_fpr": tpr_at_fpr(member_scores, nonmember_scores, lowest),
        "members": len(member_scores),
        "nonmembers": len(nonmember_scores),
    }
