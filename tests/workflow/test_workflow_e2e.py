"""End-to-end run of the Snakemake workflow on a tiny config, checking what it produced."""

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from deltagdml.data.splits import load_splits, train_indices
from deltagdml.gdml.dataset import load_dataset
from deltagdml.gdml.model_io import load_model

ROOT = Path(__file__).resolve().parents[2]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile")]

pytestmark = pytest.mark.slow


def snakemake(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*SNAKEMAKE, *args], cwd=cwd, capture_output=True, text=True, timeout=1200
    )


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("workflow")
    config = yaml.safe_load((ROOT / "workflow" / "configs" / "tiny.yaml").read_text())
    config["results"] = "results"
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    run = snakemake(
        "--cores", "2", "--configfile", "config.yaml", "--directory", str(work), cwd=work
    )
    assert run.returncode == 0, run.stderr[-4000:]
    return work / "results", config, run


def test_metrics_table_content(tiny_run):
    results, config, _ = tiny_run
    metrics = pd.read_csv(results / "summary" / "metrics.csv")
    assert set(metrics["system"]) == set(config["systems"])
    assert set(metrics["model"]) == {"full", "delta"}
    for col in ("e_mae_kcal_mol", "e_rmse_kcal_mol", "f_mae_kcal_mol_A", "f_rmse_kcal_mol_A"):
        assert np.isfinite(metrics[col]).all() and (metrics[col] > 0).all()
    assert (metrics["f_rmse_kcal_mol_A"] >= metrics["f_mae_kcal_mol_A"]).all()
    assert (metrics["n_train"] == config["training"]["n_train"]).all()
    assert (metrics["n_test"] == config["training"]["n_test"]).all()
    comparison = pd.read_csv(results / "summary" / "full_vs_delta.csv").set_index("system")
    # On water–benzene the Δ model is clearly better (the paper's central claim).
    assert comparison.loc["water_benzene", "f_mae_change_pct"] < -20


def test_metrics_match_stored_predictions_and_models(tiny_run):
    results, _, _ = tiny_run
    pred = np.load(results / "water_benzene" / "evaluation" / "test_predictions.npz")
    metrics = pd.read_csv(results / "water_benzene" / "evaluation" / "metrics.csv")
    full_row = metrics[metrics["model"] == "full"].iloc[0]
    assert full_row["f_mae_kcal_mol_A"] == pytest.approx(
        np.abs(pred["F_full"] - pred["F_ref"]).mean(), rel=1e-5
    )
    # the stored full model reproduces the stored predictions
    ds = load_dataset(results / "water_benzene" / "datasets" / "full.npz")
    model = load_model(results / "water_benzene" / "models" / "full.npz")
    E, F = model.predict(ds.R[pred["idxs_test"][:5]])
    np.testing.assert_allclose(F, pred["F_full"][:5], rtol=1e-8, atol=1e-8)


def test_delta_datasets_decompose_exactly(tiny_run):
    results, _, _ = tiny_run
    d = results / "water_benzene" / "datasets"
    full, nonint, binding = (load_dataset(d / f"{k}.npz") for k in ("full", "nonint", "binding"))
    np.testing.assert_allclose(nonint.F + binding.F, full.F, atol=1e-10)
    np.testing.assert_allclose(nonint.E + binding.E, full.E, atol=1e-8)
    benzene, water = load_dataset(d / "fragment_0.npz"), load_dataset(d / "fragment_1.npz")
    np.testing.assert_allclose(nonint.F[:, :12], benzene.F)
    np.testing.assert_allclose(nonint.E, benzene.E + water.E)
    # Na+ is a constant: no fragment model, zero isolated force
    assert not (results / "na_benzene" / "models" / "fragment_1.npz").exists()
    na = load_dataset(results / "na_benzene" / "datasets" / "nonint.npz")
    assert np.abs(na.F[:, 12]).max() == 0.0


def test_figures_logs_and_benchmarks_exist(tiny_run):
    results, _, _ = tiny_run
    for name in ("fig6_errors", "fig7_fragment_forces"):
        for ext in ("png", "pdf"):
            assert (results / "summary" / f"{name}.{ext}").stat().st_size > 5000
    assert "| water_benzene |" in (results / "summary" / "summary.md").read_text()
    paper = pd.read_csv(results / "summary" / "paper_comparison.csv").set_index("system")
    assert paper.loc["water_benzene", "n_train_paper"] == 1000  # set beside the paper
    for name in ("binding_stats.csv", "learning_curves.csv", "fig5_binding_stats.png"):
        assert (results / "analysis" / name).stat().st_size > 100
    for name in (
        "descriptor_variance.csv",
        "fig3_descriptor_variance.png",
        "fig1_force_decomposition.png",
    ):
        assert (results / "water_benzene" / "analysis" / name).stat().st_size > 100
    assert list((results / "logs").rglob("train_full.log"))
    assert list((results / "benchmarks").rglob("train_full.tsv"))


def test_dynamics_outputs(tiny_run):
    results, config, _ = tiny_run
    temperatures = config["dynamics"]["temperatures_K"]
    summary = pd.read_csv(results / "summary" / "md_stability.csv")
    assert len(summary) == len(config["systems"]) * 2 * len(temperatures)
    assert set(summary["status"]) <= {"stable", "unstable"}
    speed = pd.read_csv(results / "summary" / "md_timing.csv")
    assert (speed["steps_per_s"] > 0).all()
    for system in config["systems"]:
        model = load_model(results / system / "models" / "full.npz")
        for t in temperatures:
            run = np.load(results / system / "dynamics" / "runs" / f"full_{t}K.npz")
            # stored energies are the model's own at the stored geometries
            E, _ = model.predict(run["R"][[0, -1]])
            np.testing.assert_allclose(E, run["energy_kcal_mol"][[0, -1]], atol=1e-6)
            if str(run["reason"]) == "":
                assert run["time_ps"][-1] == pytest.approx(config["dynamics"]["duration_ps"])
                # Langevin thermostat: mean kinetic temperature near the target
                assert 0.5 * t < run["kinetic_temperature_K"][1:].mean() < 1.6 * t
        for name in ("fes.png", "msad.png", "stability.csv"):
            assert (results / system / "dynamics" / name).stat().st_size > 100


def test_rerun_is_a_no_op_and_report_builds(tiny_run):
    results, _, _ = tiny_run
    work = results.parent
    dry = snakemake("-n", "--cores", "2", "--configfile", "config.yaml", cwd=work)
    assert dry.returncode == 0 and "Nothing to be done" in dry.stdout + dry.stderr
    rep = snakemake("--configfile", "config.yaml", "--report", "report.html", cwd=work)
    assert rep.returncode == 0, rep.stderr[-2000:]
    assert (work / "report.html").stat().st_size > 100_000


def planned_jobs(work: Path, config: dict) -> dict[str, int]:
    """Jobs by rule that a dry run with ``config`` plans in the finished run in ``work``."""
    (work / "changed.yaml").write_text(yaml.safe_dump(config))
    dry = snakemake("-n", "--cores", "2", "--configfile", "changed.yaml", cwd=work)
    assert dry.returncode == 0, dry.stderr[-2000:]
    if "Job stats:" not in dry.stdout:
        assert "Nothing to be done" in dry.stdout + dry.stderr
        return {}
    stats = dry.stdout.split("Job stats:")[1].split("total")[0].splitlines()
    return {line.split()[0]: int(line.split()[1]) for line in stats[3:] if line.strip()}


#: Sampling, frame selection, labelling, datasets, splits and training: hours, not seconds.
DATA_AND_TRAINING = {
    "sample_replica",
    "select_frames",
    "label_chunk",
    "merge_labels",
    "ingest_dataset",
    "delta_dataset",
    "split",
    "train_model",
    "delta_model",
}


def test_renaming_a_system_reruns_only_figures(tiny_run):
    """A new ``label`` changes the params of the figure rules alone: no sampling, labelling
    or training is planned again."""
    results, config, _ = tiny_run
    renamed = copy.deepcopy(config)
    renamed["systems"]["na_benzene"]["label"] = "sodium cation on benzene"
    planned = set(planned_jobs(results.parent, renamed))
    figures = {
        "all",
        "analysis_binding_stats",
        "analysis_coulomb_matrix",
        "analysis_descriptor_variance",
        "analysis_force_decomposition",
        "analysis_learning_curves",
        "md_analyse",
        "md_summary",
        "summarise",
    }
    assert {"summarise", "analysis_coulomb_matrix", "md_analyse"} <= planned <= figures, planned


@pytest.mark.parametrize(
    ("change", "md_runs"),
    [
        ({"enabled": False}, 0),
        ({"duration_ps": 0.3}, 8),
        ({"temperatures_K": [100, 200, 300]}, 4),  # only the new temperature's runs
        ({"models": ["full"]}, 0),
    ],
)
def test_md_settings_rerun_only_the_md_study(tiny_run, change, md_runs):
    """The MD study's settings are no params of sampling, frame selection, labelling,
    datasets, splits, training or evaluation, nor of the runs they do not change."""
    results, config, _ = tiny_run
    changed = copy.deepcopy(config)
    changed["dynamics"] |= change
    planned = planned_jobs(results.parent, changed)
    assert set(planned) <= {"all", "md_run", "md_analyse", "md_summary"}, planned
    assert planned.get("md_run", 0) == md_runs, planned


def test_a_new_selection_cv_reruns_frame_selection_not_sampling(tiny_run):
    """The second collective variable is what frame selection covers: a new one selects
    (and labels, trains) again from the same replicas."""
    results, config, _ = tiny_run
    changed = copy.deepcopy(config)
    changed["dynamics"]["analysis"]["cv2"] = {"kind": "atoms", "atoms": [0, 12]}
    planned = set(planned_jobs(results.parent, changed))
    assert {"select_frames", "label_chunk", "train_model", "md_analyse"} <= planned, planned
    assert "sample_replica" not in planned


def test_an_active_learning_section_reruns_no_existing_model(tiny_run):
    """A new top-level section is read by no existing step: no data, training, evaluation
    or MD job of the finished run is planned again."""
    results, config, _ = tiny_run
    changed = copy.deepcopy(config)
    changed["active_learning"] = {"max_rounds": 5, "temperatures_K": [250], "budget": 7}
    planned = set(planned_jobs(results.parent, changed))
    assert not planned & (DATA_AND_TRAINING | {"evaluate", "model_card", "md_run"}), planned


def test_lint_is_clean():
    lint = subprocess.run([*SNAKEMAKE, "--lint"], cwd=ROOT, capture_output=True, text=True)
    assert "Congratulations" in lint.stdout + lint.stderr, lint.stdout[-3000:]


def test_schema_violation_is_reported_before_any_job(tmp_path):
    config = yaml.safe_load((ROOT / "workflow" / "configs" / "tiny.yaml").read_text())
    config["training"]["n_train"] = -5
    config["unknown_key"] = 1
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    run = snakemake("-n", "--cores", "1", "--configfile", "config.yaml", cwd=tmp_path)
    assert run.returncode != 0
    assert "'unknown_key' was unexpected" in run.stdout + run.stderr
    assert not (tmp_path / "results_tiny").exists()
    shutil.rmtree(tmp_path / ".snakemake", ignore_errors=True)


@pytest.mark.parametrize(("where", "md_runs"), [("na_benzene", 4), ("all", 0)])
def test_dynamics_enabled_false_plans_no_md_for_its_systems(tmp_path, where, md_runs):
    """The tiny config runs 2 temperatures × 2 models per system; switched off: none."""
    config = yaml.safe_load((ROOT / "workflow" / "configs" / "tiny.yaml").read_text())
    if where == "all":
        config["dynamics"]["enabled"] = False
    else:
        config["systems"][where]["dynamics"] = {"enabled": False}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    run = snakemake("-n", "--cores", "1", "--configfile", "config.yaml", cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    jobs = " ".join(run.stdout.split("Job stats:")[1].split())
    assert (f"md_run {md_runs}" in jobs) if md_runs else ("md_" not in jobs)
    assert "na_benzene/dynamics" not in run.stdout
    shutil.rmtree(tmp_path / ".snakemake", ignore_errors=True)


def test_delta_model_file_and_cards_match_the_evaluation(tiny_run):
    """The workflow's Δ model file predicts what the evaluation scored, and every model has
    a card whose test errors are the evaluation's."""
    import json

    import ase.io

    from deltagdml import load_model as load_any

    results, config, _ = tiny_run
    folder = results / "water_benzene"
    pred = np.load(folder / "evaluation" / "test_predictions.npz")
    ds = load_dataset(folder / "datasets" / "full.npz")
    delta = load_any(folder / "models" / "delta.npz")
    E, F = delta.predict(ds.R[pred["idxs_test"]])
    np.testing.assert_allclose(E, pred["E_delta"], rtol=1e-12)
    np.testing.assert_allclose(F, pred["F_delta"], rtol=1e-10, atol=1e-12)
    metrics = pd.read_csv(folder / "evaluation" / "metrics.csv").set_index("model")
    for card in ("full", "delta", "fragment_0", "fragment_1", "binding"):
        content = json.loads((folder / "models" / f"{card}.card.json").read_text())
        assert content["level_of_theory"] == "GFN2-xTB (tblite)"
        assert content["units"]["force"] == "kcal/mol/Ang"
        assert content["test"]["n_test"] == config["training"]["n_test"]
        stored = content["parts"] if card == "delta" else {card: content}
        assert all(entry["uncertainty"]["threshold"] > 0 for entry in stored.values())
        if card in metrics.index:
            test_mae = content["test"]["f_mae_kcal_mol_A"]
            assert test_mae == pytest.approx(metrics.loc[card, "f_mae_kcal_mol_A"])
    frames = ase.io.read(folder / "data" / "labelled_frames.extxyz", ":")
    assert len(frames) == config["sampling"]["n_frames"]
    from deltagdml.units import KCAL_MOL_PER_EV

    np.testing.assert_allclose(frames[0].get_forces() * KCAL_MOL_PER_EV, ds.F[0], atol=1e-5)
    run = ase.io.read(folder / "dynamics" / "runs" / "delta_300K.extxyz", ":")
    assert np.isfinite(run[-1].get_potential_energy())


# The active-learning loop on the finished tiny run: rounds add the frames their
# exploration flagged to the parts that needed them, keep the test set, lower the retrained
# parts' uncertainty on those frames, stop when nothing leaves the data, and rerun
# byte-identically.

LOOP = {
    "enabled": True,
    "max_rounds": 2,
    "temperatures_K": [300, 600],
    "n_starts": 1,
    "duration_ps": 0.5,
    "stride": 5,
    "budget": 4,
    "md_test_frames": 8,
}


@pytest.fixture(scope="module")
def loop_run(tiny_run, tmp_path_factory):
    """The finished tiny run with the loop switched on: water–benzene explores hot, Na⁺–
    benzene at 1 K for 0.05 ps, where it cannot leave its data."""
    results, config, _ = tiny_run
    work = tmp_path_factory.mktemp("loop")
    shutil.copytree(results.parent / "results", work / "results")
    config = copy.deepcopy(config)
    config["active_learning"] = LOOP
    config["systems"]["na_benzene"]["active_learning"] = {
        "temperatures_K": [1],
        "duration_ps": 0.05,
    }
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    run = snakemake("--cores", "2", "--configfile", "config.yaml", cwd=work)
    assert run.returncode == 0, run.stderr[-4000:]
    return work


def test_rounds_add_flagged_frames_to_the_parts_that_needed_them(loop_run):
    folder = loop_run / "results" / "water_benzene"
    rounds = pd.read_csv(folder / "loop" / "rounds.csv")
    assert rounds["round"].min() == 0 and rounds["round"].max() >= 1
    assert (folder / "loop" / "rounds.png").stat().st_size > 10_000
    first = folder / "loop" / "round_1"
    selected = np.load(first / "selected.npz")
    assert 0 < len(selected["R"]) <= LOOP["budget"]
    before, after = load_splits(folder / "splits.npz"), load_splits(first / "splits.npz")
    n0 = max(max(v) for v in before.values()) + 1
    for k, part in enumerate(selected["parts"]):
        added = np.setdiff1d(train_indices(after, str(part)), train_indices(before, str(part)))
        np.testing.assert_array_equal(added, n0 + np.flatnonzero(selected["needs"][:, k]))
        for key in ("valid", "test"):  # the test set never receives loop frames
            np.testing.assert_array_equal(after[key], before[key])
        if added.size:
            old = load_model(folder / "models" / f"{part}.npz")
            new = load_model(first / "models" / f"{part}.npz")
            atoms = slice(None) if part == "binding" else _fragment_atoms(folder, str(part))
            R = selected["R"][selected["needs"][:, k]][:, atoms]
            assert np.all(new.predict_std(R) < old.predict_std(R))
    metrics = pd.read_csv(folder / "evaluation" / "metrics.csv").set_index("model")
    assert metrics.loc["full", "n_train"] == len(train_indices(load_splits(_final(folder)), "full"))
    md_test = pd.read_csv(folder / "evaluation" / "md_test_metrics.csv").set_index("model")
    assert set(md_test.index) == {"full", "delta"} and (md_test["n_test"] == 8).all()
    assert np.isfinite(md_test["f_mae_kcal_mol_A"]).all()


def _fragment_atoms(folder, part: str) -> np.ndarray:
    return np.load(folder / "datasets" / f"{part}.npz")["atom_indices"]


def _final(folder):
    rounds = sorted(folder.glob("loop/round_*/splits.npz"))
    return rounds[-1] if rounds else folder / "splits.npz"


def test_the_round_checkpoint_stops_when_nothing_leaves_the_data(loop_run):
    folder = loop_run / "results" / "na_benzene"
    decision = json.loads((folder / "loop" / "round_1" / "decision.json").read_text())
    assert decision["converged"] and not decision["continue"], decision
    assert not (folder / "loop" / "round_1" / "new_labels.npz").exists()
    assert not (folder / "loop" / "round_2").exists()
    # round 0's models are final: the full model on the same geometries is the same file
    final = (folder / "loop" / "final" / "full.npz").read_bytes()
    assert final == (folder / "models" / "full.npz").read_bytes()
    assert (folder / "loop" / "final" / "delta.npz").read_bytes() == (
        folder / "models" / "delta.npz"
    ).read_bytes()


def test_a_rerun_of_a_round_is_byte_identical(loop_run):
    first = loop_run / "results" / "water_benzene" / "loop" / "round_1"
    names = ["selected.npz", "labels.npz", "splits.npz", "models/delta.npz", "models/binding.npz"]
    before = {name: (first / name).read_bytes() for name in names}
    shutil.rmtree(first)
    target = "results/water_benzene/loop/round_1/models/delta.npz"
    run = snakemake(target, "--cores", "2", "--configfile", "config.yaml", cwd=loop_run)
    assert run.returncode == 0, run.stderr[-4000:]
    for name in names:
        assert (first / name).read_bytes() == before[name], name
