"""The Δ model as one file: round trip, loader, calculator, CLI, MD, i-PI, bad input."""

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import ase.io
import numpy as np
import pandas as pd
import pytest
from ase import Atoms, units
from ase.calculators.socketio import SocketIOCalculator
from ase.md.velocitydistribution import Stationary, thermalize_momenta
from ase.md.verlet import VelocityVerlet
from conftest import morse_energy_forces

from deltagdml import GDMLCalculator, load_model
from deltagdml.cli import main as cli
from deltagdml.errors import ModelError
from deltagdml.gdml.composite import DeltaModel
from deltagdml.gdml.dataset import Dataset, save_dataset
from deltagdml.gdml.delta_io import extract_part, load_delta_model
from deltagdml.gdml.model import GDMLModel
from deltagdml.gdml.model_io import load_model as load_gdml

WATER = np.array([[0.0, 0.0, 0.12], [0.0, 0.76, -0.47], [0.0, -0.76, -0.47]])
R_REF = np.vstack([WATER, WATER + [0.0, 0.0, 3.0]])
Z = np.array([8, 1, 1, 8, 1, 1])
FRAGMENTS = [np.arange(3), np.arange(3, 6)]


def water_dimer(n: int, seed: int) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """Geometries and (E, F) of the dimer and of each water alone, from Morse pair terms
    (kcal/mol, Å): the binding energy is the sum of the inter-water pair terms."""
    R = R_REF + np.random.default_rng(seed).normal(scale=0.04, size=(n, 6, 3))
    labels = [morse_energy_forces(R, R_REF)]
    labels += [morse_energy_forces(R[:, f], R_REF[f]) for f in FRAGMENTS]
    return R, labels


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Complex and fragment datasets, and a Δ model plus full model trained by the CLI."""
    tmp = tmp_path_factory.mktemp("delta")
    R, labels = water_dimer(80, seed=0)
    paths = {"full": tmp / "dimer.npz"}
    save_dataset(Dataset(R=R, z=Z, F=labels[0][1], E=labels[0][0], name="dimer"), paths["full"])
    for k, f in enumerate(FRAGMENTS):
        paths[f"fragment_{k}"] = tmp / f"water_{k}.npz"
        E, F = labels[k + 1]
        save_dataset(Dataset(R=R[:, f], z=Z[f], F=F, E=E), paths[f"fragment_{k}"])
    paths["delta"], paths["model_full"] = tmp / "delta.npz", tmp / "full_model.npz"
    rc = cli(
        [
            "train-delta", str(paths["full"]), "--fragments", "0-2", "3-5",
            "--fragment-labels", str(paths["fragment_0"]), str(paths["fragment_1"]),
            "--n-train", "30", "--n-valid", "10", "--sigmas", "1", "2", "4",
            "-o", str(paths["delta"]), "--full-model", str(paths["model_full"]),
        ]
    )  # fmt: skip
    assert rc == 0
    return paths


@pytest.fixture(scope="module")
def calibrated(files, tmp_path_factory):
    """The Δ model of ``files`` with uncertainty thresholds: 1.5 × each part's largest GP
    energy std over 20 geometries like the training ones."""
    from deltagdml.gdml.delta_io import TrainingRecord, save_delta_model

    delta = load_delta_model(files["delta"])
    R, _ = water_dimer(20, seed=5)
    for term in delta.fragments:
        term.model.calibrate_uncertainty(R[:, term.atoms], factor=1.5)
    delta.binding.calibrate_uncertainty(R, factor=1.5)
    path = tmp_path_factory.mktemp("calibrated") / "delta.npz"
    save_delta_model(delta, path, record=TrainingRecord(**delta.manifest_["training_data"]))
    return path


def test_loader_returns_both_kinds_with_one_predict(files):
    delta, full = load_model(files["delta"]), load_model(files["model_full"])
    assert isinstance(delta, DeltaModel) and isinstance(full, GDMLModel)
    R, _ = water_dimer(4, seed=1)
    for model in (delta, full):
        E, F = model.predict(R)
        E1, F1 = model.predict(R[0])  # one geometry: a separate code path
        assert E.shape == (4,) and F.shape == (4, 6, 3)
        np.testing.assert_allclose(E1, E[:1], rtol=1e-12)
        np.testing.assert_allclose(F1, F[:1], rtol=1e-9, atol=1e-10)


def test_round_trip_is_bitwise_and_the_composite_is_the_sum_of_its_parts(files, tmp_path):
    delta = load_delta_model(files["delta"])
    again = tmp_path / "again.npz"
    from deltagdml.gdml.delta_io import TrainingRecord, save_delta_model

    save_delta_model(delta, again, record=TrainingRecord(**delta.manifest_["training_data"]))
    R, _ = water_dimer(6, seed=2)
    E, F = delta.predict(R)
    E2, F2 = load_delta_model(again).predict(R)
    np.testing.assert_array_equal(E, E2)
    np.testing.assert_array_equal(F, F2)
    E_sum, F_sum = delta.binding.predict(R)
    for k, f in enumerate(FRAGMENTS):
        part = load_gdml_part(files["delta"], f"fragment_{k}", tmp_path)
        E_k, F_k = part.predict(R[:, f])
        E_sum = E_sum + E_k
        F_sum[:, f] += F_k
    np.testing.assert_allclose(E, E_sum, rtol=0, atol=1e-9)
    np.testing.assert_allclose(F, F_sum, rtol=0, atol=1e-9)


def load_gdml_part(path: Path, part: str, tmp: Path) -> GDMLModel:
    out = tmp / f"{part}.npz"
    extract_part(path, part, out)
    return load_gdml(out)


def test_manifest_states_fragments_units_sizes_and_provenance(files):
    manifest = load_delta_model(files["delta"]).manifest_
    assert [f["atoms"] for f in manifest["fragments"]] == [[0, 1, 2], [3, 4, 5]]
    assert manifest["elements"] == ["O", "H", "H", "O", "H", "H"]
    assert manifest["units"] == {"energy": "kcal/mol", "force": "kcal/mol/Ang", "length": "Ang"}
    assert set(manifest["parts"]) == {"fragment_0", "fragment_1", "binding"}
    for info in manifest["parts"].values():
        # the grid 1, 2, 4 or its continuation by factors of 2 (an edge extension)
        assert info["n_train"] == 30 and float(np.log2(info["sigma"])).is_integer()
        assert len(info["md5_train"]) == 32
    assert len(manifest["training_data"]["idxs_train"]) == 30
    assert manifest["code_version"].startswith("deltagdml ")


def test_calculator_takes_either_kind_in_ev(files):
    R, _ = water_dimer(1, seed=3)
    for path in (files["delta"], files["model_full"]):
        model = load_model(path)
        atoms = Atoms(Z, positions=R[0])
        atoms.calc = GDMLCalculator(model)
        E, F = model.predict(R)
        assert atoms.get_potential_energy() == pytest.approx(E[0] * units.kcal / units.mol)
        np.testing.assert_allclose(atoms.get_forces(), F[0] * units.kcal / units.mol)


def test_nve_md_with_the_delta_calculator_conserves_energy(files):
    """300 velocity-Verlet steps of 0.2 fs from 100 K: the total energy stays within
    2 % of the initial kinetic energy (forces are the exact gradient of the energy)."""
    atoms = Atoms(Z, positions=R_REF)
    atoms.calc = GDMLCalculator(load_model(files["delta"]))
    thermalize_momenta(atoms, 100, rng=np.random.default_rng(0))
    Stationary(atoms)
    e0, k0 = atoms.get_total_energy(), atoms.get_kinetic_energy()
    totals = []
    dyn = VelocityVerlet(atoms, timestep=0.2 * units.fs)
    dyn.attach(lambda: totals.append(atoms.get_total_energy()), interval=1)
    dyn.run(300)
    assert np.max(np.abs(np.array(totals) - e0)) < 0.02 * k0


def test_test_command_leaves_out_training_geometries(files, capsys):
    assert cli(["test", str(files["delta"]), str(files["full"])]) == 0
    held_out = json.loads(capsys.readouterr().out)
    assert held_out["n_test"] == 80 - 40
    assert cli(["test", str(files["delta"]), str(files["full"]), "--include-training"]) == 0
    everything = json.loads(capsys.readouterr().out)
    assert everything["n_test"] == 80
    # training points are fitted exactly
    assert everything["f_mae_kcal_mol_A"] < held_out["f_mae_kcal_mol_A"]


def test_cli_predict_and_md_write_files_ase_reads(files, tmp_path, capsys):
    R, _ = water_dimer(3, seed=4)
    ase.io.write(tmp_path / "geoms.xyz", [Atoms(Z, positions=r) for r in R])
    out = tmp_path / "pred.extxyz"
    assert cli(["predict", str(files["delta"]), str(tmp_path / "geoms.xyz"), "-o", str(out)]) == 0
    frames = ase.io.read(out, ":")
    R_read = np.array([a.positions for a in ase.io.read(tmp_path / "geoms.xyz", ":")])
    E, F = load_model(files["delta"]).predict(R_read)
    ev = units.kcal / units.mol
    assert [a.get_potential_energy() for a in frames] == pytest.approx(E * ev, rel=1e-8)
    np.testing.assert_allclose(frames[2].get_forces(), F[2] * ev, rtol=1e-6, atol=1e-8)
    capsys.readouterr()
    traj = tmp_path / "md.traj"
    ase.io.write(tmp_path / "start.xyz", Atoms(Z, positions=R_REF))
    args = ["md", str(files["delta"]), str(tmp_path / "start.xyz"), "--steps", "200"]
    assert cli([*args, "--temperature", "50", "--stride", "20", "-o", str(traj)]) == 0
    report = json.loads(capsys.readouterr().out)
    # 30 training geometries leave soft directions unconstrained: a run may stop early,
    # and then says why; either way the file holds every checked frame.
    assert (report["status"] == "stable") == (report["reason"] is None)
    assert report["frames"] == report["steps"] // 20 + 1 or report["reason"]
    run = ase.io.read(traj, ":")
    assert len(run) == report["frames"] and np.isfinite(run[0].get_forces()).all()
    E_run, _ = load_model(files["delta"]).predict(np.array([a.positions for a in run]))
    assert [a.get_potential_energy() for a in run] == pytest.approx(E_run * ev, rel=1e-8)
    # the trajectory keeps each frame's uncertainty; this model has no thresholds
    assert run[-1].info["time_ps"] == pytest.approx(report["simulated_ps"])
    assert run[0].info["uncertainty_binding"] > 0 and np.isnan(run[0].info["uncertainty_ratio"])
    assert report["left_data_time_ps"] is None


def test_cli_md_records_the_uncertainty_and_stops_where_the_model_leaves_its_data(
    calibrated, tmp_path, capsys
):
    """The frames' info holds each part's uncertainty (the model's own at that frame) and the
    threshold ratio; ``--max-uncertainty-ratio`` stops a hot run (2000 K) at the first frame
    above, and not a cold one (1 K; 30 training geometries leave soft directions that a
    10 K run drifts along out of the data within 0.1 ps)."""
    ase.io.write(tmp_path / "start.xyz", Atoms(Z, positions=R_REF))
    model = load_model(calibrated)
    args = ["md", str(calibrated), str(tmp_path / "start.xyz"), "--steps", "200", "--stride", "10"]
    out = tmp_path / "cold.extxyz"
    assert cli([*args, "--temperature", "1", "-o", str(out), "--max-uncertainty-ratio", "1"]) == 0
    cold = json.loads(capsys.readouterr().out)
    assert cold["status"] == "stable" and cold["left_data_time_ps"] is None
    frames = ase.io.read(out, ":")
    R = np.array([a.positions for a in frames])
    stds = model.predict_std_parts(R)
    thresholds = {p: m.uncertainty_threshold_ for p, m in model.parts().items()}
    for part, std in stds.items():
        recorded = [a.info[f"uncertainty_{part}"] for a in frames]
        # the fragments' GP stds (~3e-5 kcal/mol) carry ~2e-8 of rounding
        np.testing.assert_allclose(recorded, std, rtol=1e-4, atol=5e-8)
    ratio = [a.info["uncertainty_ratio"] for a in frames]
    np.testing.assert_allclose(
        ratio, np.max([stds[p] / t for p, t in thresholds.items()], 0), rtol=1e-4, atol=5e-3
    )
    assert max(ratio) < 1 and frames[0].info["uncertainty_unit"] == "kcal/mol"

    hot = tmp_path / "hot.extxyz"
    assert (
        cli([*args, "--temperature", "2000", "-o", str(hot), "--max-uncertainty-ratio", "1"]) == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["status"] == "unstable" and report["reason"].startswith("uncertainty: ")
    frames = ase.io.read(hot, ":")
    last = frames[-1].info
    part = max(thresholds, key=lambda p: last[f"uncertainty_{p}"] / thresholds[p])
    assert report["reason"].startswith(f"uncertainty: {part} at {last['uncertainty_ratio']:.2f}×")
    assert last["time_ps"] > 0 and report["left_data_time_ps"] == pytest.approx(last["time_ps"])
    assert all(a.info["uncertainty_ratio"] <= 1 for a in frames[:-1])


def test_ipi_client_gives_the_calculators_forces(files, tmp_path):
    atoms = Atoms(Z, positions=R_REF)
    ase.io.write(tmp_path / "start.xyz", atoms)
    socket = f"deltagdml_test_{tmp_path.name}"
    cmd = [sys.executable, "-m", "deltagdml.cli", "ipi", str(files["delta"])]
    cmd += [str(tmp_path / "start.xyz"), "--unix", socket]

    def launch(*_args, **_kwargs):
        return subprocess.Popen(cmd, stderr=subprocess.DEVNULL)

    with SocketIOCalculator(unixsocket=socket, launch_client=launch) as server:
        atoms.calc = server
        atoms.positions[0] += 0.03
        F_socket = atoms.get_forces()
        E_socket = atoms.get_potential_energy()
    direct = Atoms(Z, positions=atoms.positions)
    direct.calc = GDMLCalculator(load_model(files["delta"]))
    np.testing.assert_allclose(F_socket, direct.get_forces(), atol=1e-10)
    assert E_socket == pytest.approx(direct.get_potential_energy(), abs=1e-10)


def test_ipi_client_logs_the_uncertainty_every_stride_calls(calibrated, tmp_path):
    """Five force calls with ``--uncertainty-stride 2``: lines for calls 0, 2 and 4, each
    part's uncertainty at that geometry (kcal/mol, as the header says) and the ratio."""
    ase.io.write(tmp_path / "start.xyz", Atoms(Z, positions=R_REF))
    socket = f"deltagdml_log_{tmp_path.name}"
    log = tmp_path / "uncertainty.csv"
    cmd = [sys.executable, "-m", "deltagdml.cli", "ipi", str(calibrated)]
    cmd += [str(tmp_path / "start.xyz"), "--unix", socket]
    cmd += ["--uncertainty-log", str(log), "--uncertainty-stride", "2"]

    def launch(*_args, **_kwargs):
        return subprocess.Popen(cmd, stderr=subprocess.DEVNULL)

    atoms = Atoms(Z, positions=R_REF)
    R = []
    with SocketIOCalculator(unixsocket=socket, launch_client=launch) as server:
        atoms.calc = server
        for k in range(5):
            atoms.positions[0, 2] += 0.05 * k
            atoms.get_forces()
            R.append(atoms.positions.copy())
    model = load_model(calibrated)
    table = pd.read_csv(log)
    parts = ["fragment_0", "fragment_1", "binding"]
    assert list(table.columns) == [
        "step",
        *(f"uncertainty_{p} (kcal/mol)" for p in parts),
        "uncertainty_ratio",
    ]
    assert table["step"].tolist() == [0, 2, 4]
    stds = model.predict_std_parts(np.array(R)[[0, 2, 4]])
    for p in parts:
        recorded = table[f"uncertainty_{p} (kcal/mol)"]
        np.testing.assert_allclose(recorded, stds[p], rtol=1e-4, atol=1e-8)
    ratio = np.max([stds[p] / m.uncertainty_threshold_ for p, m in model.parts().items()], 0)
    np.testing.assert_allclose(table["uncertainty_ratio"], ratio, rtol=1e-4)
    assert table["uncertainty_ratio"].iloc[-1] > 1  # the last geometry is far off


def test_bad_input_to_the_new_commands_gives_one_line(files, tmp_path, capsys):
    f0, f1 = str(files["fragment_0"]), str(files["fragment_1"])
    cases = [
        (["train-delta", str(files["full"]), "--fragments", "0-2", "2-5",
          "--fragment-labels", f0, f1, "-o", str(tmp_path / "x.npz")], "fragments overlap"),
        (["train-delta", str(files["full"]), "--fragments", "0-2", "3-9",
          "--fragment-labels", f0, f1, "-o", str(tmp_path / "x.npz")], "out of range"),
        (["train-delta", str(files["full"]), "--fragments", "0-2", "3-5",
          "-o", str(tmp_path / "x.npz")], "--fragment-labels"),
        (["train-delta", str(files["full"]), "--fragments", "0-2", "3-5",
          "--fragment-labels", f0, f1, "-o", str(files["full"])], "overwrite an input"),
        (["test", str(files["delta"]), f0], "atoms"),
        (["extract", str(files["delta"]), "fragment_7", "-o", str(tmp_path / "p.npz")],
         "no part 'fragment_7'"),
        (["predict", str(files["delta"]), str(files["full"]), "-o", str(files["delta"])],
         "overwrite an input"),
    ]  # fmt: skip
    for args, message in cases:
        assert cli(args) == 1, args
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert err.startswith("error: ") and message in err, (args, err)
        assert "Traceback" not in err
    assert not (tmp_path / "x.npz").exists()


def test_truncated_or_pickled_delta_file_is_refused(files, tmp_path):
    data = files["delta"].read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="not a readable"):
        load_model(tmp_path / "cut.npz")
    with np.load(files["delta"], allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["binding/sig"] = np.array([{"evil": 1}], dtype=object)
    np.savez(tmp_path / "pickled.npz", **arrays)
    with pytest.raises(ModelError, match="refusing to unpickle"):
        load_model(tmp_path / "pickled.npz")
    partial = {k: v for k, v in arrays.items() if not k.startswith("binding/R_desc")}
    partial["binding/sig"] = arrays["fragment_0/sig"]
    np.savez(tmp_path / "partial.npz", **partial)
    with pytest.raises(ModelError, match="part 'binding' lacks"):
        load_model(tmp_path / "partial.npz")
    assert zipfile.is_zipfile(files["delta"])


def test_usage_errors_exit_2():
    with pytest.raises(SystemExit) as exc:
        cli(["md"])
    assert exc.value.code == 2
