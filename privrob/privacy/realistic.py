"""Attackers without the oracle threshold: a threshold calibrated on held-out data (the study's "adversary's prior
knowledge") or on a shadow model (Shokri et al., S&P 2017; Song & Mittal, USENIX Security 2021), optionally one per
class, and Song & Mittal's per-example privacy risk score ("Systematic evaluation of privacy risks of machine learning
models", arXiv:2003.10595).

Held out: the calibration data is a seeded part of the target's own members and non-members; the rest is the
evaluation part, on which the calibrated threshold is applied and compared with the oracle threshold. Shadow: the
calibration data is a shadow model's own members and non-members, scored by the shadow; the thresholds are applied
to all of the target's."""

from __future__ import annotations

from typing import Optional

import torch

from privrob.privacy.functional import calibrate_threshold, inference_accuracy, threshold_accuracy


def check_fraction(fraction: float, name: str = "fraction") -> None:
    """A calibration fraction is in (0, 1): both parts get examples."""
    if not 0 < fraction < 1:
        raise ValueError(f"`{name}` must be in (0, 1), got {fraction}")


def holdout_split(n: int, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions of a seeded calibration part (``fraction`` of n) and of the evaluation rest."""
    check_fraction(fraction)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    k = max(1, min(n - 1, int(round(fraction * n))))
    return perm[:k].sort().values, perm[k:].sort().values


def risk_scores(calib_members: torch.Tensor, calib_nonmembers: torch.Tensor, scores: torch.Tensor,
                bins: int = 20, prior: float = 0.5) -> torch.Tensor:
    """Posterior probability of membership of each score, P(in | s) = p·P(s | in) / (p·P(s | in) + (1−p)·P(s | out)),
    with the two likelihoods estimated by histograms (``bins`` quantile bins of the calibration scores, add-one
    smoothed) of calibration members and non-members. Values in [0, 1]."""
    calib = torch.cat([calib_members, calib_nonmembers]).double()
    edges = torch.quantile(calib, torch.linspace(0, 1, bins + 1, dtype=torch.float64)).unique()
    inner = edges[1:-1]

    def density(values: torch.Tensor) -> torch.Tensor:
        counts = torch.bincount(torch.bucketize(values.double(), inner), minlength=len(inner) + 1).double()
        return (counts + 1) / (counts.sum() + len(counts))

    p_in, p_out = density(calib_members), density(calib_nonmembers)
    idx = torch.bucketize(scores.double(), inner)
    num = prior * p_in[idx]
    return num / (num + (1 - prior) * p_out[idx])


def calibrated_accuracy(calib_members: torch.Tensor, calib_nonmembers: torch.Tensor, members: torch.Tensor,
                        nonmembers: torch.Tensor, calib_member_labels: Optional[torch.Tensor] = None,
                        calib_nonmember_labels: Optional[torch.Tensor] = None,
                        member_labels: Optional[torch.Tensor] = None,
                        nonmember_labels: Optional[torch.Tensor] = None) -> dict:
    """The best threshold on the calibration scores, its balanced accuracy on the evaluated ones beside the oracle's
    on them, and with labels the same per class (a class missing from the calibration takes the global threshold)."""
    t = calibrate_threshold(calib_members, calib_nonmembers)
    out = {"threshold": t, "calibrated_accuracy": threshold_accuracy(members, nonmembers, t),
           "oracle_accuracy": inference_accuracy(members, nonmembers)}
    if member_labels is not None:
        per_class = calibrate_threshold(calib_members, calib_nonmembers, calib_member_labels, calib_nonmember_labels)
        for c in torch.cat([member_labels, nonmember_labels]).unique().tolist():
            per_class.setdefault(int(c), t)
        out["per_class_calibrated_accuracy"] = threshold_accuracy(members, nonmembers, per_class, member_labels,
                                                                  nonmember_labels)
    return out


def realistic_report(member_scores: torch.Tensor, nonmember_scores: torch.Tensor, *, fraction: float = 0.5,
                     seed: int = 0, member_labels: Optional[torch.Tensor] = None,
                     nonmember_labels: Optional[torch.Tensor] = None, top: int = 10) -> dict:
    """Calibrate on a held-out part, evaluate on the rest: the calibrated threshold's accuracy (global, and per class
    with labels) beside the oracle accuracy on the same evaluation scores, and the risk scores of the evaluation
    examples (mean for members and non-members, and the ``top`` highest-risk positions)."""
    cm, em = holdout_split(len(member_scores), fraction, seed)
    cn, en = holdout_split(len(nonmember_scores), fraction, seed + 1)
    out: dict = {"calibration": {"members": len(cm), "nonmembers": len(cn)},
                 "evaluation": {"members": len(em), "nonmembers": len(en)}}
    labelled = member_labels is not None and nonmember_labels is not None
    out.update(calibrated_accuracy(
        member_scores[cm], nonmember_scores[cn], member_scores[em], nonmember_scores[en],
        *((member_labels[cm], nonmember_labels[cn], member_labels[em], nonmember_labels[en]) if labelled else ())))
    risk_m = risk_scores(member_scores[cm], nonmember_scores[cn], member_scores[em])
    risk_n = risk_scores(member_scores[cm], nonmember_scores[cn], nonmember_scores[en])
    out["risk"] = {"mean_members": float(risk_m.mean()), "mean_nonmembers": float(risk_n.mean())}
    order = torch.argsort(risk_m, descending=True)[:top]
    out["risk"]["top_members"] = [{"position": int(em[i]), "risk": float(risk_m[i])} for i in order]
    return out
