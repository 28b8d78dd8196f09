"""Every shipped Yale and Fashion-MNIST config (the CPU-budgeted ones of configs/cpu too) trains one batch on the real
data (``fast_dev_run``)."""

import pytest

from tests.conftest import ROOT, SHARED_DATA, run_cli

REAL = sorted(p for p in (ROOT / "configs").rglob("*.yaml") if p.name.split("_")[0] in ("yale", "fmnist"))


@pytest.mark.parametrize("config", REAL, ids=lambda p: str(p.relative_to(ROOT / "configs").with_suffix("")))
def test_one_batch_fit_on_real_data(config, tmp_path):
    folder = "CroppedYale" if config.name.startswith("yale") else "FashionMNIST"
    if not (SHARED_DATA / folder).exists():
        pytest.skip(f"real data not available: {SHARED_DATA / folder} is missing")
    # the dual bound's projections on 192x192 Yale take GBs at the study's batch of 20: one batch of 4 shows it runs
    smaller = ["--data.init_args.batch_size", "4"] if "dual" in config.name else []
    r = run_cli("fit", "--config", str(config), "--data.root", str(SHARED_DATA), "--data.init_args.download", "false",
                "--trainer.fast_dev_run", "1", "--trainer.enable_progress_bar", "false",
                "--trainer.callbacks.init_args.fast_dev_points", "4", *smaller, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Membership inference after epoch 0" in r.stderr + r.stdout
