"""Reference models for the calibrated attacks, LiRA (Carlini et al., S&P 2022) and RMIA (Zarifzadeh et al., ICML
2024), and for the shadow-model threshold (Shokri et al., S&P 2017; Song & Mittal 2021): which examples of the target's
pool (its members, then its non-members) each reference trains on, the folder that keeps them, and the attacks'
scores from them.

A references folder holds ``references.pt`` (the pool's indices, the (K, n) membership masks and how they were drawn)
and ``reference_<k>.ckpt`` per trained model, written whole or not at all, so that a folder is reused by any later
call: the masks are drawn once from the seed, and a reference already there is never trained again.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn

from privrob.privacy.lira import lira_scores, statistics
from privrob.privacy.rmia import choose_offline_a, rmia_scores
from privrob.privacy.strategies import Strategy

#: what each reference trains on: seeded complementary halves of the pool, or sets of the target's size
TRAINING_SETS = ("half", "target_size")
MANIFEST = "references.pt"


def references_per_example(num_reference: int, pool_size: int, target_size: int) -> int:
    """m of the ``target_size`` design: round(K·p), p = target_size / pool_size, the target's fraction of the pool."""
    return round(num_reference * target_size / pool_size)


def check_design(num_reference: int, training_set: str, pool_size: int, target_size: int) -> None:
    """A ``target_size`` design needs every example in at least 2 references and out of at least 2: LiRA fits a
    variance to each side, and RMIA's offline a lets each reference play the target against the others, which needs
    each example left out of one of those. Refused with the smallest K that works."""
    if training_set != "target_size":
        return
    def works(k: int) -> bool:
        return 2 <= references_per_example(k, pool_size, target_size) <= k - 2
    if not works(num_reference):
        smallest = next(k for k in range(4, 10 * pool_size) if works(k))
        raise ValueError(f"`training_set` target_size with {num_reference} references puts each example in "
                         f"{references_per_example(num_reference, pool_size, target_size)} of them (p = "
                         f"{target_size}/{pool_size}); each must be in at least 2 and out of at least 2: use "
                         f"`num_reference` {smallest} or more")


def reference_masks(pool_size: int, num_reference: int, training_set: str, target_size: int, seed: int
                    ) -> torch.Tensor:
    """(K, n) bool: whether reference k trains on pool example x.

    ``half``: complementary pairs of seeded halves (each example in K/2 references for even K).
    ``target_size``: LiRA's own design (Carlini et al.'s code, with pkeep = p): each example is in exactly
    m = round(K·p) of the K references, chosen at random per example, p the target's fraction of the pool (1,900 of
    2,414 on Yale); each reference then trains on about m/K of the pool (:func:`check_design`: 2 ≤ m ≤ K − 2).
    """
    generator = torch.Generator().manual_seed(seed)
    if training_set == "half":
        halves = []
        for k in range(num_reference):
            halves.append(~halves[-1] if k % 2 else torch.randperm(pool_size, generator=generator) < pool_size // 2)
        return torch.stack(halves)
    order = torch.rand(num_reference, pool_size, generator=generator).argsort(0)
    return order < references_per_example(num_reference, pool_size, target_size)


def check_options(num_reference: int, training_set: str, index: Optional[int] = None,
                  reference_epochs: Optional[int] = None) -> None:
    """Refuse bad reference options before any work."""
    if num_reference < 3:
        raise ValueError(f"`num_reference` must be at least 3 (RMIA's offline a is chosen by letting each reference "
                         f"play the target against the others), got {num_reference}")
    if training_set not in TRAINING_SETS:
        raise ValueError(f"`training_set` can be {' or '.join(TRAINING_SETS)}, got {training_set!r}")
    if index is not None and not 0 <= index < num_reference:
        raise ValueError(f"`index` must be in [0, {num_reference - 1}], got {index}")
    if reference_epochs is not None and reference_epochs < 1:
        raise ValueError(f"`reference_epochs` must be at least 1, got {reference_epochs}")


def reference_path(folder: Path, k: int) -> Path:
    return Path(folder) / f"reference_{k}.ckpt"


def save_atomically(write: Callable[[Path], object], path: Path) -> None:
    """``write(tmp)`` then rename onto ``path``: a killed writer leaves no partial file that a later call would reuse
    (array tasks on many nodes may race to write the same manifest; each writes the same content)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def open_folder(folder: Path, pool: torch.Tensor, num_members: int, options: dict) -> torch.Tensor:
    """The masks of ``folder``: read from its manifest, refused if that was drawn for another pool or with other
    ``options`` (K, training set, seed, and what the references are: method, hyperparameters, network, training
    length), or drawn and saved now, with a readable ``references.json`` (written first: the manifest is the commit).
    """
    folder = Path(folder)
    manifest = folder / MANIFEST
    if manifest.exists():
        saved = torch.load(manifest, weights_only=True)
        differ = [k for k, v in options.items() if saved.get(k) != v]
        if differ or not torch.equal(saved["pool"], pool):
            what = ", ".join(f"{k} {saved.get(k)!r}" for k in differ) if differ else "another member/non-member split"
            raise ValueError(f"{folder} holds references drawn with {what}; use another folder for these options")
        return saved["inside"]
    inside = reference_masks(len(pool), options["num_reference"], options["training_set"], num_members,
                             options["seed"])
    folder.mkdir(parents=True, exist_ok=True)
    save_atomically(lambda p: p.write_text(json.dumps(
        {**options, "pool": len(pool), "target_members": num_members,
         "in_fraction": float(inside.double().mean()), "reference_sizes": inside.sum(1).tolist()},
        indent=2) + "\n"), folder / "references.json")
    save_atomically(lambda p: torch.save({"pool": pool, "inside": inside, "num_members": num_members, **options}, p),
                    manifest)
    return inside


def load_folder(folder: Path, pool: torch.Tensor) -> dict:
    """The manifest of a complete references folder whose pool is ``pool`` (the audited split), with the paths of
    its K checkpoints; a one-line error otherwise."""
    folder = Path(folder)
    if not (folder / MANIFEST).is_file():
        raise FileNotFoundError(f"no references in {folder} (no {MANIFEST}); train them with `privrob references`")
    saved = torch.load(folder / MANIFEST, weights_only=True)
    if not torch.equal(saved["pool"], pool):
        raise ValueError(f"{folder} holds references of another member/non-member split than the audited checkpoint")
    missing = [k for k in range(saved["num_reference"]) if not reference_path(folder, k).is_file()]
    if missing:
        raise ValueError(f"{folder} has {saved['num_reference'] - len(missing)} of its {saved['num_reference']} "
                         f"references trained (missing: {', '.join(map(str, missing))}); run `privrob references`")
    return {**saved, "paths": [reference_path(folder, k) for k in range(saved["num_reference"])]}


def reference_attacks(target: nn.Module, references: list[nn.Module], images: torch.Tensor, labels: torch.Tensor,
                      inside: torch.Tensor, is_member: torch.Tensor, signals: dict[str, Strategy]
                      ) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    """Scores of online and offline LiRA and RMIA and of the threshold on φ, per signal, for every example: named
    ``"<attack> <variant> (<signal>)"``; with RMIA's offline a per signal (chosen on the references). RMIA's Pr(x|θ)
    is the true label's softmax probability at temperature 1, sigmoid(φ), taken as its logarithm; its population the
    non-members."""
    scores, offline_a = {}, {}
    population = torch.nonzero(~is_member).squeeze(1)
    for name, signal in signals.items():
        phi = statistics(target, images, labels, signal=signal)
        ref_phi = torch.stack([statistics(ref, images, labels, signal=signal) for ref in references])
        # log Pr(x|θ) = log sigmoid(φ): finite where Pr(x|θ) itself underflows
        log_target, log_reference = F.logsigmoid(phi.double()), F.logsigmoid(ref_phi.double())
        offline_a[name] = choose_offline_a(log_reference, inside)
        lira = lira_scores(phi, ref_phi, inside)
        rmia = rmia_scores(log_target, log_reference, inside, population, offline_a=offline_a[name])
        scores.update({f"LiRA online ({name})": lira["online"], f"LiRA offline ({name})": lira["offline"],
                       f"RMIA online ({name})": rmia["online"], f"RMIA offline ({name})": rmia["offline"],
                       f"threshold phi ({name})": phi})  # the study's attack on φ: Pr(x|θ)'s order, without ties
    return scores, offline_a
