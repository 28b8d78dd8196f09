"""Collect the audits of a set of runs into one table and one plot (the capacity study, or any sweep).

usage: python -m privrob.collect RUN_DIR... [--output STEM] [--by width]

Each run folder holds the ``config.yaml`` its fit saved and, in ``checkpoints/``, the ``*.audit.json`` that
``python -m privrob audit`` wrote. The table has one row per run: the swept value (the backbone's ``width`` by
default), train/test accuracy (I_B), adversarial train/test accuracy (I_A), and I_B and I_A inference accuracy;
``STEM.csv``, ``STEM.md`` and ``STEM.png`` (each column against the swept value).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import yaml

COLUMNS = ("train_acc", "test_acc", "adv_train_acc", "adv_test_acc", "I_B", "I_A")


def run_row(run: Path, by: str) -> dict:
    """The audit numbers of one run folder, with the swept value read from its saved config."""
    config_path = run / "config.yaml"
    audits = sorted((run / "checkpoints").glob("*.audit.json"))
    if not config_path.is_file() or not audits:
        raise FileNotFoundError(f"{run} needs config.yaml and checkpoints/*.audit.json (run `privrob audit` first)")
    config = yaml.safe_load(config_path.read_text())
    backbone = config["model"]["init_args"]["backbone"]["init_args"]
    value = backbone.get(by, config["model"]["init_args"].get(by))
    strategies = json.loads(audits[-1].read_text())["strategies"]
    b, a = strategies["I_B"], strategies.get("I_A", {})
    return {"run": str(run), by: value, "train_acc": b["train_acc"], "test_acc": b["test_acc"],
            "adv_train_acc": a.get("train_acc"), "adv_test_acc": a.get("test_acc"), "I_B": b["accuracy"],
            "I_A": a.get("accuracy")}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m privrob.collect", description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--output", type=Path, default=Path("capacity"))
    parser.add_argument("--by", default="width", help="the swept init argument (backbone's, else the model's)")
    args = parser.parse_args(argv)
    try:
        rows = sorted((run_row(r, args.by) for r in args.runs), key=lambda r: (r[args.by] is None, r[args.by]))
    except (FileNotFoundError, KeyError) as err:
        print(f"privrob.collect: error: {err}", file=sys.stderr)
        sys.exit(2)
    fields = ["run", args.by, *COLUMNS]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{args.output}.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    fmt = lambda v: "" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v))  # noqa: E731
    lines = ["| " + " | ".join(fields[1:]) + " |", "|---" * (len(fields) - 1) + "|"]
    lines += ["| " + " | ".join(fmt(r[k]) for k in fields[1:]) + " |" for r in rows]
    Path(f"{args.output}.md").write_text("\n".join(lines) + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    xs = [r[args.by] for r in rows]
    for col in COLUMNS:
        if all(r[col] is not None for r in rows):
            ax.plot(xs, [r[col] for r in rows], marker="o", label=col)
    ax.set_xlabel(args.by)
    ax.set_ylabel("accuracy")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(f"{args.output}.png", dpi=100)
    plt.close(fig)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
