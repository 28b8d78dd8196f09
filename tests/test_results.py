"""RESULTS.md holds only numbers read from the results files (issue 9): every measured row names a config and a results
file that exist, and each of its numbers equals the one in those files; published rows equal the study's."""

import csv
import itertools
import json
import os
import re
import shlex
import subprocess
import sys

import numpy as np
import pytest

from results.make_results import METHODS
from tests.conftest import ROOT, SHARED_DATA

RESULTS_MD = ROOT / "RESULTS.md"
# RESULTS.md column -> (strategy in audit.json, key)
FROM_AUDIT = {
    "train acc": ("I_B", "train_acc"), "test acc": ("I_B", "test_acc"), "adv train acc": ("I_A", "train_acc"),
    "adv test acc": ("I_A", "test_acc"), "I_B": ("I_B", "accuracy"), "I_A": ("I_A", "accuracy"),
    "I_V": ("I_V", "accuracy"), "AUC I_B": ("I_B", "auc"), "AUC I_A": ("I_A", "auc"),
    "TPR@1%FPR I_B": ("I_B", "tpr@1%fpr"), "TPR@1%FPR I_A": ("I_A", "tpr@1%fpr"),
}
PUBLISHED_KEYS = {"train acc": "train_acc", "test acc": "test_acc", "adv train acc": "adv_train_acc",
                  "adv test acc": "adv_test_acc", "I_B": "I_B", "I_A": "I_A"}
METHOD_KEYS = {label: key for key, label in METHODS.items()}  # table label -> published.csv method


def result_tables() -> list[tuple[str, list[dict]]]:
    """(section title, rows as {column: cell}) for every table whose header has a `source` column."""
    text = RESULTS_MD.read_text()
    tables, section = [], None
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("## "):
            section = line[3:]
        if line.startswith("| method | source |"):
            header = [c.strip() for c in line.strip("|").split("|")]
            rows = []
            for row in lines[i + 2:]:
                if not row.startswith("|"):
                    break
                rows.append(dict(zip(header, (c.strip() for c in row.strip("|").split("|")))))
            tables.append((section, rows))
    return tables


def dataset_of(section: str) -> str:
    return "yale" if section.startswith("Yale") else "fmnist"


def published() -> dict:
    with open(ROOT / "results" / "published.csv") as f:
        return {(r["dataset"], r["method"]): r for r in csv.DictReader(f)}


@pytest.fixture(scope="module")
def tables():
    if not RESULTS_MD.exists():
        pytest.fail("RESULTS.md is missing: run python results/make_results.py")
    found = result_tables()
    assert found, "RESULTS.md has no result table"
    return found


def test_results_md_is_what_the_files_give():
    from results.make_results import main

    assert main(["--check"]) == 0, "RESULTS.md is out of date: run python results/make_results.py"


def test_both_datasets_have_natural_and_pgd(tables):
    measured = {(dataset_of(s), METHOD_KEYS[r["method"]]) for s, rows in tables for r in rows
                if r["source"] != "published"}
    for dataset in ("yale", "fmnist"):
        assert {(dataset, "natural"), (dataset, "pgd")} <= measured


def test_measured_rows_equal_their_results_files(tables):
    checked = 0
    for section, rows in tables:
        for row in rows:
            if row["source"] == "published":
                continue
            # a CPU-budget row, or a GPU row of the study's own config (results/gpu_full.sh)
            cpu = re.fullmatch(r"privrob `(configs/cpu/\S+\.yaml)` `(results/cpu/\S+/audit\.json)`", row["source"])
            gpu = re.fullmatch(r"privrob GPU `(configs/\S+\.yaml)` `(results/gpu/\S+/audit\.json)` \(.*\)",
                               row["source"])
            config, audit = (cpu or gpu).groups()
            assert (ROOT / config).is_file(), f"{config} named in RESULTS.md does not exist"
            assert (ROOT / audit).is_file(), f"{audit} named in RESULTS.md does not exist"
            run = (ROOT / audit).parent
            assert run.name == (ROOT / config).stem and run.name.startswith(dataset_of(section))
            assert (run / "privacy_curve.csv").is_file() and (run / "run.json").is_file()
            strategies = json.loads((ROOT / audit).read_text())["strategies"]
            for column, (strategy, key) in FROM_AUDIT.items():
                if strategy not in strategies:
                    assert row[column] == "–", (audit, column)
                    continue
                assert float(row[column]) == pytest.approx(strategies[strategy][key], abs=5e-5), (audit, column)
            info = json.loads((run / "run.json").read_text())
            fit, aud = re.fullmatch(r"([0-9.]+) min \+ ([0-9.]+) min", row["fit + audit time"]).groups()
            assert float(fit) == pytest.approx(info["fit_seconds"] / 60, abs=0.051)  # one decimal: off by up to 0.05
            assert float(aud) == pytest.approx(info["audit_seconds"] / 60, abs=0.051)
            assert config in info["fit_command"]
            checked += 1
    assert checked >= 4


def test_published_rows_equal_the_study(tables):
    pub = published()
    for section, rows in tables:
        for row in rows:
            if row["source"] != "published":
                continue
            values = pub[(dataset_of(section), METHOD_KEYS[row["method"]])]
            for column, key in PUBLISHED_KEYS.items():
                assert float(row[column]) == pytest.approx(float(values[key]), abs=5e-5), (section, row["method"])


def test_every_finished_run_has_a_row(tables):
    named = {re.search(r"`(results/(?:cpu|gpu)/\S+)/audit\.json`", r["source"]).group(1) for _, rows in tables
             for r in rows if r["source"] != "published"}
    assert named == {p.parent.relative_to(ROOT).as_posix() for kind in ("cpu", "gpu")
                     for p in (ROOT / "results" / kind).glob("*/audit.json")}


def test_the_summary_figure_plots_every_published_model_and_every_row():
    """Issue 16's figure: per dataset, each published model and each measured row at (adv train − adv test, I_A),
    read from published.csv and the audits; RESULTS.md shows the file."""
    from results import make_results

    for dataset in make_results.DATASETS:
        points = make_results.mechanism_points(dataset)
        pub = {(m, s): (gap, ia) for m, s, gap, ia in points if s == "published"}
        assert {m for m, _ in pub} == {m for d, m in published() if d == dataset} == set(METHODS)
        for (method, _), (gap, ia) in pub.items():
            row = published()[(dataset, method)]
            assert gap == pytest.approx(float(row["adv_train_acc"]) - float(row["adv_test_acc"]))
            assert ia == pytest.approx(float(row["I_A"]))
        rows = {m: (gap, ia) for m, s, gap, ia in points if s == "CPU"}
        runs = {p.parent.name.split("_", 1)[1]: p for p in (ROOT / "results" / "cpu").glob(f"{dataset}_*/audit.json")}
        assert set(rows) == set(runs)
        for method, path in runs.items():
            report = json.loads(path.read_text())["strategies"]["I_A"]
            assert rows[method] == pytest.approx((report["train_acc"] - report["test_acc"], report["accuracy"]))
    figure = make_results.SUMMARY_PLOT
    assert f"]({figure.relative_to(ROOT)})" in RESULTS_MD.read_text() and figure.stat().st_size > 10_000


def test_benchmark_rows_equal_the_printed_values():
    lines = [l for l in RESULTS_MD.read_text().splitlines() if re.match(r"\| \w+ \| `python benchmarks/", l)]
    names, printed = {}, {}
    for line in lines:
        name, _, key, value, _, _, output = [c.strip() for c in line.strip("|").split("|")][:7]
        path = ROOT / output.strip("`")
        assert path.parent.relative_to(ROOT).as_posix() in ("results/benchmarks", "results/benchmarks/gpu"), output
        match = re.search(rf"^{key.strip('`')} (-?[0-9.]+)$", path.read_text(), flags=re.M)
        assert match and float(value) == pytest.approx(float(match.group(1)), abs=5e-4), (output, key)
        names.setdefault(path.parent.name, set()).add(name)
        printed.setdefault(path.parent.name, set()).add((name, key.strip("`")))
    from results.make_results import BENCHMARKS

    # every output kept has its rows, and the CPU folder every benchmark's (the GPU one predates train_throughput)
    assert names == {folder.name: {p.stem for p in folder.glob("*.txt")}
                     for folder in (ROOT / "results" / "benchmarks").glob("**/") if list(folder.glob("*.txt"))}
    assert names["benchmarks"] == set(BENCHMARKS)
    # and the CPU folder's every target, the projected dual bound's included
    assert printed["benchmarks"] == {(name, key) for name, (_, keys) in BENCHMARKS.items() for key, _ in keys}


def test_published_fashion_mnist_values_are_the_reference_table():
    readme = SHARED_DATA / "reference" / "README.md"
    if not readme.exists():
        pytest.skip(f"reference table not available: {readme} is missing")
    names = {"natural": "natural", "PGD": "pgd", "WRM": "wrm", "TRADES": "trades", "Wong & Kolter": "dual",
             "DiffAI": "diffai", "IBP": "ibp"}
    rows = [l for l in readme.read_text().splitlines() if l.startswith("| Fashion-MNIST |")]
    pub = published()
    assert len(rows) == 7
    for line in rows:
        cells = [c.strip() for c in line.strip("|").split("|")]
        values = pub[("fmnist", names[cells[1]])]
        keys = ("train_acc", "test_acc", "adv_train_acc", "adv_test_acc", "I_B", "I_A")
        assert [float(c) for c in cells[2:]] == [float(values[k]) for k in keys]


def test_every_row_audits_its_configs_final_step_at_the_studys_budget():
    """Each measured row's audit is of the model at its config's last optimizer step (a 7-epoch run once audited its
    epoch-5 checkpoint), at the study's evaluation eps (8/255 for IBP on Yale)."""
    from results import make_results

    for dataset in make_results.DATASETS:
        for run in make_results.runs(dataset):  # runs() refuses what does not hold
            meta = make_results.audit_file(run)["meta"]
            assert meta["global_step"] == make_results.final_step(run) > 0


def copy_run(results, run: str):
    """``run``'s small results files into the test's own results folder."""
    folder = results / "cpu" / run
    folder.mkdir(parents=True)
    for name in ("audit.json", "privacy_curve.csv", "run.json"):
        (folder / name).write_text((ROOT / "results" / "cpu" / run / name).read_text())
    return folder


@pytest.fixture
def copied_run(tmp_path, monkeypatch):
    """yale_natural's results files in a results folder of the test's own, which make_results reads."""
    from results import make_results

    run = copy_run(tmp_path, "yale_natural")
    monkeypatch.setattr(make_results, "RESULTS", tmp_path)
    make_results.audit_file.cache_clear()
    assert make_results.runs("yale") == [run.name]
    yield run
    make_results.audit_file.cache_clear()


@pytest.mark.parametrize("file, change, match", [
    ("audit.json", lambda data: data["meta"].update(global_step=data["meta"]["global_step"] - 95),
     "not at the final step"),
    ("audit.json", lambda data: data["meta"].update(eps=0.03), "audited at eps"),
    ("run.json", lambda data: data.pop("commit"), "names no commit"),
])
def test_a_row_not_audited_at_its_final_step_or_budget_or_by_named_code_is_refused(copied_run, file, change, match):
    from results import make_results

    data = json.loads((copied_run / file).read_text())
    change(data)
    (copied_run / file).write_text(json.dumps(data))
    make_results.audit_file.cache_clear()
    with pytest.raises(ValueError, match=match):
        make_results.runs("yale")


def add_seed(folder, seed: int, i_a: float, i_b: float) -> None:
    """A seed run of ``folder``'s run: its audit with I_A's and I_B's accuracy set, its run.json naming the seed."""
    (folder / "seeds" / str(seed)).mkdir(parents=True)
    report = json.loads((folder / "audit.json").read_text())
    report["strategies"]["I_A"]["accuracy"], report["strategies"]["I_B"]["accuracy"] = i_a, i_b
    (folder / "seeds" / str(seed) / "audit.json").write_text(json.dumps(report))
    info = {**json.loads((folder / "run.json").read_text()), "seed": seed}
    (folder / "seeds" / str(seed) / "run.json").write_text(json.dumps(info))


def test_seed_rows_are_the_mean_and_sd_of_their_runs_and_gaps_pair_seeds(copied_run):
    """Issue 16's seeds: mean ± sample sd over seed 0 (the row) and each seed folder; robust − natural per seed."""
    from results import make_results

    pgd = copy_run(copied_run.parent.parent, "yale_pgd")
    nat_a, nat_b = (make_results.audit("yale_natural")[key]["accuracy"] for key in ("I_A", "I_B"))
    pgd_a, pgd_b = (make_results.audit("yale_pgd")[key]["accuracy"] for key in ("I_A", "I_B"))
    add_seed(copied_run, 1, 0.52, 0.55)
    add_seed(copied_run, 2, 0.50, 0.53)
    add_seed(pgd, 1, 0.66, 0.54)   # I_B below natural's seed 1: the I_B gap changes sign
    add_seed(pgd, 2, 0.64, 0.60)
    add_seed(pgd, 3, 0.70, 0.70)   # natural has no seed 3: not paired
    lines = make_results.seeds_table("yale")
    first = lines[:lines.index("")]   # the mean ± sd table; the paired gaps follow
    rows = {l.split("|")[1].strip(): [c.strip() for c in l.strip("|").split("|")] for l in first[2:]}

    def spread(values):
        return f"{np.mean(values):.4f} ± {np.std(values, ddof=1):.4f}"

    assert rows["yale_natural"][1] == "0, 1, 2" and rows["yale_pgd"][1] == "0, 1, 2, 3"
    assert rows["yale_natural"][6:8] == [spread([nat_b, 0.55, 0.53]), spread([nat_a, 0.52, 0.50])]
    assert rows["yale_pgd"][6:8] == [spread([pgd_b, 0.54, 0.60, 0.70]), spread([pgd_a, 0.66, 0.64, 0.70])]
    gap = [l for l in lines if l.startswith("| yale_pgd | 0, 1, 2 |")]
    assert len(gap) == 1
    cells = [c.strip() for c in gap[0].strip("|").split("|")]
    a_gaps, b_gaps = [pgd_a - nat_a, 0.14, 0.14], [pgd_b - nat_b, -0.01, 0.07]
    assert cells[2:6] == [spread(a_gaps), ", ".join(f"{g:+.4f}" for g in a_gaps),
                          spread(b_gaps), ", ".join(f"{g:+.4f}" for g in b_gaps)]
    assert cells[6] == "I_A: yes; I_B: no"
    listed = [l for l in make_results.commands("yale") if l.startswith("  - seed ")]   # each seed run's commands
    assert [l.split()[2] for l in listed] == ["1", "2", "1", "2", "3"]


@pytest.mark.parametrize("change, match", [
    (lambda report, info: info.update(seed=2), "is of seed 2, not 1"),
    (lambda report, info: info.pop("commit"), "names no commit"),
    (lambda report, info: report["meta"].update(global_step=95), "not at the final step"),
])
def test_a_seed_run_of_another_seed_step_or_unnamed_code_is_refused(copied_run, change, match):
    from results import make_results

    add_seed(copied_run, 1, 0.52, 0.55)
    folder = copied_run / "seeds" / "1"
    report, info = (json.loads((folder / name).read_text()) for name in ("audit.json", "run.json"))
    change(report, info)
    (folder / "audit.json").write_text(json.dumps(report))
    (folder / "run.json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match=match):
        make_results.seeds_table("yale")


def test_run_sh_seeds_shift_both_seeds_into_their_own_folders():
    """PRIVROB_SEED=S: seed_everything and the split's seed both shifted by S, a run folder and a results folder of
    their own, and the fit command is one the CLI takes; a bad value is refused before any work."""
    import yaml

    env = {**os.environ, "PYTHON": sys.executable, "PRIVROB_SEED": "2", "PRIVROB_DRY_RUN": "1"}
    folder = ROOT / "runs" / "cpu" / "yale_natural_seed2"
    existed = folder.exists()
    r = subprocess.run(["bash", "results/run.sh", "yale_natural"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    fit, audit = [shlex.split(line) for line in r.stdout.splitlines()]
    assert fit[fit.index("--seed_everything") + 1] == "4557079" and fit[fit.index("--data.init_args.seed") + 1] == "2"
    assert audit[audit.index("--config") + 1] == "runs/cpu/yale_natural_seed2/config.yaml"
    assert audit[audit.index("--output") + 1] == "results/cpu/yale_natural/seeds/2/audit"
    assert folder.exists() == existed  # a dry run makes nothing
    printed = subprocess.run(fit[:-2] + ["--print_config"], cwd=ROOT, capture_output=True, text=True,
                             env={**os.environ, "WANDB_MODE": "disabled"})
    assert printed.returncode == 0, printed.stderr
    config = yaml.safe_load(printed.stdout)
    assert (config["seed_everything"], config["data"]["init_args"]["seed"]) == (4557079, 2)
    assert config["trainer"]["default_root_dir"] == "runs/cpu/yale_natural_seed2"
    for value in ("-1", "x", "01"):
        r = subprocess.run(["bash", "results/run.sh", "yale_natural"], cwd=ROOT, capture_output=True, text=True,
                           env={**env, "PRIVROB_SEED": value})
        assert r.returncode == 2 and r.stderr.splitlines()[-1].startswith("privrob: error: PRIVROB_SEED"), r.stderr


def strong_tables() -> dict[str, list[dict]]:
    """The strong-attack table of each run in RESULTS.md (its `### `<run>`` heading), rows as {column: cell}."""
    out, run, lines = {}, None, RESULTS_MD.read_text().splitlines()
    for i, line in enumerate(lines):
        if line.startswith("### `"):
            run = line.strip("#` ")
        if run and line.startswith("| attack | signal |"):
            header = [c.strip() for c in line.strip("|").split("|")]
            out[run] = [dict(zip(header, (c.strip() for c in row.strip("|").split("|"))))
                        for row in itertools.takewhile(lambda l: l.startswith("|"), lines[i + 2:])]
    return out


def test_strong_attack_rows_equal_their_reference_audits():
    """Every run with reference models (results/references.sh) has its table, each number that of its audit."""
    from results import make_results

    tables = strong_tables()
    assert tables, "RESULTS.md has no strong-attack table (bash results/references.sh <run>)"
    assert set(tables) == set(make_results.strong_runs()) == {
        p.parent.parent.name for p in (ROOT / "results" / "cpu").glob("*/references/audit.json")}
    for run, rows in tables.items():
        report = json.loads((ROOT / "results" / "cpu" / run / "references" / "audit.json").read_text())["strategies"]
        assert len(rows) == len(make_results.STRONG) == 10
        for row, (key, attack, signal) in zip(rows, make_results.STRONG):
            assert (row["attack"], row["signal"]) == (attack, signal)
            for column, field in (("accuracy", "accuracy"), ("AUC", "auc"), ("TPR@0.1%FPR", "tpr@0.1%fpr"),
                                  ("TPR@1%FPR", "tpr@1%fpr")):
                assert float(row[column]) == pytest.approx(report[key][field], abs=5e-5), (run, key, column)


def test_a_reference_audit_not_of_the_final_step_is_refused(copied_run):
    from results import make_results

    folder = copied_run / "references"
    folder.mkdir()
    source = next((ROOT / "results" / "cpu").glob("*/references"))  # any reference audit, made yale_natural's
    data = json.loads((source / "audit.json").read_text())
    for name in ("run.json", "audit.shadow.json"):
        (folder / name).write_text((source / name).read_text())
    data["meta"]["eps"] = 0.0314
    data["meta"]["global_step"] = make_results.final_step(copied_run.name)
    (folder / "audit.json").write_text(json.dumps(data))
    assert make_results.strong_attacks(copied_run.name)  # as its own, accepted
    data["meta"]["global_step"] = make_results.final_step(copied_run.name) - 1
    (folder / "audit.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="not at the final step"):
        make_results.strong_attacks(copied_run.name)


def test_the_gpu_script_runs_fits_and_audits_at_a_tiny_size_on_the_cpu(yale_root, tmp_path):
    """results/gpu_full.sh tried as issue 16 asks (3 steps on 40 members, 16 + 16 audited): its files are what
    make_results reads for a GPU row, the audit of the step the fit ended at; a bad name is refused before any work."""
    import os
    import subprocess
    import sys

    from results.make_results import gpu_runs

    env = {**os.environ, "PRIVROB_GPU_TINY": "1", "DATA": str(yale_root), "OUT": str(tmp_path / "out"),
           "RUNS": str(tmp_path / "runs"), "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    script = str(ROOT / "results" / "gpu_full.sh")
    for args, extra, reason in ((["natural", "dual"], {}, "dual"), (["pgd", "pgd"], {}, "twice"),
                                (["natural"], {"DATA": str(tmp_path)}, "CroppedYale"),
                                (["natural"], {"PRIVROB_GPU_FRACTION": "2"}, "FRACTION"),
                                (["natural"], {"PRIVROB_GPU_TINY": "yes"}, "TINY")):
        bad = subprocess.run(["bash", script, *args], env={**env, **extra}, capture_output=True, text=True)
        last = bad.stderr.splitlines()[-1]
        assert bad.returncode == 2 and last.startswith("privrob: error:") and reason in last, bad.stderr
        assert not (tmp_path / "out").exists() and not (tmp_path / "runs").exists()
    r = subprocess.run(["bash", script, "natural"], env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    folder = tmp_path / "out" / "yale_natural"
    report, info = (json.loads((folder / name).read_text()) for name in ("audit.json", "run.json"))
    assert report["meta"]["global_step"] == info["final_step"] == 3 and info["schedule"] == "max_steps 20001"
    assert info["asked"] == "max_steps 3" and info["fraction"] == round(3 / 20001, 4)
    assert int(report["strategies"]["I_B"]["members"]) == 16 and "configs/yale_natural.yaml" in info["fit_command"]
    assert info["fit_seconds"] > 0 and info["audit_seconds"] > 0 and info["commit"]
    assert (folder / "privacy_curve.csv").exists() and not (tmp_path / "runs" / "yale_natural.result").exists()
    with pytest.raises(ValueError, match="tiny try"):  # never a GPU row of RESULTS.md
        gpu_runs("yale", tmp_path / "out")
