"""The robust membership inference attack, RMIA (Zarifzadeh, Liu, Shokri, ICML 2024, arXiv:2312.03262).

An example x is compared with population examples z through the likelihood ratio
LR(x, z) = [Pr(x|θ) / Pr(x)] / [Pr(z|θ) / Pr(z)], where Pr(·|θ) is the target's softmax probability of the true
label and Pr(·) its mean over reference models: over all of them (online), or, from the references that did not
train on the example (offline), Pr(x) = ½((1 + a)·Pr_OUT(x) + 1 − a), the paper's linear approximation of the
missing in-models. The score of x is the fraction of the population with LR(x, z) ≥ γ.

Pure functions of log-probabilities (a confidently wrong example's Pr(x|θ) can underflow to 0, below e^-104 in
float32 as on the Fashion-MNIST natural model of RESULTS.md, and Pr(x|θ)/Pr(x) with it; its logarithm does not):
every example is one column of the target's and the references' log Pr(x|θ), and the population is a set of those
columns (by default the audited non-members, x itself excluded).
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch

from privrob.privacy.functional import roc_auc


def true_label_log_probability(logits: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0
                               ) -> torch.Tensor:
    """log Pr(x|θ): the log-softmax of the true label at ``temperature``, in float64."""
    if temperature <= 0:
        raise ValueError(f"`temperature` must be positive, got {temperature}")
    return torch.log_softmax(logits.double() / temperature, dim=1).gather(1, labels[:, None]).squeeze(1)


def log_marginal_probability(log_reference: torch.Tensor, inside: torch.Tensor, offline_a: Optional[float] = None
                             ) -> torch.Tensor:
    """log Pr(x) from the references' (K, n) log-probabilities: the log of their mean (online, ``offline_a``
    None), or of ½((1 + a)·Pr_OUT(x) + 1 − a) with Pr_OUT(x) the mean over the references whose ``inside`` is
    False."""
    log_reference = log_reference.double()
    if offline_a is None:
        return torch.logsumexp(log_reference, 0) - math.log(len(log_reference))
    if not 0 <= offline_a <= 1:
        raise ValueError(f"`offline_a` must be in [0, 1], got {offline_a}")
    out = ~inside
    if not out.any(0).all():
        raise ValueError("offline RMIA needs, for every example, a reference model that did not train on it")
    log_pr_out = torch.logsumexp(log_reference.masked_fill(inside, -math.inf), 0) - out.sum(0).double().log()
    rest = torch.full_like(log_pr_out, math.log(1 - offline_a) if offline_a < 1 else -math.inf)
    return torch.logaddexp(math.log1p(offline_a) + log_pr_out, rest) - math.log(2)


def likelihood_ratio(log_target_x: torch.Tensor, log_marginal_x: torch.Tensor, log_target_z: torch.Tensor,
                     log_marginal_z: torch.Tensor) -> torch.Tensor:
    """LR(x, z) for every pair, (n, m): [Pr(x|θ)/Pr(x)] / [Pr(z|θ)/Pr(z)]."""
    return ((log_target_x - log_marginal_x).double()[:, None] - (log_target_z - log_marginal_z).double()[None, :]).exp()


def rmia_score(log_target: torch.Tensor, log_marginal: torch.Tensor, population: torch.Tensor, gamma: float = 1.0
               ) -> torch.Tensor:
    """Score(x) = the fraction of population examples z ≠ x with LR(x, z) ≥ γ, for every example (higher: more
    likely a member).

    Args:
        log_target: (n,) log Pr(x|θ) of every example.
        log_marginal: (n,) log Pr(x) of every example.
        population: indices of the examples that form the population Z (an example of Z is not compared with
            itself).
        gamma: γ > 0.
    """
    if gamma <= 0:
        raise ValueError(f"`gamma` must be positive, got {gamma}")
    if population.dtype == torch.bool or population.is_floating_point() or len(population.unique()) != len(population):
        raise ValueError("`population` must be distinct integer indices")
    if len(population) < 2:
        raise ValueError(f"the population needs at least 2 examples, got {len(population)}")
    log_ratio = log_target.double() - log_marginal.double()
    if not torch.isfinite(log_ratio).all():
        raise ValueError("Pr(x|θ) / Pr(x) is not finite for some example (a log-probability of -inf or NaN)")
    sorted_z = log_ratio[population].sort().values
    # LR(x, z) ≥ γ  ⇔  log ratio(z) ≤ log ratio(x) − log γ: one binary search per x instead of an (n, m) matrix
    bound = log_ratio - math.log(gamma)
    count = torch.searchsorted(sorted_z, bound, right=True).double()
    in_population = torch.zeros(len(log_ratio), dtype=torch.bool, device=log_ratio.device)
    in_population[population] = True
    count -= (in_population & (log_ratio <= bound)).double()  # x was counted against itself
    return count / (len(population) - in_population.double())


def rmia_scores(log_target: torch.Tensor, log_reference: torch.Tensor, inside: torch.Tensor, population: torch.Tensor,
                *, gamma: float = 1.0, offline_a: float = 0.3) -> dict[str, torch.Tensor]:
    """Online and offline RMIA scores of every example.

    Args:
        log_target: (n,) log Pr(x|θ) of the target model.
        log_reference: (K, n) log Pr(x|θ_k) of the reference models.
        inside: (K, n) bool, whether reference k trained on example x.
        population: indices of the population examples (e.g. the target's audited non-members).
        gamma: γ of the likelihood-ratio test.
        offline_a: a of offline RMIA (:func:`choose_offline_a` picks it on the references).
    """
    return {"online": rmia_score(log_target, log_marginal_probability(log_reference, inside), population, gamma),
            "offline": rmia_score(log_target, log_marginal_probability(log_reference, inside, offline_a), population,
                                  gamma)}


def choose_offline_a(log_reference: torch.Tensor, inside: torch.Tensor, gamma: float = 1.0,
                     grid: Sequence[float] = tuple(i / 10 for i in range(11))) -> float:
    """The a of offline RMIA chosen on the references alone, as the paper does by simulating the attack on them: each
    reference in turn plays the target, attacked by offline RMIA with all the others (ML Privacy Meter's
    ``tune_offline_a`` uses one paired reference instead; population: the playing reference's non-members); the a of
    ``grid`` with the highest mean AUC (the smallest such a on ties)."""
    k = len(log_reference)
    # a reference can play the target only if every example is left out of one of the others (Pr_OUT exists)
    players = [t for t in range(k) if (~inside[torch.arange(k) != t]).any(0).all()]
    if not players:
        raise ValueError(f"choosing `offline_a` needs 3 or more reference models in complementary pairs, got {k}")
    best, best_auc = grid[0], -1.0
    for a in grid:
        aucs = []
        for t in players:
            others, members = torch.arange(k) != t, inside[t]
            scores = rmia_score(log_reference[t], log_marginal_probability(log_reference[others], inside[others], a),
                                torch.nonzero(~members).squeeze(1), gamma)
            aucs.append(roc_auc(scores[members], scores[~members]))
        mean = sum(aucs) / len(aucs)
        if mean > best_auc:
            best, best_auc = a, mean
    return float(best)
