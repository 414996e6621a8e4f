"""Interoperability with the reference implementation, sGDML 1.0.3.

sGDML needs numpy < 2.4 and torch, so it lives in its own virtual environment
(``tests/interop/setup_sgdml_env.sh`` builds ``.venv-sgdml``; or set SGDML_PYTHON).
"""

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import morse_energy_forces

from deltagdml.gdml.dataset import Dataset, save_dataset
from deltagdml.gdml.model import GDMLModel
from deltagdml.gdml.model_io import load_model, save_model

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tests" / "interop" / "sgdml_reference.py"
SGDML_PYTHON = os.environ.get("SGDML_PYTHON", str(ROOT / ".venv-sgdml" / "bin" / "python"))


def _sgdml_importable() -> bool:
    if not Path(SGDML_PYTHON).exists():
        return False
    probe = [SGDML_PYTHON, "-c", "import sgdml.predict"]
    return subprocess.run(probe, capture_output=True, timeout=300).returncode == 0


pytestmark = pytest.mark.skipif(
    not _sgdml_importable(),
    reason=f"no sGDML 1.0.3 importable with {SGDML_PYTHON} (no network when "
    "tests/interop/setup_sgdml_env.sh ran?); run that script or set SGDML_PYTHON",
)


def run_reference(*args: str) -> None:
    result = subprocess.run(
        [SGDML_PYTHON, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_our_model_predicts_identically_in_sgdml(methane, tmp_path):
    R, E, F = methane.sample(50)
    model = GDMLModel(sigma=2.0).fit(R, methane.z, F, E)
    save_model(model, tmp_path / "m.npz")
    Rq, _, _ = methane.sample(25)
    np.save(tmp_path / "q.npy", Rq)
    run_reference(
        "predict", str(tmp_path / "m.npz"), str(tmp_path / "q.npy"), str(tmp_path / "o.npz")
    )
    ref = np.load(tmp_path / "o.npz")
    E_ours, F_ours = model.predict(Rq)
    np.testing.assert_allclose(ref["E"], E_ours, rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(ref["F"], F_ours, rtol=1e-8, atol=1e-9)


def test_sgdml_model_loads_here_and_training_agrees(methane, tmp_path):
    R, E, F = methane.sample(120)
    save_dataset(
        Dataset(R=R, z=methane.z, F=F, E=E, name="ch4", theory="morse"), tmp_path / "d.npz"
    )
    run_reference(
        "train", str(tmp_path / "d.npz"), "40", "20", "2.0", "0", str(tmp_path / "ref.npz")
    )
    ref_model = load_model(tmp_path / "ref.npz")
    Rq, _, _ = methane.sample(25)
    np.save(tmp_path / "q.npy", Rq)
    run_reference(
        "predict", str(tmp_path / "ref.npz"), str(tmp_path / "q.npy"), str(tmp_path / "o.npz")
    )
    ref = np.load(tmp_path / "o.npz")
    E_loaded, F_loaded = ref_model.predict(Rq)
    np.testing.assert_allclose(E_loaded, ref["E"], rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(F_loaded, ref["F"], rtol=1e-8, atol=1e-9)
    # Training here on sGDML's training points and permutations gives the same model.
    with np.load(tmp_path / "ref.npz", allow_pickle=False) as f:
        idx, perms = f["idxs_train"], f["perms"]
    ours = GDMLModel(sigma=2.0, perms=perms).fit(R[idx], methane.z, F[idx], E[idx])
    E_ours, F_ours = ours.predict(Rq)
    np.testing.assert_allclose(E_ours, ref["E"], rtol=1e-9, atol=1e-7)
    np.testing.assert_allclose(F_ours, ref["F"], rtol=1e-6, atol=1e-7)
    # And our detected group equals the one sGDML found on this well-sampled molecule.
    assert {tuple(p) for p in ours.resolve_perms(R, methane.z)} == {tuple(p) for p in perms}


def test_each_part_of_a_delta_model_file_predicts_identically_in_sgdml(water, methane, tmp_path):
    """A Δ model file's parts, extracted, are plain sGDML models that sGDML 1.0.3 runs."""
    from deltagdml.gdml.composite import DeltaModel
    from deltagdml.gdml.delta_io import extract_part, save_delta_model

    Rw, Ew, Fw = water.sample(30)
    Rm, Em, Fm = methane.sample(30)
    R = np.concatenate([Rw, Rm + [0.0, 0.0, 4.0]], axis=1)
    z = np.concatenate([water.z, methane.z])
    Eb, Fb = morse_energy_forces(R, R[0])
    parts = {
        "fragment_0": GDMLModel(sigma=2.0).fit(Rw, water.z, Fw, Ew),
        "fragment_1": GDMLModel(sigma=2.0).fit(Rm, methane.z, Fm, Em),
        "binding": GDMLModel(sigma=4.0, perms="none").fit(R, z, 0.01 * Fb, 0.01 * Eb),
    }
    fragments = [np.arange(3), np.arange(3, 8)]
    save_delta_model(DeltaModel.from_parts(z, fragments, parts, {}), tmp_path / "delta.npz")
    for name, model in parts.items():
        extract_part(tmp_path / "delta.npz", name, tmp_path / f"{name}.npz")
        Rq = R[:5] if name == "binding" else (Rw if name == "fragment_0" else Rm)[:5]
        np.save(tmp_path / "q.npy", Rq)
        run_reference(
            "predict",
            str(tmp_path / f"{name}.npz"),
            str(tmp_path / "q.npy"),
            str(tmp_path / "o.npz"),
        )
        ref = np.load(tmp_path / "o.npz")
        E_ours, F_ours = model.predict(Rq)
        np.testing.assert_allclose(ref["F"], F_ours, rtol=1e-8, atol=1e-9)
        np.testing.assert_allclose(ref["E"], E_ours, rtol=1e-10, atol=1e-9)
