"""One run per folder: a fit writes everything under its ``default_root_dir``, a new fit into a folder that holds a
run is refused (resume, another folder, or ``--overwrite true``), ``--overwrite`` removes the old run first, and a
fit that trains nothing writes nothing."""

import csv

import yaml

from tests.conftest import ROOT, run_cli

QUICK = ("--config", str(ROOT / "configs/quickstart.yaml"), "--trainer.enable_progress_bar", "false",
         "--trainer.default_root_dir", "elsewhere")


def _files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_one_run_per_folder(tmp_path):
    run = tmp_path / "elsewhere"
    r = run_cli("fit", *QUICK, "--trainer.max_epochs", "1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    # everything under default_root_dir, the config and the W&B files included (the config's logger names no folder)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere"]
    assert {"config.yaml", "privacy_curve.csv", "checkpoints", "wandb"} <= {p.name for p in run.iterdir()}
    before = {f: (run / f).read_bytes() for f in _files(run)}

    r = run_cli("fit", *QUICK, "--trainer.max_epochs", "3", cwd=tmp_path)  # a new fit into the same folder
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1] == (
        "privrob: error: elsewhere already holds a run (config.yaml, checkpoints, privacy_curve.csv, "
        "privacy_curve.png, wandb); resume it with --ckpt_path elsewhere/checkpoints/last.ckpt, start this one "
        "elsewhere (--trainer.default_root_dir), or replace it with --overwrite true")
    assert {f: (run / f).read_bytes() for f in _files(run)} == before  # untouched

    r = run_cli("fit", *QUICK, "--trainer.max_epochs", "2", "--overwrite", "true", "--model.init_args.weight_decay",
                "-1", cwd=tmp_path)  # a bad option, found when the model is built: refused before the old run goes
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1] == "privrob: error: `weight_decay` must be non-negative, got -1.0"
    assert {f: (run / f).read_bytes() for f in _files(run)} == before

    r = run_cli("fit", *QUICK, "--trainer.max_epochs", "2", "--overwrite", "true", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    # the new run's checkpoints only: no last-v1.ckpt beside last.ckpt, no epoch 0 of the old run
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["epoch=1-step=58.ckpt", "last.ckpt"]
    assert len(list((run / "wandb").glob("offline-run-*"))) == 1  # one W&B run, the new one
    assert yaml.safe_load((run / "config.yaml").read_text())["trainer"]["max_epochs"] == 2
    assert [row["epoch"] for row in csv.DictReader(open(run / "privacy_curve.csv")) if row["strategy"] == "I_B"] == [
        "0", "1"]

    r = run_cli("fit", *QUICK, "--trainer.max_epochs", "3", "--ckpt_path", "elsewhere/checkpoints/last.ckpt",
                cwd=tmp_path)  # resuming into the run's own folder is what the folder is for
    assert r.returncode == 0, r.stderr[-3000:]
    assert [row["epoch"] for row in csv.DictReader(open(run / "privacy_curve.csv")) if row["strategy"] == "I_B"] == [
        "0", "1", "2"]


def test_a_fit_of_no_epochs_writes_nothing(tmp_path):
    r = run_cli("fit", *QUICK, "--trainer.max_epochs", "0", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert list(tmp_path.iterdir()) == []
