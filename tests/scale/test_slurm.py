"""On a real one-node SLURM cluster (sbatch/local_cluster.sh): a job runs to the end, and a job preempted with
SIGUSR1 is requeued, resumes from its checkpoint and ends with exactly the weights and privacy curve of an
uninterrupted run. Skipped, with the reason, where SLURM cannot be started (not root, no packages); under
``CI=true``, where ``.ci/run`` expects it to start, that fails instead."""

import csv
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import ROOT

QUICK = ["--trainer.enable_progress_bar", "false", "--data.init_args.batch_size", "4"]


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"SLURM must start under CI=true: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    state = tmp_path_factory.mktemp("slurm-state")
    if os.geteuid() != 0:
        _unavailable("SLURM not started: needs root to install and run slurmctld/slurmd/munged")
    r = subprocess.run(["bash", str(ROOT / "sbatch/local_cluster.sh"), "start", str(state)], capture_output=True,
                       text=True, timeout=600)
    if r.returncode != 0 or "ready" not in r.stdout:
        subprocess.run(["bash", str(ROOT / "sbatch/local_cluster.sh"), "stop", str(state)], timeout=60)
        _unavailable(f"SLURM could not be started here: {r.stderr.strip()[-500:]}")
    yield
    subprocess.run(["bash", str(ROOT / "sbatch/local_cluster.sh"), "stop", str(state)], timeout=60)


@pytest.fixture
def job_env(tmp_path, monkeypatch):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env.update(WANDB_MODE="offline", WANDB_SILENT="true", PRIVROB_PYTHON=sys.executable, RUN_ROOT=str(tmp_path),
               PYTHONPATH=str(ROOT))
    return env


def sbatch(env, cwd, *args, wait=True):
    cmd = ["sbatch", "--parsable", *(["--wait"] if wait else []), *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def test_fit_sbatch_runs_to_the_end(cluster, job_env, tmp_path):
    r = sbatch(job_env, tmp_path, "--job-name=twoepochs", str(ROOT / "sbatch/fit.sbatch"),
               str(ROOT / "configs/quickstart.yaml"), "--trainer.max_epochs", "2", *QUICK)
    job = r.stdout.strip().splitlines()[0]
    run = tmp_path / f"twoepochs-{job}"
    assert r.returncode == 0, (r.stderr, (run / "train.log").read_text()[-2000:] if run.exists() else "")
    assert (run / "checkpoints" / "last.ckpt").is_file()
    rows = list(csv.DictReader(open(run / "privacy_curve.csv")))
    assert [row["epoch"] for row in rows if row["strategy"] == "I_B"] == ["0", "1"]


def test_missing_config_fails_the_job(cluster, job_env, tmp_path):
    r = sbatch(job_env, tmp_path, "--job-name=noconfig", str(ROOT / "sbatch/fit.sbatch"), "configs/none.yaml")
    assert r.returncode == 2
    out = next(tmp_path.glob("slurm-noconfig-*.out")).read_text()
    assert "config not found: configs/none.yaml" in out


def test_preempted_job_resumes_exactly(cluster, job_env, tmp_path):
    args = [str(ROOT / "sbatch/fit.sbatch"), str(ROOT / "configs/quickstart.yaml"), "--trainer.max_epochs", "6",
            *QUICK]
    r = sbatch(job_env, tmp_path, "--job-name=preempted", *args, wait=False)
    job = r.stdout.strip()
    run = tmp_path / f"preempted-{job}"
    curve = run / "privacy_curve.csv"
    deadline = time.time() + 300
    while time.time() < deadline and not (curve.is_file() and len(curve.read_text().splitlines()) >= 3):
        time.sleep(0.2)  # two epochs done: the run is mid-training
    assert curve.is_file(), "the job did not start training"
    # SIGUSR1 to the srun step, where the Python process runs (--batch would reach only the batch shell)
    subprocess.run(["scancel", "--signal=USR1", job], check=True)
    while time.time() < deadline and subprocess.run(["squeue", "-h", "-j", job], capture_output=True,
                                                    text=True).stdout.strip():
        time.sleep(1)
    log = next(tmp_path.glob(f"slurm-preempted-{job}.out")).read_text()
    assert "restart 1" in log and "--ckpt_path" in log, log  # SLURM_RESTART_COUNT=1, resumed from the checkpoint
    assert "SIGUSR1: saved" in (run / "train.log").read_text()
    assert (run / "checkpoints" / "preempt.ckpt").is_file()

    r = sbatch(job_env, tmp_path, "--job-name=straight", *args)
    assert r.returncode == 0, r.stderr
    straight = tmp_path / f"straight-{r.stdout.strip().splitlines()[0]}"
    a = torch.load(run / "checkpoints/last.ckpt", weights_only=True)
    b = torch.load(straight / "checkpoints/last.ckpt", weights_only=True)
    assert a["global_step"] == b["global_step"]
    for key, value in b["state_dict"].items():
        assert torch.equal(a["state_dict"][key], value), key

    def metrics(path):
        return [{k: v for k, v in row.items() if k != "step"} for row in csv.DictReader(open(path))]
    assert metrics(curve) == metrics(straight / "privacy_curve.csv")
    assert len(metrics(curve)) == 6 + 2  # I_B each epoch; I_A every 5th epoch (index 4) and at the last


def test_sweep_dry_run_lists_every_combination(tmp_path):
    if shutil.which("bash") is None:
        pytest.skip("no bash")
    r = subprocess.run(["bash", str(ROOT / "sbatch/sweep.sh"), "--dry-run", "--seeds", "0,1", "--eps", "0.05,0.1",
                        str(ROOT / "configs/fmnist_pgd.yaml"), str(ROOT / "configs/fmnist_trades.yaml")],
                       cwd=tmp_path, env={**os.environ, "RUN_ROOT": str(tmp_path)}, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "8 runs" in r.stdout and "--array=0-7" in r.stdout
    r = subprocess.run(["bash", str(ROOT / "sbatch/sweep.sh"), "nope.yaml"], cwd=tmp_path, capture_output=True,
                       text=True)
    assert r.returncode == 2 and "config not found: nope.yaml" in r.stderr


def test_references_array_dry_run_and_refusals(tmp_path):
    (tmp_path / "target.ckpt").write_bytes(b"")
    script = str(ROOT / "sbatch/references.sh")
    r = subprocess.run(["bash", script, "--dry-run", "--num_reference", "6", str(ROOT / "configs/quickstart.yaml"),
                        "target.ckpt", "--", "--training_set", "target_size"], cwd=tmp_path,
                       env={**os.environ, "SBATCH_OPTS": "--time=1:00:00"}, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[:3] == ["sbatch", "--array=0-5", "--time=1:00:00"]
    assert r.stdout.split()[-7:] == [script, "--array-task", str(ROOT / "configs/quickstart.yaml"), "target.ckpt",
                                     "6", "--training_set", "target_size"]
    config = str(ROOT / "configs/quickstart.yaml")
    for args, reason in ((["--num_reference", "2", "c.yaml", "target.ckpt"], "at least 3"),
                         ([config, "target.ckpt", "--", "--num_reference", "8"], "give K as --num_reference before"),
                         ([config, "target.ckpt", "--", "--index=1"], "give K as --num_reference before"),
                         (["--num_reference"], "usage:"),
                         ([str(ROOT / "configs/quickstart.yaml"), "none.ckpt"], "checkpoint not found: none.ckpt"),
                         (["nope.yaml", "target.ckpt"], "config not found: nope.yaml")):
        r = subprocess.run(["bash", script, *args], cwd=tmp_path, capture_output=True, text=True)
        assert r.returncode == 2 and reason in r.stderr, (args, r.stderr)


def test_references_array_trains_every_reference_on_the_cluster(cluster, job_env, tmp_path):
    r = subprocess.run([sys.executable, "-m", "privrob", "fit", "--config", str(ROOT / "configs/quickstart.yaml"),
                        "--trainer.max_epochs", "1", *QUICK], cwd=tmp_path, env=job_env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    ckpt = tmp_path / "runs/quickstart/checkpoints/last.ckpt"
    r = subprocess.run(["bash", str(ROOT / "sbatch/references.sh"), "--num_reference", "3",
                        str(tmp_path / "runs/quickstart/config.yaml"), str(ckpt), "--", "--reference_epochs", "1"],
                       cwd=tmp_path, env={**job_env, "SBATCH_OPTS": "--wait"}, capture_output=True, text=True,
                       timeout=900)
    logs = "\n".join(p.read_text()[-1500:] for p in tmp_path.glob("slurm-references-*.out"))
    assert r.returncode == 0, (r.stderr, logs)
    folder = ckpt.with_suffix(".references")
    assert sorted(p.name for p in folder.glob("reference_*.ckpt")) == [f"reference_{k}.ckpt" for k in range(3)], logs
    assert len(list(tmp_path.glob("slurm-references-*.out"))) == 3  # one array task per reference
