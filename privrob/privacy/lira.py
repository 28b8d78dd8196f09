"""The likelihood-ratio attack, LiRA (Carlini, Chien, Nasr, Song, Terzis, Tramèr, IEEE S&P 2022, arXiv:2112.03570).

K reference models are trained by the same method on random parts of a data pool (:mod:`privrob.privacy.references`),
so each example is "in" for some of them and "out" for the others. An example's statistic is the logit-scaled
true-label confidence φ = z_y − logsumexp_{j≠y} z_j.
Online LiRA scores the target's φ by the log-likelihood ratio of Gaussians fitted to the in- and out-models' φ;
offline LiRA by the one-sided tail of the out-Gaussian alone. Each side's variance is pooled over examples
(Carlini et al.'s "fixed variance", their choice with few reference models; privrob's audits use 4-16), unbiased.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from privrob.privacy.evaluation import evaluation_mode
from privrob.privacy.strategies import Benign, Strategy


#: inputs the statistic is measured on: as given, or after the study's evaluation attack against the scored model
SIGNALS = ("clean", "adversarial")


def logit_confidence(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """φ = z_y − logsumexp_{j≠y} z_j = log(p_y / (1 − p_y)), computed without saturating p_y."""
    logits = logits.double()
    true = logits.gather(1, labels[:, None]).squeeze(1)
    others = logits.masked_fill(torch.nn.functional.one_hot(labels, logits.shape[1]).bool(), float("-inf"))
    return true - torch.logsumexp(others, dim=1)


def statistics(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 256,
               signal: Optional[Strategy] = None) -> torch.Tensor:
    """φ of every example under ``model``, in :func:`~privrob.privacy.evaluation.evaluation_mode`, on the clean
    input or, with ``signal``, on that strategy's input (:class:`~privrob.privacy.strategies.Adversarial`: the
    study's evaluation attack against ``model`` itself, the adversarial signal)."""
    signal = signal if signal is not None else Benign()
    device = next(model.parameters()).device
    with evaluation_mode(model):
        out = [logit_confidence(signal.logits(model, images[i:i + batch_size].to(device),
                                              labels[i:i + batch_size].to(device)).cpu(), labels[i:i + batch_size])
               for i in range(0, len(labels), batch_size)]
    return torch.cat(out)


def lira_scores(target: torch.Tensor, reference: torch.Tensor, inside: torch.Tensor) -> dict[str, torch.Tensor]:
    """Online and offline LiRA scores (higher: more likely a member): log N(φ; μ_in, σ_in) − log N(φ; μ_out, σ_out),
    and log Φ((φ − μ_out)/σ_out), the log of the out-Gaussian's one-sided tail (Φ itself rounds to 1 beyond 8.3σ,
    tying the strongest members exactly where a low-FPR TPR is read; log Φ does so only beyond 38σ).

    Args:
        target: (n,) φ of the target model.
        reference: (K, n) φ of the reference models.
        inside: (K, n) bool, whether the example was in the reference model's training half.
    """
    if not inside.any(0).all() or not (~inside).any(0).all():
        raise ValueError("every example needs at least one reference model with it and one without it; "
                         "train more reference models")
    def fit(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        w, reference_ = mask.double(), reference.double()
        count = w.sum(0)
        mean = (reference_ * w).sum(0) / count
        # pooled over examples, each with count − 1 degrees of freedom (an example seen once adds none)
        freedom = (count - 1).sum()
        if freedom == 0:
            raise ValueError("every example is seen by one reference model on a side: no variance to pool; "
                             "train more reference models")
        var = ((reference_ - mean) ** 2 * w).sum() / freedom
        return mean, var.clamp(min=1e-12).sqrt()

    target = target.double()
    mu_in, sd_in = fit(inside)
    mu_out, sd_out = fit(~inside)
    normal = torch.distributions.Normal
    online = normal(mu_in, sd_in).log_prob(target) - normal(mu_out, sd_out).log_prob(target)
    offline = torch.special.log_ndtr((target - mu_out) / sd_out)
    return {"online": online, "offline": offline}
