"""Yale IBP training (Gowal et al. 2018) under several warm-up / ramp / learning-rate schedules side by side on one
GPU, printing clean and PGD validation accuracy per epoch: the measurement behind the budget of
``configs/cpu/yale_ibp.yaml`` (short ramps collapsed to chance on the CPU; one GPU tries several in minutes).

Each variant is ``configs/cpu/yale_ibp.yaml`` (or the study's ``configs/yale_ibp.yaml`` for ``study``) with the
overrides below, a CSV logger instead of W&B, and the data root given; each runs as its own ``python -m privrob fit``
with a wall-time limit, so that a slow one is cut, not waited for. The summary reads each run's ``metrics.csv``.

Usage: python results/ibp_schedules.py --data ROOT --out DIR [--seconds S] [--accelerator gpu] [NAME ...]
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
STEPS_PER_EPOCH = 95  # 1,900 members, batch 20

#: name -> (base config, model init_args overrides, trainer overrides). ``cpu`` is configs/cpu/yale_ibp.yaml as it
#: stands; the ``ramp*`` variants are the shorter budgets it replaced (each a full set of schedule values).
VARIANTS = {
    "study": ("configs/yale_ibp.yaml", {"verified_eval_size": 0}, {}),
    "cpu": ("configs/cpu/yale_ibp.yaml", {}, {}),
    "ramp3040_lr1e-3": ("configs/cpu/yale_ibp.yaml", {"lr": 1.0e-3, "warmup_steps": 190, "ramp_steps": 3040,
                                                       "lr_schedule": [[190, 1.0e-4], [4275, 1.0e-5]]},
                        {"max_epochs": 50}),
    "ramp3040_lr1e-4": ("configs/cpu/yale_ibp.yaml", {"lr": 1.0e-4, "warmup_steps": 475, "ramp_steps": 3040,
                                                       "lr_schedule": [[4275, 1.0e-5]]}, {"max_epochs": 50}),
    "ramp2280_lr1e-3": ("configs/cpu/yale_ibp.yaml", {"lr": 1.0e-3, "warmup_steps": 190, "ramp_steps": 2280,
                                                       "lr_schedule": [[190, 1.0e-4], [3420, 1.0e-5]]},
                        {"max_epochs": 40}),
    "ramp1520_lr1e-3": ("configs/cpu/yale_ibp.yaml", {"lr": 1.0e-3, "warmup_steps": 190, "ramp_steps": 1520,
                                                       "lr_schedule": [[190, 1.0e-4], [2565, 1.0e-5]]},
                        {"max_epochs": 30}),
}
SWEEP = ["study", "ramp3040_lr1e-3", "ramp3040_lr1e-4", "ramp2280_lr1e-3", "ramp1520_lr1e-3"]


def variant_config(name: str, data: Path, out: Path, accelerator: str) -> Path:
    base, model_args, trainer_args = VARIANTS[name]
    config = yaml.safe_load((ROOT / base).read_text())
    config["model"]["init_args"].update(model_args)
    config["trainer"].update(trainer_args, accelerator=accelerator, devices=1, enable_progress_bar=False,
                             default_root_dir=str(out / name),
                             logger={"class_path": "pytorch_lightning.loggers.CSVLogger",
                                     "init_args": {"save_dir": str(out / name), "name": "csv", "version": ""}})
    for callback in config["trainer"]["callbacks"]:
        if callback["class_path"].endswith("MembershipInference"):
            callback["init_args"]["bound_methods"] = ["ibp"]   # as the study certified its IBP models
    config["data"]["init_args"]["root"] = str(data)
    path = out / name / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def summary(name: str, out: Path) -> list[str]:
    files = sorted((out / name).glob("**/metrics.csv"))
    if not files:
        return [f"{name}: no metrics.csv"]
    rows = {}
    for row in csv.DictReader(files[0].open()):
        if row.get("epoch"):
            epoch = int(row["epoch"])
            rows.setdefault(epoch, {}).update({k: v for k, v in row.items() if v not in ("", None)})
    lines = [f"{name}: epoch, step, train/acc, val/acc, val/adv_acc, train/eps"]
    for epoch, row in sorted(rows.items()):
        values = [row.get(k, "") for k in ("train/acc", "val/acc", "val/adv_acc", "train/eps")]
        lines.append(f"  {epoch:3d} {int(float(row.get('step', 0))):5d} "
                     + " ".join(f"{float(v):.4f}" if v else "-" for v in values))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=SWEEP,
                        help=f"of {', '.join(VARIANTS)} (default: {' '.join(SWEEP)})")
    parser.add_argument("--data", type=Path, required=True, help="the folder holding CroppedYale/")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seconds", type=float, default=420, help="wall-time limit of the runs together")
    parser.add_argument("--accelerator", default="gpu")
    args = parser.parse_args()
    unknown = sorted(set(args.names) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(VARIANTS)}")
    procs = {}
    for name in args.names:
        config = variant_config(name, args.data.resolve(), args.out.resolve(), args.accelerator)
        with (args.out / name / "fit.log").open("w") as log:  # the child keeps its own copy of the handle
            procs[name] = subprocess.Popen([sys.executable, "-m", "privrob", "fit", "--config", str(config)],
                                           cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + args.seconds
    for name, proc in procs.items():
        try:
            code = proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            proc.kill()
            code = "cut at the time limit"
        print(f"{name}: exit {code}")
    for name in args.names:
        print("\n".join(summary(name, args.out)), flush=True)


if __name__ == "__main__":
    main()
