"""End to end through ``python -m privrob`` in subprocesses."""

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from privrob.trainer import load_checkpoint
from tests.conftest import ROOT, run_cli

CONFIGS = sorted((ROOT / "configs").rglob("*.yaml"))


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: str(p.relative_to(ROOT / "configs")))
def test_print_config(config):
    r = run_cli("fit", "--config", str(config), "--print_config")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "class_path" in r.stdout


@pytest.fixture(scope="module")
def quickstart_run(tmp_path_factory):
    """The quickstart as the README runs it (fewer epochs), in a fresh folder; run again into it with --overwrite."""
    cwd = tmp_path_factory.mktemp("quickstart")
    for extra in ([], ["--overwrite", "true"]):  # the second run replaces the first
        r = run_cli("fit", "--config", str(ROOT / "configs/quickstart.yaml"), "--trainer.max_epochs", "6",
                    "--trainer.enable_progress_bar", "false", *extra, cwd=cwd)
        assert r.returncode == 0, r.stderr[-3000:]
    assert not any("-v" in p.name for p in (cwd / "runs/quickstart/checkpoints").iterdir())  # no last-v1.ckpt
    return cwd, r


def test_quickstart_learns_and_reports(quickstart_run):
    cwd, r = quickstart_run
    rows = list(csv.DictReader(open(cwd / "runs/quickstart/privacy_curve.csv")))
    assert [row["epoch"] for row in rows if row["strategy"] == "I_B"] == [str(e) for e in range(6)]
    last = [row for row in rows if row["strategy"] == "I_B"][-1]
    assert float(last["train_acc"]) > 0.8  # chance is 0.1
    assert {row["strategy"] for row in rows} == {"I_B", "I_A"}
    assert (cwd / "runs/quickstart/privacy_curve.png").stat().st_size > 1000
    assert "| I_A |" in r.stderr + r.stdout  # the closing membership-inference table
    offline = list((cwd / "runs/quickstart/wandb").glob("offline-run-*/run-*.wandb"))
    assert offline, "the W&B offline run is missing"
    assert b"privacy/I_B/accuracy" in offline[-1].read_bytes()


def test_audit_of_a_checkpoint(quickstart_run):
    cwd, _ = quickstart_run
    ckpt = cwd / "runs/quickstart/checkpoints/last.ckpt"
    r = run_cli("audit", "--config", str(cwd / "runs/quickstart/config.yaml"), "--ckpt_path", str(ckpt),
                "--num_points", "200", "--attack_eps", "[0.0, 0.05, 0.1]", "--secure_by", "I_A",
                "--calibration_fraction", "0.5", cwd=cwd)
    assert r.returncode == 0, r.stderr[-3000:]
    sweep = (ckpt.parent / "last.audit.budget.csv").read_text().splitlines()
    assert sweep[0].startswith("eps,") and len(sweep) == 4 and (ckpt.parent / "last.audit.budget.png").is_file()
    secure = json.loads((ckpt.parent / "last.audit.secure.json").read_text())
    assert secure["secure"]["members"] + secure["insecure"]["members"] == 200
    realistic = json.loads((ckpt.parent / "last.audit.realistic.json").read_text())
    assert realistic["I_B"]["calibrated_accuracy"] <= realistic["I_B"]["oracle_accuracy"] + 1e-12
    report = json.loads((ckpt.parent / "last.audit.json").read_text())["strategies"]
    assert set(report) == {"I_B", "I_A"}
    assert report["I_B"]["members"] == 200 and report["I_B"]["train_acc"] > 0.8
    assert report["I_A"]["test_acc"] < report["I_B"]["test_acc"]  # the attack lowers accuracy
    assert "| I_B |" in (ckpt.parent / "last.audit.md").read_text()


def test_audit_rejects_another_architecture(quickstart_run):
    cwd, _ = quickstart_run
    r = run_cli("audit", "--config", str(cwd / "runs/quickstart/config.yaml"),
                "--model.backbone.init_args.width", "3",
                "--ckpt_path", str(cwd / "runs/quickstart/checkpoints/last.ckpt"), cwd=cwd)
    assert r.returncode != 0
    last = r.stderr.strip().splitlines()[-1]
    assert "another architecture" in last and "last.ckpt" in last


def test_audit_missing_and_corrupt_checkpoint(tmp_path):
    r = run_cli("audit", "--config", str(ROOT / "configs/quickstart.yaml"), "--ckpt_path",
                str(tmp_path / "none.ckpt"), cwd=tmp_path)
    assert r.returncode == 2 and "checkpoint not found" in r.stderr.strip().splitlines()[-1]
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"\x00garbage")
    r = run_cli("audit", "--config", str(ROOT / "configs/quickstart.yaml"), "--ckpt_path", str(bad), cwd=tmp_path)
    assert r.returncode == 2 and "cannot load checkpoint" in r.stderr.strip().splitlines()[-1]


def last_line(r) -> str:
    return r.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("args, reason", [
    (["fit", "--model", "NoSuchTraining"], "model: unknown class 'NoSuchTraining'; available: DiffAITraining, "
     "IBPTraining, NaturalTraining, NoiseLayerTraining, PGDTraining, TRADESTraining, WRMTraining, WongKolterTraining"),
    (["fit", "--data", "NoSuchData"], "data: unknown class 'NoSuchData'; available: CIFAR10DataModule, "
     "DigitsDataModule, FashionMNISTDataModule, YaleDataModule"),
    (["fit", "--model.init_args.lrr", "0.1"], "model: NaturalTraining has no option 'lrr'; its options: backbone, "),
    (["fit", "--trainer.callbacks.init_args.num_pointz", "5"],
     "trainer.callbacks: MembershipInference has no option 'num_pointz'; its options: strategies, "),
    (["audit", "--attack_eps", "abc"], "attack_eps: expected list[float] or null, got 'abc'"),
    (["fit", "--model", "PGDTraining", "--model.init_args.eps", "-0.1"], "`eps` must be non-negative, got -0.1"),
    pytest.param(["fit", "--trainer.accelerator", "gpu"], "No supported gpu backend found",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")),
], ids=["method", "datamodule", "model-key", "callback-key", "attack-eps-text", "negative-eps", "gpu"])
def test_bad_input_ends_in_one_line(args, reason, tmp_path):
    r = run_cli(args[0], "--config", str(ROOT / "configs/quickstart.yaml"), *args[1:], cwd=tmp_path)
    assert r.returncode == 2 and last_line(r).startswith(f"privrob: error: {reason}"), r.stderr[-3000:]
    assert "usage:" not in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "runs").exists()  # nothing half-written


@pytest.fixture(scope="module")
def one_epoch_run(tmp_path_factory):
    """A quickstart run of one epoch: its folder, saved config and last checkpoint."""
    cwd = tmp_path_factory.mktemp("one_epoch")
    r = run_cli("fit", "--config", str(ROOT / "configs/quickstart.yaml"), "--trainer.max_epochs", "1",
                "--trainer.enable_progress_bar", "false", cwd=cwd)
    assert r.returncode == 0, r.stderr[-3000:]
    return cwd, cwd / "runs/quickstart/config.yaml", cwd / "runs/quickstart/checkpoints/last.ckpt"


@pytest.mark.parametrize("option, reason", [
    (["--num_points", "0"], "`num_points` must be at least 1 or null (all), got 0"),
    (["--attack_eps", "[-0.1]"], "`attack_eps` values must be non-negative, got -0.1"),
    (["--calibration_fraction", "1.5"], "`calibration_fraction` must be in (0, 1), got 1.5"),
    (["--secure_by", "FOO"], "`secure_by` can be one of the audited strategies, I_B, I_A; got 'FOO'"),
], ids=["num-points", "attack-eps", "calibration-fraction", "secure-by"])
def test_audit_options_are_checked_before_any_work(one_epoch_run, option, reason):
    cwd, config, ckpt = one_epoch_run
    (ckpt.parent / "last.audit.json").write_text("previous report\n")
    before = sorted(ckpt.parent.iterdir())
    r = run_cli("audit", "--config", str(config), "--ckpt_path", str(ckpt), "--num_points", "50", *option, cwd=cwd)
    assert r.returncode == 2 and last_line(r) == f"privrob: error: {reason}", r.stderr[-3000:]
    assert sorted(ckpt.parent.iterdir()) == before
    assert (ckpt.parent / "last.audit.json").read_text() == "previous report\n"


@pytest.mark.parametrize("content", [(ROOT / "configs/quickstart.yaml").read_text(), "a,b\n1,2\n", "hello world\n"],
                         ids=["yaml", "csv", "text"])
def test_a_text_file_is_no_checkpoint(content, tmp_path):
    (tmp_path / "bad.ckpt").write_text(content)
    r = run_cli("audit", "--config", str(ROOT / "configs/quickstart.yaml"), "--ckpt_path", "bad.ckpt", cwd=tmp_path)
    assert r.returncode == 2, r.stderr[-3000:]
    assert last_line(r) == "privrob: error: cannot load checkpoint bad.ckpt: not a file written by torch.save"
    assert "weights_only" not in r.stderr


def test_a_checkpoint_that_safe_loading_refuses_names_the_object_and_no_unsafe_advice(tmp_path):
    torch.save({"state_dict": {}, "path": Path("x")}, tmp_path / "odd.ckpt")
    with pytest.raises(ValueError) as err:
        load_checkpoint(str(tmp_path / "odd.ckpt"))
    message = str(err.value)
    assert "\n" not in message and "refuses" in message and "PosixPath" in message
    assert "weights_only=False" not in message and "weights_only` set to `False" not in message


def test_yale_natural_one_epoch_on_real_images(yale_root, tmp_path):
    r = run_cli("fit", "--config", str(ROOT / "configs/yale_natural.yaml"), "--data.root", str(yale_root),
                "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "4", "--trainer.limit_val_batches", "2",
                "--trainer.enable_progress_bar", "false",
                "--trainer.callbacks.init_args.num_points", "40",
                "--trainer.callbacks.init_args.quick_when_limited", "false", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = list(csv.DictReader(open(tmp_path / "runs/yale_natural/privacy_curve.csv")))
    assert {row["strategy"] for row in rows} == {"I_B", "I_A"} and rows[0]["members"] == "40"


def test_audit_of_a_verifiable_model_reports_i_v(tmp_path):
    config = (ROOT / "configs/quickstart.yaml").read_text().replace(
        "class_path: NaturalTraining\n  init_args:\n",
        "class_path: IBPTraining\n  init_args:\n    eps: 0.1\n    warmup_steps: 10\n    ramp_steps: 50\n")
    (tmp_path / "ibp.yaml").write_text(config)
    r = run_cli("fit", "--config", "ibp.yaml", "--trainer.max_epochs", "3", "--trainer.enable_progress_bar", "false",
                cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = list(csv.DictReader(open(tmp_path / "runs/quickstart/privacy_curve.csv")))
    assert {row["strategy"] for row in rows} == {"I_B", "I_A", "I_V"}  # I_V by default for a verifiable method
    r = run_cli("audit", "--config", "runs/quickstart/config.yaml", "--ckpt_path",
                "runs/quickstart/checkpoints/last.ckpt", "--num_points", "100", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    report = json.loads((tmp_path / "runs/quickstart/checkpoints/last.audit.json").read_text())["strategies"]
    assert set(report) == {"I_B", "I_A", "I_V"} and report["I_V"]["bound"] == "crown_ibp"
    # a certified worst case is at least as bad as the attack: no more accurate than PGD
    assert report["I_V"]["test_acc"] <= report["I_A"]["test_acc"]
    assert "| I_V (crown_ibp) |" in r.stderr + r.stdout


@pytest.fixture(scope="module")
def overfit_digits_run(tmp_path_factory):
    """A deliberately overfit Digits model (200 members, 200 non-members, 30 epochs: train 1.0, test about 0.9)."""
    cwd = tmp_path_factory.mktemp("overfit")
    r = run_cli("fit", "--config", str(ROOT / "configs/quickstart.yaml"), "--data.init_args.num_members", "200",
                "--data.init_args.num_nonmembers", "200", "--trainer.max_epochs", "30",
                "--trainer.enable_progress_bar", "false", "--trainer.callbacks.init_args.strategies", "[I_B]",
                "--trainer.callbacks.init_args.every_n_epochs", "{I_B: 10}", cwd=cwd)
    assert r.returncode == 0, r.stderr[-3000:]
    return cwd, cwd / "runs/quickstart/config.yaml", cwd / "runs/quickstart/checkpoints/last.ckpt"


def test_references_then_audit_with_lira_rmia_signals_and_a_shadow(overfit_digits_run):
    cwd, config, ckpt = overfit_digits_run
    folder = ckpt.with_suffix(".references")
    r = run_cli("references", "--config", str(config), "--ckpt_path", str(ckpt), "--num_reference", "4", cwd=cwd)
    assert r.returncode == 0, r.stderr[-3000:]
    saved = torch.load(folder / "references.pt", weights_only=True)
    inside = saved["inside"]
    assert inside.shape == (4, 400) and torch.equal(inside[1], ~inside[0]) and torch.equal(inside[3], ~inside[2])
    for k in range(4):  # each reference saved with its own split: the mask's part of the target's pool
        dm = torch.load(folder / f"reference_{k}.ckpt", weights_only=True)["DigitsDataModule"]
        assert torch.equal(dm["member_indices"], saved["pool"][inside[k]])
    mtimes = [p.stat().st_mtime_ns for p in sorted(folder.glob("reference_*.ckpt"))]
    r = run_cli("references", "--config", str(config), "--ckpt_path", str(ckpt), "--num_reference", "4", cwd=cwd)
    assert r.returncode == 0 and r.stderr.count("reusing") == 4, r.stderr[-3000:]  # a second call trains nothing
    assert [p.stat().st_mtime_ns for p in sorted(folder.glob("reference_*.ckpt"))] == mtimes

    r = run_cli("audit", "--config", str(config), "--ckpt_path", str(ckpt), "--strategies", "[I_B, I_A]",
                "--references", str(folder), "--signals", "[clean, adversarial]", "--attack_steps", "5",
                "--shadow", "0", cwd=cwd)
    assert r.returncode == 0, r.stderr[-3000:]
    report = json.loads(ckpt.with_suffix(".audit.json").read_text())
    rows, meta = report["strategies"], report["meta"]
    assert meta["num_reference"] == 4 and meta["reference_sizes"] == [200] * 4 and meta["reference_in_fraction"] == 0.5
    assert meta["lira_offline_score"] == "log_ndtr"  # log Φ: RESULTS.md marks audits scored by Φ itself
    assert meta["signals"] == ["clean", "adversarial"] and meta["reference_training_set"] == "half"
    for signal in ("clean", "adversarial"):
        assert rows[f"threshold phi ({signal})"]["members"] == 200
        for attack in ("LiRA online", "LiRA offline", "RMIA online", "RMIA offline"):
            row = rows[f"{attack} ({signal})"]
            assert row["lowest_fpr"] == 1 / 200 and row["train_acc"] is None
            if signal == "clean":  # calibration against references beats the study's threshold on this model
                assert row["auc"] >= rows["I_B"]["auc"] + 0.02, (attack, row["auc"], rows["I_B"]["auc"])
    # the adversarial signal is another statistic than the clean one
    assert rows["threshold phi (adversarial)"]["auc"] != rows["threshold phi (clean)"]["auc"]
    assert "| LiRA online (adversarial) | – | – |" in ckpt.with_suffix(".audit.md").read_text()
    assert ckpt.with_suffix(".audit.roc.png").is_file()
    shadow = json.loads(ckpt.with_suffix(".audit.shadow.json").read_text())
    assert shadow["shadow"] == {"reference": 0, "members": 200, "nonmembers": 200}
    for name in ("I_B", "I_A"):
        assert shadow[name]["oracle_accuracy"] == rows[name]["accuracy"]  # applied to the target's audited scores
        assert 0.4 < shadow[name]["calibrated_accuracy"] <= shadow[name]["oracle_accuracy"]

    # on a seeded subset the reference rows score the same examples as the strategies: the threshold on φ orders
    # them as I_B's confidence does (up to the float32 softmax's ties at 1)
    r = run_cli("audit", "--config", str(config), "--ckpt_path", str(ckpt), "--strategies", "[I_B]",
                "--num_points", "150", "--references", str(folder), "--output", str(cwd / "subset"), cwd=cwd)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = json.loads((cwd / "subset.json").read_text())["strategies"]
    assert rows["LiRA online (clean)"]["members"] == rows["I_B"]["members"] == 150
    assert abs(rows["threshold phi (clean)"]["auc"] - rows["I_B"]["auc"]) < 0.005


def test_the_memory_format_is_the_command_lines_not_the_checkpoints(overfit_digits_run, tmp_path):
    """memory_format (like compile) comes from the config and command line even with --ckpt_path, whose saved
    hyperparameters Lightning merges over them; a references folder does not compare it."""
    cwd, config, ckpt = overfit_digits_run
    base = ["--config", str(config), "--ckpt_path", str(ckpt), "--num_reference", "3", "--reference_epochs", "1",
            "--output_dir", str(tmp_path / "refs")]
    r = run_cli("references", *base, "--index", "0", "--model.init_args.memory_format", "channels_last",
                "--model.init_args.scoring_memory_format", "contiguous", cwd=cwd)
    assert r.returncode == 0, r.stderr[-3000:]
    r = run_cli("references", *base, "--index", "1", cwd=cwd)  # the same folder, contiguous: accepted
    assert r.returncode == 0, r.stderr[-3000:]
    for k, fmt, scoring in ((0, "channels_last", "contiguous"), (1, "contiguous", "auto")):
        saved = torch.load(tmp_path / f"refs/reference_{k}.ckpt", weights_only=True)
        assert saved["hyper_parameters"]["memory_format"] == fmt
        assert saved["hyper_parameters"]["scoring_memory_format"] == scoring
        kernels = [v for v in saved["state_dict"].values() if v.dim() == 4 and v.shape[1] > 1]
        assert kernels and all(v.is_contiguous() == (fmt == "contiguous") for v in kernels)


def test_one_reference_by_index_is_the_one_the_loop_trains(overfit_digits_run, tmp_path):
    cwd, config, ckpt = overfit_digits_run
    base = ["--config", str(config), "--ckpt_path", str(ckpt), "--num_reference", "3", "--reference_epochs", "1"]
    r = run_cli("references", *base, "--index", "1", "--output_dir", str(tmp_path / "one"), cwd=cwd)
    assert r.returncode == 0, r.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "one").glob("*.ckpt")) == ["reference_1.ckpt"]
    r = run_cli("references", *base, "--output_dir", str(tmp_path / "all"), cwd=cwd)
    assert r.returncode == 0, r.stderr[-3000:]
    alone, looped = (torch.load(tmp_path / d / "reference_1.ckpt", weights_only=True)["state_dict"]
                     for d in ("one", "all"))
    assert all(torch.equal(alone[k], looped[k]) for k in looped)  # seeded by seed + k, whoever trains it


def test_references_and_audit_refuse_bad_options_before_any_work(overfit_digits_run, tmp_path):
    cwd, config, ckpt = overfit_digits_run
    base = ["--config", str(config), "--ckpt_path", str(ckpt)]
    other = str(tmp_path / "refs")
    out = ["--output_dir", other]
    cases = ((["references", *out, "--num_reference", "2"], "at least 3"),
             (["references", *out, "--training_set", "quarter"], "half or target_size"),
             (["references", *out, "--index", "4"], "[0, 3]"),
             (["references", *out, "--reference_epochs", "0"], "at least 1"),
             # 200 of 400 in the target: each example in round(4 * 0.5) = 2 of 4 works, 1 of 3 does not
             (["references", *out, "--training_set", "target_size", "--num_reference", "3"], "`num_reference` 4"),
             (["references", *out, "--model.init_args.backbone.init_args.width", "3"], "another architecture"),
             (["audit", "--signals", "[adversarial]"], "need `references`"),
             (["audit", "--references", other], "no references in"),
             (["audit", "--references", other, "--signals", "[clean, noisy]"], "`signals` can"),
             (["lira", "--num_reference", "2"], "at least 3"),
             (["lira", "--signals", "[clean, noisy]"], "`signals` can"),
             (["lira", "--eps", "-0.1"], "non-negative"), (["lira", "--attack_steps", "0"], "at least 1"))
    for args, reason in cases:
        r = run_cli(args[0], *base, *args[1:], cwd=cwd)
        last = r.stderr.strip().splitlines()[-1]
        assert r.returncode == 2 and last.startswith("privrob: error:") and reason in last, (args, r.stderr[-2000:])
    assert not (tmp_path / "refs").exists() and not ckpt.with_suffix(".lira.json").exists()


def test_lira_is_references_then_audit(quickstart_run):
    cwd, _ = quickstart_run
    ckpt = cwd / "runs/quickstart/checkpoints/last.ckpt"
    r = run_cli("lira", "--config", str(cwd / "runs/quickstart/config.yaml"), "--ckpt_path", str(ckpt),
                "--num_reference", "3", "--reference_epochs", "2", cwd=cwd)
    assert r.returncode == 0, r.stderr[-3000:]
    report = json.loads((ckpt.parent / "last.lira.json").read_text())
    assert report["meta"]["references"] == str(ckpt.with_suffix(".references"))
    assert report["meta"]["eps"] == 0.1  # Digits' default budget
    assert {"I_B", "LiRA online (clean)", "RMIA offline (clean)"} <= set(report["strategies"])
    assert report["meta"]["rmia_offline_a"]["clean"] in [i / 10 for i in range(11)]
    assert (ckpt.parent / "last.lira.roc.png").is_file()


def test_capacity_sweep_locally_and_collect(tmp_path):
    import subprocess
    import sys

    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("SLURM_")}
    env.update(WANDB_MODE="offline", WANDB_SILENT="true", PYTHONPATH=str(ROOT), PRIVROB_PYTHON=sys.executable,
               RUN_ROOT=str(tmp_path / "runs"))
    r = subprocess.run(["bash", str(ROOT / "sbatch/sweep.sh"), "--local", "--widths", "1,3",
                        str(ROOT / "configs/quickstart.yaml"), "--", "--trainer.max_epochs", "2",
                        "--trainer.enable_progress_bar", "false"], cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    runs = sorted(p for p in (tmp_path / "runs").glob("sweep-*") if p.is_dir())
    assert len(runs) == 2
    for run in runs:
        a = run_cli("audit", "--config", str(run / "config.yaml"), "--ckpt_path", str(run / "checkpoints/last.ckpt"),
                    "--num_points", "100", cwd=tmp_path)
        assert a.returncode == 0, a.stderr[-2000:]
    c = subprocess.run([sys.executable, "-m", "privrob.collect", *map(str, runs), "--output",
                        str(tmp_path / "capacity")], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert c.returncode == 0, c.stderr
    rows = list(csv.DictReader(open(tmp_path / "capacity.csv")))
    assert [r["width"] for r in rows] == ["1", "3"] and (tmp_path / "capacity.png").is_file()
    assert all(0 <= float(r["I_B"]) <= 1 and float(r["train_acc"]) > 0.5 for r in rows)


def test_readme_activates_the_environment_before_its_python_commands():
    """The README's commands after the setup write ``python``: it says how to get that python, and that works."""
    readme = (ROOT / "README.md").read_text()
    first_bare = re.search(r"(?<![/\w])python -m privrob", readme)  # not .venv/bin/python
    assert first_bare is not None, "the README writes no bare `python -m privrob` command any more"
    assert "source .venv/bin/activate" in readme[:first_bare.start()]
    if not (ROOT / ".venv/bin/activate").is_file():
        pytest.skip("no .venv in the checkout (the README's setup makes one; .ci/run does)")
    path = ":".join(p for p in os.environ["PATH"].split(":") if not p.startswith(sys.prefix))  # no python of ours
    r = subprocess.run(["bash", "-c", "source .venv/bin/activate && python -m privrob --help"], cwd=ROOT,
                       env={**{k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}, "PATH": path},
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "fit" in r.stdout, r.stderr[-2000:]
