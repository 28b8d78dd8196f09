"""The robust membership inference attack, RMIA (Zarifzadeh, Liu, Shokri, ICML 2024, arXiv:2312.03262).

An example x is compared with population examples z through the likelihood ratio
LR(x, z) = [Pr(x|θ) / Pr(x)] / [Pr(z|θ) / Pr(z)], where Pr(·|θ) is the target's softmax probability of the true
label and Pr(·) its mean over reference models: over all of them (online), or, from the references that did not
train on the example (offline), Pr(x) = ½((1 + a)·Pr_OUT(x) + 1 − a), the paper's linear approximation of the
missing in-models. The score of x is the fraction of the population with LR(x, z) ≥ γ.

Pure functions of probabilities: every example is one column of the target's and the references' probabilities,
and the population is a set of those columns (by default the audited non-members, x itself excluded).
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch

from privrob.privacy.functional import roc_auc


def true_label_probability(logits: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Pr(x|θ): the softmax probability of the true label at ``temperature``, in float64."""
    if temperature <= 0:
        raise ValueError(f"`temperature` must be positive, got {temperature}")
    return torch.softmax(logits.double() / temperature, dim=1).gather(1, labels[:, None]).squeeze(1)


def marginal_probability(reference: torch.Tensor, inside: torch.Tensor, offline_a: Optional[float] = None
                         ) -> torch.Tensor:
    """Pr(x) from the references' (K, n) probabilities: their mean (online, ``offline_a`` None), or
    ½((1 + a)·Pr_OUT(x) + 1 − a) with Pr_OUT(x) the mean over the references whose ``inside`` is False."""
    if offline_a is None:
        return reference.double().mean(0)
    if not 0 <= offline_a <= 1:
        raise ValueError(f"`offline_a` must be in [0, 1], got {offline_a}")
    out = (~inside).double()
    if not (out.sum(0) > 0).all():
        raise ValueError("offline RMIA needs, for every example, a reference model that did not train on it")
    pr_out = (reference.double() * out).sum(0) / out.sum(0)
    return 0.5 * ((1 + offline_a) * pr_out + 1 - offline_a)


def likelihood_ratio(target_x: torch.Tensor, marginal_x: torch.Tensor, target_z: torch.Tensor,
                     marginal_z: torch.Tensor) -> torch.Tensor:
    """LR(x, z) for every pair, (n, m): [Pr(x|θ)/Pr(x)] / [Pr(z|θ)/Pr(z)]."""
    return (target_x.double() / marginal_x.double())[:, None] / (target_z.double() / marginal_z.double())[None, :]


def rmia_score(target: torch.Tensor, marginal: torch.Tensor, population: torch.Tensor, gamma: float = 1.0
               ) -> torch.Tensor:
    """Score(x) = the fraction of population examples z ≠ x with LR(x, z) ≥ γ, for every example (higher: more
    likely a member).

    Args:
        target: (n,) Pr(x|θ) of every example.
        marginal: (n,) Pr(x) of every example.
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
    ratio = target.double() / marginal.double()
    if not torch.isfinite(ratio).all():
        raise ValueError("Pr(x|θ) / Pr(x) is not finite for some example (a marginal probability of 0)")
    sorted_z = ratio[population].sort().values
    # LR(x, z) ≥ γ  ⇔  ratio(z) ≤ ratio(x) / γ: count with one binary search per x instead of an (n, m) matrix
    bound = ratio / gamma
    count = torch.searchsorted(sorted_z, bound, right=True).double()
    in_population = torch.zeros(len(ratio), dtype=torch.bool, device=ratio.device)
    in_population[population] = True
    count -= (in_population & (ratio <= bound)).double()  # x was counted against itself
    return count / (len(population) - in_population.double())


def rmia_scores(target: torch.Tensor, reference: torch.Tensor, inside: torch.Tensor, population: torch.Tensor, *,
                gamma: float = 1.0, offline_a: float = 0.3) -> dict[str, torch.Tensor]:
    """Online and offline RMIA scores of every example.

    Args:
        target: (n,) Pr(x|θ) of the target model.
        reference: (K, n) Pr(x|θ_k) of the reference models.
        inside: (K, n) bool, whether reference k trained on example x.
        population: indices of the population examples (e.g. the target's audited non-members).
        gamma: γ of the likelihood-ratio test.
        offline_a: a of offline RMIA (:func:`choose_offline_a` picks it on the references).
    """
    return {"online": rmia_score(target, marginal_probability(reference, inside), population, gamma),
            "offline": rmia_score(target, marginal_probability(reference, inside, offline_a), population, gamma)}


def choose_offline_a(reference: torch.Tensor, inside: torch.Tensor, gamma: float = 1.0,
                     grid: Sequence[float] = tuple(i / 10 for i in range(11))) -> float:
    """The a of offline RMIA chosen on the references alone, as the paper does by simulating the attack on them: each
    reference in turn plays the target, attacked by offline RMIA with all the others (ML Privacy Meter's
    ``tune_offline_a`` uses one paired reference instead; population: the playing reference's non-members); the a of
    ``grid`` with the highest mean AUC (the smallest such a on ties)."""
    k = len(reference)
    # a reference can play the target only if every example is left out of one of the others (Pr_OUT exists)
    players = [t for t in range(k) if (~inside[torch.arange(k) != t]).any(0).all()]
    if not players:
        raise ValueError(f"choosing `offline_a` needs 3 or more reference models in complementary pairs, got {k}")
    best, best_auc = grid[0], -1.0
    for a in grid:
        aucs = []
        for t in players:
            others, members = torch.arange(k) != t, inside[t]
            scores = rmia_score(reference[t], marginal_probability(reference[others], inside[others], a),
                                torch.nonzero(~members).squeeze(1), gamma)
            aucs.append(roc_auc(scores[members], scores[~members]))
        mean = sum(aucs) / len(aucs)
        if mean > best_auc:
            best, best_auc = a, mean
    return float(best)
