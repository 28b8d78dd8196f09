"""RESULTS.md holds only numbers read from the results files (issue 9): every measured row names a config and a results
file that exist, and each of its numbers equals the one in those files; published rows equal the study's."""

import contextlib
import csv
import itertools
import json
import os
import re
import shlex
import shutil
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
METHOD_KEYS |= {f"{label}, {mark}": key for label, key in METHOD_KEYS.items()   # a collapsed or not robust model
                for mark in ("at chance", "not robust")}


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
                cell = row[column]
                if column == "I_V":   # the certified bound that computed it, named
                    cell, bound = re.fullmatch(r"([0-9.]+) \((\w+)\)", cell).groups()
                    assert bound == strategies["I_V"]["bound"], audit
                assert float(cell) == pytest.approx(strategies[strategy][key], abs=5e-5), (audit, column)
            info = json.loads((run / "run.json").read_text())
            fit, aud = re.fullmatch(r"([0-9.]+) min \+ ([0-9.]+) min", row["fit + audit time"]).groups()
            assert float(fit) == pytest.approx(info["fit_seconds"] / 60, abs=0.051)  # one decimal: off by up to 0.05
            assert float(aud) == pytest.approx(info["audit_seconds"] / 60, abs=0.051)
            assert config in info["fit_command"]
            checked += 1
    assert checked >= 4


def test_a_run_whose_budget_changed_beside_the_fixes_says_how_in_the_moved_table():
    from results.make_results import CHANGED_WITH_FIXES, moved

    rows = [line for dataset in ("yale", "fmnist") for line in moved(dataset)[2:]]   # past each table's header
    for line in rows:
        run = line.split(" ")[1]
        assert line.startswith(f"| {run} ({CHANGED_WITH_FIXES[run]}) |" if run in CHANGED_WITH_FIXES else f"| {run} |")


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
        regime = make_results.REGIME.get(dataset)
        for source, prefix in (("CPU", dataset), (make_results.REGIME_SOURCE, regime)):
            rows = {m: (gap, ia) for m, s, gap, ia in points if s == source}
            found = (ROOT / "results" / "cpu").glob(f"{prefix}_*/audit.json")
            runs = {p.parent.name.rsplit("_", 1)[1]: p for p in found
                    if re.fullmatch(rf"{prefix}_[a-z]+", p.parent.name)}
            assert set(rows) == set(runs)
            for method, path in runs.items():
                report = json.loads(path.read_text())["strategies"]["I_A"]
                assert rows[method] == pytest.approx((report["train_acc"] - report["test_acc"], report["accuracy"]))
    figure = make_results.SUMMARY_PLOT
    assert f"]({figure.relative_to(ROOT)})" in RESULTS_MD.read_text() and figure.stat().st_size > 10_000


def test_a_resumed_runs_commands_name_its_start_and_its_resumes():
    """run.json keeps the last segment's fit command; a row's commands also give the first segment's, so that the
    list reproduces the run from scratch (fmnist_1k_pgd ran in two segments)."""
    from results import make_results

    info = json.loads((ROOT / "results" / "cpu" / "fmnist_1k_pgd" / "run.json").read_text())
    assert info["fit_segments"] == 2
    listed = make_results.fit_commands(info)
    assert listed.startswith("`" + info["fit_command"].split(" --ckpt_path ")[0] + " --overwrite true`")
    assert "continued in 1 more segment(s)" in listed and listed.endswith(f"`{info['fit_command']}`")
    assert make_results.fit_commands({**info, "fit_segments": 1}) == f"`{info['fit_command']}`"
    assert listed in (ROOT / "RESULTS.md").read_text()


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
        for run in make_results.runs(dataset) + make_results.regime_runs(dataset):  # runs() refuses what does not hold
            meta = make_results.audit_file(run)["meta"]
            assert meta["global_step"] == make_results.final_step(run) > 0
        # the budget table says which step each row audits
        for row in make_results.budget(dataset)[2:]:
            run = row.split("|")[1].strip()
            assert f"(step {make_results.audit_file(run)['meta']['global_step']:,})" in row.split("|")[2]


def test_regime_rows_say_from_their_files_whether_they_reached_the_studys_regime():
    """Issue 16's Fashion-MNIST effect: each run of fewer members trained longer beside the CPU-budget row and the
    published model, by the measure of the study's regime (natural: train accuracy; robust: adversarial train
    accuracy), its yes/no from the audit; the section exists exactly when such runs do."""
    from results import make_results

    text = RESULTS_MD.read_text()
    for dataset, prefix in make_results.REGIME.items():
        found = sorted(p.parent.name for p in (ROOT / "results" / "cpu").glob(f"{prefix}_*/audit.json"))
        assert ("with fewer members trained longer, toward the study's regime" in text) == bool(found)
        lines = [l for l in text.splitlines() if re.match(r"\| [^|]+ \| (adv )?train acc ≥ ", l)]
        assert len(lines) == len(found)
        pub = published()
        for line in lines:
            label, measure, published_value, budget, value, verdict = [c.strip() for c in line.strip("|").split("|")]
            method = METHOD_KEYS[label]
            key = "train_acc" if method == "natural" else "adv_train_acc"
            assert measure.startswith(key.replace("_", " ") + " ≥ ")
            report = json.loads((ROOT / "results" / "cpu" / f"{prefix}_{method}" / "audit.json").read_text())
            measured = report["strategies"]["I_B" if key == "train_acc" else "I_A"]["train_acc"]
            assert float(value) == pytest.approx(measured, abs=5e-5)
            assert float(published_value) == pytest.approx(float(pub[(dataset, method)][key]), abs=5e-5)
            assert verdict == ("yes" if measured >= float(measure.split("≥ ")[1]) else "no")
            budget_audit = ROOT / "results" / "cpu" / f"{dataset}_{method}" / "audit.json"
            if budget_audit.exists():
                report = json.loads(budget_audit.read_text())["strategies"]["I_B" if key == "train_acc" else "I_A"]
                assert float(budget) == pytest.approx(report["train_acc"], abs=5e-5)


def test_regime_section_renders_its_runs_from_their_files(tmp_path, monkeypatch):
    """A dataset's REGIME runs (Fashion-MNIST's 1,000 members trained 2,000 steps; here the CPU-budget audits copied
    under those names at that final step): the regime check, the rows beside the published and CPU-budget ones, the
    robust − natural gaps and the curves, all from the files; a regime run not at its config's final step is
    refused."""
    with results_of(tmp_path, monkeypatch, ("fmnist_natural", "fmnist_pgd", "fmnist_trades")) as make_results:
        for method in ("natural", "pgd", "trades"):
            folder = copy_run(tmp_path, f"fmnist_{method}", f"fmnist_1k_{method}")
            report = json.loads((folder / "audit.json").read_text())
            report["meta"]["global_step"] = 2000
            report["strategies"]["I_A"]["train_acc"] = {"natural": 0.5, "pgd": 0.95, "trades": 0.85}[method]
            (folder / "audit.json").write_text(json.dumps(report))
        assert make_results.runs("fmnist", "fmnist_1k") == ["fmnist_1k_natural", "fmnist_1k_pgd", "fmnist_1k_trades"]
        text = "\n".join(make_results.regime_section("fmnist", "Fashion-MNIST"))
        make_results.plot("fmnist", "fmnist_1k")
        assert (tmp_path / "fmnist_1k_privacy_curves.png").stat().st_size > 10_000
        assert "on a seeded 1,000 members for 2,000 steps of 100, each member seen 200 times" in text
        assert "(the study's PGD: about 133 times, 80,001 steps over 60,000 members)" in text
        verdicts = {row.split("|")[1].strip(): row.split("|")[-2].strip() for row in text.splitlines()
                    if re.match(r"\| [^|]+ \| (adv )?train acc ≥ ", row)}
        natural_train = make_results.audit("fmnist_1k_natural")["I_B"]["train_acc"]   # the copied 1.0
        assert verdicts == {"natural": "yes" if natural_train >= 0.99 else "no", "PGD (Madry)": "yes",
                            "TRADES (Zhang)": "no"}
        for method in ("pgd", "trades"):
            rows = [r for r in text.splitlines() if r.startswith(f"| {METHODS[method]} | privrob")]
            assert [re.search(r"`configs/cpu/(\S+)\.yaml`", r).group(1) for r in rows] == [
                f"fmnist_{method}", f"fmnist_1k_{method}"]
        gap = next(r for r in text.splitlines() if r.startswith("| PGD (Madry) | +"))
        pgd, nat = make_results.measured("fmnist_1k_pgd"), make_results.measured("fmnist_1k_natural")
        ours = pgd["I_A"] - nat["I_A"]
        pub = make_results.published()
        study = pub[("fmnist", "pgd")]["I_A"] - pub[("fmnist", "natural")]["I_A"]
        assert [c.strip() for c in gap.split("|")[3:6]] == [f"{ours:+.4f}", "yes" if ours * study > 0 else "no",
                                                            f"{ours / study:.2f}"]
        points = {(m, s) for m, s, _, _ in make_results.mechanism_points("fmnist")}
        assert {("pgd", make_results.REGIME_SOURCE), ("natural", make_results.REGIME_SOURCE)} <= points
        report["meta"]["global_step"] = 1900
        (tmp_path / "cpu" / "fmnist_1k_trades" / "audit.json").write_text(json.dumps(report))
        make_results.audit_file.cache_clear()
        with pytest.raises(ValueError, match="not at the final step 2000 of configs/cpu/fmnist_1k_trades.yaml"):
            make_results.runs("fmnist", "fmnist_1k")


def test_each_robust_run_is_measured_against_the_natural_run_on_its_own_members(tmp_path, monkeypatch):
    """The 10,000-member Fashion-MNIST dual and PGD rows' gaps are to the budget's natural run; a dual row trained on
    1,000 members (its config so changed here) is measured against the REGIME's 1,000-member natural run instead; each
    row names its natural run, and a row with none on its members is left out (here the CPU-budget audits copied
    under those names, at their configs' final steps)."""
    with results_of(tmp_path, monkeypatch, ("fmnist_pgd",)) as make_results:
        for run, name, ia in (("fmnist_natural", "fmnist_natural", None),
                              ("fmnist_natural", "fmnist_1k_natural", 0.61), ("fmnist_ibp", "fmnist_dual", None)):
            folder = copy_run(tmp_path, run, name)
            report = json.loads((folder / "audit.json").read_text())
            report["meta"]["global_step"] = make_results.final_step(name)
            report["strategies"]["I_A"]["accuracy"] = ia or report["strategies"]["I_A"]["accuracy"]
            (folder / "audit.json").write_text(json.dumps(report))

        def rows():
            return {r.split("|")[1].strip(): [c.strip() for c in r.split("|")[2:-1]]
                    for r in make_results.gaps("fmnist")[2:]}

        def gap(run, natural):
            return f"{make_results.measured(run)['I_A'] - make_results.measured(natural)['I_A']:+.4f}"

        assert make_results.members_of("fmnist_dual") == make_results.members_of("fmnist_natural") == (10000, 0)
        assert {m: (r[1], r[-1]) for m, r in rows().items()} == {
            METHODS[m]: (gap(f"fmnist_{m}", "fmnist_natural"), "`fmnist_natural`") for m in ("pgd", "dual")}

        config = make_results.cpu_config

        def on_1000_members(run):
            if run != "fmnist_dual":
                return config(run)
            changed = json.loads(json.dumps(config(run)))
            changed["data"]["init_args"]["num_members"] = 1000
            return changed

        monkeypatch.setattr(make_results, "cpu_config", on_1000_members)
        folder = tmp_path / "cpu" / "fmnist_dual"
        report = json.loads((folder / "audit.json").read_text())
        report["meta"]["global_step"] = make_results.final_step("fmnist_dual")   # 34 batches an epoch now
        (folder / "audit.json").write_text(json.dumps(report))
        make_results.audit_file.cache_clear()
        assert make_results.members_of("fmnist_dual") == make_results.members_of("fmnist_1k_natural") == (1000, 0)
        assert rows()[METHODS["dual"]][1] == gap("fmnist_dual", "fmnist_1k_natural") != gap("fmnist_dual",
                                                                                             "fmnist_natural")
        assert rows()[METHODS["dual"]][-1] == "`fmnist_1k_natural`"
        shutil.rmtree(tmp_path / "cpu" / "fmnist_1k_natural")
        make_results.audit_file.cache_clear()
        assert [r.split("|")[1].strip() for r in make_results.gaps("fmnist")[2:]] == [METHODS["pgd"]]


def test_a_row_at_chance_is_marked_and_not_compared_with_the_study(tmp_path, monkeypatch):
    """A model that classifies its own members at chance (Yale DiffAI's collapsed run: train accuracy 0.026) is marked
    in the table and the gaps, with no sign or ratio against the study's gap; an accurate robust row is not."""
    with results_of(tmp_path, monkeypatch, ("yale_natural", "yale_pgd", "yale_diffai")) as make_results:
        train = {r: make_results.measured(r)["train_acc"] for r in ("yale_pgd", "yale_diffai")}
        assert train["yale_diffai"] < 2 / 38 < train["yale_pgd"]
        assert [make_results.at_chance(r) for r in ("yale_natural", "yale_pgd", "yale_diffai")] == [False, False, True]
        rows = {r.split("|")[1].strip(): [c.strip() for c in r.split("|")[2:-1]]
                for r in make_results.gaps("yale")[2:]}
        assert set(rows) == {METHODS["pgd"], f"{METHODS['diffai']}, at chance"}
        assert rows[f"{METHODS['diffai']}, at chance"][2:4] == ["–", "–"]
        assert rows[METHODS["pgd"]][2] in ("yes", "no") and rows[METHODS["pgd"]][3] != "–"
        labels = [r.split("|")[1].strip() for r in make_results.table("yale") if "privrob `configs" in r]
        assert labels == [METHODS["natural"], METHODS["pgd"], f"{METHODS['diffai']}, at chance"]


def test_a_robust_row_that_fits_no_adversarial_example_is_marked_and_not_compared_with_the_study(tmp_path,
                                                                                                  monkeypatch):
    """A robust method's model trained out of chance whose own members' adversarial examples it classifies at chance
    (the Yale dual budget: adversarial train accuracy 0.0005, clean 0.61) trained to no robustness: marked, with no
    sign or ratio against the study's gap; PGD's row (0.98) is compared."""
    with results_of(tmp_path, monkeypatch, ("yale_natural", "yale_pgd", "yale_dual")) as make_results:
        m = {r: make_results.measured(r) for r in ("yale_natural", "yale_pgd", "yale_dual")}
        assert m["yale_dual"]["adv_train_acc"] < 2 / 38 < m["yale_dual"]["train_acc"]
        assert 2 / 38 < m["yale_pgd"]["adv_train_acc"]
        assert [make_results.not_robust(r) for r in m] == [False, False, True]
        rows = {r.split("|")[1].strip(): [c.strip() for c in r.split("|")[2:-1]]
                for r in make_results.gaps("yale")[2:]}
        assert set(rows) == {METHODS["pgd"], f"{METHODS['dual']}, not robust"}
        assert rows[f"{METHODS['dual']}, not robust"][2:4] == ["–", "–"]
        assert rows[METHODS["pgd"]][2] == "yes" and rows[METHODS["pgd"]][3] != "–"
        table = [r for r in make_results.table("yale") if "privrob `configs" in r]
        assert [r.split("|")[1].strip() for r in table] == [
            METHODS["natural"], METHODS["pgd"], f"{METHODS['dual']}, not robust"]
        assert " 0.5000 (crown_ibp) |" in table[2]   # its I_V names the bound its audit fell back to


@contextlib.contextmanager
def results_of(tmp_path, monkeypatch, runs):
    """make_results reading a results folder in ``tmp_path`` that holds ``runs`` and the published values (a test may
    copy more runs into it before reading)."""
    from results import make_results

    (tmp_path / "published.csv").write_text((ROOT / "results" / "published.csv").read_text())
    for run in runs:
        copy_run(tmp_path, run)
    monkeypatch.setattr(make_results, "RESULTS", tmp_path)
    make_results.audit_file.cache_clear()
    try:
        yield make_results
    finally:
        make_results.audit_file.cache_clear()


def copy_run(results, run: str, name: str | None = None):
    """``run``'s small results files into the test's own results folder (as ``name``)."""
    folder = results / "cpu" / (name or run)
    folder.mkdir(parents=True)
    for file in ("audit.json", "privacy_curve.csv", "run.json"):
        (folder / file).write_text((ROOT / "results" / "cpu" / run / file).read_text())
    return folder


@pytest.fixture
def copied_run(tmp_path, monkeypatch):
    """yale_natural's results files in a results folder of the test's own, which make_results reads."""
    with results_of(tmp_path, monkeypatch, ("yale_natural",)) as make_results:
        assert make_results.runs("yale") == ["yale_natural"]
        yield tmp_path / "cpu" / "yale_natural"


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


#: the seed table's columns, as (strategy in audit.json, key)
SEED_COLUMNS = (("I_B", "train_acc"), ("I_B", "test_acc"), ("I_A", "train_acc"), ("I_A", "test_acc"),
                ("I_B", "accuracy"), ("I_A", "accuracy"))


def add_seed(folder, seed: int, values: tuple) -> None:
    """A seed run of ``folder``'s run: its audit with SEED_COLUMNS set to ``values`` and its own checkpoint, its
    run.json naming the seed."""
    (folder / "seeds" / str(seed)).mkdir(parents=True)
    report = json.loads((folder / "audit.json").read_text())
    for (strategy, key), value in zip(SEED_COLUMNS, values):
        report["strategies"][strategy][key] = value
    report["meta"]["checkpoint"] = f"runs/cpu/{folder.name}_seed{seed}/checkpoints/last.ckpt"
    (folder / "seeds" / str(seed) / "audit.json").write_text(json.dumps(report))
    info = {**json.loads((folder / "run.json").read_text()), "seed": seed}
    (folder / "seeds" / str(seed) / "run.json").write_text(json.dumps(info))


def seed_values(folder) -> dict[int, list[float]]:
    """SEED_COLUMNS of a run folder's audit (seed 0) and of each of its seed folders, read from the files."""
    audits = {0: folder / "audit.json", **{int(p.parent.name): p for p in (folder / "seeds").glob("*/audit.json")}}
    return {seed: [json.loads(path.read_text())["strategies"][s][k] for s, k in SEED_COLUMNS]
            for seed, path in sorted(audits.items())}


def spread(values) -> str:
    return f"{np.mean(values):.4f} ± {np.std(values, ddof=1):.4f}"


def seed_tables(lines: list[str]) -> tuple[dict, dict]:
    """The seed table's rows ({run: cells}) and the paired gaps' ({run: cells}) in ``lines``."""
    rows, gaps, table = {}, {}, None
    for line in lines:
        if line.startswith("| run | seeds |"):
            table = rows
        elif line.startswith("| run − natural, paired by seed |"):
            table = gaps
        elif table is not None and line.startswith("| ") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            table[cells[0]] = cells[1:]
        elif not line.startswith("|"):
            table = None
    return rows, gaps


def test_seed_rows_are_the_mean_and_sd_of_their_runs_and_gaps_pair_seeds(copied_run):
    """Issue 16's seeds: every column's mean ± sample sd over seed 0 (the row) and each seed folder; robust − natural
    paired by seed, not by position; every seed run's commands listed."""
    from results import make_results

    pgd = copy_run(copied_run.parent.parent, "yale_pgd")
    add_seed(copied_run, 2, (1.0, 0.97, 0.03, 0.02, 0.60, 0.50))
    add_seed(copied_run, 3, (0.99, 0.96, 0.04, 0.01, 0.54, 0.51))   # pgd has no seed 3: not paired
    add_seed(pgd, 1, (0.98, 0.95, 0.97, 0.80, 0.58, 0.62))          # natural has no seed 1: not paired
    add_seed(pgd, 2, (0.99, 0.94, 0.99, 0.78, 0.55, 0.66))          # I_B below natural's seed 2: its sign changes
    rows, gaps = seed_tables(make_results.seeds_table("yale"))
    for folder in (copied_run, pgd):
        values = seed_values(folder)
        assert rows[folder.name] == [", ".join(map(str, values)), "–"] + [spread(column)
                                                                           for column in zip(*values.values())]
    nat, rob = seed_values(copied_run), seed_values(pgd)
    assert list(gaps) == ["yale_pgd"] and gaps["yale_pgd"][0] == "0, 2"
    a_gaps, b_gaps = ([rob[s][i] - nat[s][i] for s in (0, 2)] for i in (5, 4))
    assert a_gaps[0] > 0 and b_gaps[0] > 0   # seed 0's gaps are positive, so seed 2's negative I_B gap differs
    assert gaps["yale_pgd"][1:] == [spread(a_gaps), ", ".join(f"{g:+.4f}" for g in a_gaps),
                                    spread(b_gaps), ", ".join(f"{g:+.4f}" for g in b_gaps), "I_A: yes; I_B: no"]
    listed = [l for l in make_results.commands("yale") if l.startswith("  - seed ")]   # each seed run's commands
    assert [l.split()[2] for l in listed] == ["2", "3", "1", "2"]
    seeds = {(m, round(gap, 6), round(ia, 6)) for m, s, gap, ia in make_results.mechanism_points("yale")
             if s == "CPU, other seed"}
    assert seeds == {(m, round(v[2] - v[3], 6), round(v[5], 6)) for m, folder in (("natural", copied_run), ("pgd", pgd))
                     for seed, v in seed_values(folder).items() if seed}


def test_results_md_seed_rows_equal_their_files():
    """RESULTS.md's seed table has a row for every run with seed folders, each the mean ± sd of its files."""
    rows, _ = seed_tables(RESULTS_MD.read_text().splitlines())
    folders = {p.parent.parent.parent for p in (ROOT / "results" / "cpu").glob("*/seeds/*/run.json")}
    assert set(rows) == {folder.name for folder in folders}
    for folder in folders:
        values = seed_values(folder)   # train accuracy under twice chance (1/38 on Yale, 1/10 on Fashion-MNIST): left out
        chance = [s for s, v in values.items() if v[0] < 2 / (38 if folder.name.startswith("yale") else 10)]
        trained = {s: v for s, v in values.items() if s not in chance}
        assert rows[folder.name][:2] == [", ".join(map(str, trained)) or "–", ", ".join(map(str, chance)) or "–"]
        assert rows[folder.name][2:] == ([spread(column) for column in zip(*trained.values())] if len(trained) > 1
                                         else [f"{v:.4f} ± –" for v in next(iter(trained.values()))])


def draw_summary(make_results, path, monkeypatch):
    """make_results.summary_plot() into ``path``; (marker, size, x, y) of every point it scattered."""
    from matplotlib.axes import Axes

    drawn, scatter = [], Axes.scatter

    def recorded(self, x, y, *args, **kwargs):
        drawn.append((kwargs.get("marker"), kwargs.get("s"), round(float(x), 6), round(float(y), 6)))
        return scatter(self, x, y, *args, **kwargs)

    monkeypatch.setattr(Axes, "scatter", recorded)
    monkeypatch.setattr(make_results, "SUMMARY_PLOT", path)
    make_results.summary_plot()
    assert path.stat().st_size > 0
    return drawn


def test_a_seed_at_chance_is_named_and_left_out_of_the_spread_and_the_gaps(copied_run, monkeypatch):
    """A seed whose model stayed at chance measures a collapse, not the cost of robustness: named in its own column,
    not in the mean ± sd nor in the paired gaps, and drawn as a cross in the summary figure."""
    from results import make_results

    pgd = copy_run(copied_run.parent.parent, "yale_pgd")
    for seed in (1, 2):
        add_seed(copied_run, seed, (1.0, 0.97, 0.03, 0.02, 0.55 + seed / 100, 0.50))
    add_seed(pgd, 1, (0.026, 0.03, 0.02, 0.02, 0.50, 0.70))   # at chance, with a large I_A that must not count
    add_seed(pgd, 2, (0.99, 0.94, 0.99, 0.78, 0.55, 0.66))
    rows, gaps = seed_tables(make_results.seeds_table("yale"))
    rob, nat = seed_values(pgd), seed_values(copied_run)
    trained = [rob[0], rob[2]]
    assert rows["yale_pgd"] == ["0, 2", "1"] + [spread(column) for column in zip(*trained)]
    assert rows["yale_natural"][:2] == ["0, 1, 2", "–"]
    a_gaps = [rob[s][5] - nat[s][5] for s in (0, 2)]
    assert gaps["yale_pgd"][:3] == ["0, 2", spread(a_gaps), ", ".join(f"{g:+.4f}" for g in a_gaps)]
    sources = {(m, s) for m, s, _, _ in make_results.mechanism_points("yale") if "other seed" in s}
    assert sources == {("natural", "CPU, other seed"), ("pgd", "CPU, other seed"),
                       ("pgd", "CPU, other seed, at chance")}
    drawn = draw_summary(make_results, copied_run.parent.parent / "summary.png", monkeypatch)
    crosses = {(x, y) for marker, size, x, y in drawn if marker == "x"}
    at_chance_point = {(round(gap, 6), round(ia, 6)) for _, s, gap, ia in make_results.mechanism_points("yale")
                       if s == make_results.SEED_AT_CHANCE_SOURCE}
    assert len(at_chance_point) == 1 and crosses == at_chance_point   # the only cross: seed 0's rows trained
    assert {size for marker, size, x, y in drawn if marker == "x"} == {20}   # small: another seed's
    add_seed(pgd, 3, (0.026, 0.03, 0.02, 0.02, 0.50, 0.70))   # one trained seed left of three: a mean, no sd
    shutil.rmtree(pgd / "seeds" / "2")
    lines = make_results.seeds_table("yale")
    rows, gaps = seed_tables(lines)
    assert rows["yale_pgd"] == ["0", "1, 3"] + [f"{v:.4f} ± –" for v in rob[0]] and "yale_pgd" not in gaps
    assert lines[-1] == ("No paired gap for yale_pgd: fewer than two seeds trained out of chance beside its natural "
                         "run's (both trained: 0).")


@pytest.mark.parametrize("change, match", [
    (lambda report, info: info.update(seed=2), "is of seed 2, not 1"),
    (lambda report, info: info.pop("commit"), "names no commit"),
    (lambda report, info: report["meta"].update(global_step=95), "not at the final step"),
    (lambda report, info: report["meta"].update(checkpoint="runs/cpu/yale_natural/checkpoints/last.ckpt"),
     "not runs/cpu/yale_natural_seed1/checkpoints/last.ckpt"),
])
def test_a_seed_run_of_another_seed_step_or_unnamed_code_is_refused(copied_run, change, match):
    from results import make_results

    add_seed(copied_run, 1, (1.0, 0.97, 0.03, 0.02, 0.60, 0.50))
    folder = copied_run / "seeds" / "1"
    report, info = (json.loads((folder / name).read_text()) for name in ("audit.json", "run.json"))
    change(report, info)
    (folder / "audit.json").write_text(json.dumps(report))
    (folder / "run.json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match=match):
        make_results.seeds_table("yale")


def test_a_seed_folder_0_is_refused(copied_run):
    from results import make_results

    add_seed(copied_run, 0, (1.0, 0.97, 0.03, 0.02, 0.60, 0.50))
    with pytest.raises(ValueError, match="seed 0 is the config's own run"):
        make_results.seeds_table("yale")


def test_run_sh_seeds_shift_both_seeds_into_their_own_folders():
    """PRIVROB_SEED=S: seed_everything and the split's seed (a default one included) both shifted by S, a run folder,
    a results folder and a W&B name of their own, and a fit command the CLI takes; bad values refused before any
    work."""
    import yaml

    env = {**os.environ, "PYTHON": sys.executable, "PRIVROB_SEED": "2", "PRIVROB_DRY_RUN": "1"}
    made = [ROOT / "runs" / "cpu" / "yale_natural_seed2", ROOT / "results" / "cpu" / "yale_natural" / "seeds",
            ROOT / "runs" / "cpu" / "fmnist_pgd_seed2", ROOT / "results" / "cpu" / "fmnist_pgd" / "seeds"]
    existed = [folder.exists() for folder in made]
    r = subprocess.run(["bash", "results/run.sh", "yale_natural", "fmnist_pgd"], cwd=ROOT, env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert [folder.exists() for folder in made] == existed  # a dry run makes nothing
    commands = [shlex.split(line) for line in r.stdout.splitlines()]
    assert len(commands) == 4
    for (fit, audit), name, seeds in zip((commands[:2], commands[2:]), ("yale_natural", "fmnist_pgd"),
                                         ((4557079, 2), (4557079, 2))):   # fmnist_pgd keeps the default split seed 0
        assert audit[audit.index("--config") + 1] == f"runs/cpu/{name}_seed2/config.yaml"
        assert audit[audit.index("--output") + 1] == f"results/cpu/{name}/seeds/2/audit"
        assert fit[-2:] == ["--overwrite", "true"]
        printed = subprocess.run(fit[:-2] + ["--print_config"], cwd=ROOT, capture_output=True, text=True,
                                 env={**os.environ, "WANDB_MODE": "disabled"})
        assert printed.returncode == 0, printed.stderr
        config = yaml.safe_load(printed.stdout)
        assert (config["seed_everything"], config["data"]["init_args"]["seed"]) == seeds
        assert config["trainer"]["default_root_dir"] == f"runs/cpu/{name}_seed2"
        assert config["trainer"]["logger"]["init_args"]["name"] == f"cpu_{name}_seed2"
    for variable, value in (("PRIVROB_SEED", "-1"), ("PRIVROB_SEED", "x"), ("PRIVROB_SEED", "01"),
                            ("PRIVROB_THREADS", "0"), ("PRIVROB_RESUME", "yes"), ("PRIVROB_DRY_RUN", "yes")):
        r = subprocess.run(["bash", "results/run.sh", "yale_natural"], cwd=ROOT, capture_output=True, text=True,
                           env={**env, variable: value})
        assert r.returncode == 2 and r.stderr.splitlines()[-1].startswith(f"privrob: error: {variable}"), r.stderr


def test_run_sh_audits_each_run_on_its_datasets_points_by_its_methods_certifier():
    """A Fashion-MNIST verifiable run gets both its dataset's points and its method's certified bound (the study's:
    IBP by IBP, DiffAI by its box; Yale IBP at 8/255), the options results/references.sh's audit shares."""
    env = {**os.environ, "PYTHON": sys.executable, "PRIVROB_DRY_RUN": "1"}
    names = {"fmnist_ibp": ["--num_points", "2000", "--bound_methods", "[ibp]"],
             "fmnist_diffai": ["--num_points", "2000", "--bound_methods", "[box]"],
             "fmnist_1k_pgd": ["--num_points", "1000"], "fmnist_dual": ["--num_points", "2000"],
             "yale_ibp": ["--bound_methods", "[ibp]", "--eps", "0.03137254901960784"],
             "yale_diffai": ["--bound_methods", "[box]"], "yale_pgd": []}
    r = subprocess.run(["bash", "results/run.sh", *names], cwd=ROOT, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    audits = [shlex.split(line) for line in r.stdout.splitlines()][1::2]
    for audit, (name, options) in zip(audits, names.items(), strict=True):
        assert audit[audit.index("--output") + 1] == f"results/cpu/{name}/audit"
        assert audit[audit.index("--output") + 2:] == options


def test_run_sh_resumes_a_run_only_on_the_thread_count_it_was_trained_on():
    """The thread count changes the CPU kernels' floating-point order, so an exact resume keeps it (segments.tsv
    records each segment's); a run from before that column resumes as before."""
    run = ROOT / "runs" / "cpu" / "yale_natural_seed97"   # PRIVROB_SEED=97's folder
    assert not run.exists(), f"{run} exists (left by an interrupted run of this test?): delete it"
    env = {**os.environ, "PYTHON": sys.executable, "PRIVROB_SEED": "97", "PRIVROB_RESUME": "1", "PRIVROB_DRY_RUN": "1"}
    try:
        (run / "checkpoints").mkdir(parents=True)
        (run / "checkpoints" / "last.ckpt").write_bytes(b"")
        segments = run / "segments.tsv"
        for recorded, threads, refused in (("\t1\n", "2", True), ("\t1", "2", True), ("\t2\n", "2", False),
                                           ("\n", "2", False)):   # a last line without its newline is read too
            segments.write_text(f"1796000000\tabc1234{recorded}")
            r = subprocess.run(["bash", "results/run.sh", "yale_natural"], cwd=ROOT, capture_output=True, text=True,
                               env={**env, "PRIVROB_THREADS": threads})
            if refused:
                assert r.returncode == 2 and r.stderr.splitlines()[-1] == (
                    "privrob: error: runs/cpu/yale_natural_seed97 was trained on 1 thread(s): resume it with "
                    "PRIVROB_THREADS=1, not 2"), r.stderr
            else:
                assert r.returncode == 0 and "--ckpt_path runs/cpu/yale_natural_seed97/checkpoints/last.ckpt" in \
                    r.stdout, r.stderr
            assert segments.read_text() == f"1796000000\tabc1234{recorded}"   # nothing written
        segments.write_text("")
        r = subprocess.run(["bash", "results/run.sh", "yale_natural"], cwd=ROOT, capture_output=True, text=True, env=env)
        assert r.returncode == 2 and r.stderr.splitlines()[-1] == (
            "privrob: error: runs/cpu/yale_natural_seed97/segments.tsv is empty (its start was not timed): not resumed")
    finally:
        shutil.rmtree(run, ignore_errors=True)


def test_references_sh_refuses_bad_options_before_any_work():
    env = {**os.environ, "PYTHON": sys.executable}
    for variable, value, message in (("PRIVROB_REFERENCE_JOBS", "0", "must be positive integers, got '0'"),
                                     ("PRIVROB_REFERENCES", "x", "must be positive integers, got 'x'"),
                                     ("PRIVROB_THREADS", "1", "no finished run runs/cpu/yale_nonexistent")):
        r = subprocess.run(["bash", "results/references.sh", "yale_nonexistent"], cwd=ROOT, capture_output=True,
                           text=True, env={**env, variable: value})
        assert r.returncode == 2 and r.stderr.splitlines()[-1].startswith("privrob: error: "), r.stderr
        assert message in r.stderr.splitlines()[-1]
    assert not (ROOT / "results" / "cpu" / "yale_nonexistent").exists()


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
        audit = json.loads((ROOT / "results" / "cpu" / run / "references" / "audit.json").read_text())
        report, tied = audit["strategies"], audit["meta"].get("lira_offline_score") != "log_ndtr"
        assert len(rows) == len(make_results.STRONG) == 10
        for row, (key, attack, signal) in zip(rows, make_results.STRONG):
            # offline LiRA scored by Φ (before its fix) is marked
            marked = attack + (make_results.TIED if tied and attack == "LiRA offline" else "")
            assert (row["attack"], row["signal"]) == (marked, signal)
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
    accepted = make_results.strong_attacks(copied_run.name)  # as its own, accepted
    assert not any("trained again" in line for line in accepted)
    info = json.loads((folder / "run.json").read_text())
    (folder / "run.json").write_text(json.dumps({**info, "target_memory_format": "channels_last"}))
    retrained = make_results.strong_attacks(copied_run.name)[2]   # a target trained again is said to be
    assert retrained.startswith("The target was trained again in the channels_last memory format (the table's row: "
                                "contiguous;")
    data["meta"]["global_step"] = make_results.final_step(copied_run.name) - 1
    (folder / "audit.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="not at the final step"):
        make_results.strong_attacks(copied_run.name)


def test_the_gpu_script_runs_fits_and_audits_at_a_tiny_size_on_the_cpu(yale_root, tmp_path):
    """results/gpu_full.sh tried as issue 16 asks (3 steps on 40 members, 16 + 16 audited): its files are what
    make_results reads for a GPU row, the audit of the step the fit ended at, each certified by the study's method;
    a bad name is refused before any work."""
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
    r = subprocess.run(["bash", script, "natural", "diffai"], env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    # each model certified as the study certified it (results/common.sh, as results/run.sh): DiffAI's by its box
    diffai = json.loads((tmp_path / "out" / "yale_diffai" / "audit.json").read_text())["strategies"]["I_V"]
    assert diffai["bound"] == "box" and diffai["members"] == 16
    folder = tmp_path / "out" / "yale_natural"
    report, info = (json.loads((folder / name).read_text()) for name in ("audit.json", "run.json"))
    assert report["meta"]["global_step"] == info["final_step"] == 3 and info["schedule"] == "max_steps 20001"
    assert info["asked"] == "max_steps 3" and info["fraction"] == round(3 / 20001, 4)
    assert int(report["strategies"]["I_B"]["members"]) == 16 and "configs/yale_natural.yaml" in info["fit_command"]
    assert info["fit_seconds"] > 0 and info["audit_seconds"] > 0 and info["commit"]
    assert (folder / "privacy_curve.csv").exists() and not (tmp_path / "runs" / "yale_natural.result").exists()
    with pytest.raises(ValueError, match="tiny try"):  # never a GPU row of RESULTS.md
        gpu_runs("yale", tmp_path / "out")
